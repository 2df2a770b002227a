"""Portrait loading with the checks a public endpoint needs (format, size, decompression bombs)."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from modal_service.media.errors import ImageError

SUPPORTED_IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MIN_IMAGE_SIDE = 64
MAX_IMAGE_PIXELS = 40_000_000  # 40 MP: far above any portrait, far below a decompression bomb


def load_portrait(path: Path) -> Image.Image:
    """Open a PNG/JPEG/WebP portrait as RGB, upright (EXIF orientation applied).

    The pixel count is checked from the header before any pixel is decoded.

    Raises:
        ImageError: ``image_unreadable``, ``image_format_unsupported``, ``image_too_small`` or
            ``image_too_large``.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        if isinstance(exc, Image.DecompressionBombWarning | Image.DecompressionBombError):
            raise ImageError("image_too_large", f"{path.name!r} has too many pixels") from None
        raise ImageError("image_unreadable", f"{path.name!r} is not a readable image") from None
    with image:
        if image.format not in SUPPORTED_IMAGE_FORMATS:
            raise ImageError(
                "image_format_unsupported",
                f"{path.name!r} is {image.format}; supported: PNG, JPEG, WebP",
            )
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageError(
                "image_too_large",
                f"{path.name!r} is {width}x{height}; at most {MAX_IMAGE_PIXELS:,} pixels allowed",
            )
        if min(width, height) < MIN_IMAGE_SIDE:
            raise ImageError(
                "image_too_small",
                f"{path.name!r} is {width}x{height}; each side needs {MIN_IMAGE_SIDE} px or more",
            )
        try:
            upright = ImageOps.exif_transpose(image)
            return upright.convert("RGB")
        except (OSError, ValueError, SyntaxError):
            raise ImageError("image_unreadable", f"{path.name!r} is truncated or corrupt") from None
