"""JWT authentication (pyjwt, JWKS cached per container) and scope checks."""
