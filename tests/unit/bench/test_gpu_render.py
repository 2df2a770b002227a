"""The GPU benchmark's own code path, run at tiny size on the CPU so it cannot rot.

The figures are not asserted (a benchmark, not a test); what is asserted is that every stage is
timed, every transformer forward is seen and counted for FLOPs, and the arithmetic of the
report (per video-second, cost) follows from what was measured. The full-size build is checked
on the meta device: the right components at the right sizes and dtypes, no memory touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from modal_service.multitalk.presets import MULTITALK_14B
from scripts.bench.gpu_render import FULL_SIZE, build_random_renderer, main

STAGES = {"text_encoder", "image_encoder", "wav2vec2", "transformer", "vae_encode", "vae_decode"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    results = tmp_path_factory.mktemp("bench-results")
    figures = main(["--size", "smoke", "--mode", "default", "turbo"], results_dir=results)
    return figures, results / "gpu_render_smoke.json"


def test_the_smoke_run_saves_its_figures_with_the_machine(smoke: tuple[dict, Path]) -> None:
    figures, saved = smoke
    document = json.loads(saved.read_text())
    assert document["figures"] == json.loads(json.dumps(figures))
    assert document["machine"]["cpus"] >= 1
    assert figures["device"] == "cpu"
    assert set(figures["runs"]) == {"480p/default", "480p/turbo"}


@pytest.mark.parametrize("run", ["480p/default", "480p/turbo"])
def test_every_stage_and_forward_is_timed(smoke: tuple[dict, Path], run: str) -> None:
    figures = smoke[0]["runs"][run]
    assert set(figures["stages_s"]) == {*STAGES, "mp4_encode"}
    assert all(seconds > 0 for seconds in figures["stages_s"].values())
    # Classifier-free guidance branches are batched: one forward per step.
    assert figures["transformer_forwards"] == figures["sample_steps"]
    assert len(figures["transformer_forward_s"]) == figures["sample_steps"]
    assert figures["transformer_flops"] > 0
    assert figures["mfu"] is None  # no peak figure for a CPU: no MFU is invented
    stages = sum(v for k, v in figures["stages_s"].items() if k != "mp4_encode")
    assert stages <= figures["clip_s"]
    video_s = figures["frames"] / 25
    assert figures["s_per_video_second"] == pytest.approx(figures["clip_s"] / video_s, rel=0.01)
    cost = figures["clip_s"] / 3600 * smoke[0]["gpu_hour_usd"] / video_s
    assert figures["usd_per_video_second"] == pytest.approx(cost, rel=0.01)


def test_turbo_runs_fewer_passes_than_the_default(smoke: tuple[dict, Path]) -> None:
    runs = smoke[0]["runs"]
    assert runs["480p/default"]["guidance_passes"] == 3
    assert runs["480p/turbo"]["guidance_passes"] == 2
    assert runs["480p/turbo"]["transformer_flops"] < runs["480p/default"]["transformer_flops"]


def test_the_full_size_build_is_the_14b_stack_in_the_loaders_dtypes() -> None:
    renderer = build_random_renderer(FULL_SIZE, MULTITALK_14B, "meta")
    pipeline = renderer.pipeline

    def billions(module: torch.nn.Module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e9

    def dtypes(module: torch.nn.Module) -> set[torch.dtype]:
        return {p.dtype for p in module.parameters()}

    # Wan 2.1 I2V 14B (16.4 B with its image cross-attention) + MultiTalk's audio adapter.
    assert 18.5 < billions(pipeline.transformer) < 19.2
    assert dtypes(pipeline.transformer) == {torch.bfloat16, torch.float32}
    assert 5.6 < billions(pipeline.text_encoder) < 5.8  # umt5-xxl encoder
    assert dtypes(pipeline.text_encoder) == {torch.bfloat16}
    assert 0.6 < billions(pipeline.image_encoder) < 0.66  # ViT-H/14
    assert dtypes(pipeline.image_encoder) == {torch.float16}
    assert 0.12 < billions(pipeline.vae) < 0.13
    assert dtypes(pipeline.vae) == {torch.float32}
    assert 0.09 < billions(renderer.audio_encoder.model) < 0.1  # wav2vec2-base
