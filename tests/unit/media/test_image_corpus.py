"""Every image of the corpus (``scripts/corpus/images.py``) through :func:`load_portrait`.

Accepts must come out as the picture they hold: 8-bit RGB, upright, the marked quadrant top-left,
the background (never the colour hidden under alpha) where alpha was, 16-bit mid-grey at 128.
Refusals must carry exactly their code and name the caller's input, never the worker's file.
Bombs are refused in bounded memory and time, measured in a fresh process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from modal_service.media.errors import ImageError
from modal_service.media.image import load_portrait
from modal_service.sniff import sniff
from scripts.bench.input_bombs import measure
from scripts.corpus import CorpusCase
from scripts.corpus.images import BLACK, GREEN, MAGENTA, image_cases

REPO = Path(__file__).resolve().parents[3]
CASES = image_cases()
ACCEPTS = [case for case in CASES if case.accepted]
REFUSALS = [case for case in CASES if not case.accepted]
BOMBS = [
    case.name
    for case in REFUSALS
    if case.expect in ("decompression_bomb", "image_too_large")
    or case.name == "png-header-7000x7000-no-data"  # under the limit: decoded, must stay bounded
]
IMAGE_CODES = {
    "image_invalid",
    "image_too_small",
    "image_too_large",
    "unsupported_format",
    "decompression_bomb",
}


def _ids(cases: list[CorpusCase]) -> list[str]:
    return [case.name for case in cases]


def _load(tmp_path: Path, case: CorpusCase) -> Image.Image:
    path = tmp_path / "input.download"  # the worker's kind of name: it must never show
    path.write_bytes(case.data)
    return load_portrait(path, f"the reference image ({case.key})")


def _distance(a: tuple[float, ...], b: tuple[int, ...]) -> float:
    return float(np.abs(np.subtract(a, b)).max())


def _quadrant(pixels: np.ndarray, right: bool, bottom: bool) -> tuple[float, ...]:
    """Mean colour of a 17x17 patch at the quadrant's centre (away from the face and edges)."""
    height, width = pixels.shape[:2]
    x, y = width * (3 if right else 1) // 4, height * (3 if bottom else 1) // 4
    return tuple(pixels[y - 8 : y + 9, x - 8 : x + 9].reshape(-1, 3).mean(axis=0))


@pytest.mark.parametrize("case", ACCEPTS, ids=_ids(ACCEPTS))
def test_accepted_as_the_picture_it_holds(tmp_path: Path, case: CorpusCase) -> None:
    image = _load(tmp_path, case)
    assert image.mode == "RGB"
    assert image.size == case.expected["size"]
    pixels = np.asarray(image)
    assert pixels.dtype == np.uint8

    expected, tolerance = case.expected, case.expected["tolerance"] + 1
    wanted = {
        "top-left": expected["marker"],
        "top-right": expected["base"],
        "bottom-left": expected["base"],
        "bottom-right": expected["background"] or expected["base"],
    }
    for (place, colour), (right, bottom) in zip(
        wanted.items(), [(False, False), (True, False), (False, True), (True, True)], strict=True
    ):
        found = _quadrant(pixels, right, bottom)
        assert _distance(found, colour) <= tolerance, (place, found, colour)
    if expected["background"] is not None:
        corner = _quadrant(pixels, True, True)
        for hidden in (MAGENTA, GREEN, BLACK):
            assert _distance(corner, hidden) > 100, ("the colour under alpha shows", corner)


@pytest.mark.parametrize("case", REFUSALS, ids=_ids(REFUSALS))
def test_refused_with_its_code(tmp_path: Path, case: CorpusCase) -> None:
    with pytest.raises(ImageError) as err:
        _load(tmp_path, case)
    assert err.value.code == case.expect, err.value.message
    assert err.value.message.startswith(f"the reference image ({case.key}) ")
    assert "input.download" not in err.value.message
    assert str(tmp_path) not in err.value.message


def test_the_corpus_covers_what_the_issue_lists() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) >= 40
    assert {sniff(case.data[:4096]).name for case in ACCEPTS} >= {
        "jpeg",
        "png",
        "webp",
        "avif",
        "heif",
        "bmp",
        "tiff",
        "gif",
    }
    assert {case.expect for case in REFUSALS} == IMAGE_CODES
    assert {f"jpeg-exif-orientation-{n}" for n in range(2, 9)} <= set(names)
    assert {"application/octet-stream", "binary/octet-stream"} <= {c.content_type for c in ACCEPTS}
    assert any("." not in case.key for case in ACCEPTS)
    for case in ACCEPTS:  # the checks above can only tell the quadrants apart if they differ
        assert _distance(case.expected["marker"], case.expected["base"]) > 60, case.name


def test_the_corpus_is_deterministic_small_and_quick() -> None:
    started = time.monotonic()
    again = image_cases.__wrapped__()  # built afresh, bypassing the cache
    assert time.monotonic() - started < 15
    assert [(c.name, c.data) for c in again] == [(c.name, c.data) for c in CASES]
    assert sum(len(case.data) for case in CASES) < 3_000_000


@pytest.mark.parametrize("name", BOMBS)
def test_bombs_are_refused_in_bounded_memory_and_time(name: str, record_property: Any) -> None:
    """Each in a fresh process (``ru_maxrss`` is a high-water mark), as the benchmark does."""
    case = next(case for case in REFUSALS if case.name == name)
    figures = measure("image", case.data)
    record_property("bomb", {"name": f"image/{name}", **figures})
    assert figures["outcome"] == case.expect, figures
    assert figures["seconds"] < 5, figures  # a ceiling for a runaway decode, not a benchmark
    assert figures["peak_rss_sum_mb"] < 1024, figures
