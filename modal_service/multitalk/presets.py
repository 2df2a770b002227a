"""Presets: the real 14B models and their ``tiny`` twins (same classes, small dims, seeded
random weights).

The 14B presets share the Wan2.1 I2V base and the transformer class; each reads its own audio
adapter and streams clips its own way: ``multitalk-14b`` (MultiTalk), ``infinitetalk-14b`` and
``infinitetalk-14b-multi`` (InfiniteTalk's single- and multi-speaker adapters).

``tiny`` and ``tiny-infinitetalk`` exist so the whole product runs on a CPU in seconds: their
video is noise, but a real, playable MP4 of the right length with the audio muxed, and the
metadata names the preset. They render smaller buckets (1/10 of the area side) and shorter clips
(33 frames instead of 81; 9 motion frames instead of 25, 5 instead of 9) so that clip streaming
is exercised by a few seconds of audio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, ConfigDict

from modal_service.multitalk.audio_encoder import AudioFeatureEncoder
from modal_service.multitalk.pipeline_multitalk import MultiTalkPipeline
from modal_service.multitalk.scheduling import make_scheduler

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


class Preset(BaseModel):
    """Sampling defaults and clip geometry of one model preset."""

    model_config = ConfigDict(frozen=True)

    name: str
    strategy: Literal["multitalk", "infinitetalk"] = "multitalk"
    """How clips are streamed (``streaming.STRATEGIES``)."""
    frame_num: int = 81
    motion_frames: int = 25
    sample_steps: int = 40
    shift: dict[str, float] = {"480p": 7.0, "720p": 11.0}
    text_guidance_scale: float = 5.0
    audio_guidance_scale: float = 4.0
    turbo_steps_with_lora: int = 4
    turbo_shift_with_lora: float = 5.0
    """lightx2v's 4-step distillation LoRA: its own steps and shift (``distilled_sigmas``)."""
    turbo_steps_without_lora: int = 10
    bucket_scale: float = 1.0
    color_correction_strength: float = 1.0
    cpu_threads: int | None = None
    """Intra-op threads while rendering on CPU (None: leave torch's setting alone)."""
    negative_prompt: str = (
        "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, "
        "images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, "
        "incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, "
        "misshapen limbs, fused fingers, still picture, messy background, three legs, many people "
        "in the background, walking backwards"
    )


MULTITALK_14B = Preset(name="multitalk-14b")
# InfiniteTalk's defaults are MultiTalk's (40 steps, shift 7/11, guidance 5/4, colour correction
# 1.0, the same buckets) but for its 9 motion frames.
INFINITETALK_14B = Preset(name="infinitetalk-14b", strategy="infinitetalk", motion_frames=9)
INFINITETALK_14B_MULTI = INFINITETALK_14B.model_copy(update={"name": "infinitetalk-14b-multi"})
TINY = Preset(
    name="tiny",
    frame_num=33,
    motion_frames=9,
    sample_steps=4,
    turbo_steps_with_lora=2,
    turbo_steps_without_lora=2,
    bucket_scale=0.1,
    # Tiny ops gain nothing from threads, and on a shared CPU OpenMP's spin-waiting made
    # 2-thread tiny renders about 10x slower than 1-thread ones (measured under load 6 on 2 cores).
    cpu_threads=1,
)
TINY_INFINITETALK = TINY.model_copy(
    update={"name": "tiny-infinitetalk", "strategy": "infinitetalk", "motion_frames": 5}
)
PRESETS = {
    preset.name: preset
    for preset in (MULTITALK_14B, INFINITETALK_14B, INFINITETALK_14B_MULTI, TINY, TINY_INFINITETALK)
}

TINY_TRANSFORMER = dict(
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=12,
    out_channels=4,
    text_dim=16,
    freq_dim=32,
    ffn_dim=32,
    num_layers=2,
    image_dim=8,
    added_kv_proj_dim=24,
    audio_layers=2,
    audio_channels=16,
    audio_intermediate_dim=32,
    audio_dim=16,
    audio_tokens=4,
)
# The other components at tiny size (constructor arguments; the tokenizer's vocabulary and
# special ids are added where the models are built). The GPU benchmark's smoke run uses them too.
TINY_TEXT_ENCODER = dict(
    d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, relative_attention_num_buckets=8
)
TINY_IMAGE_ENCODER = dict(
    hidden_size=8,
    intermediate_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=28,
    patch_size=14,
    projection_dim=8,
)
TINY_VAE = dict(
    base_dim=8,
    z_dim=4,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=1,
    latents_mean=[0.0] * 4,
    latents_std=[1.0] * 4,
)
TINY_WAV2VEC = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(16,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)
TINY_SEED = 20250703


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE with no merges: real tokenisation, 259 ids, built without any download."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials)}
    # Sorted: the alphabet comes from a Rust hash set, in a different order in every process,
    # and tiny's text states (so its video for a given seed) would change with it.
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=specials[2]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=specials[0],
        eos_token=specials[1],
        unk_token=specials[2],
    )


def build_tiny_transformer(seed: int = TINY_SEED):  # noqa: ANN201
    """The tiny MultiTalk transformer with seeded random weights."""
    from modal_service.multitalk.transformer_multitalk import MultiTalkTransformer3DModel

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MultiTalkTransformer3DModel(**TINY_TRANSFORMER).eval()


def build_tiny(device: str = "cpu") -> tuple[MultiTalkPipeline, AudioFeatureEncoder]:
    """Every component at tiny size, seeded, on ``device``; nothing is downloaded."""
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

    tokenizer = byte_level_tokenizer()
    with torch.random.fork_rng():
        torch.manual_seed(TINY_SEED)
        text_encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1, **TINY_TEXT_ENCODER
            )
        )
        image_encoder = CLIPVisionModel(CLIPVisionConfig(**TINY_IMAGE_ENCODER))
        vae = AutoencoderKLWan(**TINY_VAE)
        wav2vec = Wav2Vec2Model(Wav2Vec2Config(**TINY_WAV2VEC))
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
    )
    pipe = MultiTalkPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder.eval(),
        image_encoder=image_encoder.eval(),
        image_processor=image_processor,
        transformer=build_tiny_transformer(),
        vae=vae.eval(),
        scheduler=make_scheduler(),
    )
    pipe.to(device)
    audio = AudioFeatureEncoder(wav2vec.to(device), Wav2Vec2FeatureExtractor(do_normalize=True))
    return pipe, audio
