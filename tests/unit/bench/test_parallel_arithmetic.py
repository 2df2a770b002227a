"""The context-parallel arithmetic: volumes, the speed-up's bounds, the committed figures.

FLOPs are passed in (``forward_tflops_per_sample``) where a test is about the communication or
the formula; one test counts them on the meta device, as the CLI does.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from scripts.bench import parallel_arithmetic
from scripts.bench.parallel_arithmetic import (
    GOAL_SPEEDUP_8_GPUS,
    GPU_KINDS,
    context_parallel_estimate,
    latent_tokens,
)
from scripts.bench.results import RESULTS_DIR

TFLOPS_480P = 1825.1  # one 480p pass, scripts/bench/results/flops.json


def _estimate(gpus: int, **options: object) -> parallel_arithmetic.ParallelEstimate:
    options = {"resolution": "480p", "profile": "quality", **options}
    return context_parallel_estimate(gpus, forward_tflops_per_sample=TFLOPS_480P, **options)  # type: ignore[arg-type]


def test_the_clip_is_21_latent_frames_of_1560_tokens_at_480p() -> None:
    assert latent_tokens("480p", 81) == (1560, 21 * 1560)
    assert latent_tokens("720p", 81) == (3600, 21 * 3600)


def test_one_gpu_communicates_nothing_and_runs_at_one() -> None:
    one = _estimate(1)
    assert one.communication.bytes == 0
    assert one.communication.collectives == 0
    assert one.communication_s == 0
    assert one.speedup == 1.0
    # 3 batched CFG branches of 1,825.1 TFLOP at 40 % of 989 TFLOP/s
    assert one.compute_s == pytest.approx(3 * TFLOPS_480P / (0.4 * 989))


def test_an_all_to_all_moves_what_the_shard_sends_away() -> None:
    eight = _estimate(8)
    shard = 3 * (21 * 1560 / 8) * 5120 * 2  # batch x S/N x dim, bf16
    assert eight.communication.all_to_all_bytes == pytest.approx(40 * 4 * 7 / 8 * shard)


@pytest.mark.parametrize("gpus", [2, 4, 8])
def test_all_to_all_volume_per_rank_scales_as_n_minus_1_over_n_squared(gpus: int) -> None:
    two = _estimate(2).communication.all_to_all_bytes
    ratio = _estimate(gpus).communication.all_to_all_bytes / two
    assert ratio == pytest.approx(((gpus - 1) / gpus**2) / (1 / 4))


def test_two_speakers_add_the_reference_all_reduce_only() -> None:
    one, two = _estimate(4, speakers=1), _estimate(4, speakers=2)
    assert one.communication.all_reduce_bytes == 0
    keys = 3 * 1560 * 5120 * 2
    assert two.communication.all_reduce_bytes == pytest.approx(40 * 2 * 3 / 4 * (keys + 12))
    assert two.communication.collectives == one.communication.collectives + 80
    assert two.communication.all_to_all_bytes == one.communication.all_to_all_bytes


@pytest.mark.parametrize("profile", ["quality", "turbo"])
@pytest.mark.parametrize("resolution", ["480p", "720p"])
def test_speedup_grows_with_gpus_and_stays_under_n(profile: str, resolution: str) -> None:
    tflops = TFLOPS_480P if resolution == "480p" else 6860.0
    speedups = [
        context_parallel_estimate(
            gpus,
            resolution,
            profile,
            forward_tflops_per_sample=tflops,  # type: ignore[arg-type]
        ).speedup
        for gpus in (1, 2, 4, 8)
    ]
    assert speedups[0] == 1.0
    assert all(a < b for a, b in itertools.pairwise(speedups))
    assert all(s < n for s, n in zip(speedups[1:], (2, 4, 8), strict=True))


def test_speedup_is_the_formula_and_overlap_only_helps() -> None:
    plain = _estimate(8)
    assert plain.speedup == pytest.approx(
        8 * plain.compute_s / (plain.compute_s + plain.communication_s)
    )
    hidden = _estimate(8, overlap=0.5)
    assert hidden.communication_s == pytest.approx(plain.communication_s / 2)
    assert plain.speedup < hidden.speedup < 8
    assert _estimate(8, overlap=1.0).speedup == pytest.approx(8)


def test_a_slower_link_lowers_the_speedup() -> None:
    assert _estimate(8, link_efficiency=0.2).speedup < _estimate(8).speedup


@pytest.mark.parametrize("gpus", [0, 3, 6, 7])
def test_a_split_ulysses_cannot_make_is_refused(gpus: int) -> None:
    with pytest.raises(ValueError, match="divisor"):
        _estimate(gpus)


def test_bad_assumptions_are_refused() -> None:
    with pytest.raises(ValueError, match="mfu"):
        _estimate(2, mfu=0)
    with pytest.raises(ValueError, match="speakers"):
        _estimate(2, speakers=3)


def test_the_committed_figures_report_the_8_gpu_goal_as_the_arithmetic_has_it() -> None:
    document = json.loads((RESULTS_DIR / "parallel_arithmetic.json").read_text())
    figures = document["figures"]
    assert document["command"].startswith("python -m scripts.bench.parallel_arithmetic")
    assert document["machine"]["cpus"] >= 1
    goal = figures["goal_8xh100_480p_quality"]
    assert goal["goal"] == GOAL_SPEEDUP_8_GPUS
    row = figures["estimates"]["H100/480p/quality/1_speaker/8_gpu"]
    assert goal["speedup"] == pytest.approx(row["speedup"], abs=0.01)
    assert goal["met_by_arithmetic"] == (goal["speedup"] >= GOAL_SPEEDUP_8_GPUS)
    # the saved count is flops.json's
    flops = json.loads((RESULTS_DIR / "flops.json").read_text())["figures"]
    assert figures["forward_tflops_per_sample"]["480p/1_speaker"] == pytest.approx(
        flops["quality/1_speaker"]["forward_tflops"], abs=0.1
    )
    assert set(figures["assumptions"]["gpu_kinds"]) == set(GPU_KINDS)


def test_the_cli_counts_the_flops_and_saves_every_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = parallel_arithmetic.main([], results_dir=tmp_path)
    saved = json.loads((tmp_path / "parallel_arithmetic.json").read_text())
    assert saved["figures"] == json.loads(json.dumps(figures))
    assert saved["command"] == "python -m scripts.bench.parallel_arithmetic"
    # 3 GPU kinds x 2 resolutions x 3 profiles x 2 speaker counts x 4 GPU counts
    assert len(saved["figures"]["estimates"]) == 144
    counted = saved["figures"]["forward_tflops_per_sample"]
    assert counted["480p/1_speaker"] == pytest.approx(TFLOPS_480P, abs=0.1)
    assert counted["720p/1_speaker"] > 3 * counted["480p/1_speaker"]
    table = capsys.readouterr().out
    assert "480p quality" in table
    assert "speed-up" in table
