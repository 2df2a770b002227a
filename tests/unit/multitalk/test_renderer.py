"""Whole renders on the tiny preset: real MP4s, streaming, speakers, errors, cancel, seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modal_service.media.ffmpeg import run_ffmpeg
from modal_service.media.probe import probe_media
from modal_service.multitalk import (
    InputRejectedError,
    RenderCancelled,
    RenderSpec,
)
from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.acceleration.engine import Accelerator
from modal_service.multitalk.acceleration.lora_fusion import FusedLora
from modal_service.multitalk.presets import TINY, build_tiny
from modal_service.multitalk.renderer import Renderer


def _frames(path: Path, width: int, height: int) -> np.ndarray:
    raw = run_ffmpeg(["-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def test_one_speaker_streams_clips_into_a_playable_mp4(
    tiny: Renderer, media: dict, tmp_path: Path
) -> None:
    events: list[tuple[str, int, int]] = []
    out = tmp_path / "out.mp4"
    outcome = tiny.render(
        RenderSpec(audio_paths=[media["voice"]], image_path=media["portrait"], seed=1),
        out,
        progress=lambda stage, step, total: events.append((stage, step, total)),
    )
    assert outcome.model == "tiny"
    assert (outcome.frames, outcome.fps, outcome.duration_s) == (40, 25.0, 1.6)
    assert (outcome.width, outcome.height) == (48, 80)  # 480p bucket for 2:3, tiny scale
    assert set(outcome.timings_s) == {"audio", "conditioning", "denoise", "decode", "encode"}
    info = probe_media(out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.frames, info.width, info.height) == (40, 48, 80)
    assert info.audio_duration_s == pytest.approx(1.6, abs=0.05)
    # 40 frames with 33-frame clips and 9 motion frames: two clips of 4 steps each.
    denoise = [e for e in events if e[0] == "denoise"]
    assert denoise == [("denoise", i, 8) for i in range(1, 9)]
    assert events[-1] == ("encode", 1, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize(("audio_type", "frames"), [("add", 70), ("para", 40)])
def test_two_speakers(
    tiny: Renderer, media: dict, tmp_path: Path, audio_type: str, frames: int
) -> None:
    spec = RenderSpec(
        audio_paths=[media["voice"], media["voice_mp3"]],
        image_path=media["wide"],
        audio_type=audio_type,
        bounding_boxes=[(20, 10, 300, 300), (20, 340, 300, 630)] if audio_type == "add" else None,
        seed=2,
    )
    outcome = tiny.render(spec, tmp_path / "two.mp4")
    # add: 1.6 s then 1.2 s (2.8 s); para: together, as long as the longer (1.6 s)
    assert outcome.frames == frames
    assert (outcome.width, outcome.height) == (96, 48)  # 16:9 -> the 448x896 bucket, tiny scale
    info = probe_media(tmp_path / "two.mp4")
    assert info.frames == frames
    assert info.audio_duration_s == pytest.approx(frames / 25, abs=0.05)


def test_720p_bucket_and_duration_cap(tiny: Renderer, media: dict, tmp_path: Path) -> None:
    spec = RenderSpec(
        audio_paths=[media["voice"]],
        image_path=media["portrait"],
        resolution="720p",
        max_duration_s=1.0,
    )
    outcome = tiny.render(spec, tmp_path / "o.mp4")
    assert (outcome.width, outcome.height) == (80, 112)
    assert outcome.frames == 25
    assert probe_media(tmp_path / "o.mp4").audio_duration_s == pytest.approx(1.0, abs=0.05)


def test_same_seed_same_video_other_seed_other_video(
    tiny: Renderer, media: dict, tmp_path: Path
) -> None:
    videos = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        spec = RenderSpec(
            audio_paths=[media["voice"]],
            image_path=media["portrait"],
            seed=seed,
            max_duration_s=1.0,
        )
        outcome = tiny.render(spec, tmp_path / f"{name}.mp4")
        assert outcome.seed == seed
        videos.append(_frames(tmp_path / f"{name}.mp4", outcome.width, outcome.height))
    np.testing.assert_array_equal(videos[0], videos[1])
    assert not np.array_equal(videos[0], videos[2])


def test_cancel_between_steps_leaves_nothing(tiny: Renderer, media: dict, tmp_path: Path) -> None:
    steps: list[int] = []
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def progress(stage: str, step: int, total: int) -> None:
        if stage == "denoise":
            steps.append(step)

    with pytest.raises(RenderCancelled):
        tiny.render(
            RenderSpec(audio_paths=[media["voice"]], image_path=media["portrait"]),
            out_dir / "out.mp4",
            progress=progress,
            should_cancel=lambda: len(steps) >= 3,
        )
    assert steps == [1, 2, 3]
    assert list(out_dir.iterdir()) == []


def test_turbo_without_lora_says_what_it_does(tiny: Renderer, media: dict, tmp_path: Path) -> None:
    spec = RenderSpec(
        audio_paths=[media["voice"]],
        image_path=media["portrait"],
        speed="turbo",
        max_duration_s=1.0,
    )
    outcome = tiny.render(spec, tmp_path / "t.mp4")
    assert outcome.guidance_passes == 2
    assert outcome.sample_steps == 2
    assert any("without a distillation LoRA" in note for note in outcome.notes)


def test_bad_audio_and_image_raise_coded_errors(
    tiny: Renderer, media: dict, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF" + b"\x00" * 100)
    with pytest.raises(InputRejectedError) as err:
        tiny.render(
            RenderSpec(
                audio_paths=[junk], image_path=media["portrait"], audio_labels=["audio 1 (a.wav)"]
            ),
            tmp_path / "x.mp4",
        )
    assert err.value.code == "audio_invalid"
    assert "audio 1 (a.wav)" in err.value.message
    assert "junk" not in err.value.message  # the caller's name, never the worker's file
    with pytest.raises(InputRejectedError) as err:
        tiny.render(
            RenderSpec(audio_paths=[media["voice"]], image_path=media["voice"]), tmp_path / "x.mp4"
        )
    assert err.value.code == "unsupported_format"
    assert "the reference image" in err.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.wav"]


def test_audio_longer_than_video_length_is_cut_and_said(
    tiny: Renderer, media: dict, tmp_path: Path
) -> None:
    spec = RenderSpec(
        audio_paths=[media["voice"]], image_path=media["portrait"], max_duration_s=1.0, seed=1
    )
    outcome = tiny.render(spec, tmp_path / "cut.mp4")
    assert outcome.duration_s == pytest.approx(1.0)
    assert outcome.audio_durations_s[0] > 1.5
    assert any("longer than video_length (1 s)" in note for note in outcome.notes)


def test_audio_over_the_deployment_maximum_is_refused_not_cut(
    tiny: Renderer, media: dict, tmp_path: Path
) -> None:
    spec = RenderSpec(
        audio_paths=[media["voice"]],
        image_path=media["portrait"],
        max_duration_s=1.0,
        max_audio_s=1.0,
    )
    with pytest.raises(InputRejectedError) as err:
        tiny.render(spec, tmp_path / "long.mp4")
    assert err.value.code == "audio_too_long"


def test_spec_refuses_mismatched_boxes(media: dict) -> None:
    with pytest.raises(ValueError, match="one bounding box per speaker"):
        RenderSpec(
            audio_paths=[media["voice"]],
            image_path=media["portrait"],
            bounding_boxes=[(0, 0, 1, 1)] * 2,
        )
    with pytest.raises(ValueError, match="top<bottom"):
        RenderSpec(
            audio_paths=[media["voice"]],
            image_path=media["portrait"],
            bounding_boxes=[(5, 0, 1, 1)],
        )


def test_turbo_fuses_the_lora_for_its_render_and_restores_the_weights_exactly(
    media: dict, distill_lora: Path, tmp_path: Path
) -> None:
    pipeline, audio = build_tiny()
    transformer = pipeline.transformer
    lora = FusedLora.from_file(transformer, distill_lora)
    renderer = Renderer(
        TINY, pipeline, audio, Accelerator(pipeline, DeploymentAcceleration(), lora)
    )
    original = {name: p.clone() for name, p in transformer.state_dict().items()}
    spec = RenderSpec(
        audio_paths=[media["voice"]], image_path=media["portrait"], speed="turbo", seed=3
    )
    turbo = renderer.render(spec, tmp_path / "turbo.mp4")
    assert (turbo.guidance_passes, turbo.sample_steps) == (1, TINY.turbo_steps_with_lora)
    assert turbo.speed == "turbo"
    assert any("LoRA fused" in note for note in turbo.notes)
    assert not torch.equal(
        transformer.blocks[0].attn1.to_q.weight, original["blocks.0.attn1.to_q.weight"]
    )

    quality = renderer.render(spec.model_copy(update={"speed": "quality"}), tmp_path / "q.mp4")
    assert quality.guidance_passes == 3
    assert "lora_switch" in quality.timings_s
    for name, value in transformer.state_dict().items():
        assert torch.equal(value, original[name]), name  # bit for bit, not approximately
    again = renderer.render(spec, tmp_path / "turbo2.mp4")
    assert np.array_equal(
        _frames(tmp_path / "turbo.mp4", turbo.width, turbo.height),
        _frames(tmp_path / "turbo2.mp4", again.width, again.height),
    )
