"""The portrait: every ordinary photo in, one upright 8-bit sRGB image out, bad files out early.

:func:`load_portrait` works in five steps, each refusing what it can before the next costs more:

1. **Sniff** the first bytes (:func:`modal_service.sniff.image_refusal`). Documents (SVG, PDF,
   PostScript, Photoshop), audio and video are ``unsupported_format``; bytes that match no format
   are ``image_invalid``. Pillow then opens the file with ``formats=`` set to the one format the
   bytes announce, so no other plugin ever runs (EPS would start Ghostscript, PSD would flatten
   layers, and neither is a photo).
2. **Walk the container** without decoding (:mod:`modal_service.media.image_structure`): a PNG,
   JPEG or GIF cut short, with a bad checksum or with garbage where a marker must be is
   ``image_invalid``; a progressive JPEG with an absurd number of scans (a CPU bomb at any pixel
   count) is a ``decompression_bomb``.
3. **Read the header** (Pillow's ``open`` decodes no pixels) and apply the size rules below
   (:mod:`modal_service.image_rules`, which the submit path applies to the same header fields).
4. **Decode the first frame strictly**: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set, so
   truncated or broken compressed data raises and becomes ``image_invalid``.
5. **Normalise**: 8-bit sRGB through the embedded ICC profile, CMYK and 16-bit grey included
   (:mod:`modal_service.media.image_colour`), alpha composited onto :data:`BACKGROUND`, then the
   EXIF orientation applied.

Rules, and why:

* ``MAX_IMAGE_PIXELS`` (64 MP) lets 48-50 MP phone photos and 61 MP camera files through and
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
* Orientation: EXIF tag 274 for JPEG, PNG (``eXIf``), WebP and AVIF (Pillow reports ``irot``/
  ``imir`` as an EXIF orientation); TIFF and HEIF are turned upright by their decoders (HEIF
  follows its ``irot``/``imir`` boxes, which the HEIF specification makes authoritative).
* Animated GIF, WebP, APNG and AVIF sequences: the first frame, as a still viewer shows it.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import Final

from PIL import ExifTags, Image, UnidentifiedImageError

from modal_service.image_rules import image_size_refusal, over_limit_refusal
from modal_service.media.errors import ImageError
from modal_service.media.image_colour import to_srgb
from modal_service.media.image_structure import check_structure, invalid_image
from modal_service.sniff import SNIFF_BYTES, image_refusal, sniff

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
        file_size = check_structure(file, kind, name)
        if kind in ("heif", "avif"):
            _register_heif()
        # Pillow reads our file object and never owns it, so the decoded image outlives it
        # without a copy (closing a Pillow image that opened a path frees its pixels).
        image = _open(file, _PILLOW_FORMATS[kind], file_size, name)
        _check_size(image.width, image.height, file_size, name)
        try:
            image.load()  # the first frame only; strict: a short or broken stream raises
            orientation = _orientation(image)
            rgb = _upright(_flatten(image), orientation)
        except _DECODE_ERRORS as exc:
            raise invalid_image(name, "its image data is truncated or corrupt") from exc
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
        code, reason = over_limit_refusal(claimed, file_size, f"{claimed:,} pixels")
        raise ImageError(code, f"{name} {reason}") from None  # type: ignore[arg-type]
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise invalid_image(name, "its header is corrupt") from exc


# -- 3. size rules, from the header ---------------------------------------------------------


def _check_size(width: int, height: int, file_size: int, name: str) -> None:
    refusal = image_size_refusal(width, height, file_size)
    if refusal is not None:
        code, reason = refusal
        raise ImageError(code, f"{name} {reason}")  # type: ignore[arg-type]


# -- 5. normalise: 8 bits, sRGB, no alpha, upright ---------------------------------------------


def _flatten(image: Image.Image) -> Image.Image:
    """8-bit RGB in sRGB, alpha composited onto :data:`BACKGROUND` (edges blended, not cut)."""
    colour, alpha = to_srgb(image)
    if alpha is None:
        return colour
    canvas = Image.new("RGB", colour.size, BACKGROUND)
    canvas.paste(colour, mask=alpha)  # blends: partly transparent edges keep their weight
    return canvas


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
