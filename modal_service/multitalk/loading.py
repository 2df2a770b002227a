"""Build a :class:`Renderer` for a preset: the tiny ones in code, the 14B ones from disk."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.acceleration.engine import Accelerator, accelerate_transformer
from modal_service.multitalk.acceleration.lora_fusion import FusedLora
from modal_service.multitalk.errors import ModelUnavailableError
from modal_service.multitalk.parallel.ranks import ContextParallelTransformer, RankGroup
from modal_service.multitalk.presets import (
    PRESETS,
    TINY,
    TINY_INFINITETALK,
    Preset,
    build_tiny,
    build_tiny_transformer,
)
from modal_service.multitalk.renderer import Renderer
from modal_service.multitalk.weights import (
    ADAPTER_FILES,
    BASE_DIR,
    LORA_DIR,
    WAV2VEC_DIR,
    load_transformer_state,
    transformer_config,
)

if TYPE_CHECKING:
    from modal_service.multitalk.audio_encoder import AudioFeatureEncoder
    from modal_service.multitalk.pipeline_multitalk import MultiTalkPipeline

logger = logging.getLogger(__name__)


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_preset(name: str, weights_dir: Path | None, device: str | None, gpus: int = 1) -> Renderer:
    """``name``'s renderer; with ``gpus`` > 1 its transformer runs split across that many GPUs
    (one process each, this one rank 0: ``parallel/``)."""
    device = device or _default_device()
    if name not in _TINY and name not in ADAPTER_FILES:
        raise ModelUnavailableError(f"unknown preset {name!r}", "unknown_preset")
    if name not in _TINY and weights_dir is None:
        raise ModelUnavailableError(f"{name} needs weights_dir", "weights_missing")
    deployment = DeploymentAcceleration.from_env()
    ranks = None
    if gpus > 1:
        # Started first: the other ranks load their copies while this one loads its own.
        build = functools.partial(_load_replica, name, weights_dir, deployment)
        ranks = RankGroup(gpus, torch.device(device).type, build)
    try:
        if name in _TINY:
            pipeline, audio_encoder = build_tiny(device)
            lora = None
        else:
            pipeline, audio_encoder, lora = load_14b(PRESETS[name], Path(weights_dir), device)
        accelerator = Accelerator(pipeline, deployment, lora)
        if ranks is not None:
            ranks.ready(pipeline.transformer)
            pipeline.transformer = ContextParallelTransformer(pipeline.transformer, ranks, lora)
    except BaseException:
        if ranks is not None:
            ranks.close()
        raise
    return Renderer(PRESETS[name], pipeline, audio_encoder, accelerator, ranks)


_TINY = {TINY.name, TINY_INFINITETALK.name}


def _load_replica(
    name: str, weights_dir: Path | None, deployment: DeploymentAcceleration, device: torch.device
) -> tuple[torch.nn.Module, FusedLora | None]:
    """Another rank's copy of ``name``'s transformer (and LoRA), accelerated like rank 0's."""
    if name in _TINY:
        transformer, lora = build_tiny_transformer().to(device), None
    else:
        assert weights_dir is not None
        transformer = build_transformer(
            Path(weights_dir) / BASE_DIR / "transformer",
            Path(weights_dir) / ADAPTER_FILES[name],
            torch.bfloat16,
        ).to(device)
        lora = load_distillation_lora(transformer, Path(weights_dir) / LORA_DIR)
    accelerate_transformer(transformer, device, deployment, lora)
    return transformer, lora


def build_transformer(transformer_dir: Path, adapter_file: Path, dtype: torch.dtype):  # noqa: ANN201
    """The MultiTalk transformer with base + adapter weights, loaded strictly (meta init)."""
    from modal_service.multitalk.transformer_multitalk import MultiTalkTransformer3DModel

    config = transformer_config(transformer_dir)
    with torch.device("meta"):
        model = MultiTalkTransformer3DModel(**config)
    state = load_transformer_state(
        transformer_dir, adapter_file, list(model.state_dict()), dtype, model._keep_in_fp32_modules
    )
    model.load_state_dict(state, strict=True, assign=True)
    # Buffers built at init (RoPE tables) are not in checkpoints: rebuild them off the meta device.
    model.rope = type(model.rope)(
        model.config.attention_head_dim, model.config.patch_size, model.config.rope_max_seq_len
    )
    return model.eval()


def load_14b(
    preset: Preset, weights_dir: Path, device: str, dtype: torch.dtype = torch.bfloat16
) -> tuple[MultiTalkPipeline, AudioFeatureEncoder, FusedLora | None]:
    """The shared 14B base with ``preset``'s audio adapter (``weights.ADAPTER_FILES``), its
    audio encoder and the distillation LoRA if the weights hold one."""
    from diffusers import AutoencoderKLWan
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionModel,
        UMT5EncoderModel,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    from modal_service.multitalk.audio_encoder import AudioFeatureEncoder
    from modal_service.multitalk.pipeline_multitalk import MultiTalkPipeline
    from modal_service.multitalk.scheduling import make_scheduler

    base = weights_dir / BASE_DIR
    adapter = weights_dir / ADAPTER_FILES[preset.name]
    for needed in (base, adapter, weights_dir / WAV2VEC_DIR):
        if not needed.exists():
            raise ModelUnavailableError(
                f"weights missing: {needed.relative_to(weights_dir)}", "weights_missing"
            )
    try:
        transformer = build_transformer(base / "transformer", adapter, dtype)
        pipeline = MultiTalkPipeline(
            tokenizer=AutoTokenizer.from_pretrained(base / "tokenizer"),
            text_encoder=UMT5EncoderModel.from_pretrained(base / "text_encoder", dtype=dtype),
            image_encoder=CLIPVisionModel.from_pretrained(
                base / "image_encoder", dtype=torch.float16
            ),
            image_processor=CLIPImageProcessor.from_pretrained(base / "image_processor"),
            transformer=transformer,
            vae=AutoencoderKLWan.from_pretrained(base / "vae", torch_dtype=torch.float32),
            scheduler=make_scheduler(),
        ).to(device)
        wav2vec_dir = weights_dir / WAV2VEC_DIR
        audio = AudioFeatureEncoder(
            Wav2Vec2Model.from_pretrained(wav2vec_dir).to(device),
            Wav2Vec2FeatureExtractor.from_pretrained(wav2vec_dir),
        )
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot load weights: {exc}", "weights_invalid") from exc
    # The LoRA is read before the deployment's acceleration applies: its snapshot of the
    # original weights must be the bf16 ones, not fp8.
    return pipeline, audio, load_distillation_lora(transformer, weights_dir / LORA_DIR)


def load_distillation_lora(transformer, lora_dir: Path) -> FusedLora | None:  # noqa: ANN001
    """The first ``*.safetensors`` in ``lora_dir``, ready to fuse for turbo renders (or None)."""
    files = sorted(lora_dir.glob("*.safetensors")) if lora_dir.is_dir() else []
    if not files:
        return None
    if len(files) > 1:
        logger.warning("several LoRAs in %s; turbo uses %s", lora_dir.name, files[0].name)
    return FusedLora.from_file(transformer, files[0])
