"""The caller's audio before any decode: sniff it, read its container header, and refuse what
can never be a track, what claims to be too long, and decompression bombs.

Everything is decided by content, never by the key's extension or the ``Content-Type``: the
first bytes go through :mod:`modal_service.sniff` (images and documents are refused there), then
the bundled ffmpeg reads the container header (``ffmpeg -i``: duration, first audio stream's
codec, rate and channels). Not a frame is decoded here; :mod:`modal_service.media.audio` decodes
what passes.

**Decompression bombs** and lengths over the maximum follow :mod:`modal_service.audio_rules`,
the rules the submit path applies too: a file that claims more than ``max_s`` is a bomb when it
holds too few bytes for that length, otherwise too long, refused here before any decode. PCM
cannot be a bomb: ffmpeg measures a WAV by the bytes it holds, so a header claiming hours over
1 s of samples decodes, like in every player, to its 1 s.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import cast

from pydantic import BaseModel, ConfigDict

from modal_service.audio_rules import length_refusal
from modal_service.media.errors import AudioError, MediaCode
from modal_service.media.ffmpeg import run_ffmpeg
from modal_service.sniff import SNIFF_BYTES, audio_refusal, sniff

MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64
"""ffmpeg's pan filter (the explicit downmix) takes at most 64 input channels."""
PROBE_TIMEOUT_S = 30.0


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


def refuse_by_header(info: AudioInfo, name: str, max_s: float) -> None:
    """Refuse a claimed length over ``max_s`` before decoding a single frame."""
    if info.duration_s is None:
        return
    refusal = length_refusal(info.duration_s, info.size_bytes, max_s)
    if refusal is None:
        return
    code, reason = refusal
    # With a video track the container's length may be the picture's; the decode decides then.
    if code == "decompression_bomb" or not info.has_video:
        raise AudioError(cast(MediaCode, code), f"{name} {reason}")
