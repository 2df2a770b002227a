"""Signed callbacks from the GPU side through the real callback handler: progress, results,
URL refresh, duplicates, forgeries, final states, caller webhooks and batch task tokens."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from aws.lambda_proxy.api.models import GenerateVideoRequest
from aws.lambda_proxy.auth.models import TenantContext
from aws.lambda_proxy.callbacks.verify import verify_signature
from aws.lambda_proxy.handlers import callbacks as handler_module
from aws.lambda_proxy.handlers import reconciler
from aws.lambda_proxy.jobs.exceptions import SubmitError
from aws.lambda_proxy.jobs.models import BatchItem, JobFailure, JobStatus, iso, utc_now
from aws.lambda_proxy.jobs.submit import submit_job
from aws.lambda_proxy.observability import SERVICE
from modal_service.contracts import (
    ErrorCode,
    GpuUsage,
    JobError,
    JobFailed,
    JobProgress,
    JobResult,
    JobStarted,
    JobSucceeded,
    UrlRefreshRequested,
    UrlRefreshResponse,
)
from scripts.local_stack.gateway import LambdaContext
from tests.integration.lambda_proxy.conftest import WAV, Proxy, to_answer
from tests.integration.lambda_proxy.events import callback_event, scheduler_event

pytestmark = pytest.mark.stack

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200


def result(size: int = len(MP4)) -> JobResult:
    return JobResult(
        size_bytes=size,
        sha256=hashlib.sha256(MP4).hexdigest(),
        duration_s=5.0,
        frames=125,
        fps=25.0,
        width=480,
        height=480,
        model="tiny",
        timings_s={"render": 1.5},
    )


def refresh(proxy: Proxy, job_id: str) -> UrlRefreshResponse:
    answer = proxy.callback(job_id, UrlRefreshRequested(job_id=job_id))
    assert answer.status == 200, answer.body
    return UrlRefreshResponse.model_validate_json(answer.body)


def upload_output(proxy: Proxy, job_id: str) -> None:
    """Play the worker: PUT the MP4 through the pre-signed URL, as the GPU side does."""
    output = refresh(proxy, job_id).output
    answer = httpx.put(output.put_url, content=MP4, headers={"Content-Type": output.content_type})
    assert answer.status_code == 200, answer.text


def tenant_secret(proxy: Proxy, tenant: str = "acme") -> str:
    secrets = json.loads((proxy.stack.state_dir / "secrets.json").read_text())
    return secrets["tenant_webhook_secrets"][tenant]


def test_progress_then_success_settles_and_notifies_the_caller(proxy: Proxy) -> None:
    hook = f"{proxy.receiver.base_url}/hooks/{uuid.uuid4().hex}"
    job_id = proxy.submit(options={"webhook_url": hook})
    call_id = proxy.services.jobs.get(job_id).call_id

    assert proxy.callback(job_id, JobStarted(job_id=job_id, call_id=call_id)).status == 200
    progress = JobProgress(
        job_id=job_id, stage="denoise", step=5, total=10, percent=50.0, remaining_s=42.5
    )
    assert proxy.callback(job_id, progress).json() == {"applied": True, "status": "processing"}
    view = proxy.invoke("GET", f"/jobs/{job_id}", token=proxy.token()).json()
    assert view["status"] == "processing"
    assert view["progress"] == {
        "stage": "denoise",
        "percent": 50.0,
        "step": 5,
        "total": 10,
        "remaining_s": 42.5,
    }
    assert view["started_at"] is not None

    upload_output(proxy, job_id)
    answer = proxy.callback(job_id, JobSucceeded(job_id=job_id, result=result()))
    assert answer.json() == {"applied": True, "status": "succeeded"}

    view = proxy.invoke("GET", f"/jobs/{job_id}", token=proxy.token()).json()
    assert view["status"] == "succeeded"
    assert view["result"]["sha256"] == hashlib.sha256(MP4).hexdigest()
    assert view["progress"]["percent"] == 100
    assert view["webhook_delivery"]["state"] == "delivered"

    (delivered,) = proxy.receiver.for_job(job_id)
    assert delivered.path.startswith("/hooks/")
    message = delivered.json()
    assert message["type"] == "job.succeeded"
    assert message["data"]["output_url"] == view["output_url"]
    # Signed with the tenant's secret, verifiable by the caller with the standard library.
    Webhook(tenant_secret(proxy)).verify(delivered.body, delivered.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(tenant_secret(proxy, "globex")).verify(delivered.body, delivered.headers)


def emitted_metrics(out: str) -> list[dict[str, Any]]:
    """The EMF records printed (what CloudWatch Logs turns into metrics in Lambda)."""
    records = []
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            records.append(record)
    return records


def gpu_records(out: str) -> list[dict[str, Any]]:
    return [record for record in emitted_metrics(out) if "GpuSeconds" in record]


ON_A_GPU = JobResult.model_validate(
    {
        **result().model_dump(),
        "model": "multitalk-14b",
        "timings_s": {"render_s": 90.0},
        "gpu": GpuUsage(
            device_name="NVIDIA H200",
            device_count=2,
            samples=90,
            utilization_mean_pct=87.5,
            utilization_p10_pct=40.0,
            memory_peak_gb=71.25,
        ),
        "render_device": "NVIDIA H200",
        "gpu_seconds": 180.0,
        "estimated_cost_usd": 0.2,
    }
)


def test_a_success_shows_its_gpu_figures_and_records_them_as_metrics_once(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the fixture turns them off
    job_id = proxy.submit(options={"model": "multitalk-14b"})
    upload_output(proxy, job_id)
    capsys.readouterr()
    answer = proxy.callback(job_id, JobSucceeded(job_id=job_id, result=ON_A_GPU))
    assert answer.json() == {"applied": True, "status": "succeeded"}

    (record,) = gpu_records(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"], ["service", "model"]]
    assert (record["service"], record["model"]) == (SERVICE, "multitalk-14b")
    assert {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]} == {
        "GpuUtilizationMean": "Percent",
        "GpuMemoryPeakGb": "Gigabytes",
        "GpuSeconds": "Seconds",
        "EstimatedCostUsd": "None",
    }
    # Powertools writes each value as a list of the values added in the record: one job, one.
    assert (record["GpuUtilizationMean"], record["GpuMemoryPeakGb"]) == ([87.5], [71.25])
    assert (record["GpuSeconds"], record["EstimatedCostUsd"]) == ([180.0], [0.2])
    assert job_id not in json.dumps(record)  # one metric per job would be unbounded

    view = proxy.invoke("GET", f"/jobs/{job_id}", token=proxy.token()).json()
    assert view["result"]["gpu"] == ON_A_GPU.gpu.model_dump(mode="json")
    assert view["result"]["render_device"] == "NVIDIA H200"
    assert (view["result"]["gpu_seconds"], view["result"]["estimated_cost_usd"]) == (180.0, 0.2)

    # The same success again (a worker retry with a new webhook-id) changes and counts nothing.
    again = proxy.callback(job_id, JobSucceeded(job_id=job_id, result=ON_A_GPU))
    assert again.json() == {"applied": False, "status": "succeeded"}
    assert gpu_records(capsys.readouterr().out) == []


def test_a_cpu_render_records_zero_gpu_seconds_and_no_utilisation(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    job_id = proxy.submit()
    upload_output(proxy, job_id)
    on_the_cpu = JobResult.model_validate(
        {
            **result().model_dump(),
            "render_device": "cpu",
            "gpu_seconds": 0.0,
            "estimated_cost_usd": 0.0,
        }
    )
    capsys.readouterr()
    assert proxy.callback(job_id, JobSucceeded(job_id=job_id, result=on_the_cpu)).status == 200

    (record,) = gpu_records(capsys.readouterr().out)
    names = {metric["Name"] for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    # No utilisation reading, so nothing that could drag the low-utilisation alarm down.
    assert names == {"GpuSeconds", "EstimatedCostUsd"}
    assert (record["model"], record["GpuSeconds"], record["EstimatedCostUsd"]) == (
        "tiny",
        [0.0],
        [0.0],
    )
    view = proxy.invoke("GET", f"/jobs/{job_id}", token=proxy.token()).json()
    assert view["result"]["gpu"] is None
    assert view["result"]["render_device"] == "cpu"


@pytest.mark.fault("success reported without the object in S3")
def test_success_without_the_object_in_s3_fails_the_job(proxy: Proxy) -> None:
    job_id = proxy.submit()
    answer = proxy.callback(job_id, JobSucceeded(job_id=job_id, result=result()))
    assert answer.json() == {"applied": True, "status": "failed"}
    error = proxy.services.jobs.get(job_id).error
    assert error is not None
    assert error.code == "output_missing"


def test_failure_is_recorded_with_the_worker_code(proxy: Proxy) -> None:
    job_id = proxy.submit()
    error = JobError(code=ErrorCode.AUDIO_INVALID, message="not a WAV file", retryable=False)
    assert proxy.callback(job_id, JobFailed(job_id=job_id, error=error)).status == 200
    view = proxy.invoke("GET", f"/jobs/{job_id}", token=proxy.token()).json()
    assert view["status"] == "failed"
    assert view["error"] == {
        "code": "audio_invalid",
        "message": "not a WAV file",
        "retryable": False,
    }


@pytest.mark.fault("late callbacks after a final state")
def test_final_state_never_regresses(proxy: Proxy) -> None:
    hook = f"{proxy.receiver.base_url}/hooks/final"
    job_id = proxy.submit(options={"webhook_url": hook})
    error = JobError(code=ErrorCode.INTERNAL, message="boom", retryable=True)
    assert proxy.callback(job_id, JobFailed(job_id=job_id, error=error)).json()["applied"]

    late = [
        JobStarted(job_id=job_id),
        JobProgress(job_id=job_id, stage="encode", step=1, total=1, percent=99.0),
        JobSucceeded(job_id=job_id, result=result()),
        JobFailed(
            job_id=job_id, error=JobError(code=ErrorCode.CANCELLED, message="x", retryable=False)
        ),
    ]
    for event in late:
        answer = proxy.callback(job_id, event)
        assert answer.status == 200
        assert answer.json() == {"applied": False, "status": "failed"}
    cancel = proxy.invoke("DELETE", f"/jobs/{job_id}", token=proxy.token())
    assert cancel.status == 409
    job = proxy.services.jobs.get(job_id)
    assert job.error is not None
    assert job.error.code == "internal"
    assert len(proxy.receiver.for_job(job_id)) == 1  # one final state, one webhook
    refused = proxy.callback(job_id, UrlRefreshRequested(job_id=job_id))
    assert refused.status == 409
    assert refused.json()["code"] == "job_final"


@pytest.mark.fault("duplicate callbacks")
def test_duplicates_are_dropped_by_webhook_id(proxy: Proxy) -> None:
    job_id = proxy.submit()
    first = JobProgress(job_id=job_id, stage="denoise", step=2, total=10, percent=20.0)
    later = JobProgress(job_id=job_id, stage="denoise", step=6, total=10, percent=60.0)
    assert proxy.callback(job_id, first, webhook_id="msg_dup_1").json()["applied"]
    assert proxy.callback(job_id, later, webhook_id="msg_dup_2").json()["applied"]

    replay = proxy.callback(job_id, first, webhook_id="msg_dup_1")
    assert replay.status == 200
    assert replay.json()["duplicate"] is True
    assert proxy.services.jobs.get(job_id).progress.percent == 60.0
    # A reordered older progress with a new id does not move progress backwards either.
    older = JobProgress(job_id=job_id, stage="denoise", step=3, total=10, percent=30.0)
    assert proxy.callback(job_id, older).json()["applied"] is False
    assert proxy.services.jobs.get(job_id).progress.percent == 60.0


def test_forged_callbacks_are_refused(proxy: Proxy) -> None:
    job_id = proxy.submit()
    other_job = proxy.submit()
    event = JobFailed(
        job_id=job_id, error=JobError(code=ErrorCode.INTERNAL, message="forged", retryable=False)
    )
    other_secret = proxy.services.jobs.get(other_job).callback_secret
    forged_secret = "whsec_" + "A" * 43 + "="
    cases: list[tuple[dict[str, Any], str]] = [
        ({"secret": forged_secret}, "signature_invalid"),
        ({"secret": other_secret}, "signature_invalid"),
        ({"timestamp": int(time.time()) - 3600}, "timestamp_out_of_tolerance"),
        ({"timestamp": int(time.time()) + 3600}, "timestamp_out_of_tolerance"),
    ]
    for kwargs, code in cases:
        answer = proxy.callback(job_id, event, **kwargs)
        assert answer.status == 401, kwargs
        assert answer.json()["code"] == code

    # A body changed after signing, and a body without signature headers.
    secret = proxy.services.jobs.get(job_id).callback_secret
    body = event.model_dump_json()
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_tamper",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_tamper", now, body),
    }
    tampered = body.replace("forged", "FORGED")
    answer = to_answer(
        handler_module.handler(callback_event(job_id, tampered, headers), LambdaContext("cb"))
    )
    assert answer.status == 401
    answer = to_answer(
        handler_module.handler(callback_event(job_id, body, {}), LambdaContext("cb"))
    )
    assert answer.status == 401
    assert answer.json()["code"] == "signature_headers_missing"

    assert proxy.services.jobs.get(job_id).status.value == "queued"


def test_callback_for_another_job_or_no_job(proxy: Proxy) -> None:
    job_id = proxy.submit()
    other = proxy.submit()
    # Signed with job A's secret but naming job B in the body.
    mismatch = JobStarted(job_id=other)
    answer = proxy.callback(job_id, mismatch)
    assert answer.status == 422
    assert answer.json()["code"] == "callback_job_mismatch"
    missing = "job_" + "0" * 26
    answer = proxy.callback(missing, JobStarted(job_id=missing), secret="whsec_" + "B" * 43 + "=")
    assert answer.status == 404
    garbage = proxy.callback(job_id, json.dumps({"type": "job.exploded", "job_id": job_id}))
    assert garbage.status == 422
    assert garbage.json()["code"] == "callback_invalid"


def test_url_refresh_answers_fresh_signed_urls_that_s3_accepts(proxy: Proxy) -> None:
    job_id = proxy.submit()
    secret = proxy.services.jobs.get(job_id).callback_secret
    answer = proxy.callback(job_id, UrlRefreshRequested(job_id=job_id), webhook_id="msg_refresh")
    assert answer.status == 200
    # The answer is signed with the job's secret, so the worker can trust it.
    verify_signature(secret, answer.body, answer.headers, tolerance_s=60)
    fresh = UrlRefreshResponse.model_validate_json(answer.body)

    assert httpx.get(fresh.inputs.audio_urls[0]).content == WAV
    assert "s3://" not in answer.body
    assert "X-Amz-Expires=" in fresh.output.put_url
    wrong_type = httpx.put(
        fresh.output.put_url, content=MP4, headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 403  # the content type is part of the signature
    assert (
        httpx.put(
            fresh.output.put_url, content=MP4, headers={"Content-Type": "video/mp4"}
        ).status_code
        == 200
    )


def test_batch_job_completes_its_step_functions_task(proxy: Proxy) -> None:
    sqs, sfn = proxy.stack.client("sqs"), proxy.stack.client("stepfunctions")
    queue_url = sqs.create_queue(QueueName=f"lp-tokens-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    definition = {
        "StartAt": "Render",
        "States": {
            "Render": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "HeartbeatSeconds": 120,
                "TimeoutSeconds": 600,
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"lp-batch-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/multitalk-batch",
    )["stateMachineArn"]

    def start_item() -> tuple[str, Any]:
        """An execution waiting on its task token, and the job submitted with that token."""
        execution = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input="{}")[
            "executionArn"
        ]
        job = submit_job(
            GenerateVideoRequest.model_validate(proxy.body()),
            TenantContext(tenant_id="acme", subject="batch"),
            task_token=_receive_token(sqs, queue_url),
            batch_item=BatchItem(execution_arn=execution, item_ref="item-1"),
        )
        return execution, job

    def run_item(outcome: str) -> dict[str, Any]:
        execution, job = start_item()
        assert proxy.callback(job.job_id, JobStarted(job_id=job.job_id)).status == 200  # heartbeat
        if outcome == "success":
            upload_output(proxy, job.job_id)
            proxy.callback(job.job_id, JobSucceeded(job_id=job.job_id, result=result()))
        else:
            error = JobError(code=ErrorCode.IMAGE_INVALID, message="no face", retryable=False)
            proxy.callback(job.job_id, JobFailed(job_id=job.job_id, error=error))
        return _wait_for_execution(sfn, execution) | {"job_id": job.job_id}

    succeeded = run_item("success")
    assert succeeded["status"] == "SUCCEEDED"
    output = json.loads(succeeded["output"])
    assert output["job_id"] == succeeded["job_id"]
    assert output["status"] == "succeeded"
    assert output["result"]["size_bytes"] == len(MP4)

    failed = run_item("failure")
    assert failed["status"] == "FAILED"
    assert failed["error"] == "image_invalid"
    for item in (succeeded, failed):
        assert proxy.services.jobs.get(item["job_id"]).task_state == "done"

    # The settling process dies before SendTaskFailure: the reconciler completes the task.
    execution, job = start_item()
    proxy.services.jobs.settle(
        job.job_id,
        JobStatus.FAILED,
        error=JobFailure(code="internal", message="lost"),
        followup_at=iso(utc_now() - timedelta(seconds=1)),
        task_pending=True,
    )
    assert proxy.services.jobs.get(job.job_id).task_state == "pending"
    reconciler.handler(scheduler_event(), LambdaContext(function_name="reconciler"))
    crashed = _wait_for_execution(sfn, execution)
    assert (crashed["status"], crashed["error"]) == ("FAILED", "internal")
    assert proxy.services.jobs.get(job.job_id).task_state == "done"

    # The tenant cancels a batch item through the API: its task fails at once, no reconciler.
    execution, job = start_item()
    assert proxy.invoke("DELETE", f"/jobs/{job.job_id}", token=proxy.token()).status == 200
    cancelled = _wait_for_execution(sfn, execution)
    assert (cancelled["status"], cancelled["error"]) == ("FAILED", "cancelled")
    assert proxy.services.jobs.get(job.job_id).task_state == "done"


def _receive_token(sqs: Any, queue_url: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
            return json.loads(messages[0]["Body"])["token"]
    raise AssertionError("no task token arrived")


def _wait_for_execution(sfn: Any, execution: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError("the execution did not finish")


def test_submit_path_errors_are_typed_for_the_batch_handler(proxy: Proxy) -> None:
    request = GenerateVideoRequest.model_validate(proxy.body())
    tenant = TenantContext(tenant_id="acme", subject="batch")
    with pytest.raises(SubmitError) as malformed:
        submit_job(request, tenant, idempotency_key="no spaces allowed")
    assert (malformed.value.code, malformed.value.status) == ("submission_invalid", 422)

    foreign = GenerateVideoRequest.model_validate(proxy.body("globex"))
    with pytest.raises(SubmitError) as forbidden:
        submit_job(foreign, tenant)
    assert (forbidden.value.code, forbidden.value.status, forbidden.value.job_id) == (
        "s3_location_forbidden",
        403,
        None,
    )
