"""The internal API over real HTTP, with the local runner's real worker subprocesses.

This is the local stand-in for the Modal deployment: the same FastAPI app, proxy-auth headers
checked, jobs run by ``python -m modal_service.worker`` processes whose environment holds no
AWS variable, reading and writing the strict local S3 through pre-signed URLs only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modal_service.api import create_app
from modal_service.config import ServiceSettings
from modal_service.contracts import ErrorCode
from modal_service.runner.local import LocalRunner
from scripts.samples import write_speech_wav
from tests.integration.modal_service.support import (
    CallbackReceiver,
    FaultyInputs,
    S3Objects,
    ServerThread,
    job_request,
)

pytestmark = pytest.mark.stack

PROXY = {"Modal-Key": "wk-local-test", "Modal-Secret": "ws-local-test"}
RENDER_STAGES = {"audio", "conditioning", "denoise", "encode"}


@pytest.fixture
def runner(work_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRunner]:
    # The API process has AWS credentials in its environment (as the developer's shell may);
    # the runner must keep every one of them away from the workers.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "example-session-token")
    local = LocalRunner(
        max_workers=1,
        kill_grace_s=10.0,
        worker_env={
            "MULTITALK_WORKER_TMP_DIR": str(work_dir),
            "MULTITALK_TRANSFER_ATTEMPTS": "2",
            "MULTITALK_TRANSFER_BACKOFF": "0.05",
            "MULTITALK_READ_TIMEOUT": "1",
            "MULTITALK_PROGRESS_EVERY": "0.2",
            "MULTITALK_CALLBACK_INITIAL_DELAY": "0.1",
            "MULTITALK_CALLBACK_MAX_DELAY": "0.5",
        },
    )
    yield local
    local.close()


@pytest.fixture
def api(runner: LocalRunner) -> Iterator[httpx.Client]:
    settings = ServiceSettings(
        mode="local", local_proxy_key=PROXY["Modal-Key"], local_proxy_secret=PROXY["Modal-Secret"]
    )
    server = ServerThread(create_app(settings, runner)).start()
    with httpx.Client(base_url=server.url, headers=PROXY, timeout=30) as client:
        yield client
    server.stop()


def _wait_final(api: httpx.Client, call_id: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = api.get(f"/v1/jobs/{call_id}")
        assert answer.status_code == 200
        if answer.json()["state"] != "running":
            return dict(answer.json())
        time.sleep(0.2)
    raise AssertionError(f"call {call_id} still running after {timeout_s} s")


def _worker_environment(runner: LocalRunner, call_id: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while (pid := runner.worker_pid(call_id)) is None:
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.02)
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode(errors="replace") for key, value in pairs}


def test_a_job_through_the_api_runs_in_an_aws_free_worker_and_lands_in_s3(
    api: httpx.Client,
    runner: LocalRunner,
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    work_dir: Path,
) -> None:
    out_key = f"{objects.prefix}/out.mp4"
    request = job_request(
        audio_urls=[objects.get_url(objects.put("speech.wav", media[0]))],
        image_url=objects.get_url(objects.put("portrait.png", media[1])),
        put_url=objects.put_url(out_key),
        callback_url=receiver.url,
        secret=secret,
    )
    answer = api.post("/v1/jobs", json=request.model_dump(mode="json"))
    assert answer.status_code == 202, answer.text
    call_id = answer.json()["call_id"]
    assert answer.json()["job_id"] == request.job_id

    environment = _worker_environment(runner, call_id)
    assert not [name for name in environment if name.upper().startswith("AWS_")]
    assert environment["MODAL_SERVICE_MODE"] == "local"

    status = _wait_final(api, call_id)
    assert status["state"] == "succeeded", status
    final = receiver.wait_final()
    assert final.type == "job.succeeded"
    assert final.result.model_dump(mode="json") == status["result"]
    assert receiver.events[0].call_id == call_id
    assert receiver.bad_signatures == 0
    body, content_type = objects.read(out_key)
    assert content_type == "video/mp4"
    assert len(body) == status["result"]["size_bytes"]
    assert list(work_dir.iterdir()) == []


def test_cancel_mid_render_terminates_the_worker_and_reports_cancelled(
    api: httpx.Client,
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    work_dir: Path,
    tmp_path: Path,
) -> None:
    longer = write_speech_wav(tmp_path / "longer.wav", duration_s=2.0).read_bytes()
    out_key = f"{objects.prefix}/out.mp4"
    request = job_request(
        audio_urls=[objects.get_url(objects.put("speech.wav", longer))],
        image_url=objects.get_url(objects.put("portrait.png", media[1])),
        put_url=objects.put_url(out_key),
        callback_url=receiver.url,
        secret=secret,
        max_duration_s=2.0,
    )
    body = request.model_dump(mode="json")
    body["params"]["sample_steps"] = 100
    call_id = api.post("/v1/jobs", json=body).json()["call_id"]

    deadline = time.monotonic() + 120
    while not {e.stage for e in receiver.events if e.type == "job.progress"} & RENDER_STAGES:
        assert time.monotonic() < deadline, f"the render never started: {receiver.types()}"
        time.sleep(0.05)
    answer = api.delete(f"/v1/jobs/{call_id}")
    assert answer.status_code == 202
    assert answer.json()["state"] == "cancelled"

    status = _wait_final(api, call_id, timeout_s=60)
    assert status["state"] == "cancelled"
    final = receiver.wait_final()
    assert final.error.code == ErrorCode.CANCELLED
    assert not objects.exists(out_key)
    assert list(work_dir.iterdir()) == []
    # Cancelling again changes nothing.
    assert api.delete(f"/v1/jobs/{call_id}").json()["state"] == "cancelled"


def test_jobs_beyond_the_concurrency_limit_wait_and_a_queued_one_can_be_cancelled(
    api: httpx.Client,
    runner: LocalRunner,
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
) -> None:
    faulty = FaultyInputs(media[0])
    faulty.server.start()
    try:
        # The first job stalls on its input for a few seconds; the second waits behind it.
        first, second = (
            job_request(
                audio_urls=[faulty.url("/stall")],
                image_url=objects.get_url(objects.put("p.png", media[1])),
                put_url=objects.put_url(f"{objects.prefix}/out-{n}.mp4"),
                callback_url=receiver.url,
                secret=secret,
            )
            for n in (1, 2)
        )
        first_call = api.post("/v1/jobs", json=first.model_dump(mode="json")).json()["call_id"]
        retried = api.post("/v1/jobs", json=first.model_dump(mode="json"))  # a lost answer
        assert retried.status_code == 202
        assert retried.json()["call_id"] == first_call
        second_call = api.post("/v1/jobs", json=second.model_dump(mode="json")).json()["call_id"]
        _worker_environment(runner, first_call)  # the first one is running
        assert runner.worker_pid(second_call) is None
        assert api.get(f"/v1/jobs/{second_call}").json()["state"] == "running"
        assert api.delete(f"/v1/jobs/{second_call}").json()["state"] == "cancelled"

        status = _wait_final(api, first_call, timeout_s=60)
    finally:
        faulty.server.stop()
    assert status["state"] == "failed"
    assert status["error"]["code"] == "input_unreadable"
    assert api.get(f"/v1/jobs/{second_call}").json()["state"] == "cancelled"
    assert runner.worker_pid(second_call) is None
    assert {e.job_id for e in receiver.events} == {first.job_id}  # the second never ran
