"""The job record as stored in DynamoDB, and the public view of it.

Top-level attributes are what DynamoDB indexes or conditions on (status, tenant, times, TTL);
nested documents (progress, result, error, locations, parameters) are stored as JSON strings,
which keeps floats exact and the item schema flat.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from modal_service.contracts import ErrorCode, GenerationParams, JobResult, SpeedProfile

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.PROCESSING})


def new_job_id(now: float | None = None) -> str:
    """``job_`` + 26 lowercase Crockford base32 chars: 48 bits of milliseconds, 80 random bits.

    Time-ordered like a ULID, so ids sort by creation, and unguessable enough that a job id
    alone never grants anything (every lookup is also scoped to the tenant).
    """
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "job_" + "".join(reversed(chars))


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 (microseconds, ``Z``) so strings sort like times in indexes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class S3Location(BaseModel):
    """A parsed, authorized ``s3://bucket/key`` (see :mod:`aws.lambda_proxy.storage.s3_url`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Progress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str = "queued"
    percent: float = Field(default=0.0, ge=0, le=100)
    step: int = 0
    total: int = 0
    remaining_s: float | None = Field(
        default=None, description="Rendering seconds left at the render's pace so far, if known"
    )


# The codes a render reports, as an OpenAPI enum (the input codes among them: audio_invalid,
# audio_too_short, audio_too_long, audio_silent, image_invalid, image_too_small,
# image_too_large, unsupported_format, decompression_bomb); the AWS side adds a few of its own
# (modal_unavailable, output_missing, ...), so the schema stays open to those.
_FAILURE_CODE_SCHEMA = {
    "anyOf": [
        {"type": "string", "enum": [code.value for code in ErrorCode], "title": "RenderErrorCode"},
        {"type": "string", "maxLength": 64, "description": "a code of the AWS side"},
    ],
    "title": "Code",
}


class JobFailure(BaseModel):
    """Why a job failed: the worker's :class:`~modal_service.contracts.ErrorCode` values plus the
    proxy's own (``modal_unavailable``, ``output_missing``, ``submit_incomplete``...)."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(max_length=64), WithJsonSchema(_FAILURE_CODE_SCHEMA)]
    message: str = Field(max_length=1000)
    retryable: bool = False


class WebhookDelivery(BaseModel):
    """Outcome of the caller webhook for the job's final state.

    One *round* is up to ``WEBHOOK_MAX_ATTEMPTS`` quick attempts; a round that failed for a
    retryable reason (network, 429, 5xx) is repeated later by the reconciler, on
    :data:`WEBHOOK_RETRY_SCHEDULE_S`, until ``next_attempt_at`` is None.
    """

    model_config = ConfigDict(extra="forbid")

    state: str = Field(description="delivered | failed | refused")
    attempts: int = 0
    rounds: int = 1
    last_status: int | None = None
    detail: str | None = None
    retryable: bool = False
    next_attempt_at: str | None = None


WEBHOOK_RETRY_SCHEDULE_S = (60, 300, 1800, 7200, 21600)
"""Delay before each later round: 1 min, 5 min, 30 min, 2 h, 6 h (then the delivery gives up)."""


class BatchItem(BaseModel):
    """Which Step Functions execution and item a batch job belongs to (opaque to the proxy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_arn: str | None = Field(default=None, max_length=2048)
    item_ref: str | None = Field(default=None, max_length=1024)


class JobRecord(BaseModel):
    """Everything the proxy keeps about one job."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    tenant_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    deadline: str
    started_at: str | None = None
    finished_at: str | None = None
    audio_inputs: list[S3Location]
    image_input: S3Location | None = None
    video_input: S3Location | None = None
    """The source video to dub, in place of ``image_input`` (records before videos have none)."""
    output: S3Location
    params: GenerationParams
    webhook_url: str | None = None
    callback_secret: str = Field(repr=False)
    estimated_time_s: int
    call_id: str | None = None
    task_token: str | None = Field(default=None, repr=False)
    task_state: str | None = None
    """Batch only: ``pending`` until Step Functions took the outcome, then ``done`` or ``gone``."""
    batch_item: BatchItem | None = None
    progress: Progress = Field(default_factory=Progress)
    result: JobResult | None = None
    error: JobFailure | None = None
    webhook_delivery: WebhookDelivery | None = None
    expires_at: int

    @model_validator(mode="after")
    def _image_or_video(self) -> JobRecord:
        if (self.image_input is None) == (self.video_input is None):
            raise ValueError("a job has exactly one of image_input or video_input")
        return self

    @property
    def is_batch(self) -> bool:
        return self.task_token is not None


class JobView(BaseModel):
    """What ``GET /jobs/{id}`` answers: never the callback secret, task token or call id."""

    job_id: str
    status: JobStatus
    progress: Progress
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    deadline: str
    estimated_time: int = Field(description="Estimated seconds from submission to completion")
    speed: SpeedProfile = Field(
        description="The speed profile the job renders with: options.speed, speed=turbo for "
        "turbo_mode, else the deployment's default"
    )
    output_url: str
    result: JobResult | None = Field(
        default=None,
        description="The MP4's size, digest, duration and timings; `notes` says what the render "
        "changed from what was asked (such as a cut to video_length), `audio_durations_s` each "
        "input track's own length; `gpu` the GPUs' utilisation and memory during the render, "
        "`gpu_seconds` and `estimated_cost_usd` what it held and an estimate of its price",
    )
    error: JobFailure | None = None
    webhook_delivery: WebhookDelivery | None = None

    @classmethod
    def of(cls, job: JobRecord) -> JobView:
        return cls(
            job_id=job.job_id,
            status=job.status,
            progress=job.progress,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            deadline=job.deadline,
            estimated_time=job.estimated_time_s,
            speed=job.params.speed,
            output_url=job.output.url,
            result=job.result,
            error=job.error,
            webhook_delivery=job.webhook_delivery,
        )
