"""Regional torch.compile: compiled once per container, never again for a profile switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modal_service.multitalk import RenderSpec
from modal_service.multitalk.acceleration import DeploymentAcceleration
from modal_service.multitalk.acceleration.engine import Accelerator
from modal_service.multitalk.acceleration.lora_fusion import FusedLora
from modal_service.multitalk.presets import TINY, build_tiny
from modal_service.multitalk.renderer import Renderer
from tests.unit.multitalk.acceleration.support import tiny_forward_inputs
from tests.unit.multitalk.acceleration.test_profiles_render import STEPS, _frames

pytestmark = pytest.mark.slow  # Inductor compiles C++ on the CPU: about a minute in all


@pytest.mark.usefixtures("fresh_dynamo")  # counts its own first compiles
def test_profiles_switch_without_recompiling_and_match_eager(
    tiny: Renderer, media: dict, distill_lora: Path, tmp_path: Path
) -> None:
    pipeline, audio = build_tiny()
    lora = FusedLora.from_file(pipeline.transformer, distill_lora)
    accelerator = Accelerator(pipeline, DeploymentAcceleration(compile="on"), lora)
    assert accelerator.applied.compiled
    compiled = Renderer(TINY, pipeline, audio, accelerator)
    spec = RenderSpec(
        audio_paths=[media["voice"]], image_path=media["portrait"], seed=5, sample_steps=STEPS
    )
    graphs: dict[str, list[int]] = {}
    outcomes = {}
    for round_ in range(2):
        for speed in ("quality", "turbo", "balanced"):
            path = tmp_path / f"{speed}-{round_}.mp4"
            outcome = compiled.render(spec.model_copy(update={"speed": speed}), path)
            graphs.setdefault(speed, []).append(outcome.graphs_compiled)
            outcomes[path.name] = outcome
    # The first render of each profile may compile (turbo's single pass is a new batch size,
    # the step cache's hooks wrap the blocks); a repeat, with the LoRA switched twice
    # in between, compiles nothing.
    assert graphs["quality"][0] >= 1
    assert [counts[1] for counts in graphs.values()] == [0, 0, 0], graphs

    # Same inputs, same weights: the compiled transformer matches eager at the fp32 noise floor.
    # (Whole renders are not compared: with random weights and guidance scales of 4-5, the
    # sampler amplifies a 6e-7 difference per forward into several 8-bit levels in 12 steps.)
    inputs = tiny_forward_inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            pipeline.transformer(**inputs)[0],
            tiny.pipeline.transformer(**inputs)[0],
            atol=1e-5,
            rtol=1e-5,
        )
    again = compiled.render(spec, tmp_path / "repeat.mp4")
    assert again.graphs_compiled == 0
    assert np.array_equal(
        _frames(tmp_path / "quality-1.mp4", again.width, again.height),
        _frames(tmp_path / "repeat.mp4", again.width, again.height),
    )
