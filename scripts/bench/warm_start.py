"""What a container's first job pays, with and without the warm-up; an adapter swap vs a reload.

    python -m scripts.bench.warm_start [--preset tiny] [--config medium|tiny] [--skip-warmup]
        [--device cpu|cuda] [--dir PATH] [--seed 0]

(a) **Warm-up** (``MULTITALK_WARMUP``, with ``MULTITALK_COMPILE=on``): in a fresh interpreter
    per variant, with an empty Inductor cache of its own (as a new container has), ``--preset``
    loads through the worker's ``RendererCache.warm_up``; then the same 2:3 portrait job renders
    twice. Per variant: load seconds, the warm-up's seconds and graphs, and each job's wall
    seconds and graphs compiled. On the CPU only ``tiny`` runs; the 14B needs a GPU.
(b) **Adapter swap vs reload**: the transformer of ``--config`` (``cold_start.CONFIGS``) with
    seeded random weights and a second adapter file are written and evicted from the page cache;
    a full load (``loading.build_transformer``, every byte read) is timed against reading the
    other adapter into the loaded model (``adapter_swap.read_adapter`` + ``write_adapter``), and
    the model after the swap is checked against the written file. The 14B's adapter and
    transformer bytes are counted on the meta device; the seconds they would take at this
    machine's rate are a scale, not a forecast.

Printed and saved to ``results/warm_start.json`` with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from modal_service.multitalk.adapter_swap import read_adapter, write_adapter
from modal_service.multitalk.weights import is_adapter_key
from scripts.bench.cold_start import (
    CONFIGS,
    GB,
    _flush_and_evict,
    load_onto,
    random_tensor,
    tensor_plan,
    write_random_transformer,
)
from scripts.bench.results import RESULTS_DIR, save

# Run in a fresh interpreter per variant: compiled code and Dynamo's counters are per process.
_FIRST_JOBS = """
import json, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
import soundfile
from modal_service.multitalk import RenderSpec
from modal_service.worker.renderers import RendererCache
device, work = sys.argv[1], Path(sys.argv[2])
t = np.arange(int(2.0 * 22050)) / 22050
soundfile.write(work / "job.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 22050)
Image.new("RGB", (320, 480), (120, 90, 60)).save(work / "job.png")
started = time.perf_counter()
renderer = RendererCache(device=device).warm_up(sys.argv[3])
figures = {"load_and_warmup_s": round(time.perf_counter() - started, 3)}
figures["warmup"] = renderer.warmup.model_dump() if renderer.warmup else None
spec = RenderSpec(audio_paths=[work / "job.wav"], image_path=work / "job.png", seed=1)
for job in ("first_job", "second_job"):
    started = time.perf_counter()
    outcome = renderer.render(spec, work / f"{job}.mp4")
    figures[job] = {"wall_s": round(time.perf_counter() - started, 3),
                    "graphs_compiled": outcome.graphs_compiled}
print(json.dumps(figures))
"""


def measure_first_jobs(preset: str, device: str, warmup: str) -> dict[str, Any]:
    """(a) for one ``MULTITALK_WARMUP`` value, in a fresh interpreter and Inductor cache."""
    with tempfile.TemporaryDirectory(prefix="warm-start-") as work:
        env = os.environ | {
            "MULTITALK_COMPILE": "on",
            "MULTITALK_WARMUP": warmup,
            "TORCHINDUCTOR_CACHE_DIR": str(Path(work) / "inductor"),
        }
        done = subprocess.run(
            [sys.executable, "-c", _FIRST_JOBS, device, work, preset],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the {warmup} variant failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _adapter_bytes(config: dict[str, Any]) -> tuple[int, int]:
    """The adapter's bytes and the whole transformer's, as loaded (meta device)."""
    plan = tensor_plan(config)
    sizes = {k: torch.Size(shape).numel() * dtype.itemsize for k, (shape, dtype) in plan.items()}
    return sum(v for k, v in sizes.items() if is_adapter_key(k)), sum(sizes.values())


def measure_swap(
    config_name: str, device: str, seed: int, directory: Path | None
) -> dict[str, Any]:
    """(b): a full load of the transformer against a swap of its adapter, both from disk."""
    config = CONFIGS[config_name]
    with tempfile.TemporaryDirectory(prefix="warm-start-", dir=directory) as work:
        checkpoint = write_random_transformer(Path(work), config, seed, device)
        plan = tensor_plan(config)
        other = {
            name: random_tensor(index, shape, dtype, seed + 1, device).cpu()
            for index, (name, (shape, dtype)) in enumerate(plan.items())
            if is_adapter_key(name)
        }
        other_file = Path(work) / "other" / "adapter.safetensors"
        other_file.parent.mkdir()
        save_file(other, str(other_file))
        _flush_and_evict(other_file)
        model, seconds = load_onto(checkpoint, device)
        started = time.perf_counter()
        write_adapter(model, read_adapter(model, other_file))
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        swap_s = time.perf_counter() - started
        state = model.state_dict()
        equal = all(torch.equal(state[k].cpu(), v) for k, v in other.items())
    adapter, whole = _adapter_bytes(config)
    full_adapter, full_whole = _adapter_bytes({})
    load_s = seconds["build_s"] + seconds["to_device_s"]
    return {
        "config": config_name,
        "adapter_bytes": adapter,
        "transformer_bytes": whole,
        "full_load_s": round(load_s, 3),
        "swap_s": round(swap_s, 3),
        "swapped_equals_file": equal,
        "full_14b": {
            "adapter_bytes": full_adapter,
            "transformer_bytes": full_whole,
            # This machine's disk and bus, not a GPU host's: a scale, not a forecast.
            "swap_s_at_this_rate": round(full_adapter / (adapter / swap_s), 1),
            "load_s_at_this_rate": round(full_whole / (whole / load_s), 1),
        },
        "load_gb_per_s": round(whole / GB / load_s, 3),
    }


def main(argv: list[str] | None = None, results_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--config", choices=["tiny", "medium"], default="medium")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-warmup", action="store_true", help="only (b), the swap")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the weights")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.device == "cpu" and not args.preset.startswith("tiny"):
        parser.error("a 14B preset renders on a GPU only")
    figures: dict[str, Any] = {"device": args.device, "preset": args.preset}
    if not args.skip_warmup:
        figures["first_jobs"] = {
            warmup: measure_first_jobs(args.preset, args.device, warmup) for warmup in ("off", "on")
        }
    figures["adapter_swap"] = measure_swap(args.config, args.device, args.seed, args.dir)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    command = f"python -m scripts.bench.warm_start {command}".strip()
    save("warm_start", figures, command, results_dir)
    return figures


if __name__ == "__main__":
    main()
