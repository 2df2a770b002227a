"""Per-deployment acceleration, read once per container from the environment.

==============================  =========  =====================================================
variable                        default    meaning
==============================  =========  =====================================================
MULTITALK_ATTENTION_BACKEND     auto       a diffusers attention backend name, or ``auto``:
                                           FlashAttention 3 or SageAttention 2 where installed
                                           on Hopper, else PyTorch's own SDPA (``native``)
MULTITALK_COMPILE               auto       ``on``/``off``; ``auto`` compiles on CUDA only
MULTITALK_FP8                   off        ``on``: fp8 linear layers in the transformer blocks
                                           (torchao; needs compute capability 8.9 or newer)
MULTITALK_VAE_TILING            off        ``on``: decode in spatial tiles (less memory at 720p)
MULTITALK_WARMUP                auto       ``on``/``off``: render a short warm-up clip when the
                                           container loads its default preset (``warmup.py``);
                                           ``auto`` warms up where the transformer compiles
==============================  =========  =====================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modal_service.multitalk.acceleration.errors import AccelerationError

_ENV = {
    "attention_backend": "MULTITALK_ATTENTION_BACKEND",
    "compile": "MULTITALK_COMPILE",
    "fp8": "MULTITALK_FP8",
    "vae_tiling": "MULTITALK_VAE_TILING",
    "warmup": "MULTITALK_WARMUP",
}


class DeploymentAcceleration(BaseModel):
    """What a container applies once, at load (changing it later would recompile)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attention_backend: str = Field(default="auto", min_length=1, max_length=64)
    compile: Literal["auto", "on", "off"] = "auto"
    fp8: bool = False
    vae_tiling: bool = False
    warmup: Literal["auto", "on", "off"] = "auto"

    @field_validator("fp8", "vae_tiling", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lower() not in ("on", "off"):
                raise ValueError("use on or off")
            return value.lower() == "on"
        return value

    def compiles_on(self, device_type: str) -> bool:
        return self.compile == "on" or (self.compile == "auto" and device_type == "cuda")

    def warms_up(self, compiled: bool) -> bool:
        """Whether a container renders the warm-up clip; ``auto``: only where it compiles (the
        compile is most of what a first job would otherwise pay)."""
        return self.warmup == "on" or (self.warmup == "auto" and compiled)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeploymentAcceleration:
        """Settings from ``MULTITALK_*`` variables; a bad value names its variable."""
        environ = os.environ if environ is None else environ
        values = {field: environ[var] for field, var in _ENV.items() if var in environ}
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_ENV[str(error['loc'][0])]}: {error['msg']}" for error in exc.errors()
            )
            raise AccelerationError(
                f"bad acceleration setting: {problems}", "acceleration_config"
            ) from exc
