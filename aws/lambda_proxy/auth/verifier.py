"""Bearer-token verification (RFC 8725 practices); scope checks are in :mod:`.scopes`.

The algorithm comes from an allow-list before any key is looked up (so ``alg: none`` and
``HS256`` signed with the public key never reach a verifier); the key comes from the issuer's
JWKS by ``kid`` and must be of the algorithm's type; ``iss``, ``aud``, ``exp``, ``nbf``,
``iat`` and the tenant claim are required. The token itself is never logged or echoed.

Everything in a token is attacker-controlled, so each layer is validated before it is used: the
compact serialization by its alphabet, the header by :class:`JoseHeader` before a key is looked
up, and the claims by :class:`TokenClaims` once the signature holds. A value of the wrong shape
anywhere is ``token_malformed`` (401); no token, however built, may reach the handler as an
unexpected exception (500). pyjwt checks the signature only; the claim checks are ours, on typed
values, so that (for example) ``"exp": "99999999999"`` cannot pass as a number.
"""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
from pydantic import ValidationError

from aws.lambda_proxy.auth.exceptions import TokenInvalidError
from aws.lambda_proxy.auth.jwks import JwksCache
from aws.lambda_proxy.auth.models import REQUIRED_CLAIMS, JoseHeader, TenantContext, TokenClaims
from aws.lambda_proxy.config import TENANT_PATTERN

MAX_TOKEN_LENGTH = 8192
MAX_KID_LENGTH = 256
ACCEPTED_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
_TENANT = re.compile(TENANT_PATTERN)
# Three base64url segments (pyjwt tolerates '=' padding, as some issuers send it); anything
# else, non-ASCII included, is refused before any decoding.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]*=*\.[A-Za-z0-9_-]*=*")
# Claim checks are ours (see _check_claims); pyjwt only verifies the signature.
_SIGNATURE_ONLY: dict[str, Any] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_iss": False,
    "verify_aud": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


def _invalid(code: str, message: str) -> TokenInvalidError:
    return TokenInvalidError(message, code=code)


def _malformed(message: str) -> TokenInvalidError:
    return _invalid("token_malformed", message)


class TokenVerifier:
    """Turns an ``Authorization`` header into a :class:`TenantContext`, or raises 401."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        tenant_claim: str,
        leeway_s: int,
        max_age_s: int,
    ) -> None:
        self.jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._algorithms = frozenset(algorithms)
        self._tenant_claim = tenant_claim
        self._leeway_s = leeway_s
        self._max_age_s = max_age_s

    def verify(self, authorization: str | None) -> TenantContext:
        token = _bearer(authorization)
        header = _header(token)
        if header.alg not in self._algorithms:
            raise _invalid(
                "token_algorithm_refused",
                f"token algorithm not accepted; allowed: {sorted(self._algorithms)}",
            )
        if header.typ is not None and header.typ.lower() not in ACCEPTED_TYPES:
            raise _invalid("token_type_refused", "the token's typ header is not a JWT type")
        if not header.kid or len(header.kid) > MAX_KID_LENGTH:
            raise _invalid("token_key_unknown", "the token names no signing key (kid)")
        key = self.jwks.get(header.kid)
        if key.key_type != _KEY_TYPES[header.alg] or key.algorithm_name not in (None, header.alg):
            raise _invalid("token_algorithm_refused", "the token's algorithm does not fit its key")
        payload = _verified_payload(token, key.key, header.alg)
        claims = self._check_claims(payload)
        return self._context(payload, claims)

    def _check_claims(self, payload: dict[str, Any]) -> TokenClaims:
        """Presence, types, then the checks RFC 7519 names, in the order pyjwt made them (so
        a well-formed token gets the code it always got)."""
        for name in REQUIRED_CLAIMS:
            if name not in payload:  # present but null is the wrong type: malformed, below
                raise _invalid("token_claim_missing", f"the token has no {name!r} claim")
        try:
            claims = TokenClaims.model_validate(payload)
        except ValidationError as exc:
            raise _malformed(f"token claims of the wrong type or range: {_fields(exc)}") from None
        now = time.time()
        if claims.iat > now + self._leeway_s:
            raise _invalid("token_not_yet_valid", "token rejected: not_yet_valid (iat)")
        if claims.nbf > now + self._leeway_s:
            raise _invalid("token_not_yet_valid", "token rejected: not_yet_valid")
        if claims.exp <= now - self._leeway_s:
            raise _invalid("token_expired", "token rejected: expired")
        if claims.iss != self._issuer:
            raise _invalid("token_issuer_invalid", "token rejected: issuer_invalid")
        if not claims.audiences:  # "" or []: pyjwt called that missing, and so do we
            raise _invalid("token_claim_missing", "the token's 'aud' claim is empty")
        if self._audience not in claims.audiences:
            raise _invalid("token_audience_invalid", "token rejected: audience_invalid")
        if now - claims.iat > self._max_age_s:
            raise _invalid("token_too_old", "the token was issued too long ago")
        return claims

    def _context(self, payload: dict[str, Any], claims: TokenClaims) -> TenantContext:
        tenant = payload.get(self._tenant_claim)
        if tenant is not None and not isinstance(tenant, str):
            raise _malformed(f"the token's {self._tenant_claim!r} claim is not a string")
        if tenant is None or not _TENANT.fullmatch(tenant):
            raise _invalid(
                "token_tenant_missing", f"the token has no valid {self._tenant_claim!r} claim"
            )
        return TenantContext(
            tenant_id=tenant,
            subject=claims.sub[:256] if claims.sub else "",
            scopes=claims.scopes,
        )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise _invalid("token_missing", "an Authorization: Bearer <JWT> header is required")
    if not isinstance(authorization, str):
        raise _malformed("the Authorization header is not 'Bearer <JWT>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _malformed("the Authorization header is not 'Bearer <JWT>'")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("the bearer token is too long")
    if not _COMPACT_JWS.fullmatch(token):
        raise _malformed("the bearer token is not a JWT")
    return token


def _header(token: str) -> JoseHeader:
    try:
        # pyjwt decodes the segment and refuses a non-string kid and unknown crit entries itself
        # (InvalidTokenError, the base of DecodeError); our model refuses everything else.
        return JoseHeader.model_validate(jwt.get_unverified_header(token))
    except jwt.InvalidTokenError:
        raise _malformed("the bearer token is not a JWT") from None
    except ValidationError as exc:
        raise _malformed(f"the token's header is malformed: {_fields(exc)}") from None


def _verified_payload(token: str, key: Any, algorithm: str) -> dict[str, Any]:
    """The payload as a JSON object, once the signature holds; claims are not checked here."""
    try:
        return jwt.decode(token, key, algorithms=[algorithm], options=_SIGNATURE_ONLY)
    except jwt.InvalidSignatureError:
        raise _invalid("token_signature_invalid", "token rejected: signature_invalid") from None
    except jwt.InvalidAlgorithmError:
        raise _invalid("token_algorithm_refused", "token rejected: algorithm_refused") from None
    except jwt.InvalidTokenError:
        # Payload not base64url, not JSON, or not an object.
        raise _malformed("the token's payload is not a JSON object") from None


def _fields(error: ValidationError) -> str:
    """Which members failed (names only: a value from the token is never echoed)."""
    names = sorted({str(item["loc"][0]) for item in error.errors() if item["loc"]})
    return ", ".join(names) or "unsupported members (crit, b64)"
