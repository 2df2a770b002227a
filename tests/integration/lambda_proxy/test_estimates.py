"""Job estimates on the local stack: the queue read from the jobs table's active index, and the
revision from progress callbacks, through the real API and callback handlers.

The session's jobs table holds every test's unsettled jobs, so the queue tests get a jobs table
of their own (the same keys and indexes) and a deployment with few containers.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from aws.lambda_proxy.jobs.estimate import Deployment, clip_count, estimate, speed_model
from aws.lambda_proxy.services import Services, set_services
from modal_service.contracts import GenerationParams, JobProgress
from tests.integration.lambda_proxy.conftest import Proxy

pytestmark = pytest.mark.stack

OPTIONS = {"model": "multitalk-14b", "speed": "turbo", "video_length": 5}


def _fresh_jobs_table(proxy: Proxy) -> str:
    dynamodb = proxy.stack.client("dynamodb")
    source = dynamodb.describe_table(TableName=proxy.services.settings.jobs_table_name)["Table"]
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=source["KeySchema"],
        AttributeDefinitions=source["AttributeDefinitions"],
        GlobalSecondaryIndexes=[
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in source["GlobalSecondaryIndexes"]
        ],
    )
    return name


@pytest.fixture
def deploy(proxy: Proxy) -> Iterator[Any]:
    """``deploy(**settings)``: the container's services on a fresh jobs table with ``settings``."""

    def _deploy(**settings: Any) -> Services:
        update = {"jobs_table_name": _fresh_jobs_table(proxy), **settings}
        services = Services(
            proxy.services.settings.model_copy(update=update),
            webhook_policy=proxy.services.webhook_policy,
            webhook_ssl_context=proxy.ssl_context,
        )
        set_services(services)
        return services

    try:
        yield _deploy
    finally:
        set_services(proxy.services)


def _submit(proxy: Proxy, **options: Any) -> dict[str, Any]:
    body = proxy.body(options={**OPTIONS, **options})
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 202, answer.body
    return answer.json()


PARAMS = GenerationParams(model="multitalk-14b", speed="turbo", max_duration_s=5)


def _render_s(services: Services) -> float:
    return estimate(PARAMS, Deployment.of(services.settings)).render_s


def test_jobs_ahead_on_busy_containers_push_the_estimate_back(proxy: Proxy, deploy: Any) -> None:
    services = deploy(gpu_slots=1, warm_containers=0)
    render = _render_s(services)
    start = speed_model().start_s.value
    assert clip_count(PARAMS) == 2

    first = _submit(proxy)
    # nothing ahead, no warm container: a cold start, then the render
    assert first["estimated_time"] == math.ceil(start + render)
    second = _submit(proxy)
    # the only container is busy: wait for the first job's projected finish, then render on
    # the container it leaves loaded
    waited = second["estimated_time"] - math.ceil(render)
    assert first["estimated_time"] - 3 <= waited <= first["estimated_time"] + 1
    view = proxy.invoke("GET", f"/jobs/{second['job_id']}", token=proxy.token()).json()
    assert view["estimated_time"] == second["estimated_time"]


def test_a_free_warm_container_starts_at_once(proxy: Proxy, deploy: Any) -> None:
    services = deploy(gpu_slots=3, warm_containers=1)
    render = math.ceil(_render_s(services))
    start = speed_model().start_s.value
    assert _submit(proxy)["estimated_time"] == render  # the warm container takes it
    # two containers left, neither warm: the second job starts one cold
    assert _submit(proxy)["estimated_time"] == math.ceil(start + _render_s(services))


def test_more_gpus_per_container_shorten_the_answer(proxy: Proxy, deploy: Any) -> None:
    answers = {}
    for gpus in (1, 8):
        services = deploy(gpu_slots=4, warm_containers=4, gpus_per_container=gpus)
        answers[gpus] = _submit(proxy)["estimated_time"]
        assert answers[gpus] == math.ceil(_render_s(services))
    assert answers[8] < answers[1]


def _progress(job_id: str, percent: float, remaining_s: float | None) -> JobProgress:
    return JobProgress(
        job_id=job_id,
        stage="denoise",
        step=int(percent),
        total=100,
        percent=percent,
        remaining_s=remaining_s,
    )


def _shown(proxy: Proxy, job_id: str) -> int:
    view = proxy.invoke("GET", f"/jobs/{job_id}", token=proxy.token()).json()
    return view["estimated_time"]


def _elapsed_bounds(created_at: str, before: float, after: float) -> tuple[float, float]:
    created = datetime.fromisoformat(created_at).timestamp()
    return before - created, after - created


def test_progress_with_remaining_time_revises_the_estimate(proxy: Proxy) -> None:
    job_id = proxy.submit(options=OPTIONS)
    submitted = _shown(proxy, job_id)
    created_at = proxy.services.jobs.get(job_id).created_at

    before = time.time()
    answer = proxy.callback(job_id, _progress(job_id, 40.0, 30.0))
    after = time.time()
    assert answer.json() == {"applied": True, "status": "processing"}
    low, high = _elapsed_bounds(created_at, before, after)
    revised = _shown(proxy, job_id)
    assert math.ceil(low + 30) <= revised <= math.ceil(high + 30)
    assert revised != submitted

    # no pace yet (remaining_s null): the progress applies, the estimate stays
    assert proxy.callback(job_id, _progress(job_id, 45.0, None)).json()["applied"] is True
    assert _shown(proxy, job_id) == revised

    # a stale event (a lower percent, delivered late) changes neither
    assert proxy.callback(job_id, _progress(job_id, 20.0, 900.0)).json()["applied"] is False
    assert _shown(proxy, job_id) == revised
    assert proxy.services.jobs.get(job_id).progress.percent == 45.0

    # a later clip: elapsed + what is left now
    before = time.time()
    proxy.callback(job_id, _progress(job_id, 80.0, 4.0))
    low, high = _elapsed_bounds(created_at, before, time.time())
    assert math.ceil(low + 4) <= _shown(proxy, job_id) <= math.ceil(high + 4)
