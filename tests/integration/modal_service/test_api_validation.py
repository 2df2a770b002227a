"""What the internal API refuses, over real HTTP: every refusal is a problem+json with a stable
code, and nothing refused ever reaches the runner."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from modal_service.api import create_app
from modal_service.config import ServiceSettings
from modal_service.contracts import CONTRACT_VERSION, CreateJobRequest, JobStatusResponse
from tests.integration.modal_service.support import ServerThread, job_request, new_secret

PROXY = {"Modal-Key": "wk-test", "Modal-Secret": "ws-test"}
SIGNED = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261125%2Fus-east-1"


class RecordingRunner:
    """Counts submissions; the validation tests assert it is never reached."""

    def __init__(self) -> None:
        self.submitted: list[CreateJobRequest] = []

    def submit(self, request: CreateJobRequest) -> str:
        self.submitted.append(request)
        return f"lc-{len(self.submitted)}"

    def status(self, call_id: str) -> JobStatusResponse:
        from modal_service.runner.base import CallNotFound

        raise CallNotFound(call_id)

    def cancel(self, call_id: str) -> JobStatusResponse:
        return self.status(call_id)

    def close(self) -> None:
        """Nothing held."""


def _serve(settings: ServiceSettings, runner: RecordingRunner) -> Iterator[httpx.Client]:
    server = ServerThread(create_app(settings, runner)).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


@pytest.fixture
def runner() -> RecordingRunner:
    return RecordingRunner()


@pytest.fixture
def local_api(runner: RecordingRunner) -> Iterator[httpx.Client]:
    settings = ServiceSettings(
        mode="local",
        local_proxy_key=PROXY["Modal-Key"],
        local_proxy_secret=PROXY["Modal-Secret"],
        max_body_bytes=16 * 1024,
    )
    yield from _serve(settings, runner)


@pytest.fixture
def modal_mode_api(runner: RecordingRunner) -> Iterator[httpx.Client]:
    yield from _serve(ServiceSettings(mode="modal"), runner)


def _body(base: str = "https://bucket.s3.us-east-1.amazonaws.com") -> dict[str, Any]:
    request = job_request(
        audio_urls=[f"{base}/tenants/acme/inputs/a.wav?{SIGNED}&X-Amz-Signature=ab"],
        image_url=f"{base}/tenants/acme/inputs/p.png?{SIGNED}&X-Amz-Signature=cd",
        put_url=f"{base}/tenants/acme/outputs/o.mp4?{SIGNED}&X-Amz-Signature=ef",
        callback_url="https://api.example.com/internal/callbacks",
        secret=new_secret(),
    )
    return request.model_dump(mode="json")


def test_health_is_open_and_says_how_the_service_runs(local_api: httpx.Client) -> None:
    answer = local_api.get("/v1/health")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "mode": "local",
        "runner": "local",
        "contract_version": CONTRACT_VERSION,
    }


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"Modal-Key": PROXY["Modal-Key"]}, id="key-only"),
        pytest.param({**PROXY, "Modal-Secret": "ws-wrong"}, id="wrong-secret"),
    ],
)
def test_proxy_auth_is_demanded_in_local_mode(
    headers: dict[str, str], local_api: httpx.Client, runner: RecordingRunner
) -> None:
    answer = local_api.post("/v1/jobs", json=_body(), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "unauthorized"
    assert local_api.get("/v1/jobs/lc-1", headers=headers).status_code == 401
    assert runner.submitted == []


def test_a_valid_job_is_accepted_at_once_with_a_call_id(
    local_api: httpx.Client, runner: RecordingRunner
) -> None:
    body = _body()
    answer = local_api.post("/v1/jobs", json=body, headers=PROXY)
    assert answer.status_code == 202
    assert answer.json() == {"job_id": body["job_id"], "call_id": "lc-1"}
    assert runner.submitted[0].job_id == body["job_id"]


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    target = changed
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(leaf)] = value
    else:
        target[leaf] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        ("inputs.audio_urls.0", "s3://bucket/tenants/acme/a.wav", "invalid_request"),
        ("inputs.image_url", "ftp://host/p.png", "invalid_request"),
        ("output.put_url", "http://s3.example.com/o.mp4?X-Amz-Signature=1", "url_refused"),
        ("callback.url", "http://10.0.0.5/callbacks", "url_refused"),
        ("inputs.image_url", "https://user:pass@host.example.com/p.png", "url_refused"),
        (
            "inputs.audio_urls.0",
            "https://host.example.com/a.wav?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE",
            "credentials_refused",
        ),
        ("params.prompt", "use aws_secret_access_key=abc to fetch it", "credentials_refused"),
        ("params.prompt", "key AKIAIOSFODNN7EXAMPLE", "credentials_refused"),
        ("params.prompt", "x" * 2001, "invalid_request"),
        ("params.resolution", "4k", "invalid_request"),
        ("params.sample_steps", 1000, "invalid_request"),
        ("inputs.max_audio_bytes", 10 * 1024**3, "invalid_request"),
        ("output.content_type", "text/html", "invalid_request"),
        ("callback.secret", "not-a-whsec-secret", "invalid_request"),
        ("job_id", "job_UPPERCASE", "invalid_request"),
        ("deadline", "2020-01-01T00:00:00Z", "deadline_passed"),
        ("deadline", "2030-01-01T00:00:00", "invalid_request"),
        ("unexpected", "field", "invalid_request"),
    ],
)
def test_bad_requests_are_refused_with_a_stable_code(
    path: str, value: Any, code: str, local_api: httpx.Client, runner: RecordingRunner
) -> None:
    answer = local_api.post("/v1/jobs", json=_set(_body(), path, value), headers=PROXY)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == code
    assert "X-Amz-Signature" not in answer.text  # refusals never echo a URL back
    assert runner.submitted == []


def test_a_deadline_too_far_ahead_is_refused(local_api: httpx.Client) -> None:
    far = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    answer = local_api.post("/v1/jobs", json=_set(_body(), "deadline", far), headers=PROXY)
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_request"


def test_plain_http_to_loopback_is_allowed_in_local_mode_only(
    local_api: httpx.Client, modal_mode_api: httpx.Client, runner: RecordingRunner
) -> None:
    body = _body(base="http://127.0.0.1:9000/multitalk-local-data")
    assert local_api.post("/v1/jobs", json=body, headers=PROXY).status_code == 202
    refused = modal_mode_api.post("/v1/jobs", json=body)
    assert refused.status_code == 422
    assert refused.json()["code"] == "url_refused"
    assert len(runner.submitted) == 1


def test_bodies_are_bounded_and_must_be_json(
    local_api: httpx.Client, runner: RecordingRunner
) -> None:
    padded = _set(_body(), "params.prompt", "")
    padded["padding"] = "x" * 20_000
    too_big = local_api.post("/v1/jobs", json=padded, headers=PROXY)
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(20):
            yield b" " * 1024

    streamed = local_api.post(
        "/v1/jobs", content=chunks(), headers={**PROXY, "content-type": "application/json"}
    )
    assert streamed.status_code == 413

    form = local_api.post("/v1/jobs", data={"job_id": "x"}, headers=PROXY)
    assert form.status_code == 415
    assert form.json()["code"] == "unsupported_media_type"
    assert runner.submitted == []


@pytest.mark.parametrize("call_id", ["lc-unknown", "a" * 129, "bad..id"])
def test_unknown_or_malformed_call_ids_are_not_found(call_id: str, local_api: httpx.Client) -> None:
    for method in ("GET", "DELETE"):
        answer = local_api.request(method, f"/v1/jobs/{call_id}", headers=PROXY)
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
