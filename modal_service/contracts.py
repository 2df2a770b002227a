"""The wire contract between the AWS side and the GPU side.

Both sides import these models: the proxy Lambda builds a :class:`CreateJobRequest` and parses
callbacks; the internal API validates the request and the worker emits the callbacks. The module
is pure pydantic and standard library on purpose, so the Lambda zip can carry it without torch
and the Modal side can use it without boto3.

What never crosses this boundary: ``s3://`` URLs, bucket names, AWS credentials, task tokens.
The GPU side sees pre-signed HTTPS URLs, a per-job callback secret and a deadline, nothing more.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

CONTRACT_VERSION = "2026-12-02"

JOB_ID_PATTERN = r"^job_[0-9a-z]{26}$"
"""Job ids are ``job_`` plus a lowercase ULID-like 26-character suffix, minted by the AWS side."""

MAX_URL_LENGTH = 4096
MAX_PROMPT_LENGTH = 2000
MAX_SPEAKERS = 2

PresetName = Literal[
    "multitalk-14b", "infinitetalk-14b", "infinitetalk-14b-multi", "tiny", "tiny-infinitetalk"
]
"""The GPU side's model presets. ``infinitetalk-14b-multi`` is InfiniteTalk's two-speaker adapter;
the AWS side picks it for a two-speaker ``infinitetalk-14b`` job. ``tiny*`` are random weights."""

SpeedProfile = Literal["quality", "balanced", "turbo"]
"""Named speed profiles a job may ask for (defined in ``modal_service.multitalk.acceleration``).

``quality`` is the reference sampler (40 steps, 3 guidance passes, fp32 VAE decode); ``balanced``
caches transformer steps and decodes in bf16; ``turbo`` samples 4 steps with a fused distillation
LoRA and one pass per step."""

# Callback secrets follow Standard Webhooks: ``whsec_`` + base64 of at least 24 random bytes.
CALLBACK_SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}$"  # noqa: S105 (a pattern, not a secret)

_CREDENTIAL_HINTS = re.compile(
    r"(AKIA|ASIA)[A-Z0-9]{16}|aws_secret_access_key|x-amz-security-token=[^&]{200,}",
    re.IGNORECASE,
)


class Model(BaseModel):
    """Strict base: unknown fields are refused at every boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_s3_scheme(url: str) -> str:
    if url.lower().startswith("s3://"):
        raise ValueError("s3:// URLs never cross to the GPU side; send a pre-signed https URL")
    if not url.lower().startswith(("https://", "http://")):
        raise ValueError("only http(s) URLs are accepted")
    return url


def contains_aws_credentials(text: str) -> bool:
    """Whether ``text`` (a URL, a prompt, a whole request body) seems to carry AWS credentials.

    A pre-signed URL legitimately carries X-Amz-Credential=ASIA…/… (temporary role credentials
    scoped to one request). A raw access key id outside that parameter, or a secret key, is a leak.
    """
    without_credential_param = re.sub(r"X-Amz-Credential=[^&\"]*", "", text, flags=re.IGNORECASE)
    return _CREDENTIAL_HINTS.search(without_credential_param) is not None


def _no_long_lived_credentials(url: str) -> str:
    if contains_aws_credentials(url):
        raise ValueError("the URL looks like it carries AWS credentials")
    return url


PresignedUrl = Annotated[
    str,
    Field(min_length=10, max_length=MAX_URL_LENGTH),
    AfterValidator(_no_s3_scheme),
    AfterValidator(_no_long_lived_credentials),
]
"""A pre-signed (or otherwise capability-bearing) URL. Scheme policy (https only, http only to
loopback in local mode) is enforced by the internal API, which knows the mode it runs in."""

JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]


class ErrorCode(StrEnum):
    """Stable failure codes reported by the worker (and shown to API callers)."""

    INPUT_UNREADABLE = "input_unreadable"
    INPUT_TOO_LARGE = "input_too_large"
    # What is wrong with the media itself; the same codes as modal_service.media.errors.MediaCode.
    AUDIO_INVALID = "audio_invalid"
    AUDIO_TOO_SHORT = "audio_too_short"
    AUDIO_TOO_LONG = "audio_too_long"
    AUDIO_SILENT = "audio_silent"
    IMAGE_INVALID = "image_invalid"
    IMAGE_TOO_SMALL = "image_too_small"
    IMAGE_TOO_LARGE = "image_too_large"
    VIDEO_INVALID = "video_invalid"
    VIDEO_TOO_LONG = "video_too_long"
    VIDEO_TOO_LARGE = "video_too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    DECOMPRESSION_BOMB = "decompression_bomb"
    URL_EXPIRED = "url_expired"
    UPLOAD_FAILED = "upload_failed"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    MODEL_UNAVAILABLE = "model_unavailable"
    INTERNAL = "internal"


class BoundingBox(Model):
    """A speaker region in source-image pixels, ``[top, left, bottom, right]`` as in MultiTalk."""

    top: int = Field(ge=0, le=16384)
    left: int = Field(ge=0, le=16384)
    bottom: int = Field(ge=1, le=16384)
    right: int = Field(ge=1, le=16384)


class GenerationParams(Model):
    """What to render. Defaults mirror the public API's defaults."""

    prompt: str = Field(default="", max_length=MAX_PROMPT_LENGTH)
    resolution: Literal["480p", "720p"] = "480p"
    max_duration_s: float = Field(default=15.0, gt=0, le=600)
    speed: SpeedProfile = "quality"
    audio_type: Literal["add", "para"] = "add"
    bounding_boxes: list[BoundingBox] | None = Field(default=None, max_length=MAX_SPEAKERS)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    sample_steps: int | None = Field(default=None, ge=1, le=100)
    model: PresetName = "multitalk-14b"

    @model_validator(mode="before")
    @classmethod
    def _legacy_turbo(cls, data: object) -> object:
        # Records and requests from before speed profiles carry ``turbo: bool``; it was turbo.
        if isinstance(data, dict) and "turbo" in data and "speed" not in data:
            rest = {key: value for key, value in data.items() if key != "turbo"}
            return rest | {"speed": "turbo" if data["turbo"] is True else "quality"}
        return data


InputName = Annotated[str, Field(min_length=1, max_length=1024)]


class JobInputs(Model):
    """Pre-signed GET URLs: one audio track per speaker (1 or 2), and either a reference image or
    a source video to dub (InfiniteTalk presets only).

    ``audio_names``, ``image_name`` and ``video_name`` are the objects' keys (never their
    bucket), so that a refusal names the caller's file; the keys are in the URLs' paths already.
    """

    audio_urls: list[PresignedUrl] = Field(min_length=1, max_length=MAX_SPEAKERS)
    image_url: PresignedUrl | None = None
    video_url: PresignedUrl | None = None
    audio_names: list[InputName] | None = Field(default=None, max_length=MAX_SPEAKERS)
    image_name: InputName | None = None
    video_name: InputName | None = None
    max_audio_bytes: int = Field(default=100 * 1024 * 1024, gt=0, le=1024**3)
    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0, le=200 * 1024**2)
    max_video_bytes: int = Field(default=2 * 1024**3, gt=0, le=8 * 1024**3)
    max_audio_s: float = Field(
        default=600.0,
        gt=0,
        le=600,
        description="The deployment's longest audio: longer tracks are refused, not cut",
    )
    max_video_s: float = Field(
        default=600.0,
        gt=0,
        le=3600,
        description="The deployment's longest source video: longer ones are refused",
    )

    @model_validator(mode="after")
    def _image_or_video(self) -> JobInputs:
        if (self.image_url is None) == (self.video_url is None):
            raise ValueError("give exactly one of image_url or video_url")
        return self

    def audio_label(self, index: int) -> str:
        """``audio 1 (talk.wav)``: how messages name a track to the caller."""
        names = self.audio_names or []
        name = names[index] if index < len(names) else None
        return f"audio {index + 1}" + (f" ({name})" if name else "")

    @property
    def image_label(self) -> str:
        return "the reference image" + (f" ({self.image_name})" if self.image_name else "")

    @property
    def video_label(self) -> str:
        return "the source video" + (f" ({self.video_name})" if self.video_name else "")


class JobOutput(Model):
    """The pre-signed PUT URL for the MP4; ``content_type`` is part of its signature."""

    put_url: PresignedUrl
    content_type: Literal["video/mp4"] = "video/mp4"
    max_bytes: int = Field(default=2 * 1024**3, gt=0, le=5 * 1024**3)


class CallbackTarget(Model):
    """Where the worker reports, and the per-job Standard Webhooks secret it signs with."""

    url: PresignedUrl
    secret: str = Field(pattern=CALLBACK_SECRET_PATTERN, repr=False)


class CreateJobRequest(Model):
    """``POST /v1/jobs`` body."""

    job_id: JobId
    inputs: JobInputs
    output: JobOutput
    params: GenerationParams
    callback: CallbackTarget
    deadline: datetime = Field(description="Aware UTC time after which the job is abandoned")


class CreateJobResponse(Model):
    """``POST /v1/jobs`` answer: the call id to poll or cancel with."""

    job_id: JobId
    call_id: str = Field(min_length=1, max_length=128)


class GpuUsage(Model):
    """What the GPUs did during the render stage, read through NVML about once a second."""

    device_name: str = Field(max_length=128, description="The GPU model as NVML names it")
    device_count: int = Field(ge=1, le=64, description="GPUs visible to the worker")
    samples: int = Field(ge=1, description="Sampling rounds, about one a second, each of every GPU")
    utilization_mean_pct: float = Field(
        ge=0, le=100, description="Mean share of time a kernel was running, over all readings"
    )
    utilization_p10_pct: float = Field(
        ge=0, le=100, description="The lowest decile: 90 % of readings were at or above it"
    )
    memory_peak_gb: float = Field(
        ge=0, description="Most memory in use on any one GPU, in GB (10^9 bytes)"
    )


class JobResult(Model):
    """What a finished render produced (also the ``job.succeeded`` callback data)."""

    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    duration_s: float = Field(ge=0)
    frames: int = Field(ge=0)
    fps: float = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    model: str = Field(max_length=64, description="Preset that rendered it; `tiny` makes noise")
    timings_s: dict[str, float] = Field(default_factory=dict)
    audio_durations_s: list[float] = Field(
        default_factory=list,
        max_length=MAX_SPEAKERS,
        description="Each input track's own duration, before any cut to video_length",
    )
    notes: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list,
        max_length=10,
        description="What the render changed from what was asked (a cut, a turbo fallback)",
    )
    # Absent (null) in results of workers that predate them; a current worker always sets
    # render_device, gpu_seconds and estimated_cost_usd unless NVML failed on a GPU container.
    gpu: GpuUsage | None = Field(
        default=None,
        description="GPU utilisation and memory during the render stage; null on a CPU render "
        "or where NVML could not be read",
    )
    render_device: str | None = Field(
        default=None,
        max_length=128,
        description="What rendered: the GPU model, or `cpu` for a render without a GPU",
    )
    gpu_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Render wall time (`timings_s.render_s`) times the GPUs the worker held; "
        "0 on a CPU render",
    )
    estimated_cost_usd: float | None = Field(
        default=None,
        ge=0,
        description="gpu_seconds at the deployment's GPU-hour price: an estimate, not a bill",
    )


class JobError(Model):
    """Why a job failed (also the ``job.failed`` callback data)."""

    code: ErrorCode
    message: str = Field(max_length=1000)
    retryable: bool


class CallState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    """The runner no longer knows the call (Modal keeps results for 7 days)."""


class JobStatusResponse(Model):
    """``GET /v1/jobs/{call_id}`` answer."""

    call_id: str
    state: CallState
    result: JobResult | None = None
    error: JobError | None = None


# --- Callbacks (GPU side -> AWS side), Standard Webhooks signed with the job's secret ---------


class JobStarted(Model):
    type: Literal["job.started"] = "job.started"
    job_id: JobId
    call_id: str | None = None
    attempt: int = Field(default=1, ge=1)


class JobProgress(Model):
    type: Literal["job.progress"] = "job.progress"
    job_id: JobId
    stage: str = Field(max_length=64)
    step: int = Field(ge=0)
    total: int = Field(ge=0)
    percent: float = Field(
        ge=0,
        le=100,
        description="The whole job's completion: each stage has a fixed band (denoising "
        "13-95), so it never goes back when a stage ends and the next begins",
    )
    remaining_s: float | None = Field(
        default=None,
        ge=0,
        description="Seconds of rendering left, from the pace of the denoising steps so far "
        "(decode and encode of each clip included); null before the second step",
    )


class JobSucceeded(Model):
    type: Literal["job.succeeded"] = "job.succeeded"
    job_id: JobId
    result: JobResult


class JobFailed(Model):
    type: Literal["job.failed"] = "job.failed"
    job_id: JobId
    error: JobError


class UrlRefreshRequested(Model):
    """Sent when a pre-signed URL answered 403 as expired. The response body is
    :class:`UrlRefreshResponse`; the worker retries once with the fresh URLs."""

    type: Literal["job.url_refresh"] = "job.url_refresh"
    job_id: JobId


CallbackEvent = Annotated[
    JobStarted | JobProgress | JobSucceeded | JobFailed | UrlRefreshRequested,
    Field(discriminator="type"),
]


CALLBACK_EVENT_ADAPTER: TypeAdapter[CallbackEvent] = TypeAdapter(CallbackEvent)
"""Parses a callback body (``CALLBACK_EVENT_ADAPTER.validate_json(raw)``) into its event model."""


class UrlRefreshResponse(Model):
    """Fresh pre-signed URLs for the same objects, with the same limits and content type."""

    inputs: JobInputs
    output: JobOutput
