"""What the batch state machine and its handler exchange.

The execution input is a :class:`BatchRequest`. The queue carries one message type per waiting
state of the definition (``plan``, ``item``, ``summarize``), each with the task token the handler
must complete, and ``cancel`` (no token) after an item's task timed out. Item records in S3 are
written by the state machine itself, so that a heartbeat timeout, which no handler sees, is
recorded like any other failure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aws.lambda_proxy.api.models import OptionsSpec, OutputSpec, S3Url
from aws.lambda_proxy.config import TENANT_PATTERN
from modal_service.contracts import MAX_PROMPT_LENGTH

MANIFEST_SUFFIXES = (".jsonl", ".csv")
OUTPUT_FILENAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*\.mp4$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchSource(_Strict):
    """Either a prefix of audio files or a manifest (``.jsonl`` or ``.csv``) listing the items."""

    prefix: S3Url | None = Field(
        default=None, description="s3://bucket/prefix/ : every audio file under it is an item"
    )
    manifest: S3Url | None = Field(
        default=None, description="s3://bucket/key.jsonl or .csv : one item per line or row"
    )
    reference_image_s3_url: S3Url | None = Field(
        default=None,
        description="One portrait for every item that has none of its own (same-name image or "
        "video)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> BatchSource:
        if (self.prefix is None) == (self.manifest is None):
            raise ValueError("give exactly one of source.prefix or source.manifest")
        if self.prefix is not None and not self.prefix.endswith("/"):
            raise ValueError("source.prefix must end with '/'")
        if self.manifest is not None and not self.manifest.lower().endswith(MANIFEST_SUFFIXES):
            raise ValueError("source.manifest must be a .jsonl or .csv object")
        return self


class BatchRequest(_Strict):
    """The execution input (``aws stepfunctions start-execution --input``)."""

    tenant_id: str = Field(pattern=TENANT_PATTERN)
    source: BatchSource
    output: OutputSpec
    options: OptionsSpec = Field(default_factory=OptionsSpec)


class ManifestRow(_Strict):
    """One line of a JSONL manifest or one row of a CSV manifest (header names = field names)."""

    audio_s3_url: S3Url
    reference_image_s3_url: S3Url | None = None
    video_s3_url: S3Url | None = None
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_LENGTH)
    filename: str | None = Field(default=None, pattern=OUTPUT_FILENAME_PATTERN)
    id: str | None = Field(default=None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _image_or_video(self) -> ManifestRow:
        if self.reference_image_s3_url is not None and self.video_s3_url is not None:
            raise ValueError("give reference_image_s3_url or video_s3_url, not both")
        return self


class PlannedItem(_Strict):
    """One entry of the item list the Map reads: what to render and where to put it."""

    id: str = Field(max_length=1024)
    audio_s3_url: str
    reference_image_s3_url: str | None = None
    video_s3_url: str | None = None
    """A video to dub in place of the portrait; the batch's portrait is never added to it."""
    prompt: str | None = None
    filename: str = Field(pattern=OUTPUT_FILENAME_PATTERN)


class Execution(_Strict):
    arn: str = Field(max_length=2048)
    name: str = Field(min_length=1, max_length=256)


class BatchConfig(_Strict):
    """Deployment settings, rendered into the definition and passed along in the state."""

    max_concurrency: int
    tolerated_failure_percentage: float
    results_bucket: str
    results_prefix: str


class Plan(_Strict):
    """``Plan batch`` output: where the item list is, and the request with defaults filled in."""

    items_bucket: str
    items_key: str
    item_count: int = Field(ge=1)
    request: BatchRequest


TaskToken = Annotated[str, Field(min_length=1, max_length=8192, repr=False)]


class PlanMessage(_Strict):
    type: Literal["plan"]
    task_token: TaskToken
    execution: Execution
    config: BatchConfig
    request: dict[str, Any]
    """Raw execution input: validated by the handler so a bad one fails the task, not the queue."""


class ItemMessage(_Strict):
    type: Literal["item"]
    task_token: TaskToken
    attempt: int = Field(ge=0)
    index: int = Field(ge=0)
    item: PlannedItem
    execution: Execution
    config: BatchConfig
    request: BatchRequest


class CancelMessage(_Strict):
    """Sent (without a token) when an item's task timed out: its jobs may still be running."""

    type: Literal["cancel"]
    index: int = Field(ge=0)
    execution: Execution
    config: BatchConfig
    tenant_id: str = Field(pattern=TENANT_PATTERN)


class SummarizeMessage(_Strict):
    type: Literal["summarize"]
    task_token: TaskToken
    execution: Execution
    config: BatchConfig
    plan: Plan
    map: dict[str, Any] | None = None
    """Map output when it finished: ``MapRunArn`` and ``ResultWriterDetails``."""
    map_error: dict[str, Any] | None = None
    """``{"Error", "Cause"}`` when the Map itself failed (e.g. tolerance exceeded on AWS)."""


class BatchMessage(BaseModel):
    """Any queue message, told apart by ``type``."""

    message: Annotated[
        PlanMessage | ItemMessage | SummarizeMessage | CancelMessage, Field(discriminator="type")
    ]


class FailedItem(_Strict):
    index: int
    id: str
    audio_s3_url: str
    error: str = Field(description="The job's failure code, or States.HeartbeatTimeout etc.")
    message: str = ""
    job_id: str | None = None


class ResultLocations(_Strict):
    summary: str
    items: str
    succeeded: str
    failed: str
    map_run_manifest: str | None = None


class Summary(_Strict):
    """The batch's outcome: the execution output, and ``summary.json`` in the results bucket."""

    status: Literal["succeeded", "failed"]
    error: str | None = None
    reason: str
    execution_arn: str
    total: int
    succeeded: int
    failed: int
    not_run: int
    failure_percentage: float
    tolerated_failure_percentage: float
    failed_items: list[FailedItem]
    failed_items_truncated: bool
    results: ResultLocations
