"""Errors for bad media. ``code`` is one of the public input codes; the message is safe to show
to callers and names their input (``"audio 1 (talk.wav)"``), never a temporary file."""

from __future__ import annotations

from typing import Literal

MediaCode = Literal[
    "audio_invalid",
    "audio_too_short",
    "audio_too_long",
    "audio_silent",
    "image_invalid",
    "image_too_small",
    "image_too_large",
    "video_invalid",
    "video_too_long",
    "video_too_large",
    "unsupported_format",
    "decompression_bomb",
]
"""The input codes, identical in the wire contract (:class:`~modal_service.contracts.ErrorCode`),
the job records, problem+json answers, webhooks, batch summaries and the OpenAPI document."""


class MediaError(ValueError):
    """Input media that cannot be used. Never carries a stack trace to the caller."""

    kind = "media"

    def __init__(self, code: MediaCode, message: str) -> None:
        super().__init__(message)
        self.code: MediaCode = code
        self.message = message


class AudioError(MediaError):
    """An audio track is invalid, silent, too short, too long, a bomb or of a refused format."""

    kind = "audio"


class ImageError(MediaError):
    """The portrait is invalid, too small, too large, a bomb or of a refused format."""

    kind = "image"


class VideoError(MediaError):
    """The source video (dubbing) is invalid, too long, too large or of a refused format."""

    kind = "video"
