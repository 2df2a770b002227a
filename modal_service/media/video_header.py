"""The source video before any decode: sniff it, read its container header, and refuse what can
never be dubbed.

Content decides, never the key's extension: the first bytes go through
:func:`modal_service.sniff.video_refusal` (images, audio files and documents are
``unsupported_format``), then the bundled ffmpeg reads the header (``ffmpeg -i``; the bundle has
no ffprobe): the first real video stream's codec, coded size, sample aspect ratio, stated frame
rate and display rotation, and the container's length. The rules of
:mod:`modal_service.video_rules` (the submit path's too) apply to the *upright* size: a phone's
portrait video is stored landscape with a rotation, and is judged as the viewer sees it.

A header with no length (a WebM written by a browser's MediaRecorder, any piped recording) is
measured by reading its packets without decoding them, which takes milliseconds a minute.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import cast

from pydantic import BaseModel, ConfigDict

from modal_service.media.errors import MediaCode, VideoError
from modal_service.media.ffmpeg import run_ffmpeg
from modal_service.sniff import SNIFF_BYTES, sniff, video_refusal
from modal_service.video_rules import video_bytes_refusal, video_length_refusal, video_size_refusal

PROBE_TIMEOUT_S = 30.0
MEASURE_TIMEOUT_S = 60.0
"""Reading a 2 GB file's packets takes a few seconds; a file that takes a minute is broken."""


class VideoInfo(BaseModel):
    """What the container header says about the first video stream (nothing is decoded)."""

    model_config = ConfigDict(frozen=True)

    format: str
    """Sniffed from the first bytes: ``mp4``, ``mov``, ``webm`` or ``matroska``."""
    container: str
    """ffmpeg's demuxer names: ``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``."""
    codec: str
    coded_width: int
    coded_height: int
    """The frames as stored, before the sample aspect ratio and the rotation."""
    width: int
    height: int
    """Upright, as a player shows it: square pixels, rotation applied."""
    rotation: int
    """Clockwise degrees a player turns the stored frames (0, 90, 180, 270); a phone held
    upright writes 90, as the old ``rotate`` tag said."""
    fps: float | None
    """The stated average frame rate; None when the header states none. Decoding resamples
    every rate to 25 fps."""
    duration_s: float
    """The container's length (stated, or measured from the packets when it states none)."""
    has_audio: bool
    """An audio track besides the picture (dubbing replaces it either way)."""
    size_bytes: int


def probe_video(path: Path, name: str, *, max_s: float, max_bytes: int) -> VideoInfo:
    """Read ``path``'s first bytes and header and refuse what can never be a source video.

    ``name`` is how messages call the caller's input (``"the source video (talk.mp4)"``).

    Raises:
        VideoError: ``unsupported_format`` (an image, audio, a document, AVI), ``video_invalid``
            (empty, unreadable, no video track, too small or a strip), ``video_too_large`` (over
            ``max_bytes``, a side over 4096 px, over 4K60's decode rate) or ``video_too_long``.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        raise VideoError("video_invalid", f"{name} could not be read") from None
    _refuse(video_refusal(head) or video_bytes_refusal(size, max_bytes), name)
    try:
        header = run_ffmpeg(["-i", str(path)], timeout_s=PROBE_TIMEOUT_S).stderr
    except subprocess.TimeoutExpired:
        raise VideoError("video_invalid", f"{name}: its header could not be read in time") from None
    info = parse_header(header.decode("utf-8", "replace"), sniffed=sniff(head).name, size=size)
    if info is None:
        raise VideoError(
            "video_invalid",
            f"{name} could not be read as video: it is damaged or in no format we can decode",
        )
    if not info.codec:
        raise VideoError("video_invalid", f"{name} holds no video track (only sound or data)")
    if info.codec == "none" or info.width == 0 or info.height == 0:
        raise VideoError("video_invalid", f"{name} holds a video track in no codec we can decode")
    _refuse(video_size_refusal(info.width, info.height, info.fps), name)
    if info.duration_s <= 0:
        info = info.model_copy(update={"duration_s": _measure(path, name, max_s)})
    _refuse(video_length_refusal(info.duration_s, max_s), name)
    return info


def _refuse(refusal: tuple[str, str] | None, name: str) -> None:
    if refusal is not None:
        code, reason = refusal
        raise VideoError(cast(MediaCode, code), f"{name} {reason}")


_INPUT = re.compile(r"^Input #0, (.+?), from ", re.MULTILINE)
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.MULTILINE)
_STREAM = re.compile(r"^\s*Stream #0:\d+[^:]*: (Audio|Video): (.*)$", re.MULTILINE)
_SIZE = re.compile(r", (\d+)x(\d+)\b")
_SAR = re.compile(r"SAR (\d+):(\d+)")
_FPS = re.compile(r", ([\d.]+)(k?) fps\b")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees", re.IGNORECASE)
_TIME = re.compile(r"time=(\d+):(\d\d):(\d\d(?:\.\d+)?)")


def parse_header(header: str, *, sniffed: str, size: int) -> VideoInfo | None:
    """The fields of ``ffmpeg -i``'s report; None when ffmpeg did not open the file at all.

    A missing length is 0.0 (the caller measures it); no video stream leaves ``codec`` empty.
    """
    opened = _INPUT.search(header)
    if opened is None:
        return None
    found = _DURATION.search(header)
    duration = (
        int(found.group(1)) * 3600 + int(found.group(2)) * 60 + float(found.group(3))
        if found
        else 0.0
    )
    streams = list(_STREAM.finditer(header))
    video = next(
        (
            (index, match)
            for index, match in enumerate(streams)
            if match.group(1) == "Video" and "(attached pic)" not in match.group(2)
        ),
        None,
    )
    has_audio = any(match.group(1) == "Audio" for match in streams)
    fields: dict[str, object] = {"codec": "", "coded_width": 0, "coded_height": 0, "rotation": 0}
    fields.update(width=0, height=0, fps=None)
    if video is not None:
        index, match = video
        # The stream's side data (its display matrix) sits on the lines up to the next stream.
        end = streams[index + 1].start() if index + 1 < len(streams) else len(header)
        fields.update(_video_fields(match.group(2), header[match.end() : end]))
    return VideoInfo(
        format=sniffed,
        container=opened.group(1),
        duration_s=duration,
        has_audio=has_audio,
        size_bytes=size,
        **fields,  # type: ignore[arg-type]
    )


def _video_fields(line: str, side_data: str) -> dict[str, object]:
    codec = line.split(",")[0].split(" ")[0]
    dimensions = _SIZE.search(line)
    if dimensions is None:
        return {"codec": codec}
    coded_w, coded_h = int(dimensions.group(1)), int(dimensions.group(2))
    sar = _SAR.search(line)
    # "SAR 0:1" means unknown: square pixels, as every player assumes.
    numerator, denominator = (int(sar.group(1)), int(sar.group(2))) if sar else (1, 1)
    stretch = numerator / denominator if numerator and denominator else 1.0
    width, height = max(1, round(coded_w * stretch)), coded_h
    angle = _ROTATION.search(side_data)
    # ffmpeg reports the display matrix counter-clockwise; players (and autorotate) honour
    # multiples of 90 degrees only.
    rotation = round(-float(angle.group(1)) / 90) * 90 % 360 if angle else 0
    if rotation in (90, 270):
        width, height = height, width
    rate = _FPS.search(line)
    fps = float(rate.group(1)) * (1000 if rate.group(2) else 1) if rate else None
    return {
        "codec": codec,
        "coded_width": coded_w,
        "coded_height": coded_h,
        "width": width,
        "height": height,
        "rotation": rotation,
        "fps": fps or None,
    }


def _measure(path: Path, name: str, max_s: float) -> float:
    """The video track's length from its packets' timestamps, read without decoding, stopping
    just past ``max_s`` (enough to call it too long)."""
    try:
        args = ["-i", str(path), "-map", "0:v:0", "-c", "copy", "-t", f"{max_s + 1:.3f}"]
        done = run_ffmpeg([*args, "-f", "null", "-"], timeout_s=MEASURE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise VideoError("video_invalid", f"{name}: its length could not be read in time") from None
    times = _TIME.findall(done.stderr.decode("utf-8", "replace"))
    if not times:
        raise VideoError("video_invalid", f"{name} holds no video frames")
    hours, minutes, seconds = times[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
