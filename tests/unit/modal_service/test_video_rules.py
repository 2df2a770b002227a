"""The source video's rules both sides apply, and the lengths the submit path reads from an MP4
or Matroska header: they must agree with what the worker's probe finds."""

from __future__ import annotations

import struct

import pytest

from modal_service.sniff import SNIFF_BYTES, first_bytes_refusal
from modal_service.video_rules import (
    MAX_VIDEO_BYTES,
    header_duration,
    video_bytes_refusal,
    video_length_refusal,
    video_size_refusal,
)
from scripts.corpus.video import video_cases

CASES = {case.name: case for case in video_cases()}


@pytest.mark.parametrize(
    ("size", "fps", "code"),
    [
        ((1080, 1920), 30.0, None),  # a phone held upright
        ((3840, 2160), 60.0, None),  # UHD at 60 fps
        ((4096, 2160), 60.0, None),  # DCI 4K at 60 fps: the decode-rate limit itself
        ((64, 64), None, None),
        ((256, 64), 25.0, None),  # 4:1, the widest bucket
        ((63, 200), 25.0, "video_invalid"),
        ((257, 64), 25.0, "video_invalid"),
        ((4097, 2160), 25.0, "video_too_large"),
        ((3840, 2160), 120.0, "video_too_large"),
    ],
)
def test_size_and_decode_rate(size: tuple[int, int], fps: float | None, code: str | None) -> None:
    refusal = video_size_refusal(*size, fps)
    assert (refusal[0] if refusal else None) == code


def test_lengths_and_bytes_refuse_with_readable_reasons() -> None:
    assert video_length_refusal(600.2, 600.0) is None  # container rounding passes
    code, reason = video_length_refusal(900.0, 600.0)
    assert (code, reason) == (
        "video_too_long",
        "lasts 15.0 min; this deployment takes at most 10.0 min",
    )
    assert video_bytes_refusal(MAX_VIDEO_BYTES, MAX_VIDEO_BYTES) is None
    code, reason = video_bytes_refusal(3 << 30, MAX_VIDEO_BYTES)
    assert code == "video_too_large"
    assert "3072.0 MB" in reason
    assert "2048.0 MB" in reason


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("mp4-faststart", 2.0),
        ("webm-vp9", 1.2),
        ("mkv-h264", 1.6),
        # moov after mdat (what phones write), or a header with no Duration (MediaRecorder):
        ("mp4-h264-aac-30fps", None),
        ("mov-h264-24fps", None),
        ("webm-vp8-opus-piped", None),
    ],
)
def test_header_lengths_are_what_the_worker_reads(name: str, seconds: float | None) -> None:
    stated = header_duration(CASES[name].data[:SNIFF_BYTES])
    assert stated == (None if seconds is None else pytest.approx(seconds, abs=0.01))


def test_a_64_bit_mvhd_and_unknown_lengths() -> None:
    def mvhd(version: int, timescale: int, duration: int) -> bytes:
        times = struct.pack(">QQIQ" if version else ">IIII", 0, 0, timescale, duration)
        body = bytes([version, 0, 0, 0]) + times + b"\x00" * 80
        return struct.pack(">I", 8 + len(body)) + b"mvhd" + body

    ftyp = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00"
    for box, expected in [
        (mvhd(1, 1000, 7_200_000), 7200.0),
        (mvhd(0, 600, 1800), 3.0),
        (mvhd(0, 1000, 0xFFFFFFFF), None),  # "unknown", as fragmented writers leave it
    ]:
        head = ftyp + struct.pack(">I", 8 + len(box)) + b"moov" + box
        assert header_duration(head) == expected


def test_the_submit_path_refuses_a_long_faststart_mp4_and_a_huge_file() -> None:
    head = CASES["mp4-faststart"].data[:SNIFF_BYTES]
    assert first_bytes_refusal("video", head, 20_000, max_video_s=2.5) is None
    assert first_bytes_refusal("video", head, 20_000, max_video_s=1.0)[0] == "video_too_long"
    refusal = first_bytes_refusal("video", head, 20_000, max_video_bytes=10_000)
    assert refusal[0] == "video_too_large"
    assert first_bytes_refusal("video", b"", 0)[0] == "video_invalid"
