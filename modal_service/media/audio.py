"""The caller's audio: decode under a hard cap, judge silence by loudness, normalise, and lay
one or two speakers on a timeline.

:func:`prepare_track` first has :mod:`modal_service.media.audio_header` sniff the bytes and read
the container header, which refuses images, documents, absurd headers, claimed lengths over the
maximum and decompression bombs before a frame is decoded. Only then does it decode, always with
``-map 0:a:0`` (cover art and video tracks may come first), every channel averaged to mono,
straight to float32 at :data:`MUX_SAMPLE_RATE`. The model's 16 kHz track is resampled from that
one decode, so both tracks hear the same samples and the same gain.

**Bounds.** No input can make the worker hold more than ``max_s`` + :data:`CAP_MARGIN_S` of
48 kHz mono float32 (about 115 MB at the contract's 600 s): ffmpeg is told to stop there
(``-t``) and its output is read into a buffer that cannot grow past it, because a header may say
nothing about length (WebM from a browser's MediaRecorder, a WAV written to a pipe) or lie. A
decode that reaches the cap is ``audio_too_long``, or ``decompression_bomb`` by the header's bomb
rule (:func:`modal_service.audio_rules.is_bomb`).
"""

from __future__ import annotations

import logging
import math
import os
import selectors
import subprocess
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from modal_service.audio_rules import DURATION_SLACK_S, human_length, human_size, is_bomb
from modal_service.media.audio_header import AudioInfo, probe_audio, refuse_by_header
from modal_service.media.errors import AudioError
from modal_service.media.ffmpeg import ffmpeg_exe

logger = logging.getLogger(__name__)

MODEL_SAMPLE_RATE = 16_000
MUX_SAMPLE_RATE = 48_000
TARGET_LUFS = -23.0
MIN_AUDIO_S = 1.0
MAX_AUDIO_S = 600.0
"""The contract's ceiling for ``max_audio_s`` (a deployment may set less)."""

SILENCE_LUFS = -70.0
"""BS.1770's absolute gate: blocks quieter than this are not programme, so a track with nothing
above it (digital silence, 16-bit dither at about -90 dBFS) has no loudness at all."""
CAP_MARGIN_S = 1.0
"""Decode at most ``max_s`` + this: enough to tell "too long" from "padded", and no more."""
DECODE_TIMEOUT_S = 120.0
"""600 s of any codec decodes in a few seconds; a file that takes minutes is pathological."""

_READ_CHUNK = 1 << 16
_STDERR_TAIL = 8 << 10


class PreparedTrack(BaseModel):
    """One speaker's track, ready for the model and the soundtrack."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    model_samples: np.ndarray
    """Mono float32 at :data:`MODEL_SAMPLE_RATE`, loudness gain applied."""
    mux_samples: np.ndarray
    """Mono float32 at :data:`MUX_SAMPLE_RATE`, the same gain applied; never beyond +-1."""
    duration_s: float
    """The whole decoded track (the renderer cuts it to the video's length and says so)."""
    info: AudioInfo


# ---------------------------------------------------------------------------------- decode


def prepare_track(path: Path, name: str, *, max_s: float) -> PreparedTrack:
    """Probe, refuse or decode ``path``, and bring it to :data:`TARGET_LUFS`.

    ``max_s`` is the deployment's longest audio; a longer track is refused, never cut.

    Raises:
        AudioError: ``unsupported_format``, ``audio_invalid`` (also for NaN or infinite samples),
            ``decompression_bomb``, ``audio_too_long``, ``audio_too_short`` or ``audio_silent``.
    """
    info = probe_audio(path, name)
    refuse_by_header(info, name, max_s)
    cap_s = max_s + CAP_MARGIN_S
    mux, capped = _decode(Path(path), info, name, cap_s)
    duration = mux.size / MUX_SAMPLE_RATE
    if capped:
        if is_bomb(info.size_bytes, cap_s):
            raise AudioError(
                "decompression_bomb",
                f"{name} is {human_size(info.size_bytes)} "
                f"yet decodes to more than {human_length(max_s)}: decoding stopped there",
            )
        raise AudioError(
            "audio_too_long",
            f"{name} lasts more than {human_length(max_s)}, the most this deployment takes",
        )
    if mux.size == 0:
        raise AudioError("audio_invalid", f"{name} holds no decodable audio")
    if not np.isfinite(mux).all():
        raise AudioError(
            "audio_invalid", f"{name} holds samples that are not numbers (NaN or infinite)"
        )
    if duration < MIN_AUDIO_S:
        raise AudioError(
            "audio_too_short",
            f"{name} lasts {duration:.2f} s; at least {MIN_AUDIO_S:g} s is needed",
        )
    if duration > max_s + DURATION_SLACK_S:
        raise AudioError(
            "audio_too_long",
            f"{name} lasts {human_length(duration)}; "
            f"this deployment takes at most {human_length(max_s)}",
        )
    model = _to_model_rate(mux)
    loudness = integrated_loudness(model, MODEL_SAMPLE_RATE)
    if not loudness > SILENCE_LUFS:
        raise AudioError(
            "audio_silent",
            f"{name} is silent: nothing in it is louder than {SILENCE_LUFS:g} LUFS",
        )
    gain = _gain(loudness)
    # The soundtrack must not clip: a peaky track gets less gain rather than a square top. The
    # model hears the same gain (its wav2vec2 front-end normalises level anyway).
    peak = max(float(mux.max()), -float(mux.min()))  # no |x| copy of a 115 MB track
    gain = min(gain, 1.0 / peak)
    # In place: the decode buffer is ours, and a 600 s track is 115 MB per copy.
    model *= np.float32(gain)
    mux *= np.float32(gain)
    np.clip(mux, -1.0, 1.0, out=mux)
    return PreparedTrack(model_samples=model, mux_samples=mux, duration_s=duration, info=info)


def _decode(path: Path, info: AudioInfo, name: str, cap_s: float) -> tuple[np.ndarray, bool]:
    """Mono float32 at 48 kHz, at most ``cap_s`` of it, and whether the cap was reached."""
    samples, capped, returncode = _run_decoder(path, _downmix(info.channels), name, cap_s)
    if samples.size == 0 and returncode != 0 and info.channels > 1:
        # The header's channel count can be wrong (a stream that changes layout midway): let
        # ffmpeg's own downmix try before calling the file undecodable.
        samples, capped, returncode = _run_decoder(path, None, name, cap_s)
    if returncode != 0:
        # Like ffmpeg, keep what decoded before the damage (a truncated upload); the checks
        # that follow judge what is left.
        logger.info("ffmpeg stopped with %s on %s after %d samples", returncode, name, samples.size)
    return samples, capped


def _downmix(channels: int) -> str | None:
    """A filter averaging every channel with the same weight; None leaves it to ``-ac 1``.

    ffmpeg's own ``-ac 1`` drops LFE, weights surrounds, and fails on layouts it cannot
    downmix (more than 8 channels, unknown orders), so it is only the fallback: for a layout
    this module cannot count, or a stream whose channels are not what its header said.
    """
    if channels <= 1:
        return None
    weight = f"{1.0 / channels:.9f}"
    return "pan=mono|c0=" + "+".join(f"{weight}*c{index}" for index in range(channels))


def _run_decoder(
    path: Path, downmix: str | None, name: str, cap_s: float
) -> tuple[np.ndarray, bool, int]:
    """Run ffmpeg and read its output into a buffer that cannot grow past ``cap_s``."""
    cap_samples = math.ceil(cap_s * MUX_SAMPLE_RATE)
    # np.empty maps untouched pages lazily: only what ffmpeg writes becomes resident.
    buffer = np.empty(cap_samples, dtype=np.float32)
    view = memoryview(buffer).cast("B")
    args = [
        ffmpeg_exe(),
        *("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"),
        *("-i", str(path), "-map", "0:a:0"),
        *(("-af", downmix) if downmix else ()),
        # -ac 1 after the pan is a no-op, and guarantees mono if a "mono" header was wrong.
        *("-ac", "1", "-ar", str(MUX_SAMPLE_RATE), "-t", f"{cap_s:.3f}"),
        *("-c:a", "pcm_f32le", "-f", "f32le", "pipe:1"),
    ]
    # The executable is the bundled binary and the arguments a list: no shell, no injection.
    proc = subprocess.Popen(  # noqa: S603
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    filled, overflow = 0, False
    stderr_tail = b""
    deadline = time.monotonic() + DECODE_TIMEOUT_S
    try:
        with selectors.DefaultSelector() as selector:
            assert proc.stdout is not None  # both pipes were asked for: for the type checker
            assert proc.stderr is not None
            selector.register(proc.stdout, selectors.EVENT_READ, "out")
            selector.register(proc.stderr, selectors.EVENT_READ, "err")
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AudioError(
                        "audio_invalid",
                        f"{name} could not be decoded in {DECODE_TIMEOUT_S:g} s",
                    )
                for key, _ in selector.select(remaining):
                    if key.data == "err":
                        data = os.read(key.fd, _READ_CHUNK)
                        stderr_tail = (stderr_tail + data)[-_STDERR_TAIL:]
                        done = not data
                    elif filled < len(view):
                        got = proc.stdout.readinto(view[filled:]) or 0
                        filled += got
                        done = not got
                    else:
                        # Full: one more byte means ffmpeg went past the cap (its -t makes
                        # that rare); end of output means it stopped exactly there.
                        overflow, done = bool(os.read(key.fd, 1)), True
                    if done:
                        selector.unregister(key.fileobj)
                if overflow:
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
        returncode = proc.wait()
    if stderr_tail:
        logger.debug("ffmpeg on %s: %s", name, stderr_tail.decode("utf-8", "replace")[-2000:])
    count = filled // 4
    # One ffmpeg frame of tolerance: -t stops at a frame boundary at or just before the cap.
    capped = overflow or count >= cap_samples - MUX_SAMPLE_RATE // 50
    return buffer[:count], capped, (0 if overflow else returncode)


def _to_model_rate(mux: np.ndarray) -> np.ndarray:
    """48 kHz to 16 kHz by an exact 1:3 polyphase filter (scipy comes with pyloudnorm)."""
    from scipy.signal import resample_poly

    return resample_poly(mux, 1, MUX_SAMPLE_RATE // MODEL_SAMPLE_RATE).astype(
        np.float32, copy=False
    )


# -------------------------------------------------------------------------------- loudness


_LOUDNESS_CHUNK = 1 << 18  # samples filtered at a time: 2 MB of float64, whatever the length


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770 integrated loudness, as pyloudnorm measures it, in bounded memory.

    pyloudnorm filters a float64 copy of the whole track (a 10-minute track costs 230 MB for a
    moment). The same K-weighting filters (pyloudnorm's own coefficients) run here chunk by
    chunk with their state carried over, and only the running sum of squares at pyloudnorm's
    block bounds is kept; the gating is pyloudnorm's. -inf when every block is gated out.
    """
    import pyloudnorm
    from scipy.signal import lfilter, lfilter_zi

    meter = pyloudnorm.Meter(sample_rate)
    block, step = meter.block_size, 1.0 - meter.overlap
    if samples.size < block * sample_rate:
        raise ValueError("audio must be longer than one 400 ms gating block")
    blocks = int(np.round((samples.size / sample_rate - block) / (block * step))) + 1
    index = np.arange(blocks)
    # pyloudnorm's bounds, computed the same way (float products, truncated).
    lower = np.array([int(block * (j * step) * sample_rate) for j in index])
    upper = np.array([int(block * (j * step + 1) * sample_rate) for j in index])
    bounds = np.unique(np.concatenate([lower, upper]))
    cumulative = np.zeros(bounds.size)  # sum of squares before each bound
    stages = [(f.b, f.a, f.passband_gain) for f in meter._filters.values()]
    states = [lfilter_zi(b, a) * 0.0 for b, a, _ in stages]  # pyloudnorm starts at rest
    total, position = 0.0, 0
    for start in range(0, samples.size, _LOUDNESS_CHUNK):
        chunk = samples[start : start + _LOUDNESS_CHUNK].astype(np.float64)
        for number, (b, a, gain) in enumerate(stages):
            chunk, states[number] = lfilter(b, a, chunk, zi=states[number])
            chunk *= gain
        running = total + np.cumsum(np.square(chunk))
        end = start + chunk.size
        while position < bounds.size and bounds[position] <= end:
            offset = bounds[position] - start
            cumulative[position] = total if offset <= 0 else running[offset - 1]
            position += 1
        total = float(running[-1])
    cumulative[position:] = total
    energy = cumulative[np.searchsorted(bounds, upper)] - cumulative[np.searchsorted(bounds, lower)]
    energy /= block * sample_rate
    with np.errstate(divide="ignore", invalid="ignore"):
        loudness = -0.691 + 10.0 * np.log10(energy)
        gated = energy[loudness >= -70.0]
        if not gated.size:
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(np.mean(gated)) - 10.0
        kept = energy[(loudness > relative) & (loudness > -70.0)]
        mean = np.nan_to_num(np.mean(kept)) if kept.size else 0.0
        return float(-0.691 + 10.0 * np.log10(mean))


def _gain(loudness: float, target_lufs: float = TARGET_LUFS) -> float:
    # Like MultiTalk, a measurement beyond +-100 LUFS (near-silence) leaves the track unchanged.
    if not np.isfinite(loudness) or abs(loudness) > 100:
        return 1.0
    return float(10.0 ** ((target_lufs - loudness) / 20.0))


def loudness_gain(samples: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS) -> float:
    """Linear gain that brings ``samples`` to ``target_lufs`` (ITU-R BS.1770, pyloudnorm).

    Like MultiTalk, a measurement beyond +-100 LUFS (near-silence) leaves the track unchanged.
    """
    return _gain(integrated_loudness(samples, sample_rate), target_lufs)


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
