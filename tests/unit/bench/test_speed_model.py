"""The estimates' data file: what the generator makes from the committed results, labelled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import get_args

import pytest

from aws.lambda_proxy.config import GPUS_PER_CONTAINER, GpuKind
from aws.lambda_proxy.jobs.estimate import SpeedModel
from scripts.bench import speed_model
from scripts.bench.results import RESULTS_DIR
from scripts.package_lambdas import source_files


def test_the_committed_data_file_is_what_the_committed_results_make() -> None:
    assert speed_model.DATA_FILE.read_text() == speed_model.render(speed_model.build())
    assert speed_model.main(["--check"]) == 0


def test_the_lambda_reads_it_and_ships_it() -> None:
    model = SpeedModel.model_validate_json(speed_model.DATA_FILE.read_bytes())
    assert set(model.gpus) == set(get_args(GpuKind))
    for gpu in model.gpus.values():
        for profiles in gpu.speedup.values():
            assert all(set(counts) == set(GPUS_PER_CONTAINER) for counts in profiles.values())
    assert "aws/lambda_proxy/jobs/speed_model.json" in {name for _, name in source_files()}


def test_no_gpu_has_measured_anything_yet_so_every_figure_is_projected() -> None:
    model = json.loads(speed_model.DATA_FILE.read_text())
    measured = [path.name for path in RESULTS_DIR.glob("gpu_render*.json")]
    assert measured in ([], ["gpu_render_smoke.json"])  # the CPU smoke run is not a GPU's
    sources = {model["start_s"]["source"]}
    for gpu in model["gpus"].values():
        sources |= {figure["source"] for figure in gpu["pass_s"].values()}
        for profiles in gpu["speedup"].values():
            for counts in profiles.values():
                sources |= {figure["source"] for figure in counts.values()}
    assert sources == {"projected"}


def test_projected_passes_follow_the_flops_and_the_profiles_follow_flops_json() -> None:
    model = speed_model.build()
    arithmetic = json.loads((RESULTS_DIR / "parallel_arithmetic.json").read_text())["figures"]
    tflops = arithmetic["forward_tflops_per_sample"]["720p/1_speaker"]
    peak = arithmetic["assumptions"]["gpu_kinds"]["A100-80GB"]["peak_tflops"]
    mfu = arithmetic["assumptions"]["mfu"]
    assert model["gpus"]["A100-80GB"]["pass_s"]["720p"]["value"] == pytest.approx(
        tflops / (peak * mfu), abs=1e-4
    )
    # balanced computes 19 of 40 steps, 3 batched passes each (flops.json: 57 passes)
    assert model["profiles"]["balanced"] == {"steps": 40, "passes_per_step": 57 / 40}
    assert model["profiles"]["turbo"] == {"steps": 4, "passes_per_step": 1.0}


def test_the_profile_steps_are_the_presets() -> None:
    from modal_service.multitalk.presets import MULTITALK_14B

    assert {
        "quality": MULTITALK_14B.sample_steps,
        "balanced": MULTITALK_14B.sample_steps,
        "turbo": MULTITALK_14B.turbo_steps_with_lora,
    } == speed_model.PROFILE_STEPS


def _gpu_render(device: str, preset: str, forwards: list[float], gpus: int = 1) -> dict:
    run = {"computed_forward_s": forwards, "guidance_passes": 3}
    runs = {"480p/compiled/quality": run}
    figures = {"device": device, "preset": preset, "gpus": gpus, "runs": runs}
    return {"benchmark": "gpu_render", "figures": figures}


def test_a_gpu_run_replaces_the_projection_for_its_kind_only(tmp_path: Path) -> None:
    for name in ("flops.json", "parallel_arithmetic.json"):
        shutil.copy(RESULTS_DIR / name, tmp_path / name)
    (tmp_path / "gpu_render.json").write_text(
        json.dumps(_gpu_render("NVIDIA H200", "multitalk-14b", [9.0, 9.6]))
    )
    (tmp_path / "gpu_render_smoke.json").write_text(json.dumps(_gpu_render("cpu", "tiny", [0.01])))
    projected = speed_model.build()
    model = speed_model.build(tmp_path)
    h200 = model["gpus"]["H200"]["pass_s"]
    assert h200["480p"]["source"] == "measured"
    assert h200["480p"]["value"] == pytest.approx(9.3 / 3)
    assert "gpu_render.json" in h200["480p"]["basis"]
    assert h200["720p"] == projected["gpus"]["H200"]["pass_s"]["720p"]
    assert model["gpus"]["H100"] == projected["gpus"]["H100"]
    assert "gpu_render.json" in model["sources"]


def test_a_multi_gpu_run_measures_the_speedup_against_a_one_gpu_run(tmp_path: Path) -> None:
    for name in ("flops.json", "parallel_arithmetic.json"):
        shutil.copy(RESULTS_DIR / name, tmp_path / name)
    runs = {
        "gpu_render.json": _gpu_render("NVIDIA H200", "multitalk-14b", [9.0, 9.6]),
        "gpu_render_8gpu.json": _gpu_render("NVIDIA H200", "multitalk-14b", [1.5, 1.6], gpus=8),
    }
    for name, document in runs.items():
        (tmp_path / name).write_text(json.dumps(document))
    model = speed_model.build(tmp_path)
    h200 = model["gpus"]["H200"]
    # the split run's forwards are not a pass on one GPU
    assert h200["pass_s"]["480p"]["value"] == pytest.approx(9.3 / 3)
    eight = h200["speedup"]["480p"]["quality"]["8"]
    assert eight["source"] == "measured"
    assert eight["value"] == pytest.approx(9.3 / 1.55, abs=1e-4)
    assert h200["speedup"]["480p"]["quality"]["4"]["source"] == "projected"
    assert h200["speedup"]["480p"]["turbo"]["8"]["source"] == "projected"  # no turbo run
    assert model["gpus"]["H100"]["speedup"]["480p"]["quality"]["8"]["source"] == "projected"


def test_the_printed_examples_order_the_profiles_and_reward_more_gpus() -> None:
    examples = speed_model.example_estimates()
    assert set(examples) == {"quality", "balanced", "turbo"}
    for seconds in examples.values():
        assert seconds[8] < seconds[1]
    assert examples["quality"][1] > examples["balanced"][1] > examples["turbo"][1]
