"""A portrait's container, checked before anything decodes it: cut short, corrupt, or a CPU bomb.

:func:`check_structure` walks the file itself (memory-mapped: nothing is copied or decoded):
every PNG chunk's CRC, the JPEG marker structure up to EOI, every GIF block up to the trailer. A
file cut short, a bad checksum or garbage where a marker must be is ``image_invalid``; the walk
also refuses a progressive JPEG with an absurd number of scans (a CPU bomb at any pixel count)
as a ``decompression_bomb``.

Why walk at all when a strict decode follows: Pillow does not verify every PNG chunk's CRC (it
skips the image data's), and a walk over JPEG markers and GIF blocks finds truncation and scan
bombs by reading bytes, far more cheaply than a decode that spends its CPU before failing. BMP,
TIFF, WebP, HEIF and AVIF are not walked: their decoders check their own lengths.
"""

from __future__ import annotations

import io
import mmap
import re
import struct
import zlib
from typing import Final

from modal_service.media.errors import ImageError

MAX_JPEG_SCANS: Final = 100
"""Progressive encoders write about 10 scans (mozjpeg up to about 20). Each scan is a pass over
every coefficient, so thousands of tiny scans make even a small picture a CPU bomb."""


class _Corrupt(Exception):
    """A structural defect; becomes ``image_invalid`` (or a bomb) with the file's name."""

    def __init__(self, what: str, code: str = "image_invalid") -> None:
        super().__init__(what)
        self.what = what
        self.code = code


def check_structure(file: io.BufferedReader, kind: str, name: str) -> int:
    """Walk the container of ``kind`` (memory-mapped: nothing is copied); return the file size."""
    file.seek(0, io.SEEK_END)
    size = file.tell()
    walk = _WALKERS.get(kind)
    if walk is None:  # BMP, TIFF, WebP, HEIF, AVIF: their decoders check their own lengths
        return size
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            walk(data)
        except _Corrupt as defect:
            if defect.code == "decompression_bomb":
                raise ImageError("decompression_bomb", f"{name} {defect.what}") from None
            raise invalid_image(name, defect.what) from None
    return size


def _walk_png(data: mmap.mmap) -> None:
    """Every chunk whole and its CRC right, IHDR first, IEND reached (trailing bytes allowed)."""
    view = memoryview(data)
    try:
        pos, first = 8, True
        while True:
            if pos + 12 > len(data):
                raise _Corrupt("the PNG is cut short (no IEND chunk)")
            length, kind = struct.unpack_from(">I4s", data, pos)
            end = pos + 12 + length
            if length > 0x7FFFFFFF or end > len(data):
                raise _Corrupt(f"the PNG is cut short inside its {_chunk_name(kind)} chunk")
            stored = int.from_bytes(data[end - 4 : end], "big")
            if zlib.crc32(view[pos + 4 : end - 4]) != stored:
                raise _Corrupt(f"a PNG {_chunk_name(kind)} chunk fails its CRC check")
            if first and kind != b"IHDR":
                raise _Corrupt("the PNG does not start with its IHDR chunk")
            if kind == b"IEND":
                return
            pos, first = end, False
    finally:
        view.release()


def _chunk_name(kind: bytes) -> str:
    return kind.decode("ascii", "replace") if kind.isalpha() else "unnamed"


# A marker that ends entropy-coded data: 0xFF followed by anything but a stuffed zero or RSTn.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
# Markers that may follow a scan: tables, restart interval, comments, another scan, the end.
_AFTER_SCAN: Final = frozenset({0xC4, 0xCC, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xFE, *range(0xE0, 0xF0)})
_NO_LENGTH: Final = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: markers without a segment
_FRAMES: Final = frozenset({*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), 0xCD, 0xCE})


def _walk_jpeg(data: mmap.mmap) -> None:
    """Segments whole, a frame before the first scan, only legal markers after each scan, EOI.

    Bytes after EOI are allowed: phones append a second picture (MPF) or maker data there.
    Stray bytes before a marker are skipped, as libjpeg does (some encoders pad).
    """
    pos, scans, frame, after_scan = 2, 0, False, False
    size = len(data)
    while True:
        if pos < size and data[pos] != 0xFF:
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
        while pos + 1 < size and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 1 >= size:
            break
        marker = data[pos + 1]
        if after_scan and marker not in _AFTER_SCAN:
            raise _Corrupt(f"the JPEG has corrupt compressed data (marker 0x{marker:02X})")
        after_scan = False
        pos += 2
        if marker == 0xD9:
            if scans == 0:
                raise _Corrupt("the JPEG ends before any image data")
            return
        if marker == 0xD8:
            raise _Corrupt("the JPEG starts again in the middle")
        if marker in _NO_LENGTH:
            continue
        if pos + 2 > size:
            break
        end = pos + int.from_bytes(data[pos : pos + 2], "big")
        if end - pos < 2 or end > size:
            break
        frame = frame or marker in _FRAMES
        if marker == 0xDA:
            if not frame:
                raise _Corrupt("the JPEG has image data before its frame header")
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _Corrupt(
                    f"is a JPEG of more than {MAX_JPEG_SCANS} scans: refused as a "
                    "decompression bomb",
                    "decompression_bomb",
                )
            found = _SCAN_END.search(data, end)
            if found is None:
                break
            end, after_scan = found.start(), True
        pos = end
    raise _Corrupt("the JPEG is cut short (no end-of-image marker)")


def _walk_gif(data: mmap.mmap) -> None:
    """Every block and sub-block whole, up to the trailer byte (0x3B).

    A file that ends cleanly after a whole block, without the trailer, passes: some encoders
    never wrote it (Python's own IDLE icons) and every viewer shows those files.
    """
    size = len(data)

    def colour_table(flags: int) -> int:
        return 3 << ((flags & 7) + 1) if flags & 0x80 else 0

    def sub_blocks(pos: int) -> int:
        while pos < size and data[pos]:
            pos += 1 + data[pos]
        if pos >= size:
            raise _Corrupt("the GIF is cut short inside a block")
        return pos + 1  # past the zero-length terminator

    if size < 13:
        raise _Corrupt("the GIF is cut short")
    pos = 13 + colour_table(data[10])
    images = 0
    while pos < size:
        block = data[pos]
        if block == 0x3B:
            break
        if block == 0x21:  # extension: label, then sub-blocks
            pos = sub_blocks(pos + 2)
        elif block == 0x2C:  # image: 10-byte descriptor, local table, LZW code size, data
            if pos + 10 > size:
                raise _Corrupt("the GIF is cut short inside an image descriptor")
            pos = sub_blocks(pos + 11 + colour_table(data[pos + 9]))
            images += 1
        else:
            raise _Corrupt(f"the GIF has an unknown block (0x{block:02X})")
    if images == 0:
        raise _Corrupt("the GIF holds no image")


_WALKERS: Final = {"png": _walk_png, "jpeg": _walk_jpeg, "gif": _walk_gif}


def invalid_image(name: str, what: str) -> ImageError:
    """``image_invalid`` for ``name``: a defect found here, or by Pillow's header or decode."""
    # The decoder's own words can name the temporary file: they stay in the chained cause (logs).
    return ImageError("image_invalid", f"{name} is not a usable image: {what}")
