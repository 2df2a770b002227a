"""Clip checkpoints on the tiny presets: a render stopped after clip 1 of 3 and run again goes on
at clip 2 and writes the same MP4, byte for byte; a checkpoint of another render, or a damaged
one, is never used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modal_service.multitalk import RenderCancelled, RenderSpec, load_renderer
from modal_service.multitalk.checkpoint import STATE_FILE, CheckpointPlace
from modal_service.multitalk.renderer import Renderer
from tests.unit.media.conftest import write_tone

STEPS = 2


@pytest.fixture(scope="module")
def renderers(tiny: Renderer) -> dict[str, Renderer]:
    return {"tiny": tiny, "tiny-infinitetalk": load_renderer("tiny-infinitetalk", device="cpu")}


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 75 frames: 3 clips on either tiny preset (33-frame clips, 9 or 5 motion frames).
    return write_tone(tmp_path_factory.mktemp("voice") / "voice.wav", seconds=3.0)


def _spec(voice: Path, media: dict, seed: int = 1) -> RenderSpec:
    return RenderSpec(
        audio_paths=[voice], image_path=media["portrait"], seed=seed, sample_steps=STEPS
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stop_after_clip_1(renderer: Renderer, spec: RenderSpec, place: CheckpointPlace, out: Path):
    def progress(stage: str, step: int, total: int) -> None:
        if stage == "denoise" and step > 2 * STEPS:  # clip 2's first step: clips 0, 1 are done
            raise RenderCancelled("stopped on purpose")

    with pytest.raises(RenderCancelled):
        renderer.render(spec, out, progress=progress, checkpoint=place)
    assert not out.exists()
    assert sorted(p.name for p in place.directory.iterdir()) == [
        "clip-0000.mkv",
        "clip-0001.mkv",
        STATE_FILE,
    ]


def _render(renderer: Renderer, spec: RenderSpec, out: Path, place: CheckpointPlace | None):
    steps: list[int] = []
    outcome = renderer.render(
        spec,
        out,
        progress=lambda stage, step, total: steps.append(step) if stage == "denoise" else None,
        checkpoint=place,
    )
    return outcome, steps


@pytest.mark.parametrize("preset", ["tiny", "tiny-infinitetalk"])
def test_a_render_resumed_after_clip_1_of_3_writes_the_same_mp4(
    renderers: dict[str, Renderer], voice: Path, media: dict, tmp_path: Path, preset: str
) -> None:
    renderer = renderers[preset]
    spec = _spec(voice, media)
    whole, steps = _render(renderer, spec, tmp_path / "whole.mp4", None)
    assert (whole.frames, steps[-1]) == (75, 3 * STEPS)

    commits: list[int] = []
    place = CheckpointPlace(tmp_path / "job", commit=lambda: commits.append(1))
    _stop_after_clip_1(renderer, spec, place, tmp_path / "stopped.mp4")
    assert len(commits) == 2  # one per finished clip

    resumed, steps = _render(renderer, spec, tmp_path / "resumed.mp4", place)
    assert steps == [2 * STEPS + 1, 3 * STEPS]  # only clip 2 was denoised
    assert resumed.resumed_clips == 2
    assert "resumed after a restart: 2 of 3 clips kept from before it" in resumed.notes
    assert {"resume", "checkpoint"} <= set(resumed.timings_s)
    assert (resumed.frames, resumed.duration_s, resumed.seed) == (75, 3.0, 1)
    assert _sha(tmp_path / "resumed.mp4") == _sha(tmp_path / "whole.mp4")


def test_a_checkpoint_of_other_parameters_is_not_used(
    tiny: Renderer, voice: Path, media: dict, tmp_path: Path
) -> None:
    place = CheckpointPlace(tmp_path / "job")
    _stop_after_clip_1(tiny, _spec(voice, media, seed=1), place, tmp_path / "stopped.mp4")

    other, steps = _render(tiny, _spec(voice, media, seed=2), tmp_path / "other.mp4", place)
    assert (other.resumed_clips, steps[0], other.seed) == (0, 1, 2)
    _render(tiny, _spec(voice, media, seed=2), tmp_path / "whole.mp4", None)
    assert _sha(tmp_path / "other.mp4") == _sha(tmp_path / "whole.mp4")


@pytest.mark.parametrize("damage", ["half-written state", "altered segment"])
def test_a_damaged_checkpoint_is_ignored(
    tiny: Renderer, voice: Path, media: dict, tmp_path: Path, damage: str
) -> None:
    spec = _spec(voice, media)
    place = CheckpointPlace(tmp_path / "job")
    _stop_after_clip_1(tiny, spec, place, tmp_path / "stopped.mp4")
    if damage == "half-written state":
        state = place.directory / STATE_FILE
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    else:
        segment = place.directory / "clip-0001.mkv"
        data = bytearray(segment.read_bytes())
        data[len(data) // 2] ^= 0xFF
        segment.write_bytes(bytes(data))
    (place.directory / f"{STATE_FILE}.tmp").write_bytes(b"what a crash mid-write leaves")

    again, steps = _render(tiny, spec, tmp_path / "again.mp4", place)
    assert (again.resumed_clips, steps[0], again.frames) == (0, 1, 75)
    _render(tiny, spec, tmp_path / "whole.mp4", None)
    assert _sha(tmp_path / "again.mp4") == _sha(tmp_path / "whole.mp4")
