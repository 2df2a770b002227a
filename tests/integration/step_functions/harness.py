"""Drives a batch execution on the local stack the way AWS would around it.

- :class:`~scripts.local_stack.sqs_event_source.SqsEventSource` (the local stack's) is the SQS
  event source mapping; the tests poll it themselves.
- :class:`HeldRunner` is the GPU side's job runner behind the real internal API: it accepts and
  records :class:`CreateJobRequest` s but renders nothing, so the test can act as the worker.
- :class:`WorkerStandIn` does what the worker does with a request: PUT the MP4 through the
  pre-signed URL and post Standard Webhooks callbacks signed with the job's secret to the callback
  URL (the real callback Lambda behind the local gateway).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import uvicorn
from standardwebhooks import Webhook

from aws.step_functions.render import render_definition
from modal_service.contracts import (
    CallState,
    CreateJobRequest,
    ErrorCode,
    JobError,
    JobFailed,
    JobProgress,
    JobResult,
    JobStarted,
    JobStatusResponse,
    JobSucceeded,
)
from scripts.local_stack import StackInfo

ROLE_ARN = "arn:aws:iam::123456789012:role/multitalk-batch"
RESULTS_PREFIX = "batch-results/"


def state_machine(stack: StackInfo, queue_url: str, **overrides: Any) -> str:
    """Create a state machine from the rendered template (the test defaults, then ``overrides``)
    that sends its work to ``queue_url``."""
    values = {
        "submit_queue_url": queue_url,
        "results_bucket": stack.buckets["data"],
        "results_prefix": RESULTS_PREFIX,
        "max_concurrency": 3,
        "tolerated_failure_percentage": 40,
        "heartbeat_seconds": 60,
        "task_timeout_seconds": 300,
    } | overrides
    return stack.client("stepfunctions").create_state_machine(
        name=f"batch-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(render_definition(values)),
        roleArn=ROLE_ARN,
    )["stateMachineArn"]


def put(stack: StackInfo, key: str, content_type: str, body: bytes = b"RIFF....WAVE") -> str:
    """Upload an object to the data bucket; returns its s3:// URL."""
    bucket = stack.buckets["data"]
    stack.s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return f"s3://{bucket}/{key}"


MP4_BYTES = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64


class HeldRunner:
    """A job runner that keeps every request for the test to act on (nothing renders)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, CreateJobRequest] = {}
        self.cancelled: set[str] = set()

    def submit(self, request: CreateJobRequest) -> str:
        call_id = f"call-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.requests[call_id] = request
        return call_id

    def status(self, call_id: str) -> JobStatusResponse:
        state = CallState.CANCELLED if call_id in self.cancelled else CallState.RUNNING
        return JobStatusResponse(call_id=call_id, state=state)

    def cancel(self, call_id: str) -> JobStatusResponse:
        with self._lock:
            self.cancelled.add(call_id)
        return self.status(call_id)

    def close(self) -> None:
        return None

    def take_new(self, seen: set[str]) -> list[CreateJobRequest]:
        with self._lock:
            fresh = [(call, req) for call, req in self.requests.items() if call not in seen]
        seen.update(call for call, _ in fresh)
        return [request for _, request in fresh]


def audio_key(request: CreateJobRequest) -> str:
    """The S3 key a pre-signed audio URL points at (path-style: /bucket/key)."""
    path = unquote(urlsplit(request.inputs.audio_urls[0]).path)
    return path.split("/", 2)[2]


class WorkerStandIn:
    """Sends what the worker sends, signed with the job's own callback secret."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=30)

    def _post(self, request: CreateJobRequest, event: Any) -> httpx.Response:
        body = event.model_dump_json()
        message_id = f"msg_{uuid.uuid4().hex}"
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(request.callback.secret).sign(message_id, sent_at, body),
        }
        return self.client.post(request.callback.url, content=body, headers=headers)

    def progress(self, request: CreateJobRequest, percent: float) -> httpx.Response:
        event = JobProgress(
            job_id=request.job_id, stage="denoising", step=int(percent), total=100, percent=percent
        )
        return self._post(request, event)

    def succeed(self, request: CreateJobRequest) -> httpx.Response:
        self._post(request, JobStarted(job_id=request.job_id)).raise_for_status()
        self.progress(request, 50.0).raise_for_status()
        upload = self.client.put(
            request.output.put_url,
            content=MP4_BYTES,
            headers={"content-type": request.output.content_type},
        )
        upload.raise_for_status()
        result = JobResult(
            size_bytes=len(MP4_BYTES),
            sha256=hashlib.sha256(MP4_BYTES).hexdigest(),
            duration_s=1.0,
            frames=25,
            fps=25.0,
            width=64,
            height=64,
            model="tiny",
        )
        return self._post(request, JobSucceeded(job_id=request.job_id, result=result))

    def fail(self, request: CreateJobRequest, code: ErrorCode) -> httpx.Response:
        self._post(request, JobStarted(job_id=request.job_id)).raise_for_status()
        error = JobError(code=code, message=f"the worker says {code.value}", retryable=False)
        return self._post(request, JobFailed(job_id=request.job_id, error=error))


class ServerThread:
    """An ASGI app under uvicorn on a free loopback port, in a daemon thread."""

    def __init__(self, app: Any, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.url} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
