"""Step caching for one render: diffusers' TaylorSeer cache on the MultiTalk transformer.

In TaylorSeer's "lite" form the 40 blocks are skipped outright on cached steps and the output
projection's result is predicted from the last computed steps (a first-order Taylor
expansion in the step index), so a cached step costs only the embedders. Among diffusers'
cache hooks it is the one that runs under regional ``torch.compile`` (first-block cache and
MagCache fail to trace there), and it needs no per-model calibration (MagCache ratios and
TeaCache coefficients exist for Wan I2V only at reference settings, not for MultiTalk).

The cache's state is reset at every clip (each clip is a fresh sampling run) and kept apart
per guidance branch when the branches run as separate forwards.
"""

from __future__ import annotations

import contextlib

import torch

from modal_service.multitalk.acceleration.profiles import StepCache


class CachedSteps:
    """Enables the cache on ``transformer`` for one render; ``with`` it around the render."""

    def __init__(self, transformer: torch.nn.Module, cache: StepCache, steps: int) -> None:
        self.transformer = transformer
        self.cache = cache
        self.steps = steps

    def __enter__(self) -> CachedSteps:
        from diffusers import TaylorSeerCacheConfig

        self.transformer.enable_cache(
            TaylorSeerCacheConfig(
                cache_interval=self.cache.interval,
                disable_cache_before_step=self.cache.warmup_steps,
                disable_cache_after_step=self.steps - self.cache.final_steps,
                max_order=1,
                taylor_factors_dtype=torch.float32,
                use_lite_mode=True,
            )
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.transformer.disable_cache()

    def new_clip(self) -> None:
        """Forget the previous clip's steps: the next forward is step 0 again."""
        self.transformer._reset_stateful_cache()

    def branch(self, name: str) -> contextlib.AbstractContextManager[None]:
        """The cache context of one guidance branch (or of all of them, batched)."""
        return self.transformer.cache_context(name)
