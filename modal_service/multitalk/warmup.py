"""A warm-up render when a container loads its default preset, so the first job compiles nothing.

With regional ``torch.compile`` (``acceleration/compile.py``) the first forward of each new
shape compiles the transformer block (a minute or more on the 14B), and the first clip grows the
CUDA allocator's pools. Without a warm-up the first job of every container pays both; a warm
pool does not help that job. ``MULTITALK_WARMUP`` (``acceleration/deployment.py``) renders, once
per container, a short clip per speed profile from media made here (a tone and a drawn portrait
in a temporary directory, never a caller's), through the renderer's own ``render``:

- ``quality``: the three guidance branches batched (batch 3);
- ``balanced``: the same batch, but the step cache's hooks wrap the blocks (a new graph);
- ``turbo``: one pass per step with the distillation LoRA (batch 1), or two without it.

Each renders one clip at the default resolution for a 2:3 portrait, with one speaker and as few
steps as cover its graphs: the graphs depend on the shapes (bucket, clip length, batch,
speakers), not on the step count, except that the step cache's hook is specialised on its step
counter at step 0 and recompiled, dynamic, at step 1 (so balanced takes 2 steps). A real
balanced job's first cached step still re-traces that hook's small Python frame (no new graph:
measured on tiny, its ``graphs_compiled`` stays 0). What a job brings that the warm-up did not
(another aspect ratio, 720p, two speakers) still compiles during that job. With several GPUs
the forwards go through rank 0's ``ContextParallelTransformer``, so every rank compiles too.
"""

from __future__ import annotations

import logging
import tempfile
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, Field

from modal_service.contracts import GenerationParams
from modal_service.multitalk.spec import RenderSpec

if TYPE_CHECKING:
    from modal_service.multitalk.renderer import Renderer

logger = logging.getLogger(__name__)

STEPS = {"quality": 1, "balanced": 2, "turbo": 1}
"""The profiles warmed, each compiling graphs of its own (see above), and their steps; quality
first, the default job's profile."""
DEFAULT_RESOLUTION: str = GenerationParams.model_fields["resolution"].default
"""What a job gets when it does not ask (the API's default)."""
_PORTRAIT = (512, 768)  # width x height: 2:3, a common portrait photo (bucket 768 x 512 at 480p)
_AUDIO_S = 1.5  # shorter than one clip: a single clip renders, at its full length
_RATE = 16_000


class WarmupRecord(BaseModel):
    """What the warm-up did: logged at load and kept on the renderer (``Renderer.warmup``)."""

    seconds: float = Field(description="Wall time of the whole warm-up")
    graphs_compiled: int = Field(description="Graphs torch.compile built during it, in all")
    graphs_by_profile: dict[str, int] = Field(default_factory=dict)
    resolution: str
    error: str | None = None
    """Why it stopped early; the container serves anyway (a job would meet the same fault)."""


def _synthetic_media(directory: Path) -> tuple[Path, Path]:
    """A spoken-like tone (WAV, 16 kHz) and a drawn 2:3 portrait (PNG)."""
    t = np.arange(int(_AUDIO_S * _RATE)) / _RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    audio = directory / "warmup.wav"
    with wave.open(str(audio), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(_RATE)
        handle.writeframes((tone * 32767).astype("<i2").tobytes())
    width, height = _PORTRAIT
    portrait = Image.new("RGB", _PORTRAIT, (90, 120, 160))
    draw = ImageDraw.Draw(portrait)
    draw.ellipse((width * 0.25, height * 0.2, width * 0.75, height * 0.65), fill=(235, 195, 165))
    image = directory / "warmup.png"
    portrait.save(image)
    return audio, image


def wanted(renderer: Renderer) -> bool:
    """Whether ``renderer``'s deployment asks for a warm-up (``MULTITALK_WARMUP``)."""
    accelerator = renderer.accelerator
    return accelerator.deployment.warms_up(accelerator.applied.compiled)


def warm_up(renderer: Renderer, resolution: str = DEFAULT_RESOLUTION) -> WarmupRecord:
    """Render the warm-up clips with ``renderer``; never raises for a failed render."""
    started = time.perf_counter()
    graphs: dict[str, int] = {}
    error = None
    with tempfile.TemporaryDirectory(prefix="multitalk-warmup-") as tmp:
        audio, image = _synthetic_media(Path(tmp))
        for profile, steps in STEPS.items():
            spec = RenderSpec(
                audio_paths=[audio],
                image_path=image,
                resolution=resolution,
                speed=profile,
                seed=0,
                sample_steps=steps,
            )
            try:
                outcome = renderer.render(spec, Path(tmp) / f"{profile}.mp4")
            except Exception as exc:  # best effort: the container serves anyway
                logger.exception("warm-up %s render failed", profile)
                error = f"{profile}: {type(exc).__name__}: {exc}"
                break
            graphs[profile] = outcome.graphs_compiled
    record = WarmupRecord(
        seconds=round(time.perf_counter() - started, 3),
        graphs_compiled=sum(graphs.values()),
        graphs_by_profile=graphs,
        resolution=resolution,
        error=error,
    )
    logger.info(
        "warm-up of %s: %.1f s, %d graphs compiled (%s) at %s",
        renderer.preset,
        record.seconds,
        record.graphs_compiled,
        ", ".join(f"{name} {count}" for name, count in graphs.items()) or "none",
        resolution,
    )
    return record
