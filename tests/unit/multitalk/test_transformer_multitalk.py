from __future__ import annotations

import pytest
import torch

from modal_service.multitalk import transformer_multitalk
from modal_service.multitalk.presets import TINY_TRANSFORMER, build_tiny_transformer
from modal_service.multitalk.speaker_binding import (
    audio_key_positions,
    reference_affinity,
    rope_1d,
    token_positions,
)
from modal_service.multitalk.transformer_multitalk import (
    MultiTalkTransformer3DModel,
    pack_audio_windows,
)
from modal_service.multitalk.weights import is_adapter_key

LAYERS, CHANNELS = TINY_TRANSFORMER["audio_layers"], TINY_TRANSFORMER["audio_channels"]


@pytest.fixture(scope="module")
def model() -> MultiTalkTransformer3DModel:
    return build_tiny_transformer()


def _inputs(batch: int, speakers: int, latent_frames: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    frames = 4 * (latent_frames - 1) + 1
    return dict(
        hidden_states=torch.randn(batch, 12, latent_frames, 8, 8, generator=g),
        timestep=torch.full((batch,), 700.0),
        encoder_hidden_states=torch.randn(batch, 512, 16, generator=g),
        encoder_hidden_states_image=torch.randn(batch, 5, 8, generator=g),
        audio_embeds=torch.randn(batch, speakers, frames, 5, LAYERS, CHANNELS, generator=g),
    )


def _halves() -> torch.Tensor:
    masks = torch.zeros(3, 4, 4)
    masks[0, :, :2] = 1
    masks[1, :, 2:] = 1
    return masks


def test_packing_keeps_3_1_1_3_window_entries_per_latent_frame() -> None:
    # Tag each entry with (frame, window slot) to follow it through the packing.
    frames, window = 9, 5
    tags = torch.arange(frames)[:, None] * 10 + torch.arange(window)[None, :]
    audio = tags[None, :, :, None, None].float()  # (1, 9, 5, 1, 1)
    first, later = pack_audio_windows(audio)
    assert first.shape == (1, 1, 5, 1, 1)
    assert later.shape == (1, 2, 8, 1, 1)
    assert first.flatten().tolist() == [0, 1, 2, 3, 4]
    # latent frame 1 = video frames 1..4: first half of 1, centres of 2 and 3, second half of 4
    assert later[0, 0].flatten().tolist() == [10, 11, 12, 22, 32, 42, 43, 44]


@pytest.mark.parametrize("speakers", [1, 2])
def test_forward_shapes_and_dtypes(model: MultiTalkTransformer3DModel, speakers: int) -> None:
    inputs = _inputs(batch=2, speakers=speakers)
    masks = _halves() if speakers == 2 else None
    out = model(**inputs, ref_target_masks=masks).sample
    assert out.shape == (2, 4, 3, 8, 8)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_affinity_map_is_computed_only_for_two_speakers(
    model: MultiTalkTransformer3DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = transformer_multitalk.reference_affinity

    def counting(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformer_multitalk, "reference_affinity", counting)
    model(**_inputs(1, 1), ref_target_masks=_halves())
    assert calls == []
    model(**_inputs(1, 2), ref_target_masks=_halves())
    assert len(calls) == TINY_TRANSFORMER["num_layers"]


def test_speaker_binding_changes_the_output(model: MultiTalkTransformer3DModel) -> None:
    inputs = _inputs(1, 2)
    bound = model(**inputs, ref_target_masks=_halves()).sample
    unbound = model(
        **inputs, ref_target_masks=_halves(), speaker_binding=torch.tensor([False])
    ).sample
    assert not torch.allclose(bound, unbound)


def test_unbound_null_audio_equals_a_single_silent_speaker(
    model: MultiTalkTransformer3DModel,
) -> None:
    """Batched null-audio branch (2 zero speakers, no L-RoPE) == MultiTalk's 1-speaker null pass."""
    inputs = _inputs(1, 2)
    inputs["audio_embeds"] = torch.zeros_like(inputs["audio_embeds"])
    two = model(**inputs, ref_target_masks=_halves(), speaker_binding=torch.tensor([False])).sample
    inputs["audio_embeds"] = inputs["audio_embeds"][:, :1]
    one = model(**inputs).sample
    torch.testing.assert_close(two, one, atol=1e-5, rtol=1e-5)


def test_batched_branches_equal_separate_forwards(model: MultiTalkTransformer3DModel) -> None:
    inputs = _inputs(3, 2, seed=3)
    binding = torch.tensor([True, True, False])
    batched = model(**inputs, ref_target_masks=_halves(), speaker_binding=binding).sample
    for i in range(3):
        single = {k: v[i : i + 1] for k, v in inputs.items()}
        alone = model(
            **single, ref_target_masks=_halves(), speaker_binding=binding[i : i + 1]
        ).sample
        torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-5, rtol=1e-5)


def test_14b_adapter_matches_multitalk_safetensors() -> None:
    """330 adapter keys holding 2,487,168,000 parameters, as in MeiGen-MultiTalk's file."""
    with torch.device("meta"):
        full = MultiTalkTransformer3DModel()
    state = full.state_dict()
    adapter = {k: v for k, v in state.items() if is_adapter_key(k)}
    assert len(adapter) == 330
    assert sum(v.numel() for v in adapter.values()) == 2_487_168_000
    assert adapter["audio_proj.proj1.weight"].shape == (512, 46080)
    assert adapter["audio_proj.proj1_vf.weight"].shape == (512, 73728)
    assert adapter["audio_proj.proj3.weight"].shape == (32 * 768, 512)
    assert adapter["blocks.39.audio_cross_attn.kv_linear.weight"].shape == (10240, 768)


def test_rope_1d_rotates_pairs_and_keeps_norms() -> None:
    x = torch.randn(1, 6, 2, 8)
    positions = torch.linspace(0, 24, 6)
    rotated = rope_1d(x, positions)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rope_1d(x, torch.zeros(6)), x)
    # Relative: <R(a)q, R(b)k> depends only on a - b.
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    dot = lambda a, b: (rope_1d(q, torch.tensor([a])) * rope_1d(k, torch.tensor([b]))).sum()  # noqa: E731
    torch.testing.assert_close(dot(3.0, 1.0), dot(22.0, 20.0), atol=1e-5, rtol=1e-5)


def test_token_positions_follow_the_strongest_class() -> None:
    affinity = torch.tensor(
        [[[0.9, 0.1, 0.5, 0.0], [0.0, 0.8, 0.1, 0.0], [0.1, 0.1, 0.2, 0.9]]]  # (1, 3 classes, 4)
    )
    pos = token_positions(affinity)[0]
    assert pos[0] == pytest.approx(4.0)  # speaker 1's strongest token: top of [0, 4]
    assert pos[1] == pytest.approx(24.0)  # speaker 2's strongest token: top of [20, 24]
    assert 0.0 <= pos[2] <= 4.0  # speaker 1 wins, mid affinity
    assert pos[3] == pytest.approx(12.0)  # background
    assert audio_key_positions(2, 2).tolist() == [2, 2, 22, 22]


def test_reference_affinity_is_mean_attention_mass_per_region() -> None:
    q, k = torch.randn(2, 10, 2, 4), torch.randn(2, 10, 2, 4)
    masks = torch.zeros(2, 4)
    masks[0, :2] = 1
    masks[1, 2:] = 1
    got = reference_affinity(q, k, masks, chunk_size=3)
    probs = torch.einsum("bshd,bkhd->bhsk", q, k[:, :4]).mul(0.5).softmax(-1)
    expected = torch.stack([probs[..., :2].sum(-1) / 2, probs[..., 2:].sum(-1) / 2], 1).mean(2)
    torch.testing.assert_close(got, expected)
