from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from modal_service.media.audio import (
    MAX_AUDIO_S,
    arrange_speakers,
    decode_audio,
    loudness_gain,
    validate_track,
)
from modal_service.media.errors import AudioError
from tests.unit.media.conftest import write_tone


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".m4a", ".ogg"])
def test_every_supported_format_decodes_to_16k_mono(tmp_path: Path, suffix: str) -> None:
    path = write_tone(tmp_path / f"voice{suffix}", seconds=1.5)
    samples = decode_audio(path, 16_000)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    # Lossy codecs add priming/padding: within 0.1 s of the source length.
    assert abs(samples.size / 16_000 - 1.5) < 0.1
    assert 0.1 < np.abs(samples).max() < 0.5


def test_unsupported_container_is_refused_by_name(tmp_path: Path) -> None:
    wav = write_tone(tmp_path / "voice.wav", seconds=1.2)
    from modal_service.media.ffmpeg import run_ffmpeg

    aiff = tmp_path / "voice.aiff"
    assert run_ffmpeg(["-y", "-i", str(wav), str(aiff)]).returncode == 0
    with pytest.raises(AudioError) as err:
        decode_audio(aiff)
    assert err.value.reason == "audio_format_unsupported"
    assert "aiff" in err.value.message


def test_not_audio_empty_and_missing_are_distinct_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 100)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(AudioError) as err:
        decode_audio(junk)
    assert err.value.reason == "audio_unreadable"
    for path in (empty, tmp_path / "absent.wav"):
        with pytest.raises(AudioError) as err:
            decode_audio(path)
        assert err.value.reason == "audio_empty"


def test_an_image_is_not_audio(tmp_path: Path) -> None:
    from tests.unit.media.conftest import draw_portrait

    with pytest.raises(AudioError) as err:
        decode_audio(draw_portrait(tmp_path / "face.png"))
    assert err.value.reason in {"audio_unreadable", "audio_format_unsupported"}


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        (np.full(8_000, 0.2, np.float32), "audio_too_short"),
        (np.zeros(int((MAX_AUDIO_S + 1) * 16_000), np.float32), "audio_too_long"),
        (np.zeros(32_000, np.float32), "audio_silent"),
        (np.full(32_000, np.nan, np.float32), "audio_silent"),
    ],
)
def test_track_validation(samples: np.ndarray, reason: str) -> None:
    with pytest.raises(AudioError) as err:
        validate_track(samples, 16_000, "t.wav")
    assert err.value.reason == reason


def test_loudness_gain_reaches_minus_23_lufs(tmp_path: Path) -> None:
    samples = decode_audio(write_tone(tmp_path / "v.wav", seconds=3.0, amplitude=0.05))
    gain = loudness_gain(samples, 16_000)
    measured = pyloudnorm.Meter(16_000).integrated_loudness((samples * gain).astype(np.float64))
    assert gain > 1.0
    assert measured == pytest.approx(-23.0, abs=0.1)


def test_near_silence_is_left_alone() -> None:
    assert loudness_gain(np.full(32_000, 1e-9, np.float32), 16_000) == 1.0


def test_add_puts_speakers_one_after_the_other() -> None:
    a, b = np.ones(3, np.float32), np.full(2, 2.0, np.float32)
    first, second = arrange_speakers([a, b], "add")
    assert first.tolist() == [1, 1, 1, 0, 0]
    assert second.tolist() == [0, 0, 0, 2, 2]


def test_para_overlays_speakers_and_pads_the_shorter() -> None:
    a, b = np.ones(3, np.float32), np.full(2, 2.0, np.float32)
    first, second = arrange_speakers([a, b], "para")
    assert first.tolist() == [1, 1, 1]
    assert second.tolist() == [2, 2, 0]
    assert arrange_speakers([a], "para")[0] is a
