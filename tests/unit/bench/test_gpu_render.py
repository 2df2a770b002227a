"""The GPU benchmark's own code path, run at tiny size on the CPU so it cannot rot.

The figures are not asserted (a benchmark, not a test); what is asserted is that every stage is
timed, every transformer forward is seen, told computed from cached and counted for FLOPs, and
the arithmetic of the report (projection, per video-second, cost) follows from what was
measured. The full-size build is checked on the meta device: the right components at the right
sizes and dtypes, no memory touched.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from modal_service.multitalk.acceleration import PROFILES
from scripts.bench.gpu_render import main
from scripts.bench.random_model import FULL_SIZE, build_random_pipeline

STAGES = {"text_encoder", "image_encoder", "wav2vec2", "transformer", "vae_encode", "vae_decode"}
RUNS = ["480p/eager/quality", "480p/eager/balanced", "480p/eager/turbo"]
STEPS = 12


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    results = tmp_path_factory.mktemp("bench-results")
    figures = main(["--size", "smoke", "--steps", str(STEPS)], results_dir=results)
    return figures, results / "gpu_render_smoke.json"


def test_the_smoke_run_saves_its_figures_with_the_machine(smoke: tuple[dict, Path]) -> None:
    figures, saved = smoke
    document = json.loads(saved.read_text())
    assert document["figures"] == json.loads(json.dumps(figures))
    assert document["command"] == f"python -m scripts.bench.gpu_render --size smoke --steps {STEPS}"
    assert document["machine"]["cpus"] >= 1
    assert figures["device"] == "cpu"
    assert set(figures["runs"]) == set(RUNS)
    assert figures["applied"]["eager"]["attention_backend"] == "native"
    assert figures["applied"]["eager"]["lora_layers"] > 0


@pytest.mark.parametrize("run", RUNS)
def test_every_stage_and_forward_is_timed(smoke: tuple[dict, Path], run: str) -> None:
    figures = smoke[0]["runs"][run]
    assert set(figures["stages_s"]) == {*STAGES, "mp4_encode"}
    assert all(seconds > 0 for seconds in figures["stages_s"].values())
    # Classifier-free guidance branches are batched: one forward per step.
    assert figures["transformer_forwards"] == figures["sample_steps"]
    forwards = figures["computed_forward_s"] + figures["cached_forward_s"]
    assert len(forwards) == figures["sample_steps"]
    assert figures["transformer_flops"] > 0
    assert figures["mfu"] is None  # no peak figure for a CPU: no MFU is invented
    stages = sum(v for k, v in figures["stages_s"].items() if k != "mp4_encode")
    assert stages <= figures["measured_clip_s"]
    video_s = figures["frames"] / 25
    clip_s = figures["projected_clip_s"]
    assert figures["s_per_video_second"] == pytest.approx(clip_s / video_s, rel=0.01)
    cost = clip_s / 3600 * smoke[0]["gpu_hour_usd"] / video_s
    assert figures["usd_per_video_second"] == pytest.approx(cost, rel=0.01)


def test_balanced_counts_only_its_computed_forwards(smoke: tuple[dict, Path]) -> None:
    runs = smoke[0]["runs"]
    quality, balanced = runs["480p/eager/quality"], runs["480p/eager/balanced"]
    computed = len(PROFILES["balanced"].step_cache.computed_steps(STEPS))
    assert len(balanced["computed_forward_s"]) == computed < STEPS
    assert len(balanced["cached_forward_s"]) == STEPS - computed
    assert quality["cached_forward_s"] == []
    per_forward = quality["transformer_flops"] / STEPS
    assert balanced["transformer_flops"] == pytest.approx(per_forward * computed, rel=1e-3)


def test_the_projection_replaces_measured_forwards_by_the_full_count(
    smoke: tuple[dict, Path],
) -> None:
    quality = smoke[0]["runs"]["480p/eager/quality"]
    # tiny's quality samples 4 steps: 12 measured forwards stand for 4.
    assert (quality["sample_steps"], quality["full_sample_steps"]) == (STEPS, 4)
    measured = sum(quality["computed_forward_s"])
    expected = (
        quality["measured_clip_s"] - measured + statistics.mean(quality["computed_forward_s"]) * 4
    )
    assert quality["projected_clip_s"] == pytest.approx(expected, abs=0.01)


def test_turbo_fuses_its_lora_and_runs_one_pass(smoke: tuple[dict, Path]) -> None:
    turbo = smoke[0]["runs"]["480p/eager/turbo"]
    assert (turbo["guidance_passes"], turbo["sample_steps"]) == (1, 2)  # tiny's distilled steps
    assert turbo["lora_switch_s"] > 0
    assert smoke[0]["runs"]["480p/eager/quality"]["guidance_passes"] == 3


def test_the_vae_decode_is_compared_with_fp32(smoke: tuple[dict, Path]) -> None:
    vae = smoke[0]["vae_decode"]["480p"]
    assert set(vae) == {"float32", "bfloat16", "tiled_bfloat16"}
    assert 0 < vae["bfloat16"]["mean_error_levels"] < vae["bfloat16"]["max_error_levels"]
    assert all(entry["seconds"] > 0 for entry in vae.values())


def test_the_full_size_build_is_the_14b_stack_in_the_loaders_dtypes() -> None:
    pipeline, audio = build_random_pipeline(FULL_SIZE, "meta")

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
    assert 0.09 < billions(audio.model) < 0.1  # wav2vec2-base


@pytest.mark.slow  # a second process starts and builds its copy
def test_a_split_render_reports_per_gpu_figures(tmp_path: Path) -> None:
    argv = ["--size", "smoke", "--steps", "2", "--profile", "quality", "--gpus", "2"]
    figures = main(argv, results_dir=tmp_path)
    run = figures["runs"]["480p/eager/quality"]
    assert figures["gpus"] == run["gpus"] == 2
    assert run["transformer_forwards"] == 2  # rank 0's calls, each run by both ranks
    assert run["usd_per_video_second"] == pytest.approx(
        run["projected_clip_s"] / 3600 * figures["gpu_hour_usd"] * 2 / (run["frames"] / 25),
        rel=0.01,
    )
    # The arithmetic of the split, for the profile and resolution run: 1 GPU is 1.0, more GPUs
    # are faster but never by more than their count.
    speedups = figures["context_parallel"]["H100/480p/quality"]
    assert speedups[1] == 1.0
    assert all(1 < speedups[n] < n for n in (2, 4, 8))
