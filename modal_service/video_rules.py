"""The source video's rules (dubbing), and the length an MP4/MOV or Matroska header declares.

Both sides apply the same rules to the same fields, as for the portrait and the audio: the AWS
side to the object's size and first :data:`~modal_service.sniff.SNIFF_BYTES` (an MP4 whose
``moov`` comes first, a Matroska file with a ``Duration``), so a video that can never be used is
refused before a job exists; the worker to what ``ffmpeg -i`` reads from the whole header.

**No bytes-per-second bomb rule.** Unlike audio, a genuine video may hold almost nothing per
second (a still slide, a locked-off shot of a wall), so a small file claiming a long length is
not suspicious. What a video can abuse is decode work: the decoder turns every source pixel of
every source frame into colour before the 25 fps resampling drops any. :data:`MAX_PIXEL_RATE`
bounds that work per second, and the duration limit bounds the seconds.

Pure standard library: the Lambda zip carries this module beside the wire contract.
"""

from __future__ import annotations

import struct
from typing import Final

from modal_service.audio_rules import DURATION_SLACK_S, human_length, human_size

MAX_VIDEO_S: Final = 600.0
"""The contract's ceiling for a source video's length (a deployment may set less)."""
MAX_VIDEO_BYTES: Final = 2 << 30
"""10 minutes of 1080p from a phone (about 17 Mbit/s) is 1.3 GB; 2 GiB leaves room for 4K."""
MIN_VIDEO_SIDE: Final = 64
"""Below this there is no face to dub (the portrait's limit)."""
MAX_VIDEO_SIDE: Final = 4096
"""DCI 4K's long side: every phone and camera mode people upload fits."""
MAX_ASPECT_RATIO: Final = 4.0
"""The model's buckets run from 1:4 to 4:1 (``multitalk/buckets.py``), as for the portrait."""
MAX_PIXEL_RATE: Final = 4096 * 2160 * 60
"""Decoded source pixels a second: DCI 4K at 60 fps (531 MP/s) passes, 4K at 120 fps does not.
Ten minutes at this rate decode in a few minutes on the worker's CPUs."""

ACCEPTED_VIDEO = "MP4, MOV, WebM or MKV (H.264, HEVC, VP8, VP9, AV1 and most other codecs)"


def video_bytes_refusal(size_bytes: int, max_bytes: int) -> tuple[str, str] | None:
    """``(code, reason)`` when a file of ``size_bytes`` is over the deployment's byte limit.

    The reason reads after the input's name: ``"the source video (talk.mp4) " + reason``.
    """
    if size_bytes <= max_bytes:
        return None
    return (
        "video_too_large",
        f"is {human_size(size_bytes)}; this deployment takes at most {human_size(max_bytes)}",
    )


def video_length_refusal(seconds: float, max_s: float) -> tuple[str, str] | None:
    """``(code, reason)`` for a video that lasts ``seconds``, over ``max_s`` (with the audio's
    slack: containers round lengths to their time base and pad the last frame)."""
    if seconds <= max_s + DURATION_SLACK_S:
        return None
    return (
        "video_too_long",
        f"lasts {human_length(seconds)}; this deployment takes at most {human_length(max_s)}",
    )


def video_size_refusal(width: int, height: int, fps: float | None) -> tuple[str, str] | None:
    """``(code, reason)`` for upright ``width`` x ``height`` frames at a stated ``fps`` (None when
    the header states no rate: the decode rate is then bounded by the duration limit alone)."""
    short, long = sorted((width, height))
    if long > MAX_VIDEO_SIDE:
        return (
            "video_too_large",
            f"is {width}x{height} pixels; each side may be at most {MAX_VIDEO_SIDE}, "
            "so scale it down first",
        )
    if short < MIN_VIDEO_SIDE:
        return (
            "video_invalid",
            f"is {width}x{height} pixels; each side needs at least {MIN_VIDEO_SIDE}",
        )
    if long > MAX_ASPECT_RATIO * short:
        return (
            "video_invalid",
            f"is {width}x{height} pixels, a {long / short:.1f}:1 strip; the longer side may be "
            f"at most {MAX_ASPECT_RATIO:g} times the shorter (the model's widest frame)",
        )
    if fps is not None and width * height * fps > MAX_PIXEL_RATE:
        return (
            "video_too_large",
            f"is {width}x{height} pixels at {fps:g} fps, {width * height * fps / 1e6:.0f} "
            f"megapixels a second to decode; at most {MAX_PIXEL_RATE / 1e6:.0f} (4K at 60 fps)",
        )
    return None


# ---------------------------------------------------------------- lengths from the first bytes


def header_duration(head: bytes) -> float | None:
    """The length the first bytes declare: an MP4/MOV ``mvhd`` when ``moov`` comes before the
    media data (``+faststart``), or a Matroska/WebM ``Duration``; None when they do not say
    (the ``moov`` at the end, as phones write it; a MediaRecorder WebM, which has no length)."""
    if head[4:8] in (b"ftyp", b"moov", b"wide", b"free", b"skip"):
        return _mp4_duration(head)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _matroska_duration(head)
    return None


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, body start, body end)`` of the ISO-BMFF boxes in ``data[start:end]``."""
    found = []
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1 and position + 16 <= end:  # a 64-bit size follows the type
            size, header = struct.unpack_from(">Q", data, position + 8)[0], 16
        elif size == 0:  # to the end of the file
            size = end - position
        if size < header:
            break
        found.append((kind, position + header, position + size))
        position += size
    return found


def _mp4_duration(head: bytes) -> float | None:
    for kind, body, end in _boxes(head, 0, len(head)):
        if kind == b"mdat":
            return None  # the media data first: the header is at the end of the file
        if kind == b"moov":
            for child, start, _ in _boxes(head, body, min(end, len(head))):
                if child == b"mvhd":
                    return _mvhd_duration(head, start)
            return None
    return None


def _mvhd_duration(head: bytes, start: int) -> float | None:
    version = head[start] if start < len(head) else None
    # Version 1 has 64-bit times: creation, modification, timescale (32), duration (64).
    layout, offset = (">IQ", start + 20) if version == 1 else (">II", start + 12)
    if version not in (0, 1) or offset + struct.calcsize(layout) > len(head):
        return None
    timescale, duration = struct.unpack_from(layout, head, offset)
    if timescale == 0 or duration in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        return None  # "unknown", as fragmented and live writers leave it
    return duration / timescale


_SEGMENT, _INFO, _CLUSTER = 0x18538067, 0x1549A966, 0x1F43B675
_TIMESTAMP_SCALE, _DURATION = 0x2AD7B1, 0x4489


def _vint(data: bytes, position: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``position``: ``(value, length)``, or None."""
    if position >= len(data) or data[position] == 0:
        return None
    length = 9 - data[position].bit_length()
    if position + length > len(data):
        return None
    value = int.from_bytes(data[position : position + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, length


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """``(id, body start, body end)`` of the EBML elements in ``data[start:end]``; an unknown
    size (all ones, as live writers leave the Segment's) runs to ``end``."""
    found = []
    position = start
    while position < end:
        element = _vint(data, position, keep_marker=True)
        if element is None:
            break
        size = _vint(data, position + element[1], keep_marker=False)
        if size is None:
            break
        body = position + element[1] + size[1]
        unknown = size[0] == (1 << (7 * size[1])) - 1
        found.append((element[0], body, end if unknown else body + size[0]))
        position = body + size[0] if not unknown else end
    return found


def _matroska_duration(head: bytes) -> float | None:
    for element, body, end in _elements(head, 0, len(head)):
        if element != _SEGMENT:
            continue
        for child, start, stop in _elements(head, body, min(end, len(head))):
            if child == _CLUSTER:
                return None  # media before any Info: nothing states the length
            if child == _INFO and stop <= len(head):
                return _info_duration(head, start, stop)
        return None
    return None


def _info_duration(head: bytes, start: int, stop: int) -> float | None:
    scale_ns, duration = 1_000_000, None  # the TimestampScale default: milliseconds
    for element, body, end in _elements(head, start, stop):
        if element == _TIMESTAMP_SCALE:
            scale_ns = int.from_bytes(head[body:end], "big")
        elif element == _DURATION and end - body in (4, 8):
            duration = struct.unpack(">f" if end - body == 4 else ">d", head[body:end])[0]
    if duration is None or not duration > 0 or scale_ns == 0:
        return None
    return duration * scale_ns / 1e9
