"""The whole MultiTalk stack at its real size with seeded random weights, built in code.

Nothing is downloaded and no checkpoint is read. Every component is built at its real size
(UMT5-XXL, CLIP ViT-H/14, the Wan 2.1 VAE, wav2vec2-base and the 14B MultiTalk transformer),
directly on the device, in the dtypes the weight loader uses (bf16; the VAE and the
transformer's norms and embedders in fp32; CLIP in fp16), from a fixed seed. Random weights
move as many bytes and FLOPs as the real ones, so times and memory are true; the video is noise.
A random rank-64 distillation LoRA on every linear layer of the blocks stands in for lightx2v's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.acceleration.engine import accelerate_transformer
from modal_service.multitalk.acceleration.lora_fusion import FusedLora
from modal_service.multitalk.presets import (
    TINY_IMAGE_ENCODER,
    TINY_TEXT_ENCODER,
    TINY_TRANSFORMER,
    TINY_VAE,
    TINY_WAV2VEC,
)


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


def build_random_transformer(components: Components, device: str, seed: int = 0) -> torch.nn.Module:
    """The transformer alone, as ``build_random_pipeline`` builds it from ``seed`` (the same
    weights: it is built first, from the freshly seeded generator)."""
    from modal_service.multitalk.transformer_multitalk import MultiTalkTransformer3DModel

    torch.manual_seed(seed)
    with torch.device(device), torch.no_grad():
        with _default_dtype(torch.bfloat16):
            transformer = MultiTalkTransformer3DModel(**components.transformer)
        # The loader's own choice: norms and embedders fp32.
        for name, module in transformer.named_modules():
            if any(keep in name.split(".") for keep in transformer._keep_in_fp32_modules):
                module.float()
    return transformer.eval()


def random_replica(
    components: Components,
    deployment: DeploymentAcceleration,
    with_lora: bool,
    device: torch.device,
) -> tuple[torch.nn.Module, FusedLora | None]:
    """Another GPU rank's copy of the benchmark's transformer (and LoRA), accelerated as rank
    0's: a ``ReplicaBuilder`` for ``parallel.ranks.RankGroup``."""
    transformer = build_random_transformer(components, str(device))
    lora = random_distillation_lora(transformer) if with_lora else None
    accelerate_transformer(transformer, device, deployment, lora)
    return transformer, lora


def build_random_pipeline(components: Components, device: str, seed: int = 0) -> tuple:
    """``(pipeline, audio_encoder)``: every component built on ``device`` from ``seed``, in
    the loader's dtypes; nothing downloaded."""
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
    from modal_service.multitalk.scheduling import make_scheduler

    # bf16 where CPUs lack fast kernels too: the tiny smoke run keeps the GPU's dtypes.
    tokenizer = byte_level_tokenizer()
    transformer = build_random_transformer(components, device, seed)
    with torch.device(device), torch.no_grad():
        with _default_dtype(torch.bfloat16):
            text_config = {"vocab_size": len(tokenizer), **components.text}
            text = UMT5EncoderModel(UMT5Config(pad_token_id=0, eos_token_id=1, **text_config))
        # The loader's own choice: CLIP in fp16.
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
        transformer=transformer,
        vae=vae.eval(),
        scheduler=make_scheduler(),
    )
    audio = AudioFeatureEncoder(wav2vec.eval(), Wav2Vec2FeatureExtractor(do_normalize=True))
    return pipeline, audio


def random_distillation_lora(
    transformer: torch.nn.Module, rank: int = 64, seed: int = 1
) -> FusedLora:
    """A LoRA of ``rank`` on every linear layer of the blocks but MultiTalk's audio ones (the
    layers lightx2v's Wan I2V LoRA targets), small enough not to blow the activations up."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in transformer.named_modules():
        if (
            name.startswith("blocks.")
            and isinstance(module, torch.nn.Linear)
            and "audio" not in name
        ):
            out_dim, in_dim = module.weight.shape
            state[f"transformer.{name}.lora_A.weight"] = (
                torch.randn(rank, in_dim, generator=generator) / in_dim**0.5
            )
            state[f"transformer.{name}.lora_B.weight"] = (
                torch.randn(out_dim, rank, generator=generator) * 1e-3
            )
    return FusedLora.from_state_dict(transformer, state, f"random-rank{rank}")
