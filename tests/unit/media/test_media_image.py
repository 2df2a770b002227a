"""load_portrait's rules one at a time; tests/unit/media/test_image_corpus.py runs the corpus."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from modal_service.image_rules import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from modal_service.media import image as portrait_module
from modal_service.media import image_colour
from modal_service.media.errors import ImageError
from modal_service.media.image import (
    BACKGROUND,
    load_portrait,
)
from modal_service.media.image_structure import MAX_JPEG_SCANS
from scripts.bench.input_bombs import measure
from scripts.corpus.images import (
    flat_png,
    jpeg_many_scans,
    p3_jpeg,
    png_chunk,
    png_file,
    portrait,
)
from scripts.corpus.images import image_cases as corpus_cases
from tests.unit.media.conftest import draw_portrait

REPO = Path(__file__).resolve().parents[3]
IMAGE_CODES = {
    "image_invalid",
    "image_too_small",
    "image_too_large",
    "unsupported_format",
    "decompression_bomb",
}
NAME = "the reference image (me.png)"


def load(path: Path) -> Image.Image:
    return load_portrait(path, NAME)


def refusal(path: Path) -> ImageError:
    with pytest.raises(ImageError) as err:
        load(path)
    assert err.value.message.startswith(NAME), err.value.message
    assert str(path.parent) not in err.value.message  # never the worker's own file
    return err.value


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# -- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix", [".png", ".jpg", ".webp", ".gif", ".bmp", ".tiff", ".avif", ".heic"]
)
def test_every_listed_format_loads_as_8bit_rgb(tmp_path: Path, suffix: str) -> None:
    image = load(draw_portrait(tmp_path / f"face{suffix}"))
    assert (image.mode, image.size) == ("RGB", (320, 480))
    assert np.asarray(image).dtype == np.uint8
    assert image.info == {}  # the file's profile and EXIF no longer describe these pixels


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = draw_portrait(tmp_path / "rotated.jpg", size=(320, 480), exif=exif)
    assert load(path).size == (480, 320)


def test_pillow_only_ever_gets_the_sniffed_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []
    real_open = Image.open

    def spy(fp: object, mode: str = "r", formats: object = None) -> Image.Image:
        seen.append(formats)
        return real_open(fp, mode, formats)  # type: ignore[arg-type]

    monkeypatch.setattr(portrait_module.Image, "open", spy)
    load(draw_portrait(tmp_path / "face.jpg"))
    load(draw_portrait(tmp_path / "face.gif"))
    assert seen == [["JPEG"], ["GIF"]]


def test_documents_pillow_could_rasterise_are_never_opened(tmp_path: Path) -> None:
    psd = next(case for case in corpus_cases() if case.name == "psd")
    path = write(tmp_path / "layers.psd", psd.data)
    with Image.open(path) as opened:  # Pillow itself would flatten this Photoshop file
        assert opened.format == "PSD"
    assert refusal(path).code == "unsupported_format"


@pytest.mark.parametrize(("fmt", "suffix"), [("ICO", "ico"), ("PCX", "pcx"), ("TGA", "tga")])
def test_other_formats_pillow_reads_are_refused(tmp_path: Path, fmt: str, suffix: str) -> None:
    data = encoded(Image.new("RGB", (128, 128), (200, 30, 30)), fmt)
    assert refusal(write(tmp_path / f"face.{suffix}", data)).code == "image_invalid"


def test_bigtiff_is_a_tiff(tmp_path: Path) -> None:
    data = encoded(Image.fromarray(portrait()), "TIFF", big_tiff=True)
    assert load(write(tmp_path / "scan.tif", data)).size == (256, 384)


def test_heif_opener_is_registered_lazily_and_once() -> None:
    script = textwrap.dedent(
        """
        import io, sys, tempfile
        from pathlib import Path
        from PIL import Image
        from modal_service.media import image as module
        work = Path(tempfile.mkdtemp())
        png = work / "a.png"
        Image.new("RGB", (96, 96), (1, 2, 3)).save(png)
        module.load_portrait(png, "x")
        print("pillow_heif" in sys.modules)
        import pillow_heif
        calls = []
        real = pillow_heif.register_heif_opener
        pillow_heif.register_heif_opener = lambda **kw: (calls.append(kw), real(**kw))
        picture = Image.new("RGB", (96, 96), (1, 2, 3))
        pillow_heif.from_pillow(picture).save(work / "b.heic")  # writes without the opener
        for _ in range(2):
            module.load_portrait(work / "b.heic", "x")
        print(len(calls))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "1"], done.stderr


# -- size rules -------------------------------------------------------------------------------


def test_too_small(tmp_path: Path) -> None:
    err = refusal(draw_portrait(tmp_path / "tiny.png", size=(MIN_IMAGE_SIDE - 1, 300)))
    assert err.code == "image_too_small"
    assert "63x300" in err.message


def test_aspect_ratio_limit_is_four_to_one_either_way(tmp_path: Path) -> None:
    assert load(draw_portrait(tmp_path / "wide.png", size=(256, 64))).size == (256, 64)
    assert load(draw_portrait(tmp_path / "tall.png", size=(64, 256))).size == (64, 256)
    for size in [(257, 64), (64, 257)]:
        err = refusal(draw_portrait(tmp_path / "strip.png", size=size))
        assert err.code == "image_too_small"
        assert "4 times" in err.message


def _header_png(width: int, height: int, padding: int = 0) -> bytes:
    """A PNG header claiming ``width`` x ``height``, a token of image data, ``padding`` bytes."""
    extra = png_chunk(b"prVt", bytes(padding)) if padding else b""
    return png_file(width, height, 8, 2, zlib.compress(bytes(64)), extra)


def test_pixel_limit_boundary(tmp_path: Path) -> None:
    # 8000 x 8000 is exactly the limit: allowed to decode (and this one has no data).
    assert MAX_IMAGE_PIXELS == 8000 * 8000
    assert refusal(write(tmp_path / "a.png", _header_png(8000, 8000))).code == "image_invalid"
    assert refusal(write(tmp_path / "b.png", _header_png(8001, 8000))).code != "image_invalid"


def test_bomb_rule_is_a_thousand_pixels_a_byte(tmp_path: Path) -> None:
    pixels = 8001 * 8000
    plain = len(_header_png(8001, 8000))
    padding = pixels // 1000 - plain  # the file now holds exactly one byte per 1000 pixels
    big = write(tmp_path / "big.png", _header_png(8001, 8000, padding - 12))
    assert big.stat().st_size * 1000 >= pixels
    assert refusal(big).code == "image_too_large"
    bomb = write(tmp_path / "bomb.png", _header_png(8001, 8000, padding - 13))
    assert bomb.stat().st_size * 1000 < pixels
    assert refusal(bomb).code == "decompression_bomb"


@pytest.mark.parametrize("side", [9_000, 30_000, 100_000])
def test_decompression_bombs_are_refused_before_decoding(tmp_path: Path, side: int) -> None:
    assert side * side > MAX_IMAGE_PIXELS
    assert refusal(write(tmp_path / "bomb.png", _header_png(side, side))).code == (
        "decompression_bomb"
    )


def test_progressive_scan_limit(tmp_path: Path) -> None:
    at_limit = _outcome(write(tmp_path / "a.jpg", jpeg_many_scans(MAX_JPEG_SCANS)))
    assert isinstance(at_limit, Image.Image)  # libjpeg takes the repeated scan, a refinement
    over = refusal(write(tmp_path / "b.jpg", jpeg_many_scans(MAX_JPEG_SCANS + 1)))
    assert over.code == "decompression_bomb"


def test_the_largest_accepted_picture_stays_under_a_gigabyte() -> None:
    """64 MP of half-transparent RGBA: the most memory any accepted file makes the load use,
    measured in a fresh process by its own high-water mark (as the benchmark does)."""
    side_w, side_h = 8000, MAX_IMAGE_PIXELS // 8000
    figures = measure("image", flat_png(side_w, side_h, 8, 6, bytes([10, 20, 30, 128]) * side_w))
    assert figures["outcome"] == "accepted"
    assert figures["worker_peak_rss_mb"] < 1024, figures


# -- strict decoding ---------------------------------------------------------------------------


def test_not_an_image(tmp_path: Path) -> None:
    assert refusal(write(tmp_path / "face.png", b"definitely not a png" * 50)).code == (
        "image_invalid"
    )


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".gif", ".webp", ".bmp", ".avif", ".heic"])
def test_truncated_image_is_invalid(tmp_path: Path, suffix: str) -> None:
    path = draw_portrait(tmp_path / f"face{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert refusal(path).code == "image_invalid"


def test_png_crc_checked_in_every_chunk(tmp_path: Path) -> None:
    data = bytearray(draw_portrait(tmp_path / "face.png").read_bytes())
    data[-5] ^= 1  # IEND's CRC: Pillow never reads it
    assert refusal(write(tmp_path / "crc.png", bytes(data))).code == "image_invalid"


def test_png_must_reach_iend(tmp_path: Path) -> None:
    data = draw_portrait(tmp_path / "face.png").read_bytes()
    assert refusal(write(tmp_path / "cut.png", data[:-12])).code == "image_invalid"


def test_what_real_files_carry_after_the_end_is_allowed(tmp_path: Path) -> None:
    jpeg = draw_portrait(tmp_path / "face.jpg").read_bytes()
    thumb = encoded(Image.new("RGB", (64, 96), (9, 9, 9)), "JPEG")
    assert load(write(tmp_path / "mpf.jpg", jpeg + thumb)).size == (320, 480)  # phones' MPF
    png = draw_portrait(tmp_path / "face.png").read_bytes()
    assert load(write(tmp_path / "tail.png", png + b"\0" * 100)).size == (320, 480)


def test_gif_without_its_trailer_byte_is_allowed(tmp_path: Path) -> None:
    gif = draw_portrait(tmp_path / "face.gif").read_bytes()
    assert gif.endswith(b"\x3b")
    assert load(write(tmp_path / "notrailer.gif", gif[:-1])).size == (320, 480)


@pytest.mark.parametrize(
    "options",
    [
        {"progressive": True, "optimize": True},
        {"restart_marker_blocks": 1},
        {"restart_marker_rows": 1, "subsampling": 0},
        {"comment": b"\xff\xd9 an end marker inside a comment"},
    ],
    ids=["progressive-optimized", "restart-blocks", "restart-rows-444", "comment"],
)
def test_jpeg_encoder_variants_pass_the_marker_walk(tmp_path: Path, options: dict) -> None:
    assert load(draw_portrait(tmp_path / "face.jpg", **options)).size == (320, 480)


# -- colour -----------------------------------------------------------------------------------


def _centre(image: Image.Image) -> tuple[int, ...]:
    return image.getpixel((image.width // 2, image.height // 2))  # type: ignore[return-value]


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grey_is_scaled_not_clipped(tmp_path: Path, fmt: str) -> None:
    for level, want in [(0, 0), (32768, 128), (65535, 255)]:
        grey = Image.fromarray(np.full((96, 96), level, np.uint16))  # mode I;16
        image = load(write(tmp_path / "grey", encoded(grey, fmt)))
        assert _centre(image) == (want, want, want), level


@pytest.mark.parametrize(
    ("values", "want"),
    [
        (np.full((96, 96), 0.5, np.float32), 128),  # float in unit range
        (np.full((96, 96), 32768, np.int32), 128),  # 32-bit int holding 16-bit data
        (np.full((96, 96), 200, np.int32), 200),  # 32-bit int holding 8-bit data
    ],
    ids=["float-unit", "int-16bit-range", "int-8bit-range"],
)
def test_32bit_grey_is_scaled_by_its_range(tmp_path: Path, values: np.ndarray, want: int) -> None:
    tiff = encoded(Image.fromarray(values), "TIFF")
    assert _centre(load(write(tmp_path / "grey.tif", tiff))) == (want, want, want)


def test_16bit_grey_with_a_transparent_value(tmp_path: Path) -> None:
    values = np.full((96, 96), 1000, np.uint16)
    values[:48] = 40000
    data = encoded(Image.fromarray(values), "PNG", transparency=1000)
    image = load(write(tmp_path / "trns.png", data))
    assert image.getpixel((10, 10)) == (156, 156, 156)
    assert image.getpixel((10, 80)) == BACKGROUND


def test_lab_tiff_goes_through_littlecms(tmp_path: Path) -> None:
    lab = Image.new("LAB", (96, 96), (128, 128, 128))  # L* 50, a* 0, b* 0: a neutral mid-grey
    red, green, blue = _centre(load(write(tmp_path / "lab.tif", encoded(lab, "TIFF"))))
    assert red == green == blue
    assert abs(red - 119) <= 2


def test_icc_profile_converts_to_srgb(tmp_path: Path) -> None:
    path = write(tmp_path / "p3.jpg", p3_jpeg())
    converted = load(path).getpixel((64, 96))
    raw = Image.open(path).convert("RGB").getpixel((64, 96))
    assert max(abs(a - b) for a, b in zip(converted, raw, strict=True)) > 10


def test_without_littlecms_pixels_pass_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "p3.jpg", p3_jpeg())
    monkeypatch.setattr(image_colour, "ImageCms", None)
    assert load(path).getpixel((64, 96)) == Image.open(path).convert("RGB").getpixel((64, 96))


@pytest.mark.parametrize(
    "profile",
    [
        b"not an icc profile at all",
        ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes(),
    ],
    ids=["garbage", "lab-profile-on-rgb-pixels"],
)
def test_an_unusable_profile_is_ignored(tmp_path: Path, profile: bytes) -> None:
    path = draw_portrait(tmp_path / "face.png", icc_profile=profile)
    assert load(path).getpixel((5, 5)) == (90, 120, 160)


def test_srgb_profile_leaves_colours_alone(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = draw_portrait(tmp_path / "face.png", icc_profile=srgb)
    shown = np.array(load(path).getpixel((5, 5)))
    assert np.abs(shown - (90, 120, 160)).max() <= 1


def test_half_transparent_pixels_blend_with_the_background(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (96, 96), (0, 0, 0, 128))
    image = load(write(tmp_path / "half.png", encoded(rgba, "PNG")))
    assert _centre(image) == (127, 127, 127)  # half black over white


def test_premultiplied_tiff_alpha(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (96, 96), (200, 100, 50, 255))
    rgba.paste((0, 0, 0, 0), (0, 48, 96, 96))  # premultiplied and straight agree here
    data = bytearray(encoded(rgba, "TIFF"))
    ifd = int.from_bytes(data[4:8], "little")
    for entry in range(ifd + 2, ifd + 2 + 12 * int.from_bytes(data[ifd : ifd + 2], "little"), 12):
        if data[entry : entry + 2] == (338).to_bytes(2, "little"):  # ExtraSamples
            data[entry + 8] = 1  # 2 = unassociated alpha, 1 = associated (premultiplied)
    image = load(write(tmp_path / "premultiplied.tif", bytes(data)))  # Pillow unpremultiplies
    assert image.getpixel((10, 10)) == (200, 100, 50)
    assert image.getpixel((10, 80)) == BACKGROUND


# -- robustness --------------------------------------------------------------------------------

_ACCEPTED = [case for case in corpus_cases() if case.accepted]


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    which=st.integers(0, len(_ACCEPTED) - 1),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
    edits=st.lists(st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=16)), max_size=4),
)
def test_damaged_files_end_in_an_image_or_an_image_error(
    tmp_path: Path, which: int, cut: float | None, edits: list[tuple[float, bytes]]
) -> None:
    """Cut and overwritten corpus files: an RGB picture or an ImageError, never anything else."""
    data = bytearray(_ACCEPTED[which].data)
    for where, replacement in edits:
        at = int(where * (len(data) - 1))
        data[at : at + len(replacement)] = replacement
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = write(tmp_path / "damaged", bytes(data))
    outcome = _outcome(path)
    if isinstance(outcome, ImageError):
        assert outcome.code in IMAGE_CODES, outcome
        assert outcome.message.startswith(NAME)
    else:
        assert outcome.mode == "RGB"
        assert min(outcome.size) >= MIN_IMAGE_SIDE


def _outcome(path: Path) -> Image.Image | ImageError:
    try:
        return load_portrait(path, NAME)
    except ImageError as err:
        return err
