"""The audio length rules both sides apply, and the FLAC length the submit path reads: it must
agree with what the worker's decoder finds, and refuse early exactly what the worker refuses."""

from __future__ import annotations

import pytest

from modal_service.audio_rules import flac_duration, length_refusal
from modal_service.sniff import SNIFF_BYTES, first_bytes_refusal
from scripts.corpus import CorpusCase
from scripts.corpus.audio import CORPUS_MAX_S, audio_cases

CASES = audio_cases()
FLACS = [case for case in CASES if case.data[:4] == b"fLaC"]


@pytest.mark.parametrize("case", FLACS, ids=[case.name for case in FLACS])
def test_flac_headers_state_the_length_the_worker_decodes(case: CorpusCase) -> None:
    stated = flac_duration(case.data[:SNIFF_BYTES])
    if case.accepted and "truncated" not in case.name:
        assert stated == pytest.approx(case.expected["duration_s"], abs=0.01), case.name


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_what_the_submit_path_refuses_the_worker_refuses_with_the_same_code(
    case: CorpusCase,
) -> None:
    refusal = first_bytes_refusal("audio", case.data[:SNIFF_BYTES], len(case.data), CORPUS_MAX_S)
    if refusal is not None:
        assert refusal[0] == case.expect, (case.name, refusal)


def test_both_flac_bombs_are_refused_before_a_job_exists() -> None:
    bombs = [case for case in FLACS if case.expect == "decompression_bomb"]
    assert len(bombs) == 2
    for case in bombs:
        refusal = first_bytes_refusal("audio", case.data[:SNIFF_BYTES], len(case.data), 15.0)
        assert refusal is not None
        assert refusal[0] == "decompression_bomb"


@pytest.mark.parametrize(
    ("seconds", "size_bytes", "code"),
    [
        (15.2, 10, None),  # within the padding slack
        (16.0, 1_000_000, "audio_too_long"),
        (660.0, 660_000, "audio_too_long"),  # an 8 kbit/s MP3: long, not a bomb
        (36_000.0, 60_000, "decompression_bomb"),  # 10 h in 60 KB
    ],
)
def test_length_rules(seconds: float, size_bytes: int, code: str | None) -> None:
    refusal = length_refusal(seconds, size_bytes, 15.0)
    assert (refusal[0] if refusal else None) == code


def test_a_flac_header_with_unknown_length_says_nothing() -> None:
    streaminfo = bytes(10) + bytes([0x0A, 0xC4, 0x40, 0xF0]) + bytes(4) + bytes(16)
    head = b"fLaC" + b"\x80\x00\x00\x22" + streaminfo  # total samples 0: unknown
    assert flac_duration(head) is None
    assert flac_duration(b"RIFF") is None
