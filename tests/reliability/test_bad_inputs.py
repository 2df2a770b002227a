"""Bad input at every boundary of the running product, over real HTTP: each is refused with its
stable code, and nothing is written to S3 or to the tables (:class:`Footprint`).

Boundaries: the public API (token, body, S3 locations and objects, job paths), the signed
callback route, the internal API behind Modal's proxy auth, a batch's input, and the media a
worker is handed (which fail the job, and write no output).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scripts import samples
from scripts.local_stack import StackInfo, product
from tests.integration.modal_service.support import job_request, new_secret
from tests.reliability.conftest import Footprint, problem_code

pytestmark = pytest.mark.stack


def _changed(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``a__b=value`` set at ``document["a"]["b"]``, for each change."""
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = document
        for part in parents:
            target = target[part]
        target[leaf] = value
    return document


@dataclass
class World:
    """Valid inputs, tokens and a settled job, made once; each case spoils one thing."""

    stack: StackInfo
    product: product.ProductInfo
    http: httpx.Client
    audio: str
    image: str
    globex_audio: str
    existing_output: str
    empty: str
    settled_job: str

    @property
    def bucket(self) -> str:
        return self.stack.buckets["data"]

    def token(self, tenant: str = "acme", scopes: tuple[str, ...] = ("videos:write",), **claims):
        return self.stack.mint_token(tenant, scopes, **claims)

    def body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "input": {"audio_s3_url": self.audio, "reference_image_s3_url": self.image},
            "output": {"s3_bucket": self.bucket, "s3_prefix": "tenants/acme/outputs/refused/"},
            "options": {"model": "tiny", "video_length": 1},
        }
        return _changed(body, changes)

    def submit(self, body: Any = None, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token()}", **kwargs.pop("headers", {})}
        if body is None:
            body = self.body()
        payload = {"content": body} if isinstance(body, str | bytes) else {"json": body}
        return self.http.post("/generate-video", headers=headers, **payload, **kwargs)

    def read(self, path: str, method: str = "GET") -> httpx.Response:
        token = self.token(scopes=("videos:read", "videos:write"))
        return self.http.request(method, path, headers={"Authorization": f"Bearer {token}"})

    def callback(self, headers: dict[str, str], job_id: str | None = None) -> httpx.Response:
        body = json.dumps({"type": "job.started", "job_id": job_id or self.settled_job})
        return self.http.post(
            f"/callbacks/{job_id or self.settled_job}",
            content=body,
            headers={"content-type": "application/json", **headers},
        )

    def internal(self, request: Any, auth: bool = True) -> httpx.Response:
        token = json.loads((self.stack.state_dir / "secrets.json").read_text())["modal_proxy_token"]
        headers = (
            {"Modal-Key": token["token_id"], "Modal-Secret": token["token_secret"]} if auth else {}
        )
        return httpx.post(
            f"{self.product.internal_api_url}/v1/jobs", json=request, headers=headers, timeout=10
        )

    def job_request(self, **changes: Any) -> dict[str, Any]:
        base = "https://bucket.s3.us-east-1.amazonaws.com/tenants/acme"
        signed = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab"
        request = job_request(
            audio_urls=[f"{base}/inputs/a.wav?{signed}"],
            image_url=f"{base}/inputs/p.png?{signed}",
            put_url=f"{base}/outputs/o.mp4?{signed}",
            callback_url=f"{self.product.api_url}/callbacks/job",
            secret=new_secret(),
        ).model_dump(mode="json")
        return _changed(request, changes)


@pytest.fixture(scope="module")
def world(
    stack: StackInfo, running_product: product.ProductInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    s3, bucket = stack.s3_client(), stack.buckets["data"]
    media = tmp_path_factory.mktemp("refusals")
    run = uuid.uuid4().hex[:8]

    def put(key: str, path_or_bytes: Any, content_type: str) -> str:
        body = path_or_bytes.read_bytes() if hasattr(path_or_bytes, "read_bytes") else path_or_bytes
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        return f"s3://{bucket}/{key}"

    wav = samples.write_speech_wav(media / "a.wav", duration_s=1.0)
    png = samples.draw_portrait(media / "p.png", size=(128, 128))
    audio = put(f"tenants/acme/inputs/refusals-{run}/a.wav", wav, "audio/wav")
    image = put(f"tenants/acme/inputs/refusals-{run}/p.png", png, "image/png")
    globex_audio = put(f"tenants/globex/inputs/refusals-{run}/a.wav", wav, "audio/wav")
    existing = put(f"tenants/acme/outputs/refused/taken-{run}.mp4", b"\x00" * 32, "video/mp4")
    empty = put(f"tenants/acme/inputs/refusals-{run}/empty.wav", b"", "audio/wav")
    # A job that exists, settled without rendering: submitted where the render service is down.
    down = product.start_gateway(
        stack, running_product, "refusals-gateway", {"MODAL_API_URL": "http://127.0.0.1:9"}
    )
    token = stack.mint_token("acme", ["videos:write"])
    settled = httpx.post(
        f"{down}/generate-video",
        json={
            "input": {"audio_s3_url": audio, "reference_image_s3_url": image},
            "output": {"s3_bucket": bucket, "s3_prefix": "tenants/acme/outputs/refused/"},
            "options": {"model": "tiny"},
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert problem_code(settled) == "modal_unavailable", settled.text
    settled_job = settled.json()["job_id"]
    with httpx.Client(base_url=running_product.api_url, timeout=30) as http:
        yield World(
            stack, running_product, http, audio, image, globex_audio, existing, empty, settled_job
        )


def _alg_none(world: World) -> str:
    claims = jwt.decode(world.token(), options={"verify_signature": False})
    header = json.dumps({"alg": "none", "typ": "JWT"}).encode()
    return f"{_b64(header)}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_public_key(world: World) -> str:
    """The classic key confusion: HMAC keyed with the issuer's public key."""
    jwks = httpx.get(world.stack.jwks_url, timeout=5).json()
    rsa_key = next(key for key in jwks["keys"] if key["kty"] == "RSA")
    public_pem = jwt.PyJWK(rsa_key).key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(world.token(), options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key["kid"]}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _foreign_key(world: World) -> str:
    """Same claims and kid, signed by a key the issuer never had."""
    claims = jwt.decode(world.token(), options={"verify_signature": False})
    kid = jwt.get_unverified_header(world.token())["kid"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, other, algorithm="RS256", headers={"kid": kid})


def _signed(world: World, *, secret: str | None = None, age_s: int = 0) -> dict[str, str]:
    message_id = f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()) - age_s)
    body = json.dumps({"type": "job.started", "job_id": world.settled_job})
    key = base64.b64decode((secret or new_secret()).removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


@dataclass(frozen=True)
class Case:
    boundary: str
    name: str
    send: Callable[[World], httpx.Response]
    status: int
    code: str


NOW = int(time.time())
FINAL = {"succeeded", "failed", "cancelled"}
TOKEN = "public API: token"
BODY = "public API: body"
S3 = "public API: S3 locations and objects"
PATHS = "public API: job paths"
CALLBACKS = "callback route"
INTERNAL = "internal API"

CASES = [
    Case(TOKEN, "no token", lambda w: w.http.post("/generate-video", json=w.body()), 401,
         "token_missing"),
    Case(TOKEN, "not a JWT", lambda w: w.submit(token="not-a-jwt"), 401, "token_malformed"),
    Case(TOKEN, "expired", lambda w: w.submit(token=w.token(exp=NOW - 600, iat=NOW - 1200,
                                                            nbf=NOW - 1200)),
         401, "token_expired"),
    Case(TOKEN, "not yet valid", lambda w: w.submit(token=w.token(nbf=NOW + 3600)), 401,
         "token_not_yet_valid"),
    Case(TOKEN, "wrong audience", lambda w: w.submit(token=w.token(aud="someone-else")), 401,
         "token_audience_invalid"),
    Case(TOKEN, "wrong issuer", lambda w: w.submit(token=w.token(iss="https://evil.example/")),
         401, "token_issuer_invalid"),
    Case(TOKEN, "alg none", lambda w: w.submit(token=_alg_none(w)), 401,
         "token_algorithm_refused"),
    Case(TOKEN, "HS256 keyed with the public key",
         lambda w: w.submit(token=_hs256_with_public_key(w)), 401, "token_algorithm_refused"),
    Case(TOKEN, "signed by another key", lambda w: w.submit(token=_foreign_key(w)), 401,
         "token_signature_invalid"),
    Case(TOKEN, "read scope only", lambda w: w.submit(token=w.token(scopes=("videos:read",))),
         403, "insufficient_scope"),
    Case(TOKEN, "tenant not configured", lambda w: w.submit(token=w.token(tenant="initech")),
         403, "tenant_not_configured"),
    Case(BODY, "not JSON", lambda w: w.submit("{not json"), 422, "request_invalid"),
    Case(BODY, "unknown field", lambda w: w.submit(w.body(extra=1)), 422, "request_invalid"),
    Case(BODY, "three speakers",
         lambda w: w.submit({**w.body(), "input": {"audio_s3_urls": [w.audio] * 3}}), 422,
         "request_invalid"),
    Case(BODY, "https audio URL",
         lambda w: w.submit(w.body(input__audio_s3_url="https://example.com/a.wav")), 422,
         "request_invalid"),
    Case(BODY, "resolution 1080p", lambda w: w.submit(w.body(options__resolution="1080p")), 422,
         "request_invalid"),
    Case(BODY, "filename escapes the prefix",
         lambda w: w.submit(w.body(output__filename="../../x.mp4")), 422, "request_invalid"),
    Case(BODY, "longer than the tenant may ask",
         lambda w: w.submit(w.body(options__video_length=90)), 422, "video_length_exceeded"),
    Case(BODY, "plain http webhook",
         lambda w: w.submit(w.body(options__webhook_url="http://hooks.example.com/x")), 422,
         "webhook_url_refused"),
    Case(BODY, "webhook to the metadata service",
         lambda w: w.submit(w.body(options__webhook_url="https://169.254.169.254/latest/")), 422,
         "webhook_url_refused"),
    Case(BODY, "body over the size limit",
         lambda w: w.submit(w.body(input__prompt="x" * 300_000)), 413, "body_too_large"),
    Case(BODY, "unusable Idempotency-Key",
         lambda w: w.submit(headers={"Idempotency-Key": "has spaces; not allowed"}), 422,
         "idempotency_key_invalid"),
    Case(S3, "path traversal in the audio URL",
         lambda w: w.submit(w.body(input__audio_s3_url=w.audio.replace("/inputs/",
                                                                       "/inputs/../../"))),
         422, "s3_url_invalid"),
    Case(S3, "another tenant's input",
         lambda w: w.submit(w.body(input__audio_s3_url=w.globex_audio)), 403,
         "s3_location_forbidden"),
    Case(S3, "another tenant's output prefix",
         lambda w: w.submit(w.body(output__s3_prefix="tenants/globex/outputs/")), 403,
         "s3_location_forbidden"),
    Case(S3, "a bucket the tenant has no location in",
         lambda w: w.submit(w.body(output__s3_bucket="someone-elses-bucket")), 403,
         "s3_location_forbidden"),
    Case(S3, "input that does not exist",
         lambda w: w.submit(w.body(input__audio_s3_url=w.audio.replace("a.wav", "gone.wav"))),
         422, "input_not_found"),
    Case(S3, "empty audio object", lambda w: w.submit(w.body(input__audio_s3_url=w.empty)), 422,
         "audio_invalid"),
    Case(S3, "image given as the audio",
         lambda w: w.submit(w.body(input__audio_s3_url=w.image)), 422, "unsupported_format"),
    Case(S3, "output that exists already",
         lambda w: w.submit(w.body(output__filename=w.existing_output.rsplit("/", 1)[1])), 409,
         "output_exists"),
    Case(PATHS, "unknown job", lambda w: w.read("/jobs/job_doesnotexist0000000000"), 404,
         "job_not_found"),
    Case(PATHS, "cancel an unknown job",
         lambda w: w.read("/jobs/job_doesnotexist0000000000", "DELETE"), 404, "job_not_found"),
    Case(PATHS, "forged list cursor", lambda w: w.read("/jobs?next_token=Zm9yZ2Vk"), 422,
         "cursor_invalid"),
    Case(PATHS, "page size out of range", lambda w: w.read("/jobs?limit=100000"), 422,
         "request_invalid"),
    Case(PATHS, "cancel a settled job", lambda w: w.read(f"/jobs/{w.settled_job}", "DELETE"),
         409, "job_final"),
    Case(CALLBACKS, "no signature headers", lambda w: w.callback({}), 401,
         "signature_headers_missing"),
    Case(CALLBACKS, "signed with another secret", lambda w: w.callback(_signed(w)), 401,
         "signature_invalid"),
    Case(CALLBACKS, "replayed an hour later", lambda w: w.callback(_signed(w, age_s=3600)), 401,
         "timestamp_out_of_tolerance"),
    Case(CALLBACKS, "for a job that does not exist",
         lambda w: w.callback(_signed(w), job_id="job_doesnotexist0000000000"), 404,
         "job_not_found"),
    Case(INTERNAL, "no proxy token", lambda w: w.internal(w.job_request(), auth=False), 401,
         "unauthorized"),
    Case(INTERNAL, "an s3:// URL",
         lambda w: w.internal(w.job_request(inputs__image_url="s3://bucket/p.png")), 422,
         "invalid_request"),
    Case(INTERNAL, "AWS credentials in the prompt",
         lambda w: w.internal(w.job_request(params__prompt="key AKIAIOSFODNN7EXAMPLE")), 422,
         "credentials_refused"),
    Case(INTERNAL, "callback to a private address",
         lambda w: w.internal(w.job_request(callback__url="http://10.0.0.5/callbacks")), 422,
         "url_refused"),
    Case(INTERNAL, "deadline already passed",
         lambda w: w.internal(w.job_request(deadline="2020-01-01T00:00:00Z")), 422,
         "deadline_passed"),
]  # fmt: skip


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.name, marks=pytest.mark.bad_input(c.boundary)) for c in CASES]
)
def test_refused_with_its_code_and_nothing_written(world: World, case: Case) -> None:
    before = Footprint.take(world.stack)
    response = case.send(world)
    assert (response.status_code, problem_code(response)) == (case.status, case.code), (
        response.text[:500]
    )
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == case.status
    assert problem.get("title") != "Internal error"
    assert Footprint.take(world.stack).added_since(before) == {}


BATCH_CASES = {
    "prefix and manifest both": (
        lambda w, run: {
            "source": {
                "prefix": f"s3://{w.bucket}/tenants/acme/inputs/",
                "manifest": f"s3://{w.bucket}/tenants/acme/inputs/m.jsonl",
            }
        },
        "batch_request_invalid",
    ),
    "another tenant's prefix": (
        lambda w, run: {"source": {"prefix": f"s3://{w.bucket}/tenants/globex/inputs/"}},
        "s3_location_forbidden",
    ),
    "a prefix with no audio": (
        lambda w, run: {"source": {"prefix": f"s3://{w.bucket}/tenants/acme/inputs/none-{run}/"}},
        "batch_empty",
    ),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.bad_input("batch input")) for n in BATCH_CASES],
)
def test_a_bad_batch_fails_with_its_code_and_submits_nothing(world: World, name: str) -> None:
    spoil, code = BATCH_CASES[name]
    run = uuid.uuid4().hex[:8]
    request = {
        "tenant_id": "acme",
        "output": {"s3_bucket": world.bucket, "s3_prefix": f"tenants/acme/outputs/batch-{run}/"},
        **spoil(world, run),
    }
    sfn = world.stack.client("stepfunctions")
    before = Footprint.take(world.stack)
    execution = sfn.start_execution(
        stateMachineArn=world.product.state_machine_arn,
        name=f"refused-{run}",
        input=json.dumps(request),
    )["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the batch did not end"
        time.sleep(0.5)

    assert (described["status"], described.get("error")) == ("FAILED", code), described
    added = Footprint.take(world.stack).added_since(before)
    assert set(added) <= {"objects"}, added  # no job, no idempotency record
    # The batch's own report may be written; nothing else.
    assert all(key.startswith(f"batch-results/refused-{run}/") for key in added.get("objects", []))


def _empty_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
    return buffer.getvalue()


MEDIA_CASES = {
    "audio that is not audio": ("audio", b"RIFF\x24\x00\x00\x00WAVEjunk", "audio_invalid"),
    "a WAV with no samples": ("audio", _empty_wav(), "audio_invalid"),
    "image that is not an image": ("image", b"\x89PNG\r\n\x1a\n broken", "image_invalid"),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.bad_input("worker media")) for n in MEDIA_CASES],
)
def test_bad_media_fails_the_job_with_its_code_and_writes_no_output(
    world: World, name: str
) -> None:
    """These pass every check the AWS side can make (location, size, content type): the worker
    finds them out, fails the job with a stable code and writes no output."""
    which, payload, code = MEDIA_CASES[name]
    run = uuid.uuid4().hex[:8]
    content_type = "audio/wav" if which == "audio" else "image/png"
    suffix = "wav" if which == "audio" else "png"
    key = f"tenants/acme/inputs/refusals-{run}/bad.{suffix}"
    world.stack.s3_client().put_object(
        Bucket=world.bucket, Key=key, Body=payload, ContentType=content_type
    )
    url = f"s3://{world.bucket}/{key}"
    field = "input__audio_s3_url" if which == "audio" else "input__reference_image_s3_url"
    before = Footprint.take(world.stack)
    accepted = world.submit(world.body(**{field: url}))
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + 120
    while (job := world.read(f"/jobs/{job_id}").json())["status"] not in FINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.3)

    assert (job["status"], job["error"]["code"]) == ("failed", code), job
    added = Footprint.take(world.stack).added_since(before)
    assert added.get("jobs") == [job_id]
    assert added.get("objects", []) == []  # no output, partial or whole
