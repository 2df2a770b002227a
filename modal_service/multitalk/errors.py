"""Errors a render can end with: ``code`` is a stable contract code, ``reason`` a finer slug."""

from __future__ import annotations


class RenderError(Exception):
    """A render that cannot complete. The message is safe to show to the API caller."""

    code = "internal"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.code


class AudioInvalidError(RenderError):
    """An audio track is unreadable, empty, silent, too short or too long, or not supported."""

    code = "audio_invalid"


class ImageInvalidError(RenderError):
    """The portrait is not a usable image."""

    code = "image_invalid"


class ModelUnavailableError(RenderError):
    """The preset's weights are missing, incomplete or do not match the model."""

    code = "model_unavailable"


class RenderCancelled(Exception):
    """``should_cancel`` returned True between two steps; nothing was written."""
