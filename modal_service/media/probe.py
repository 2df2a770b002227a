"""What an MP4 really contains, measured by decoding it (the bundled ffmpeg has no ffprobe)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from modal_service.media.ffmpeg import run_ffmpeg

_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d+)x(\d+).*?, ([\d.]+) fps")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+).*?, (\d+) Hz")
_FRAME = re.compile(r"frame=\s*(\d+)")


class MediaInfo(BaseModel):
    video_codec: str | None
    audio_codec: str | None
    width: int
    height: int
    fps: float
    frames: int
    video_duration_s: float
    audio_duration_s: float


def probe_media(path: Path) -> MediaInfo:
    """Decode the first video and audio streams of ``path`` and report what they hold."""
    header = run_ffmpeg(["-i", str(path)]).stderr.decode("utf-8", "replace")
    video, audio = _VIDEO.search(header), _AUDIO.search(header)
    frames = 0
    fps = 0.0
    width = height = 0
    if video:
        width, height, fps = int(video.group(2)), int(video.group(3)), float(video.group(4))
        counted = run_ffmpeg(["-i", str(path), "-map", "0:v:0", "-f", "null", "-"])
        found = _FRAME.findall(counted.stderr.decode("utf-8", "replace"))
        frames = int(found[-1]) if found else 0
    audio_s = 0.0
    if audio:
        rate = int(audio.group(2))
        pcm = run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-ac", "1", "-f", "f32le", "pipe:1"])
        audio_s = np.frombuffer(pcm.stdout, dtype="<f4").size / rate
    return MediaInfo(
        video_codec=video.group(1) if video else None,
        audio_codec=audio.group(1) if audio else None,
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        video_duration_s=frames / fps if fps else 0.0,
        audio_duration_s=audio_s,
    )
