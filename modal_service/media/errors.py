"""Errors for bad media. ``reason`` is a stable slug; the message is safe to show to callers."""

from __future__ import annotations


class MediaError(ValueError):
    """Input media that cannot be used. Never carries a stack trace to the caller."""

    kind = "media"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class AudioError(MediaError):
    """An audio track is unreadable, empty, silent, too short, too long or of a refused format."""

    kind = "audio"


class ImageError(MediaError):
    """The portrait is not an image, or is too small or too large."""

    kind = "image"
