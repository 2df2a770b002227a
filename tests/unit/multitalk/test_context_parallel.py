"""One render split across 2 processes (gloo, CPU) against the same render in 1 process.

The tiny preset's 64 x 64 bucket has 16 tokens per latent frame and 9 latent frames: each of
the 2 ranks holds 72 tokens, so the split falls inside a frame (the audio attention's padding
is exercised) and frame 0 (the speaker-affinity reference) sits on rank 0 only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from modal_service.media.video import Mp4Writer
from modal_service.multitalk import RenderError, RenderSpec, load_renderer
from modal_service.multitalk import renderer as renderer_module
from modal_service.multitalk.acceleration import PROFILES
from modal_service.multitalk.parallel.ranks import ContextParallelTransformer
from modal_service.multitalk.renderer import Renderer
from tests.unit.multitalk.acceleration.support import count_block_runs, tiny_forward_inputs

pytestmark = pytest.mark.slow  # two processes start and load the tiny stack (~30 s on 2 cores)

STEPS = 12  # the balanced profile's step cache skips steps only past warm-up


@pytest.fixture(scope="module")
def split() -> Renderer:
    renderer = load_renderer("tiny", device="cpu", gpus=2)
    yield renderer
    renderer.close()


class _RecordingWriter(Mp4Writer):
    """The renderer's MP4 writer, keeping the frames it was given (before H.264, whose
    decisions can flip on a one-level difference and spread it over a macroblock)."""

    frames: ClassVar[list[np.ndarray]] = []

    def write(self, chunk: np.ndarray) -> None:
        self.frames.append(chunk.copy())
        super().write(chunk)


def _render(
    renderer: Renderer, media: dict, path: Path, speed: str, monkeypatch: pytest.MonkeyPatch
) -> np.ndarray:
    spec = RenderSpec(
        audio_paths=[media["voice"]],
        image_path=media["portrait"],
        speed=speed,
        seed=5,
        sample_steps=STEPS,
    )
    monkeypatch.setattr(renderer_module, "Mp4Writer", _RecordingWriter)
    _RecordingWriter.frames = []
    renderer.render(spec, path)
    return np.concatenate(_RecordingWriter.frames).astype(np.int16)


def test_the_split_transformer_matches_one_process_for_two_speakers(
    split: Renderer, tiny: Renderer
) -> None:
    inputs = tiny_forward_inputs(batch=3, frames=3, speakers=2)
    masks = torch.zeros(3, 4, 4)
    masks[0, :, :2], masks[1, :, 2:], masks[2] = 1, 1, 0  # speaker 1 left, speaker 2 right
    inputs.update(ref_target_masks=masks.flatten(1) > 0, speaker_binding=torch.tensor([1, 1, 0]))
    inputs["speaker_binding"] = inputs["speaker_binding"].bool()
    assert isinstance(split.pipeline.transformer, ContextParallelTransformer)
    with torch.no_grad():
        whole = tiny.pipeline.transformer(**inputs)[0]
        shared = split.pipeline.transformer(**inputs)[0]
    # 48 tokens, 24 per rank: frame 1 is cut in two. Float32 reassociation only.
    assert whole.shape == shared.shape
    torch.testing.assert_close(shared, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("speed", ["quality", "balanced"])
def test_a_render_on_two_processes_gives_the_frames_of_one(
    split: Renderer,
    tiny: Renderer,
    media: dict,
    tmp_path: Path,
    speed: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = _render(tiny, media, tmp_path / "one.mp4", speed, monkeypatch)
    with count_block_runs(split.transformer.blocks[0]) as runs:
        two = _render(split, media, tmp_path / "two.mp4", speed, monkeypatch)
    assert one.shape == two.shape == (40, 80, 48, 3)
    difference = np.abs(one - two)
    # Stated tolerance: the split changes only the order of float32 sums (a forward differs by
    # under 1e-5); over 2 clips of 12 guided steps the frames stay within one level of 255.
    assert difference.max() <= 1, (difference.mean(), difference.max())
    # 2 clips; balanced: the step cache skipped the steps one process's would (on every rank,
    # or the ranks' collectives would fall out of step and the render hang).
    cache = PROFILES[speed].step_cache
    assert len(runs) == 2 * (len(cache.computed_steps(STEPS)) if cache else STEPS)


def test_a_lost_rank_fails_the_render_and_the_renderer_asks_to_be_reloaded(
    split: Renderer, media: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Last in this module: it spends the module's renderer.
    rank = split.ranks._processes[0]
    os.kill(rank.pid, 9)
    rank.join(timeout=10)
    with pytest.raises(RenderError) as raised:
        _render(split, media, tmp_path / "lost.mp4", "quality", monkeypatch)
    assert raised.value.reason == "parallel_group_lost"
    assert not split.usable
    assert not (tmp_path / "lost.mp4").exists()
