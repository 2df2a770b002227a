"""One clip through the product's own render path at full size, stage by stage, random weights.

    python -m scripts.bench.gpu_render [--resolution 480p 720p] [--mode default turbo]
        [--gpu-hour-usd 4.0] [--peak-tflops 989] [--device cuda]

Nothing is downloaded and no checkpoint is read. Every component is built at its real size in
code (UMT5-XXL, CLIP ViT-H/14, the Wan 2.1 VAE, wav2vec2-base and the 14B MultiTalk transformer),
directly on the device, in the dtypes the weight loader uses (bf16; the VAE and the
transformer's norms and embedders in fp32; CLIP in fp16), from a fixed seed. Random weights
move as many bytes and FLOPs as the real ones, so times and memory are true; the video is noise.

Then one clip (the preset's ``frame_num``: 81 frames, 3.24 s) renders through
:meth:`Renderer.render`, the call every job makes, with hooks that time each stage: the text
and image encoders, wav2vec2, every transformer forward, VAE encode and decode, the MP4 encode.
Printed and saved to ``results/gpu_render.json`` with the machine, per resolution and mode:
seconds per stage, peak device memory, the transformer's MFU (its FLOPs counted on the meta
device, over its time, over ``--peak-tflops``), seconds per clip and per video-second, and the
cost per video-second at ``--gpu-hour-usd``.

``tests/unit/bench/test_gpu_render.py`` runs the same code on the CPU at tiny size, so the
benchmark cannot rot between the rare runs on a GPU. The speed profiles of the GPU-speed issue
(attention backend, regional compile, fused LoRA, fp8, step caching, VAE precision) are not
built yet; each will be a mode here.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from modal_service.multitalk.presets import (
    MULTITALK_14B,
    TINY,
    TINY_IMAGE_ENCODER,
    TINY_TEXT_ENCODER,
    TINY_TRANSFORMER,
    TINY_VAE,
    TINY_WAV2VEC,
    Preset,
)
from scripts import samples
from scripts.bench.results import RESULTS_DIR, save

H200_DENSE_BF16_TFLOPS = 989.0
"""The datasheet's dense bf16 figure for H100/H200 SXM: the usual MFU denominator."""


class Components(BaseModel):
    """Constructor arguments of every component (transformers/diffusers configs)."""

    model_config = ConfigDict(frozen=True)

    transformer: dict[str, Any]
    text: dict[str, Any]
    image: dict[str, Any]
    vae: dict[str, Any]
    wav2vec: dict[str, Any]


FULL_SIZE = Components(
    transformer={},  # MultiTalkTransformer3DModel's defaults are the 14B I2V ones
    text=dict(  # umt5-xxl encoder, as Wan 2.1 ships it
        vocab_size=256_384,
        d_model=4096,
        d_kv=64,
        d_ff=10_240,
        num_layers=24,
        num_heads=64,
        relative_attention_num_buckets=32,
        feed_forward_proj="gated-gelu",
    ),
    image=dict(  # open-clip xlm-roberta-large-vit-huge-14's vision tower
        hidden_size=1280,
        intermediate_size=5120,
        num_hidden_layers=32,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        projection_dim=1024,
        hidden_act="gelu",
    ),
    vae={},  # AutoencoderKLWan's defaults are Wan 2.1's VAE
    wav2vec={},  # Wav2Vec2Config's defaults are the base model (12 layers, 768 wide)
)
SMOKE_SIZE = Components(
    transformer=TINY_TRANSFORMER,
    text=TINY_TEXT_ENCODER,
    image=TINY_IMAGE_ENCODER,
    vae=TINY_VAE,
    wav2vec=TINY_WAV2VEC,
)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_random_renderer(components: Components, preset: Preset, device: str, seed: int = 0):  # noqa: ANN201 (Renderer: torch-heavy import kept local)
    """Every component built on ``device`` from ``seed``, in the loader's dtypes; no download."""
    from diffusers import AutoencoderKLWan
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    from modal_service.multitalk.audio_encoder import AudioFeatureEncoder
    from modal_service.multitalk.pipeline_multitalk import MultiTalkPipeline
    from modal_service.multitalk.presets import byte_level_tokenizer
    from modal_service.multitalk.renderer import Renderer
    from modal_service.multitalk.scheduling import make_scheduler
    from modal_service.multitalk.transformer_multitalk import MultiTalkTransformer3DModel

    # bf16 where CPUs lack fast kernels too: the tiny smoke run keeps the GPU's dtypes.
    half = torch.bfloat16
    torch.manual_seed(seed)
    tokenizer = byte_level_tokenizer()
    with torch.device(device), torch.no_grad():
        with _default_dtype(half):
            transformer = MultiTalkTransformer3DModel(**components.transformer)
            text_config = {"vocab_size": len(tokenizer), **components.text}
            text = UMT5EncoderModel(UMT5Config(pad_token_id=0, eos_token_id=1, **text_config))
        # The loader's own choices: norms and embedders fp32 in the transformer, CLIP fp16.
        for name, module in transformer.named_modules():
            if any(keep in name.split(".") for keep in transformer._keep_in_fp32_modules):
                module.float()
        with _default_dtype(torch.float16):
            image = CLIPVisionModel(CLIPVisionConfig(**components.image))
        vae = AutoencoderKLWan(**components.vae)
        wav2vec = Wav2Vec2Model(Wav2Vec2Config(**components.wav2vec))
    size = components.image["image_size"]
    pipeline = MultiTalkPipeline(
        tokenizer=tokenizer,
        text_encoder=text.eval(),
        image_encoder=image.eval(),
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        ),
        transformer=transformer.eval(),
        vae=vae.eval(),
        scheduler=make_scheduler(),
    )
    audio = AudioFeatureEncoder(wav2vec.eval(), Wav2Vec2FeatureExtractor(do_normalize=True))
    return Renderer(preset, pipeline, audio)


class _StageClock:
    """Times methods of the render's components; on CUDA each timing waits for the device."""

    def __init__(self, device: torch.device) -> None:
        self._sync: Callable[[], None] = (
            torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        )
        self.seconds: dict[str, float] = {}
        self.forwards: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def timing(self, owner: object, method: str, stage: str) -> Iterator[None]:
        """Wrap ``owner.method`` (an instance attribute shadows the class's) while inside."""
        original = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            started = time.perf_counter()
            result = original(*args, **kwargs)
            self._sync()
            seconds = time.perf_counter() - started
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            if stage == "transformer":
                shape = tuple(kwargs["hidden_states"].shape)
                speakers = kwargs["audio_embeds"].shape[1]
                self.forwards.append({"shape": shape, "speakers": speakers, "seconds": seconds})
            return result

        setattr(owner, method, timed)
        try:
            yield
        finally:
            delattr(owner, method)


def _transformer_flops(config: dict[str, Any], forwards: list[dict[str, Any]]) -> float:
    """FLOPs of the forwards seen, each distinct shape counted once on the meta device."""
    from modal_service.multitalk.flops import forward_flops

    per_shape: dict[tuple, float] = {}
    total = 0.0
    for forward in forwards:
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


def render_clip(
    renderer: Any,
    components: Components,
    resolution: str,
    mode: str,
    work: Path,
    *,
    gpu_hour_usd: float,
    peak_tflops: float | None,
) -> dict[str, Any]:
    """One clip of ``renderer``'s preset through ``Renderer.render``, with its figures."""
    from modal_service.multitalk.spec import RenderSpec

    preset = renderer._preset
    seconds = preset.frame_num / 25
    audio = samples.write_speech_wav(work / "voice.wav", duration_s=seconds, seed=3)
    image = samples.draw_portrait(work / "face.png", size=(832, 480))
    spec = RenderSpec(
        audio_paths=[audio],
        image_path=image,
        resolution=resolution,
        max_duration_s=seconds,
        speed="turbo" if mode == "turbo" else "quality",
        seed=1,
    )
    pipeline = renderer.pipeline
    device = pipeline._execution_device
    clock = _StageClock(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    parts = [
        (pipeline.text_encoder, "forward", "text_encoder"),
        (pipeline.image_encoder, "forward", "image_encoder"),
        (renderer.audio_encoder.model, "forward", "wav2vec2"),
        (pipeline.transformer, "forward", "transformer"),
        (pipeline.vae, "encode", "vae_encode"),
        (pipeline.vae, "decode", "vae_decode"),
    ]
    with contextlib.ExitStack() as stack:
        for owner, method, stage in parts:
            stack.enter_context(clock.timing(owner, method, stage))
        started = time.perf_counter()
        outcome = renderer.render(spec, work / f"{resolution}-{mode}.mp4")
        wall = time.perf_counter() - started
    video_s = outcome.duration_s
    flops = _transformer_flops(components.transformer, clock.forwards)
    transformer_s = clock.seconds.get("transformer", 0.0)
    figures: dict[str, Any] = {
        "frames": outcome.frames,
        "size": f"{outcome.width}x{outcome.height}",
        "sample_steps": outcome.sample_steps,
        "guidance_passes": outcome.guidance_passes,
        "stages_s": {stage: round(value, 4) for stage, value in clock.seconds.items()}
        | {"mp4_encode": outcome.timings_s.get("encode", 0.0)},
        "transformer_forwards": len(clock.forwards),
        "transformer_forward_s": [round(f["seconds"], 4) for f in clock.forwards],
        "transformer_flops": float(f"{flops:.4g}"),
        "mfu": round(flops / transformer_s / (peak_tflops * 1e12), 4)
        if peak_tflops and transformer_s
        else None,
        "clip_s": round(wall, 3),
        "s_per_video_second": round(wall / video_s, 3),
        "usd_per_video_second": round(wall / 3600 * gpu_hour_usd / video_s, 5),
        "notes": outcome.notes,
    }
    if device.type == "cuda":
        figures["peak_device_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
    return figures


def run(
    components: Components,
    preset: Preset,
    *,
    device: str,
    resolutions: list[str],
    modes: list[str],
    gpu_hour_usd: float,
    peak_tflops: float | None,
) -> dict[str, Any]:
    """Build once, render one clip per resolution and mode; the figures to save."""
    started = time.perf_counter()
    renderer = build_random_renderer(components, preset, device)
    build_s = time.perf_counter() - started
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-render-") as work:
        for resolution in resolutions:
            for mode in modes:
                runs[f"{resolution}/{mode}"] = render_clip(
                    renderer,
                    components,
                    resolution,
                    mode,
                    Path(work),
                    gpu_hour_usd=gpu_hour_usd,
                    peak_tflops=peak_tflops,
                )
    return {
        "device": name,
        "preset": preset.name,
        "weights": "random (seeded), built in code",
        "build_s": round(build_s, 2),
        "gpu_hour_usd": gpu_hour_usd,
        "peak_tflops": peak_tflops,
        "runs": runs,
    }


def main(argv: list[str] | None = None, results_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=("full", "smoke"), default="full")
    parser.add_argument("--resolution", nargs="+", default=["480p"], choices=("480p", "720p"))
    parser.add_argument("--mode", nargs="+", default=["default", "turbo"])
    parser.add_argument("--gpu-hour-usd", type=float, default=4.0)
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
        modes=args.mode,
        gpu_hour_usd=args.gpu_hour_usd,
        peak_tflops=peak,
    )
    name = "gpu_render" if args.size == "full" else "gpu_render_smoke"
    save(name, figures, "python -m scripts.bench.gpu_render " + " ".join(argv or []), results_dir)
    return figures


if __name__ == "__main__":
    main()
