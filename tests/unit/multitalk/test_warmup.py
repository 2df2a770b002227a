"""The warm-up render at load: after it, a real job compiles nothing; without it, the job does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modal_service.multitalk import RenderSpec
from modal_service.multitalk.acceleration import DeploymentAcceleration
from modal_service.multitalk.acceleration.errors import AccelerationError
from modal_service.worker.renderers import RendererCache


def test_warmup_setting_follows_compile_by_default() -> None:
    auto = DeploymentAcceleration.from_env({})
    assert auto.warms_up(compiled=True)
    assert not auto.warms_up(compiled=False)
    assert DeploymentAcceleration.from_env({"MULTITALK_WARMUP": "on"}).warms_up(compiled=False)
    assert not DeploymentAcceleration.from_env({"MULTITALK_WARMUP": "off"}).warms_up(True)
    with pytest.raises(AccelerationError, match="MULTITALK_WARMUP"):
        DeploymentAcceleration.from_env({"MULTITALK_WARMUP": "yes"})


def test_without_compile_auto_does_not_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTITALK_COMPILE", "off")
    monkeypatch.delenv("MULTITALK_WARMUP", raising=False)
    renderer = RendererCache(device="cpu").warm_up("tiny")
    assert renderer.warmup is None


@pytest.mark.slow  # Inductor compiles C++ on the CPU: a minute or two under load
@pytest.mark.usefixtures("fresh_dynamo")
def test_after_a_warm_up_a_real_job_compiles_nothing(
    monkeypatch: pytest.MonkeyPatch, media: dict, tmp_path: Path
) -> None:
    monkeypatch.setenv("MULTITALK_COMPILE", "on")
    # The job's portrait is 2:3 like the warm-up's, at the default resolution: the shapes the
    # warm-up covers. Its audio, length, seed and steps are its own: 12 steps take balanced
    # through cached steps (the warm-up's 2 do not).
    spec = RenderSpec(
        audio_paths=[media["voice"]], image_path=media["portrait"], seed=11, sample_steps=12
    )

    monkeypatch.setenv("MULTITALK_WARMUP", "off")
    cold = RendererCache(device="cpu").warm_up("tiny")
    assert cold.warmup is None
    assert cold.render(spec, tmp_path / "cold.mp4").graphs_compiled > 0

    monkeypatch.setenv("MULTITALK_WARMUP", "auto")  # on: this deployment compiles
    torch._dynamo.reset()  # the cold job's graphs would otherwise serve the warm renderer
    warm = RendererCache(device="cpu").warm_up("tiny")
    assert warm.warmup is not None
    assert warm.warmup.error is None
    assert warm.warmup.graphs_compiled > 0
    assert set(warm.warmup.graphs_by_profile) == {"quality", "balanced", "turbo"}
    assert warm.warmup.seconds > 0
    for speed in ("quality", "balanced", "turbo"):
        outcome = warm.render(spec.model_copy(update={"speed": speed}), tmp_path / f"{speed}.mp4")
        assert outcome.graphs_compiled == 0, speed
