"""Clip streaming strategies: how a video longer than one clip is stitched together.

The network renders fixed-length clips. A strategy decides what conditions each clip (which
frames are given, which image CLIP sees), which clean latents the clip continues from and how
they enter the latents at every step. Both strategies here are the same network's: MultiTalk
re-noises the last 25 generated frames; InfiniteTalk re-reads the source at each clip's audio
position and writes 9 clean motion frames.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Literal

import torch

FrameAt = Callable[[int], torch.Tensor]
"""The source frame at a 25 fps index, as pixels ``(1, 3, 1, H, W)`` in [-1, 1]."""
Encode = Callable[[torch.Tensor], torch.Tensor]
"""Pixel frames ``(1, 3, T, H, W)`` -> normalised VAE latents ``(1, z, 1 + (T - 1) // 4, h, w)``."""


class ClipStrategy(ABC):
    """Base class: clip geometry plus the per-clip hooks the pipeline calls."""

    follows_source: ClassVar[bool]
    """Whether later clips read the source again (a video source only makes sense if so)."""

    def __init__(self, frame_num: int, motion_frames: int) -> None:
        if (frame_num - 1) % 4 or (motion_frames - 1) % 4 or not 0 < motion_frames < frame_num:
            raise ValueError("frame_num and motion_frames must be 4n+1 with motion < frame_num")
        self.frame_num = frame_num
        self.motion_frames = motion_frames

    @property
    def stride(self) -> int:
        """New frames each clip after the first."""
        return self.frame_num - self.motion_frames

    @property
    def motion_latent_frames(self) -> int:
        return 1 + (self.motion_frames - 1) // 4

    def num_clips(self, total_frames: int) -> int:
        return 1 + max(0, math.ceil((total_frames - self.frame_num) / self.stride))

    def audio_start(self, clip: int) -> int:
        return clip * self.stride

    def new_frames(self, video: torch.Tensor, clip: int) -> torch.Tensor:
        """The decoded frames ``(1, 3, T, H, W)`` of clip ``clip`` that are not repeats: a later
        clip's first ``motion_frames`` frames re-render the previous clip's last ones."""
        return video if clip == 0 else video[:, :, self.motion_frames :]

    @abstractmethod
    def condition_frames(
        self, clip: int, frame_at: FrameAt, previous: torch.Tensor | None
    ) -> torch.Tensor:
        """Pixel frames ``(1, 3, m, H, W)`` the clip is conditioned on (mask 1 in the I2V input);
        CLIP sees the last. ``previous`` is the last clip, decoded and colour-corrected."""

    @abstractmethod
    def motion_latents(
        self,
        clip: int,
        condition: torch.Tensor,
        condition_latents: torch.Tensor,
        previous: torch.Tensor | None,
        encode: Encode,
    ) -> torch.Tensor | None:
        """Float32 latents written into the clip's first latent frames (None: nothing).

        ``condition_latents`` are the VAE part of the I2V input (``condition`` padded with zeros
        to the clip length, encoded)."""

    @abstractmethod
    def inject(
        self,
        clip: int,
        latents: torch.Tensor,
        motion_latents: torch.Tensor | None,
        sigma: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Write the motion latents into ``latents``, which are at noise level ``sigma``; called
        before the first step and after every step, so the model always sees them."""


class MultiTalkStreaming(ClipStrategy):
    """MultiTalk: the last ``motion_frames`` frames condition the next clip, re-noised each step."""

    follows_source = False

    def __init__(self, frame_num: int = 81, motion_frames: int = 25) -> None:
        super().__init__(frame_num, motion_frames)

    def condition_frames(
        self, clip: int, frame_at: FrameAt, previous: torch.Tensor | None
    ) -> torch.Tensor:
        return frame_at(0) if previous is None else previous[:, :, -self.motion_frames :]

    def motion_latents(
        self,
        clip: int,
        condition: torch.Tensor,
        condition_latents: torch.Tensor,
        previous: torch.Tensor | None,
        encode: Encode,
    ) -> torch.Tensor | None:
        if previous is None:
            return None
        return condition_latents[:, :, : self.motion_latent_frames].float()

    def inject(
        self,
        clip: int,
        latents: torch.Tensor,
        motion_latents: torch.Tensor | None,
        sigma: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        if motion_latents is None:
            return latents
        noise = torch.randn(
            motion_latents.shape,
            generator=generator,
            device=motion_latents.device,
            dtype=motion_latents.dtype,
        )
        latents = latents.clone()
        latents[:, :, : motion_latents.shape[2]] = (1 - sigma) * motion_latents + sigma * noise
        return latents


class InfiniteTalkStreaming(ClipStrategy):
    """InfiniteTalk: each clip is conditioned on the source frame at its audio position, and
    continues from the previous clip's last ``motion_frames`` frames, written clean every step.

    Clip 0 continues from its own reference frame (its VAE latent, one latent frame). Audio
    shorter than one clip renders one clip (the reference refuses it, and with a frame cap below
    the audio's length renders a second clip that is cut away: the same frames either way).
    """

    follows_source = True

    def __init__(self, frame_num: int = 81, motion_frames: int = 9) -> None:
        super().__init__(frame_num, motion_frames)

    def condition_frames(
        self, clip: int, frame_at: FrameAt, previous: torch.Tensor | None
    ) -> torch.Tensor:
        return frame_at(self.audio_start(clip))

    def motion_latents(
        self,
        clip: int,
        condition: torch.Tensor,
        condition_latents: torch.Tensor,
        previous: torch.Tensor | None,
        encode: Encode,
    ) -> torch.Tensor | None:
        # Encoded on their own, not sliced from the I2V input: there the reference frame leads.
        frames = condition if previous is None else previous[:, :, -self.motion_frames :]
        return encode(frames).float()

    def inject(
        self,
        clip: int,
        latents: torch.Tensor,
        motion_latents: torch.Tensor | None,
        sigma: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        if motion_latents is None:
            return latents
        if clip > 0:
            # The reference re-noises the motion latents and overwrites them at once with the
            # clean ones; drawing (and dropping) that noise keeps a seed's per-clip noise its own.
            torch.randn(
                motion_latents.shape,
                generator=generator,
                device=motion_latents.device,
                dtype=motion_latents.dtype,
            )
        latents = latents.clone()
        latents[:, :, : motion_latents.shape[2]] = motion_latents
        return latents


STRATEGIES: dict[Literal["multitalk", "infinitetalk"], type[ClipStrategy]] = {
    "multitalk": MultiTalkStreaming,
    "infinitetalk": InfiniteTalkStreaming,
}
