"""Every audio corpus file through the worker's preparation, with what it must come out as.

Accepted files: their true length (+-0.05 s), -23 LUFS (+-1 LU) at 16 kHz, a soundtrack that
never passes full scale. Refused files: exactly their code, from a message that names the
caller's input. Bombs: refused in bounded memory, measured in a fresh process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
import pytest

from modal_service.media.audio import MODEL_SAMPLE_RATE, prepare_track
from modal_service.media.errors import AudioError
from modal_service.sniff import SNIFF_BYTES, audio_refusal
from scripts.bench.input_bombs import measure
from scripts.corpus import CorpusCase
from scripts.corpus.audio import CORPUS_MAX_S, audio_cases

CASES = audio_cases()
ACCEPTS = [case for case in CASES if case.accepted]
REFUSALS = [case for case in CASES if not case.accepted]
BOMBS = [
    case
    for case in REFUSALS
    if case.expect == "decompression_bomb" or case.expected.get("duration_s", 0) > 3600
]
PEAK_RSS_LIMIT_MB = 1024


def by_name(cases: list[CorpusCase]) -> dict[str, Any]:
    return {"argvalues": cases, "ids": [case.name for case in cases]}


def stored(tmp_path: Path, case: CorpusCase) -> Path:
    # The worker downloads to a name of its own; the caller's key only ever reaches messages.
    path = tmp_path / "input"
    path.write_bytes(case.data)
    return path


def label(case: CorpusCase) -> str:
    return f"audio 1 ({case.key})"


def test_the_corpus_is_broad_small_and_reproducible() -> None:
    assert len(CASES) >= 45
    assert len(ACCEPTS) >= 25
    assert len(REFUSALS) >= 20
    assert sum(len(case.data) for case in CASES) < 3 * 1024 * 1024
    assert {case.kind for case in CASES} == {"audio"}
    for case in REFUSALS:
        if case.expect == "audio_too_long":
            assert case.expected["duration_s"] > 20.0, case.name
    rebuilt = audio_cases.__wrapped__()
    assert [(case.name, case.data) for case in rebuilt] == [
        (case.name, case.data) for case in CASES
    ]


@pytest.mark.parametrize("case", **by_name(ACCEPTS))
def test_accepted_audio(tmp_path: Path, case: CorpusCase) -> None:
    track = prepare_track(stored(tmp_path, case), label(case), max_s=CORPUS_MAX_S)
    assert track.duration_s == pytest.approx(case.expected["duration_s"], abs=0.05)
    assert track.info.channels == case.expected["channels"]
    loudness = pyloudnorm.Meter(MODEL_SAMPLE_RATE).integrated_loudness(
        track.model_samples.astype(np.float64)
    )
    assert loudness == pytest.approx(-23.0, abs=1.0)
    assert np.isfinite(track.mux_samples).all()
    assert np.abs(track.mux_samples).max() <= 1.0
    assert np.abs(track.mux_samples).max() > 0.05  # audible, not a whisper of rounding


@pytest.mark.parametrize("case", **by_name(REFUSALS))
def test_refused_audio(tmp_path: Path, case: CorpusCase) -> None:
    with pytest.raises(AudioError) as caught:
        prepare_track(stored(tmp_path, case), label(case), max_s=CORPUS_MAX_S)
    assert caught.value.code == case.expect, caught.value.message
    assert caught.value.message.startswith(label(case))
    assert str(tmp_path) not in caught.value.message


@pytest.mark.parametrize("case", **by_name(CASES))
def test_first_bytes_refuse_only_what_the_worker_refuses_the_same_way(case: CorpusCase) -> None:
    # The AWS side refuses from the first bytes alone: it must never turn away a file the
    # worker accepts, and what it refuses must carry the worker's code.
    refusal = audio_refusal(case.data[:SNIFF_BYTES])
    if refusal is not None:
        assert refusal[0] == case.expect


@pytest.mark.parametrize("case", **by_name(BOMBS))
def test_bombs_keep_their_code_at_the_contract_maximum(tmp_path: Path, case: CorpusCase) -> None:
    with pytest.raises(AudioError) as caught:
        prepare_track(stored(tmp_path, case), label(case), max_s=600.0)
    assert caught.value.code == case.expect


@pytest.mark.slow
@pytest.mark.parametrize("case", **by_name(BOMBS))
def test_refusing_a_bomb_takes_bounded_memory(case: CorpusCase, record_property: Any) -> None:
    # At the contract's 600 s maximum the decode cap is largest: the worst case for memory.
    figures = measure("audio", case.data, max_s=600.0)
    record_property("bomb", {"name": f"audio/{case.name}", **figures})
    assert figures["outcome"] == case.expect
    assert figures["peak_rss_sum_mb"] < PEAK_RSS_LIMIT_MB, figures
    assert figures["seconds"] < 60, figures  # a ceiling for a hung decode, not a benchmark
