"""The portrait's size rules, and the dimensions an image's first bytes declare.

Both sides apply the same rules to the same header fields: the AWS side on the first
:data:`~modal_service.sniff.SNIFF_BYTES` of the object (a ranged GET), so a picture that can
never be used is refused before a job exists; the worker on what Pillow reads from the whole
file, so nothing the submit path could not see gets through. The submit path refuses only what
it can read for certain (PNG, GIF, BMP and WebP headers; a JPEG whose frame header falls within
the first bytes); anything else waits for the worker.

Pure standard library: the Lambda zip carries this module beside the wire contract.
"""

from __future__ import annotations

from typing import Final

MIN_IMAGE_SIDE: Final = 64
"""Below this there is no face to animate."""
MAX_IMAGE_PIXELS: Final = 64_000_000
"""48-50 MP phone photos and 61 MP camera files pass; the worker's decode of the largest stays
under 800 MB (``python -m scripts.bench.input_bombs``)."""
MAX_ASPECT_RATIO: Final = 4.0
"""The model's buckets run from 1:4 to 4:1 (``multitalk/buckets.py``): a longer strip would be
cropped to a sliver of itself."""
BOMB_PIXELS_PER_BYTE: Final = 1000
"""Over the pixel limit, a file with fewer than one byte per this many pixels is a bomb: deflate
cannot expand a byte into more than 1032, and a photo needs twenty times more bytes."""

# JPEG start-of-frame markers: every SOFn except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size_refusal(width: int, height: int, file_size: int) -> tuple[str, str] | None:
    """``(code, reason)`` when a ``width`` x ``height`` picture of ``file_size`` bytes is refused.

    The reason reads after the input's name: ``"the reference image " + reason``.
    """
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS:
        return over_limit_refusal(pixels, file_size, f"{width}x{height} pixels")
    short, long = sorted((width, height))
    if short < MIN_IMAGE_SIDE:
        return (
            "image_too_small",
            f"is {width}x{height} pixels; each side needs at least {MIN_IMAGE_SIDE}",
        )
    if long > MAX_ASPECT_RATIO * short:
        return (
            "image_too_small",
            f"is {width}x{height} pixels, a {long / short:.1f}:1 strip; the longer side may be "
            f"at most {MAX_ASPECT_RATIO:g} times the shorter (the model's widest frame)",
        )
    return None


def over_limit_refusal(pixels: int, file_size: int, claimed: str) -> tuple[str, str]:
    """A picture over :data:`MAX_IMAGE_PIXELS`: too large, or a bomb when tiny for its size."""
    if file_size * BOMB_PIXELS_PER_BYTE < pixels:
        return (
            "decompression_bomb",
            f"claims {claimed} in only {file_size:,} bytes (over {BOMB_PIXELS_PER_BYTE} pixels "
            "a byte, far past what a photo compresses to): refused as a decompression bomb",
        )
    return (
        "image_too_large",
        f"is {claimed} ({pixels / 1e6:.0f} MP); at most {MAX_IMAGE_PIXELS / 1e6:.0f} MP are "
        "accepted, so scale it down first",
    )


def header_dimensions(head: bytes) -> tuple[int, int] | None:
    """``(width, height)`` as the image's header declares them, or None when the first bytes
    do not say for certain (another format, a JPEG whose frame header comes later)."""
    for reader in (_png, _gif, _bmp, _webp, _jpeg):
        found = reader(head)
        if found is not None:
            return found if found[0] > 0 and found[1] > 0 else None
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or len(head) < 24:
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _gif(head: bytes) -> tuple[int, int] | None:
    # The logical screen: what Pillow reports as the size of every frame.
    if head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 10:
        return None
    return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")


def _bmp(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"BM" or len(head) < 26:
        return None
    header_size = int.from_bytes(head[14:18], "little")
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
        return int.from_bytes(head[18:20], "little"), int.from_bytes(head[20:22], "little")
    if header_size not in (40, 52, 56, 64, 108, 124):
        return None
    width = int.from_bytes(head[18:22], "little", signed=True)
    height = int.from_bytes(head[22:26], "little", signed=True)
    return abs(width), abs(height)  # a negative height is a top-down bitmap


def _webp(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":  # the canvas, 24-bit sides stored minus one
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if chunk == b"VP8L" and head[20] == 0x2F:  # 14-bit sides minus one, after the signature
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # key frame start code
        return (
            int.from_bytes(head[26:28], "little") & 0x3FFF,
            int.from_bytes(head[28:30], "little") & 0x3FFF,
        )
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    """Walk the markers in ``head`` to the first frame header; None if it lies further on."""
    if head[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(head[position + 2 : position + 4], "big")
        if marker in _SOF:
            if position + 9 > len(head):
                return None
            height = int.from_bytes(head[position + 5 : position + 7], "big")
            width = int.from_bytes(head[position + 7 : position + 9], "big")
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header: not for us
            return None
        position += 2 + length
    return None
