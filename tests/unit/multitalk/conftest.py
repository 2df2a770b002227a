"""Shared fixtures: one tiny renderer per test session (built in code, seeded, a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modal_service.multitalk import load_renderer
from modal_service.multitalk.renderer import Renderer
from tests.unit.media.conftest import draw_portrait, write_tone


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
