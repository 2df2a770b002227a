"""Errors a render can end with: ``code`` is a stable contract code, ``reason`` a finer slug for
logs (``weights_missing``, ``weights_mismatch``...)."""

from __future__ import annotations

from modal_service.media.errors import MediaCode


class RenderError(Exception):
    """A render that cannot complete. The message is safe to show to the API caller."""

    code = "internal"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.code


class InputRejectedError(RenderError):
    """An input the render cannot use; ``code`` is the media's own (``audio_silent``,
    ``image_too_small``, ``decompression_bomb``...), as the caller will see it."""

    def __init__(self, code: MediaCode, message: str) -> None:
        super().__init__(message, reason=code)
        self.code = code


class ModelUnavailableError(RenderError):
    """The preset's weights are missing, incomplete or do not match the model."""

    code = "model_unavailable"


class RenderCancelled(Exception):
    """``should_cancel`` returned True between two steps; nothing was written."""
