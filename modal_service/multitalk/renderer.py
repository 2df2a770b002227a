"""One render, end to end: media in, MP4 out. The GPU worker's only entry point into the model.

Stages (each timed and reported through ``progress``): audio (decode, loudness, wav2vec2),
conditioning (portrait, bucket, speaker masks), denoise (clip by clip, frames streamed into the
encoder), encode (finalise the MP4). Temporary files live in one directory next to the output
and are removed on every outcome; the MP4 appears at ``out_path`` only when complete. Given a
checkpoint place, every finished clip is recorded there and a render of the same job that finds
one replays the finished clips and goes on after them (``checkpoint``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from modal_service.media.audio import MODEL_SAMPLE_RATE
from modal_service.media.video import VIDEO_FPS, Mp4Writer
from modal_service.multitalk.acceleration.deployment import DeploymentAcceleration
from modal_service.multitalk.acceleration.engine import Accelerator
from modal_service.multitalk.acceleration.profiles import PROFILES
from modal_service.multitalk.audio_encoder import AudioFeatureEncoder
from modal_service.multitalk.buckets import bucket_size, resize_and_crop, speaker_masks
from modal_service.multitalk.checkpoint import (
    CheckpointPlace,
    CheckpointStore,
    Saved,
    file_digest,
    fingerprint,
)
from modal_service.multitalk.errors import RenderCancelled, RenderError
from modal_service.multitalk.inputs import PreparedInputs, prepare_inputs
from modal_service.multitalk.pipeline_multitalk import ClipResume, MultiTalkPipeline
from modal_service.multitalk.presets import Preset
from modal_service.multitalk.reference_source import (
    BucketedSource,
    DecodedVideo,
    ReferenceSource,
    StillImage,
)
from modal_service.multitalk.spec import CancelCheck, ProgressCallback, RenderOutcome, RenderSpec
from modal_service.multitalk.streaming import STRATEGIES
from modal_service.multitalk.warmup import WarmupRecord

if TYPE_CHECKING:
    from modal_service.multitalk.parallel.ranks import RankGroup

logger = logging.getLogger(__name__)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class Renderer:
    """Holds a loaded pipeline; load once, render many."""

    def __init__(
        self,
        preset: Preset,
        pipeline: MultiTalkPipeline,
        audio_encoder: AudioFeatureEncoder,
        accelerator: Accelerator | None = None,
        ranks: RankGroup | None = None,
    ) -> None:
        self.preset = preset.name
        self._preset = preset
        self.pipeline = pipeline
        self.audio_encoder = audio_encoder
        self.accelerator = accelerator or Accelerator(pipeline, DeploymentAcceleration())
        self.ranks = ranks
        """The other GPUs' processes when the transformer is split across several."""
        self.warmup: WarmupRecord | None = None
        """What the warm-up render at container start did (``warmup.py``), once it ran."""
        self._pending_timings: dict[str, float] = {}
        """Work done for the next job before it renders (an adapter swap), reported with it."""

    @property
    def transformer(self) -> torch.nn.Module:
        """This process's transformer: rank 0's own copy when it is split across GPUs (the
        pipeline then holds the stand-in that drives the other ranks)."""
        transformer = self.pipeline.transformer
        return transformer.model if self.ranks is not None else transformer

    @property
    def gpus(self) -> int:
        return self.ranks.world_size if self.ranks else 1

    @property
    def usable(self) -> bool:
        """False once a GPU rank was lost: only loading again brings the group back."""
        return self.ranks is None or not self.ranks.broken

    def switch_preset(self, preset: Preset, swap_s: float) -> None:
        """Render as ``preset`` from now on (its adapter is already in the transformer: only
        ``adapter_swap.py`` calls this); the next render reports ``swap_s`` as ``adapter_swap``."""
        self.preset = preset.name
        self._preset = preset
        self._pending_timings["adapter_swap"] = swap_s

    def close(self) -> None:
        """Stop the other GPUs' processes, if any (the worker drops this renderer)."""
        if self.ranks is not None:
            self.ranks.close()

    # ------------------------------------------------------------------ sampling settings
    def sampling_settings(self, spec: RenderSpec) -> tuple[dict, list[str]]:
        """The pipeline's sampling arguments for ``spec``'s speed profile, plus notes on any
        deviation from the reference sampler."""
        p = self._preset
        profile = PROFILES[spec.speed]
        notes: list[str] = []
        settings = dict(
            num_inference_steps=p.sample_steps,
            shift=p.shift[spec.resolution],
            text_guidance_scale=p.text_guidance_scale,
            audio_guidance_scale=p.audio_guidance_scale,
            step_cache=profile.step_cache,
            vae_decode_dtype=Accelerator.vae_decode_dtype(profile),
        )
        if profile.distilled and self.accelerator.has_distillation_lora:
            settings.update(
                num_inference_steps=p.turbo_steps_with_lora,
                shift=p.turbo_shift_with_lora,
                text_guidance_scale=1.0,
                audio_guidance_scale=1.0,
                distilled_schedule=True,
            )
            notes.append(
                f"turbo: distillation LoRA fused, {p.turbo_steps_with_lora} steps, "
                "classifier-free guidance off (1 pass per step)"
            )
        elif profile.distilled:
            settings.update(num_inference_steps=p.turbo_steps_without_lora, text_guidance_scale=1.0)
            notes.append(
                f"turbo without a distillation LoRA: {p.turbo_steps_without_lora} steps instead of "
                f"{p.sample_steps}, text guidance off (2 passes per step instead of 3); expect "
                "lower quality than a LoRA-distilled turbo"
            )
        if spec.sample_steps is not None:
            settings["num_inference_steps"] = spec.sample_steps
        if profile.step_cache is not None:
            steps = settings["num_inference_steps"]
            computed = len(profile.step_cache.computed_steps(steps))
            notes.append(
                f"balanced: the transformer ran {computed} of {steps} steps per clip (step "
                "cache), VAE decoded in bf16"
            )
        return settings, notes

    # ------------------------------------------------------------------ stages
    def _audio_features(self, inputs: PreparedInputs) -> list[torch.Tensor]:
        # wav2vec2 sees the audio actually rendered plus 1 s of context past the cut.
        keep = int((inputs.frames / VIDEO_FPS + 1.0) * MODEL_SAMPLE_RATE)
        return [self.audio_encoder.encode(track[:keep]) for track in inputs.model_tracks]

    def _conditioning(
        self, spec: RenderSpec, portrait: Image.Image, video: ReferenceSource | None
    ) -> tuple[ReferenceSource, int, int, torch.Tensor | None]:
        """The reference source cropped to its bucket (chosen on the video's frame 0 if there is
        a video), the bucket's height and width, and the speaker masks."""
        first = video.reference_frame(0) if video is not None else portrait
        height, width = bucket_size(
            first.height, first.width, spec.resolution, self._preset.bucket_scale
        )
        masks = None
        if len(spec.audio_paths) == 2:
            masks = speaker_masks(first.height, first.width, height, width, spec.bounding_boxes)
        if video is not None:
            return BucketedSource(video, height, width), height, width, masks
        return StillImage(resize_and_crop(portrait, height, width)), height, width, masks

    def render(
        self,
        spec: RenderSpec,
        out_path: Path,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        inputs: PreparedInputs | None = None,
        video: ReferenceSource | None = None,
        checkpoint: CheckpointPlace | None = None,
    ) -> RenderOutcome:
        """Render ``spec`` to an H.264/AAC MP4 at ``out_path`` (25 fps, audio trimmed to fit).

        ``inputs`` are ``spec``'s media already prepared (the worker checks them before it
        loads the model); without them the render prepares them itself. ``video`` (dubbing,
        InfiniteTalk presets only) gives each clip's reference frame, at 25 fps, instead of the
        portrait: the bucket comes from its frame 0, and every frame is cropped to it.
        ``checkpoint``: record each finished clip there, and resume from what a previous render
        of the same fingerprint (preset, inputs' contents, parameters) recorded; the output is
        the same MP4 either way. The files stay: the caller removes them when the job ends.

        Raises:
            InputRejectedError: bad input media, with its code and a message naming the input.
            RenderCancelled: ``should_cancel`` returned True; nothing is left behind.
        """
        out_path = Path(out_path)
        report = progress or (lambda stage, step, total: None)
        cancelled = should_cancel or (lambda: False)
        strategy = STRATEGIES[self._preset.strategy](
            self._preset.frame_num, self._preset.motion_frames
        )
        if video is not None and not strategy.follows_source:
            raise ValueError(f"{self.preset} animates one image; a video needs InfiniteTalk")
        if spec.video_path is not None and not strategy.follows_source:
            # The AWS side refuses this at submit; a direct caller gets the same words.
            raise RenderError(
                f"{self.preset} animates one image: dubbing a video needs an InfiniteTalk model",
                reason="video_needs_infinitetalk",
            )
        timer = _Timer()
        timer.seconds.update(self._pending_timings)
        self._pending_timings = {}
        settings, notes = self.sampling_settings(spec)
        workdir = Path(tempfile.mkdtemp(prefix=".multitalk-", dir=out_path.parent))
        threads = torch.get_num_threads()
        if self._preset.cpu_threads and self.pipeline._execution_device.type == "cpu":
            torch.set_num_threads(self._preset.cpu_threads)
        opened = contextlib.ExitStack()  # the source video's decoder, closed on every outcome
        store: CheckpointStore | None = None
        try:
            with timer.stage("audio"):
                report("audio", 0, 1)
                if inputs is None:
                    inputs = prepare_inputs(spec, workdir)
                features = self._audio_features(inputs)
                frames = inputs.frames
                report("audio", 1, 1)
            self._check(cancelled)
            with timer.stage("conditioning"):
                if video is None and inputs.video is not None:
                    first = inputs.portrait  # the video's first frame picks the bucket
                    size = bucket_size(
                        first.height, first.width, spec.resolution, self._preset.bucket_scale
                    )
                    video = DecodedVideo(opened.enter_context(inputs.video.frames(*size)))
                source, height, width, masks = self._conditioning(spec, inputs.portrait, video)
            image_conditioning = timer.seconds["conditioning"]
            self._check(cancelled)
            saved = None
            if checkpoint is not None:
                store = CheckpointStore(checkpoint, self._fingerprint(spec, settings, frames))
                saved = store.load()
            # A resumed render keeps the seed it drew before (its generator state comes back too).
            seed = saved.seed if saved else spec.seed
            seed = seed if seed is not None else secrets.randbelow(2**32)

            def on_step(step: int, total: int) -> None:
                report("denoise", step, total)
                self._check(cancelled)

            partial = workdir / "video.mp4"
            encode_s = 0.0
            with Mp4Writer(partial, width, height, inputs.soundtrack, frames / VIDEO_FPS) as writer:
                newest: list[np.ndarray] = []  # the last clip's frames, for its checkpoint

                def sink(chunk: np.ndarray) -> None:
                    nonlocal encode_s
                    start = time.perf_counter()
                    writer.write(chunk)
                    encode_s += time.perf_counter() - start
                    newest[:] = [chunk]

                device = self.pipeline._execution_device
                generator = torch.Generator(device=device).manual_seed(seed)
                resume = None
                if saved is not None:
                    assert store is not None
                    with timer.stage("resume"):
                        resume = self._resume(store, saved, writer, generator, width, height)
                    notes.append(
                        f"resumed after a restart: {saved.clip + 1} of "
                        f"{strategy.num_clips(frames)} clips kept from before it"
                    )

                def clip_done(clip: int, latents: torch.Tensor, emitted: int) -> None:
                    assert store is not None
                    if clip + 1 == strategy.num_clips(frames):
                        # Nothing renders after the last clip: recording it would only make the
                        # render wait for its write at the end.
                        return
                    store.save(
                        clip=clip,
                        emitted=emitted,
                        seed=seed,
                        generator_state=generator.get_state(),
                        latents=latents,
                        frames=newest[0],
                    )

                with self.accelerator.job(spec.speed) as applied, timer.stage("denoise"):
                    self.pipeline(
                        source=source,
                        audio_features=features,
                        num_frames=frames,
                        strategy=strategy,
                        prompt=spec.prompt,
                        negative_prompt=self._preset.negative_prompt,
                        class_masks=masks,
                        generator=generator,
                        frame_sink=sink,
                        step_callback=on_step,
                        color_correction_strength=self._preset.color_correction_strength,
                        timings=timer.seconds,
                        resume=resume,
                        clip_done=None if store is None else clip_done,
                        **settings,
                    )
                blocked_in_denoise = 0.0
                if store is not None:
                    blocked_in_denoise = store.blocked_s
                    store.close()
                    timer.seconds["checkpoint"] = store.blocked_s
                report("encode", 0, 1)
                finish = time.perf_counter()
            timer.seconds["encode"] = encode_s + time.perf_counter() - finish
            # The pipeline's per-clip conditioning and decode ran inside "denoise": report apart.
            clip_conditioning = timer.seconds["conditioning"] - image_conditioning
            inner = timer.seconds.get("decode", 0.0) + encode_s + clip_conditioning
            inner += blocked_in_denoise
            timer.seconds["denoise"] -= inner
            if applied.switch_s:
                timer.seconds["lora_switch"] = applied.switch_s
            partial.replace(out_path)
            report("encode", 1, 1)
        finally:
            if store is not None:
                store.close()  # the last finished clip is recorded even when the render fails
            opened.close()
            shutil.rmtree(workdir, ignore_errors=True)
            torch.set_num_threads(threads)
        return RenderOutcome(
            video_path=out_path,
            frames=frames,
            fps=VIDEO_FPS,
            width=width,
            height=height,
            duration_s=frames / VIDEO_FPS,
            model=self.preset,
            speed=spec.speed,
            graphs_compiled=applied.graphs_compiled,
            timings_s={k: round(v, 4) for k, v in timer.seconds.items()},
            seed=seed,
            sample_steps=settings["num_inference_steps"],
            guidance_passes=MultiTalkPipeline.guidance_branches(
                settings["text_guidance_scale"], settings["audio_guidance_scale"]
            ),
            notes=[*inputs.notes, *notes],
            audio_durations_s=inputs.durations_s,
            resumed_clips=0 if saved is None else saved.clip + 1,
        )

    def _fingerprint(self, spec: RenderSpec, settings: dict, frames: int) -> str:
        # Contents, not paths: a retry downloads the same inputs to other temporary paths.
        sources = [*spec.audio_paths, spec.image_path or spec.video_path]
        return fingerprint(
            {
                "preset": self.preset,
                "spec": spec.model_dump(
                    mode="json", exclude={"audio_paths", "image_path", "video_path"}
                ),
                "inputs": [file_digest(Path(path)) for path in sources],
                "settings": settings,
                "frames": frames,
            }
        )

    @staticmethod
    def _resume(
        store: CheckpointStore,
        saved: Saved,
        writer: Mp4Writer,
        generator: torch.Generator,
        width: int,
        height: int,
    ) -> ClipResume:
        """Replay the finished clips into ``writer`` and restore the generator after them."""
        logger.info("resuming after clip %d from %s", saved.clip, store.directory)
        for chunk in store.replay(saved, width, height):
            writer.write(chunk)
        generator.set_state(saved.generator_state)
        device = generator.device
        return ClipResume(saved.clip, saved.latents.to(device), saved.emitted)

    @staticmethod
    def _check(cancelled: CancelCheck) -> None:
        if cancelled():
            raise RenderCancelled("render cancelled")
