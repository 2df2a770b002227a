"""Who is calling: the tenant and scopes taken from a verified token (or a batch execution), and
the token's header and registered claims as the verifier accepts them.

The token models are strict on purpose: every value in a JWT is caller-controlled, so a claim of
the wrong JSON type (``"exp": "1700000000"``, ``"iss": {}``, ``"alg": ["RS256"]``) is refused as
malformed at this boundary instead of reaching code that assumes a string or a number.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aws.lambda_proxy.config import TENANT_PATTERN

SCOPE_READ = "videos:read"
SCOPE_WRITE = "videos:write"

MAX_NUMERIC_DATE = 253_402_300_799
"""9999-12-31T23:59:59Z: a later (or NaN, infinite, negative) date is no date any issuer means."""

NumericDate = Annotated[float, Field(ge=0, le=MAX_NUMERIC_DATE, allow_inf_nan=False)]
"""RFC 7519 NumericDate: seconds since the epoch, a JSON number (never a string or a boolean)."""

REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud")


class TenantContext(BaseModel):
    """The caller after authentication. Batch submissions build one from the execution input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(pattern=TENANT_PATTERN)
    subject: str = Field(default="", max_length=256)
    scopes: frozenset[str] = frozenset()


class JoseHeader(BaseModel):
    """The protected header of a compact JWS, before any key is looked up.

    Unknown members are ignored (RFC 7515 §4), but ``crit`` is refused whatever it lists: this
    verifier implements no extension, and a recipient must reject a token whose critical
    extensions it does not understand (§4.1.11). ``b64`` (RFC 7797, unencoded payloads) likewise.
    """

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    alg: str
    kid: str | None = None
    typ: str | None = None
    cty: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("crit" in data or "b64" in data):
            raise ValueError("critical header extensions are not supported")
        return data


class TokenClaims(BaseModel):
    """The registered claims the verifier reads, typed; other claims pass through untouched.

    Presence is checked before this model (a missing one is ``token_claim_missing``, not
    malformed); here a present claim of the wrong type fails, ``null`` included for the
    required ones.
    """

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    iss: str
    aud: str | list[str]
    exp: NumericDate
    nbf: NumericDate
    iat: NumericDate
    sub: str | None = None
    jti: str | None = None
    scope: str | None = None
    """OAuth 2.0 (RFC 8693 §4.2): space-separated scopes."""
    scp: str | list[str] | None = None
    """What some identity providers send instead: a list (Okta) or a space-separated string
    (Microsoft Entra ID)."""

    @property
    def audiences(self) -> list[str]:
        """``aud`` as a list; empty for ``""`` and ``[]``."""
        if isinstance(self.aud, str):
            return [self.aud] if self.aud else []
        return self.aud

    @property
    def scopes(self) -> frozenset[str]:
        """``scope`` when present, else ``scp``; never both merged."""
        if self.scope is not None:
            return frozenset(self.scope.split())
        if isinstance(self.scp, str):
            return frozenset(self.scp.split())
        return frozenset(self.scp or ())
