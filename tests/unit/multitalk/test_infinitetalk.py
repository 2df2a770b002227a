"""InfiniteTalk clip streaming on tiny: its arithmetic against the reference's control flow, the
clean motion latents at every step, the per-clip reference frame, and whole renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modal_service.media.probe import probe_media
from modal_service.multitalk import RenderSpec, load_renderer
from modal_service.multitalk import pipeline_multitalk as pipeline_module
from modal_service.multitalk.audio_encoder import clip_audio_windows
from modal_service.multitalk.pipeline_multitalk import MultiTalkPipeline
from modal_service.multitalk.presets import PRESETS, TINY_INFINITETALK
from modal_service.multitalk.reference_source import StillImage
from modal_service.multitalk.renderer import Renderer
from modal_service.multitalk.streaming import InfiniteTalkStreaming, MultiTalkStreaming

WIDTH, HEIGHT = 48, 80  # a tiny 480p bucket


def reference_loop(audio_frames: int, max_frames: int, frame_num: int, motion: int) -> dict:
    """InfiniteTalk's streaming loop, index arithmetic only: the embedding holds its own indices,
    so the windows read back which audio frame each position sees."""
    embedding = torch.arange(audio_frames)
    offsets = torch.arange(5) - 2
    start, first, last, padded = 0, True, False, False
    starts, windows, kept = [], [], []
    while True:
        centres = torch.arange(start, start + frame_num)[:, None] + offsets
        windows.append(embedding[centres.clamp(0, embedding.shape[0] - 1)])
        starts.append(start)
        kept.append(frame_num if first else frame_num - motion)
        if last:
            break
        first = False
        start += frame_num - motion
        end = start + frame_num
        if end >= min(max_frames, audio_frames):
            last = True
            if end >= audio_frames:
                missing = end - audio_frames + 3
                embedding = torch.cat([embedding, embedding[-missing:].flip(0)])
                padded = True
        if max_frames <= frame_num:
            break
    length = min(sum(kept), max_frames)
    if padded:
        length = min(length, audio_frames)
    return {"starts": starts, "windows": windows, "length": length}


@pytest.mark.parametrize(
    ("audio_frames", "max_frames", "frame_num", "motion"),
    [
        (82, 1000, 81, 9),
        (153, 1000, 81, 9),  # the second clip ends exactly at the audio's end
        (154, 1000, 81, 9),
        (226, 1000, 81, 9),  # 4 clips, the last adding one needed frame
        (500, 1000, 81, 9),
        (1500, 1000, 81, 9),  # capped at 40 s: no padding, the audio runs on
        (300, 200, 81, 9),
        (40, 1000, 33, 5),  # tiny
        (70, 1000, 33, 5),
    ],
)
def test_clips_audio_windows_and_length_follow_the_reference(
    audio_frames: int, max_frames: int, frame_num: int, motion: int
) -> None:
    expected = reference_loop(audio_frames, max_frames, frame_num, motion)
    strategy = InfiniteTalkStreaming(frame_num, motion)
    total = min(audio_frames, max_frames)
    clips = strategy.num_clips(total)
    assert clips == len(expected["starts"])
    assert [strategy.audio_start(c) for c in range(clips)] == expected["starts"]
    features = torch.arange(audio_frames, dtype=torch.float32)[:, None, None]
    for clip in range(clips):
        ours = clip_audio_windows(
            features, strategy.audio_start(clip), frame_num, mirror_tail=clip > 0
        )
        torch.testing.assert_close(ours[:, :, 0, 0].long(), expected["windows"][clip])
    # New frames: clip 0 whole, then each clip without its 9 (here 5) re-rendered motion frames.
    video = torch.zeros(1, 3, frame_num, 1, 1)
    emitted = sum(strategy.new_frames(video, clip).shape[2] for clip in range(clips))
    assert min(emitted, total) == expected["length"] == total


def test_audio_of_one_clip_or_less_renders_one_clip() -> None:
    # The reference refuses audio this short (and, capped to it, renders a second clip that it
    # cuts away): one clip gives the same frames.
    strategy = InfiniteTalkStreaming(81, 9)
    assert [strategy.num_clips(n) for n in (1, 80, 81, 82)] == [1, 1, 1, 2]
    assert reference_loop(300, 60, 81, 9)["length"] == 60


def test_only_later_clips_draw_the_noise_the_reference_drops() -> None:
    strategy = InfiniteTalkStreaming(33, 5)
    latents = torch.randn(1, 4, 9, 2, 2)
    motion = torch.randn(1, 4, 2, 2, 2)
    for clip, drawn in ((0, 0), (1, motion.numel())):
        ours, fresh = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        out = strategy.inject(clip, latents, motion, 0.7, ours)
        torch.testing.assert_close(out[:, :, :2], motion)  # clean, whatever the noise level
        torch.testing.assert_close(out[:, :, 2:], latents[:, :, 2:])
        torch.randn(drawn, generator=fresh)
        assert torch.equal(torch.randn(4, generator=ours), torch.randn(4, generator=fresh))


class RecordingSource:
    """A video stand-in: a distinct flat colour per frame index, and the indices asked for."""

    def __init__(self, size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
        self.size = size
        self.asked: list[int] = []

    @staticmethod
    def colour(index: int) -> tuple[int, int, int]:
        return (index * 3 % 256, 90, 200 - index % 200)

    def reference_frame(self, index: int) -> Image.Image:
        self.asked.append(index)
        return Image.new("RGB", self.size, self.colour(index))


def _pixels(colour: tuple[int, int, int]) -> torch.Tensor:
    frame = torch.tensor(colour, dtype=torch.float32).div(127.5).sub(1)
    return frame[None, :, None, None, None].expand(1, 3, 1, HEIGHT, WIDTH)


@pytest.fixture
def pipeline(tiny: Renderer) -> MultiTalkPipeline:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tiny presets render (see presets.TINY)
    yield tiny.pipeline
    torch.set_num_threads(threads)


def _render(pipeline: MultiTalkPipeline, source: object, strategy: object, frames: int) -> int:
    features = torch.randn(frames, 2, 16, generator=torch.Generator().manual_seed(0))
    return pipeline(
        source=source,
        audio_features=[features],
        num_frames=frames,
        strategy=strategy,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(1),
    )


def test_each_clip_is_conditioned_on_the_source_frame_at_its_audio_position(
    pipeline: MultiTalkPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip_inputs: list[torch.Tensor] = []
    conditions: list[torch.Tensor] = []
    encode_image, encode_condition = pipeline.encode_image, pipeline.encode_condition
    monkeypatch.setattr(
        pipeline, "encode_image", lambda frame: clip_inputs.append(frame) or encode_image(frame)
    )
    monkeypatch.setattr(
        pipeline,
        "encode_condition",
        lambda frames, n: conditions.append(frames) or encode_condition(frames, n),
    )
    source = RecordingSource()
    # 70 frames, 33-frame clips, 5 motion frames: clips start at 0, 28 and 56.
    assert _render(pipeline, source, InfiniteTalkStreaming(33, 5), 70) == 70
    assert source.asked == [0, 28, 56]
    for index, clip_input, condition in zip(source.asked, clip_inputs, conditions, strict=True):
        expected = _pixels(RecordingSource.colour(index))
        torch.testing.assert_close(clip_input, expected[:, :, 0])
        torch.testing.assert_close(condition, expected)  # one frame, mask 1 on it alone

    # MultiTalk reads frame 0 only: later clips continue from generated frames.
    multitalk = RecordingSource()
    _render(pipeline, multitalk, MultiTalkStreaming(33, 9), 40)
    assert multitalk.asked == [0]


def test_an_image_gives_every_clip_the_same_reference(
    pipeline: MultiTalkPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip_inputs: list[torch.Tensor] = []
    encode_image = pipeline.encode_image
    monkeypatch.setattr(
        pipeline, "encode_image", lambda frame: clip_inputs.append(frame) or encode_image(frame)
    )
    image = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    )
    _render(pipeline, StillImage(image), InfiniteTalkStreaming(33, 5), 70)
    assert len(clip_inputs) == 3
    for clip_input in clip_inputs[1:]:
        assert torch.equal(clip_input, clip_inputs[0])


def test_motion_latents_are_encoded_apart_and_written_clean_before_every_model_call(
    pipeline: MultiTalkPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    motion_encodes: list[tuple[torch.Tensor, torch.Tensor]] = []
    encode_video = pipeline.encode_video

    def spy_encode(frames: torch.Tensor) -> torch.Tensor:
        latents = encode_video(frames)
        if frames.shape[2] != 33:  # not the padded I2V condition
            motion_encodes.append((frames.clone(), latents.clone()))
        return latents

    corrected: list[torch.Tensor] = []
    match_colors = pipeline_module.match_colors

    def spy_colors(*args: object) -> torch.Tensor:
        corrected.append(match_colors(*args))
        return corrected[-1]

    model_inputs: list[torch.Tensor] = []
    monkeypatch.setattr(pipeline, "encode_video", spy_encode)
    monkeypatch.setattr(pipeline_module, "match_colors", spy_colors)
    hook = pipeline.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: model_inputs.append(kwargs["hidden_states"].clone()),
        with_kwargs=True,
    )
    try:
        image = Image.new("RGB", (WIDTH, HEIGHT), (180, 120, 90))
        _render(pipeline, StillImage(image), InfiniteTalkStreaming(33, 5), 70)
    finally:
        hook.remove()

    # Clip 0 continues from its reference (1 latent frame); later clips from the previous
    # clip's last 5 decoded, colour-corrected frames (2 latent frames).
    assert [frames.shape[2] for frames, _ in motion_encodes] == [1, 5, 5]
    torch.testing.assert_close(motion_encodes[0][0], _pixels((180, 120, 90)))
    for clip in (1, 2):
        previous = corrected[clip - 1].transpose(0, 1)[None]
        torch.testing.assert_close(motion_encodes[clip][0], previous[:, :, -5:])
    # 3 steps per clip, one batched call per step (3 guidance branches).
    assert len(model_inputs) == 9
    z = pipeline.vae.config.z_dim
    for call, hidden in enumerate(model_inputs):
        motion = motion_encodes[call // 3][1]
        written = hidden[:, :z, : motion.shape[2]]
        assert torch.equal(written, motion.to(hidden.dtype).expand_as(written)), call
        # The frames after them are being denoised, not copied.
        assert not torch.equal(hidden[:, :z, motion.shape[2]], hidden[:, :z, 0])


@pytest.fixture(scope="module")
def tiny_infinitetalk() -> Renderer:
    return load_renderer("tiny-infinitetalk", device="cpu")


def test_tiny_infinitetalk_renders_an_mp4_as_long_as_the_audio(
    tiny_infinitetalk: Renderer, media: dict, tmp_path: Path
) -> None:
    events: list[tuple[str, int, int]] = []
    out = tmp_path / "it.mp4"
    outcome = tiny_infinitetalk.render(
        RenderSpec(audio_paths=[media["voice"]], image_path=media["portrait"], seed=1),
        out,
        progress=lambda stage, step, total: events.append((stage, step, total)),
    )
    assert outcome.model == "tiny-infinitetalk" == TINY_INFINITETALK.name
    assert (outcome.frames, outcome.width, outcome.height) == (40, WIDTH, HEIGHT)
    info = probe_media(out)
    assert (info.frames, info.video_codec, info.audio_codec) == (40, "h264", "aac")
    assert info.audio_duration_s == pytest.approx(1.6, abs=0.05)
    # 40 frames in 33-frame clips with 5 motion frames: two clips of 4 steps.
    assert [e for e in events if e[0] == "denoise"] == [("denoise", i, 8) for i in range(1, 9)]


def test_a_video_source_is_bucketed_on_its_first_frame_and_read_per_clip(
    tiny_infinitetalk: Renderer, tiny: Renderer, media: dict, tmp_path: Path
) -> None:
    video = RecordingSource(size=(320, 480))  # 2:3, as the portrait: the same bucket
    spec = RenderSpec(audio_paths=[media["voice"]], image_path=media["portrait"], seed=1)
    outcome = tiny_infinitetalk.render(spec, tmp_path / "dub.mp4", video=video)
    assert (outcome.frames, outcome.width, outcome.height) == (40, WIDTH, HEIGHT)
    assert probe_media(tmp_path / "dub.mp4").frames == 40
    assert sorted(set(video.asked)) == [0, 28]
    assert video.asked == sorted(video.asked)  # a sequential decoder can serve it
    with pytest.raises(ValueError, match="needs InfiniteTalk"):
        tiny.render(spec, tmp_path / "no.mp4", video=RecordingSource())
    assert not (tmp_path / "no.mp4").exists()


def test_infinitetalk_presets_share_the_network_and_differ_in_streaming() -> None:
    single, multi = PRESETS["infinitetalk-14b"], PRESETS["infinitetalk-14b-multi"]
    assert (single.strategy, single.motion_frames, single.frame_num) == ("infinitetalk", 9, 81)
    assert multi.model_dump(exclude={"name"}) == single.model_dump(exclude={"name"})
    assert PRESETS["multitalk-14b"].model_dump(exclude={"name", "strategy", "motion_frames"}) == (
        single.model_dump(exclude={"name", "strategy", "motion_frames"})
    )
    assert (TINY_INFINITETALK.strategy, TINY_INFINITETALK.motion_frames) == ("infinitetalk", 5)
    assert TINY_INFINITETALK.frame_num == PRESETS["tiny"].frame_num == 33
