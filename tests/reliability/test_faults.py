"""Faults of the running product, each ending in a defined state with nothing lost: a worker
killed mid-render, final callbacks that never arrive, the render service down at submission,
and a burst far beyond the API's throttle.

The reconciler is the scheduled Lambda; here it runs in this process with the environment
Terraform gives it, ``silent_job_s`` later than now (what the schedule would do after that wait).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aws.lambda_proxy.jobs.models import utc_now
from aws.lambda_proxy.reconcile.reconciler import ReconcileSummary, reconcile
from aws.lambda_proxy.services import get_services, set_services
from scripts.local_stack import StackInfo, product
from tests.integration.modal_service.support import ServerThread
from tests.reliability.conftest import problem_code
from tests.support import call_of, worker_processes

pytestmark = pytest.mark.stack
FINAL = {"succeeded", "failed", "cancelled"}
DENOISING = {"audio", "conditioning", "denoise"}


def wait_job(api: httpx.Client, job_id: str, done: Callable[[dict], bool], timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while not done(job := api.get(f"/jobs/{job_id}").json()):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def call_state(stack: StackInfo, internal_api_url: str, call_id: str) -> dict[str, Any]:
    token = json.loads((stack.state_dir / "secrets.json").read_text())["modal_proxy_token"]
    headers = {"Modal-Key": token["token_id"], "Modal-Secret": token["token_secret"]}
    return httpx.get(f"{internal_api_url}/v1/jobs/{call_id}", headers=headers, timeout=10).json()


def wait_call(stack: StackInfo, internal_api_url: str, call_id: str, state: str) -> dict:
    deadline = time.monotonic() + 120
    while (answer := call_state(stack, internal_api_url, call_id))["state"] != state:
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    return answer


def object_exists(stack: StackInfo, s3_url: str) -> bool:
    bucket, key = s3_url.removeprefix("s3://").split("/", 1)
    listed = stack.s3_client().list_objects_v2(Bucket=bucket, Prefix=key)
    return any(entry["Key"] == key for entry in listed.get("Contents", []))


@pytest.fixture
def reconcile_later(
    stack: StackInfo, running_product: product.ProductInfo, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], ReconcileSummary]]:
    environment = product.lambda_environment(
        stack, running_product.api_url, running_product.internal_api_url
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    set_services(None)

    def run() -> ReconcileSummary:
        services = get_services()
        later = utc_now() + timedelta(seconds=services.settings.silent_job_s + 60)
        return reconcile(services, now=later)

    yield run
    set_services(None)


def _body(audio: str, image: str, **options: Any) -> dict[str, Any]:
    return {
        "input": {"audio_s3_url": audio, "reference_image_s3_url": image},
        "output": {"s3_bucket": audio.split("/")[2], "s3_prefix": "tenants/acme/outputs/faults/"},
        "options": {"model": "tiny", "seed": 5, **options},
    }


@pytest.mark.fault("worker killed mid-render")
def test_a_worker_killed_mid_render_is_settled_by_the_reconciler(
    api: httpx.Client,
    stack: StackInfo,
    running_product: product.ProductInfo,
    upload: Callable[[str], str],
    reconcile_later: Callable[[], ReconcileSummary],
) -> None:
    # 7 clips of 100 steps: progress arrives at most every 5 s, so the kill must land well
    # before the render ends (under load, a 40-step render could finish and upload first).
    body = _body(upload("long.wav"), upload("portrait.png"), video_length=7, sample_steps=100)
    accepted = api.post("/generate-video", json=body)
    assert accepted.status_code == 202, accepted.text
    job_id, output_url = accepted.json()["job_id"], accepted.json()["output_url"]
    wait_job(
        api,
        job_id,
        lambda job: job["progress"].get("stage") in DENOISING and job["progress"]["percent"] < 50,
    )
    call_id = call_of(stack, job_id)
    ((pid, environment),) = worker_processes(call_id).items()

    os.kill(pid, signal.SIGKILL)  # no cleanup, no callback: what an OOM kill leaves
    ended = wait_call(stack, running_product.internal_api_url, call_id, "failed")
    assert api.get(f"/jobs/{job_id}").json()["status"] == "processing"  # nobody told AWS

    assert reconcile_later().silent_settled >= 1
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert (job["error"]["code"], job["error"]["retryable"]) == ("internal", True)
    assert job["error"]["code"] == ended["error"]["code"]
    assert not object_exists(stack, output_url)
    assert not Path(environment["MULTITALK_WORKER_TMP_DIR"]).exists()  # the runner cleaned up


def _swallow_everything() -> Any:
    """A callback endpoint that answers 200 and keeps nothing: callbacks lost after delivery."""

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.mark.fault("every callback lost")
def test_a_job_whose_callbacks_were_all_lost_is_settled_from_the_render_service(
    api: httpx.Client,
    stack: StackInfo,
    running_product: product.ProductInfo,
    upload: Callable[[str], str],
    reconcile_later: Callable[[], ReconcileSummary],
) -> None:
    black_hole = ServerThread(_swallow_everything()).start()
    try:
        gateway = product.start_gateway(
            stack, running_product, "lost-callbacks-gateway", {"CALLBACK_BASE_URL": black_hole.url}
        )
        accepted = httpx.post(
            f"{gateway}/generate-video",
            json=_body(upload("short.wav"), upload("portrait.png"), video_length=1),
            headers=api.headers,
            timeout=30,
        )
        assert accepted.status_code == 202, accepted.text
        job_id, output_url = accepted.json()["job_id"], accepted.json()["output_url"]
        done = wait_call(
            stack, running_product.internal_api_url, call_of(stack, job_id), "succeeded"
        )
    finally:
        black_hole.stop()
    assert api.get(f"/jobs/{job_id}").json()["status"] == "queued"  # not a word reached AWS
    assert object_exists(stack, output_url)

    reconcile_later()
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["result"]["sha256"] == done["result"]["sha256"]
    assert job["result"]["size_bytes"] == done["result"]["size_bytes"]


@pytest.mark.fault("render service down at submission")
def test_render_service_down_fails_the_job_at_once_and_writes_nothing(
    api: httpx.Client,
    stack: StackInfo,
    running_product: product.ProductInfo,
    upload: Callable[[str], str],
) -> None:
    gateway = product.start_gateway(
        stack, running_product, "modal-down-gateway", {"MODAL_API_URL": "http://127.0.0.1:9"}
    )
    refused = httpx.post(
        f"{gateway}/generate-video",
        json=_body(upload("short.wav"), upload("portrait.png")),
        headers=api.headers,
        timeout=60,
    )
    assert (refused.status_code, problem_code(refused)) == (503, "modal_unavailable")
    job = api.get(f"/jobs/{refused.json()['job_id']}").json()
    assert (job["status"], job["error"]["code"], job["error"]["retryable"]) == (
        "failed",
        "modal_unavailable",
        True,
    )
    assert not object_exists(stack, job["output_url"])


BURST = 200
CONCURRENCY = 20
THROTTLE = {"default": {"rate_limit": 1, "burst_limit": 50}, "routes": {}}


@pytest.mark.fault("burst beyond the throttle")
def test_a_burst_is_accepted_or_throttled_and_every_accepted_job_is_accounted_for(
    api: httpx.Client,
    stack: StackInfo,
    running_product: product.ProductInfo,
    upload: Callable[[str], str],
    record_property: Callable[[str, object], None],
) -> None:
    gateway = product.start_gateway(
        stack,
        running_product,
        "burst-gateway",
        {"LOCAL_GATEWAY_THROTTLING": json.dumps(THROTTLE)},
    )
    run = uuid.uuid4().hex[:8]
    body = _body(upload("short.wav"), upload("portrait.png"), video_length=1)
    body["output"]["s3_prefix"] = f"tenants/acme/outputs/burst-{run}/"

    with httpx.Client(base_url=gateway, headers=api.headers, timeout=60) as client:

        def submit(index: int) -> httpx.Response:
            return client.post(
                "/generate-video",
                json={**body, "output": {**body["output"], "filename": f"{index}.mp4"}},
            )

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            answers = list(pool.map(submit, range(BURST)))

    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {202, 429}, statuses
    assert statuses[202] >= THROTTLE["default"]["burst_limit"]
    assert statuses[429] > 0
    assert all(
        a.json() == {"message": "Too Many Requests"} for a in answers if a.status_code == 429
    )
    accepted = {answer.json()["job_id"] for answer in answers if answer.status_code == 202}
    assert len(accepted) == statuses[202]  # one job per accepted request, never two

    # Every accepted job is in the table, listed for its tenant, and nothing else was created.
    prefix = body["output"]["s3_prefix"]  # unique to this run
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=stack.tables["jobs"])
    stored = {
        item["job_id"]["S"]
        for page in pages
        for item in page["Items"]
        if prefix in item.get("doc", {}).get("S", "")
    }
    assert stored == accepted
    listed: set[str] = set()
    cursor: str | None = None
    while True:
        page = api.get("/jobs", params={"limit": 100, **({"next_token": cursor} if cursor else {})})
        listed |= {job["job_id"] for job in page.json()["jobs"]}
        if not (cursor := page.json().get("next_token")):
            break
    assert accepted <= listed

    # And each ends in a final state: cancelled here, or done if its render was that quick.
    for job_id in accepted:
        assert api.delete(f"/jobs/{job_id}").status_code in (200, 202, 409)
    finals = Counter(
        wait_job(api, job_id, lambda j: j["status"] in FINAL)["status"] for job_id in accepted
    )
    assert sum(finals.values()) == len(accepted)
    record_property(
        "burst",
        {
            "submitted": BURST,
            "concurrency": CONCURRENCY,
            "accepted": statuses[202],
            "throttled": statuses[429],
            "accounted": len(stored & listed),
        },
    )
