"""The named speed profiles a job chooses with ``options.speed``.

========  ==============================================  =====================================
profile   what changes                                    what it costs in quality
========  ==============================================  =====================================
quality   nothing: the reference sampler, 40 steps x 3    none (the reference output)
          guidance passes, fp32 VAE decode
balanced  the same 40 steps, but about half the           small: skipped steps are predicted
          transformer passes (TaylorSeer step cache)      from the last computed ones; the
          and a bf16 VAE decode                           decode differs by ~1/255 per pixel
turbo     4 steps with a distillation LoRA fused into     visible on fast motion and fine
          the weights, 1 pass per step, bf16 decode       detail; the LoRA's own trade-off
========  ==============================================  =====================================

Without a LoRA installed, turbo falls back to fewer undistilled steps (the renderer notes it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modal_service.contracts import SpeedProfile


class StepCache(BaseModel):
    """TaylorSeer step caching (diffusers), counted in denoising steps of one clip.

    The transformer runs fully for the first ``warmup_steps`` and the last ``final_steps`` (where
    the video's structure forms and its detail settles), and every ``interval``-th step between;
    the other steps reuse a first-order Taylor prediction of the model output.
    """

    model_config = ConfigDict(frozen=True)

    interval: int = Field(default=3, ge=2, le=10)
    warmup_steps: int = Field(default=5, ge=1)
    final_steps: int = Field(default=3, ge=0)

    def computed_steps(self, steps: int) -> list[int]:
        """The steps (0-based) the transformer really runs, out of ``steps``."""
        first_interval_step = self.warmup_steps + 1
        return [
            step
            for step in range(steps)
            if step < self.warmup_steps
            or step >= steps - self.final_steps
            or (step >= first_interval_step and (step - first_interval_step) % self.interval == 0)
        ]


class SpeedSettings(BaseModel):
    """What one profile does to a render."""

    model_config = ConfigDict(frozen=True)

    name: SpeedProfile
    distilled: bool = False
    """Sample with the distillation LoRA fused (its preset's turbo steps, guidance off)."""
    step_cache: StepCache | None = None
    vae_decode: Literal["float32", "bfloat16"] = "float32"


PROFILES: dict[str, SpeedSettings] = {
    "quality": SpeedSettings(name="quality"),
    "balanced": SpeedSettings(name="balanced", step_cache=StepCache(), vae_decode="bfloat16"),
    "turbo": SpeedSettings(name="turbo", distilled=True, vae_decode="bfloat16"),
}
