"""The arithmetic of splitting one transformer forward across the GPUs of one container.

    python -m scripts.bench.parallel_arithmetic [--gpu-kind H100] [--mfu 0.4]

Context parallelism as the worker splits a forward (Ulysses): every rank holds ``S/N`` of the
``S`` latent tokens. Per transformer block the self-attention makes 4 all-to-alls per rank (q, k
and v go from sequence shards to head shards, the output comes back), each sending ``(N-1)/N`` of
the rank's ``batch x S/N x dim`` bf16 shard; the text, image and per-frame audio
cross-attentions use local tokens only. With two speakers each block all-reduces the reference
frame's keys (``frame tokens x dim`` per batch element) and the 3 min/max values that normalise
the speakers' positions. Per forward, rank 0 broadcasts the inputs (latents and condition, text
and image states, audio windows) and the output's shards (``S x 64`` values) are all-gathered.

    expected speed-up = N x compute / (compute + communication not overlapped)

with ``compute`` one rank's share of the forward's FLOPs (counted on the meta device by
``modal_service.multitalk.flops``, as ``scripts/bench/flops.py`` does) at an assumed MFU, and the
communication at an assumed share of the datasheet link bandwidth plus a fixed latency per
collective. Nothing here is timed: the figures are arithmetic, saved with the machine by
convention (``results/parallel_arithmetic.json``). Where the figures come from:

* peak dense bf16: NVIDIA's H100/H200 SXM datasheet, 989 TFLOP/s (the MFU denominator
  ``gpu_render.py`` uses); A100 SXM 312 TFLOP/s (A100 datasheet);
* MFU 0.40: assumed (the job estimates' planning figure since the GPU-speed work), until
  ``gpu_render.py`` measures one;
* NVLink: 900 GB/s per H100/H200 SXM GPU in both directions together (NVIDIA datasheet;
  ``../shared/research/gpu-serving.md`` has no link figure), so 450 GB/s each way; A100 SXM
  600 GB/s, 300 each way. Only a share is reached: NVIDIA/nccl#1264 reports 380 of 450 GB/s one
  way on H100 SXM in NVIDIA's p2p test (84 %), so 0.8 is assumed;
* 30 us per collective: an assumption (NCCL's small-message latency inside one NVSwitch host is
  tens of microseconds); 200 collectives a forward make it a few milliseconds;
* no overlap: the all-to-alls sit between the projections and the attention that needs them.

The compute share assumes the MFU holds at ``S/N`` tokens a rank; shorter attention kernels run
less efficiently, so the speed-ups here are upper bounds until a multi-GPU run measures them.
"""

from __future__ import annotations

import argparse
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scripts.bench.results import RESULTS_DIR, save

GpuKindName = Literal["H100", "H200", "A100-80GB"]
Resolution = Literal["480p", "720p"]
Profile = Literal["quality", "balanced", "turbo"]


class GpuKind(BaseModel):
    """One GPU model's datasheet figures (the names are Modal's)."""

    model_config = ConfigDict(frozen=True)

    peak_tflops: float = Field(gt=0, description="dense bf16, datasheet")
    link_gb_s: float = Field(gt=0, description="NVLink, one direction, datasheet")


GPU_KINDS: dict[str, GpuKind] = {
    "H100": GpuKind(peak_tflops=989.0, link_gb_s=450.0),
    "H200": GpuKind(peak_tflops=989.0, link_gb_s=450.0),
    "A100-80GB": GpuKind(peak_tflops=312.0, link_gb_s=300.0),
}
RESOLUTIONS: dict[str, tuple[int, int]] = {
    # the size the estimates count: 480x832 is scripts/bench/results/flops.json's; every 720p
    # bucket holds about 960^2 pixels
    "480p": (480, 832),
    "720p": (960, 960),
}
PROFILE_BATCH: dict[str, int] = {
    # CFG branches run batched in one forward: text, audio and unconditional; turbo's LoRA
    # needs no guidance
    "quality": 3,
    "balanced": 3,
    "turbo": 1,
}
GPU_COUNTS = (1, 2, 4, 8)
GOAL_SPEEDUP_8_GPUS = 6.0
"""Issue 14: a clip on 8 x H100 at least 6x faster than on one."""

MFU = 0.40
LINK_EFFICIENCY = 0.8
COLLECTIVE_LATENCY_US = 30.0

# The 14B transformer's shape (modal_service/multitalk/transformer_multitalk.py defaults).
BLOCKS = 40
HEADS = 40
DIM = 5120
IN_CHANNELS = 36  # 16 noisy latent channels + 20 of the condition (image latents and mask)
OUT_VALUES_PER_TOKEN = 64  # 16 output channels x the 1x2x2 patch
TEXT_TOKENS, TEXT_DIM = 512, 4096
IMAGE_TOKENS, IMAGE_DIM = 257, 1280
AUDIO_WINDOW, AUDIO_LAYERS, AUDIO_CHANNELS = 5, 12, 768
BF16 = 2
ALL_TO_ALLS_PER_BLOCK = 4


class Communication(BaseModel):
    """Bytes one rank sends in one forward, per kind of collective, and how many collectives."""

    all_to_all_bytes: float
    all_reduce_bytes: float
    broadcast_bytes: float
    all_gather_bytes: float
    collectives: int

    @property
    def bytes(self) -> float:
        return (
            self.all_to_all_bytes
            + self.all_reduce_bytes
            + self.broadcast_bytes
            + self.all_gather_bytes
        )


class ParallelEstimate(BaseModel):
    """One forward split across ``gpus`` GPUs of one container: volume, times and speed-up."""

    gpus: int
    gpu_kind: str
    resolution: str
    profile: str
    speakers: int
    frames: int
    batch: int
    tokens: int = Field(description="latent tokens of the whole clip (S)")
    forward_tflops: float = Field(description="the whole batched forward, all ranks together")
    communication: Communication
    compute_s: float = Field(description="one rank's share of the forward at the assumed MFU")
    communication_s: float = Field(description="not overlapped with compute")
    forward_s: float
    speedup: float
    mfu: float
    link_gb_s: float = Field(description="reached, one direction: datasheet x efficiency")
    collective_latency_us: float
    overlap: float


@cache
def _forward_tflops_per_sample(resolution: str, speakers: int, frames: int) -> float:
    """One batch element's forward, counted on the meta device (torch loads only here)."""
    from modal_service.multitalk.flops import forward_flops

    height, width = RESOLUTIONS[resolution]
    return forward_flops(height=height, width=width, frames=frames, speakers=speakers) / 1e12


def latent_tokens(resolution: str, frames: int) -> tuple[int, int]:
    """(tokens of one latent frame, tokens of the clip): 4x temporal, 8x spatial VAE, 2x2 patch."""
    height, width = RESOLUTIONS[resolution]
    frame_tokens = (height // 16) * (width // 16)
    return frame_tokens, ((frames - 1) // 4 + 1) * frame_tokens


def communication(
    gpus: int, resolution: str, batch: int, speakers: int, frames: int
) -> Communication:
    """What one rank sends per forward (rank 0's broadcast counted whole: it is the slowest)."""
    if gpus == 1:
        return Communication(
            all_to_all_bytes=0, all_reduce_bytes=0, broadcast_bytes=0, all_gather_bytes=0,
            collectives=0,
        )  # fmt: skip
    frame_tokens, tokens = latent_tokens(resolution, frames)
    sent = (gpus - 1) / gpus
    shard = batch * tokens / gpus * DIM * BF16
    all_to_all = BLOCKS * ALL_TO_ALLS_PER_BLOCK * sent * shard
    collectives = BLOCKS * ALL_TO_ALLS_PER_BLOCK
    all_reduce = 0.0
    if speakers == 2:
        # ring all-reduce: each rank sends 2(N-1)/N of the buffer; keys, then the 3 min/max
        keys = batch * frame_tokens * DIM * BF16
        all_reduce = BLOCKS * 2 * sent * (keys + 3 * 4)
        collectives += BLOCKS * 2
    latent_volume = tokens * 4  # the 2x2 patch: 4 latent pixels a token
    inputs = batch * (
        IN_CHANNELS * latent_volume
        + TEXT_TOKENS * TEXT_DIM
        + IMAGE_TOKENS * IMAGE_DIM
        + speakers * frames * AUDIO_WINDOW * AUDIO_LAYERS * AUDIO_CHANNELS
    )
    output = batch * tokens * OUT_VALUES_PER_TOKEN
    return Communication(
        all_to_all_bytes=all_to_all,
        all_reduce_bytes=all_reduce,
        broadcast_bytes=inputs * BF16,
        all_gather_bytes=sent * output * BF16,
        collectives=collectives + 2,
    )


def context_parallel_estimate(
    gpus: int,
    resolution: Resolution,
    profile: Profile,
    speakers: int = 1,
    frames: int = 81,
    *,
    gpu_kind: GpuKindName = "H100",
    mfu: float = MFU,
    link_efficiency: float = LINK_EFFICIENCY,
    collective_latency_us: float = COLLECTIVE_LATENCY_US,
    overlap: float = 0.0,
    forward_tflops_per_sample: float | None = None,
) -> ParallelEstimate:
    """One forward of ``profile`` (its CFG batch) split over ``gpus`` GPUs of ``gpu_kind``.

    ``forward_tflops_per_sample`` replaces the meta-device count of one batch element's forward
    (the count takes a few seconds). Raises ``ValueError`` for a split Ulysses cannot make:
    the 40 heads and the clip's tokens must divide by ``gpus``.
    """
    if gpus < 1 or HEADS % gpus:
        raise ValueError(f"{gpus} GPUs: Ulysses needs a divisor of the {HEADS} heads")
    _, tokens = latent_tokens(resolution, frames)
    if tokens % gpus:
        raise ValueError(f"{tokens} tokens do not split evenly over {gpus} GPUs")
    if speakers not in (1, 2):
        raise ValueError("speakers must be 1 or 2")
    if not (0 < mfu <= 1 and 0 < link_efficiency <= 1 and 0 <= overlap <= 1):
        raise ValueError("mfu and link_efficiency must be in (0, 1], overlap in [0, 1]")
    kind = GPU_KINDS[gpu_kind]
    batch = PROFILE_BATCH[profile]
    per_sample = forward_tflops_per_sample
    if per_sample is None:
        per_sample = _forward_tflops_per_sample(resolution, speakers, frames)
    tflops = per_sample * batch
    compute_s = tflops / gpus / (kind.peak_tflops * mfu)
    volume = communication(gpus, resolution, batch, speakers, frames)
    link = kind.link_gb_s * link_efficiency
    wire_s = volume.bytes / (link * 1e9) + volume.collectives * collective_latency_us * 1e-6
    exposed_s = wire_s * (1 - overlap)
    return ParallelEstimate(
        gpus=gpus,
        gpu_kind=gpu_kind,
        resolution=resolution,
        profile=profile,
        speakers=speakers,
        frames=frames,
        batch=batch,
        tokens=tokens,
        forward_tflops=tflops,
        communication=volume,
        compute_s=compute_s,
        communication_s=exposed_s,
        forward_s=compute_s + exposed_s,
        speedup=gpus * compute_s / (compute_s + exposed_s),
        mfu=mfu,
        link_gb_s=link,
        collective_latency_us=collective_latency_us,
        overlap=overlap,
    )


def figures(mfu: float = MFU, link_efficiency: float = LINK_EFFICIENCY) -> dict[str, object]:
    """Every GPU kind, resolution, profile, speaker count and GPU count, plus the issue's goal."""
    table: dict[str, dict[str, object]] = {}
    for kind in GPU_KINDS:
        for resolution in RESOLUTIONS:
            for profile in PROFILE_BATCH:
                for speakers in (1, 2):
                    for gpus in GPU_COUNTS:
                        estimate = context_parallel_estimate(
                            gpus,
                            resolution,  # type: ignore[arg-type]
                            profile,  # type: ignore[arg-type]
                            speakers,
                            gpu_kind=kind,  # type: ignore[arg-type]
                            mfu=mfu,
                            link_efficiency=link_efficiency,
                        )
                        key = f"{kind}/{resolution}/{profile}/{speakers}_speaker/{gpus}_gpu"
                        table[key] = _row(estimate)
    goal = context_parallel_estimate(8, "480p", "quality", mfu=mfu, link_efficiency=link_efficiency)
    return {
        "assumptions": {
            "mfu": mfu,
            "link_efficiency": link_efficiency,
            "collective_latency_us": COLLECTIVE_LATENCY_US,
            "overlap": 0.0,
            "gpu_kinds": {name: kind.model_dump() for name, kind in GPU_KINDS.items()},
            "frames": 81,
        },
        "forward_tflops_per_sample": {
            f"{resolution}/{speakers}_speaker": round(
                _forward_tflops_per_sample(resolution, speakers, 81), 1
            )
            for resolution in RESOLUTIONS
            for speakers in (1, 2)
        },
        "estimates": table,
        "goal_8xh100_480p_quality": {
            "speedup": round(goal.speedup, 2),
            "goal": GOAL_SPEEDUP_8_GPUS,
            "met_by_arithmetic": goal.speedup >= GOAL_SPEEDUP_8_GPUS,
        },
    }


def _row(estimate: ParallelEstimate) -> dict[str, float]:
    return {
        "volume_per_rank_gb": round(estimate.communication.bytes / 1e9, 3),
        "all_to_all_per_rank_gb": round(estimate.communication.all_to_all_bytes / 1e9, 3),
        "collectives": estimate.communication.collectives,
        "compute_s": round(estimate.compute_s, 4),
        "communication_s": round(estimate.communication_s, 4),
        "forward_s": round(estimate.forward_s, 4),
        "speedup": round(estimate.speedup, 3),
    }


def _print_table(results: dict[str, object], kind: str) -> None:
    estimates = results["estimates"]
    assert isinstance(estimates, dict)
    print(f"{kind}, 81 frames, one speaker: seconds per forward (one rank), speed-up")
    print(f"{'clip':<16}{'GPUs':>5}{'GB/rank':>10}{'compute s':>11}{'comm s':>9}{'speed-up':>10}")
    for resolution in RESOLUTIONS:
        for profile in PROFILE_BATCH:
            for gpus in GPU_COUNTS:
                row = estimates[f"{kind}/{resolution}/{profile}/1_speaker/{gpus}_gpu"]
                print(
                    f"{resolution + ' ' + profile:<16}{gpus:>5}{row['volume_per_rank_gb']:>10.2f}"
                    f"{row['compute_s']:>11.3f}{row['communication_s']:>9.4f}"
                    f"{row['speedup']:>10.2f}"
                )


def main(argv: list[str] | None = None, results_dir: Path = RESULTS_DIR) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-kind", default="H100", choices=list(GPU_KINDS))
    parser.add_argument("--mfu", type=float, default=MFU)
    parser.add_argument("--link-efficiency", type=float, default=LINK_EFFICIENCY)
    args = parser.parse_args(argv)
    results = figures(args.mfu, args.link_efficiency)
    goal = results["goal_8xh100_480p_quality"]
    _print_table(results, args.gpu_kind)
    command = "python -m scripts.bench.parallel_arithmetic"
    if args.mfu != MFU or args.link_efficiency != LINK_EFFICIENCY:
        command += f" --mfu {args.mfu:g} --link-efficiency {args.link_efficiency:g}"
    save("parallel_arithmetic", results, command, results_dir)
    print(f"8 x H100, 480p quality: {goal}")  # type: ignore[index]
    return results


if __name__ == "__main__":
    main()
