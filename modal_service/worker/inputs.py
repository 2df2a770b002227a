"""A cheap first look at downloaded inputs, before any model time is spent.

The same content check the AWS side made on the object's first bytes (:mod:`modal_service.sniff`),
made again on what actually arrived: the object may have changed since, and the worker trusts
nothing it did not read itself. Decoding, durations, pixel limits and the rest are the media
module's job, which reports its own codes through the renderer.
"""

from __future__ import annotations

from pathlib import Path

from modal_service.contracts import ErrorCode
from modal_service.sniff import SNIFF_BYTES, audio_refusal, image_refusal
from modal_service.worker.errors import WorkerError


def _head(path: Path) -> bytes:
    with path.open("rb") as source:
        return source.read(SNIFF_BYTES)


def check_audio(path: Path, label: str) -> None:
    """Raise the refusal's code (``unsupported_format``, ``audio_invalid``) for non-audio."""
    refusal = audio_refusal(_head(path))
    if refusal is not None:
        code, reason = refusal
        raise WorkerError(ErrorCode(code), f"{label} {reason}", retryable=False)


def check_image(path: Path, label: str) -> None:
    """Raise the refusal's code (``unsupported_format``, ``image_invalid``) for non-images."""
    refusal = image_refusal(_head(path))
    if refusal is not None:
        code, reason = refusal
        raise WorkerError(ErrorCode(code), f"{label} {reason}", retryable=False)
