"""What one job ended as: the worker's return value and the local runner's outcome file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from modal_service.contracts import CallState, JobError, JobId, JobResult


class JobOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: JobId
    state: Literal[CallState.SUCCEEDED, CallState.FAILED, CallState.CANCELLED]
    result: JobResult | None = None
    error: JobError | None = None
    callback_delivered: bool = False
    """Whether the final callback reached the receiver (it is retried for a long window)."""
