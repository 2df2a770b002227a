"""L-RoPE speaker binding: which speaker each video token belongs to, and 1-D RoPE on that label.

MultiTalk binds each speaker's audio to the region of the frame where that speaker is. In every
block it measures how strongly each video token attends to the reference frame (latent frame 0)
inside each speaker's mask and inside the background; a token takes the class it attends to most.
Its 1-D rotary position is its affinity rescaled into that speaker's band (``[0, 4]`` for speaker
1, ``[20, 24]`` for speaker 2) or the background's fixed position 12; a speaker's audio tokens sit
at the middle of its band (2 and 22). Queries and audio keys of the same speaker are therefore
close in RoPE phase and attend to each other more. With one speaker none of this is computed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def rope_1d(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate interleaved channel pairs of ``x`` by ``positions``.

    Args:
        x: ``(batch, seq_len, heads, head_dim)``.
        positions: ``(seq_len,)`` or ``(batch, seq_len)`` real-valued positions.
    """
    head_dim = x.shape[-1]
    inv_freq = base ** (
        -torch.arange(0, head_dim, 2, device=x.device, dtype=torch.float32) / head_dim
    )
    angles = positions.to(torch.float32)[..., None] * inv_freq  # (..., seq_len, head_dim / 2)
    if angles.ndim == 2:
        angles = angles[None]
    cos, sin = angles.cos()[:, :, None, :], angles.sin()[:, :, None, :]
    x_even, x_odd = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack((x_even * cos - x_odd * sin, x_odd * cos + x_even * sin), dim=-1)
    return rotated.flatten(-2).type_as(x)


def reference_affinity(
    query: torch.Tensor, key: torch.Tensor, class_masks: torch.Tensor, chunk_size: int = 2048
) -> torch.Tensor:
    """Mean (over heads) attention mass each query token puts on each class region of frame 0.

    Args:
        query: post-RoPE queries ``(batch, seq_len, heads, head_dim)``.
        key: post-RoPE keys ``(batch, seq_len, heads, head_dim)``; the first ``H*W`` tokens are
            the reference (first latent) frame.
        class_masks: ``(num_classes, H*W)`` 0/1 masks on the token grid (speakers, then background).
        chunk_size: query tokens per chunk, bounding the ``(batch, heads, chunk, H*W)`` buffer.

    Returns:
        ``(batch, num_classes, seq_len)`` float32 affinities.
    """
    frame_tokens = class_masks.shape[1]
    ref_key = key[:, :frame_tokens].transpose(1, 2)  # (B, heads, HW, D)
    masks = class_masks.to(query.dtype)
    counts = class_masks.float().sum(dim=1).clamp_min(1.0)  # (classes,)
    scale = query.shape[-1] ** -0.5
    out = []
    for chunk in query.split(chunk_size, dim=1):
        logits = (chunk.transpose(1, 2) * scale) @ ref_key.transpose(-2, -1)  # (B, heads, n, HW)
        probs = logits.softmax(dim=-1)
        per_class = (probs @ masks.T).float().mean(dim=1)  # (B, n, classes)
        out.append(per_class / counts)
    return torch.cat(out, dim=1).transpose(1, 2)


Extrema = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(minima, maxima) -> (minima, maxima)`` over the whole sequence, when a rank holds a share."""


def token_positions(
    affinity: torch.Tensor,
    class_range: int = 24,
    class_interval: int = 4,
    extrema: Extrema | None = None,
) -> torch.Tensor:
    """Two-speaker affinities ``(batch, 3, seq_len)`` -> L-RoPE positions ``(batch, seq_len)``.

    ``extrema`` makes each speaker's rescaling use the whole sequence's range when ``affinity``
    holds only this rank's share of the tokens.
    """
    bands = (
        (0.0, float(class_interval)),
        (float(class_range - class_interval), float(class_range)),
    )
    lows = affinity[:, :2].amin(dim=2, keepdim=True)  # (B, 2, 1)
    highs = affinity[:, :2].amax(dim=2, keepdim=True)
    if extrema is not None:
        lows, highs = extrema(lows, highs)
    scaled = []
    for speaker, (low, high) in enumerate(bands):
        row = affinity[:, speaker]
        row_min, row_max = lows[:, speaker], highs[:, speaker]
        scaled.append((row - row_min) / (row_max - row_min + 1e-8) * (high - low) + low)
    scaled.append(torch.full_like(scaled[0], class_range // 2))
    choice = affinity.argmax(dim=1, keepdim=True)  # (B, 1, seq_len): speaker 1, 2 or background
    return torch.stack(scaled, dim=1).gather(1, choice).squeeze(1)


def audio_key_positions(
    tokens_per_speaker: int, num_speakers: int, class_range: int = 24, class_interval: int = 4
) -> torch.Tensor:
    """Positions of the audio tokens: each speaker's tokens sit mid-band (2 and 22)."""
    centres = (class_interval / 2, class_range - class_interval / 2)
    return torch.tensor(centres[:num_speakers]).repeat_interleave(tokens_per_speaker)
