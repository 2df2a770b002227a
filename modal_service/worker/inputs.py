"""A cheap first look at downloaded inputs, before any model time is spent.

This only answers "is this plausibly an audio file / an image at all?" from the first bytes;
decoding, durations, pixel limits and the rest are the media module's job, which reports its
own stable codes through the renderer.
"""

from __future__ import annotations

from pathlib import Path

from modal_service.contracts import ErrorCode
from modal_service.worker.errors import WorkerError

_HEAD_BYTES = 64


def _head(path: Path) -> bytes:
    with path.open("rb") as source:
        return source.read(_HEAD_BYTES)


def audio_suffix(head: bytes) -> str | None:
    """The file suffix for an audio container recognised by its magic bytes, else ``None``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":
        return ".ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return ".mp3"
    if head[4:8] == b"ftyp":
        return ".m4a"
    return None


def image_suffix(head: bytes) -> str | None:
    """The file suffix for an image format recognised by its magic bytes, else ``None``."""
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if head[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return None


def check_audio(path: Path, what: str) -> str:
    """Return the audio file's suffix, or raise ``audio_invalid``."""
    head = _head(path)
    if not head:
        raise WorkerError(ErrorCode.AUDIO_INVALID, f"{what} is empty", retryable=False)
    suffix = audio_suffix(head)
    if suffix is None:
        raise WorkerError(
            ErrorCode.AUDIO_INVALID,
            f"{what} is not a supported audio file (wav, mp3, flac, ogg, m4a)",
            retryable=False,
        )
    return suffix


def check_image(path: Path, what: str) -> str:
    """Return the image file's suffix, or raise ``image_invalid``."""
    head = _head(path)
    if not head:
        raise WorkerError(ErrorCode.IMAGE_INVALID, f"{what} is empty", retryable=False)
    suffix = image_suffix(head)
    if suffix is None:
        raise WorkerError(
            ErrorCode.IMAGE_INVALID,
            f"{what} is not a supported image (png, jpeg, webp)",
            retryable=False,
        )
    return suffix
