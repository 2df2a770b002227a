"""Every JWT failure class, scopes and tenants, through the real API handler and the dev issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from aws.lambda_proxy.observability import SERVICE
from scripts.local_stack.jwt_issuer import DevIssuer
from tests.integration.lambda_proxy.conftest import Proxy

pytestmark = pytest.mark.stack


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(proxy: Proxy, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {
        "iss": proxy.stack.issuer,
        "aud": proxy.stack.audience,
        "sub": "user@acme",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "tenant_id": "acme",
        "scope": "videos:read videos:write",
    }
    payload.update(overrides)
    return {name: value for name, value in payload.items() if value is not None}


def sign(
    proxy: Proxy, payload: dict[str, Any], *, algorithm: str = "RS256", kid: str | None = None
) -> str:
    issuer = DevIssuer.load(proxy.stack.state_dir / "jwt", issuer=proxy.stack.issuer)
    return jwt.encode(
        payload,
        issuer.keys[algorithm],  # type: ignore[index]
        algorithm=algorithm,
        headers={"kid": kid or DevIssuer.kid(algorithm), "typ": "JWT"},  # type: ignore[arg-type]
    )


def get_jobs(proxy: Proxy, token: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = proxy.invoke("GET", "/jobs", token=token)
    return answer.status, answer.json(), answer.headers


def test_valid_rs256_and_es256_tokens_are_accepted(proxy: Proxy) -> None:
    for algorithm in ("RS256", "ES256"):
        status, body, _ = get_jobs(proxy, sign(proxy, claims(proxy), algorithm=algorithm))
        assert status == 200, body


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        (
            {
                "exp": int(time.time()) - 3600,
                "iat": int(time.time()) - 7200,
                "nbf": int(time.time()) - 7200,
            },
            "token_expired",
        ),
        ({"nbf": int(time.time()) + 3600}, "token_not_yet_valid"),
        ({"iss": "https://issuer.evil.example/"}, "token_issuer_invalid"),
        ({"aud": "another-api"}, "token_audience_invalid"),
        ({"exp": None}, "token_claim_missing"),
        ({"iat": None}, "token_claim_missing"),
        ({"nbf": None}, "token_claim_missing"),
        ({"tenant_id": None}, "token_tenant_missing"),
        ({"tenant_id": "../globex"}, "token_tenant_missing"),
        (
            {"iat": int(time.time()) - 3 * 86400, "nbf": int(time.time()) - 3 * 86400},
            "token_too_old",
        ),
    ],
)
def test_claim_failures_are_401_with_stable_codes(
    proxy: Proxy, overrides: dict[str, Any], code: str
) -> None:
    status, body, headers = get_jobs(proxy, sign(proxy, claims(proxy, **overrides)))
    assert status == 401
    assert body["code"] == code
    assert headers["content-type"] == "application/problem+json"
    assert 'error="invalid_token"' in headers["www-authenticate"]


def test_alg_none_is_refused(proxy: Proxy) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "local-rs256"}).encode())
    payload = _b64(json.dumps(claims(proxy)).encode())
    status, body, _ = get_jobs(proxy, f"{header}.{payload}.")
    assert status == 401
    assert body["code"] == "token_algorithm_refused"


def test_hs256_signed_with_the_public_key_is_refused(proxy: Proxy) -> None:
    # The classic confusion attack: HMAC keyed with the issuer's public key (which anyone has).
    jwks = proxy.services.verifier.jwks.get("local-rs256")
    public_pem = jwks.key.public_bytes(
        encoding=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["x"]
        ).Encoding.PEM,
        format=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["x"]
        ).PublicFormat.SubjectPublicKeyInfo,
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "local-rs256"}).encode())
    payload = _b64(json.dumps(claims(proxy)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    status, body, _ = get_jobs(proxy, f"{header}.{payload}.{_b64(signature)}")
    assert status == 401
    assert body["code"] == "token_algorithm_refused"


def test_unknown_kid_is_refused_and_does_not_refetch_in_a_flood(proxy: Proxy) -> None:
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = proxy.services.verifier.jwks
    status, body, _ = get_jobs(
        proxy, jwt.encode(claims(proxy), rogue, algorithm="RS256", headers={"kid": "rogue-1"})
    )
    assert status == 401
    assert body["code"] == "token_key_unknown"
    fetches = jwks.fetch_count
    for index in range(20):
        token = jwt.encode(
            claims(proxy), rogue, algorithm="RS256", headers={"kid": f"rogue-{index + 2}"}
        )
        assert get_jobs(proxy, token)[1]["code"] == "token_key_unknown"
    # Twenty unknown kids within the cooldown cost at most one more download.
    assert jwks.fetch_count - fetches <= 1


def test_key_of_another_algorithm_is_refused(proxy: Proxy) -> None:
    # Signed by the real RS256 key but claiming the ES256 key id.
    token = sign(proxy, claims(proxy), algorithm="RS256", kid=DevIssuer.kid("ES256"))
    status, body, _ = get_jobs(proxy, token)
    assert status == 401
    assert body["code"] == "token_algorithm_refused"


def test_tampered_payload_fails_the_signature(proxy: Proxy) -> None:
    header, _, signature = sign(proxy, claims(proxy)).split(".")
    forged = _b64(json.dumps(claims(proxy, tenant_id="globex")).encode())
    status, body, _ = get_jobs(proxy, f"{header}.{forged}.{signature}")
    assert status == 401
    assert body["code"] == "token_signature_invalid"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "token_missing"),
        ("Basic dXNlcjpwYXNz", "token_malformed"),
        ("Bearer", "token_malformed"),
        ("Bearer not-a-jwt", "token_malformed"),
        ("Bearer " + "a" * 9000, "token_malformed"),
    ],
)
def test_missing_or_malformed_header_is_401(
    proxy: Proxy, authorization: str | None, code: str
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    answer = proxy.invoke("GET", "/jobs", headers=headers)
    assert answer.status == 401
    assert answer.json()["code"] == code


def test_missing_scope_is_403(proxy: Proxy) -> None:
    read_only = proxy.token(scopes=("videos:read",))
    answer = proxy.invoke("POST", "/generate-video", token=read_only, body=proxy.body())
    assert answer.status == 403
    assert answer.json()["code"] == "insufficient_scope"
    assert 'scope="videos:write"' in answer.headers["www-authenticate"]

    write_only = proxy.token(scopes=("videos:write",))
    answer = proxy.invoke("GET", "/jobs", token=write_only)
    assert answer.status == 403
    assert answer.json()["code"] == "insufficient_scope"


def test_unauthenticated_bad_body_gets_401_not_422(proxy: Proxy) -> None:
    answer = proxy.invoke("POST", "/generate-video", body={"nonsense": True})
    assert answer.status == 401


def test_tenant_without_configuration_is_403(proxy: Proxy) -> None:
    answer = proxy.invoke("GET", "/jobs", token=proxy.token("initech"))
    assert answer.status == 403
    assert answer.json()["code"] == "tenant_not_configured"


def test_tokens_never_reach_the_logs(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    # Our logger at its most verbose (botocore's own DEBUG wire logs are off in Lambda).
    caplog.set_level(logging.DEBUG, logger=SERVICE)
    good = proxy.token()
    bad = sign(proxy, claims(proxy, aud="another-api"))
    proxy.invoke("GET", "/jobs", token=good)
    proxy.invoke("GET", "/jobs", token=bad)
    proxy.invoke("POST", "/generate-video", token=good, body=proxy.body())
    # Every attribute of every record, so extras (powertools' structured keys) count too.
    output = "\n".join(str(r.__dict__) for r in caplog.records if r.name == SERVICE)
    assert "job created" in output  # the handlers did log
    for token in (good, bad):
        assert token not in output
        assert token.split(".")[2] not in output
    assert "X-Amz-Signature" not in output
    assert "whsec_" not in output
