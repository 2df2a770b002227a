"""Dubbing: a source video in place of the portrait, through a whole tiny InfiniteTalk render."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modal_service.media.probe import probe_media
from modal_service.multitalk import InputRejectedError, RenderError, RenderSpec, load_renderer
from modal_service.multitalk.buckets import bucket_size
from modal_service.multitalk.presets import TINY_INFINITETALK
from modal_service.multitalk.renderer import Renderer
from scripts.corpus.video import video_cases


@pytest.fixture(scope="module")
def dubbing() -> Renderer:
    return load_renderer("tiny-infinitetalk", device="cpu")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    wanted = {"mp4-h264-aac-30fps", "mp4-phone-portrait-rotated", "png-renamed-mp4"}
    paths = {}
    for case in video_cases():
        if case.name in wanted:
            paths[case.name] = folder / f"{case.name}.bin"
            paths[case.name].write_bytes(case.data)
    return paths


def _ffmpeg_children() -> list[int]:
    """ffmpeg processes this test process started and has not reaped."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if "ffmpeg" in name and int(rest.split()[1]) == os.getpid():
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("video", "source_frames"),
    [("mp4-h264-aac-30fps", 50), ("mp4-phone-portrait-rotated", 25)],
    ids=["longer-source-cut", "shorter-rotated-source-looped"],
)
def test_a_dubbed_video_has_the_audios_length_and_the_sources_bucket(
    dubbing: Renderer, media: dict, videos: dict, tmp_path: Path, video: str, source_frames: int
) -> None:
    spec = RenderSpec(
        audio_paths=[media["voice"]], video_path=videos[video], video_label="the source video"
    )
    out = tmp_path / "dub.mp4"
    outcome = dubbing.render(spec, out)
    assert outcome.model == TINY_INFINITETALK.name
    # 1.6 s of audio: 40 frames whether the source has 50 (cut) or 25 (looped from its start).
    assert outcome.frames == 40 != source_frames
    # The bucket comes from the upright source: 64x96 px, or 96x64 before its 90-degree turn.
    height, width = bucket_size(96, 64, "480p", TINY_INFINITETALK.bucket_scale)
    assert (outcome.width, outcome.height) == (width, height)
    info = probe_media(out)
    assert (info.frames, info.video_codec, info.audio_codec) == (40, "h264", "aac")
    assert info.audio_duration_s == pytest.approx(1.6, abs=0.05)
    assert _ffmpeg_children() == []  # the source's decoder is closed with the render


def test_a_file_that_is_no_video_is_refused_by_its_content(
    dubbing: Renderer, media: dict, videos: dict, tmp_path: Path
) -> None:
    spec = RenderSpec(
        audio_paths=[media["voice"]],
        video_path=videos["png-renamed-mp4"],
        video_label="the source video (frame.mp4)",
    )
    with pytest.raises(InputRejectedError, match=r"^the source video \(frame\.mp4\)") as caught:
        dubbing.render(spec, tmp_path / "no.mp4")
    assert caught.value.code == "unsupported_format"
    assert list(tmp_path.iterdir()) == []


def test_multitalk_refuses_a_video_before_reading_anything(
    tiny: Renderer, media: dict, videos: dict, tmp_path: Path
) -> None:
    spec = RenderSpec(audio_paths=[media["voice"]], video_path=videos["mp4-h264-aac-30fps"])
    with pytest.raises(RenderError, match="dubbing a video needs an InfiniteTalk model") as caught:
        tiny.render(spec, tmp_path / "no.mp4")
    assert caught.value.reason == "video_needs_infinitetalk"
    assert list(tmp_path.iterdir()) == []


def test_a_spec_takes_an_image_or_a_video_not_both(media: dict, videos: dict) -> None:
    with pytest.raises(ValueError, match="exactly one of image_path or video_path"):
        RenderSpec(
            audio_paths=[media["voice"]],
            image_path=media["portrait"],
            video_path=videos["mp4-h264-aac-30fps"],
        )
    with pytest.raises(ValueError, match="exactly one of image_path or video_path"):
        RenderSpec(audio_paths=[media["voice"]])
