"""A decoded portrait's colours: whatever mode Pillow decodes to, as 8-bit sRGB.

* Bit depth: 16-bit and float grey are scaled (not clipped) to 8 bits; palette, 1-bit and
  premultiplied modes are expanded; PNG ``tRNS`` transparency becomes an alpha channel.
* CMYK JPEGs follow Pillow, browsers and Photoshop: Adobe polarity (inverted) always, YCCK
  converted by libjpeg. With an embedded profile they go through LittleCMS; without one, through
  Pillow's naive formula (ink subtracted from white).
* Colour management: ICC profiles (``iCCP``, APP2, ``colr``) are converted to sRGB with
  LittleCMS (Pillow's ``ImageCms``). A profile it cannot read, or one that does not match the
  pixels, is ignored rather than refused: the picture is still a picture. Without ``ImageCms``
  (a Pillow built without LittleCMS) pixels pass through as if they were sRGB. PNG ``gAMA``/
  ``cHRM`` and HEIF/AVIF ``nclx`` colour descriptions are not applied (Pillow reads neither).

Alpha is handed back, not composited: what lies under a transparent portrait is
:mod:`modal_service.media.image`'s choice.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image

try:  # LittleCMS is optional in Pillow builds; without it colours pass through (see above).
    from PIL import ImageCms
except ImportError:  # pragma: no cover - every supported Pillow wheel ships it
    ImageCms = None


def to_srgb(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Any mode Pillow decodes to, as 8-bit sRGB, and its alpha channel (None when opaque).

    The colour is RGB, or RGBA when there is alpha to composite (paste it with the alpha as the
    mask). Memory matters at 64 MP (Pillow keeps RGB and RGBA at 4 bytes a pixel, 256 MB): RGBA
    is colour-managed in place and handed back as it is, never copied to RGB first.
    """
    profile = image.info.get("icc_profile")
    eight = _eight_bit(image)
    if eight.mode not in ("LA", "RGBA"):
        return _colour_managed(eight, profile), None
    alpha = eight.getchannel("A")
    colour = _colour_managed(eight if eight.mode == "RGBA" else eight.convert("L"), profile)
    if alpha.getextrema() == (255, 255):
        return (colour.convert("RGB") if colour.mode == "RGBA" else colour), None
    return colour, alpha


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
