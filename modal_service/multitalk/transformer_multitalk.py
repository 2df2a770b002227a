"""The MultiTalk transformer: Wan2.1-I2V-14B plus MultiTalk's audio adapter, on diffusers.

Reads top-down like diffusers' ``transformer_wan.py``: the audio projection, the self-attention
processor that also measures reference affinity, the per-frame audio attention, the block, and the
model. Module names of the adapter (``audio_proj.*``, ``blocks.{i}.audio_cross_attn.*``,
``blocks.{i}.norm_x.*``) are the original checkpoint's, so ``multitalk.safetensors`` loads as is;
everything else keeps diffusers' Wan names, so Wan LoRAs and loaders work unchanged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import (
    WanAttention,
    WanAttnProcessor,
    WanTransformer3DModel,
    WanTransformerBlock,
    _get_qkv_projections,
)
from torch import nn

from modal_service.multitalk.speaker_binding import (
    audio_key_positions,
    reference_affinity,
    rope_1d,
    token_positions,
)

if TYPE_CHECKING:
    from modal_service.multitalk.parallel.sequence import SequenceParallel, Share


def pack_audio_windows(
    audio: torch.Tensor, vae_scale: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group per-video-frame audio windows by latent frame.

    Latent frame 0 covers video frame 0 and keeps its whole window. Every later latent frame
    covers ``vae_scale`` video frames; it keeps the first half (up to the centre) of the first
    frame's window, the centre of the middle frames and the second half of the last frame's
    window: 3 + 1 + 1 + 3 = 8 entries for 5-frame windows.

    Args:
        audio: ``(batch, num_frames, window, layers, channels)``, ``num_frames = 4k + 1``.

    Returns:
        ``(batch, 1, window, layers, channels)`` and
        ``(batch, k, window + vae_scale - 1, layers, channels)``.
    """
    window = audio.shape[2]
    middle = window // 2
    first = audio[:, :1]
    later = audio[:, 1:].unflatten(1, (-1, vae_scale))  # (B, k, vae_scale, window, L, C)
    head = later[:, :, 0, : middle + 1]
    centre = later[:, :, 1:-1, middle]
    tail = later[:, :, -1, middle:]
    return first, torch.cat([head, centre, tail], dim=2)


class MultiTalkAudioProjection(nn.Module):
    """wav2vec2 windows -> ``context_tokens`` audio tokens per latent frame and speaker."""

    def __init__(
        self,
        window: int = 5,
        vae_scale: int = 4,
        layers: int = 12,
        channels: int = 768,
        intermediate_dim: int = 512,
        output_dim: int = 768,
        context_tokens: int = 32,
    ) -> None:
        super().__init__()
        self.context_tokens, self.output_dim = context_tokens, output_dim
        self.proj1 = nn.Linear(window * layers * channels, intermediate_dim)
        self.proj1_vf = nn.Linear((window + vae_scale - 1) * layers * channels, intermediate_dim)
        self.proj2 = nn.Linear(intermediate_dim, intermediate_dim)
        self.proj3 = nn.Linear(intermediate_dim, context_tokens * output_dim)
        # InfiniteTalk runs this norm in fp32; bf16 LayerNorm over 768 channels loses precision.
        self.norm = FP32LayerNorm(output_dim)

    def forward(self, first: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
        """``(B, 1, ...)``, ``(B, k, ...)`` -> ``(B, 1 + k, context_tokens, output_dim)``."""
        first = torch.relu(self.proj1(first.flatten(2)))
        later = torch.relu(self.proj1_vf(later.flatten(2)))
        hidden = torch.relu(self.proj2(torch.cat([first, later], dim=1)))
        tokens = self.proj3(hidden).unflatten(-1, (self.context_tokens, self.output_dim))
        return self.norm(tokens)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x_even, x_odd = x.unflatten(-1, (-1, 2)).unbind(-1)
    out = torch.stack(
        (
            x_even * cos[..., 0::2] - x_odd * sin[..., 1::2],
            x_even * sin[..., 1::2] + x_odd * cos[..., 0::2],
        ),
        dim=-1,
    )
    return out.flatten(-2).type_as(x)


class MultiTalkSelfAttnProcessor(WanAttnProcessor):
    """Wan self-attention that also returns the reference affinity when class masks are given.

    Under context parallelism the hidden states are this rank's ``share`` of the tokens: the
    attention runs through diffusers' Ulysses, and the affinity's reference-frame keys are
    collected from the ranks that hold them.
    """

    def __call__(
        self,
        attn: WanAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        class_masks: torch.Tensor | None = None,
        share: Share | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        query, key, value = _get_qkv_projections(attn, hidden_states, None)
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            query = _apply_rotary(query, *rotary_emb)
            key = _apply_rotary(key, *rotary_emb)
        out = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=share.attention if share is not None else None,
        )
        out = attn.to_out[1](attn.to_out[0](out.flatten(2, 3).type_as(query)))
        affinity = None
        if class_masks is not None:
            with torch.no_grad():
                if share is not None:
                    key = share.reference_keys(key, class_masks.shape[1])
                affinity = reference_affinity(query, key, class_masks)
        return out, affinity


class MultiTalkAudioAttention(nn.Module):
    """Cross-attention from each latent frame's video tokens to that frame's audio tokens."""

    def __init__(self, dim: int, audio_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(audio_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        hidden_states: torch.Tensor,
        audio_tokens: torch.Tensor,
        query_positions: torch.Tensor | None = None,
        key_positions: torch.Tensor | None = None,
        binding: torch.Tensor | None = None,
        frame_tokens: int | None = None,
        token_offset: int = 0,
    ) -> torch.Tensor:
        """
        Args:
            hidden_states: ``(batch, seq_len, dim)``: the video's tokens, or (context
                parallelism) a contiguous share of them starting at ``token_offset``.
            audio_tokens: ``(batch, frames, audio_tokens, audio_dim)`` for the whole video.
            query_positions: L-RoPE positions ``(batch, seq_len)``, or None.
            key_positions: L-RoPE positions of the audio tokens ``(audio_tokens,)``.
            binding: ``(batch,)`` bool, which samples use L-RoPE (the null-audio CFG branch
                does not, exactly as MultiTalk's single-stream null pass).
            frame_tokens: video tokens per latent frame (default: ``seq_len / frames``).
            token_offset: position of the first of ``hidden_states``' tokens in the video.
        """
        batch, seq_len, dim = hidden_states.shape
        frame_tokens = frame_tokens or seq_len // audio_tokens.shape[1]
        # The latent frames these tokens fall in; a share that starts or ends inside a frame is
        # padded to whole frames (the padding's outputs are dropped).
        first = token_offset // frame_tokens
        lead = token_offset - first * frame_tokens
        frames = math.ceil((lead + seq_len) / frame_tokens)
        trail = frames * frame_tokens - lead - seq_len
        audio_tokens = audio_tokens[:, first : first + frames]
        num_audio = audio_tokens.shape[2]
        query = self.q_linear(hidden_states).unflatten(2, (self.num_heads, -1))
        key, value = self.kv_linear(audio_tokens).unflatten(-1, (2, self.num_heads, -1)).unbind(-3)
        key = key.flatten(1, 2)  # (B, frames * audio_tokens, heads, head_dim)
        if query_positions is not None:
            bound = binding.view(-1, 1, 1, 1)
            query = torch.where(bound, rope_1d(query, query_positions), query)
            key_pos = key_positions.to(key.device).repeat(frames)
            key = torch.where(bound, rope_1d(key, key_pos), key)
        if lead or trail:
            query = nn.functional.pad(query, (0, 0, 0, 0, lead, trail))
        # One attention problem per latent frame: fold frames into the batch.
        query = query.reshape(batch * frames, frame_tokens, self.num_heads, -1)
        key = key.reshape(batch * frames, num_audio, self.num_heads, -1)
        value = value.reshape(batch * frames, num_audio, self.num_heads, -1)
        out = dispatch_attention_fn(query, key, value).reshape(batch, -1, dim)
        return self.proj(out[:, lead : lead + seq_len])


class MultiTalkTransformerBlock(WanTransformerBlock):
    """Wan block with MultiTalk's audio step between the text/image cross-attention and the FFN."""

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        num_heads: int,
        qk_norm: str = "rms_norm_across_heads",
        cross_attn_norm: bool = False,
        eps: float = 1e-6,
        added_kv_proj_dim: int | None = None,
        audio_dim: int = 768,
    ) -> None:
        super().__init__(dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim)
        self.attn1.set_processor(MultiTalkSelfAttnProcessor())
        self.audio_cross_attn = MultiTalkAudioAttention(dim, audio_dim, num_heads)
        self.norm_x = FP32LayerNorm(dim, eps, elementwise_affine=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        audio_tokens: torch.Tensor | None = None,
        class_masks: torch.Tensor | None = None,
        audio_key_pos: torch.Tensor | None = None,
        binding: torch.Tensor | None = None,
        frame_tokens: int | None = None,
        share: Share | None = None,
    ) -> torch.Tensor:
        # temb: (batch, 6, dim) for Wan2.1 14B
        shift, scale, gate, c_shift, c_scale, c_gate = (
            self.scale_shift_table + temb.float()
        ).chunk(6, dim=1)

        # 1. Self-attention (+ reference affinity for two speakers)
        norm = (self.norm1(hidden_states.float()) * (1 + scale) + shift).type_as(hidden_states)
        attn_out, affinity = self.attn1(
            norm, None, None, rotary_emb, class_masks=class_masks, share=share
        )
        hidden_states = (hidden_states.float() + attn_out * gate).type_as(hidden_states)

        # 2. Text + CLIP-image cross-attention
        norm = self.norm2(hidden_states.float()).type_as(hidden_states)
        hidden_states = hidden_states + self.attn2(norm, encoder_hidden_states, None, None)

        # 3. Audio cross-attention, per latent frame, no gate (as in MultiTalk)
        positions = None
        if affinity is not None:
            positions = token_positions(affinity, extrema=share.extrema if share else None)
        norm = self.norm_x(hidden_states.float()).type_as(hidden_states)
        offset = share.offset if share else 0
        hidden_states = hidden_states + self.audio_cross_attn(
            norm, audio_tokens, positions, audio_key_pos, binding, frame_tokens, offset
        )

        # 4. Feed-forward
        norm = (self.norm3(hidden_states.float()) * (1 + c_scale) + c_shift).type_as(hidden_states)
        ff_out = self.ffn(norm)
        return (hidden_states.float() + ff_out.float() * c_gate).type_as(hidden_states)


class MultiTalkTransformer3DModel(WanTransformer3DModel):
    r"""Wan2.1 I2V transformer with MultiTalk's audio adapter.

    Args (beyond [`WanTransformer3DModel`]'s):
        audio_window (`int`, defaults to 5): wav2vec2 frames per video frame.
        audio_layers (`int`, defaults to 12): wav2vec2 encoder layers stacked per frame.
        audio_channels (`int`, defaults to 768): wav2vec2 hidden size.
        audio_intermediate_dim (`int`, defaults to 512): width of the projection MLP.
        audio_dim (`int`, defaults to 768): width of the audio tokens.
        audio_tokens (`int`, defaults to 32): audio tokens per latent frame and speaker.
        vae_scale (`int`, defaults to 4): video frames per latent frame.
        class_range, class_interval (`int`, 24 and 4): L-RoPE bands (see ``speaker_binding``).
    """

    _no_split_modules: ClassVar[list[str]] = ["MultiTalkTransformerBlock"]
    _repeated_blocks: ClassVar[list[str]] = ["MultiTalkTransformerBlock"]
    _keep_in_fp32_modules: ClassVar[list[str]] = [
        *WanTransformer3DModel._keep_in_fp32_modules,
        "norm_x",
    ]
    sequence_parallel: SequenceParallel | None = None

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 36,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = 1280,
        added_kv_proj_dim: int | None = 5120,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        audio_window: int = 5,
        audio_layers: int = 12,
        audio_channels: int = 768,
        audio_intermediate_dim: int = 512,
        audio_dim: int = 768,
        audio_tokens: int = 32,
        vae_scale: int = 4,
        class_range: int = 24,
        class_interval: int = 4,
    ) -> None:
        super().__init__(
            patch_size,
            num_attention_heads,
            attention_head_dim,
            in_channels,
            out_channels,
            text_dim,
            freq_dim,
            ffn_dim,
            num_layers,
            cross_attn_norm,
            qk_norm,
            eps,
            image_dim,
            added_kv_proj_dim,
            rope_max_seq_len,
            pos_embed_seq_len,
        )
        inner_dim = num_attention_heads * attention_head_dim
        self.blocks = nn.ModuleList(
            MultiTalkTransformerBlock(
                inner_dim,
                ffn_dim,
                num_attention_heads,
                qk_norm,
                cross_attn_norm,
                eps,
                added_kv_proj_dim,
                audio_dim,
            )
            for _ in range(num_layers)
        )
        self.audio_proj = MultiTalkAudioProjection(
            audio_window,
            vae_scale,
            audio_layers,
            audio_channels,
            audio_intermediate_dim,
            audio_dim,
            audio_tokens,
        )

    def enable_sequence_parallel(self, parallel: SequenceParallel) -> None:
        """Run this rank's share of every forward's tokens (``parallel/sequence.py``); the
        output is the whole sequence's, on every rank."""
        self.sequence_parallel = parallel

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor,
        audio_embeds: torch.Tensor,
        ref_target_masks: torch.Tensor | None = None,
        speaker_binding: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor | Transformer2DModelOutput:
        """
        Args:
            hidden_states: ``(batch, in_channels, frames, height, width)``: noisy latents
                concatenated with the I2V condition (4 mask + 16 latent channels for 14B).
            timestep: ``(batch,)`` in ``[0, 1000]``.
            encoder_hidden_states: ``(batch, 512, text_dim)`` UMT5 states.
            encoder_hidden_states_image: ``(batch, 257, image_dim)`` CLIP penultimate states.
            audio_embeds: ``(batch, speakers, 4 * (frames - 1) + 1, window, layers, channels)``.
            ref_target_masks: ``(speakers + 1, height // 2, width // 2)`` speaker and background
                masks on the token grid. Used (and the affinity computed) only for 2 speakers.
            speaker_binding: ``(batch,)`` bool; samples that use L-RoPE (default: all).
            attention_kwargs: may carry ``scale`` for LoRA layers.
        """
        if attention_kwargs and "scale" in attention_kwargs:
            raise ValueError("set LoRA scales with set_adapters(), not attention_kwargs")
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        grid = (frames // p_t, height // p_h, width // p_w)

        # 1. Patch & position embedding (a share of the tokens under context parallelism)
        rotary_emb = self.rope(hidden_states)
        hidden_states = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()
        share = None
        if self.sequence_parallel is not None:
            share = self.sequence_parallel.share(hidden_states.shape[1])
            hidden_states = share.split(hidden_states, dim=1)
            rotary_emb = tuple(share.split(freqs, dim=1) for freqs in rotary_emb)

        # 2. Time, text and image conditions
        temb, timestep_proj, text_states, image_states = self.condition_embedder(
            timestep, encoder_hidden_states, encoder_hidden_states_image
        )
        timestep_proj = timestep_proj.unflatten(1, (6, -1))
        context = torch.cat([image_states, text_states], dim=1)

        # 3. Audio tokens: (batch, latent frames, speakers * audio_tokens, audio_dim)
        speakers = audio_embeds.shape[1]
        first, later = pack_audio_windows(
            audio_embeds.flatten(0, 1).to(hidden_states.dtype), self.config.vae_scale
        )
        audio_tokens = self.audio_proj(first, later).unflatten(0, (batch, speakers))
        audio_tokens = audio_tokens.permute(0, 2, 1, 3, 4).flatten(2, 3)

        # 4. Speaker binding: class masks on the token grid, only for two speakers
        class_masks = key_pos = None
        if speakers >= 2 and ref_target_masks is not None:
            if speaker_binding is None:
                speaker_binding = torch.ones(batch, dtype=torch.bool, device=hidden_states.device)
            # Skip the affinity when no sample is bound (a separate null-audio pass). Meta
            # tensors (FLOP counting) hold no values: count the bound case.
            if speaker_binding.is_meta or bool(speaker_binding.any()):
                class_masks = (
                    ref_target_masks.to(hidden_states.device).flatten(1).to(hidden_states.dtype)
                )
                key_pos = audio_key_positions(
                    self.config.audio_tokens,
                    speakers,
                    self.config.class_range,
                    self.config.class_interval,
                )

        # 5. Blocks
        for block in self.blocks:
            hidden_states = block(
                hidden_states,
                context,
                timestep_proj,
                rotary_emb,
                audio_tokens,
                class_masks,
                key_pos,
                speaker_binding,
                grid[1] * grid[2],
                share,
            )

        # 6. Output norm, projection & unpatchify
        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        hidden_states = (self.norm_out(hidden_states.float()) * (1 + scale) + shift).type_as(
            hidden_states
        )
        hidden_states = self.proj_out(hidden_states)
        if share is not None:
            hidden_states = share.gather(hidden_states, dim=1)
        hidden_states = hidden_states.reshape(batch, *grid, p_t, p_h, p_w, -1)
        output = (
            hidden_states.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)
        )
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
