"""A GPU container's cold start, stage by stage, measured where it can be.

    python -m scripts.bench.cold_start [--config tiny|medium|14b] [--device cuda]
        [--import-runs 3] [--dir PATH] [--seed 0]

(a) **Imports**: ``torch``, ``diffusers``, ``transformers`` and ``modal_service.multitalk``, in
    that order, in fresh interpreters (``--import-runs`` of them): the seconds each adds. This
    is what Modal's CPU memory snapshot replaces on a restored container.
(b) **Weights, disk to device**: the MultiTalk transformer of ``--config`` with seeded random
    weights is written as safetensors (base shards and the audio adapter, in the layout and
    dtypes of the real checkpoint), flushed and evicted from the page cache, then loaded by the
    product's own code (``loading.build_transformer``: strict keys, bf16 with the fp32 modules)
    and moved to ``--device``: seconds and GB/s, and a check that every loaded tensor equals the
    one written. ``tiny`` is the tests' size; ``medium`` is the 14B's width with 2 of its 40
    blocks (about 2 GB, a minute on a CPU); ``14b`` is the whole transformer (about 38 GB of
    disk), on a GPU machine only.
(c) **Snapshot restore**: not measured. Restoring a CPU or GPU memory snapshot is done by
    Modal's runtime for deployed apps; nothing here stands in for it.

Printed and saved to ``results/cold_start.json`` (``cold_start_cuda.json`` on a GPU) with the
machine. ``tests/unit/bench/test_cold_start.py`` runs it at tiny size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from safetensors.torch import save_file

from modal_service.multitalk.loading import build_transformer
from modal_service.multitalk.presets import TINY_TRANSFORMER
from modal_service.multitalk.transformer_multitalk import MultiTalkTransformer3DModel
from modal_service.multitalk.weights import ADAPTER_FILE, is_adapter_key
from scripts.bench.results import RESULTS_DIR, save

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": TINY_TRANSFORMER,
    "medium": {"num_layers": 2},  # the 14B's defaults otherwise
    "14b": {},  # MultiTalkTransformer3DModel's defaults are the 14B I2V ones
}
IMPORTED = ("torch", "diffusers", "transformers", "modal_service.multitalk")
IMPORT_SNIPPET = """
import importlib, json, sys, time
seconds = {}
for module in sys.argv[1:]:
    started = time.perf_counter()
    importlib.import_module(module)
    seconds[module] = time.perf_counter() - started
print(json.dumps(seconds))
"""
SHARD_BYTES = 5 * 10**9
GB = 10**9
SNAPSHOT_RESTORE = {
    "measured": False,
    "why": (
        "Modal's runtime restores CPU and GPU memory snapshots, for deployed apps only; "
        "nothing here stands in for it. Measure it on Modal: a restored container's start "
        "against these stages."
    ),
}


class Checkpoint(BaseModel):
    """What :func:`write_random_transformer` wrote."""

    model_config = ConfigDict(frozen=True)

    transformer_dir: Path
    adapter_file: Path
    files: int
    tensors: int
    parameters: int
    bytes: int
    write_s: float


def measure_imports(runs: int, modules: tuple[str, ...] = IMPORTED) -> dict[str, Any]:
    """Seconds each module adds to a fresh interpreter's imports, in order; medians of ``runs``."""
    samples = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", IMPORT_SNIPPET, *modules],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO_ROOT,
            ).stdout.splitlines()[-1]
        )
        for _ in range(runs)
    ]
    totals = [sum(sample.values()) for sample in samples]
    return {
        "runs": runs,
        "median_s": {m: round(statistics.median(s[m] for s in samples), 3) for m in modules},
        "total_median_s": round(statistics.median(totals), 3),
        "totals_s": [round(total, 3) for total in totals],
    }


def tensor_plan(config: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Every tensor of the transformer's checkpoint: its shape and the dtype the loader gives
    it (bf16, fp32 in the modules diffusers keeps in fp32). Built on the meta device."""
    with torch.device("meta"):
        model = MultiTalkTransformer3DModel(**config)
    keep_fp32 = set(model._keep_in_fp32_modules)
    return {
        name: (
            tuple(tensor.shape),
            torch.float32 if not keep_fp32.isdisjoint(name.split(".")) else torch.bfloat16,
        )
        for name, tensor in model.state_dict().items()
    }


def random_tensor(
    index: int, shape: tuple[int, ...], dtype: torch.dtype, seed: int, device: str
) -> torch.Tensor:
    """The ``index``-th tensor, the same every time for the same seed and device."""
    generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + index)
    return torch.empty(shape, dtype=dtype, device=device).normal_(generator=generator)


def _flush_and_evict(path: Path) -> None:
    """On disk, and out of the page cache: the load that follows reads the disk, as a new
    container would, not the memory this process just wrote from."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def write_random_transformer(
    root: Path, config: dict[str, Any], seed: int, device: str, shard_bytes: int = SHARD_BYTES
) -> Checkpoint:
    """The transformer of ``config`` with seeded random weights, laid out as the weights Volume
    holds it: ``<base>/transformer/`` (config and shards) and the MultiTalk adapter file.
    Generated on ``device`` (fast on a GPU), one shard in host memory at a time."""
    started = time.perf_counter()
    plan = tensor_plan(config)
    transformer_dir = root / "transformer"
    adapter_file = root / ADAPTER_FILE
    transformer_dir.mkdir(parents=True)
    adapter_file.parent.mkdir(parents=True)
    with torch.device("meta"):
        full_config = dict(MultiTalkTransformer3DModel(**config).config)
    full_config["_class_name"] = MultiTalkTransformer3DModel.__name__
    (transformer_dir / "config.json").write_text(json.dumps(full_config))

    written: list[Path] = []
    pending: dict[str, dict[str, torch.Tensor]] = {"base": {}, "adapter": {}}

    def flush(kind: str) -> None:
        if not pending[kind]:
            return
        shard = len([p for p in written if p.parent == transformer_dir]) + 1
        path = (
            adapter_file
            if kind == "adapter"
            else (transformer_dir / f"diffusion_pytorch_model-{shard:05d}.safetensors")
        )
        save_file(pending[kind], str(path))
        _flush_and_evict(path)
        written.append(path)
        pending[kind] = {}

    parameters = total = 0
    for index, (name, (shape, dtype)) in enumerate(plan.items()):
        tensor = random_tensor(index, shape, dtype, seed, device).cpu()
        parameters += tensor.numel()
        total += tensor.numel() * tensor.element_size()
        kind = "adapter" if is_adapter_key(name) else "base"
        pending[kind][name] = tensor
        if kind == "base" and sum(t.nbytes for t in pending["base"].values()) >= shard_bytes:
            flush("base")
    flush("base")
    flush("adapter")  # one file, as MeiGen ships it
    return Checkpoint(
        transformer_dir=transformer_dir,
        adapter_file=adapter_file,
        files=len(written),
        tensors=len(plan),
        parameters=parameters,
        bytes=total,
        write_s=time.perf_counter() - started,
    )


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def load_onto(checkpoint: Checkpoint, device: str) -> tuple[torch.nn.Module, dict[str, float]]:
    """The transformer through the product's loader, then onto ``device``.

    safetensors maps the files: the loader checks the keys and builds the model on tensors that
    are not read yet (``build_s``). The bytes come off the disk when they are copied onto the
    device (``to_device_s``); on the CPU, where ``.to`` copies nothing, each tensor is copied
    into process memory instead, so that both devices end with every byte read.
    """
    started = time.perf_counter()
    model = build_transformer(checkpoint.transformer_dir, checkpoint.adapter_file, torch.bfloat16)
    built = time.perf_counter()
    if device == "cpu":
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.data = tensor.data.clone()
    else:
        model.to(device)
        _synchronize(device)
    moved = time.perf_counter()
    return model, {"build_s": built - started, "to_device_s": moved - built}


def loaded_equals_saved(
    model: torch.nn.Module, config: dict[str, Any], seed: int, device: str
) -> bool:
    """Every tensor of ``model`` equals, in dtype and value, the one written from ``seed`` on
    ``device`` (regenerated one at a time: no second copy of the weights is held)."""
    state = model.state_dict()
    plan = tensor_plan(config)
    if set(state) != set(plan):
        return False
    for index, (name, (shape, dtype)) in enumerate(plan.items()):
        loaded = state[name]
        if loaded.dtype != dtype or not torch.equal(
            loaded, random_tensor(index, shape, dtype, seed, device).to(loaded.device)
        ):
            return False
    return True


def _filesystem(path: Path) -> str:
    """The type of the filesystem ``path`` is on (from /proc/mounts; ``unknown`` elsewhere)."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved = str(path.resolve())
    best = max(
        (m for m in mounts if resolved == m[1] or resolved.startswith(m[1].rstrip("/") + "/")),
        key=lambda m: len(m[1]),
        default=None,
    )
    return best[2] if best else "unknown"


def measure_weights(
    config: dict[str, Any], device: str, seed: int, directory: Path | None
) -> dict[str, Any]:
    """Stage (b): write, evict, load onto ``device``, check; the files are removed after."""
    with tempfile.TemporaryDirectory(prefix="cold-start-", dir=directory) as work:
        checkpoint = write_random_transformer(Path(work), config, seed, device)
        model, seconds = load_onto(checkpoint, device)
        equal = loaded_equals_saved(model, config, seed, device)
        filesystem = _filesystem(Path(work))
    del model
    load_s = seconds["build_s"] + seconds["to_device_s"]
    return {
        "tensors": checkpoint.tensors,
        "parameters": checkpoint.parameters,
        "bytes": checkpoint.bytes,
        "files": checkpoint.files,
        "filesystem": filesystem,
        "page_cache": "evicted after writing (fsync, POSIX_FADV_DONTNEED)",
        "write_s": round(checkpoint.write_s, 3),
        "build_s": round(seconds["build_s"], 3),
        "to_device_s": round(seconds["to_device_s"], 3),
        "load_s": round(load_s, 3),
        "load_gb_per_s": round(checkpoint.bytes / GB / load_s, 3),
        "loaded_equals_saved": equal,
    }


def full_size_bytes() -> int:
    """The 14B transformer's bytes as loaded (counted on the meta device)."""
    return sum(
        torch.Size(shape).numel() * dtype.itemsize for shape, dtype in tensor_plan({}).values()
    )


def run(config_name: str, device: str, import_runs: int, seed: int, directory: Path | None) -> dict:
    """All three stages for ``config_name`` on ``device``; the figures."""
    weights = measure_weights(CONFIGS[config_name], device, seed, directory)
    full = full_size_bytes()
    return {
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "config": config_name,
        "imports": measure_imports(import_runs),
        "weights": weights,
        "full_14b": {
            "bytes": full,
            # This machine's disk and bus, not a GPU host's: a scale, not a forecast (tiny's
            # rate is all overhead, and 14b measures the real thing).
            "load_s_at_this_rate": (
                round(full / GB / weights["load_gb_per_s"], 1) if config_name == "medium" else None
            ),
        },
        "snapshot_restore": SNAPSHOT_RESTORE,
    }


def main(argv: list[str] | None = None, results_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=list(CONFIGS), default="medium")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--import-runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the weights")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.config == "14b" and not args.device.startswith("cuda"):
        parser.error("--config 14b writes and loads about 38 GB: run it on a GPU machine")
    if args.import_runs < 1:
        parser.error("--import-runs must be at least 1")
    figures = run(args.config, args.device, args.import_runs, args.seed, args.dir)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    name = "cold_start" if args.device == "cpu" else f"cold_start_{args.device.split(':')[0]}"
    save(name, figures, f"python -m scripts.bench.cold_start {command}".strip(), results_dir)
    return figures


if __name__ == "__main__":
    main()
