"""The job estimate: a model of the deployment, its figures from the committed speed model.

Expected values are worked from the data file's figures (seconds per pass, speed-ups, the start
allowance), so the tests hold whatever a GPU run later measures.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from aws.lambda_proxy.config import Settings
from aws.lambda_proxy.exceptions import ConfigurationError
from aws.lambda_proxy.jobs.estimate import (
    Deployment,
    clip_count,
    estimate,
    revised_estimate,
    speed_model,
)
from aws.lambda_proxy.jobs.models import iso, utc_now
from modal_service.contracts import GenerationParams
from tests.unit.lambda_proxy.test_config_and_models import REQUIRED

ONE_H100 = Deployment(gpu_kind="H100", gpus_per_container=1, warm_containers=0, containers=4)


def _params(**params: object) -> GenerationParams:
    return GenerationParams.model_validate(params)


def _seconds(deployment: Deployment = ONE_H100, ahead: tuple[float, ...] = (), **params: object):
    return estimate(_params(**params), deployment, ahead).seconds


def _render_s(clips: int, profile: str, resolution: str = "480p", gpus: int = 1) -> float:
    model = speed_model()
    steps = model.profiles[profile]
    gpu = model.gpus["H100"]
    per_clip = steps.steps * steps.passes_per_step * gpu.pass_s[resolution].value
    return clips * per_clip / gpu.speedup[resolution][profile][gpus].value


def test_the_arithmetic_is_clips_times_passes_over_the_speedup_plus_the_start() -> None:
    start = speed_model().start_s.value
    # 15 s is 375 frames: MultiTalk's first clip makes 81, each later one 56 more: 7 clips
    assert clip_count(_params(max_duration_s=15)) == 7
    assert _seconds(max_duration_s=15) == math.ceil(start + _render_s(7, "quality"))
    # InfiniteTalk's later clips make 72 new frames: 6 clips
    assert clip_count(_params(max_duration_s=15, model="infinitetalk-14b")) == 6
    assert _seconds(max_duration_s=15, speed="turbo") == math.ceil(start + _render_s(7, "turbo"))


def test_the_estimate_grows_with_length_and_resolution() -> None:
    assert _seconds(max_duration_s=5) < _seconds(max_duration_s=15) < _seconds(max_duration_s=60)
    for speed in ("quality", "balanced", "turbo"):
        assert _seconds(speed=speed, resolution="480p") < _seconds(speed=speed, resolution="720p")


@pytest.mark.parametrize("resolution", ["480p", "720p"])
def test_the_estimate_orders_the_profiles(resolution: str) -> None:
    seconds = {
        speed: _seconds(speed=speed, resolution=resolution, max_duration_s=15)
        for speed in ("quality", "balanced", "turbo")
    }
    assert seconds["turbo"] < seconds["balanced"] < seconds["quality"]


@pytest.mark.parametrize("model", ["multitalk-14b", "infinitetalk-14b", "infinitetalk-14b-multi"])
def test_a_short_video_costs_a_whole_clip(model: str) -> None:
    one_clip = _seconds(model=model, max_duration_s=81 / 25)
    assert _seconds(model=model, max_duration_s=1) == one_clip
    assert _seconds(model=model, max_duration_s=3.3) > one_clip


def test_infinitetalk_needs_fewer_clips_for_long_videos() -> None:
    # 15,000 frames: 1 + ceil(14,919 / 56) = 268 clips against 1 + ceil(14,919 / 72) = 209
    assert clip_count(_params(max_duration_s=600)) == 268
    for model in ("infinitetalk-14b", "infinitetalk-14b-multi"):
        assert clip_count(_params(max_duration_s=600, model=model)) == 209
    assert _seconds(max_duration_s=600, model="infinitetalk-14b") < _seconds(max_duration_s=600)


def test_sample_steps_replace_the_profiles_steps() -> None:
    assert _seconds(speed="quality", sample_steps=4) < _seconds(speed="quality")
    assert _seconds(speed="turbo", sample_steps=8) > _seconds(speed="turbo")


@pytest.mark.parametrize("model", ["tiny", "tiny-infinitetalk"])
def test_tiny_estimates_stay_seconds(model: str) -> None:
    for speed in ("quality", "turbo"):
        assert _seconds(model=model, speed=speed, resolution="720p", max_duration_s=5) == 15


@pytest.mark.parametrize("profile", ["quality", "turbo"])
def test_more_gpus_per_container_render_faster_but_less_than_linearly(profile: str) -> None:
    renders = {
        gpus: estimate(
            _params(speed=profile), ONE_H100.model_copy(update={"gpus_per_container": gpus})
        ).render_s
        for gpus in (1, 2, 4, 8)
    }
    assert renders[1] > renders[2] > renders[4] > renders[8]
    assert renders[8] > renders[1] / 8
    assert renders[8] == pytest.approx(_render_s(7, profile, gpus=8))


def test_a_slower_gpu_kind_takes_longer() -> None:
    a100 = ONE_H100.model_copy(update={"gpu_kind": "A100-80GB"})
    h200 = ONE_H100.model_copy(update={"gpu_kind": "H200"})
    assert _seconds(a100) > _seconds(ONE_H100)
    assert _seconds(h200) == _seconds(ONE_H100)  # same compute; only memory differs


def test_a_free_warm_container_saves_the_cold_start() -> None:
    start = speed_model().start_s.value
    warm = ONE_H100.model_copy(update={"warm_containers": 2})
    cold = estimate(_params(), ONE_H100)
    assert cold.start_s == start
    assert estimate(_params(), warm).start_s == 0
    assert estimate(_params(), warm, [100.0]).start_s == 0  # one busy, one warm free
    # both warm ones busy, a third container starts cold
    assert estimate(_params(), warm, [100.0, 200.0]).start_s == start


def test_the_queue_waits_for_a_container_when_all_are_busy() -> None:
    two = ONE_H100.model_copy(update={"containers": 2})
    free = estimate(_params(), two, [500.0])
    assert free.queue_s == 0
    # two busy: the first to finish frees one, and it is loaded (no cold start)
    full = estimate(_params(), two, [900.0, 300.0])
    assert (full.queue_s, full.start_s) == (300.0, 0.0)
    # four ahead on two containers: after the first three finish one is left running
    deep = estimate(_params(), two, [900.0, 300.0, 1200.0, 50.0])
    assert deep.queue_s == 900.0
    assert deep.seconds > full.seconds > free.seconds - free.start_s
    # a job past its projected finish counts as finishing now
    assert estimate(_params(), two, [-40.0, 700.0]).queue_s == 0


def test_a_running_jobs_estimate_is_elapsed_plus_remaining() -> None:
    now = utc_now()
    created = iso(now - timedelta(seconds=100.2))
    assert revised_estimate(created, 30.0, now) == 131
    assert revised_estimate(created, 0.0, now) == 101


def test_the_deployment_comes_from_the_settings() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "GPU_KIND": "A100-80GB",
            "GPUS_PER_CONTAINER": "8",
            "WARM_CONTAINERS": "2",
            "GPU_SLOTS": "6",
        }
    )
    assert Deployment.of(settings) == Deployment(
        gpu_kind="A100-80GB", gpus_per_container=8, warm_containers=2, containers=6
    )
    defaults = Deployment.of(Settings.from_env(REQUIRED))
    assert (defaults.gpu_kind, defaults.gpus_per_container, defaults.warm_containers) == (
        "H100",
        1,
        0,
    )


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("GPU_KIND", "L4", "gpu_kind"),
        ("GPUS_PER_CONTAINER", "3", "gpus_per_container"),
        ("GPUS_PER_CONTAINER", "16", "gpus_per_container"),
        ("WARM_CONTAINERS", "-1", "warm_containers"),
        ("WARM_CONTAINERS", "11", "more than gpu_slots"),
    ],
)
def test_a_deployment_the_estimates_cannot_model_is_refused(
    variable: str, value: str, field: str
) -> None:
    with pytest.raises(ConfigurationError, match=field):
        Settings.from_env({**REQUIRED, "GPU_SLOTS": "10", variable: value})
