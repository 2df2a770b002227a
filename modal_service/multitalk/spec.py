"""What a render is asked for and what it reports (pydantic, no torch import)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modal_service.contracts import SpeedProfile

ProgressCallback = Callable[[str, int, int], None]
"""``(stage, step, total)``; stages: audio, conditioning, denoise, encode."""
CancelCheck = Callable[[], bool]


class RenderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audio_paths: list[Path] = Field(min_length=1, max_length=2)
    image_path: Path | None = None
    """The portrait; or ``video_path``, a source video to dub (InfiniteTalk presets only)."""
    video_path: Path | None = None
    prompt: str = Field(default="", max_length=2000)
    resolution: Literal["480p", "720p"] = "480p"
    max_duration_s: float = Field(default=15.0, gt=0, le=600)
    """The video's length at most (the request's ``video_length``); longer audio is cut, noted."""
    max_audio_s: float = Field(default=600.0, gt=0, le=600)
    """The deployment's longest audio track: longer ones are refused, never cut."""
    audio_labels: list[str] | None = None
    """How refusals name each track to the caller (``audio 1 (talk.wav)``)."""
    image_label: str = "the reference image"
    video_label: str = "the source video"
    max_video_s: float = Field(default=600.0, gt=0, le=3600)
    """The deployment's longest source video: longer ones are refused, never cut."""
    max_video_bytes: int = Field(default=2 * 1024**3, gt=0)
    speed: SpeedProfile = "quality"
    """The speed profile (``acceleration.profiles``): quality, balanced or turbo."""
    audio_type: Literal["add", "para"] = "add"
    bounding_boxes: list[tuple[int, int, int, int]] | None = None
    """Per speaker ``[top, left, bottom, right]`` in source-image pixels (MultiTalk's order)."""
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    sample_steps: int | None = Field(default=None, ge=1, le=100)

    def audio_label(self, index: int) -> str:
        labels = self.audio_labels or []
        return labels[index] if index < len(labels) else f"audio {index + 1}"

    @model_validator(mode="after")
    def _boxes_match_speakers(self) -> RenderSpec:
        if (self.image_path is None) == (self.video_path is None):
            raise ValueError("give exactly one of image_path or video_path")
        if self.bounding_boxes is not None:
            if len(self.bounding_boxes) != len(self.audio_paths):
                raise ValueError("give one bounding box per speaker, or none")
            for top, left, bottom, right in self.bounding_boxes:
                if not (0 <= top < bottom and 0 <= left < right):
                    raise ValueError(
                        "a bounding box is [top, left, bottom, right] with top<bottom, left<right"
                    )
        return self


class RenderOutcome(BaseModel):
    video_path: Path
    frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    model: str
    """Preset that rendered it; ``tiny`` means random weights (noise, but a real MP4)."""
    speed: SpeedProfile = "quality"
    graphs_compiled: int = 0
    """Graphs ``torch.compile`` built during this render (0 once a container is warm)."""
    timings_s: dict[str, float]
    seed: int = 0
    sample_steps: int = 0
    guidance_passes: int = 0
    notes: list[str] = Field(default_factory=list)
    """How the render deviated from what was asked (a cut, turbo without a LoRA), in plain words."""
    audio_durations_s: list[float] = Field(default_factory=list)
    """Each input track's own duration, before any cut."""
    resumed_clips: int = 0
    """Clips kept from a checkpoint of an earlier, interrupted render of the same job."""
