"""Portraits as people send them, and image inputs that must be refused (see ``__init__``).

Every accepted file holds the same upright picture, :data:`WIDTH` x :data:`HEIGHT` (a portrait),
in quadrants a check can read back whatever the container did to it:

* top-left: :data:`MARK` (bright yellow), so orientation and mirroring show;
* top-right and bottom-left: :data:`BASE` (dark blue), with a face-coloured oval in the middle;
* bottom-right: :data:`BASE` too, or fully transparent over a loud colour (magenta, green,
  black) that must never show: the worker puts its background there.

``expected`` for accepts: ``size`` (upright width, height), ``marker`` and ``base`` (the RGB the
quadrants must come out as), ``background`` (the RGB where alpha was, or None), ``tolerance``
(per channel, for lossy codecs). Colour expectations are computed here from the definitions
(EXIF orientations, CMYK and YCCK formulas, the Display P3 and sRGB primaries), not by the code
under test.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import wave
import zlib
from collections.abc import Callable

import numpy as np
import pillow_heif
from PIL import Image

from scripts.corpus import ACCEPT, CorpusCase

WIDTH, HEIGHT = 256, 384
MARK = (230, 200, 40)
BASE = (40, 60, 110)
FACE = (235, 195, 165)
WHITE = (255, 255, 255)
MAGENTA, GREEN, BLACK = (255, 0, 255), (0, 255, 0), (0, 0, 0)
SEED = 20_240_601

Rgb = tuple[int, int, int]


# -- the picture ----------------------------------------------------------------------------


def portrait(mark: Rgb = MARK, base: Rgb = BASE, corner: Rgb | None = None) -> np.ndarray:
    """The upright picture as an (HEIGHT, WIDTH, 3) array; ``corner`` fills the bottom-right."""
    pixels = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    pixels[:] = base
    pixels[: HEIGHT // 2, : WIDTH // 2] = mark
    if corner is not None:
        pixels[HEIGHT // 2 :, WIDTH // 2 :] = corner
    rows, cols = np.ogrid[:HEIGHT, :WIDTH]
    oval = ((cols - WIDTH / 2) / 40) ** 2 + ((rows - HEIGHT / 2) / 56) ** 2 <= 1
    pixels[oval] = FACE
    return pixels


def transparent_corner() -> np.ndarray:
    """Alpha for :func:`portrait`: opaque except the bottom-right quadrant."""
    alpha = np.full((HEIGHT, WIDTH), 255, np.uint8)
    alpha[HEIGHT // 2 :, WIDTH // 2 :] = 0
    return alpha


def rgb_image(**kwargs: Rgb | None) -> Image.Image:
    return Image.fromarray(portrait(**kwargs), "RGB")


def rgba_image(hidden: Rgb) -> Image.Image:
    pixels = np.dstack([portrait(corner=hidden), transparent_corner()])
    return Image.fromarray(pixels, "RGBA")


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores so that EXIF ``orientation`` displays ``upright``.

    From the EXIF definitions (where stored row 0 and column 0 appear when displayed):
    2 top-right, 3 bottom-right, 4 bottom-left, 5 left-top, 6 right-top, 7 right-bottom,
    8 left-bottom.
    """
    return {
        2: lambda u: u[:, ::-1],  # row 0 at the top, column 0 at the right: mirrored
        3: lambda u: u[::-1, ::-1],
        4: lambda u: u[::-1, :],
        5: lambda u: u.swapaxes(0, 1),  # row 0 is the left side, column 0 the top
        6: lambda u: np.rot90(u, 1),  # row 0 is the right side, column 0 the top
        7: lambda u: u[::-1, ::-1].swapaxes(0, 1),  # row 0 the right side, column 0 the bottom
        8: lambda u: np.rot90(u, -1),  # row 0 is the left side, column 0 the bottom
    }[orientation](upright)


# -- encoders ---------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(
    width: int, height: int, bit_depth: int, colour_type: int, idat: bytes, extra: bytes = b""
) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def flat_png(width: int, height: int, bit_depth: int, colour_type: int, first_row: bytes) -> bytes:
    """A genuine, decodable PNG whose rows all repeat ``first_row`` (streamed: never in memory)."""
    same_as_above = b"\x02" + bytes(len(first_row))  # filter Up, all differences zero
    packer = zlib.compressobj(9)
    parts = [packer.compress(b"\x00" + first_row)]
    parts += [packer.compress(same_as_above) for _ in range(height - 1)]
    parts.append(packer.flush())
    return png_file(width, height, bit_depth, colour_type, b"".join(parts))


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, offset, end) of each segment before the first scan's data."""
    found, pos = [], 2
    while data[pos] == 0xFF:
        marker = data[pos + 1]
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        found.append((marker, pos, end))
        if marker == 0xDA:
            break
        pos = end
    return found


def jpeg_scans(data: bytes) -> list[tuple[int, int]]:
    """(offset of SOS, offset of the next marker) for every scan of a JPEG."""
    scans, pos = [], 0
    while (pos := data.find(b"\xff\xda", pos)) >= 0:
        start, pos = pos, pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        while not (data[pos] == 0xFF and data[pos + 1] not in (0, *range(0xD0, 0xD8))):
            pos += 1
        scans.append((start, pos))
    return scans


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def _cmyk_of(rgb: np.ndarray) -> np.ndarray:
    """Naive CMYK with no black ink (c = 255 - r ...): exact round trip through the formula."""
    return np.dstack([255 - rgb, np.zeros(rgb.shape[:2], np.uint8)])


def cmyk_jpeg() -> bytes:
    # Pillow writes CMYK JPEGs as Adobe does: an APP14 marker and inverted ink values.
    return encode(Image.fromarray(_cmyk_of(portrait()), "CMYK"), "JPEG", quality=95)


def ycck_jpeg() -> bytes:
    """An Adobe YCCK JPEG (Photoshop's CMYK with APP14 transform 2), built by hand.

    libjpeg turns stored YCCK into Adobe-inverted CMYK: C' = 255 - R(Y, Cb, Cr), K' = K stored.
    For ink c we need C' = 255 - c, so R = c: store YCbCr of (c, m, y) and K' = 255 - k.
    Pillow writes CMYK inverted, so it is handed 255 - each stored value; then APP14 says YCCK.
    """
    ink = _cmyk_of(portrait())
    ycc = np.asarray(Image.fromarray(ink[..., :3], "RGB").convert("YCbCr"))
    stored = np.dstack([ycc, 255 - ink[..., 3]])
    data = bytearray(encode(Image.fromarray(255 - stored, "CMYK"), "JPEG", quality=95))
    (_, _, end) = next(s for s in jpeg_segments(bytes(data)) if s[0] == 0xEE)
    data[end - 1] = 2  # APP14 transform: 0 = CMYK, 2 = YCCK
    return bytes(data)


# Display P3 and sRGB colorants, adapted to the D50 profile connection space (Bradford), as
# ICC profiles carry them; and the sRGB transfer function. Expected colours come from these.
P3_D50 = np.array(
    [
        [0.515102, 0.291965, 0.157153],
        [0.241182, 0.692236, 0.066582],
        [-0.001050, 0.041882, 0.784378],
    ]
)
SRGB_D50 = np.array(
    [[0.436075, 0.385065, 0.143080], [0.222504, 0.716879, 0.060617], [0.013932, 0.097105, 0.714173]]
)
P3_GAMMA = 563 / 256  # 2.2 as the u8Fixed8 number the profile stores


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def p3_profile() -> bytes:
    """A minimal ICC v2 display profile: Display P3 primaries, D50 white, gamma 2.2 curves."""

    def xyz(values: np.ndarray | tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)

    def text(value: str) -> bytes:
        return b"text\0\0\0\0" + value.encode() + b"\0"

    desc = b"Display P3 (test)"
    tags = {
        b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(desc) + 1) + desc + b"\0" + bytes(79),
        b"cprt": text("No copyright: generated for tests"),
        b"wtpt": xyz((0.9642, 1.0, 0.8249)),
        b"rXYZ": xyz(P3_D50[:, 0]),
        b"gXYZ": xyz(P3_D50[:, 1]),
        b"bXYZ": xyz(P3_D50[:, 2]),
        b"rTRC": b"curv\0\0\0\0" + struct.pack(">IH", 1, round(P3_GAMMA * 256)) + b"\0\0",
    }
    tags[b"gTRC"] = tags[b"bTRC"] = tags[b"rTRC"]
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, data in tags.items():
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I4sI", size, b"\0\0\0\0", 0x02100000)
        + b"mntrRGB XYZ "
        + bytes(12)  # date: none (deterministic bytes)
        + b"acsp"
        + bytes(24)  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + bytes(4 + 16 + 28)  # creator, profile id, reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def p3_to_srgb(colour: Rgb) -> Rgb:
    """What a colour-managed viewer shows for P3 ``colour`` (gamma 2.2 profile above)."""
    linear = (np.array(colour) / 255.0) ** P3_GAMMA
    srgb = np.clip(np.linalg.solve(SRGB_D50, P3_D50 @ linear), 0, 1)
    encoded = np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055)
    return tuple(round(float(v) * 255) for v in encoded)  # type: ignore[return-value]


P3_MARK, P3_BASE = (220, 190, 70), (60, 80, 130)


def p3_jpeg() -> bytes:
    pixels = portrait(mark=P3_MARK, base=P3_BASE)
    return encode(Image.fromarray(pixels), "JPEG", quality=95, icc_profile=p3_profile())


def bmp_32bit_alpha() -> bytes:
    """A 32-bit BMP with a BITMAPV4HEADER and an alpha mask (what GIMP and Windows write)."""
    pixels = np.dstack([portrait(corner=MAGENTA), transparent_corner()])
    bgra = pixels[::-1, :, [2, 1, 0, 3]].tobytes()  # bottom-up rows, blue first
    info = struct.pack(
        "<IiiHHIIiiII4I4s36s3I",
        108,
        WIDTH,
        HEIGHT,
        1,
        32,
        3,  # BI_BITFIELDS
        len(bgra),
        2835,
        2835,
        0,
        0,
        0x00FF0000,
        0x0000FF00,
        0x000000FF,
        0xFF000000,
        b"BGRs",  # LCS_sRGB, little-endian 'sRGB'
        bytes(36),
        0,
        0,
        0,
    )
    offset = 14 + len(info)
    return struct.pack("<2sIHHI", b"BM", offset + len(bgra), 0, 0, offset) + info + bgra


def palette_image(hidden_index: bool) -> Image.Image:
    """The picture as palette indices: 0 base, 1 mark, 2 face, 3 magenta (bottom-right)."""
    pixels = portrait(corner=MAGENTA if hidden_index else None)
    indices = np.zeros(pixels.shape[:2], np.uint8)
    for index, colour in enumerate((BASE, MARK, FACE, MAGENTA)):
        indices[(pixels == colour).all(axis=2)] = index
    image = Image.fromarray(indices, "P")
    image.putpalette([*BASE, *MARK, *FACE, *MAGENTA])
    return image


def frames(fmt: str, **options: object) -> bytes:
    """Two frames: the picture, then the same with the mark moved (the first must be used)."""
    first = rgb_image()
    second = Image.fromarray(np.ascontiguousarray(portrait()[::-1, ::-1]), "RGB")
    return encode(
        first, fmt, save_all=True, append_images=[second], duration=200, loop=0, **options
    )


def grey16_png() -> bytes:
    pixels = np.full((HEIGHT, WIDTH), 32768, np.uint16)  # mid-grey: 8-bit 128, never white
    pixels[: HEIGHT // 2, : WIDTH // 2] = 60000
    return encode(Image.fromarray(pixels), "PNG")  # uint16: mode I;16


def rgb16_png() -> bytes:
    """16 bits a channel; each low byte 0x7F, so the high byte (or scaling) gives the picture."""
    wide = (portrait().astype(np.uint16) * 256 + 0x7F).astype(">u2")  # PNG is big-endian
    rows = np.concatenate(
        [np.zeros((HEIGHT, 1), np.uint8), wide.view(np.uint8).reshape(HEIGHT, -1)], 1
    )
    return png_file(WIDTH, HEIGHT, 16, 2, zlib.compress(rows.tobytes(), 9))


def la_png() -> bytes:
    grey = np.full((HEIGHT, WIDTH), 60, np.uint8)
    grey[: HEIGHT // 2, : WIDTH // 2] = 200
    grey[HEIGHT // 2 :, WIDTH // 2 :] = 0  # black under the transparent corner
    return encode(Image.fromarray(np.dstack([grey, transparent_corner()]), "LA"), "PNG")


def _grey(colour: Rgb) -> Rgb:
    value = round((colour[0] * 299 + colour[1] * 587 + colour[2] * 114) / 1000)
    return (value, value, value)


# -- refusals ---------------------------------------------------------------------------------


def small_jpeg(progressive: bool = False) -> bytes:
    noise = np.random.default_rng(SEED).integers(0, 256, (96, 96, 3), np.uint8)
    return encode(Image.fromarray(noise), "JPEG", quality=90, progressive=progressive)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 96x96 JPEG whose frame header (SOF0) is patched to claim ``width`` x ``height``."""
    data = bytearray(small_jpeg())
    (_, start, _) = next(s for s in jpeg_segments(bytes(data)) if s[0] == 0xC0)
    data[start + 5 : start + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_many_scans(count: int) -> bytes:
    """A progressive JPEG whose smallest scan is repeated until there are ``count`` scans."""
    data = small_jpeg(progressive=True)
    scans = jpeg_scans(data)
    start, end = min(scans, key=lambda scan: scan[1] - scan[0])
    return data[:end] + data[start:end] * (count - len(scans)) + data[end:]


def jpeg_with_garbage(progressive: bool) -> bytes:
    """Random bytes over the middle of the largest scan's compressed data (headers intact)."""
    data = bytearray(small_jpeg(progressive))
    start, end = max(jpeg_scans(bytes(data)), key=lambda scan: scan[1] - scan[0])
    middle = (start + end) // 2
    data[middle : middle + 600] = np.random.default_rng(SEED + 1).bytes(600)
    return bytes(data)


def png_with(corrupt: Callable[[bytearray, int, int], None]) -> bytes:
    """The RGB portrait as PNG, ``corrupt(data, idat_data_start, idat_data_end)`` applied."""
    data = bytearray(encode(rgb_image(), "PNG"))
    start = data.find(b"IDAT") + 4
    end = start + int.from_bytes(data[start - 8 : start - 4], "big")
    corrupt(data, start, end)
    return bytes(data)


def _flip_crc(data: bytearray, start: int, end: int) -> None:
    data[end] ^= 0x55


def _flip_deflate(data: bytearray, start: int, end: int) -> None:
    middle = (start + end) // 2
    data[middle : middle + 16] = bytes(b ^ 0xA5 for b in data[middle : middle + 16])
    data[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(data[start - 4 : end])))


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(palette_image(False).resize((96, 96)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


def webp_claiming(side: int) -> bytes:
    """A real animated WebP whose VP8X canvas is patched to ``side`` x ``side``."""
    data = bytearray(frames("WEBP", lossless=True))
    at = data.find(b"VP8X") + 12
    data[at : at + 6] = (side - 1).to_bytes(3, "little") * 2
    return bytes(data)


def psd_file() -> bytes:
    """A complete 64x64 RGB Photoshop file: Pillow could flatten it, so it must never try."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 64, 64, 8, 3)
    planes = np.zeros((3, 64, 64), np.uint8)
    planes[0], planes[2] = 200, 90
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + planes.tobytes()


def pdf_file() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 256 384] /Contents 4 0 R >>",
        b"<< /Length 35 >>\nstream\n0.9 0.8 0.2 rg 0 192 128 192 re f\nendstream",
    ]
    body, offsets = b"%PDF-1.4\n", []
    for number, content in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    xref += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    return body + xref + trailer % (len(objects) + 1, len(body))


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="384">'
    b'<rect width="256" height="384" fill="#283c6e"/>'
    b'<rect width="128" height="192" fill="#e6c828"/></svg>\n'
)
SVG_COMMENT_FIRST = (
    b"<!-- Exported from a vector editor -->\n"
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 384">'
    b'<circle cx="128" cy="192" r="60" fill="#ebc3a5"/></svg>\n'
)
EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 256 384\n%%EndComments\n"
    b"0.9 0.8 0.2 setrgbcolor 0 192 128 192 rectfill showpage\n%%EOF\n"
)


def wav_file() -> bytes:
    t = np.arange(8000) / 16000
    samples = (0.3 * np.sin(2 * math.pi * 220 * t) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


# -- the cases --------------------------------------------------------------------------------


def _accept(
    name: str,
    data: bytes,
    key: str,
    content_type: str,
    why: str,
    *,
    marker: Rgb = MARK,
    base: Rgb = BASE,
    background: Rgb | None = None,
    tolerance: int = 3,
) -> CorpusCase:
    expected = {
        "size": (WIDTH, HEIGHT),
        "marker": marker,
        "base": base,
        "background": background,
        "tolerance": tolerance,
    }
    return CorpusCase(name, "image", data, key, content_type, ACCEPT, expected, why)


def _refuse(name: str, data: bytes, key: str, content_type: str, code: str, why: str) -> CorpusCase:
    return CorpusCase(name, "image", data, key, content_type, code, {}, why)


def _accepts() -> list[CorpusCase]:
    jpeg = encode(rgb_image(), "JPEG", quality=92)
    cases = [
        _accept(
            "jpeg-baseline", jpeg, "portrait.jpg", "image/jpeg", "the common case", tolerance=12
        ),
        _accept(
            "jpeg-progressive",
            encode(rgb_image(), "JPEG", quality=92, progressive=True),
            "portrait-progressive.jpg",
            "image/jpeg",
            "what web exports and mozjpeg write",
            tolerance=12,
        ),
    ]
    for orientation in range(2, 9):
        stored = np.ascontiguousarray(stored_for_orientation(portrait(), orientation))
        cases.append(
            _accept(
                f"jpeg-exif-orientation-{orientation}",
                encode(
                    Image.fromarray(stored), "JPEG", quality=92, exif=exif_orientation(orientation)
                ),
                f"IMG_000{orientation}.JPG",
                "image/jpeg",
                "a phone held "
                + {
                    2: "mirrored (selfie, mirror on)",
                    3: "upside down",
                    4: "upside down and mirrored",
                    5: "sideways and mirrored",
                    6: "upright (sensor sideways): the usual phone portrait",
                    7: "sideways the other way and mirrored",
                    8: "sideways the other way",
                }[orientation],
                tolerance=12,
            )
        )
    cases += [
        _accept(
            "jpeg-cmyk-adobe",
            cmyk_jpeg(),
            "print-cmyk.jpg",
            "image/jpeg",
            "a print-ready export: Adobe-inverted CMYK",
            tolerance=12,
        ),
        _accept(
            "jpeg-ycck-adobe",
            ycck_jpeg(),
            "print-ycck.jpg",
            "image/jpeg",
            "Photoshop's compressed CMYK (YCCK, APP14 transform 2)",
            tolerance=12,
        ),
        _accept(
            "jpeg-grayscale",
            encode(rgb_image().convert("L"), "JPEG", quality=92),
            "bw.jpg",
            "image/jpeg",
            "a black-and-white photo (one channel)",
            marker=_grey(MARK),
            base=_grey(BASE),
            tolerance=12,
        ),
        _accept(
            "jpeg-display-p3-icc",
            p3_jpeg(),
            "iphone-p3.jpg",
            "image/jpeg",
            "a wide-gamut photo with its ICC profile: colours must be converted to sRGB",
            marker=p3_to_srgb(P3_MARK),
            base=p3_to_srgb(P3_BASE),
            tolerance=6,
        ),
        _accept(
            "png-16bit-grey",
            grey16_png(),
            "scan-16bit.png",
            "image/png",
            "16-bit grey: 32768 must become 128 (clipping makes it white)",
            marker=(233, 233, 233),
            base=(128, 128, 128),
            tolerance=1,
        ),
        _accept(
            "png-16bit-rgb",
            rgb16_png(),
            "render-16bit.png",
            "image/png",
            "16 bits a channel from a raw converter or renderer",
            tolerance=1,
        ),
        _accept(
            "png-palette-trns",
            encode(palette_image(True), "PNG", transparency=3),
            "palette.png",
            "image/png",
            "palette PNG whose transparent entry is magenta",
            background=WHITE,
            tolerance=1,
        ),
        _accept(
            "png-la-black-under-alpha",
            la_png(),
            "grey-alpha.png",
            "image/png",
            "grey with alpha, black under the transparent part",
            marker=(200, 200, 200),
            base=(60, 60, 60),
            background=WHITE,
            tolerance=1,
        ),
        _accept(
            "png-rgba-magenta-under-alpha",
            encode(rgba_image(MAGENTA), "PNG"),
            "cutout.png",
            "image/png",
            "a background-removed cut-out; the editor left magenta under alpha",
            background=WHITE,
            tolerance=1,
        ),
        _accept(
            "webp-rgba-green-under-alpha",
            encode(rgba_image(GREEN), "WEBP", lossless=True, exact=True),
            "cutout.webp",
            "image/webp",
            "a WebP cut-out keeping green under alpha (exact mode)",
            background=WHITE,
            tolerance=1,
        ),
        _accept(
            "avif-alpha",
            encode(rgba_image(MAGENTA), "AVIF", quality=90, max_threads=1),  # deterministic
            "cutout.avif",
            "image/avif",
            "AVIF with an alpha plane over magenta",
            background=WHITE,
            tolerance=20,
        ),
        _accept(
            "heic",
            encode(rgb_image(), "HEIF", quality=90),
            "IMG_4321.HEIC",
            "image/heic",
            "the iPhone default since 2017",
            tolerance=20,
        ),
        _accept(
            "bmp-24bit",
            encode(rgb_image(), "BMP"),
            "portrait.bmp",
            "image/bmp",
            "Windows Paint",
            tolerance=0,
        ),
        _accept(
            "bmp-32bit-alpha",
            bmp_32bit_alpha(),
            "portrait32.bmp",
            "image/bmp",
            "32-bit BMP with a V4 header and an alpha mask, magenta under alpha",
            background=WHITE,
            tolerance=0,
        ),
        _accept(
            "tiff-lzw",
            encode(rgb_image(), "TIFF", compression="tiff_lzw"),
            "scan.tif",
            "image/tiff",
            "a scanner's LZW TIFF",
            tolerance=0,
        ),
        _accept(
            "gif-transparency",
            encode(palette_image(True), "GIF", transparency=3),
            "sticker.gif",
            "image/gif",
            "GIF with a transparent (magenta) palette entry",
            background=WHITE,
            tolerance=0,
        ),
        _accept(
            "gif-animated",
            frames("GIF"),
            "wave.gif",
            "image/gif",
            "animated GIF: the first frame is the portrait",
            tolerance=0,
        ),
        _accept(
            "webp-animated",
            frames("WEBP", lossless=True),
            "wave.webp",
            "image/webp",
            "animated WebP: the first frame is the portrait",
            tolerance=1,
        ),
        _accept(
            "apng",
            frames("PNG"),
            "wave.png",
            "image/png",
            "animated PNG: the first frame is the portrait",
            tolerance=0,
        ),
        _accept(
            "jpeg-key-without-extension",
            jpeg,
            "portrait",
            "application/octet-stream",
            "no extension and a generic type: content decides",
            tolerance=12,
        ),
        _accept(
            "png-key-with-jpg-extension",
            encode(rgb_image(), "PNG"),
            "face.jpg",
            "image/jpeg",
            "a PNG renamed .jpg: the extension lies",
            tolerance=0,
        ),
        _accept(
            "webp-binary-octet-stream",
            encode(rgb_image(), "WEBP", quality=92),
            "face.webp",
            "binary/octet-stream",
            "S3's default content type when the uploader set none",
            tolerance=12,
        ),
    ]
    return cases


def _refusals() -> list[CorpusCase]:
    portrait_png = encode(rgb_image(), "PNG")
    animated_gif = frames("GIF")
    heic = encode(rgb_image(), "HEIF", quality=90)
    jpeg = encode(rgb_image(), "JPEG", quality=92)
    random_bytes = np.random.default_rng(SEED + 2).integers(1, 256, 4096, np.uint8).tobytes()
    return [
        _refuse(
            "png-10x10",
            encode(rgb_image().resize((10, 10)), "PNG"),
            "icon.png",
            "image/png",
            "image_too_small",
            "an icon, not a portrait",
        ),
        _refuse(
            "jpeg-40x300",
            encode(rgb_image().resize((40, 300)), "JPEG"),
            "thin.jpg",
            "image/jpeg",
            "image_too_small",
            "the short side is under 64 px",
        ),
        _refuse(
            "png-2000x100-strip",
            encode(rgb_image().resize((2000, 100)), "PNG"),
            "banner.png",
            "image/png",
            "image_too_small",
            "a 20:1 banner: beyond the 4:1 the model can frame",
        ),
        _refuse(
            "png-8200x8000-flat",
            flat_png(8200, 8000, 8, 2, bytes(BASE) * 8200),
            "poster.png",
            "image/png",
            "image_too_large",
            "a genuine 65.6 MP picture in 211 KB (311 pixels a byte): large, not a bomb",
        ),
        _refuse(
            "png-1bit-20000x20000-flat",
            flat_png(20000, 20000, 1, 0, bytes(2500)),
            "huge-bilevel.png",
            "image/png",
            "decompression_bomb",
            "a genuine 400 MP 1-bit PNG in 49 KB: 8000 pixels a byte",
        ),
        _refuse(
            "png-header-100000x100000",
            png_file(100_000, 100_000, 8, 2, zlib.compress(bytes(64))),
            "bomb.png",
            "image/png",
            "decompression_bomb",
            "a 10-gigapixel header over a 100-byte body",
        ),
        _refuse(
            "jpeg-sof-65500x65500",
            jpeg_claiming(65500, 65500),
            "bomb.jpg",
            "image/jpeg",
            "decompression_bomb",
            "a small JPEG whose frame header claims 4.3 gigapixels",
        ),
        _refuse(
            "gif-screen-65535x65535",
            gif_claiming(65535, 65535),
            "bomb.gif",
            "image/gif",
            "decompression_bomb",
            "a small GIF whose logical screen claims 4.3 gigapixels",
        ),
        _refuse(
            "webp-canvas-16383x16383",
            webp_claiming(16383),
            "bomb.webp",
            "image/webp",
            "decompression_bomb",
            "an animated WebP whose canvas claims the format's maximum, 268 MP",
        ),
        _refuse(
            "jpeg-progressive-300-scans",
            jpeg_many_scans(300),
            "scans.jpg",
            "image/jpeg",
            "decompression_bomb",
            "a progressive JPEG of 300 scans: a CPU bomb at any size",
        ),
        _refuse(
            "png-header-7000x7000-no-data",
            png_file(7000, 7000, 8, 2, zlib.compress(bytes(64))),
            "claims.png",
            "image/png",
            "image_invalid",
            "49 MP claimed (under the limit) with no data: decoding fails, memory stays bounded",
        ),
        _refuse(
            "jpeg-truncated",
            jpeg[: len(jpeg) * 3 // 5],
            "cut.jpg",
            "image/jpeg",
            "image_invalid",
            "an upload cut short",
        ),
        _refuse(
            "png-truncated",
            portrait_png[: len(portrait_png) * 2 // 3],
            "cut.png",
            "image/png",
            "image_invalid",
            "an upload cut short",
        ),
        _refuse(
            "png-bad-idat-crc",
            png_with(_flip_crc),
            "crc.png",
            "image/png",
            "image_invalid",
            "a flipped bit in an IDAT CRC (Pillow does not check it)",
        ),
        _refuse(
            "png-corrupt-deflate",
            png_with(_flip_deflate),
            "deflate.png",
            "image/png",
            "image_invalid",
            "broken compressed data under a valid CRC",
        ),
        _refuse(
            "jpeg-garbage-entropy",
            jpeg_with_garbage(progressive=False),
            "garbage.jpg",
            "image/jpeg",
            "image_invalid",
            "random bytes inside the compressed data of a baseline JPEG",
        ),
        _refuse(
            "jpeg-progressive-garbage-entropy",
            jpeg_with_garbage(progressive=True),
            "garbage-progressive.jpg",
            "image/jpeg",
            "image_invalid",
            "random bytes inside a progressive scan (libjpeg only warns)",
        ),
        _refuse(
            "gif-animated-truncated",
            animated_gif[: len(animated_gif) * 3 // 4],
            "cut.gif",
            "image/gif",
            "image_invalid",
            "cut inside its second frame (the first still decodes)",
        ),
        _refuse(
            "heic-truncated",
            heic[: len(heic) * 2 // 3],
            "cut.heic",
            "image/heic",
            "image_invalid",
            "an upload cut short",
        ),
        _refuse(
            "random-bytes",
            random_bytes,
            "photo.jpg",
            "image/jpeg",
            "image_invalid",
            "4 KB of noise",
        ),
        _refuse(
            "text-file",
            b"This is my profile picture, please use it.\n" * 20,
            "portrait.png",
            "image/png",
            "image_invalid",
            "a note saved under an image name",
        ),
        _refuse("empty-file", b"", "portrait.jpg", "image/jpeg", "image_invalid", "zero bytes"),
        _refuse(
            "jpeg-signature-only",
            b"\xff\xd8\xff",
            "portrait.jpg",
            "image/jpeg",
            "image_invalid",
            "a JPEG's first three bytes and nothing else",
        ),
        _refuse("svg", SVG, "portrait.svg", "image/svg+xml", "unsupported_format", "vector art"),
        _refuse(
            "svg-comment-first",
            SVG_COMMENT_FIRST,
            "avatar.svg",
            "image/svg+xml",
            "unsupported_format",
            "SVG that opens with a comment, no XML declaration",
        ),
        _refuse(
            "pdf", pdf_file(), "portrait.pdf", "application/pdf", "unsupported_format", "a document"
        ),
        _refuse(
            "psd",
            psd_file(),
            "portrait.psd",
            "image/vnd.adobe.photoshop",
            "unsupported_format",
            "a Photoshop document (layers, not a photo)",
        ),
        _refuse(
            "eps", EPS, "portrait.eps", "application/postscript", "unsupported_format", "PostScript"
        ),
        _refuse(
            "wav-named-jpg",
            wav_file(),
            "face.jpg",
            "image/jpeg",
            "unsupported_format",
            "audio sent as the image",
        ),
    ]


@functools.cache
def image_cases() -> list[CorpusCase]:
    """Every image case, accepts first; the same bytes on every call and every machine."""
    pillow_heif.register_heif_opener()  # lets Pillow write HEIC
    return [*_accepts(), *_refusals()]
