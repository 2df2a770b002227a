"""The audio length rules both sides apply, and the length a FLAC header declares.

**Decompression bombs.** A file is a bomb when it claims (or decodes to) more than the
deployment's maximum and holds fewer than :data:`BOMB_BYTES_PER_MINUTE` bytes per minute of what
it claims. No speech codec ffmpeg decodes comes near that: AMR-NB's lowest mode is 4.75 kbit/s
(36 KB/min), Opus and MP3 at their floors 45-60 KB/min, and even codec2 at 450 bit/s is
3.4 KB/min. So a long genuine recording over the maximum is ``audio_too_long``, while a
few-hundred-KB FLAC that claims hours is ``decompression_bomb``.

The worker applies :func:`length_refusal` to what ``ffmpeg -i`` reads from the container
header; the submit path applies it to a FLAC's STREAMINFO in the object's first bytes (the one
common format whose header states its exact length and that compresses silence to nothing), so
such a bomb is refused before a job exists. Pure standard library: the Lambda zip carries it.
"""

from __future__ import annotations

DURATION_SLACK_S = 0.25
"""Codecs pad to whole frames (AAC 1024 samples, MP3 1152, Opus 20 ms) and raw streams carry no
trim information: a recording cut at exactly the maximum must not be refused for that padding."""
BOMB_BYTES_PER_MINUTE = 1_000
"""Below this many bytes per minute of claimed audio (133 bit/s) a long file is a bomb."""


def is_bomb(size_bytes: int, seconds: float) -> bool:
    """Whether ``size_bytes`` is too few for ``seconds`` of any real codec."""
    return size_bytes < BOMB_BYTES_PER_MINUTE * seconds / 60.0


def length_refusal(seconds: float, size_bytes: int, max_s: float) -> tuple[str, str] | None:
    """``(code, reason)`` for a track that claims ``seconds`` in ``size_bytes``, over ``max_s``.

    The reason reads after the input's name: ``"audio 1 " + reason``.
    """
    if seconds <= max_s + DURATION_SLACK_S:
        return None
    if is_bomb(size_bytes, seconds):
        return (
            "decompression_bomb",
            f"is {human_size(size_bytes)} yet says it lasts {human_length(seconds)}: "
            "refused without decoding",
        )
    return (
        "audio_too_long",
        f"lasts {human_length(seconds)}; this deployment takes at most {human_length(max_s)}",
    )


def flac_duration(head: bytes) -> float | None:
    """The length a FLAC's STREAMINFO states, or None (another format, or "unknown": 0)."""
    # "fLaC", then the first metadata block: 1 byte type (0 = STREAMINFO), 3 bytes length (34).
    if head[:4] != b"fLaC" or len(head) < 42 or head[4] & 0x7F != 0:
        return None
    # STREAMINFO from byte 8: block sizes (4), frame sizes (6), then 64 bits holding the sample
    # rate (20), channels - 1 (3), bits per sample - 1 (5) and the total samples (36).
    packed = int.from_bytes(head[18:26], "big")
    sample_rate = packed >> 44
    total_samples = packed & ((1 << 36) - 1)
    if sample_rate == 0 or total_samples == 0:
        return None
    return total_samples / sample_rate


def human_length(seconds: float) -> str:
    """A length as messages say it: ``42.0 s``, ``12.5 min``, ``2.0 h``."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def human_size(size_bytes: int) -> str:
    """A file size as messages say it: ``643 bytes``, ``25 KB``, ``1.5 MB``."""
    if size_bytes >= 1 << 20:
        return f"{size_bytes / (1 << 20):.1f} MB"
    if size_bytes >= 1 << 10:
        return f"{size_bytes / (1 << 10):.0f} KB"
    return f"{size_bytes} bytes"
