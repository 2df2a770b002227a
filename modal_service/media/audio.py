"""Audio decode, validation, loudness normalisation and speaker arrangement.

Tracks are decoded by the bundled ffmpeg straight to mono float32 at the rate asked for, so one
code path reads wav, mp3, flac, m4a/aac and ogg (vorbis/opus). MultiTalk's front-end wants 16 kHz
normalised to -23 LUFS; the MP4 wants a better rate, so callers decode twice and apply the gain
measured at 16 kHz to both (the model and the soundtrack then hear the same level).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np

from modal_service.media.errors import AudioError
from modal_service.media.ffmpeg import run_ffmpeg

MODEL_SAMPLE_RATE = 16_000
MUX_SAMPLE_RATE = 48_000
TARGET_LUFS = -23.0
MIN_AUDIO_S = 1.0
MAX_AUDIO_S = 600.0
SILENCE_PEAK = 1e-4  # about -80 dBFS: nothing a microphone would call speech

# ffmpeg demuxer names we accept (the first name of "Input #0, <names>, from ...").
SUPPORTED_DEMUXERS = {"wav": "wav", "mp3": "mp3", "flac": "flac", "mov": "m4a", "ogg": "ogg"}
_INPUT_LINE = re.compile(r"^Input #0, ([^,]+)", re.MULTILINE)


def decode_audio(path: Path, sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Decode any supported track to mono float32 at ``sample_rate``.

    Raises:
        AudioError: ``audio_unreadable``, ``audio_format_unsupported`` or ``audio_empty``.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise AudioError("audio_empty", f"audio file {path.name!r} is missing or empty")
    proc = run_ffmpeg(
        [
            "-i",
            str(path),
            "-vn",
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-f",
            "f32le",
            "pipe:1",
        ]
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    match = _INPUT_LINE.search(stderr)
    if match is None:
        raise AudioError("audio_unreadable", f"{path.name!r} is not a readable audio file")
    demuxer = match.group(1).strip()
    if demuxer not in SUPPORTED_DEMUXERS:
        raise AudioError(
            "audio_format_unsupported",
            f"{path.name!r} is {demuxer!r}; supported: wav, mp3, flac, m4a, ogg",
        )
    if proc.returncode != 0:
        raise AudioError("audio_unreadable", f"{path.name!r} has no decodable audio stream")
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise AudioError("audio_empty", f"{path.name!r} contains no audio samples")
    return samples


def validate_track(samples: np.ndarray, sample_rate: int, name: str) -> None:
    """Refuse silent tracks and tracks outside ``MIN_AUDIO_S``..``MAX_AUDIO_S``."""
    duration = samples.size / sample_rate
    if duration < MIN_AUDIO_S:
        raise AudioError(
            "audio_too_short", f"{name!r} lasts {duration:.2f} s; at least {MIN_AUDIO_S} s needed"
        )
    if duration > MAX_AUDIO_S:
        raise AudioError(
            "audio_too_long",
            f"{name!r} lasts {duration:.0f} s; at most {MAX_AUDIO_S:.0f} s allowed",
        )
    if not np.isfinite(samples).all() or float(np.abs(samples).max()) < SILENCE_PEAK:
        raise AudioError("audio_silent", f"{name!r} is silent")


def loudness_gain(samples: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS) -> float:
    """Linear gain that brings ``samples`` to ``target_lufs`` (ITU-R BS.1770, pyloudnorm).

    Like MultiTalk, a measurement beyond +-100 LUFS (near-silence) leaves the track unchanged.
    """
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    loudness = meter.integrated_loudness(samples.astype(np.float64))
    if not np.isfinite(loudness) or abs(loudness) > 100:
        return 1.0
    return float(10.0 ** ((target_lufs - loudness) / 20.0))


def arrange_speakers(
    tracks: list[np.ndarray], audio_type: Literal["add", "para"]
) -> list[np.ndarray]:
    """Lay one or two speakers on a shared timeline.

    ``add``: the speakers take turns, speaker 2 starts when speaker 1 ends (each track is padded
    with the other's length of silence). ``para``: they speak at once; the shorter track is padded
    at the end (MultiTalk requires equal lengths; padding is kinder and changes nothing else).
    """
    if len(tracks) == 1:
        return [tracks[0]]
    first, second = tracks
    if audio_type == "add":
        return [
            np.concatenate([first, np.zeros_like(second)]),
            np.concatenate([np.zeros_like(first), second]),
        ]
    length = max(first.size, second.size)
    return [np.pad(track, (0, length - track.size)) for track in (first, second)]
