"""Authentication (401) and authorization (403) errors, with RFC 6750 challenge headers."""

from __future__ import annotations

from aws.lambda_proxy.exceptions import ForbiddenError, ProxyError, UpstreamError

REALM = 'Bearer realm="multitalk-video-api"'


class TokenInvalidError(ProxyError):
    """The bearer token is missing or not acceptable; ``code`` names the reason.

    Codes: ``token_missing``, ``token_malformed``, ``token_algorithm_refused``,
    ``token_type_refused``, ``token_key_unknown``, ``token_signature_invalid``,
    ``token_expired``, ``token_not_yet_valid``, ``token_too_old``, ``token_issuer_invalid``,
    ``token_audience_invalid``, ``token_claim_missing``, ``token_tenant_missing``,
    ``token_invalid``.

    ``token_malformed`` covers every token that is not a well-formed JWT of the expected shape:
    not three base64url segments, a header or payload that is not a JSON object, a header member
    or claim of the wrong type or range (a string ``exp``, a list ``alg``, a NaN ``iat``), or a
    ``crit`` header. The other codes describe well-formed tokens that fail a check.
    """

    status = 401
    code = "token_invalid"
    title = "Unauthorized"

    @property
    def challenge(self) -> str:
        if self.code == "token_missing":
            return REALM
        return f'{REALM}, error="invalid_token", error_description="{self.code}"'


class ScopeMissingError(ForbiddenError):
    """The token is valid but lacks the scope the operation needs."""

    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"this operation needs the {scope!r} scope")
        self.scope = scope

    @property
    def challenge(self) -> str:
        return (
            f'Bearer realm="multitalk-video-api", error="insufficient_scope", scope="{self.scope}"'
        )


class TenantNotConfiguredError(ForbiddenError):
    """The token names a tenant this deployment has no S3 locations for."""

    code = "tenant_not_configured"


class JwksUnavailableError(UpstreamError):
    """The issuer's JWKS could not be fetched and no cached keys exist (never fails open)."""

    code = "jwks_unavailable"
