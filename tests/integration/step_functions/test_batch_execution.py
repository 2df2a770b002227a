"""A batch executes for real: moto's engine runs the rendered definition against the strict S3,
the real batch handler takes the queue, the real submit path creates the jobs, and the real
callback Lambda (behind the local gateway) completes the task tokens from signed callbacks."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from modal_service.contracts import CreateJobRequest, ErrorCode

from .conftest import BatchWorld
from .harness import MP4_BYTES, RESULTS_PREFIX, audio_key, put, state_machine

pytestmark = pytest.mark.stack


def _run(world: BatchWorld, machine: str, request: dict[str, Any], act, timeout_s: float = 120):
    """Start the batch, then be the event source mapping and the worker until it ends."""
    sfn = world.stack.client("stepfunctions")
    # Always named: moto names an unnamed execution "None" (AWS would make a UUID).
    execution = sfn.start_execution(
        stateMachineArn=machine, name=f"run-{uuid.uuid4().hex[:12]}", input=json.dumps(request)
    )
    seen = set(world.runner.requests)  # earlier tests' jobs are not this batch's
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        world.queue.poll(wait_s=1)
        for job_request in world.runner.take_new(seen):
            act(job_request)
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
    raise AssertionError(f"the batch did not finish in {timeout_s} s")


def _failure_events(world: BatchWorld, execution_arn: str) -> list[dict[str, Any]]:
    """The history's failure details, for assertion messages."""
    events = world.stack.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return [
        {key: value for key, value in event.items() if key.endswith("FailedEventDetails")}
        | {"type": event["type"]}
        for event in events
        if "Failed" in event["type"] or "TimedOut" in event["type"]
    ]


def _read_json(world: BatchWorld, url: str) -> Any:
    bucket, key = url.removeprefix("s3://").split("/", 1)
    return json.loads(world.stack.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())


def test_prefix_batch_tolerates_a_bad_item_and_summarizes(world: BatchWorld) -> None:
    run = uuid.uuid4().hex[:8]
    inputs = f"tenants/acme/inputs/batch-{run}/"
    outputs = f"tenants/acme/outputs/batch-{run}/"
    for name in ("anna", "ben", "dora"):
        put(world.stack, f"{inputs}{name}.wav", "audio/wav")
    put(world.stack, f"{inputs}anna.png", "image/png", b"\x89PNG\r\n\x1a\n-anna")
    put(world.stack, f"{inputs}dora.jpg", "image/jpeg", b"\xff\xd8\xff-dora")
    shared = put(
        world.stack, f"{inputs}shared/portrait.png", "image/png", b"\x89PNG\r\n\x1a\n-shared"
    )
    # Bad item: named like audio, but it is a web page; the submit path refuses it.
    put(world.stack, f"{inputs}carl.wav", "text/html", b"<html>not audio</html>")
    # This one is accepted, then the worker reports that it cannot decode it.
    put(world.stack, f"{inputs}erin.wav", "audio/wav")
    put(world.stack, f"{inputs}notes.txt", "text/plain", b"not an item")

    def act(job_request: CreateJobRequest) -> None:
        key = audio_key(job_request)
        if key.endswith("erin.wav"):
            world.worker.fail(job_request, ErrorCode.AUDIO_INVALID).raise_for_status()
        else:
            world.worker.succeed(job_request).raise_for_status()

    request = {
        "tenant_id": "acme",
        "source": {
            "prefix": f"s3://{world.stack.buckets['data']}/{inputs}",
            "reference_image_s3_url": shared,
        },
        "output": {"s3_bucket": world.stack.buckets["data"], "s3_prefix": outputs},
        "options": {"model": "tiny", "video_length": 5},
    }
    finished = _run(world, state_machine(world.stack, world.queue.queue_url), request, act)

    assert finished["status"] == "SUCCEEDED", _failure_events(world, finished["executionArn"])
    summary = json.loads(finished["output"])
    assert summary["status"] == "succeeded"
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["not_run"]) == (
        5,
        3,
        2,
        0,
    )
    assert summary["failure_percentage"] == 40.0
    failures = {item["id"]: item for item in summary["failed_items"]}
    assert failures["carl.wav"]["error"] == "unsupported_format"
    assert failures["carl.wav"]["job_id"] is None
    assert failures["erin.wav"]["error"] == "audio_invalid"
    assert failures["erin.wav"]["job_id"].startswith("job_")
    assert "audio_invalid" in failures["erin.wav"]["message"]

    # Result objects: the summary file, one record per item, the MP4s where the batch said.
    assert _read_json(world, summary["results"]["summary"]) == summary
    items = _read_json(world, summary["results"]["items"])
    by_id = {item["id"]: item for item in items}
    assert sorted(by_id) == ["anna.wav", "ben.wav", "carl.wav", "dora.wav", "erin.wav"]
    assert by_id["anna.wav"]["reference_image_s3_url"].endswith(f"{inputs}anna.png")
    assert by_id["dora.wav"]["reference_image_s3_url"].endswith(f"{inputs}dora.jpg")
    assert by_id["ben.wav"]["reference_image_s3_url"] == shared
    s3 = world.stack.s3_client()
    bucket = world.stack.buckets["data"]
    succeeded_prefix = summary["results"]["succeeded"].removeprefix(f"s3://{bucket}/")
    records = s3.list_objects_v2(Bucket=bucket, Prefix=succeeded_prefix)["Contents"]
    assert len(records) == 3
    for record in records:
        stored = json.loads(s3.get_object(Bucket=bucket, Key=record["Key"])["Body"].read())
        assert stored["status"] == "succeeded"
        assert stored["job"]["status"] == "succeeded"
        video = stored["job"]["output_url"].removeprefix(f"s3://{bucket}/")
        assert video == f"{outputs}{stored['item']['id'].removesuffix('.wav')}.mp4"
        assert s3.get_object(Bucket=bucket, Key=video)["Body"].read() == MP4_BYTES
    # ResultWriter: AWS writes SUCCEEDED_n/FAILED_n files beside this manifest; moto writes the
    # manifest only, which is why the records above are the batch's own.
    manifest = _read_json(world, summary["results"]["map_run_manifest"])
    assert manifest["DestinationBucket"] == bucket
    assert manifest["MapRunArn"].startswith("arn:aws:states:")
    # The batch's jobs are ordinary jobs of the tenant, tied to this execution.
    jobs = world.stack.client("dynamodb")
    job = jobs.get_item(
        TableName=world.stack.tables["jobs"], Key={"job_id": {"S": failures["erin.wav"]["job_id"]}}
    )["Item"]
    assert job["tenant_id"]["S"] == "acme"
    assert job["status"]["S"] == "failed"
    assert finished["executionArn"] in job["doc"]["S"]


@pytest.mark.fault("Step Functions heartbeat timeout")
def test_heartbeat_timeout_is_recorded_and_fails_an_intolerant_batch(world: BatchWorld) -> None:
    run = uuid.uuid4().hex[:8]
    inputs = f"tenants/acme/inputs/manifest-{run}/"
    bucket = world.stack.buckets["data"]
    portrait = put(world.stack, f"{inputs}portrait.png", "image/png", b"\x89PNG\r\n\x1a\n")
    rows = [
        {"id": "talks", "audio_s3_url": put(world.stack, f"{inputs}kim.wav", "audio/wav")},
        {"id": "silent", "audio_s3_url": put(world.stack, f"{inputs}lou.wav", "audio/wav")},
    ]
    manifest = put(
        world.stack,
        f"{inputs}batch.jsonl",
        "application/x-ndjson",
        "\n".join(json.dumps(row) for row in rows).encode() + b"\n",
    )
    silent: list[CreateJobRequest] = []

    def act(job_request: CreateJobRequest) -> None:
        if audio_key(job_request).endswith("lou.wav"):
            silent.append(job_request)  # the worker never reports: no heartbeat reaches the task
            return
        # Longer than HeartbeatSeconds in all: only the progress callbacks keep the task alive.
        for percent in (10.0, 40.0, 70.0, 90.0):
            world.worker.progress(job_request, percent).raise_for_status()
            time.sleep(1.5)
        world.worker.succeed(job_request).raise_for_status()

    request = {
        "tenant_id": "acme",
        "source": {"manifest": manifest, "reference_image_s3_url": portrait},
        "output": {"s3_bucket": bucket, "s3_prefix": f"tenants/acme/outputs/manifest-{run}/"},
        "options": {"model": "tiny"},
    }
    machine = state_machine(
        world.stack, world.queue.queue_url, tolerated_failure_percentage=0, heartbeat_seconds=4
    )
    finished = _run(world, machine, request, act)

    assert finished["status"] == "FAILED"
    assert finished["error"] == "batch_tolerance_exceeded"
    assert finished["cause"] == "1 of 2 items failed (50%), more than the tolerated 0%"
    assert len(silent) == 1
    summary = _read_json(world, f"s3://{bucket}/{RESULTS_PREFIX}{finished['name']}/summary.json")
    assert (summary["status"], summary["succeeded"], summary["failed"]) == ("failed", 1, 1)
    [failure] = summary["failed_items"]
    assert (failure["id"], failure["error"]) == ("silent", "States.HeartbeatTimeout")
    record = _read_json(world, f"{summary['results']['failed']}{failure['index']}.json")
    assert record["failure"]["Error"] == "States.HeartbeatTimeout"
    assert record["item"]["audio_s3_url"].endswith("lou.wav")

    # The timed-out item's job may still be rendering: the batch cancels it on the GPU side.
    [call_id] = [call for call, req in world.runner.requests.items() if req is silent[0]]
    deadline = time.monotonic() + 30
    while call_id not in world.runner.cancelled and time.monotonic() < deadline:
        world.queue.poll(wait_s=1)
    assert call_id in world.runner.cancelled
    job = world.stack.client("dynamodb").get_item(
        TableName=world.stack.tables["jobs"], Key={"job_id": {"S": silent[0].job_id}}
    )["Item"]
    assert job["status"]["S"] == "cancelled"


def test_unreadable_manifest_refuses_the_batch_before_any_submission(world: BatchWorld) -> None:
    run = uuid.uuid4().hex[:8]
    inputs = f"tenants/acme/inputs/csv-{run}/"
    audio = put(world.stack, f"{inputs}mia.wav", "audio/wav")
    manifest = put(
        world.stack,
        f"{inputs}batch.csv",
        "text/csv",
        f"audio_s3_url,prompt\n{audio},hello\nnot-an-s3-url,oops\n".encode(),
    )
    before = len(world.runner.requests)
    request = {
        "tenant_id": "acme",
        "source": {"manifest": manifest},
        "output": {"s3_bucket": world.stack.buckets["data"], "s3_prefix": "tenants/acme/outputs/"},
    }
    finished = _run(
        world, state_machine(world.stack, world.queue.queue_url), request, lambda _: None
    )

    assert finished["status"] == "FAILED"
    assert finished["error"] == "manifest_invalid"
    assert "manifest line 3" in json.loads(finished["cause"])["message"]
    assert len(world.runner.requests) == before


def test_a_tenant_cannot_batch_another_tenants_prefix(world: BatchWorld) -> None:
    bucket = world.stack.buckets["data"]
    request = {
        "tenant_id": "globex",
        "source": {"prefix": f"s3://{bucket}/tenants/acme/inputs/"},
        "output": {"s3_bucket": bucket, "s3_prefix": "tenants/globex/outputs/"},
    }
    finished = _run(
        world, state_machine(world.stack, world.queue.queue_url), request, lambda _: None
    )

    assert finished["status"] == "FAILED"
    assert finished["error"] == "s3_location_forbidden"


def test_a_batch_chooses_the_speed_profile_of_its_items(world: BatchWorld) -> None:
    run = uuid.uuid4().hex[:8]
    inputs = f"tenants/acme/inputs/speed-{run}/"
    for name in ("fast", "faster"):
        put(world.stack, f"{inputs}{name}.wav", "audio/wav")
        put(world.stack, f"{inputs}{name}.png", "image/png", b"\x89PNG\r\n\x1a\n-" + name.encode())
    sent: list[CreateJobRequest] = []

    def act(job_request: CreateJobRequest) -> None:
        sent.append(job_request)
        world.worker.succeed(job_request).raise_for_status()

    request = {
        "tenant_id": "acme",
        "source": {"prefix": f"s3://{world.stack.buckets['data']}/{inputs}"},
        "output": {
            "s3_bucket": world.stack.buckets["data"],
            "s3_prefix": f"tenants/acme/outputs/speed-{run}/",
        },
        "options": {"model": "tiny", "video_length": 5, "speed": "balanced"},
    }
    finished = _run(world, state_machine(world.stack, world.queue.queue_url), request, act)

    assert finished["status"] == "SUCCEEDED", _failure_events(world, finished["executionArn"])
    assert json.loads(finished["output"])["succeeded"] == 2
    assert len(sent) == 2
    assert {job.params.speed for job in sent} == {"balanced"}


def test_a_batch_whose_turbo_mode_contradicts_its_speed_is_refused(world: BatchWorld) -> None:
    bucket = world.stack.buckets["data"]
    before = len(world.runner.requests)
    request = {
        "tenant_id": "acme",
        "source": {"prefix": f"s3://{bucket}/tenants/acme/inputs/"},
        "output": {"s3_bucket": bucket, "s3_prefix": "tenants/acme/outputs/"},
        "options": {"turbo_mode": True, "speed": "quality"},
    }
    finished = _run(
        world, state_machine(world.stack, world.queue.queue_url), request, lambda _: None
    )

    assert finished["status"] == "FAILED"
    assert finished["error"] == "speed_conflict"
    assert "contradicts speed=quality" in json.loads(finished["cause"])["message"]
    assert len(world.runner.requests) == before


def test_a_prefix_batch_dubs_the_video_of_each_audio_files_name(world: BatchWorld) -> None:
    run = uuid.uuid4().hex[:8]
    inputs = f"tenants/acme/inputs/dub-{run}/"
    for name in ("anna", "ben"):
        put(world.stack, f"{inputs}{name}.wav", "audio/wav")
    put(world.stack, f"{inputs}anna.mp4", "video/mp4", MP4_BYTES)
    put(world.stack, f"{inputs}anna.png", "image/png", b"\x89PNG\r\n\x1a\n-thumbnail")
    put(world.stack, f"{inputs}ben.png", "image/png", b"\x89PNG\r\n\x1a\n-ben")
    sent: dict[str, CreateJobRequest] = {}

    def act(job_request: CreateJobRequest) -> None:
        sent[audio_key(job_request).rsplit("/", 1)[1]] = job_request
        world.worker.succeed(job_request).raise_for_status()

    request = {
        "tenant_id": "acme",
        "source": {"prefix": f"s3://{world.stack.buckets['data']}/{inputs}"},
        "output": {
            "s3_bucket": world.stack.buckets["data"],
            "s3_prefix": f"tenants/acme/outputs/dub-{run}/",
        },
        "options": {"model": "tiny-infinitetalk", "video_length": 5},
    }
    finished = _run(world, state_machine(world.stack, world.queue.queue_url), request, act)

    assert finished["status"] == "SUCCEEDED", _failure_events(world, finished["executionArn"])
    assert json.loads(finished["output"])["succeeded"] == 2
    anna, ben = sent["anna.wav"].inputs, sent["ben.wav"].inputs
    # The video beats the image of the same name; the other item keeps its portrait.
    assert (anna.image_url, anna.video_name) == (None, f"{inputs}anna.mp4")
    assert anna.video_url is not None
    assert (ben.video_url, ben.image_name) == (None, f"{inputs}ben.png")
    assert {job.params.model for job in sent.values()} == {"tiny-infinitetalk"}


def test_a_batch_with_a_video_and_a_multitalk_model_is_refused_before_any_submission(
    world: BatchWorld,
) -> None:
    run = uuid.uuid4().hex[:8]
    inputs = f"tenants/acme/inputs/dub-csv-{run}/"
    audio = put(world.stack, f"{inputs}mia.wav", "audio/wav")
    image = put(world.stack, f"{inputs}mia.png", "image/png", b"\x89PNG\r\n\x1a\n-mia")
    video = put(world.stack, f"{inputs}leo.mp4", "video/mp4", MP4_BYTES)
    manifest = put(
        world.stack,
        f"{inputs}batch.csv",
        "text/csv",
        (
            "audio_s3_url,reference_image_s3_url,video_s3_url,id\n"
            f"{audio},{image},,mia\n{audio},,{video},leo\n"
        ).encode(),
    )
    before = len(world.runner.requests)
    request = {
        "tenant_id": "acme",
        "source": {"manifest": manifest},
        "output": {"s3_bucket": world.stack.buckets["data"], "s3_prefix": "tenants/acme/outputs/"},
        "options": {"model": "tiny"},
    }
    finished = _run(
        world, state_machine(world.stack, world.queue.queue_url), request, lambda _: None
    )

    assert finished["status"] == "FAILED"
    assert finished["error"] == "video_needs_infinitetalk"
    assert "item 'leo'" in json.loads(finished["cause"])["message"]
    assert len(world.runner.requests) == before
