"""Submitting, reading, listing and cancelling jobs through the real API handler."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook

from modal_service.contracts import JobStarted
from tests.integration.lambda_proxy.conftest import Proxy

pytestmark = pytest.mark.stack


def test_submit_creates_a_queued_job_dispatched_to_the_internal_api(proxy: Proxy) -> None:
    body = proxy.body(output={"filename": "hello.mp4"})
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)

    assert answer.status == 202, answer.body
    created = answer.json()
    assert set(created) == {"job_id", "status", "estimated_time", "output_url"}
    assert created["status"] == "queued"
    assert created["output_url"] == (f"s3://{proxy.bucket}/{body['output']['s3_prefix']}/hello.mp4")
    job = proxy.services.jobs.get(created["job_id"])
    assert job.call_id is not None
    assert job.call_id.startswith("lc-")
    # The internal API really holds the call (queued, so "running").
    assert proxy.services.modal.get_job(job.call_id).state.value == "running"
    assert answer.headers["location"] == f"/jobs/{created['job_id']}"


def test_get_job_shows_status_and_never_secrets(proxy: Proxy) -> None:
    job_id = proxy.submit()
    answer = proxy.invoke("GET", f"/jobs/{job_id}", token=proxy.token(scopes=("videos:read",)))

    assert answer.status == 200
    view = answer.json()
    assert view["job_id"] == job_id
    assert view["status"] == "queued"
    assert view["progress"]["percent"] == 0
    assert view["speed"] == proxy.services.settings.default_speed
    for secret_field in ("callback_secret", "task_token", "call_id"):
        assert secret_field not in answer.body
    assert "whsec_" not in answer.body


def test_get_and_list_show_the_speed_profile_a_job_renders_with(proxy: Proxy) -> None:
    balanced = proxy.submit("globex", options={"speed": "balanced"})
    turbo = proxy.submit("globex", options={"turbo_mode": True})
    token = proxy.token("globex", scopes=("videos:read",))
    for job_id, speed in ((balanced, "balanced"), (turbo, "turbo")):
        assert proxy.invoke("GET", f"/jobs/{job_id}", token=token).json()["speed"] == speed
    listed = proxy.invoke("GET", "/jobs", token=token, query={"limit": "2"}).json()["jobs"]
    assert {job["job_id"]: job["speed"] for job in listed} == {turbo: "turbo", balanced: "balanced"}


def test_list_is_tenant_scoped_and_paginated(proxy: Proxy) -> None:
    mine = {proxy.submit("globex") for _ in range(3)}
    proxy.submit("acme")
    token = proxy.token("globex", scopes=("videos:read",))

    seen: list[str] = []
    next_token = None
    while True:
        query = {"limit": "2", **({"next_token": next_token} if next_token else {})}
        answer = proxy.invoke("GET", "/jobs", token=token, query=query)
        assert answer.status == 200, answer.body
        page = answer.json()
        assert len(page["jobs"]) <= 2
        seen += [job["job_id"] for job in page["jobs"]]
        next_token = page["next_token"]
        if not next_token:
            break
    assert mine <= set(seen)
    assert all(proxy.services.jobs.get(job_id).tenant_id == "globex" for job_id in seen)


def test_cursor_from_another_tenant_is_refused(proxy: Proxy) -> None:
    proxy.submit("acme")
    proxy.submit("acme")
    acme = proxy.invoke("GET", "/jobs", token=proxy.token("acme"), query={"limit": "1"}).json()
    assert acme["next_token"]
    answer = proxy.invoke(
        "GET", "/jobs", token=proxy.token("globex"), query={"next_token": acme["next_token"]}
    )
    assert answer.status == 422
    assert answer.json()["code"] == "cursor_invalid"


def test_cancel_settles_the_job_and_cancels_the_call(proxy: Proxy) -> None:
    job_id = proxy.submit()
    answer = proxy.invoke("DELETE", f"/jobs/{job_id}", token=proxy.token())

    assert answer.status == 200, answer.body
    assert answer.json()["status"] == "cancelled"
    job = proxy.services.jobs.get(job_id)
    assert job.status.value == "cancelled"
    assert proxy.services.modal.get_job(job.call_id).state.value == "cancelled"
    again = proxy.invoke("DELETE", f"/jobs/{job_id}", token=proxy.token())
    assert again.status == 409
    assert again.json()["code"] == "job_final"


@pytest.mark.fault("duplicate submissions (Idempotency-Key)")
def test_idempotent_retry_returns_the_same_job(proxy: Proxy) -> None:
    body = proxy.body()
    headers = {"Idempotency-Key": "retry-test-" + body["output"]["s3_prefix"][-8:]}
    first = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body, headers=headers)
    second = proxy.invoke(
        "POST", "/generate-video", token=proxy.token(), body=body, headers=headers
    )

    assert first.status == second.status == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    # The same key from another tenant is another submission entirely.
    other = proxy.invoke(
        "POST",
        "/generate-video",
        token=proxy.token("globex"),
        body=proxy.body("globex"),
        headers=headers,
    )
    assert other.status == 202
    assert other.json()["job_id"] != first.json()["job_id"]


def test_idempotency_key_reused_with_another_body_is_refused(proxy: Proxy) -> None:
    headers = {"Idempotency-Key": "reuse-" + proxy.body()["output"]["s3_prefix"][-8:]}
    first = proxy.invoke(
        "POST", "/generate-video", token=proxy.token(), body=proxy.body(), headers=headers
    )
    second = proxy.invoke(
        "POST", "/generate-video", token=proxy.token(), body=proxy.body(), headers=headers
    )

    assert first.status == 202
    assert second.status == 422
    assert second.json()["code"] == "idempotency_key_reused"


def test_health_and_openapi_are_public(proxy: Proxy) -> None:
    health = proxy.invoke("GET", "/health")
    assert health.status == 200
    assert health.json()["status"] == "ok"
    spec = proxy.invoke("GET", "/openapi.json")
    assert spec.status == 200
    paths = spec.json()["paths"]
    assert {"/generate-video", "/jobs", "/jobs/{job_id}", "/health"} <= set(paths)


def test_openapi_documents_bearer_auth_and_the_request_schema(proxy: Proxy) -> None:
    spec = proxy.invoke("GET", "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    post = spec["paths"]["/generate-video"]["post"]
    assert post["security"] == [{"bearer": []}]
    schema_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/GenerateVideoRequest")


def test_openapi_documents_the_speed_profiles(proxy: Proxy) -> None:
    schemas = proxy.invoke("GET", "/openapi.json").json()["components"]["schemas"]
    speed = schemas["OptionsSpec"]["properties"]["speed"]
    enum = next(option["enum"] for option in speed["anyOf"] if "enum" in option)
    assert enum == ["quality", "balanced", "turbo"]
    assert "deployment's default" in speed["description"]
    assert "speed=turbo" in schemas["OptionsSpec"]["properties"]["turbo_mode"]["description"]
    shown = schemas["JobView"]["properties"]["speed"]
    assert shown["enum"] == enum
    assert "speed" in schemas["JobView"]["required"]


def test_openapi_lists_every_input_code_and_the_result_notes(proxy: Proxy) -> None:
    schemas = proxy.invoke("GET", "/openapi.json").json()["components"]["schemas"]
    code = schemas["JobFailure"]["properties"]["code"]
    enum = next(option["enum"] for option in code["anyOf"] if "enum" in option)
    input_codes = {
        "audio_invalid",
        "audio_too_short",
        "audio_too_long",
        "audio_silent",
        "image_invalid",
        "image_too_small",
        "image_too_large",
        "unsupported_format",
        "decompression_bomb",
    }
    assert input_codes <= set(enum)
    result = schemas["JobResult"]["properties"]
    assert {"notes", "audio_durations_s"} <= set(result)
    assert {"gpu", "render_device", "gpu_seconds", "estimated_cost_usd"} <= set(result)
    assert set(schemas["GpuUsage"]["properties"]) == {
        "device_name",
        "device_count",
        "samples",
        "utilization_mean_pct",
        "utilization_p10_pct",
        "memory_peak_gb",
    }


def test_list_filters_by_status(proxy: Proxy) -> None:
    cancelled = proxy.submit("globex")
    proxy.invoke("DELETE", f"/jobs/{cancelled}", token=proxy.token("globex"))
    answer = proxy.invoke(
        "GET", "/jobs", token=proxy.token("globex"), query={"status": "cancelled", "limit": "100"}
    )
    assert answer.status == 200
    jobs = answer.json()["jobs"]
    assert cancelled in {job["job_id"] for job in jobs}
    assert {job["status"] for job in jobs} == {"cancelled"}
    bad = proxy.invoke("GET", "/jobs", token=proxy.token("globex"), query={"status": "exploded"})
    assert bad.status == 422


def test_callbacks_arrive_through_the_http_gateway(proxy: Proxy) -> None:
    """The route Terraform declares for Modal: real HTTP, a v2 event, the callback handler."""
    job_id = proxy.submit()
    secret = proxy.services.jobs.get(job_id).callback_secret
    body = JobStarted(job_id=job_id).model_dump_json()
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_via_gateway",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_via_gateway", now, body),
    }
    answer = httpx.post(f"{proxy.gateway_url}/callbacks/{job_id}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"applied": True, "status": "processing"}
    # The same gateway refuses the API without a token, as API Gateway + the Lambda do.
    assert httpx.get(f"{proxy.gateway_url}/jobs").status_code == 401
