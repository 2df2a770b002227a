from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from modal_service.media.errors import ImageError
from modal_service.media.image import MAX_IMAGE_PIXELS, load_portrait
from tests.unit.media.conftest import draw_portrait


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_supported_formats_load_as_rgb(tmp_path: Path, suffix: str) -> None:
    image = load_portrait(draw_portrait(tmp_path / f"face{suffix}"))
    assert image.mode == "RGB"
    assert image.size == (320, 480)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    draw_portrait(path, size=(320, 480), exif=exif)
    assert load_portrait(path).size == (480, 320)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "face.png"
    path.write_bytes(b"definitely not a png" * 50)
    with pytest.raises(ImageError) as err:
        load_portrait(path)
    assert err.value.reason == "image_unreadable"


def test_truncated_image_is_unreadable(tmp_path: Path) -> None:
    path = draw_portrait(tmp_path / "face.jpg")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ImageError) as err:
        load_portrait(path)
    assert err.value.reason == "image_unreadable"


def test_gif_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as err:
        load_portrait(draw_portrait(tmp_path / "face.gif"))
    assert err.value.reason == "image_format_unsupported"


def test_too_small(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as err:
        load_portrait(draw_portrait(tmp_path / "tiny.png", size=(40, 300)))
    assert err.value.reason == "image_too_small"


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height``: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("side", [7_000, 30_000])
def test_decompression_bombs_are_refused_before_decoding(tmp_path: Path, side: int) -> None:
    assert side * side > MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as err:
        load_portrait(_png_header_only(tmp_path / "bomb.png", side, side))
    assert err.value.reason == "image_too_large"
