"""The portrait: every ordinary photo in, one upright 8-bit sRGB image out, bad files out early.

:func:`load_portrait` works in five steps, each refusing what it can before the next costs more:

1. **Sniff** the first bytes (:func:`modal_service.sniff.image_refusal`). Documents (SVG, PDF,
   PostScript, Photoshop), audio and video are ``unsupported_format``; bytes that match no format
   are ``image_invalid``. Pillow then opens the file with ``formats=`` set to the one format the
   bytes announce, so no other plugin ever runs (EPS would start Ghostscript, PSD would flatten
   layers, and neither is a photo).
2. **Walk the container** without decoding: every PNG chunk's CRC (Pillow skips the image data's
   CRCs), the JPEG marker structure up to EOI, every GIF block up to the trailer. A file cut short,
   a bad checksum or garbage where a marker must be is ``image_invalid``; the walk also refuses
   a progressive JPEG with an absurd number of scans (a CPU bomb at any pixel count).
3. **Read the header** (Pillow's ``open`` decodes no pixels) and apply the size rules below.
4. **Decode the first frame strictly**: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set, so
   truncated or broken compressed data raises and becomes ``image_invalid``.
5. **Normalise**: 16-bit and float grey scaled (not clipped) to 8 bits, palette and
   premultiplied modes expanded, the embedded ICC profile converted to sRGB (CMYK included),
   alpha composited onto :data:`BACKGROUND`, then the EXIF orientation applied.

Rules, and why:

* :data:`MAX_IMAGE_PIXELS` (64 MP) lets 48-50 MP phone photos and 61 MP camera files through and
  bounds what a decode can allocate: 64 MP at 4 bytes a pixel is 256 MB, and the whole load peaks
  under 800 MB (measured: 580 MB for half-transparent RGBA PNG, 770 MB for a progressive 4:4:4
  CMYK JPEG, whose coefficients libjpeg holds at once). Above it, a file is ``image_too_large``,
  unless it holds fewer than one byte per :data:`BOMB_PIXELS_PER_BYTE` (1000) pixels claimed,
  which makes it a ``decompression_bomb``: deflate cannot expand one byte into more than 1032, so
  an 8-bit PNG that small cannot hold the pixels it claims, and a photograph needs twenty times
  more (even a heavily compressed JPEG or HEIC spends over 0.02 bytes a pixel). Flat pictures may
  compress past the rule (a one-colour WebP, a 1-bit PNG); over the limit they are called bombs,
  which is what they would be to a decoder. Under the limit no ratio applies: memory is bounded
  by the pixel count, and a tiny file that claims 50 MP simply fails to decode.
* :data:`MIN_IMAGE_SIDE` (64 px): below it there is no face to animate.
* :data:`MAX_ASPECT_RATIO` (4:1 either way) is ``image_too_small`` too: the model's buckets go
  from 1:4 to 4:1 (``multitalk/buckets.py``), so a longer strip would be cropped to a sliver of
  itself, and its short side is too small for its long one.
* :data:`BACKGROUND` is white: what viewers and browsers show a transparent picture on, and what
  a cut-out portrait looks like as a studio shot. Never the colour hidden under alpha: a
  transparent pixel's RGB is whatever the editor left there (often magenta, green or black).
* CMYK JPEGs follow Pillow, browsers and Photoshop: Adobe polarity (inverted) always, YCCK
  converted by libjpeg. With an embedded profile they go through LittleCMS; without one, through
  Pillow's naive formula (ink subtracted from white).
* Colour management: ICC profiles (``iCCP``, APP2, ``colr``) are converted to sRGB with
  LittleCMS (Pillow's ``ImageCms``). A profile it cannot read, or one that does not match the
  pixels, is ignored rather than refused: the picture is still a picture. Without ``ImageCms``
  (a Pillow built without LittleCMS) pixels pass through as if they were sRGB. PNG ``gAMA``/
  ``cHRM`` and HEIF/AVIF ``nclx`` colour descriptions are not applied (Pillow reads neither).
* Orientation: EXIF tag 274 for JPEG, PNG (``eXIf``), WebP and AVIF (Pillow reports ``irot``/
  ``imir`` as an EXIF orientation); TIFF and HEIF are turned upright by their decoders (HEIF
  follows its ``irot``/``imir`` boxes, which the HEIF specification makes authoritative).
* Animated GIF, WebP, APNG and AVIF sequences: the first frame, as a still viewer shows it.
"""

from __future__ import annotations

import functools
import io
import mmap
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import Final

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from modal_service.media.errors import ImageError
from modal_service.sniff import SNIFF_BYTES, image_refusal, sniff

try:  # LittleCMS is optional in Pillow builds; without it colours pass through (see above).
    from PIL import ImageCms
except ImportError:  # pragma: no cover - every supported Pillow wheel ships it
    ImageCms = None

MIN_IMAGE_SIDE: Final = 64
MAX_IMAGE_PIXELS: Final = 64_000_000
MAX_ASPECT_RATIO: Final = 4.0
BOMB_PIXELS_PER_BYTE: Final = 1000
MAX_JPEG_SCANS: Final = 100
"""Progressive encoders write about 10 scans (mozjpeg up to about 20). Each scan is a pass over
every coefficient, so thousands of tiny scans make even a small picture a CPU bomb."""
BACKGROUND: Final = (255, 255, 255)

# The sniffed name decides the one Pillow plugin that may read the file. HEIF and AVIF share
# ISO-BMFF, and a brand list can mislead, so each may fall back to the other's decoder.
_PILLOW_FORMATS: Final = {
    "jpeg": ("JPEG",),
    "png": ("PNG",),
    "gif": ("GIF",),
    "bmp": ("BMP",),
    "tiff": ("TIFF",),
    "webp": ("WEBP",),
    "avif": ("AVIF", "HEIF"),
    "heif": ("HEIF", "AVIF"),
}

# What decoders raise on bad data: Pillow's plugins (OSError, SyntaxError, EOFError, struct and
# zlib errors), libwebp/libavif through Pillow (OSError, ValueError), pillow-heif (ValueError,
# RuntimeError). MemoryError is left alone: under the pixel cap it is the machine's fault.
_DECODE_ERRORS: Final = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    TypeError,
    RuntimeError,
    struct.error,
    zlib.error,
)
_BOMB_MESSAGE = re.compile(r"\((\d+) pixels\)")


def load_portrait(path: Path, name: str) -> Image.Image:
    """Open the caller's portrait as an upright 8-bit RGB image in sRGB.

    Args:
        path: the downloaded file (its name and extension are ignored: content decides).
        name: how messages name the caller's input, e.g. ``"the reference image (me.heic)"``.

    Raises:
        ImageError: ``unsupported_format``, ``image_invalid``, ``image_too_small``,
            ``image_too_large`` or ``decompression_bomb``; the message starts with ``name``.
    """
    path = Path(path)
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        refusal = image_refusal(head)
        if refusal is not None:
            code, reason = refusal
            raise ImageError(code, f"{name} {reason}")  # type: ignore[arg-type]
        kind = sniff(head).name
        file_size = _check_structure(file, kind, name)
        if kind in ("heif", "avif"):
            _register_heif()
        # Pillow reads our file object and never owns it, so the decoded image outlives it
        # without a copy (closing a Pillow image that opened a path frees its pixels).
        image = _open(file, _PILLOW_FORMATS[kind], file_size, name)
        _check_size(image.width, image.height, file_size, name)
        try:
            image.load()  # the first frame only; strict: a short or broken stream raises
            orientation = _orientation(image)
            rgb = _upright(_to_srgb(image), orientation)
        except _DECODE_ERRORS as exc:
            raise _invalid(name, "its image data is truncated or corrupt") from exc
    rgb.info = {}  # the profile, EXIF and frame data described the file, not these pixels
    return rgb


# -- 1. the one decoder that may read the file ----------------------------------------------


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF, once, the first time one arrives (pillow-heif loads libheif)."""
    import pillow_heif

    # Thumbnails, depth maps and auxiliary images are never used; not parsing them saves work.
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _open(
    file: io.BufferedReader, formats: tuple[str, ...], file_size: int, name: str
) -> Image.Image:
    """Pillow's ``open``: the header only, with nothing but ``formats`` allowed to read it."""
    file.seek(0)
    try:
        with warnings.catch_warnings():
            # Our own limit is lower than Pillow's warning threshold and is checked next.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(file, formats=list(formats))
    except Image.DecompressionBombError as exc:
        # Over twice Pillow's limit (179 MP): far over ours. Only the message carries the size.
        found = _BOMB_MESSAGE.search(str(exc))
        claimed = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
        raise _over_limit(name, claimed, file_size, None) from None
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise _invalid(name, "its header is corrupt") from exc


# -- 3. size rules, from the header ---------------------------------------------------------


def _check_size(width: int, height: int, file_size: int, name: str) -> None:
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS:
        raise _over_limit(name, pixels, file_size, (width, height))
    short, long = sorted((width, height))
    if short < MIN_IMAGE_SIDE:
        raise ImageError(
            "image_too_small",
            f"{name} is {width}x{height} pixels; each side needs at least {MIN_IMAGE_SIDE}",
        )
    if long > MAX_ASPECT_RATIO * short:
        raise ImageError(
            "image_too_small",
            f"{name} is {width}x{height} pixels, a {long / short:.1f}:1 strip; the longer side may "
            f"be at most {MAX_ASPECT_RATIO:g} times the shorter (the model's widest frame)",
        )


def _over_limit(name: str, pixels: int, file_size: int, size: tuple[int, int] | None) -> ImageError:
    claimed = f"{size[0]}x{size[1]} pixels" if size else f"{pixels:,} pixels"
    if file_size * BOMB_PIXELS_PER_BYTE < pixels:
        return ImageError(
            "decompression_bomb",
            f"{name} claims {claimed} in only {file_size:,} bytes (over "
            f"{BOMB_PIXELS_PER_BYTE} pixels a byte, far past what a photo compresses to): "
            "refused as a decompression bomb",
        )
    return ImageError(
        "image_too_large",
        f"{name} is {claimed} ({pixels / 1e6:.0f} MP); at most {MAX_IMAGE_PIXELS / 1e6:.0f} MP "
        f"are accepted, so scale it down first",
    )


def _invalid(name: str, what: str) -> ImageError:
    # The decoder's own words can name the temporary file: they stay in the chained cause (logs).
    return ImageError("image_invalid", f"{name} is not a usable image: {what}")


# -- 2. container structure, without decoding -------------------------------------------------


class _Corrupt(Exception):
    """A structural defect; becomes ``image_invalid`` (or a bomb) with the file's name."""

    def __init__(self, what: str, code: str = "image_invalid") -> None:
        super().__init__(what)
        self.what = what
        self.code = code


def _check_structure(file: io.BufferedReader, kind: str, name: str) -> int:
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
            raise _invalid(name, defect.what) from None
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


# -- 5. normalise: 8 bits, sRGB, no alpha, upright ---------------------------------------------


def _to_srgb(image: Image.Image) -> Image.Image:
    """Any mode Pillow decodes to, as 8-bit RGB in sRGB with alpha composited on BACKGROUND.

    Memory matters at 64 MP (Pillow keeps RGB and RGBA at 4 bytes a pixel, 256 MB): RGBA is
    colour-managed in place and pasted straight onto the canvas, never copied to RGB first.
    """
    profile = image.info.get("icc_profile")
    eight = _eight_bit(image)
    if eight.mode not in ("LA", "RGBA"):
        return _colour_managed(eight, profile)
    alpha = eight.getchannel("A")
    colour = _colour_managed(eight if eight.mode == "RGBA" else eight.convert("L"), profile)
    if alpha.getextrema() == (255, 255):
        return colour.convert("RGB") if colour.mode == "RGBA" else colour
    canvas = Image.new("RGB", colour.size, BACKGROUND)
    canvas.paste(colour, mask=alpha)  # blends: partly transparent edges keep their weight
    return canvas


def _eight_bit(image: Image.Image) -> Image.Image:
    """L, LA, RGB, RGBA, CMYK or LAB at 8 bits a channel, transparency made an alpha channel."""
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" in image.info:  # PNG tRNS on grey or RGB
        return image.convert(mode + "A")
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK", "LAB"):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode in ("La", "RGBa"):  # premultiplied (TIFF associated alpha arrives straight already)
        return image.convert(mode.upper())
    if mode == "F" or mode.startswith("I"):
        return _scale_grey(image)
    return image.convert("RGB")  # YCbCr, HSV, RGBX: Pillow knows the formula


@functools.cache
def _lut16() -> np.ndarray:
    # 16-bit to 8-bit by scaling (x * 255 / 65535, rounded): 32768 -> 128, 65535 -> 255.
    return ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _scale_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey to 8 bits, scaled over the range the data was stored in.

    Pillow's own conversion clips (a 16-bit mid-grey of 32768 becomes white). ``I;16*`` is
    16-bit by definition. ``I`` and ``F`` carry no range, so it is judged from the data: floats
    up to 1.0 are unit range; values up to 255 are 8-bit; up to 65535, 16-bit; beyond, the
    maximum is white. Negative values are black.
    """
    if image.mode.startswith("I;16"):
        grey = Image.fromarray(_lut16()[np.asarray(image)])
    else:
        if image.mode not in ("I", "F"):
            image = image.convert("I")
        top = float(image.getextrema()[1])
        if image.mode == "F" and top <= 1.0:
            scale = 255.0
        elif top <= 255:
            scale = 1.0
        elif top <= 65535:
            scale = 255.0 / 65535.0
        else:
            scale = 255.0 / top
        # point() applies a linear map in C at the mode's precision; convert("L") then clips.
        grey = image.point(lambda value: value * scale + 0.5).convert("L")
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):  # a 16-bit grey PNG's tRNS names one 16-bit value
        mask = (np.asarray(image) != transparent).astype(np.uint8) * 255
        return Image.merge("LA", (grey, Image.fromarray(mask)))
    return grey


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _colour_managed(image: Image.Image, profile: bytes | None) -> Image.Image:
    """``image`` (L, RGB, RGBA, CMYK or LAB) as sRGB through its ICC profile when it has one.

    RGB and RGBA come back in their own mode (RGBA converted in place); the others as RGB.
    """
    keep = image.mode in ("RGB", "RGBA")
    if ImageCms is not None and (profile or image.mode == "LAB"):
        try:
            source = ImageCms.ImageCmsProfile(
                io.BytesIO(profile) if profile else ImageCms.createProfile("LAB")
            )
            if keep:
                ImageCms.profileToProfile(
                    image, source, _srgb_profile(), outputMode=image.mode, inPlace=True
                )
                return image
            return ImageCms.profileToProfile(image, source, _srgb_profile(), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # unreadable, or for another colour space: the pixels are still a picture
    return image if keep else image.convert("RGB")


_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) after decoding (PNG's ``eXIf`` follows the image data)."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (*_DECODE_ERRORS, KeyError):
        return 1  # unreadable metadata does not spoil the picture; it just stays as stored
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)
