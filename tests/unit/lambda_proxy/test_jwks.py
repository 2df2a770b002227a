"""The JWKS cache: TTL, unknown-kid cooldown, stale keys on failure, fail closed without keys."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aws.lambda_proxy.auth.exceptions import JwksUnavailableError, TokenInvalidError
from aws.lambda_proxy.auth.jwks import JwksCache
from aws.lambda_proxy.exceptions import ConfigurationError


def jwk(kid: str, *, use: str | None = "sig") -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    entry.update({"kid": kid, "alg": "RS256"})
    if use:
        entry["use"] = use
    return entry


class Issuer:
    """Serves a JWKS document that tests can rotate or break."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.down = False
        self.calls = 0

    def fetch(self, url: str, timeout: float) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise httpx.ConnectError("issuer down")
        return {"keys": self.keys}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(issuer: Issuer, clock: Clock) -> JwksCache:
    return JwksCache(
        "https://issuer.example/jwks", ttl_s=300, cooldown_s=30, fetch=issuer.fetch, clock=clock
    )


def test_keys_are_fetched_once_and_reused_within_the_ttl() -> None:
    issuer, clock = Issuer(jwk("a")), Clock()
    keys = cache(issuer, clock)
    assert keys.get("a").key_id == "a"
    clock.now += 200
    keys.get("a")
    assert issuer.calls == 1
    clock.now += 200
    keys.get("a")
    assert issuer.calls == 2


def test_unknown_kids_refetch_at_most_once_per_cooldown() -> None:
    issuer, clock = Issuer(jwk("a")), Clock()
    keys = cache(issuer, clock)
    keys.get("a")
    for index in range(50):
        clock.now += 0.1
        with pytest.raises(TokenInvalidError) as error:
            keys.get(f"random-{index}")
        assert error.value.code == "token_key_unknown"
    assert issuer.calls == 1  # the flood came within the cooldown of the last download
    clock.now += 31
    with pytest.raises(TokenInvalidError):
        keys.get("random-late")
    with pytest.raises(TokenInvalidError):
        keys.get("random-later")
    assert issuer.calls == 2  # one refetch once the cooldown passed, then quiet again


def test_a_rotated_key_is_found_after_the_cooldown() -> None:
    issuer, clock = Issuer(jwk("a")), Clock()
    keys = cache(issuer, clock)
    keys.get("a")
    issuer.keys.append(jwk("b"))
    clock.now += 31
    assert keys.get("b").key_id == "b"


def test_cached_keys_survive_an_issuer_outage_but_nothing_fails_open() -> None:
    issuer, clock = Issuer(jwk("a")), Clock()
    keys = cache(issuer, clock)
    keys.get("a")
    issuer.down = True
    clock.now += 400
    assert keys.get("a").key_id == "a"

    down = Issuer()
    down.down = True
    with pytest.raises(JwksUnavailableError):
        cache(down, Clock()).get("a")


def test_encryption_keys_and_unsupported_keys_are_ignored() -> None:
    ec_key = json.loads(
        jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    )
    ec_key.update({"kid": "ec", "alg": "ES256", "use": "sig"})
    issuer = Issuer(jwk("enc", use="enc"), ec_key)
    keys = cache(issuer, Clock())
    assert keys.get("ec").key_type == "EC"
    with pytest.raises(TokenInvalidError):
        keys.get("enc")


@pytest.mark.parametrize(
    "url", ["http://issuer.example/jwks", "ftp://issuer.example/jwks", "file:///etc/jwks"]
)
def test_jwks_url_must_be_https_unless_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError):
        JwksCache(url, ttl_s=300, cooldown_s=30)
    assert JwksCache("http://127.0.0.1:9000/jwks", ttl_s=300, cooldown_s=30)
