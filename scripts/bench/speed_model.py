"""The job estimates' figures, made from the benchmark results into a file the Lambda ships.

    python -m scripts.bench.speed_model [--check]

Writes ``aws/lambda_proxy/jobs/speed_model.json`` (read by ``aws/lambda_proxy/jobs/estimate.py``)
from the committed results in ``scripts/bench/results/``; ``--check`` only compares. Every figure
says where it comes from:

* ``measured``: seconds per transformer pass from a 1-GPU ``gpu_render*.json`` run of a 14B
  preset on that GPU kind (the mean computed forward of its quality clip over the CFG passes
  batched in it; the ``compiled`` variant, a deployment's default on CUDA, else ``eager``), and
  the speed-up of N GPUs from a ``--gpus N`` run against a 1-GPU run of the same kind (the
  ratio of their mean computed forwards, per resolution and profile);
* ``projected``: the pass's FLOPs (``parallel_arithmetic.json``, counted on the meta device) over
  the GPU's datasheet peak at the assumed MFU, and the multi-GPU speed-ups of
  ``parallel_arithmetic.py``. No GPU has run the benchmark yet, so today every figure is this.

Passes per step come from ``flops.json`` (balanced computes 19 of its 40 steps). The container
start is an allowance (starting a container and loading about 80 GB of weights from the Volume),
not measured. ``tests/unit/bench/test_speed_model.py`` checks that the committed file is what
this makes from the committed results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from scripts.bench.parallel_arithmetic import GPU_COUNTS
from scripts.bench.results import RESULTS_DIR

ROOT = Path(__file__).resolve().parents[2]
DATA_FILE = ROOT / "aws" / "lambda_proxy" / "jobs" / "speed_model.json"
COMMAND = "python -m scripts.bench.speed_model"

PROFILE_STEPS = {"quality": 40, "balanced": 40, "turbo": 4}
"""The 14B preset's ``sample_steps`` and ``turbo_steps_with_lora`` (presets.py; a test checks)."""
PROFILE_FLOPS_MODE = {"quality": "quality", "balanced": "balanced", "turbo": "turbo_lora"}
START_ALLOWANCE_S = 90
MEASURED_VARIANTS = ("compiled", "eager")
DEVICE_KINDS = {"H200": "H200", "H100": "H100", "A100": "A100-80GB"}
"""A substring of the benchmark's device name -> Modal's GPU name."""
PRESETS_14B = ("multitalk-14b", "infinitetalk-14b", "infinitetalk-14b-multi")


def _read(results: Path, name: str) -> dict[str, Any]:
    return json.loads((results / name).read_text())


def _figure(value: float, source: str, basis: str) -> dict[str, Any]:
    return {"value": round(value, 4), "source": source, "basis": basis}


def _gpu_runs(results: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(file name, GPU kind, figures) of every full-size GPU render benchmark in ``results``."""
    found = []
    for path in sorted(results.glob("gpu_render*.json")):
        figures = json.loads(path.read_text())["figures"]
        kind = next((k for part, k in DEVICE_KINDS.items() if part in figures["device"]), None)
        if kind is not None and figures["preset"] in PRESETS_14B:
            found.append((path.name, kind, figures))  # not the CPU smoke run
    return found


def _forward_s(figures: dict[str, Any], resolution: str, profile: str) -> tuple[str, float] | None:
    """(variant, mean seconds of one computed forward) of a run, preferring ``compiled``."""
    for variant in MEASURED_VARIANTS:
        run = figures["runs"].get(f"{resolution}/{variant}/{profile}")
        if run and run["computed_forward_s"]:
            return variant, statistics.mean(run["computed_forward_s"])
    return None


def measured(results: Path) -> tuple[dict[tuple, dict[str, Any]], dict[tuple, dict[str, Any]]]:
    """Measured figures: ``(kind, resolution)`` -> seconds per pass, from 1-GPU runs (the
    quality clip's forward over its batched CFG passes); ``(kind, resolution, profile, gpus)``
    -> speed-up, from an N-GPU run (``--gpus N``) against a 1-GPU run of the same kind."""
    runs = _gpu_runs(results)
    single = [(name, kind, f) for name, kind, f in runs if f.get("gpus", 1) == 1]
    pass_s: dict[tuple, dict[str, Any]] = {}
    speedup: dict[tuple, dict[str, Any]] = {}
    for name, kind, figures in single:
        for resolution in ("480p", "720p"):
            forward = _forward_s(figures, resolution, "quality")
            if forward:
                batch = figures["runs"][f"{resolution}/{forward[0]}/quality"]["guidance_passes"]
                basis = f"{name}: {figures['device']}, {forward[0]}, quality clip"
                pass_s[(kind, resolution)] = _figure(forward[1] / batch, "measured", basis)
    for name, kind, figures in runs:
        gpus = figures.get("gpus", 1)
        if gpus == 1:
            continue
        for one_name, one_kind, one in single:
            if one_kind != kind:
                continue
            for resolution in ("480p", "720p"):
                for profile in PROFILE_STEPS:
                    split, whole = (_forward_s(f, resolution, profile) for f in (figures, one))
                    if split and whole:
                        basis = f"{one_name} / {name}: {figures['device']}, {split[0]}"
                        speedup[(kind, resolution, profile, gpus)] = _figure(
                            whole[1] / split[1], "measured", basis
                        )
    return pass_s, speedup


def build(results: Path = RESULTS_DIR) -> dict[str, Any]:
    """The speed model from the result files in ``results``."""
    arithmetic = _read(results, "parallel_arithmetic.json")
    flops = _read(results, "flops.json")["figures"]
    assumptions = arithmetic["figures"]["assumptions"]
    per_sample = arithmetic["figures"]["forward_tflops_per_sample"]
    estimates = arithmetic["figures"]["estimates"]
    measured_pass_s, measured_speedup = measured(results)
    mfu = assumptions["mfu"]
    gpus: dict[str, Any] = {}
    for kind, sheet in assumptions["gpu_kinds"].items():
        pass_s, speedup = {}, {}
        for resolution in ("480p", "720p"):
            tflops = per_sample[f"{resolution}/1_speaker"]
            pass_s[resolution] = measured_pass_s.get((kind, resolution)) or _figure(
                tflops / (sheet["peak_tflops"] * mfu),
                "projected",
                f"{tflops} TFLOP at {mfu:.0%} MFU of {sheet['peak_tflops']:g} TFLOP/s",
            )
            speedup[resolution] = {
                profile: {
                    str(count): measured_speedup.get((kind, resolution, profile, count))
                    or _figure(
                        estimates[f"{kind}/{resolution}/{profile}/1_speaker/{count}_gpu"][
                            "speedup"
                        ],
                        "projected",
                        "parallel_arithmetic.json",
                    )
                    for count in GPU_COUNTS
                }
                for profile in PROFILE_STEPS
            }
        gpus[kind] = {"pass_s": pass_s, "speedup": speedup}
    return {
        "generated_by": COMMAND,
        "sources": sorted(
            ["flops.json", "parallel_arithmetic.json"]
            + [path.name for path in results.glob("gpu_render*.json")]
        ),
        "profiles": {
            profile: {
                "steps": steps,
                "passes_per_step": flops[f"{PROFILE_FLOPS_MODE[profile]}/1_speaker"]["passes"]
                / steps,
            }
            for profile, steps in PROFILE_STEPS.items()
        },
        "start_s": _figure(
            START_ALLOWANCE_S,
            "projected",
            "allowance: a container start and ~80 GB of weights from the Volume, not measured",
        ),
        "gpus": gpus,
    }


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        if DATA_FILE.read_text() != text:
            print(f"{DATA_FILE} is stale: run {COMMAND}")
            return 1
        return 0
    DATA_FILE.write_text(text)
    print(f"wrote {DATA_FILE}")
    print("15 s of 480p on H100s, empty queue, no warm container (the README's examples):")
    for profile, seconds in example_estimates().items():
        print(f"  {profile:9s} " + "  ".join(f"{n} GPU: {s:,} s" for n, s in seconds.items()))
    return 0


def example_estimates(gpu_counts: tuple[int, ...] = (1, 8)) -> dict[str, dict[int, int]]:
    """What the estimate model makes of 15 s of 480p per profile, on 1 and 8 H100s a container,
    from the data file as written."""
    from aws.lambda_proxy.jobs.estimate import Deployment, estimate
    from modal_service.contracts import GenerationParams

    return {
        profile: {
            gpus: estimate(
                GenerationParams(max_duration_s=15, resolution="480p", speed=profile),
                Deployment(
                    gpu_kind="H100", gpus_per_container=gpus, warm_containers=0, containers=1
                ),
            ).seconds
            for gpus in gpu_counts
        }
        for profile in PROFILE_STEPS
    }


if __name__ == "__main__":
    sys.exit(main())
