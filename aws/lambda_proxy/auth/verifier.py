"""Bearer-token verification (RFC 8725 practices) and scope checks.

The algorithm comes from an allow-list before any key is looked up (so ``alg: none`` and
``HS256`` signed with the public key never reach a verifier); the key comes from the issuer's
JWKS by ``kid`` and must be of the algorithm's type; ``iss``, ``aud``, ``exp``, ``nbf``,
``iat`` and the tenant claim are required. The token itself is never logged or echoed.
"""

from __future__ import annotations

import re
import time
from typing import Any

import jwt

from aws.lambda_proxy.auth.exceptions import ScopeMissingError, TokenInvalidError
from aws.lambda_proxy.auth.jwks import JwksCache
from aws.lambda_proxy.auth.models import TenantContext
from aws.lambda_proxy.config import TENANT_PATTERN

MAX_TOKEN_LENGTH = 8192
ACCEPTED_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
_TENANT = re.compile(TENANT_PATTERN)
_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token_expired"),
    (jwt.ImmatureSignatureError, "token_not_yet_valid"),
    (jwt.InvalidIssuedAtError, "token_issued_at_invalid"),
    (jwt.InvalidIssuerError, "token_issuer_invalid"),
    (jwt.InvalidAudienceError, "token_audience_invalid"),
    (jwt.MissingRequiredClaimError, "token_claim_missing"),
    (jwt.InvalidSignatureError, "token_signature_invalid"),
    (jwt.InvalidAlgorithmError, "token_algorithm_refused"),
    (jwt.DecodeError, "token_malformed"),
)


def _invalid(code: str, message: str) -> TokenInvalidError:
    return TokenInvalidError(message, code=code)


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
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise _invalid("token_malformed", "the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise _invalid(
                "token_algorithm_refused",
                f"token algorithm not accepted; allowed: {sorted(self._algorithms)}",
            )
        token_type = header.get("typ")
        if token_type is not None and str(token_type).lower() not in ACCEPTED_TYPES:
            raise _invalid("token_type_refused", "the token's typ header is not a JWT type")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise _invalid("token_key_unknown", "the token names no signing key (kid)")
        key = self.jwks.get(kid)
        if key.key_type != _KEY_TYPES[algorithm] or key.algorithm_name not in (None, algorithm):
            raise _invalid("token_algorithm_refused", "the token's algorithm does not fit its key")
        claims = self._decode(token, key.key, algorithm)
        return self._context(claims)

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iat", "nbf", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            for error_type, code in _ERRORS:
                if isinstance(exc, error_type):
                    raise _invalid(code, f"token rejected: {code.removeprefix('token_')}") from None
            raise _invalid("token_invalid", "token rejected") from None

    def _context(self, claims: dict[str, Any]) -> TenantContext:
        issued_at = claims["iat"]
        if not isinstance(issued_at, int | float) or time.time() - issued_at > self._max_age_s:
            raise _invalid("token_too_old", "the token was issued too long ago")
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
            raise _invalid(
                "token_tenant_missing", f"the token has no valid {self._tenant_claim!r} claim"
            )
        subject = claims.get("sub")
        return TenantContext(
            tenant_id=tenant,
            subject=subject[:256] if isinstance(subject, str) else "",
            scopes=_scopes(claims),
        )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise _invalid("token_missing", "an Authorization: Bearer <JWT> header is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _invalid("token_malformed", "the Authorization header is not 'Bearer <JWT>'")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid("token_malformed", "the bearer token is too long")
    return token


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """OAuth ``scope`` (space-separated string) or ``scp`` (list, as some IdPs send)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(item for item in scp if isinstance(item, str))
    return frozenset()


def require_scope(context: TenantContext, scope: str) -> None:
    if scope not in context.scopes:
        raise ScopeMissingError(scope)
