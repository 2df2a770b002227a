"""Shared fixtures: one tiny renderer per test session (built in code, seeded, a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from modal_service.multitalk import load_renderer
from modal_service.multitalk.renderer import Renderer
from tests.unit.media.conftest import draw_portrait, write_tone


@pytest.fixture
def fresh_dynamo() -> Iterator[None]:
    """Compiled code is per process and shared by every copy of a block: start from none, and
    leave none behind for the tests that count their own first compiles."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture(scope="session")
def tiny() -> Renderer:
    return load_renderer("tiny", device="cpu")


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Voices of 1.6 s and 1.2 s, a portrait, a 16:9 two-person picture."""
    root = tmp_path_factory.mktemp("media")
    return {
        "voice": write_tone(root / "voice.wav", seconds=1.6),
        "voice_mp3": write_tone(root / "voice2.mp3", seconds=1.2),
        "portrait": draw_portrait(root / "face.png", size=(320, 480)),
        "wide": draw_portrait(root / "two.jpg", size=(640, 360)),
    }


@pytest.fixture(scope="session")
def distill_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA file in lightx2v's key format (original Wan names, alpha, bias deltas, a
    modulation delta diffusers drops) for the tiny transformer's dimensions."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for block in range(2):
        for name, (out_dim, in_dim) in {"self_attn.q": (24, 24), "ffn.0": (32, 24)}.items():
            prefix = f"diffusion_model.blocks.{block}.{name}"
            state[f"{prefix}.lora_down.weight"] = torch.randn(4, in_dim, generator=g)
            state[f"{prefix}.lora_up.weight"] = torch.randn(out_dim, 4, generator=g)
            state[f"{prefix}.alpha"] = torch.tensor(8.0)
            state[f"{prefix}.diff_b"] = torch.randn(out_dim, generator=g)
        state[f"diffusion_model.blocks.{block}.diff_m"] = torch.randn(6, 24, generator=g)
    path = tmp_path_factory.mktemp("loras") / "distill.safetensors"
    save_file(state, path)
    return path
