"""Batch input and manifest parsing: every refusal has a stable code and says where."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aws.step_functions.exceptions import BatchError
from aws.step_functions.models import BatchRequest, BatchSource, ManifestRow, PlannedItem
from aws.step_functions.planning import (
    _csv_rows,
    _jsonl_rows,
    _output_name,
    _refuse_duplicate_outputs,
    pair_prefix_items,
)

BUCKET = "s3://multitalk-local-data/tenants/acme/inputs/"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({}, "exactly one of source.prefix or source.manifest"),
        ({"prefix": BUCKET, "manifest": BUCKET + "m.csv"}, "exactly one"),
        ({"prefix": BUCKET + "batch"}, "must end with '/'"),
        ({"manifest": BUCKET + "m.json"}, ".jsonl or .csv"),
        ({"prefix": "https://example.com/x/"}, "String should match pattern"),
    ],
)
def test_source_must_name_one_readable_thing(source: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BatchSource.model_validate(source)


def test_request_fills_api_defaults_and_refuses_unknown_fields() -> None:
    request = BatchRequest.model_validate(
        {
            "tenant_id": "acme",
            "source": {"prefix": BUCKET},
            "output": {"s3_bucket": "multitalk-local-data", "s3_prefix": "tenants/acme/outputs/"},
        }
    )
    assert request.options.resolution == "480p"
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BatchRequest.model_validate(request.model_dump() | {"webhook": "x"})


def test_jsonl_rows_skip_blank_lines_and_name_the_bad_one() -> None:
    text = '{"audio_s3_url": "s3://b/a.wav"}\n\n{"audio_s3_url": "s3://b/b.wav"}\n{oops\n'
    rows = _jsonl_rows(text)
    assert next(rows) == (1, {"audio_s3_url": "s3://b/a.wav"})
    assert next(rows) == (3, {"audio_s3_url": "s3://b/b.wav"})
    with pytest.raises(BatchError, match="manifest line 4 is not JSON") as error:
        next(rows)
    assert error.value.code == "manifest_invalid"


def test_csv_rows_treat_empty_cells_as_not_given() -> None:
    text = "audio_s3_url,reference_image_s3_url,prompt\ns3://b/a.wav,,hello\n\ns3://b/b.wav,s3://b/b.png,\n"
    assert list(_csv_rows(text)) == [
        (2, {"audio_s3_url": "s3://b/a.wav", "prompt": "hello"}),
        (4, {"audio_s3_url": "s3://b/b.wav", "reference_image_s3_url": "s3://b/b.png"}),
    ]


def test_csv_row_with_extra_cells_is_refused() -> None:
    with pytest.raises(BatchError, match="line 2 has more cells than the header"):
        list(_csv_rows("audio_s3_url\ns3://b/a.wav,surplus\n"))


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("tenants/acme/inputs/Intro Talk.wav", "Intro-Talk.mp4"),
        ("s3://b/x/über-rede.mp3", "ber-rede.mp4"),
        ("a/.wav", "wav.mp4"),
        ("a/___.wav", "item.mp4"),
    ],
)
def test_output_names_are_safe_filenames(key: str, name: str) -> None:
    assert _output_name(key) == name


def test_two_items_may_not_write_the_same_video() -> None:
    items = [
        PlannedItem(id="a/talk.wav", audio_s3_url="s3://b/a/talk.wav", filename="talk.mp4"),
        PlannedItem(id="b/talk.wav", audio_s3_url="s3://b/b/talk.wav", filename="talk.mp4"),
    ]
    with pytest.raises(BatchError, match=r"would both write talk\.mp4") as error:
        _refuse_duplicate_outputs(items)
    assert error.value.code == "batch_output_collision"


def test_a_manifest_row_names_a_portrait_or_a_video() -> None:
    (_, row), *_ = _csv_rows("audio_s3_url,video_s3_url\ns3://b/a.wav,s3://b/a.mp4\n")
    assert ManifestRow.model_validate(row).video_s3_url == "s3://b/a.mp4"
    both = {**row, "reference_image_s3_url": "s3://b/a.png"}
    with pytest.raises(ValidationError, match="reference_image_s3_url or video_s3_url, not both"):
        ManifestRow.model_validate(both)


def _pairs(*names: str, shared: str | None = None) -> dict[str, tuple[str | None, str | None]]:
    """Item id -> (video, image) for a prefix listing of ``names`` (file names under it)."""
    prefix = "tenants/acme/inputs/b/"
    items = pair_prefix_items("data", prefix, {prefix + name for name in names}, shared)
    strip = f"s3://data/{prefix}"
    return {
        item.id: (
            item.video_s3_url and item.video_s3_url.removeprefix(strip),
            item.reference_image_s3_url and item.reference_image_s3_url.removeprefix(strip),
        )
        for item in items
    }


def test_a_prefix_pairs_each_audio_file_with_the_video_or_image_of_its_name() -> None:
    assert _pairs(
        "anna.wav",
        "anna.mp4",
        "ben.mp3",
        "ben.MOV",
        "carl.flac",
        "carl.png",
        "dora.wav",
        "erin.m4a",
        "erin.mkv",
        "lone.mp4",
        shared="s3://data/shared.png",
    ) == {
        "anna.wav": ("anna.mp4", None),
        "ben.mp3": ("ben.MOV", None),
        "carl.flac": (None, "carl.png"),
        "dora.wav": (None, "s3://data/shared.png"),
        "erin.m4a": ("erin.mkv", None),
    }


def test_a_video_beats_an_image_of_the_same_name_and_the_batch_portrait() -> None:
    assert _pairs("talk.wav", "talk.jpg", "talk.mp4", shared="s3://data/shared.png") == {
        "talk.wav": ("talk.mp4", None)
    }
    # Several videos of one name: MP4, then MOV, MKV, WebM.
    assert _pairs("talk.wav", "talk.webm", "talk.mkv", "talk.mov") == {
        "talk.wav": ("talk.mov", None)
    }


def test_a_webm_is_a_voice_note_unless_another_audio_file_has_its_name() -> None:
    assert _pairs("talk.wav", "talk.webm") == {"talk.wav": ("talk.webm", None)}
    assert _pairs("note.webm", "note.png") == {"note.webm": (None, "note.png")}
    # A voice note may dub a video of its name like any audio file.
    assert _pairs("note.webm", "note.mp4") == {"note.webm": ("note.mp4", None)}
