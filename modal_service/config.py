"""Settings of the internal API and the worker, read from environment variables.

One name per setting, listed here and nowhere else. The defaults are the production ones
(Modal, https only); the local stack and the tests override them through the environment or by
constructing the models directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field


class _EnvSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build the settings from the variables named by each field's alias."""
        env = os.environ if environ is None else environ
        values = {
            field.alias: env[field.alias]
            for field in cls.model_fields.values()
            if field.alias and env.get(field.alias, "") != ""
        }
        return cls.model_validate(values)


class ServiceSettings(_EnvSettings):
    """How the internal API runs and which job runner it uses."""

    mode: Literal["modal", "local"] = Field(default="modal", alias="MODAL_SERVICE_MODE")
    """``local`` allows plain http to loopback addresses and the local runner."""
    runner: Literal["modal", "local"] | None = Field(default=None, alias="MODAL_SERVICE_RUNNER")
    """Defaults to the mode's runner."""
    app_name: str = Field(default="multitalk-video", alias="MODAL_SERVICE_APP_NAME")
    worker_class: str = Field(default="MultiTalkWorker", alias="MODAL_SERVICE_WORKER_CLASS")
    call_registry: str = Field(default="multitalk-video-calls", alias="MODAL_SERVICE_CALL_REGISTRY")
    """The Modal Dict mapping job ids to call ids (submissions are idempotent per job)."""
    max_local_workers: int = Field(default=1, ge=1, le=16, alias="MODAL_SERVICE_MAX_LOCAL_WORKERS")
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, le=1024**2, alias="MODAL_SERVICE_MAX_BODY"
    )
    local_proxy_key: str | None = Field(default=None, alias="MODAL_SERVICE_PROXY_KEY")
    local_proxy_secret: str | None = Field(
        default=None, alias="MODAL_SERVICE_PROXY_SECRET", repr=False
    )
    """Local mode only: when both are set the API demands Modal's proxy-auth headers
    (``Modal-Key``/``Modal-Secret``) like Modal does, so callers are tested with them."""

    @property
    def allow_loopback_http(self) -> bool:
        return self.mode == "local"

    @property
    def runner_kind(self) -> Literal["modal", "local"]:
        return self.runner or self.mode


class WorkerSettings(_EnvSettings):
    """Limits, retries and timings of one worker process or container."""

    mode: Literal["modal", "local"] = Field(default="modal", alias="MODAL_SERVICE_MODE")
    tmp_dir: Path | None = Field(default=None, alias="MULTITALK_WORKER_TMP_DIR")
    weights_dir: Path | None = Field(default=None, alias="MULTITALK_WEIGHTS_DIR")
    device: str | None = Field(default=None, alias="MULTITALK_DEVICE")
    gpus_per_container: int = Field(default=1, ge=1, le=8, alias="MULTITALK_GPUS_PER_CONTAINER")
    """GPUs one render splits its transformer across (context parallelism, one process each);
    set at deploy time with the GPU request (``H100:8``)."""
    transfer_attempts: int = Field(default=3, ge=1, le=10, alias="MULTITALK_TRANSFER_ATTEMPTS")
    transfer_backoff_s: float = Field(default=1.0, ge=0, le=60, alias="MULTITALK_TRANSFER_BACKOFF")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120, alias="MULTITALK_CONNECT_TIMEOUT")
    read_timeout_s: float = Field(default=60.0, gt=0, le=600, alias="MULTITALK_READ_TIMEOUT")
    progress_interval_s: float = Field(default=5.0, ge=0, le=300, alias="MULTITALK_PROGRESS_EVERY")
    callback_timeout_s: float = Field(
        default=10.0, gt=0, le=120, alias="MULTITALK_CALLBACK_TIMEOUT"
    )
    callback_initial_delay_s: float = Field(
        default=1.0, ge=0, le=60, alias="MULTITALK_CALLBACK_INITIAL_DELAY"
    )
    callback_max_delay_s: float = Field(
        default=30.0, ge=0, le=600, alias="MULTITALK_CALLBACK_MAX_DELAY"
    )
    final_callback_window_s: float = Field(
        default=900.0, ge=0, le=86400, alias="MULTITALK_FINAL_CALLBACK_WINDOW"
    )
    """How long a final event (succeeded/failed) is retried while the receiver is down. The
    outcome is also the call's return value, so ``GET /v1/jobs/{call_id}`` still reports it."""
    cancelled_callback_window_s: float = Field(
        default=30.0, ge=0, le=3600, alias="MULTITALK_CANCELLED_CALLBACK_WINDOW"
    )
    """The same for a cancelled job: the cancel came from the AWS side, which has settled the job
    already, so a GPU is not held for long to tell it."""
    checkpoint_dir: Path | None = Field(default=None, alias="MULTITALK_CHECKPOINT_DIR")
    """Where each job records its finished clips, so a retry after a crash resumes after the last
    one (on Modal a Volume; locally the runner's directory). Unset: no checkpoints."""
    checkpoint_ttl_s: float = Field(
        default=6 * 3600.0, ge=600, le=7 * 86400, alias="MULTITALK_CHECKPOINT_TTL"
    )
    """How long an orphaned checkpoint (its job never came back) stays before a job removes it;
    longer than any one clip takes, so a running job's checkpoint is never touched."""
    gpu_hour_usd: float = Field(default=4.0, ge=0, le=1000, alias="MULTITALK_GPU_HOUR_USD")
    """The price of one GPU for one hour, for each job's ``estimated_cost_usd``. An assumption:
    4.0 is about an H100/H200-class GPU on Modal's list prices; set the deployment's own rate."""

    @property
    def allow_loopback_http(self) -> bool:
        return self.mode == "local"
