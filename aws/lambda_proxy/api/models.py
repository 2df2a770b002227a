"""Public request and response bodies (seed-compatible, with extensions).

Unknown fields are refused everywhere; every string and list has a length limit. Limits that
depend on deployment (``video_length``, allowed models) are checked in the submit path, which
knows the configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from aws.lambda_proxy.config import MODEL_ALIASES, PublicModel
from aws.lambda_proxy.jobs.models import JobStatus, JobView
from aws.lambda_proxy.tenants.limits import TenantLimits
from modal_service.contracts import MAX_PROMPT_LENGTH, BoundingBox, SpeedProfile

S3Url = Annotated[str, Field(min_length=8, max_length=1100, pattern=r"^s3://")]

SPEED_CONFLICT = "speed_conflict"
VIDEO_IMAGE_CONFLICT = "video_image_conflict"
VIDEO_NEEDS_INFINITETALK = "video_needs_infinitetalk"
CODED_VALIDATION_ERRORS = frozenset(
    {SPEED_CONFLICT, VIDEO_IMAGE_CONFLICT, VIDEO_NEEDS_INFINITETALK}
)
"""Validation errors with a code of their own: the error's pydantic ``type`` is that code."""


def validation_code(errors: Iterable[Mapping[str, Any]], default: str) -> str:
    """The code of a refusal: a coded error's own code when it is the only kind, else ``default``.

    A body wrong in several ways keeps the generic code; its ``errors`` list says each way.
    """
    kinds = {str(error.get("type", "")) for error in errors}
    if len(kinds) == 1 and kinds <= CODED_VALIDATION_ERRORS:
        return kinds.pop()
    return default


VIDEO_MODELS: frozenset[PublicModel] = frozenset({"infinitetalk", "tiny-infinitetalk"})
"""The models that can dub a source video (InfiniteTalk re-reads its reference every clip)."""


def video_model_refusal(model: PublicModel) -> PydanticCustomError | None:
    """The refusal of a source video with ``model`` (None when the model takes one); the API
    and the batch planner say the same."""
    if model in VIDEO_MODELS:
        return None
    return PydanticCustomError(
        VIDEO_NEEDS_INFINITETALK,
        "a source video (video_s3_url) is dubbed by InfiniteTalk only; set options.model to "
        "infinitetalk (or tiny-infinitetalk), or send a portrait in reference_image_s3_url "
        "for {model}",
        {"model": model},
    )


def _public_model_name(value: object) -> object:
    return MODEL_ALIASES.get(value, value) if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class InputSpec(_Strict):
    audio_s3_url: S3Url | None = Field(default=None, description="The speaker's audio (seed)")
    audio_s3_urls: list[S3Url] | None = Field(
        default=None, min_length=1, max_length=2, description="Extension: one or two speakers"
    )
    reference_image_s3_url: S3Url | None = Field(
        default=None,
        description="Portrait; the tenant's default image when neither it nor video_s3_url is "
        "given",
    )
    video_s3_url: S3Url | None = Field(
        default=None,
        description="Extension: a video to dub instead of a portrait (MP4, MOV, WebM or MKV; "
        "InfiniteTalk models only, else video_needs_infinitetalk). The output follows the "
        "audio: a shorter video loops from its start, a longer one is cut. Exclusive with "
        "reference_image_s3_url (video_image_conflict); checked at submit like the image, "
        "from its first bytes (video_invalid, video_too_long, video_too_large, "
        "unsupported_format)",
    )
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_LENGTH)
    audio_type: Literal["add", "para"] = Field(
        default="add", description="Two speakers: one after the other (add) or together (para)"
    )
    bounding_boxes: list[BoundingBox] | None = Field(default=None, min_length=1, max_length=2)

    @model_validator(mode="after")
    def _one_audio_form(self) -> InputSpec:
        if self.reference_image_s3_url is not None and self.video_s3_url is not None:
            raise PydanticCustomError(
                VIDEO_IMAGE_CONFLICT,
                "give reference_image_s3_url (a portrait) or video_s3_url (a video to dub), "
                "not both",
            )
        if (self.audio_s3_url is None) == (self.audio_s3_urls is None):
            raise ValueError("give exactly one of audio_s3_url or audio_s3_urls")
        if self.bounding_boxes is not None and len(self.bounding_boxes) != len(self.audio_urls):
            raise ValueError("bounding_boxes needs one box per audio track")
        for box in self.bounding_boxes or []:
            if box.bottom <= box.top or box.right <= box.left:
                raise ValueError("a bounding box needs bottom > top and right > left")
        return self

    @property
    def audio_urls(self) -> list[str]:
        return self.audio_s3_urls if self.audio_s3_urls is not None else [str(self.audio_s3_url)]


class OutputSpec(_Strict):
    s3_bucket: str = Field(min_length=3, max_length=63)
    s3_prefix: str = Field(default="", max_length=900)
    filename: str | None = Field(
        default=None,
        min_length=5,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.mp4$",
        description="Defaults to <job_id>.mp4",
    )
    overwrite: bool = Field(default=False, description="Extension: replace an existing object")


class OptionsSpec(_Strict):
    resolution: Literal["480p", "720p"] = "480p"
    video_length: float = Field(default=15.0, gt=0, le=600, description="Seconds (capped)")
    turbo_mode: bool = Field(
        default=False,
        description="Seed name for speed=turbo; true with any other speed is refused "
        "(speed_conflict)",
    )
    speed: SpeedProfile | None = Field(
        default=None,
        description="Extension: quality (the reference sampler), balanced (cached steps, about "
        "2x faster) or turbo (4 distilled steps); the deployment's default when omitted. "
        "GET /jobs/{job_id} shows the profile a job used",
    )
    webhook_url: str | None = Field(default=None, min_length=9, max_length=2048)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    sample_steps: int | None = Field(default=None, ge=1, le=100)
    model: Annotated[
        PublicModel,
        BeforeValidator(_public_model_name),
        WithJsonSchema({"type": "string", "enum": [*get_args(PublicModel), *MODEL_ALIASES]}),
        Field(
            description="multitalk-14b (one clip-length talking head, one or two speakers on a "
            "portrait), infinitetalk (long videos, and dubbing video_s3_url; infinitetalk-14b "
            "is the same model), or tiny / tiny-infinitetalk (noise, for tests); the "
            "deployment enables some of them (model_not_allowed)"
        ),
    ] = "multitalk-14b"

    @model_validator(mode="after")
    def _one_speed(self) -> OptionsSpec:
        if self.turbo_mode and self.speed not in (None, "turbo"):
            raise PydanticCustomError(
                SPEED_CONFLICT,
                "turbo_mode is speed=turbo; it contradicts speed={speed}: give one of them",
                {"speed": self.speed},
            )
        return self

    def speed_profile(self, default: SpeedProfile) -> SpeedProfile:
        """The profile this job renders with: ``speed``, else turbo_mode, else ``default``."""
        if self.speed is not None:
            return self.speed
        return "turbo" if self.turbo_mode else default


class GenerateVideoRequest(_Strict):
    """``POST /generate-video`` body."""

    input: InputSpec
    output: OutputSpec
    options: OptionsSpec = Field(default_factory=OptionsSpec)

    @model_validator(mode="after")
    def _video_needs_a_video_model(self) -> GenerateVideoRequest:
        if self.input.video_s3_url is not None:
            refusal = video_model_refusal(self.options.model)
            if refusal is not None:
                raise refusal
        return self


class GenerateVideoResponse(BaseModel):
    """``202`` answer (seed-compatible)."""

    job_id: str
    status: JobStatus
    estimated_time: int = Field(description="Estimated seconds until the video is ready")
    output_url: str = Field(description="s3:// URL the MP4 will be written to")


class JobList(BaseModel):
    """``GET /jobs`` answer: one page, newest first."""

    jobs: list[JobView]
    next_token: str | None = None


class TenantUsage(BaseModel):
    """``GET /usage`` answer: the caller's tenant's limits and what it uses of them now."""

    tenant_id: str
    limits: TenantLimits
    active: int = Field(description="jobs queued or processing (batch items waiting excluded)")
    submissions_this_minute: int = Field(description="admitted in the current UTC minute")
    gpu_seconds_today: float = Field(description="GPU-seconds of jobs finished today (UTC)")
    jobs_finished_today: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
