"""One clip through the product's own render path at full size, per speed profile and deployment.

    python -m scripts.bench.gpu_render [--resolution 480p 720p] [--profile quality balanced turbo]
        [--variant eager compiled fp8] [--attention auto] [--steps N]
        [--gpu-hour-usd 4.0] [--peak-tflops 989] [--device cuda] [--gpus N]

The stack is built once at its real size with random weights (``random_model``); then, for each
deployment variant (applied cumulatively, as a container would: ``eager``, then ``compiled``
regional torch.compile, then ``fp8`` linears), one clip (the preset's 81 frames, 3.24 s) renders
through :meth:`Renderer.render` for each resolution and speed profile, with hooks that time every
stage: the text and image encoders, wav2vec2, every transformer forward, VAE encode and decode,
the MP4 encode. A compiled variant renders a warm-up clip first, so that its timings are those of
a warm container; the graphs it compiled are reported.

``--steps N`` samples N steps in the undistilled profiles (a 40-step, 3-pass 480p clip takes
minutes on one GPU; turbo keeps its LoRA's 4) and projects the whole clip from the forwards
measured: ``projected_clip_s`` puts the mean computed (and cached) forward time, times the
profile's full count, in place of the transformer time measured.

Printed and saved to ``results/gpu_render.json`` with the machine: seconds per stage, peak
device memory, the transformer's MFU (its FLOPs counted on the meta device, over the time of the
forwards that computed, over ``--peak-tflops``), seconds per clip and per video-second, and the
cost per video-second at ``--gpu-hour-usd``; and, per resolution, the VAE decode of one clip in
fp32, bf16 and tiled bf16 with their pixel error against fp32.

``--gpus N`` splits every forward across N GPUs as a deployment with
``MULTITALK_GPUS_PER_CONTAINER`` does (context parallelism, ``modal_service/multitalk/parallel``;
one variant per run: the other ranks build their copies with it). MFU is then per GPU and the
cost counts N GPUs. Every run also reports the arithmetic of the split for 1, 2, 4 and 8 GPUs
(``parallel_arithmetic``: what each forward exchanges and the speed-up it allows), so a 1-GPU
measurement says what N would give.

``tests/unit/bench/test_gpu_render.py`` runs the same code on the CPU at tiny size, so the
benchmark cannot rot between the rare runs on a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from modal_service.multitalk.acceleration import PROFILES, DeploymentAcceleration
from modal_service.multitalk.presets import MULTITALK_14B, TINY, Preset
from scripts import samples
from scripts.bench.random_model import (
    FULL_SIZE,
    SMOKE_SIZE,
    Components,
    build_random_pipeline,
    random_distillation_lora,
    random_replica,
)
from scripts.bench.results import RESULTS_DIR, save

H200_DENSE_BF16_TFLOPS = 989.0
"""The datasheet's dense bf16 figure for H100/H200 SXM: the usual MFU denominator."""

VARIANTS = {
    "eager": {"compile": "off"},
    "compiled": {"compile": "on"},
    "fp8": {"compile": "on", "fp8": True},
}
"""Deployment variants, in the order a process can apply them (compile, then quantize)."""


class _StageClock:
    """Times methods of the render's components; on CUDA each timing waits for the device."""

    def __init__(self, device: torch.device, probe: torch.nn.Module) -> None:
        self._sync: Callable[[], None] = (
            torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        )
        self.seconds: dict[str, float] = {}
        self.forwards: list[dict[str, Any]] = []
        self._block_runs = 0
        # A module inside the first block: it runs only when the blocks compute (a cached step
        # calls the block, whose cache hook returns without running anything inside it).
        self._probe = probe

    def _count_block(self, *_: object) -> None:
        self._block_runs += 1

    @contextlib.contextmanager
    def timing(self, owner: object, method: str, stage: str) -> Iterator[None]:
        """Wrap ``owner.method`` (an instance attribute shadows the class's) while inside."""
        original = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            runs, started = self._block_runs, time.perf_counter()
            result = original(*args, **kwargs)
            self._sync()
            seconds = time.perf_counter() - started
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            if stage == "transformer":
                self.forwards.append(
                    {
                        "shape": tuple(kwargs["hidden_states"].shape),
                        "speakers": kwargs["audio_embeds"].shape[1],
                        "seconds": seconds,
                        "computed": self._block_runs > runs,  # False: a cached step
                    }
                )
            return result

        setattr(owner, method, timed)
        handle = self._probe.register_forward_hook(self._count_block)
        try:
            yield
        finally:
            handle.remove()
            delattr(owner, method)


def _transformer_flops(config: dict[str, Any], forwards: list[dict[str, Any]]) -> float:
    """FLOPs of the forwards that computed, each distinct shape counted once on the meta device."""
    from modal_service.multitalk.flops import forward_flops

    per_shape: dict[tuple, float] = {}
    total = 0.0
    for forward in forwards:
        if not forward["computed"]:
            continue
        batch, _, latent_frames, lat_h, lat_w = forward["shape"]
        key = (forward["shape"], forward["speakers"])
        if key not in per_shape:
            per_shape[key] = forward_flops(
                config,
                height=lat_h * 8,
                width=lat_w * 8,
                frames=(latent_frames - 1) * 4 + 1,
                speakers=forward["speakers"],
                batch=batch,
            )
        total += per_shape[key]
    return total


def _spec(profile: str, audio: Path, image: Path, seconds: float, resolution: str) -> Any:
    from modal_service.multitalk.spec import RenderSpec

    return RenderSpec(
        audio_paths=[audio],
        image_path=image,
        resolution=resolution,
        max_duration_s=seconds,
        speed=profile,
        seed=1,
    )


def render_clip(
    renderer: Any,
    components: Components,
    resolution: str,
    profile: str,
    work: Path,
    *,
    steps: int | None,
    gpu_hour_usd: float,
    peak_tflops: float | None,
) -> dict[str, Any]:
    """One clip of ``renderer``'s preset through ``Renderer.render``, with its figures (MFU
    per GPU and cost for all of them when the transformer is split across ``renderer.gpus``)."""
    preset = renderer._preset
    seconds = preset.frame_num / 25
    audio = samples.write_speech_wav(work / "voice.wav", duration_s=seconds, seed=3)
    image = samples.draw_portrait(work / "face.png", size=(832, 480))
    spec = _spec(profile, audio, image, seconds, resolution)
    full_steps = renderer.sampling_settings(spec)[0]["num_inference_steps"]
    cache = PROFILES[profile].step_cache
    full_computed = len(cache.computed_steps(full_steps)) if cache else full_steps
    full_cached = full_steps - full_computed
    if steps is not None and not PROFILES[profile].distilled:  # a distilled LoRA has its own
        spec = spec.model_copy(update={"sample_steps": steps})
    pipeline = renderer.pipeline
    device = pipeline._execution_device
    clock = _StageClock(device, renderer.transformer.blocks[0].ffn)
    gpus = renderer.gpus
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    parts = [
        (pipeline.text_encoder, "forward", "text_encoder"),
        (pipeline.image_encoder, "forward", "image_encoder"),
        (renderer.audio_encoder, "encode", "wav2vec2"),
        (pipeline.transformer, "forward", "transformer"),
        (pipeline.vae, "encode", "vae_encode"),
        (pipeline.vae, "decode", "vae_decode"),
    ]
    with contextlib.ExitStack() as stack:
        for owner, method, stage in parts:
            stack.enter_context(clock.timing(owner, method, stage))
        started = time.perf_counter()
        outcome = renderer.render(spec, work / f"{resolution}-{profile}.mp4")
        wall = time.perf_counter() - started
    video_s = outcome.duration_s
    computed = [f["seconds"] for f in clock.forwards if f["computed"]]
    cached = [f["seconds"] for f in clock.forwards if not f["computed"]]
    flops = _transformer_flops(components.transformer, clock.forwards)
    transformer_s = clock.seconds.get("transformer", 0.0)
    projected = None
    if computed and (cached or not full_cached):
        full_transformer_s = statistics.mean(computed) * full_computed
        full_transformer_s += statistics.mean(cached) * full_cached if cached else 0.0
        projected = wall - transformer_s + full_transformer_s
    clip_s = projected if projected is not None else wall
    figures: dict[str, Any] = {
        "frames": outcome.frames,
        "size": f"{outcome.width}x{outcome.height}",
        "sample_steps": outcome.sample_steps,
        "full_sample_steps": full_steps,
        "guidance_passes": outcome.guidance_passes,
        "stages_s": {stage: round(value, 4) for stage, value in clock.seconds.items()}
        | {"mp4_encode": outcome.timings_s.get("encode", 0.0)},
        "lora_switch_s": outcome.timings_s.get("lora_switch", 0.0),
        "graphs_compiled": outcome.graphs_compiled,
        "transformer_forwards": len(clock.forwards),
        "computed_forward_s": [round(s, 4) for s in computed],
        "cached_forward_s": [round(s, 4) for s in cached],
        "transformer_flops": float(f"{flops:.4g}"),
        "gpus": gpus,
        "mfu": round(flops / sum(computed) / (peak_tflops * 1e12 * gpus), 4)
        if peak_tflops and computed
        else None,
        "measured_clip_s": round(wall, 3),
        "projected_clip_s": round(projected, 3) if projected is not None else None,
        "s_per_video_second": round(clip_s / video_s, 3),
        "usd_per_video_second": round(clip_s / 3600 * gpu_hour_usd * gpus / video_s, 5),
        "notes": outcome.notes,
    }
    if device.type == "cuda":
        figures["peak_device_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
    return figures


def vae_decode_errors(pipeline: Any, latent_shape: tuple[int, ...]) -> dict[str, Any]:
    """One clip's decode in fp32, bf16 and tiled bf16: seconds, memory, error in 8-bit levels."""
    device = pipeline._execution_device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    generator = torch.Generator(device=device).manual_seed(7)
    latents = torch.randn(latent_shape, generator=generator, device=device)
    tiling = pipeline.vae.use_tiling
    results: dict[str, Any] = {}
    reference = None
    for name, dtype, tiled in (
        ("float32", None, False),
        ("bfloat16", torch.bfloat16, False),
        ("tiled_bfloat16", torch.bfloat16, True),
    ):
        if tiled:
            pipeline.vae.enable_tiling()
        else:
            pipeline.vae.disable_tiling()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync()
        started = time.perf_counter()
        with torch.no_grad():
            video = pipeline.decode(latents, dtype)
        sync()
        entry: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 4)}
        if device.type == "cuda":
            entry["peak_device_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
        if reference is None:
            reference = video
        else:
            levels = (video - reference).abs() * 127.5
            entry |= {
                "mean_error_levels": round(levels.mean().item(), 3),
                "max_error_levels": round(levels.max().item(), 3),
            }
        results[name] = entry
    if tiling:
        pipeline.vae.enable_tiling()
    else:
        pipeline.vae.disable_tiling()
    return results


def run(
    components: Components,
    preset: Preset,
    *,
    device: str,
    resolutions: list[str],
    profiles: list[str],
    variants: list[str],
    attention: str,
    steps: int | None,
    gpu_hour_usd: float,
    peak_tflops: float | None,
    gpus: int = 1,
) -> dict[str, Any]:
    """Build once; per variant, render one clip per resolution and profile; the figures."""
    from modal_service.multitalk.acceleration.engine import Accelerator
    from modal_service.multitalk.buckets import bucket_size
    from modal_service.multitalk.parallel.ranks import ContextParallelTransformer, RankGroup
    from modal_service.multitalk.renderer import Renderer

    if gpus > 1 and len(variants) > 1:
        raise ValueError("--gpus N renders one variant per run (each rank applies it at load)")
    started = time.perf_counter()
    ranks = None
    if gpus > 1:  # the other ranks build their copies while this one builds the pipeline
        deployment = DeploymentAcceleration(attention_backend=attention, **VARIANTS[variants[0]])
        build = functools.partial(random_replica, components, deployment, "turbo" in profiles)
        ranks = RankGroup(gpus, torch.device(device).type, build)
    pipeline, audio = build_random_pipeline(components, device)
    lora = random_distillation_lora(pipeline.transformer) if "turbo" in profiles else None
    build_s = time.perf_counter() - started
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    runs: dict[str, Any] = {}
    applied: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-render-") as work:
        for variant in sorted(variants, key=list(VARIANTS).index):
            deployment = DeploymentAcceleration(attention_backend=attention, **VARIANTS[variant])
            accelerator = Accelerator(pipeline, deployment, lora)
            applied[variant] = accelerator.applied.model_dump()
            if ranks is not None:
                ranks.ready(pipeline.transformer)
                pipeline.transformer = ContextParallelTransformer(pipeline.transformer, ranks, lora)
            renderer = Renderer(preset, pipeline, audio, accelerator, ranks)
            for resolution in resolutions:
                for profile in profiles:
                    if accelerator.applied.compiled:  # time a warm container, not the compile
                        render_clip(
                            renderer,
                            components,
                            resolution,
                            profile,
                            Path(work),
                            steps=1,
                            gpu_hour_usd=gpu_hour_usd,
                            peak_tflops=peak_tflops,
                        )
                    runs[f"{resolution}/{variant}/{profile}"] = render_clip(
                        renderer,
                        components,
                        resolution,
                        profile,
                        Path(work),
                        steps=steps,
                        gpu_hour_usd=gpu_hour_usd,
                        peak_tflops=peak_tflops,
                    )
        vae: dict[str, Any] = {}
        for resolution in resolutions:
            height, width = bucket_size(480, 832, resolution, preset.bucket_scale)
            latent_frames = (preset.frame_num - 1) // 4 + 1
            shape = (1, pipeline.vae.config.z_dim, latent_frames, height // 8, width // 8)
            vae[resolution] = vae_decode_errors(pipeline, shape)
    if ranks is not None:
        ranks.close()
    return {
        "device": name,
        "preset": preset.name,
        "weights": "random (seeded), built in code; random rank-64 LoRA for turbo",
        "build_s": round(build_s, 2),
        "gpu_hour_usd": gpu_hour_usd,
        "peak_tflops": peak_tflops,
        "measured_steps": steps,
        "gpus": gpus,
        "applied": applied,
        "runs": runs,
        "vae_decode": vae,
        "context_parallel": split_arithmetic(name, resolutions, profiles),
    }


def split_arithmetic(device_name: str, resolutions: list[str], profiles: list[str]) -> dict:
    """Speed-up by arithmetic of splitting each forward over 1, 2, 4 and 8 GPUs of this kind
    (H100 where the device is no H100, H200 or A100), for the profiles and resolutions run."""
    from scripts.bench.parallel_arithmetic import GPU_KINDS, context_parallel_estimate

    kind = next((k for k in GPU_KINDS if k.split("-")[0] in device_name), "H100")
    return {
        f"{kind}/{resolution}/{profile}": {
            gpus: round(
                context_parallel_estimate(gpus, resolution, profile, gpu_kind=kind).speedup, 2
            )
            for gpus in (1, 2, 4, 8)
        }
        for resolution in resolutions
        for profile in profiles
    }


def main(argv: list[str] | None = None, results_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=("full", "smoke"), default="full")
    parser.add_argument("--resolution", nargs="+", default=["480p"], choices=("480p", "720p"))
    parser.add_argument("--profile", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--variant", nargs="+", default=["eager"], choices=list(VARIANTS))
    parser.add_argument("--attention", default="auto", help="a diffusers backend name, or auto")
    parser.add_argument("--steps", type=int, default=None, help="sample N steps and project")
    parser.add_argument("--gpu-hour-usd", type=float, default=4.0)
    parser.add_argument("--gpus", type=int, default=1, help="split each forward across N GPUs")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help=f"MFU denominator; default {H200_DENSE_BF16_TFLOPS:g} on CUDA, none on the CPU",
    )
    args = parser.parse_args(argv)
    peak = args.peak_tflops
    if peak is None and args.device.startswith("cuda"):
        peak = H200_DENSE_BF16_TFLOPS
    components, preset = (FULL_SIZE, MULTITALK_14B) if args.size == "full" else (SMOKE_SIZE, TINY)
    figures = run(
        components,
        preset,
        device=args.device,
        resolutions=args.resolution,
        profiles=args.profile,
        variants=args.variant,
        attention=args.attention,
        steps=args.steps,
        gpu_hour_usd=args.gpu_hour_usd,
        peak_tflops=peak,
        gpus=args.gpus,
    )
    name = "gpu_render" if args.size == "full" else "gpu_render_smoke"
    command = " ".join(sys.argv[1:] if argv is None else argv)
    save(name, figures, f"python -m scripts.bench.gpu_render {command}".strip(), results_dir)
    return figures


if __name__ == "__main__":
    main()
