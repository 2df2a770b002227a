from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from modal_service.media.probe import probe_media
from modal_service.media.video import Mp4Writer


def _soundtrack(path: Path, seconds: float) -> Path:
    t = np.arange(int(seconds * 48_000)) / 48_000
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 48_000)
    return path


def test_streamed_frames_and_audio_make_one_matching_mp4(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    # The soundtrack is longer than the video: the writer trims it to the frames' duration.
    with Mp4Writer(out, 64, 48, _soundtrack(tmp_path / "a.wav", 3.0), duration_s=2.0) as writer:
        for clip in range(5):
            writer.write(np.full((10, 48, 64, 3), clip * 40, np.uint8))
    info = probe_media(out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.fps, info.frames) == (64, 48, 25.0, 50)
    assert info.video_duration_s == pytest.approx(2.0)
    assert info.audio_duration_s == pytest.approx(2.0, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "out.mp4"]  # no log left


def _fail_midway(out: Path, audio: Path) -> None:
    with Mp4Writer(out, 64, 48, audio, duration_s=1.0) as writer:
        writer.write(np.zeros((5, 48, 64, 3), np.uint8))
        raise RuntimeError("boom")


def test_an_error_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    audio = _soundtrack(tmp_path / "a.wav", 1.0)
    with pytest.raises(RuntimeError, match="boom"):
        _fail_midway(tmp_path / "out.mp4", audio)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_wrong_frame_shape_and_odd_sizes_are_refused(tmp_path: Path) -> None:
    audio = _soundtrack(tmp_path / "a.wav", 1.0)
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "x.mp4", 63, 48, audio, 1.0)
    with (
        pytest.raises(ValueError, match="uint8"),
        Mp4Writer(tmp_path / "y.mp4", 64, 48, audio, 1.0) as w,
    ):
        w.write(np.zeros((2, 48, 64, 3), np.float32))
    assert not (tmp_path / "y.mp4").exists()
