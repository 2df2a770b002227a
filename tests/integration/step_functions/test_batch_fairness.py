"""Two tenants' batches share two GPU slots: the big one's items wait (they are not failed) and
the small one's first job goes next, not behind the big batch. Real definition, handler, submit
path, callbacks and usage table; the test is the event source mapping and a two-slot GPU
(FIFO, as Modal's queue is) whose jobs each take a few polls."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from aws.lambda_proxy.config import Settings
from aws.lambda_proxy.jobs.models import utc_now
from aws.lambda_proxy.services import Services, set_services
from aws.lambda_proxy.tenants.limits import TenantLimits
from aws.step_functions.handlers import batch_submit
from modal_service.contracts import CreateJobRequest
from scripts.local_stack.gateway import LambdaContext

from .conftest import BatchWorld
from .harness import audio_key, put, state_machine

pytestmark = pytest.mark.stack

SLOTS = 2
RUN_POLLS = 3
"""How many polls of the loop one job holds a GPU slot."""


@dataclass
class TwoSlotGpu:
    """Modal in front of ``SLOTS`` containers: dispatched jobs queue FIFO, each runs a while."""

    queued: list[CreateJobRequest] = field(default_factory=list)
    running: dict[str, tuple[CreateJobRequest, int]] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    """``("dispatched" | "started", tenant)`` in the order they happened."""
    most_dispatched: int = 0

    def dispatch(self, requests: list[CreateJobRequest]) -> None:
        self.queued.extend(requests)
        self.events.extend(("dispatched", tenant_of(request)) for request in requests)

    def tick(self, world: BatchWorld) -> None:
        for job_id, (request, polls) in list(self.running.items()):
            if polls + 1 >= RUN_POLLS:
                world.worker.succeed(request).raise_for_status()
                del self.running[job_id]
            else:
                self.running[job_id] = (request, polls + 1)
        while self.queued and len(self.running) < SLOTS:
            request = self.queued.pop(0)
            self.running[request.job_id] = (request, 0)
            self.events.append(("started", tenant_of(request)))
        self.most_dispatched = max(self.most_dispatched, len(self.queued) + len(self.running))


def tenant_of(request: CreateJobRequest) -> str:
    return audio_key(request).split("/")[1]  # tenants/<tenant>/inputs/...


@pytest.fixture
def fair(world: BatchWorld) -> Iterator[Callable[[TenantLimits], Services]]:
    """``fair(limits)``: the container's services with a usage table of the test's own, every
    tenant held to ``limits``, ``SLOTS`` GPU slots and one-second waits."""

    def _services(limits: TenantLimits) -> Services:
        name = f"usage-{uuid.uuid4().hex[:8]}"
        world.stack.client("dynamodb").create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        base = Settings.from_env()
        tenants = {
            tenant: config.model_copy(update={"limits": limits})
            for tenant, config in base.tenants_config.items()
        }
        settings = base.model_copy(
            update={
                "usage_table_name": name,
                "tenants_config": tenants,
                "gpu_slots": SLOTS,
                "quota_retry_after_s": 1,
                "batch_wait_max_s": 1,
            }
        )
        services = Services(settings)
        set_services(services)
        return services

    try:
        yield _services
    finally:
        set_services(None)


def _batch(world: BatchWorld, tenant: str, names: list[str]) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    inputs = f"tenants/{tenant}/inputs/fair-{run}/"
    for name in names:
        put(world.stack, f"{inputs}{name}.wav", "audio/wav")
    portrait = put(world.stack, f"{inputs}portrait.png", "image/png", b"\x89PNG\r\n\x1a\n-p")
    return {
        "tenant_id": tenant,
        "source": {
            "prefix": f"s3://{world.stack.buckets['data']}/{inputs}",
            "reference_image_s3_url": portrait,
        },
        "output": {
            "s3_bucket": world.stack.buckets["data"],
            "s3_prefix": f"tenants/{tenant}/outputs/fair-{run}/",
        },
        "options": {"model": "tiny", "video_length": 5},
    }


def test_a_small_tenants_batch_goes_next_while_a_big_batch_waits(
    world: BatchWorld, fair: Callable[[TenantLimits], Services]
) -> None:
    fair_services = fair(TenantLimits(max_active=20, per_minute=1000))
    sfn = world.stack.client("stepfunctions")
    machine = state_machine(world.stack, world.queue.queue_url, max_concurrency=8)
    gpu = TwoSlotGpu()
    seen = set(world.runner.requests)

    def start(request: dict[str, Any]) -> str:
        return sfn.start_execution(
            stateMachineArn=machine, name=f"fair-{uuid.uuid4().hex[:12]}", input=json.dumps(request)
        )["executionArn"]

    def step() -> None:
        world.queue.poll(wait_s=1)
        gpu.dispatch(world.runner.take_new(seen))
        gpu.tick(world)

    big = start(_batch(world, "acme", [f"big{i}" for i in range(8)]))
    # Until the big batch holds both slots and has items waiting for more.
    for _ in range(120):
        step()
        snapshot = fair_services.usage.snapshot(["acme", "globex"])
        if snapshot.active["acme"] == SLOTS and "acme" in snapshot.waiting_until:
            break
    else:
        raise AssertionError("the big batch never filled the slots")
    small = start(_batch(world, "globex", ["small0", "small1"]))

    statuses: dict[str, str] = {}
    for _ in range(400):
        step()
        statuses = {arn: sfn.describe_execution(executionArn=arn)["status"] for arn in (big, small)}
        if "RUNNING" not in statuses.values():
            break
    assert statuses == {big: "SUCCEEDED", small: "SUCCEEDED"}, statuses

    summaries = [
        json.loads(sfn.describe_execution(executionArn=arn)["output"]) for arn in (big, small)
    ]
    assert [(s["total"], s["succeeded"], s["failed"]) for s in summaries] == [(8, 8, 0), (2, 2, 0)]
    # The small tenant's first job started within one round of the GPUs: between its dispatch
    # and its start, at most one big job per slot started (those given the slots freed at the
    # moment it arrived). Unfair, the big batch's eight would all have been queued before it.
    first = gpu.events.index(("dispatched", "globex"))
    started = gpu.events.index(("started", "globex"))
    assert gpu.events[first:started].count(("started", "acme")) <= SLOTS, gpu.events
    assert gpu.events.count(("started", "acme")) == 8
    # Dispatched-but-unfinished jobs never exceeded the slots plus the newcomer's share.
    assert gpu.most_dispatched <= SLOTS + 1
    counters = fair_services.usage.snapshot(["acme", "globex"])
    assert counters.active == {"acme": 0, "globex": 0}
    assert counters.deployment_active == 0
    assert fair_services.usage.counters("acme", utc_now()).jobs_finished_today == 8


def _next_item(world: BatchWorld, wait_s: int = 20) -> dict[str, Any]:
    """The next item message on the test's queue, as the event source would hand it over."""
    sqs = world.stack.client("sqs")
    for _ in range(wait_s):
        messages = sqs.receive_message(
            QueueUrl=world.queue.queue_url, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            (message,) = messages
            return world.queue._record(message)
    raise AssertionError("no item message came")


def test_an_item_over_its_tenants_limit_waits_and_comes_back(
    world: BatchWorld, fair: Callable[[TenantLimits], Services]
) -> None:
    limits = TenantLimits(max_active=1, per_minute=1000)
    usage = fair(limits).usage
    usage.admit("globex", "job_held", limits, now=utc_now(), tenant_cap=1, gpu_slots=None)
    sfn = world.stack.client("stepfunctions")
    machine = state_machine(world.stack, world.queue.queue_url)
    execution = sfn.start_execution(
        stateMachineArn=machine,
        name=f"wait-{uuid.uuid4().hex[:12]}",
        input=json.dumps(_batch(world, "globex", ["solo"])),
    )["executionArn"]
    world.queue.poll(wait_s=2)  # the plan
    record = _next_item(world)
    before = set(world.runner.requests)

    answer = batch_submit.handler({"Records": [record]}, LambdaContext("batch-submit"))

    assert answer == {"batchItemFailures": []}  # processed: the original is deleted
    assert set(world.runner.requests) == before  # no job
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert "globex" in usage.snapshot(["globex"]).waiting_until
    again = _next_item(world)
    assert again["body"] == record["body"]
    assert again["messageId"] != record["messageId"]  # a new message: no step to the DLQ
    assert int(again["attributes"]["ApproximateReceiveCount"]) == 1

    # Its slot frees: the same message now becomes the job.
    assert usage.release("globex", "job_held", now=utc_now(), gpu_seconds=None)
    assert batch_submit.handler({"Records": [again]}, LambdaContext("batch-submit")) == {
        "batchItemFailures": []
    }
    assert len(set(world.runner.requests) - before) == 1
    sfn.stop_execution(executionArn=execution)
