"""A development JWT issuer: key pairs in the state directory, a JWKS document, token minting.

It plays the part of the customer's identity provider (Cognito, Auth0, Okta …) so the proxy Lambda
verifies real RS256/ES256 signatures against a JWKS fetched over HTTP, exactly as in AWS.
The private keys never leave ``<state_dir>/jwt/`` (mode 0600).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

Algorithm = Literal["RS256", "ES256"]
_KEY_FILES: dict[Algorithm, str] = {"RS256": "rs256.pem", "ES256": "es256.pem"}
DEFAULT_LIFETIME_S = 3600


def _generate(algorithm: Algorithm) -> PrivateKeyTypes:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class DevIssuer:
    """Signing keys of the local identity provider, loaded from (or created in) ``key_dir``."""

    issuer: str
    keys: dict[Algorithm, PrivateKeyTypes]

    @classmethod
    def load(cls, key_dir: Path, issuer: str) -> DevIssuer:
        """Load the key pairs, creating them on first use."""
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys: dict[Algorithm, PrivateKeyTypes] = {}
        for algorithm, filename in _KEY_FILES.items():
            path = key_dir / filename
            if not path.exists():
                pem = _generate(algorithm).private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                path.touch(mode=0o600)
                path.write_bytes(pem)
            keys[algorithm] = serialization.load_pem_private_key(path.read_bytes(), password=None)
        return cls(issuer=issuer, keys=keys)

    @staticmethod
    def kid(algorithm: Algorithm) -> str:
        return f"local-{algorithm.lower()}"

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document (what ``/.well-known/jwks.json`` serves)."""
        entries = []
        for algorithm, key in self.keys.items():
            jwk_json = jwt.algorithms.get_default_algorithms()[algorithm].to_jwk(key.public_key())
            entry = json.loads(jwk_json)
            entry.update({"kid": self.kid(algorithm), "alg": algorithm, "use": "sig"})
            entries.append(entry)
        return {"keys": entries}

    def openid_configuration(self, jwks_url: str) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_url,
            "id_token_signing_alg_values_supported": sorted(self.keys),
        }

    def mint(
        self,
        *,
        audience: str,
        tenant_claim: str,
        tenant: str,
        scopes: Iterable[str],
        algorithm: Algorithm = "RS256",
        lifetime_s: int = DEFAULT_LIFETIME_S,
        **claims: Any,
    ) -> str:
        """Sign a token for ``tenant`` with ``scopes``; extra ``claims`` override the defaults."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": f"dev-user@{tenant}",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "jti": uuid.uuid4().hex,
            tenant_claim: tenant,
            "scope": " ".join(scopes),
        }
        payload.update(claims)
        return jwt.encode(
            payload,
            self.keys[algorithm],
            algorithm=algorithm,
            headers={"kid": self.kid(algorithm), "typ": "JWT"},
        )
