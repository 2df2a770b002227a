"""The batch handler on its own: SQS redelivery creates no second job, and the summary reports a
Map that stopped itself (what AWS does when the tolerance is exceeded) or left items unrun."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from aws.lambda_proxy.services import get_services
from aws.step_functions.models import BatchConfig, Execution, Plan, SummarizeMessage
from aws.step_functions.summary import summarize_batch
from scripts.local_stack.gateway import LambdaContext

from .conftest import BatchWorld
from .harness import RESULTS_PREFIX, put, state_machine

pytestmark = pytest.mark.stack


@pytest.mark.fault("SQS redelivering a batch item")
def test_a_redelivered_item_message_creates_no_second_job(world: BatchWorld) -> None:
    from aws.step_functions.handlers import batch_submit

    run = uuid.uuid4().hex[:8]
    bucket = world.stack.buckets["data"]
    inputs = f"tenants/acme/inputs/redelivery-{run}/"
    put(world.stack, f"{inputs}solo.wav", "audio/wav")
    put(world.stack, f"{inputs}solo.png", "image/png", b"\x89PNG\r\n\x1a\n")
    sfn = world.stack.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=state_machine(world.stack, world.queue.queue_url),
        name=f"redelivery-{run}",
        input=json.dumps(
            {
                "tenant_id": "acme",
                "source": {"prefix": f"s3://{bucket}/{inputs}"},
                "output": {"s3_bucket": bucket, "s3_prefix": f"tenants/acme/outputs/{run}/"},
            }
        ),
    )
    world.queue.poll(wait_s=2)  # the plan
    sqs = world.stack.client("sqs")
    queue = world.queue.queue_url
    messages: list[dict] = []
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            break
    [message] = messages
    assert json.loads(message["Body"])["type"] == "item"
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "awsRegion": world.stack.region,
    }
    before = set(world.runner.requests)
    started_ms = time.time() * 1000
    for _ in range(2):  # SQS delivers at least once
        answer = batch_submit.handler({"Records": [record]}, LambdaContext("batch-submit"))
        assert answer == {"batchItemFailures": []}
    new_calls = set(world.runner.requests) - before
    assert len(new_calls) == 1
    # An attempt cut off by the function timeout would not block the redelivery for long: its
    # in-progress record expires with the invocation (30 s here), not with the record's TTL.
    (job_request,) = [world.runner.requests[call] for call in new_calls]
    in_progress = [
        int(item["in_progress_expiration"]["N"])
        for item in world.stack.client("dynamodb").scan(
            TableName=world.stack.tables["idempotency"]
        )["Items"]
        if "in_progress_expiration" in item
        and job_request.job_id in item.get("data", {}).get("S", "")
    ]
    assert in_progress
    assert all(started_ms < expiry <= time.time() * 1000 + 30_000 for expiry in in_progress)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    world.worker.succeed(world.runner.requests[new_calls.pop()]).raise_for_status()
    for _ in range(30):
        world.queue.poll(wait_s=1)
        status = sfn.describe_execution(executionArn=execution["executionArn"])["status"]
        if status != "RUNNING":
            break
    assert status == "SUCCEEDED"


def _message(world: BatchWorld, execution: Execution, **changes: object) -> SummarizeMessage:
    bucket = world.stack.buckets["data"]
    plan = Plan.model_validate(
        {
            "items_bucket": bucket,
            "items_key": f"{RESULTS_PREFIX}{execution.name}/items.json",
            "item_count": 4,
            "request": {
                "tenant_id": "acme",
                "source": {"prefix": f"s3://{bucket}/tenants/acme/inputs/"},
                "output": {"s3_bucket": bucket},
            },
        }
    )
    config = BatchConfig(
        max_concurrency=2,
        tolerated_failure_percentage=25,
        results_bucket=bucket,
        results_prefix=RESULTS_PREFIX,
    )
    return SummarizeMessage.model_validate(
        {
            "type": "summarize",
            "task_token": "unused",
            "execution": execution,
            "config": config,
            "plan": plan,
        }
        | changes
    )


def _record(world: BatchWorld, execution: Execution, status: str, index: int) -> None:
    record = {"status": status, "index": index, "item": {"id": f"item-{index}"}}
    if status == "failed":
        cause = {"code": "input_not_found", "message": "gone", "job_id": None}
        record["failure"] = {"Error": "input_not_found", "Cause": json.dumps(cause)}
    world.stack.s3_client().put_object(
        Bucket=world.stack.buckets["data"],
        Key=f"{RESULTS_PREFIX}{execution.name}/{status}/{index}.json",
        Body=json.dumps(record).encode(),
    )


def test_summary_reports_a_map_that_stopped_itself(world: BatchWorld) -> None:
    execution = Execution(
        arn="arn:aws:states:us-east-1:123456789012:execution:m:x",
        name=f"stop-{uuid.uuid4().hex[:8]}",
    )
    for index in range(2):
        _record(world, execution, "failed", index)
    map_error = {
        "Error": "States.ExceedToleratedFailureThreshold",
        "Cause": "The specified tolerated failure threshold was exceeded",
    }
    short, full = summarize_batch(
        get_services().s3, _message(world, execution, map_error=map_error)
    )
    assert (short.status, short.error) == ("failed", "batch_tolerance_exceeded")
    assert short.reason.startswith("the Map stopped with States.ExceedToleratedFailureThreshold")
    assert (short.failed, short.succeeded, short.not_run) == (2, 0, 2)
    assert [item.error for item in full.failed_items] == ["input_not_found"] * 2


def test_summary_fails_a_batch_with_items_left_unrun(world: BatchWorld) -> None:
    execution = Execution(
        arn="arn:aws:states:us-east-1:123456789012:execution:m:y",
        name=f"gap-{uuid.uuid4().hex[:8]}",
    )
    for index in range(3):
        _record(world, execution, "succeeded", index)
    short, _ = summarize_batch(get_services().s3, _message(world, execution))
    assert (short.status, short.error) == ("failed", "batch_incomplete")
    assert short.reason.startswith("1 of 4 items left no record")
