"""Every source-video corpus file through the worker's preparation and reader.

Accepted files: their upright size and rotation, and exactly the frames the source makes at
25 fps (a truncated one: some, fewer than whole). Refused files: exactly their code, from a
message that names the caller's input, with no temporary path in it. The submit path's first
bytes refuse nothing the worker accepts, and what they refuse carries the worker's code.

The public API takes no video yet, so these cases are not in the reliability suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modal_service.media.errors import VideoError
from modal_service.media.source_video import prepare_source_video
from modal_service.sniff import SNIFF_BYTES, first_bytes_refusal
from scripts.corpus import CorpusCase
from scripts.corpus.video import CORPUS_MAX_S, video_cases

CASES = video_cases()
ACCEPTS = [case for case in CASES if case.accepted]
REFUSALS = [case for case in CASES if not case.accepted]


def by_name(cases: list[CorpusCase]) -> dict[str, Any]:
    return {"argvalues": cases, "ids": [case.name for case in cases]}


def stored(tmp_path: Path, case: CorpusCase) -> Path:
    # The worker downloads to a name of its own; the caller's key only ever reaches messages.
    path = tmp_path / "input"
    path.write_bytes(case.data)
    return path


def label(case: CorpusCase) -> str:
    return f"the source video ({case.key})"


def test_the_corpus_is_broad_small_and_reproducible() -> None:
    assert len(ACCEPTS) >= 10
    assert len(REFUSALS) >= 15
    assert {case.expect for case in REFUSALS} == {
        "unsupported_format",
        "video_invalid",
        "video_too_long",
        "video_too_large",
    }
    assert sum(len(case.data) for case in CASES) < 1024 * 1024
    rebuilt = video_cases.__wrapped__()
    assert [(case.name, case.data) for case in rebuilt] == [
        (case.name, case.data) for case in CASES
    ]


@pytest.mark.parametrize("case", **by_name(ACCEPTS))
def test_accepted_video(tmp_path: Path, case: CorpusCase) -> None:
    video = prepare_source_video(stored(tmp_path, case), label(case), max_s=CORPUS_MAX_S)
    assert (video.info.width, video.info.height) == case.expected["size"]
    assert video.info.rotation == case.expected["rotation"]
    assert video.first_frame.size == case.expected["size"]
    with video.frames(32, 32) as reader:
        # One frame past a whole pass: the reader has met the end and knows the length.
        reader.clip(0, case.expected["frames"] + 1)
        length = reader.source_length
    assert length is not None
    if "truncated" in case.name:
        assert 0 < length < case.expected["frames"]
    else:
        assert length == case.expected["frames"]
        assert video.frame_count == pytest.approx(length, abs=1)


@pytest.mark.parametrize("case", **by_name(REFUSALS))
def test_refused_video(tmp_path: Path, case: CorpusCase) -> None:
    with pytest.raises(VideoError) as caught:
        prepare_source_video(stored(tmp_path, case), label(case), max_s=CORPUS_MAX_S)
    assert caught.value.code == case.expect, caught.value.message
    assert caught.value.message.startswith(label(case))
    assert str(tmp_path) not in caught.value.message


@pytest.mark.parametrize("case", **by_name(CASES))
def test_first_bytes_refuse_only_what_the_worker_refuses_the_same_way(case: CorpusCase) -> None:
    refusal = first_bytes_refusal(
        "video", case.data[:SNIFF_BYTES], len(case.data), max_video_s=CORPUS_MAX_S
    )
    if refusal is not None:
        assert refusal[0] == case.expect, refusal
