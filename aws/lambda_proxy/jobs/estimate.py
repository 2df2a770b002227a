"""How long a job will take, from submission to its video: a model of the deployment.

    estimate = queue wait + container start + render

* render: the clips the renderer will make for ``max_duration_s`` (per preset: MultiTalk's later
  clips add 56 new frames, InfiniteTalk's 72) x the profile's transformer passes (steps x
  passes per step; ``sample_steps`` replaces the steps) x seconds per pass on the deployment's
  GPU kind and resolution / the speed-up of its GPUs per container;
* queue wait: the jobs already unsettled are ahead; while fewer than the deployment's containers
  (``gpu_slots``) are busy a container is free, else the job waits until enough of them are
  projected to finish (each job's ``created_at + estimated_time_s``);
* container start: 0 when a warm container (``warm_containers``) is free or the job waits for a
  busy one to finish (that container is loaded), else the cold-start allowance.

The figures (seconds per pass, speed-ups, the start allowance) come from ``speed_model.json``,
made by ``python -m scripts.bench.speed_model`` from the benchmark results; each is labelled
``measured`` or ``projected`` (no GPU has measured them yet). Left out: the text, image and audio
encoders, the VAE and the MP4 encode, small next to a 40-step clip, not next to turbo's 4 steps.
As a render runs, its progress events replace the estimate with elapsed + remaining time
(:func:`revised_estimate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from aws.lambda_proxy.config import GpuKind, Settings
from aws.lambda_proxy.jobs.models import utc_now
from modal_service.contracts import GenerationParams, PresetName, SpeedProfile

if TYPE_CHECKING:
    from aws.lambda_proxy.services import Services

DATA_FILE = Path(__file__).with_name("speed_model.json")
QUEUE_READ_LIMIT = 100
"""Unsettled jobs read per estimate (one query of the sparse active index); past this many the
queue wait is a lower bound."""

_FPS = 25
_CLIP_FRAMES = 81
_MOTION_FRAMES: dict[PresetName, int] = {
    # preset: frames a later clip repeats from the one before (modal_service/multitalk/presets.py)
    "multitalk-14b": 25,
    "infinitetalk-14b": 9,
    "infinitetalk-14b-multi": 9,
}
_TOY_PRESETS = ("tiny", "tiny-infinitetalk")  # no weights to load
Resolution = Literal["480p", "720p"]


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0)
    source: Literal["measured", "projected"]
    basis: str


class ProfileFigures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(ge=1)
    passes_per_step: float = Field(gt=0)


class GpuFigures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pass_s: dict[Resolution, Figure]
    """One transformer pass (one CFG branch) over an 81-frame clip on one GPU."""
    speedup: dict[Resolution, dict[SpeedProfile, dict[int, Figure]]]
    """GPUs per container -> how much faster one pass runs split across them."""


class SpeedModel(BaseModel):
    """The content of ``speed_model.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generated_by: str
    sources: list[str]
    profiles: dict[SpeedProfile, ProfileFigures]
    start_s: Figure
    gpus: dict[GpuKind, GpuFigures]


@cache
def speed_model() -> SpeedModel:
    return SpeedModel.model_validate_json(DATA_FILE.read_bytes())


class Deployment(BaseModel):
    """What the GPU side runs on (Terraform's copy of the Modal deploy's settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_kind: GpuKind
    gpus_per_container: int
    warm_containers: int = Field(ge=0)
    containers: int = Field(ge=1)
    """How many jobs run at once: Modal's ``max_containers`` (``gpu_slots``)."""

    @classmethod
    def of(cls, settings: Settings) -> Deployment:
        return cls(
            gpu_kind=settings.gpu_kind,
            gpus_per_container=settings.gpus_per_container,
            warm_containers=settings.warm_containers,
            containers=settings.gpu_slots,
        )


class Estimate(BaseModel):
    """The parts of one estimate, in seconds."""

    queue_s: float
    start_s: float
    render_s: float
    clips: int

    @property
    def seconds(self) -> int:
        return math.ceil(self.queue_s + self.start_s + self.render_s)


def clip_count(params: GenerationParams) -> int:
    """Clips a 14B preset renders for ``max_duration_s`` of video: one for the first 81 frames,
    then one per ``81 - motion frames`` new frames or part of them (``StreamingStrategy``); a
    video shorter than a clip still renders a whole one."""
    frames = math.ceil(params.max_duration_s * _FPS)
    stride = _CLIP_FRAMES - _MOTION_FRAMES[params.model]
    return 1 + max(0, math.ceil((frames - _CLIP_FRAMES) / stride))


def render_seconds(params: GenerationParams, deployment: Deployment) -> tuple[float, int]:
    """(seconds of transformer passes, clips) for the job on the deployment's GPUs."""
    if params.model in _TOY_PRESETS:
        return 10.0 + params.max_duration_s, 1  # noise at toy size: seconds on a CPU
    model = speed_model()
    profile = model.profiles[params.speed]
    gpu = model.gpus[deployment.gpu_kind]
    steps = params.sample_steps if params.sample_steps is not None else profile.steps
    per_clip = steps * profile.passes_per_step * gpu.pass_s[params.resolution].value
    speedup = gpu.speedup[params.resolution][params.speed][deployment.gpus_per_container].value
    clips = clip_count(params)
    return per_clip * clips / speedup, clips


def estimate(
    params: GenerationParams, deployment: Deployment, ahead_s: Sequence[float] = ()
) -> Estimate:
    """The job's estimate with ``ahead_s``: seconds until each unsettled job is projected to
    finish (one per job ahead; past its projection counts as finishing now)."""
    render_s, clips = render_seconds(params, deployment)
    busy = len(ahead_s)
    if busy < deployment.containers:
        queue_s = 0.0
        cold = busy >= deployment.warm_containers and params.model not in _TOY_PRESETS
        start_s = speed_model().start_s.value if cold else 0.0
    else:
        # FIFO: a container frees for this job when all but containers - 1 of those ahead are
        # done; it has the model loaded.
        queue_s = sorted(max(0.0, s) for s in ahead_s)[busy - deployment.containers]
        start_s = 0.0
    return Estimate(queue_s=queue_s, start_s=start_s, render_s=render_s, clips=clips)


def estimate_at_submit(services: Services, params: GenerationParams) -> int:
    """Seconds from now to the video for a job about to be created (it is not yet ahead)."""
    now = utc_now()
    ahead = [
        (datetime.fromisoformat(created_at) - now).total_seconds() + estimated_s
        for created_at, estimated_s in services.jobs.unsettled(limit=QUEUE_READ_LIMIT)
    ]
    return estimate(params, Deployment.of(services.settings), ahead).seconds


def revised_estimate(created_at: str, remaining_s: float, now: datetime | None = None) -> int:
    """A running job's estimate from its progress: time since submission + render time left."""
    elapsed = ((now or utc_now()) - datetime.fromisoformat(created_at)).total_seconds()
    return math.ceil(max(0.0, elapsed) + remaining_s)
