"""MultiTalk's flow-matching schedule, expressed through diffusers' Euler scheduler.

MultiTalk samples at ``t = linspace(1000, 1, N)`` followed by 0, each shifted by
``t' = s t / (1 + (s - 1) t)`` on ``t / 1000``. diffusers' default ``shift`` path shifts
``sigma_min`` twice and ends at 0.047 instead of 0.007 for 40 steps at shift 7, so we pass the
shifted sigmas explicitly to a scheduler configured with ``shift=1``.
"""

from __future__ import annotations

import numpy as np
from diffusers import FlowMatchEulerDiscreteScheduler

NUM_TRAIN_TIMESTEPS = 1000


def multitalk_sigmas(num_steps: int, shift: float) -> np.ndarray:
    """The ``num_steps`` shifted sigmas MultiTalk denoises at (the terminal 0 excluded)."""
    t = np.linspace(NUM_TRAIN_TIMESTEPS, 1, num_steps, dtype=np.float32) / NUM_TRAIN_TIMESTEPS
    return (shift * t / (1 + (shift - 1) * t)).astype(np.float64)


def distilled_sigmas(num_steps: int, shift: float) -> np.ndarray:
    """The sigmas a step-distillation LoRA was trained on (lightx2v's few-step schedule).

    Evenly spaced from 1 without reaching 0, then shifted: for 4 steps at shift 5 the timesteps
    1000, 937.5, 833.3 and 625 of lightx2v's distilled Wan I2V scheduler. MultiTalk's own
    ``linspace(1000, 1, N)`` would instead end at 1 and miss the steps the LoRA learned.
    """
    t = 1.0 - np.arange(num_steps, dtype=np.float64) / num_steps
    return shift * t / (1 + (shift - 1) * t)


def make_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """An Euler flow-matching scheduler that applies no shift of its own."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=1.0)


def set_multitalk_timesteps(
    scheduler: FlowMatchEulerDiscreteScheduler,
    num_steps: int,
    shift: float,
    distilled: bool = False,
) -> None:
    """Load MultiTalk's sigmas (or the distilled ones) into ``scheduler``; it appends the 0."""
    sigmas = distilled_sigmas if distilled else multitalk_sigmas
    scheduler.set_timesteps(sigmas=sigmas(num_steps, shift).tolist())
