"""MultiTalk (audio-driven talking video on Wan2.1-I2V-14B) on diffusers and transformers.

The public surface the GPU worker uses. Importing this package is light (pydantic only); torch,
diffusers and transformers load on first use of :func:`load_renderer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from modal_service.multitalk.errors import (
    InputRejectedError,
    ModelUnavailableError,
    RenderCancelled,
    RenderError,
)
from modal_service.multitalk.spec import CancelCheck, ProgressCallback, RenderOutcome, RenderSpec

if TYPE_CHECKING:
    from modal_service.multitalk.renderer import Renderer

__all__ = [
    "CancelCheck",
    "InputRejectedError",
    "ModelUnavailableError",
    "PresetName",
    "ProgressCallback",
    "RenderCancelled",
    "RenderError",
    "RenderOutcome",
    "RenderSpec",
    "Renderer",
    "load_renderer",
]


PresetName = Literal[
    "multitalk-14b", "infinitetalk-14b", "infinitetalk-14b-multi", "tiny", "tiny-infinitetalk"
]


def load_renderer(
    preset: PresetName,
    weights_dir: Path | None = None,
    device: str | None = None,
    gpus: int = 1,
) -> Renderer:
    """Load a preset once; call ``render`` on the result as often as needed.

    ``tiny`` and ``tiny-infinitetalk`` are built in code (seeded random weights, nothing
    downloaded). The 14B presets read ``weights_dir`` (the layout ``scripts/download_weights.py``
    writes) strictly and raise :class:`ModelUnavailableError` naming any missing or unexpected
    file or key. ``gpus`` > 1 splits each forward pass of the transformer across that many
    GPUs (context parallelism; one process per GPU, this one rank 0).
    """
    from modal_service.multitalk.loading import load_preset

    return load_preset(preset, weights_dir, device, gpus)


def __getattr__(name: str) -> object:
    if name == "Renderer":
        from modal_service.multitalk.renderer import Renderer

        return Renderer
    raise AttributeError(name)
