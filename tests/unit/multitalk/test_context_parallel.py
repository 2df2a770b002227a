"""One render split across 2 processes (gloo, CPU) against the same render in 1 process.

The tiny preset's 64 x 64 bucket has 16 tokens per latent frame and 9 latent frames: each of
the 2 ranks holds 72 tokens, so the split falls inside a frame (the audio attention's padding
is exercised) and frame 0 (the speaker-affinity reference) sits on rank 0 only.
"""

from __future__ import annotations

import functools
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
from modal_service.multitalk.acceleration.compile import graphs_compiled
from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.parallel.ranks import ContextParallelTransformer, RankGroup
from modal_service.multitalk.renderer import Renderer
from scripts.bench.random_model import (
    SMOKE_SIZE,
    build_random_transformer,
    random_distillation_lora,
    random_replica,
)
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
    with count_block_runs(split.pipeline.transformer.model.blocks[0]) as runs:
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


def test_the_ranks_fuse_and_restore_the_distillation_lora_with_rank_0() -> None:
    # The benchmark's random stack (bf16, a rank-64 LoRA on every block linear): what a turbo
    # job and a quality job on the same split transformer each get.
    deployment = DeploymentAcceleration()
    whole = build_random_transformer(SMOKE_SIZE, "cpu")
    whole_lora = random_distillation_lora(whole)
    inputs = tiny_forward_inputs(batch=1, frames=3, speakers=1)
    inputs = {k: _bf16(v) for k, v in inputs.items()}
    expected = {}
    with torch.no_grad():
        for fused in (True, False):
            whole_lora.use(fused)
            expected[fused] = whole(**inputs)[0]
    lora_effect = (expected[True] - expected[False]).abs().mean()

    build = functools.partial(random_replica, SMOKE_SIZE, deployment, True)
    ranks = RankGroup(2, "cpu", build)
    errors = []
    try:
        model, _ = random_replica(SMOKE_SIZE, deployment, False, torch.device("cpu"))
        lora = random_distillation_lora(model)
        ranks.ready(model)
        split = ContextParallelTransformer(model, ranks, lora)
        with torch.no_grad():
            for fused in (True, False, True):
                lora.use(fused)  # rank 0 only: the forward carries the state to rank 1
                errors.append((split(**inputs)[0] - expected[fused]).abs().mean())
    finally:
        ranks.close()
    # A rank out of step would put half the tokens on the wrong side of the LoRA: a mean error
    # of half its effect. bf16 rounding of the split stays far below a tenth of it.
    assert max(errors) < lora_effect / 10, (errors, lora_effect)


def _bf16(value: object) -> object:
    is_float = isinstance(value, torch.Tensor) and value.is_floating_point()
    return value.bfloat16() if is_float else value


@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_blocks_split_compile_once_per_shape(
    tiny: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compile is on by default on GPUs. The share each forward takes must not fail the compiled
    # graphs' guards (a recompile every step), and the collectives must trace.
    monkeypatch.setenv("MULTITALK_COMPILE", "on")  # the ranks get rank 0's deployment settings
    renderer = load_renderer("tiny", device="cpu", gpus=2)
    try:
        inputs = tiny_forward_inputs(batch=3, frames=3, speakers=1)
        with torch.no_grad():
            expected = tiny.pipeline.transformer(**inputs)[0]
            before = graphs_compiled()
            outputs = [renderer.pipeline.transformer(**inputs)[0] for _ in range(3)]
            compiled = graphs_compiled() - before
    finally:
        renderer.close()
    assert renderer.accelerator.applied.compiled
    assert compiled == 2  # one graph for each of the 2 blocks, on the first forward only
    for output in outputs:
        torch.testing.assert_close(output, expected, rtol=0, atol=1e-5)
