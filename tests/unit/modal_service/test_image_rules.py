"""The portrait's size rules and header dimensions, which the submit path applies to an
object's first bytes: they must read every header exactly as the worker's decoder does, and
refuse from those bytes exactly what the worker would refuse."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from modal_service.image_rules import (
    MAX_IMAGE_PIXELS,
    header_dimensions,
    image_size_refusal,
)
from modal_service.sniff import SNIFF_BYTES, first_bytes_refusal
from scripts.corpus import CorpusCase
from scripts.corpus.images import image_cases

CASES = image_cases()
SIZE_CODES = {"image_too_small", "image_too_large", "decompression_bomb"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_header_dimensions_agree_with_the_decoder(case: CorpusCase) -> None:
    declared = header_dimensions(case.data[:SNIFF_BYTES])
    if declared is None:
        return  # not read at submit: the worker decides (TIFF, HEIF, AVIF, a late JPEG SOF)
    if case.expect in SIZE_CODES or not case.accepted:
        # Refused files may not open in Pillow at all (a header with no data): the header
        # reading is checked by the refusal test below instead.
        return
    with Image.open(io.BytesIO(case.data)) as image:
        assert declared == image.size, case.name


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_what_the_submit_path_refuses_the_worker_refuses_with_the_same_code(
    case: CorpusCase,
) -> None:
    refusal = first_bytes_refusal("image", case.data[:SNIFF_BYTES], len(case.data))
    if refusal is not None:
        assert refusal[0] == case.expect, (case.name, refusal)
    else:
        assert case.expect not in {"unsupported_format"}, case.name


def test_the_corpus_size_refusals_mostly_happen_at_submit() -> None:
    early = [
        case.name
        for case in CASES
        if case.expect in SIZE_CODES
        and first_bytes_refusal("image", case.data[:SNIFF_BYTES], len(case.data)) is not None
    ]
    assert len(early) >= 6, early


@pytest.mark.parametrize(
    ("size", "file_size", "code"),
    [
        ((256, 384), 10_000, None),
        ((63, 300), 10_000, "image_too_small"),
        ((400, 1601), 10_000, "image_too_small"),
        ((400, 1600), 10_000, None),
        ((8001, 8000), 50_000_000, "image_too_large"),
        ((8001, 8000), 60_000, "decompression_bomb"),
    ],
)
def test_size_rules(size: tuple[int, int], file_size: int, code: str | None) -> None:
    refusal = image_size_refusal(*size, file_size)
    assert (refusal[0] if refusal else None) == code
    assert MAX_IMAGE_PIXELS == 64_000_000


def _png_header(width: int, height: int) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        + width.to_bytes(4, "big")
        + height.to_bytes(4, "big")
    )


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (_png_header(640, 480), (640, 480)),
        (b"GIF89a" + (300).to_bytes(2, "little") + (200).to_bytes(2, "little"), (300, 200)),
        (_png_header(0, 480), None),  # no such picture: the worker will say what is wrong
        (b"\xff\xd8\xff\xe1\x40\x00" + b"\x00" * 100, None),  # a long EXIF before the frame
        (b"II*\x00\x08\x00\x00\x00", None),  # TIFF: left to the worker
    ],
)
def test_header_dimensions_or_none(head: bytes, expected: tuple[int, int] | None) -> None:
    assert header_dimensions(head) == expected
