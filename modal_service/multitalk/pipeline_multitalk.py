"""MultiTalk image+audio-to-video pipeline on diffusers' Wan components.

``__call__`` stages: 1. check inputs, 2. encode prompts, 3. per clip: condition (CLIP image,
VAE-encoded condition frames + mask, motion latents; what they are is the clip strategy's
choice), 4. denoise with batched CFG branches, 5. decode, colour correct and hand new frames to
``frame_sink``. Frames leave the pipeline clip by clip, and the source is read one frame per
clip, so memory does not grow with video length. After each clip ``clip_done`` receives what the
next clip starts from (its final latents), so a render can resume at the clip after it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from PIL import Image

from modal_service.multitalk.acceleration.profiles import StepCache
from modal_service.multitalk.acceleration.step_cache import CachedSteps
from modal_service.multitalk.audio_encoder import clip_audio_windows
from modal_service.multitalk.color import match_colors
from modal_service.multitalk.reference_source import ReferenceSource
from modal_service.multitalk.scheduling import set_multitalk_timesteps
from modal_service.multitalk.streaming import ClipStrategy
from modal_service.multitalk.transformer_multitalk import MultiTalkTransformer3DModel

if TYPE_CHECKING:  # CLIPImageProcessor resolves to a fallback class, with a warning, when imported
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionModel,
        PreTrainedTokenizerBase,
        UMT5EncoderModel,
    )

TEXT_LENGTH = 512  # UMT5 context length the Wan cross-attention is built for

StepCallback = Callable[[int, int], None]
"""``(step, total)`` after each denoising step; may raise to cancel."""
FrameSink = Callable[[np.ndarray], None]
"""Receives ``uint8`` frames ``(T, H, W, 3)`` in order."""
ClipDone = Callable[[int, torch.Tensor, int], None]
"""``(clip, its final latents, frames emitted so far)`` once the clip's frames went to the sink."""


@dataclass(frozen=True)
class ClipResume:
    """Where a render picks up: after clip ``clip``, whose final latents were ``latents``, with
    ``emitted`` frames already delivered. The caller restores the generator's state itself."""

    clip: int
    latents: torch.Tensor
    emitted: int


def _add(timings: dict[str, float], stage: str, started: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started


class MultiTalkPipeline(DiffusionPipeline):
    """Audio-driven talking video from one portrait (1 or 2 speakers)."""

    model_cpu_offload_seq = "text_encoder->image_encoder->transformer->vae"
    _optional_components: ClassVar[list[str]] = []

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: UMT5EncoderModel,
        image_encoder: CLIPVisionModel,
        image_processor: CLIPImageProcessor,
        transformer: MultiTalkTransformer3DModel,
        vae: AutoencoderKLWan,
        scheduler: FlowMatchEulerDiscreteScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            image_encoder=image_encoder,
            image_processor=image_processor,
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
        )
        self.vae_scale_temporal = 4
        self.vae_scale_spatial = 8

    # ----------------------------------------------------------------------------- conditions
    def check_inputs(
        self,
        image: Image.Image,
        audio_features: list[torch.Tensor],
        class_masks: torch.Tensor | None,
        num_frames: int,
        height: int,
        width: int,
    ) -> None:
        if not 1 <= len(audio_features) <= 2:
            raise ValueError(f"1 or 2 speakers supported, got {len(audio_features)}")
        if image.size != (width, height):
            raise ValueError(f"image is {image.size}, expected the bucketed size {(width, height)}")
        if height % 16 or width % 16:
            raise ValueError(f"height and width must be multiples of 16, got {height}x{width}")
        if num_frames < 1:
            raise ValueError("num_frames must be positive")
        if len(audio_features) == 2 and (class_masks is None or class_masks.shape[0] != 3):
            raise ValueError("two speakers need class masks (speaker 1, speaker 2, background)")

    def encode_prompt(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """UMT5 states ``(len(prompts), 512, dim)``, zero past each prompt's real tokens."""
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=TEXT_LENGTH,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        mask = tokens.attention_mask.to(device)
        states = self.text_encoder(
            tokens.input_ids.to(device), attention_mask=mask
        ).last_hidden_state
        return states * mask[..., None].to(states.dtype)

    def encode_image(self, frame: torch.Tensor) -> torch.Tensor:
        """CLIP penultimate-layer states for one frame ``(1, 3, H, W)`` in [-1, 1]."""
        pixels = (
            ((frame[0].float().clamp(-1, 1) + 1) * 127.5)
            .round()
            .byte()
            .permute(1, 2, 0)
            .cpu()
            .numpy()
        )
        # Wan's CLIP squashes the whole frame to the input size (no crop): keep both speakers.
        side = {
            "height": self.image_processor.crop_size["height"],
            "width": self.image_processor.crop_size["width"],
        }
        inputs = self.image_processor(
            images=pixels, do_center_crop=False, size=side, return_tensors="pt"
        )
        param = next(self.image_encoder.parameters())
        out = self.image_encoder(
            inputs.pixel_values.to(param.device, param.dtype), output_hidden_states=True
        )
        return out.hidden_states[-2]

    def _latent_stats(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, self.vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(self.vae.config.latents_mean).view(shape).to(latents)
        std = torch.tensor(self.vae.config.latents_std).view(shape).to(latents)
        return mean, std

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised VAE latents (the mode) of pixel frames ``(1, 3, T, H, W)`` in [-1, 1]."""
        latents = self.vae.encode(frames.to(self.vae.dtype)).latent_dist.mode()
        mean, std = self._latent_stats(latents)
        return (latents - mean) / std

    def encode_condition(self, frames: torch.Tensor, clip_frames: int) -> torch.Tensor:
        """I2V condition ``(1, 4 + z, T_lat, h, w)``: frame mask + VAE(condition frames + zeros)."""
        _, _, given, height, width = frames.shape
        padded = torch.cat(
            [frames, frames.new_zeros(1, 3, clip_frames - given, height, width)], dim=2
        )
        latents = self.encode_video(padded)
        lat_h, lat_w = height // self.vae_scale_spatial, width // self.vae_scale_spatial
        mask = torch.zeros(1, clip_frames, lat_h, lat_w, device=latents.device)
        mask[:, :given] = 1
        # The first frame stands for a whole 4-frame latent group: repeat it, then fold by 4.
        mask = torch.cat([mask[:, :1].repeat(1, self.vae_scale_temporal, 1, 1), mask[:, 1:]], dim=1)
        mask = mask.view(1, -1, self.vae_scale_temporal, lat_h, lat_w).transpose(1, 2)
        return torch.cat([mask.to(latents.dtype), latents], dim=1)

    def decode(self, latents: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Pixels in [-1, 1]; ``dtype`` (bf16) autocasts the decoder, the VAE's own weights stay."""
        mean, std = self._latent_stats(latents)
        with torch.autocast(latents.device.type, dtype=dtype, enabled=dtype is not None):
            video = self.vae.decode((latents * std + mean).to(self.vae.dtype)).sample
        return video.float().clamp(-1, 1)

    # ----------------------------------------------------------------------------- sampling
    @staticmethod
    def guidance_branches(text_scale: float, audio_scale: float) -> int:
        """Passes per step: 3 (cond, no text, neither); 2 (cond, no audio) without text CFG; 1."""
        if text_scale == 1.0 and audio_scale == 1.0:
            return 1
        return 2 if text_scale == 1.0 else 3

    @torch.no_grad()
    def __call__(
        self,
        source: ReferenceSource,
        audio_features: list[torch.Tensor],
        num_frames: int,
        strategy: ClipStrategy,
        prompt: str = "",
        negative_prompt: str = "",
        class_masks: torch.Tensor | None = None,
        num_inference_steps: int = 40,
        shift: float = 7.0,
        text_guidance_scale: float = 5.0,
        audio_guidance_scale: float = 4.0,
        color_correction_strength: float = 1.0,
        distilled_schedule: bool = False,
        step_cache: StepCache | None = None,
        vae_decode_dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
        batch_cfg: bool = True,
        frame_sink: FrameSink | None = None,
        step_callback: StepCallback | None = None,
        timings: dict[str, float] | None = None,
        resume: ClipResume | None = None,
        clip_done: ClipDone | None = None,
    ) -> int:
        """Render ``num_frames`` frames at 25 fps; returns how many went to ``frame_sink`` in all
        (counting the ``resume.emitted`` frames delivered before).

        Args:
            source: the reference frames (a still image or a video's frames, 25 fps), already
                bucketed and cropped to the output size; the strategy reads frame 0, or each
                clip's frame.
            audio_features: per speaker ``(frames, layers, hidden)`` wav2vec2 features at 25 fps.
            class_masks: ``(3, height, width)`` speaker 1, speaker 2, background (two speakers).
            distilled_schedule: sample at a step-distillation LoRA's sigmas (turbo).
            step_cache: skip transformer passes on cached steps (balanced).
            vae_decode_dtype: decode under autocast to this dtype (bf16), else the VAE's own.
            timings: seconds spent on per-clip ``conditioning`` and ``decode`` are added here.
            resume: start after this finished clip instead of at clip 0 (its latents are decoded
                again: the next clip is conditioned on its frames).
            clip_done: called after every clip, with what a later ``resume`` needs.
        """
        cache = (
            CachedSteps(self.transformer, step_cache, num_inference_steps) if step_cache else None
        )
        with cache or contextlib.nullcontext():
            return self._render(
                source,
                audio_features,
                num_frames,
                strategy,
                prompt,
                negative_prompt,
                class_masks,
                num_inference_steps,
                shift,
                text_guidance_scale,
                audio_guidance_scale,
                color_correction_strength,
                distilled_schedule,
                cache,
                vae_decode_dtype,
                generator,
                batch_cfg,
                frame_sink,
                step_callback,
                timings,
                resume,
                clip_done,
            )

    def _render(
        self,
        source: ReferenceSource,
        audio_features: list[torch.Tensor],
        num_frames: int,
        strategy: ClipStrategy,
        prompt: str,
        negative_prompt: str,
        class_masks: torch.Tensor | None,
        num_inference_steps: int,
        shift: float,
        text_guidance_scale: float,
        audio_guidance_scale: float,
        color_correction_strength: float,
        distilled_schedule: bool,
        cache: CachedSteps | None,
        vae_decode_dtype: torch.dtype | None,
        generator: torch.Generator | None,
        batch_cfg: bool,
        frame_sink: FrameSink | None,
        step_callback: StepCallback | None,
        timings: dict[str, float] | None,
        resume: ClipResume | None,
        clip_done: ClipDone | None,
    ) -> int:
        timings = timings if timings is not None else {}
        first = source.reference_frame(0)
        width, height = first.size
        # 1. Check inputs
        self.check_inputs(first, audio_features, class_masks, num_frames, height, width)
        device = self._execution_device
        dtype = self.transformer.dtype
        speakers = len(audio_features)
        branches = self.guidance_branches(text_guidance_scale, audio_guidance_scale)

        # 2. Prompts: cond text, and the negative prompt for the text-dropped branches
        text = self.encode_prompt([prompt, negative_prompt], device).to(dtype)
        if branches == 3:
            text = text[[0, 1, 1]]
        elif branches == 2:
            text = text[[0, 0]]
        else:
            text = text[:1]

        def frame_at(index: int) -> torch.Tensor:
            frame = first if index == 0 else source.reference_frame(index)
            if frame.size != (width, height):
                raise ValueError(f"source frame {index} is {frame.size}, not {(width, height)}")
            pixels = torch.from_numpy(np.array(frame)).permute(2, 0, 1).float().div(127.5).sub(1)
            return pixels[None, :, None].to(device)  # (1, 3, 1, H, W)

        # Every clip is colour-corrected toward frame 0, whatever it was conditioned on.
        reference = frame_at(0)
        token_masks = None
        if class_masks is not None and speakers == 2:
            grid = (height // self.vae_scale_spatial // 2, width // self.vae_scale_spatial // 2)
            token_masks = (
                torch.nn.functional.interpolate(
                    class_masks[None].float(), size=grid, mode="nearest"
                )[0]
                > 0
            )

        clips = strategy.num_clips(num_frames)
        total_steps = clips * num_inference_steps
        previous = None
        emitted = 0
        if resume is not None:
            started = time.perf_counter()
            previous = self._decode_clip(
                resume.latents, reference, color_correction_strength, vae_decode_dtype
            )
            _add(timings, "decode", started)
            emitted = resume.emitted
        for clip in range(0 if resume is None else resume.clip + 1, clips):
            # 3. Condition this clip
            started = time.perf_counter()
            cond_frames = strategy.condition_frames(clip, frame_at, previous)
            image_states = self.encode_image(cond_frames[:, :, -1]).to(dtype)
            y = self.encode_condition(cond_frames, strategy.frame_num).to(dtype)
            motion_latents = strategy.motion_latents(
                clip, cond_frames, y[:, 4:], previous, self.encode_video
            )
            audio = torch.stack(
                [
                    clip_audio_windows(
                        f, strategy.audio_start(clip), strategy.frame_num, mirror_tail=clip > 0
                    )
                    for f in audio_features
                ]
            )[None].to(device, dtype)  # (1, speakers, frames, window, layers, hidden)
            if branches == 3:
                audio_in, binding = (
                    torch.cat([audio, audio, torch.zeros_like(audio)]),
                    [True, True, False],
                )
            elif branches == 2:
                audio_in, binding = torch.cat([audio, torch.zeros_like(audio)]), [True, False]
            else:
                audio_in, binding = audio, [True]
            binding = torch.tensor(binding, device=device)
            _add(timings, "conditioning", started)

            latents = torch.randn(
                (1, self.vae.config.z_dim, *y.shape[2:]),
                generator=generator,
                device=device,
                dtype=torch.float32,
            )
            set_multitalk_timesteps(
                self.scheduler, num_inference_steps, shift, distilled=distilled_schedule
            )
            if cache is not None:
                cache.new_clip()
            sigmas = self.scheduler.sigmas.tolist()
            latents = strategy.inject(clip, latents, motion_latents, sigmas[0], generator)

            # 4. Denoise
            for i, t in enumerate(self.scheduler.timesteps):
                model_in = torch.cat([latents.to(dtype), y], dim=1)
                velocity = self._predict(
                    model_in,
                    t,
                    text,
                    image_states,
                    audio_in,
                    token_masks,
                    binding,
                    batch_cfg,
                    cache,
                ).float()
                if branches == 3:
                    cond, no_text, uncond = velocity.chunk(3)
                    velocity = (
                        uncond
                        + text_guidance_scale * (cond - no_text)
                        + audio_guidance_scale * (no_text - uncond)
                    )
                elif branches == 2:
                    cond, no_audio = velocity.chunk(2)
                    velocity = no_audio + audio_guidance_scale * (cond - no_audio)
                latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]
                latents = strategy.inject(clip, latents, motion_latents, sigmas[i + 1], generator)
                if step_callback is not None:
                    step_callback(clip * num_inference_steps + i + 1, total_steps)

            # 5. Decode, colour-correct, emit
            started = time.perf_counter()
            video = self._decode_clip(
                latents, reference, color_correction_strength, vae_decode_dtype
            )
            _add(timings, "decode", started)
            fresh = strategy.new_frames(video, clip)[:, :, : num_frames - emitted]
            if frame_sink is not None:
                frames = ((fresh[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte()
                frame_sink(frames.cpu().numpy())
            emitted += fresh.shape[2]
            previous = video
            if clip_done is not None:
                clip_done(clip, latents, emitted)
        return emitted

    def _decode_clip(
        self,
        latents: torch.Tensor,
        reference: torch.Tensor,
        color_correction_strength: float,
        vae_decode_dtype: torch.dtype | None,
    ) -> torch.Tensor:
        """A clip's pixels ``(1, 3, T, H, W)``, colour-corrected toward ``reference``."""
        video = self.decode(latents, vae_decode_dtype)
        video = match_colors(
            video[0].transpose(0, 1), reference[0, :, 0], color_correction_strength
        )
        return video.transpose(0, 1)[None]

    def _predict(
        self,
        model_in: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        image_states: torch.Tensor,
        audio: torch.Tensor,
        token_masks: torch.Tensor | None,
        binding: torch.Tensor,
        batch_cfg: bool,
        cache: CachedSteps | None = None,
    ) -> torch.Tensor:
        """Velocity for every CFG branch, in one batched forward or one forward per branch."""
        branches = text.shape[0]
        groups = [slice(0, branches)] if batch_cfg else [slice(b, b + 1) for b in range(branches)]
        outputs = []
        for index, group in enumerate(groups):
            n = group.stop - group.start
            # Separate forwards keep separate step-cache states (one per branch).
            branch = cache.branch(f"branch{index}") if cache else contextlib.nullcontext()
            with branch:
                outputs.append(
                    self.transformer(
                        hidden_states=model_in.expand(n, -1, -1, -1, -1),
                        timestep=t.expand(n).to(model_in.device),
                        encoder_hidden_states=text[group],
                        encoder_hidden_states_image=image_states.expand(n, -1, -1),
                        audio_embeds=audio[group],
                        ref_target_masks=token_masks,
                        speaker_binding=binding[group],
                        return_dict=False,
                    )[0]
                )
        return torch.cat(outputs)
