from __future__ import annotations

import pytest

from modal_service.multitalk.flops import H100_DENSE_BF16_FLOPS, MODES, clip_flops, forward_flops
from modal_service.multitalk.presets import TINY_TRANSFORMER


def test_second_speaker_costs_exactly_what_it_adds() -> None:
    """Hand count for the tiny model, 9 frames at 64x64 (3 latent frames of 16 tokens)."""
    shape = dict(height=64, width=64, frames=9)
    one = forward_flops(TINY_TRANSFORMER, speakers=1, **shape)
    two = forward_flops(TINY_TRANSFORMER, speakers=2, **shape)
    t = TINY_TRANSFORMER
    heads, head_dim, layers = t["num_attention_heads"], t["attention_head_dim"], t["num_layers"]
    dim, frame_tokens, latent_frames = heads * head_dim, 16, 3
    tokens = latent_frames * frame_tokens
    window_in = t["audio_layers"] * t["audio_channels"]
    inter, audio_tokens = t["audio_intermediate_dim"], t["audio_tokens"]
    # Audio projection of the second speaker: proj1 (frame 0), proj1_vf (2 frames), proj2, proj3.
    projection = 2 * inter * (5 * window_in + 2 * 8 * window_in + latent_frames * inter)
    projection += 2 * latent_frames * inter * audio_tokens * t["audio_dim"]
    # Per block: its keys/values, attention over its extra keys, and the affinity map
    # (q @ k_ref^T plus probabilities @ 3 class masks).
    kv = 2 * latent_frames * audio_tokens * t["audio_dim"] * 2 * dim
    attention = 2 * 2 * heads * tokens * audio_tokens * head_dim
    affinity = 2 * heads * tokens * frame_tokens * (head_dim + 3)
    assert two - one == projection + layers * (kv + attention + affinity)


def test_clip_modes_scale_with_steps_and_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    import modal_service.multitalk.flops as flops

    monkeypatch.setattr(flops, "forward_flops", lambda **_: 1e15)
    quality, balanced = clip_flops("quality"), clip_flops("balanced")
    assert quality.clip_flops == 1e15 * 40 * 3
    assert balanced.clip_flops == 1e15 * 19 * 3  # the step cache computes 19 of 40 steps
    assert clip_flops("turbo_lora").clip_flops == 1e15 * 4
    assert quality.lower_bound_s == quality.clip_flops / H100_DENSE_BF16_FLOPS
    assert set(MODES) == {"quality", "balanced", "turbo_lora", "turbo_without_lora"}
