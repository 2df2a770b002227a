"""The caller's audio: read the header, refuse what can never work, decode under a hard cap,
judge silence by loudness, normalise, and lay one or two speakers on a timeline.

Everything is decided by content, never by the key's extension or the ``Content-Type``: the
first bytes go through :mod:`modal_service.sniff` (images and documents are refused there), then
the bundled ffmpeg reads the container header (``ffmpeg -i``: duration, first audio stream's
codec, rate and channels) and only then decodes, always with ``-map 0:a:0`` (cover art and video
tracks may come first), every channel averaged to mono, straight to float32 at
:data:`MUX_SAMPLE_RATE`. The model's 16 kHz track is resampled from that one decode, so both
tracks hear the same samples and the same gain.

**Bounds.** No input can make the worker hold more than ``max_s`` + :data:`CAP_MARGIN_S` of
48 kHz mono float32 (about 115 MB at the contract's 600 s): ffmpeg is told to stop there
(``-t``) and its output is read into a buffer that cannot grow past it, because a header may say
nothing about length (WebM from a browser's MediaRecorder, a WAV written to a pipe) or lie.

**Decompression bombs.** A file is a bomb when it claims (or decodes to) more than ``max_s`` and
holds fewer than :data:`BOMB_BYTES_PER_MINUTE` bytes per minute of what it claims. No speech
codec ffmpeg decodes comes near that: AMR-NB's lowest mode is 4.75 kbit/s (36 KB/min), Opus and
MP3 at their floors 45-60 KB/min, and even codec2 at 450 bit/s is 3.4 KB/min. So a long genuine
recording over the maximum is ``audio_too_long``, while a few-hundred-KB FLAC that claims hours
is ``decompression_bomb``, refused from its header before any decode. Without a claimed length
the same rule applies at the cap: reaching it with a file smaller than the bomb ratio allows for
the cap's length is a bomb, otherwise the track is too long. PCM cannot be a bomb: ffmpeg
measures a WAV by the bytes it holds, so a header claiming hours over 1 s of samples decodes,
like in every player, to its 1 s.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import selectors
import subprocess
import time
from pathlib import Path
from typing import Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict

from modal_service.media.errors import AudioError, MediaCode
from modal_service.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from modal_service.sniff import SNIFF_BYTES, audio_refusal, sniff

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
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64
"""ffmpeg's pan filter (the explicit downmix) takes at most 64 input channels."""
DURATION_SLACK_S = 0.25
"""Codecs pad to whole frames (AAC 1024 samples, MP3 1152, Opus 20 ms) and raw streams carry no
trim information: a recording cut at exactly ``max_s`` must not be refused for that padding."""
CAP_MARGIN_S = 1.0
"""Decode at most ``max_s`` + this: enough to tell "too long" from "padded", and no more."""
BOMB_BYTES_PER_MINUTE = 1_000
"""Below this many bytes per minute of claimed audio (133 bit/s) a long file is a bomb."""
PROBE_TIMEOUT_S = 30.0
DECODE_TIMEOUT_S = 120.0
"""600 s of any codec decodes in a few seconds; a file that takes minutes is pathological."""

_READ_CHUNK = 1 << 16
_STDERR_TAIL = 8 << 10


class AudioInfo(BaseModel):
    """What the container header says about the first audio stream (nothing is decoded)."""

    model_config = ConfigDict(frozen=True)

    format: str
    """Sniffed from the first bytes: ``wav``, ``mp3``, ``matroska``, ``mp4``..."""
    container: str
    """ffmpeg's demuxer names: ``wav``, ``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``..."""
    codec: str
    sample_rate: int
    channels: int
    """0 when the layout is one ffmpeg names but this module cannot count (``-ac 1`` then)."""
    channel_layout: str
    duration_s: float | None
    """The container's length; None when the header does not say (or only guesses it from the
    bitrate, which a VBR file makes wrong by a factor)."""
    has_video: bool
    """A real video track (cover art aside): the container's length may then be the video's."""
    size_bytes: int


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


# ---------------------------------------------------------------------------------- header


def probe_audio(path: Path, name: str) -> AudioInfo:
    """Read ``path``'s first bytes and container header, and refuse what can never be a track.

    ``name`` is how messages call the caller's input (``"audio 1 (voice.m4a)"``).

    Raises:
        AudioError: ``unsupported_format`` (an image or a document), ``audio_invalid`` (empty,
            unreadable, no audio stream, an absurd sample rate or channel count).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        raise AudioError("audio_invalid", f"{name} could not be read") from None
    refusal = audio_refusal(head)
    if refusal is not None:
        code, reason = refusal
        raise AudioError(cast(MediaCode, code), f"{name} {reason}")
    try:
        proc = run_ffmpeg(["-i", str(path)], timeout_s=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AudioError("audio_invalid", f"{name}: its header could not be read in time") from None
    header = proc.stderr.decode("utf-8", "replace")
    info = _parse_header(header, sniffed=sniff(head).name, size=size)
    if info is None:
        raise AudioError(
            "audio_invalid",
            f"{name} could not be read as audio: it is damaged or in no format we can decode",
        )
    if not info.codec:
        raise AudioError("audio_invalid", f"{name} holds no audio track")
    if info.sample_rate == 0 or info.codec == "none":
        # ffmpeg found a stream but no codec it knows for it (nothing to decode).
        raise AudioError("audio_invalid", f"{name} holds an audio track in no codec we can decode")
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            "audio_invalid",
            f"{name} says its sample rate is {info.sample_rate} Hz; "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz is accepted",
        )
    if info.channels > MAX_CHANNELS or info.channel_layout.startswith("0 channels"):
        raise AudioError(
            "audio_invalid",
            f"{name} says it has {info.channel_layout}; at most {MAX_CHANNELS} are accepted",
        )
    return info


_INPUT = re.compile(r"^Input #0, (.+?), from ", re.MULTILINE)
_DURATION = re.compile(r"^\s*Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)", re.MULTILINE)
_STREAM = re.compile(r"^\s*Stream #0:(\d+)[^:]*: (Audio|Video): (.*)$", re.MULTILINE)
_RATE = re.compile(r"^(\d+) Hz$")
_COUNTED = re.compile(r"^(\d+) channels")
_AMBISONIC = re.compile(r"^ambisonic (\d+)")


def _parse_header(header: str, *, sniffed: str, size: int) -> AudioInfo | None:
    """The fields of ``ffmpeg -i``'s report; None when ffmpeg did not open the file at all."""
    opened = _INPUT.search(header)
    if opened is None:
        return None
    duration: float | None = None
    found = _DURATION.search(header)
    if found is not None and found.group(1) is not None:
        hours, minutes, seconds = found.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    # A length ffmpeg estimated from the first frames' bitrate is a guess about the bytes, never
    # a claim by the file: use it neither to refuse as too long nor to call a bomb.
    if "Estimating duration from bitrate" in header:
        duration = None
    audio: tuple[int, str] | None = None
    has_video = False
    for match in _STREAM.finditer(header):
        index, kind, rest = int(match.group(1)), match.group(2), match.group(3)
        if kind == "Video":
            has_video = has_video or "(attached pic)" not in rest
        elif audio is None or index < audio[0]:
            audio = (index, rest)
    codec, rate, layout, channels = "", 0, "", 0
    if audio is not None:
        fields = _top_level_fields(audio[1])
        codec = fields[0].split(" ")[0]
        for position, field in enumerate(fields):
            matched = _RATE.match(field)
            if matched:
                rate = int(matched.group(1))
                layout = fields[position + 1] if position + 1 < len(fields) else ""
                break
        channels = _channel_count(layout)
    return AudioInfo(
        format=sniffed,
        container=opened.group(1),
        codec=codec,
        sample_rate=rate,
        channels=channels,
        channel_layout=layout,
        duration_s=duration,
        has_video=has_video,
        size_bytes=size,
    )


def _top_level_fields(text: str) -> list[str]:
    """Split a stream description at commas outside parentheses (``5.1(side)``, ``(LC)``)."""
    fields, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            fields.append("".join(current).strip())
            current = []
            continue
        depth += (char == "(") - (char == ")")
        current.append(char)
    fields.append("".join(current).strip())
    return fields


def _channel_count(layout: str) -> int:
    """Channels of an ffmpeg layout description; 0 when unknown (the decode then uses -ac 1)."""
    counted = _COUNTED.match(layout)
    if counted:
        return int(counted.group(1))
    ambisonic = _AMBISONIC.match(layout)
    if ambisonic:
        return (int(ambisonic.group(1)) + 1) ** 2
    return _named_layouts().get(layout, 0)


@functools.cache
def _named_layouts() -> dict[str, int]:
    """ffmpeg's own table of layout names (``7.1.4``, ``hexadecagonal``...) and their sizes.

    Read from the bundled binary rather than written here, so a newer ffmpeg's names count too.
    """
    listing = run_ffmpeg(["-layouts"], timeout_s=PROBE_TIMEOUT_S).stdout.decode("utf-8", "replace")
    table: dict[str, int] = {}
    in_layouts = False
    for line in listing.splitlines():
        if line.startswith("Standard channel layouts"):
            in_layouts = True
            continue
        parts = line.split()
        if in_layouts and len(parts) == 2 and parts[0] != "NAME":
            table[parts[0]] = parts[1].count("+") + 1
    return table


def _refuse_by_header(info: AudioInfo, name: str, max_s: float) -> None:
    """Refuse a claimed length over ``max_s`` before decoding a single frame."""
    claimed = info.duration_s
    if claimed is None or claimed <= max_s + DURATION_SLACK_S:
        return
    if _is_bomb(info.size_bytes, claimed):
        raise AudioError(
            "decompression_bomb",
            f"{name} is {_size(info.size_bytes)} yet says it lasts {_length(claimed)}: "
            "refused without decoding",
        )
    # With a video track the container's length may be the picture's; the decode decides then.
    if not info.has_video:
        raise AudioError(
            "audio_too_long",
            f"{name} lasts {_length(claimed)}; this deployment takes at most {_length(max_s)}",
        )


def _is_bomb(size_bytes: int, seconds: float) -> bool:
    return size_bytes < BOMB_BYTES_PER_MINUTE * seconds / 60.0


# ---------------------------------------------------------------------------------- decode


def prepare_track(path: Path, name: str, *, max_s: float) -> PreparedTrack:
    """Probe, refuse or decode ``path``, and bring it to :data:`TARGET_LUFS`.

    ``max_s`` is the deployment's longest audio; a longer track is refused, never cut.

    Raises:
        AudioError: ``unsupported_format``, ``audio_invalid`` (also for NaN or infinite samples),
            ``decompression_bomb``, ``audio_too_long``, ``audio_too_short`` or ``audio_silent``.
    """
    info = probe_audio(path, name)
    _refuse_by_header(info, name, max_s)
    cap_s = max_s + CAP_MARGIN_S
    mux, capped = _decode(Path(path), info, name, cap_s)
    duration = mux.size / MUX_SAMPLE_RATE
    if capped:
        if _is_bomb(info.size_bytes, cap_s):
            raise AudioError(
                "decompression_bomb",
                f"{name} is {_size(info.size_bytes)} yet decodes to more than {_length(max_s)}: "
                "decoding stopped there",
            )
        raise AudioError(
            "audio_too_long",
            f"{name} lasts more than {_length(max_s)}, the most this deployment takes",
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
            f"{name} lasts {_length(duration)}; this deployment takes at most {_length(max_s)}",
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


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770 integrated loudness (pyloudnorm); -inf when every block is gated out."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    with np.errstate(all="ignore"):
        return float(meter.integrated_loudness(samples.astype(np.float64)))


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


# ----------------------------------------------------------------------------- messages


def _length(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _size(size_bytes: int) -> str:
    if size_bytes >= 1 << 20:
        return f"{size_bytes / (1 << 20):.1f} MB"
    if size_bytes >= 1 << 10:
        return f"{size_bytes / (1 << 10):.0f} KB"
    return f"{size_bytes} bytes"
