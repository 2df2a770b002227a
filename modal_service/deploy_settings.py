"""The GPU class's Modal settings, read from ``MULTITALK_*`` variables when ``modal deploy`` runs.

``modal_service/app.py`` only wires these into ``@app.cls``; they are parsed and checked here so
that a typo or an out-of-range value stops the deploy with a message naming the variable,
instead of deploying something other than what was asked (or failing later inside Modal).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Self

from pydantic import Field, ValidationError, field_validator, model_validator

from modal_service.config import _EnvSettings

_GPU_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class DeploySettingsError(ValueError):
    """A deploy-time variable is malformed or out of range; the message names it."""


class DeploySettings(_EnvSettings):
    """Where the GPU containers run, how many stay warm and how long an idle one is kept."""

    gpus: tuple[str, ...] = Field(default=("H100", "A100-80GB"), alias="MULTITALK_GPUS")
    """GPU kinds in order of preference (Modal takes the first it can schedule), comma
    separated; the count per container is ``gpus_per_container``, not part of a name."""
    gpus_per_container: int = Field(default=1, ge=1, le=8, alias="MULTITALK_GPUS_PER_CONTAINER")
    """Modal's ``H100:N``; 8 is the most one Modal container holds."""
    max_containers: int = Field(default=4, ge=1, le=1000, alias="MULTITALK_MAX_GPU_CONTAINERS")
    min_containers: int = Field(default=0, ge=0, le=1000, alias="MULTITALK_MIN_CONTAINERS")
    """Containers kept running even with no job: no cold start, billed all the time."""
    buffer_containers: int = Field(default=0, ge=0, le=1000, alias="MULTITALK_BUFFER_CONTAINERS")
    """Idle containers kept ready beyond the busy ones while the class has work."""
    scaledown_window_s: int = Field(
        default=300, ge=2, le=3600, alias="MULTITALK_SCALEDOWN_WINDOW_S"
    )
    """How long an idle container above ``min_containers`` waits for a job before it stops
    (Modal's bounds: 2 to 3600 s)."""
    job_timeout_minutes: int = Field(
        default=60, ge=1, le=24 * 60, alias="MULTITALK_JOB_TIMEOUT_MINUTES"
    )
    gpu_snapshot: bool = Field(default=False, alias="MULTITALK_GPU_SNAPSHOT")
    """Modal's GPU memory snapshot (alpha): the default preset's weights are loaded onto the GPU
    before the snapshot, so a restored container starts with them."""

    @field_validator("gpus", mode="before")
    @classmethod
    def _split_gpus(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        if not names:
            raise ValueError("name at least one GPU kind, e.g. H100,A100-80GB")
        for name in names:
            if not _GPU_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a GPU kind (set the count with "
                    "MULTITALK_GPUS_PER_CONTAINER, not H100:N)"
                )
        return names

    @field_validator("gpu_snapshot", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        # The same words as the acceleration switches (MULTITALK_FP8=on), nothing looser.
        if isinstance(value, str):
            if value.lower() not in ("on", "off"):
                raise ValueError("use on or off")
            return value.lower() == "on"
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_containers > self.max_containers:
            raise ValueError(
                f"MULTITALK_MIN_CONTAINERS ({self.min_containers}) is more than "
                f"MULTITALK_MAX_GPU_CONTAINERS ({self.max_containers})"
            )
        if self.gpu_snapshot and self.gpus_per_container > 1:
            # The snapshot hook loads the weights in the container's first process on one GPU;
            # a multi-GPU container starts one process per GPU after the restore instead.
            raise ValueError(
                "MULTITALK_GPU_SNAPSHOT=on needs MULTITALK_GPUS_PER_CONTAINER=1 "
                "(the snapshot holds one GPU's weights)"
            )
        return self

    @property
    def gpu(self) -> list[str]:
        """Modal's ``gpu=`` argument: a ranked fallback list, each entry ``KIND`` or ``KIND:N``."""
        count = self.gpus_per_container
        return [name if count == 1 else f"{name}:{count}" for name in self.gpus]

    @property
    def experimental_options(self) -> dict[str, bool]:
        return {"enable_gpu_snapshot": True} if self.gpu_snapshot else {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from ``environ`` (the deploying shell's); :class:`DeploySettingsError`
        naming each bad variable otherwise."""
        env = os.environ if environ is None else environ
        try:
            return super().from_env(env)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                variable = ".".join(str(part) for part in error["loc"])
                given = f" (got {env[variable]!r})" if variable in env else ""
                prefix = f"{variable}: " if variable else ""
                # A check of ours says it all; pydantic's own messages are kept as they are.
                message = (
                    str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
                )
                problems.append(f"{prefix}{message}{given}")
            raise DeploySettingsError("bad deploy setting: " + "; ".join(problems)) from exc
