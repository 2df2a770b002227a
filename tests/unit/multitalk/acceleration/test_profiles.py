"""Speed profiles and deployment settings: names, step arithmetic, environment parsing."""

from __future__ import annotations

from typing import get_args

import pytest
import torch

from modal_service.contracts import SpeedProfile
from modal_service.multitalk.acceleration import (
    PROFILES,
    AccelerationError,
    DeploymentAcceleration,
    StepCache,
)
from modal_service.multitalk.acceleration.step_cache import CachedSteps
from modal_service.multitalk.presets import build_tiny_transformer
from tests.unit.multitalk.acceleration.support import count_block_runs, tiny_forward_inputs


def test_every_contract_profile_is_defined_and_nothing_else() -> None:
    assert set(PROFILES) == set(get_args(SpeedProfile))
    assert PROFILES["quality"].step_cache is None
    assert PROFILES["quality"].vae_decode == "float32"
    assert not PROFILES["quality"].distilled


@pytest.mark.parametrize(
    ("cache", "steps"),
    [(StepCache(), 40), (StepCache(), 12), (StepCache(interval=2, warmup_steps=2), 10)],
)
def test_the_steps_said_to_compute_are_the_ones_diffusers_computes(
    cache: StepCache, steps: int
) -> None:
    transformer = build_tiny_transformer()
    inputs = tiny_forward_inputs()
    with torch.no_grad(), CachedSteps(transformer, cache, steps) as cached:
        for clip in range(2):  # a second clip starts from step 0 again
            cached.new_clip()
            computed = []
            for step in range(steps):
                with count_block_runs(transformer.blocks[0]) as calls, cached.branch("all"):
                    transformer(**inputs)
                if calls:
                    computed.append(step)
            assert computed == cache.computed_steps(steps), f"clip {clip}"
    assert len(StepCache().computed_steps(40)) == 19  # the balanced profile's 2.1x


def test_deployment_settings_come_from_the_environment() -> None:
    assert DeploymentAcceleration.from_env({}) == DeploymentAcceleration()
    settings = DeploymentAcceleration.from_env(
        {
            "MULTITALK_ATTENTION_BACKEND": "_native_cudnn",
            "MULTITALK_COMPILE": "off",
            "MULTITALK_FP8": "ON",
            "MULTITALK_VAE_TILING": "on",
        }
    )
    assert settings.attention_backend == "_native_cudnn"
    assert (settings.compile, settings.fp8, settings.vae_tiling) == ("off", True, True)
    assert not settings.compiles_on("cuda")
    assert DeploymentAcceleration().compiles_on("cuda")
    assert not DeploymentAcceleration().compiles_on("cpu")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MULTITALK_FP8", "yes"), ("MULTITALK_COMPILE", "always"), ("MULTITALK_VAE_TILING", "1")],
)
def test_a_bad_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(AccelerationError, match=variable) as caught:
        DeploymentAcceleration.from_env({variable: value})
    assert caught.value.code == "model_unavailable"
