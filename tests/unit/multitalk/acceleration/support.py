"""Helpers for the acceleration tests: tiny transformer inputs and call counting."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def tiny_forward_inputs(batch: int = 3, frames: int = 3, speakers: int = 1) -> dict:
    """Seeded inputs for one forward of the tiny transformer (``TINY_TRANSFORMER`` sizes)."""
    g = torch.Generator().manual_seed(0)
    return dict(
        hidden_states=torch.randn(batch, 12, frames, 8, 8, generator=g),
        timestep=torch.full((batch,), 500.0),
        encoder_hidden_states=torch.randn(batch, 512, 16, generator=g),
        encoder_hidden_states_image=torch.randn(batch, 257, 8, generator=g),
        audio_embeds=torch.randn(batch, speakers, 4 * (frames - 1) + 1, 5, 2, 16, generator=g),
        return_dict=False,
    )


def bf16(inputs: dict) -> dict:
    """``inputs`` with their floating-point tensors in bf16 (the 14B preset's dtype)."""
    return {
        name: value.bfloat16()
        if isinstance(value, torch.Tensor) and value.is_floating_point()
        else value
        for name, value in inputs.items()
    }


@contextlib.contextmanager
def count_block_runs(block: torch.nn.Module) -> Iterator[list[int]]:
    """Counts the forwards ``block`` really computes (not those a cache hook skips)."""
    calls: list[int] = []
    handle = block.ffn.register_forward_hook(lambda *_: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()
