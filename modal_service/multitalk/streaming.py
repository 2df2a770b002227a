"""Clip streaming strategies: how a video longer than one clip is stitched together.

The network renders fixed-length clips. A strategy decides what conditions each clip (which
frames are given, which image CLIP sees), how those frames enter the latents at every step, and
which decoded frames are new. MultiTalk re-noises the last 25 generated frames to the current
noise level; InfiniteTalk (same network) writes 9 clean frames and re-reads the reference each
clip, and will be a second subclass.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch


class ClipStrategy(ABC):
    """Base class: clip geometry plus the per-clip hooks the pipeline calls."""

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

    @abstractmethod
    def condition_frames(
        self, reference: torch.Tensor, previous: torch.Tensor | None
    ) -> torch.Tensor:
        """Pixel frames ``(1, 3, m, H, W)`` the clip is conditioned on (mask 1 in the I2V input)."""

    @abstractmethod
    def inject(
        self,
        latents: torch.Tensor,
        motion_latents: torch.Tensor | None,
        sigma: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Write the motion latents into ``latents`` at noise level ``sigma``."""

    @abstractmethod
    def new_frames(self, video: torch.Tensor, clip: int) -> torch.Tensor:
        """The decoded frames ``(1, 3, T, H, W)`` of clip ``clip`` that are not repeats."""


class MultiTalkStreaming(ClipStrategy):
    """MultiTalk: the last ``motion_frames`` frames condition the next clip, re-noised each step."""

    def __init__(self, frame_num: int = 81, motion_frames: int = 25) -> None:
        super().__init__(frame_num, motion_frames)

    def condition_frames(
        self, reference: torch.Tensor, previous: torch.Tensor | None
    ) -> torch.Tensor:
        return reference if previous is None else previous[:, :, -self.motion_frames :]

    def inject(
        self,
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

    def new_frames(self, video: torch.Tensor, clip: int) -> torch.Tensor:
        return video if clip == 0 else video[:, :, self.motion_frames :]
