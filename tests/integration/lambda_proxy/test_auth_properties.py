"""No bearer token, however built, makes the API answer 5xx; malformed ones are ``token_malformed``.

Tokens go through the real API handler (``aws.lambda_proxy.handlers.api.handler``) with the
local stack's issuer, JWKS and tables, on every route: random garbage, JSON headers and payloads
of any shape, and structurally plausible JWTs signed with the stack's real keys, so they pass the
signature check and reach the claim checks. Hypothesis runs derandomized (the same examples on
every run) with no deadline: a slow 2-core machine must not turn into flaky failures.

Before the verifier validated the header and claims with models, these reached the handler as
uncaught exceptions (500): a ``crit`` header (pyjwt's ``InvalidTokenError``), a ``kid`` that is
not a string (the same), an ``alg`` that is a list or an object (``TypeError``: unhashable), an
``iat`` too large for a float (``OverflowError``) and a lone surrogate in the token
(``UnicodeEncodeError``). Others were accepted (``exp`` or ``nbf`` as a numeric string, an ``exp``
of 1e308) or refused with a misleading code (``iss`` as an object: ``token_issuer_invalid``,
``scope`` as a list: 403 ``insufficient_scope``, ``sub`` as a number: ``token_invalid``).
"""

from __future__ import annotations

import base64
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aws.lambda_proxy.auth.models import MAX_NUMERIC_DATE
from scripts.local_stack.jwt_issuer import Algorithm, DevIssuer
from tests.integration.lambda_proxy.conftest import Answer, Proxy

pytestmark = pytest.mark.stack

ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/jobs"),
    ("GET", "/jobs/job_0123456789abcdef"),
    ("DELETE", "/jobs/job_0123456789abcdef"),
    ("POST", "/generate-video"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
)
PUBLIC = frozenset({("GET", "/health"), ("GET", "/openapi.json")})
TOKEN_CODES = frozenset(
    {
        "token_missing",
        "token_malformed",
        "token_algorithm_refused",
        "token_type_refused",
        "token_key_unknown",
        "token_signature_invalid",
        "token_expired",
        "token_not_yet_valid",
        "token_too_old",
        "token_issuer_invalid",
        "token_audience_invalid",
        "token_claim_missing",
        "token_tenant_missing",
    }
)
FORBIDDEN_CODES = frozenset({"insufficient_scope", "tenant_not_configured"})
ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256")

# A few hundred examples in all, the same ones every run, however slow the machine.
PROPERTY = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- building tokens -------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def to_json(value: Any) -> bytes:
    # Python's json writes NaN and Infinity, which the verifier's json.loads reads back: the
    # non-finite numbers reach the claim checks as a buggy or hostile issuer could send them.
    return json.dumps(value).encode()


@functools.cache
def issuer(state_dir: Path, name: str) -> DevIssuer:
    return DevIssuer.load(state_dir / "jwt", issuer=name)


def signed(proxy: Proxy, header: bytes, payload: bytes, algorithm: Algorithm = "RS256") -> str:
    """A compact JWS over exactly these bytes, signed with the stack's real key (pyjwt's encode
    would refuse a header or payload that is not a dict)."""
    key = issuer(proxy.stack.state_dir, proxy.stack.issuer).keys[algorithm]
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = jwt.get_algorithm_by_name(algorithm).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def good_header(algorithm: Algorithm = "RS256") -> dict[str, Any]:
    return {"alg": algorithm, "typ": "JWT", "kid": DevIssuer.kid(algorithm)}


def good_claims(proxy: Proxy) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": proxy.stack.issuer,
        "aud": proxy.stack.audience,
        "sub": "user@acme",
        "jti": "jti-1",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        proxy.stack.tenant_claim: "acme",
        "scope": "videos:read videos:write",
    }


def token(
    proxy: Proxy,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    algorithm: Algorithm = "RS256",
) -> str:
    return signed(
        proxy,
        to_json(good_header(algorithm) if header is None else header),
        to_json(good_claims(proxy) if claims is None else claims),
        algorithm,
    )


# --- sending them ----------------------------------------------------------------------------


def everywhere(proxy: Proxy, authorization: str | None) -> dict[tuple[str, str], Answer]:
    headers = {} if authorization is None else {"authorization": authorization}
    return {
        (method, path): proxy.invoke(
            method, path, headers=headers, body={} if method == "POST" else None
        )
        for method, path in ROUTES
    }


def outcome(answer: Answer) -> str:
    """``"401 token_expired"``, ``"200"``: a label for Hypothesis' statistics."""
    if answer.headers.get("content-type") == "application/problem+json":
        return f"{answer.status} {answer.json().get('code')}"
    return str(answer.status)


def assert_no_server_error(answers: dict[tuple[str, str], Answer]) -> None:
    for route, answer in answers.items():
        assert answer.status < 500, (route, answer.body)
        if route in PUBLIC:
            assert answer.status == 200, (route, answer.body)
        elif answer.status == 401:
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] in TOKEN_CODES, answer.body
            assert answer.headers["www-authenticate"].startswith("Bearer ")
        elif answer.status == 403:
            assert answer.json()["code"] in FORBIDDEN_CODES, answer.body


def assert_refused(answers: dict[tuple[str, str], Answer], code: str) -> None:
    for route, answer in answers.items():
        if route in PUBLIC:
            assert answer.status == 200, (route, answer.body)
        else:
            assert (answer.status, answer.json()["code"]) == (401, code), (route, answer.body)
            assert f'error_description="{code}"' in answer.headers["www-authenticate"]


# --- strategies ------------------------------------------------------------------------------

BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([10**400, -(10**400), 2**63, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(["RS256", "ES256", "none", "HS256", "JWT", "local-rs256", "1700000000"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
segments = st.one_of(
    st.text(alphabet=BASE64URL, max_size=60),
    st.binary(max_size=60).map(b64),
    json_values.map(lambda value: b64(to_json(value))),
)
header_like = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(st.sampled_from([*ALGORITHMS, "local-rs256", "JWT"]), json_values)
        for name in ("alg", "kid", "typ", "crit", "b64")
    },
)
unsigned = st.tuples(header_like, json_values, st.binary(max_size=64)).map(
    lambda parts: f"Bearer {b64(to_json(parts[0]))}.{b64(to_json(parts[1]))}.{b64(parts[2])}"
)
any_text = st.text(st.characters(exclude_categories=()), max_size=120)  # surrogates included
garbage_authorization = st.one_of(
    st.none(),
    any_text,
    any_text.map(lambda text: f"Bearer {text}"),
    unsigned,
    st.text(alphabet=BASE64URL + ".=", max_size=200).map(lambda text: f"Bearer {text}"),
    st.lists(segments, min_size=1, max_size=4).map(lambda parts: "Bearer " + ".".join(parts)),
)


def _from_now(offset: float) -> float:
    return time.time() + offset


# Offsets are drawn and the clock is read only when the value is built: strategies whose bounds
# moved with the clock would differ between Hypothesis' runs of one example.
numeric_date_like = st.one_of(
    st.integers(min_value=-10 * 86400, max_value=10 * 86400).map(_from_now).map(int),
    st.floats(min_value=-86400.0, max_value=86400.0).map(_from_now),
    st.integers(min_value=-86400, max_value=86400).map(_from_now).map(int).map(str),
    json_values,
)
"""Times of every shape: plausible numbers (past, future, fractional) and wrong types."""


# Mostly kept, so that a good share of tokens get past the header and the signature and fail
# (or pass) only in the claim checks, where the most shapes are to be had.
MUTATION = st.sampled_from(["keep"] * 9 + ["drop", "replace"])
HEADER_FIELDS = ("alg", "kid", "typ", "cty", "crit", "b64", "jku", "x5t")


@st.composite
def plausible_tokens(draw: st.DrawFn, proxy: Proxy) -> str:
    """A JWT signed with a real key whose header members and claims are each kept, dropped or
    replaced (by a value of the right or the wrong type), or whose payload is not an object."""
    algorithm = draw(st.sampled_from(ALGORITHMS))
    header: dict[str, Any] = good_header(algorithm)
    for name in HEADER_FIELDS:
        action = draw(MUTATION)
        if action == "drop":
            header.pop(name, None)
        elif action == "replace":
            header[name] = draw(
                st.one_of(json_values, st.sampled_from([*ALGORITHMS, DevIssuer.kid("ES256")]))
            )
    claims = good_claims(proxy)
    plausible = {
        "iat": numeric_date_like,
        "nbf": numeric_date_like,
        "exp": numeric_date_like,
        "iss": st.one_of(st.just(proxy.stack.issuer), json_values),
        "aud": st.one_of(
            st.just([proxy.stack.audience, "other"]), st.just(proxy.stack.audience), json_values
        ),
        proxy.stack.tenant_claim: st.one_of(
            st.sampled_from(["acme", "globex", "../x"]), json_values
        ),
        "scope": st.one_of(st.sampled_from(["videos:read", "videos:write"]), json_values),
        "scp": st.one_of(st.just(["videos:read", "videos:write"]), json_values),
        "sub": json_values,
        "jti": json_values,
    }
    for name, values in plausible.items():
        action = draw(MUTATION)
        if action == "drop":
            claims.pop(name, None)
        elif action == "replace":
            claims[name] = draw(values)
    payload: Any = claims
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        payload = draw(json_values)
    return signed(proxy, to_json(header), to_json(payload), algorithm)


def is_numeric_date(value: Any) -> bool:
    """What the verifier accepts as a NumericDate (ints are compared exactly: 10**400 has no
    float, so math.isfinite would raise on it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return 0 <= value <= MAX_NUMERIC_DATE


def is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


WRONG_HEADER = {
    "alg": lambda value: not isinstance(value, str),
    "kid": lambda value: value is not None and not isinstance(value, str),
    "typ": lambda value: value is not None and not isinstance(value, str),
    "crit": lambda value: True,  # no extension is supported, whatever it lists
}
# A required claim that is present but null is of the wrong type; an optional one (and the
# tenant, which has its own code when absent) may be null.
WRONG_CLAIM = {
    "exp": lambda value: not is_numeric_date(value),
    "nbf": lambda value: not is_numeric_date(value),
    "iat": lambda value: not is_numeric_date(value),
    "iss": lambda value: not isinstance(value, str),
    "aud": lambda value: not isinstance(value, str) and not is_str_list(value),
    "sub": lambda value: value is not None and not isinstance(value, str),
    "jti": lambda value: value is not None and not isinstance(value, str),
    "scope": lambda value: value is not None and not isinstance(value, str),
    "scp": lambda value: (
        value is not None and not isinstance(value, str) and not is_str_list(value)
    ),
    "tenant": lambda value: value is not None and not isinstance(value, str),
}
wrong_time = st.one_of(
    json_values,
    st.integers(min_value=1_600_000_000, max_value=2_000_000_000).map(str),
    st.sampled_from([float("nan"), float("inf"), -1, 1e308, MAX_NUMERIC_DATE + 1, True]),
)


@st.composite
def one_wrong_member(draw: st.DrawFn, proxy: Proxy) -> str:
    """A token that is right in every respect but one header member or claim of a wrong type."""
    algorithm = draw(st.sampled_from(ALGORITHMS))
    header, claims = good_header(algorithm), good_claims(proxy)
    where = draw(st.sampled_from(["header", "claims"]))
    table = WRONG_HEADER if where == "header" else WRONG_CLAIM
    name = draw(st.sampled_from(sorted(table)))
    source = wrong_time if name in ("exp", "nbf", "iat") else json_values
    value = draw(source.filter(table[name]))
    if where == "header":
        header[name] = value
    else:
        claims[proxy.stack.tenant_claim if name == "tenant" else name] = value
    return signed(proxy, to_json(header), to_json(claims), algorithm)


# --- properties ------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_garbage_authorization_never_yields_a_5xx(proxy: Proxy, data: st.DataObject) -> None:
    authorization = data.draw(garbage_authorization, label="authorization")
    assert_no_server_error(everywhere(proxy, authorization))


@PROPERTY
@given(data=st.data())
def test_signed_tokens_of_any_shape_never_yield_a_5xx(proxy: Proxy, data: st.DataObject) -> None:
    bearer = data.draw(plausible_tokens(proxy), label="token")
    answers = everywhere(proxy, f"Bearer {bearer}")
    # Shown by --hypothesis-show-statistics: how far the tokens got (signature, claims, route).
    event(outcome(answers["GET", "/jobs"]))
    assert_no_server_error(answers)


@PROPERTY
@given(data=st.data())
def test_a_member_of_the_wrong_type_is_token_malformed(proxy: Proxy, data: st.DataObject) -> None:
    bearer = data.draw(one_wrong_member(proxy), label="token")
    assert_refused(everywhere(proxy, f"Bearer {bearer}"), "token_malformed")


# --- the classes found, spelled out ----------------------------------------------------------


def _header_cases(proxy: Proxy) -> dict[str, str]:
    claims = to_json(good_claims(proxy))
    return {
        "crit with an unknown extension": token(proxy, {**good_header(), "crit": ["exp"]}),
        "crit naming b64 without it": token(proxy, {**good_header(), "crit": ["b64"]}),
        # RFC 7797's detached form: an empty payload segment.
        "crit and b64 (unencoded payload)": (
            b64(to_json({**good_header(), "crit": ["b64"], "b64": False})) + "..c2ln"
        ),
        "kid a number": token(proxy, {**good_header(), "kid": 7}),
        "kid a list": token(proxy, {**good_header(), "kid": ["local-rs256"]}),
        "alg a list": token(proxy, {**good_header(), "alg": ["RS256"]}),
        "alg an object": token(proxy, {**good_header(), "alg": {"name": "RS256"}}),
        "alg a number": token(proxy, {**good_header(), "alg": 256}),
        "alg missing": token(proxy, {"typ": "JWT", "kid": "local-rs256"}),
        "typ a list": token(proxy, {**good_header(), "typ": ["JWT"]}),
        "header a JSON list": signed(proxy, b'["RS256"]', claims),
        "header not JSON": signed(proxy, b"\xff{", claims),
        "header not base64url": "!!!." + b64(claims) + ".c2ln",
        "lone surrogate in the token": "eyJ\ud800.e30.c2ln",
        "non-ASCII in the token": "eyJé.e30.c2ln",
    }


def _claim_cases(proxy: Proxy) -> dict[str, str]:
    now = int(time.time())
    good = good_claims(proxy)
    tenant = proxy.stack.tenant_claim
    return {
        "exp a numeric string": token(proxy, claims={**good, "exp": str(now + 600)}),
        "nbf a numeric string": token(proxy, claims={**good, "nbf": str(now)}),
        "iat a numeric string": token(proxy, claims={**good, "iat": str(now)}),
        "iat a list": token(proxy, claims={**good, "iat": [now]}),
        "iat NaN": token(proxy, claims={**good, "iat": float("nan")}),
        "iat beyond a float": token(proxy, claims={**good, "iat": -(10**400)}),
        "exp infinite": token(proxy, claims={**good, "exp": float("inf")}),
        "exp 1e308": token(proxy, claims={**good, "exp": 1e308}),
        "exp a boolean": token(proxy, claims={**good, "exp": True}),
        "exp null": token(proxy, claims={**good, "exp": None}),
        "iss null": token(proxy, claims={**good, "iss": None}),
        "exp negative": token(proxy, claims={**good, "exp": -1}),
        "iss an object": token(proxy, claims={**good, "iss": {"url": proxy.stack.issuer}}),
        "aud an object": token(proxy, claims={**good, "aud": {"a": proxy.stack.audience}}),
        "aud a list with a number": token(proxy, claims={**good, "aud": [1]}),
        "tenant a list": token(proxy, claims={**good, tenant: ["acme"]}),
        "tenant a number": token(proxy, claims={**good, tenant: 1}),
        "scope a list": token(proxy, claims={**good, "scope": ["videos:read"]}),
        "scp an object": token(proxy, claims={**good, "scope": None, "scp": {"a": 1}}),
        "sub a number": token(proxy, claims={**good, "sub": 1}),
        "jti an object": token(proxy, claims={**good, "jti": {}}),
        "payload a JSON list": signed(proxy, to_json(good_header()), b"[1, 2]"),
        "payload a JSON string": signed(proxy, to_json(good_header()), b'"claims"'),
        "payload not JSON": signed(proxy, to_json(good_header()), b"\xff\xfe"),
    }


HEADER_CASES = [
    "crit with an unknown extension",
    "crit naming b64 without it",
    "crit and b64 (unencoded payload)",
    "kid a number",
    "kid a list",
    "alg a list",
    "alg an object",
    "alg a number",
    "alg missing",
    "typ a list",
    "header a JSON list",
    "header not JSON",
    "header not base64url",
    "lone surrogate in the token",
    "non-ASCII in the token",
]
CLAIM_CASES = [
    "exp a numeric string",
    "nbf a numeric string",
    "iat a numeric string",
    "iat a list",
    "iat NaN",
    "iat beyond a float",
    "exp infinite",
    "exp 1e308",
    "exp a boolean",
    "exp null",
    "iss null",
    "exp negative",
    "iss an object",
    "aud an object",
    "aud a list with a number",
    "tenant a list",
    "tenant a number",
    "scope a list",
    "scp an object",
    "sub a number",
    "jti an object",
    "payload a JSON list",
    "payload a JSON string",
    "payload not JSON",
]


@pytest.mark.parametrize("case", HEADER_CASES)
def test_malformed_headers_are_token_malformed(proxy: Proxy, case: str) -> None:
    assert_refused(everywhere(proxy, f"Bearer {_header_cases(proxy)[case]}"), "token_malformed")


@pytest.mark.parametrize("case", CLAIM_CASES)
def test_malformed_claims_are_token_malformed(proxy: Proxy, case: str) -> None:
    assert_refused(everywhere(proxy, f"Bearer {_claim_cases(proxy)[case]}"), "token_malformed")


def test_case_tables_match_their_builders(proxy: Proxy) -> None:
    assert sorted(HEADER_CASES) == sorted(_header_cases(proxy))
    assert sorted(CLAIM_CASES) == sorted(_claim_cases(proxy))


# --- well-formed tokens keep working, and keep their codes -----------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_valid_token_works_on_every_route(proxy: Proxy, algorithm: Algorithm) -> None:
    bearer = token(proxy, good_header(algorithm), algorithm=algorithm)
    assert proxy.invoke("GET", "/jobs", token=bearer).status == 200
    job_id = proxy.submit()
    assert proxy.invoke("GET", f"/jobs/{job_id}", token=bearer).status == 200
    created = proxy.invoke("POST", "/generate-video", token=bearer, body=proxy.body())
    assert created.status == 202, created.body
    assert proxy.invoke("DELETE", f"/jobs/{created.json()['job_id']}", token=bearer).status < 300
    for method, path in PUBLIC:
        assert proxy.invoke(method, path, token=bearer).status == 200


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        ({"typ": "at+jwt"}, {}),
        ({"typ": "application/at+jwt", "x5t": "thumb", "jku": "https://ignored.example/"}, {}),
        ({"cty": "json"}, {}),
        ({}, {"exp": time.time() + 600.5, "iat": time.time() - 0.25, "nbf": time.time() - 1.5}),
        ({}, {"aud": ["another-api", "__AUDIENCE__"]}),
        ({}, {"scope": None, "scp": ["videos:read", "videos:write"]}),
        ({}, {"scope": None, "scp": "videos:read videos:write"}),
        ({}, {"sub": "x" * 1000, "custom": {"nested": [1, None]}}),
    ],
)
def test_well_formed_variants_are_accepted(
    proxy: Proxy, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    payload = {**good_claims(proxy), **claims}
    if payload.get("aud") == ["another-api", "__AUDIENCE__"]:
        payload["aud"] = ["another-api", proxy.stack.audience]
    payload = {name: value for name, value in payload.items() if value is not None}
    answer = proxy.invoke("GET", "/jobs", token=token(proxy, {**good_header(), **header}, payload))
    assert answer.status == 200, answer.body


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": -3600, "iat": -7200, "nbf": -7200}, "token_expired"),
        ({"nbf": 3600}, "token_not_yet_valid"),
        ({"iat": 3600}, "token_not_yet_valid"),
        ({"iat": -3 * 86400, "nbf": -3 * 86400}, "token_too_old"),
        ({"iss": "https://issuer.evil.example/"}, "token_issuer_invalid"),
        ({"aud": ["another-api"]}, "token_audience_invalid"),
        ({"aud": ""}, "token_claim_missing"),
        ({"aud": []}, "token_claim_missing"),
        ({"exp": None}, "token_claim_missing"),
        ({"aud": None}, "token_claim_missing"),
        ({"tenant": None}, "token_tenant_missing"),
        ({"tenant": "../globex"}, "token_tenant_missing"),
    ],
)
def test_well_formed_failures_keep_their_codes(
    proxy: Proxy, claims: dict[str, Any], code: str
) -> None:
    now = int(time.time())
    payload = good_claims(proxy)
    for name, value in claims.items():
        name = proxy.stack.tenant_claim if name == "tenant" else name
        if value is None:
            payload.pop(name)
        elif name in ("exp", "iat", "nbf"):
            payload[name] = now + value
        else:
            payload[name] = value
    answer = proxy.invoke("GET", "/jobs", token=token(proxy, claims=payload))
    assert (answer.status, answer.json()["code"]) == (401, code), answer.body
