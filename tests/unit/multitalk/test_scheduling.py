from __future__ import annotations

import numpy as np
import pytest
from diffusers import FlowMatchEulerDiscreteScheduler

from modal_service.multitalk.scheduling import make_scheduler, set_multitalk_timesteps


def reference_schedule(steps: int, shift: float) -> np.ndarray:
    """MultiTalk's timesteps, written out from its generate(): linspace(1000, 1) + [0], shifted."""
    timesteps = [*list(np.linspace(1000, 1, steps, dtype=np.float32)), 0.0]
    out = []
    for t in timesteps:
        u = t / 1000
        out.append(shift * u / (1 + (shift - 1) * u) * 1000)
    return np.array(out, dtype=np.float64)


@pytest.mark.parametrize(("steps", "shift"), [(40, 7.0), (40, 11.0), (8, 2.0), (4, 1.0), (1, 5.0)])
def test_scheduler_follows_the_reference_schedule(steps: int, shift: float) -> None:
    scheduler = make_scheduler()
    set_multitalk_timesteps(scheduler, steps, shift)
    expected = reference_schedule(steps, shift)
    np.testing.assert_allclose(scheduler.sigmas.numpy(), expected / 1000, atol=1e-6)
    np.testing.assert_allclose(scheduler.timesteps.numpy(), expected[:-1], atol=1e-3)


def test_euler_step_is_the_reference_update() -> None:
    """MultiTalk: x <- x - v * (t_i - t_(i+1)) / 1000."""
    import torch

    scheduler = make_scheduler()
    set_multitalk_timesteps(scheduler, 5, 7.0)
    expected = reference_schedule(5, 7.0)
    x, v = torch.randn(2, 3), torch.randn(2, 3)
    stepped = scheduler.step(v, scheduler.timesteps[0], x, return_dict=False)[0]
    torch.testing.assert_close(stepped, x - v * float(expected[0] - expected[1]) / 1000)


def test_the_default_shift_path_would_not_match() -> None:
    """Why sigmas are passed explicitly: diffusers' own shift ends elsewhere."""
    default = FlowMatchEulerDiscreteScheduler(shift=7.0)
    default.set_timesteps(40)
    assert abs(float(default.sigmas[-2]) - reference_schedule(40, 7.0)[-2] / 1000) > 0.03
