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


def make_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """An Euler flow-matching scheduler that applies no shift of its own."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=1.0)


def set_multitalk_timesteps(
    scheduler: FlowMatchEulerDiscreteScheduler, num_steps: int, shift: float
) -> None:
    """Load MultiTalk's sigmas into ``scheduler`` (it appends the terminal 0 itself)."""
    scheduler.set_timesteps(sigmas=multitalk_sigmas(num_steps, shift).tolist())
