"""The batch queue consumer: plans batches, submits items as jobs, summarizes batches, and
cancels the jobs of items whose task timed out.

Every message but ``cancel`` carries a Step Functions task token. An expected failure (a bad batch
input, a bad item, a refused submission) completes that token with ``SendTaskFailure`` and a
stable code, so it fails only its own item (or batch); the SQS record counts as processed.
Anything unexpected, including Step Functions being unreachable, fails only the SQS record
(``ReportBatchItemFailures``): SQS redelivers it, and after ``maxReceiveCount`` it lands in the
dead-letter queue while the task's heartbeat timeout fails the item in the state machine.

Items go through :func:`aws.lambda_proxy.jobs.submit.submit_job`, the same path as
``POST /generate-video`` (validation, tenant authorization, HeadObject, pre-signing), with an
idempotency key per item attempt, so a redelivered message never creates a second job.

An item its tenant's limits or fair share refuse (``tenant_quota_exceeded``) is not failed: it
waits. The handler heartbeats its task and sends the same message to the same queue again,
delayed by what the refusal says (at most ``batch_wait_max_s``, below the heartbeat), and the
original counts as processed. A new message, not a redelivery: waiting never moves an item
towards the dead-letter queue. The task's ``TimeoutSeconds`` still bounds the whole wait.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from botocore.exceptions import ClientError
from pydantic import ValidationError

from aws.lambda_proxy.api.models import GenerateVideoRequest, InputSpec, OutputSpec
from aws.lambda_proxy.auth.models import SCOPE_WRITE, TenantContext
from aws.lambda_proxy.idempotency import register_lambda_context
from aws.lambda_proxy.jobs.cancel import cancel_job
from aws.lambda_proxy.jobs.exceptions import JobFinalError, JobNotFoundError, SubmitError
from aws.lambda_proxy.jobs.models import BatchItem
from aws.lambda_proxy.jobs.submit import submit_job
from aws.lambda_proxy.observability import logger, metrics, tracer
from aws.lambda_proxy.services import Services, get_services
from aws.lambda_proxy.tenants import quota
from aws.lambda_proxy.tenants.exceptions import QuotaExceededError
from aws.step_functions.exceptions import BatchError
from aws.step_functions.item_jobs import item_job_ids, record_job
from aws.step_functions.models import (
    BatchMessage,
    CancelMessage,
    ItemMessage,
    PlanMessage,
    SummarizeMessage,
)
from aws.step_functions.planning import plan_batch
from aws.step_functions.summary import summarize_batch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

MAX_CAUSE = 32768
_TASK_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS event source mapping with ``ReportBatchItemFailures``."""
    # An attempt cut off by the function timeout must not block the redelivery: idempotency
    # records in progress expire with the invocation's remaining time.
    register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


def record_handler(record: SQSRecord) -> None:
    """One queue message: parse it, do its work, complete its task token."""
    try:
        message = BatchMessage.model_validate({"message": json.loads(record.body)}).message
    except (ValidationError, json.JSONDecodeError) as exc:
        # Without a valid token nothing can be told; the redrive policy keeps it for inspection.
        logger.error("unreadable batch message", extra={"message_id": record.message_id})
        raise ValueError(f"unreadable batch message {record.message_id}") from exc
    services = get_services()
    if isinstance(message, PlanMessage):
        _plan(services, message)
    elif isinstance(message, ItemMessage):
        _submit_item(services, message, record)
    elif isinstance(message, SummarizeMessage):
        _summarize(services, message)
    else:
        _cancel_item(services, message)


def _plan(services: Services, message: PlanMessage) -> None:
    try:
        plan = plan_batch(services, message.request, message.config, message.execution)
    except BatchError as exc:
        logger.info("batch refused", extra={"execution": message.execution.name, "code": exc.code})
        _fail(services, message.task_token, exc.code, {"code": exc.code, "message": exc.message})
        return
    logger.info(
        "batch planned", extra={"execution": message.execution.name, "items": plan.item_count}
    )
    _succeed(services, message.task_token, plan.model_dump(mode="json"))


def _submit_item(services: Services, message: ItemMessage, record: SQSRecord) -> None:
    item, batch = message.item, message.request
    context = {"execution": message.execution.name, "index": message.index}
    try:
        request = GenerateVideoRequest(
            input=InputSpec(
                audio_s3_url=item.audio_s3_url,
                reference_image_s3_url=item.reference_image_s3_url,
                video_s3_url=item.video_s3_url,
                prompt=item.prompt,
            ),
            output=OutputSpec(
                s3_bucket=batch.output.s3_bucket,
                s3_prefix=batch.output.s3_prefix,
                filename=item.filename,
                overwrite=batch.output.overwrite,
            ),
            options=batch.options,
        )
    except ValidationError as exc:
        cause = {"code": "batch_item_invalid", "message": str(exc)[:1000], "retryable": False}
        _fail(services, message.task_token, "batch_item_invalid", cause)
        return
    tenant = TenantContext(
        tenant_id=batch.tenant_id,
        subject=f"stepfunctions:{message.execution.name}",
        scopes=frozenset({SCOPE_WRITE}),
    )
    try:
        job = submit_job(
            request,
            tenant,
            idempotency_key=_idempotency_key(message),
            task_token=message.task_token,
            batch_item=BatchItem(execution_arn=message.execution.arn, item_ref=item.id),
            services=services,
        )
    except QuotaExceededError as exc:
        _wait_for_slot(services, message, record, exc)
        return
    except SubmitError as exc:
        logger.info("batch item refused", extra={**context, "code": exc.code})
        cause = {
            "code": exc.code,
            "message": exc.message,
            "job_id": exc.job_id,
            "retryable": exc.retryable,
        }
        _fail(services, message.task_token, exc.code, cause)
        return
    # The token now waits on the job: callbacks heartbeat it and settle it. If this write fails
    # the record is redelivered, and the idempotent submit returns the same job.
    record_job(
        services.s3,
        message.config,
        message.execution,
        index=message.index,
        attempt=message.attempt,
        job_id=job.job_id,
    )
    logger.info("batch item submitted", extra={**context, "job_id": job.job_id})


def _wait_for_slot(
    services: Services, message: ItemMessage, record: SQSRecord, refusal: QuotaExceededError
) -> None:
    """Keep the item's task alive and put the item back on its queue to come back later."""
    context = {"execution": message.execution.name, "index": message.index}
    try:
        services.stepfunctions.send_task_heartbeat(taskToken=message.task_token)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in _TASK_GONE:
            raise
        logger.info("a waiting item's task is gone; dropped", extra=context)
        return
    delay = min(refusal.retry_after_s, services.settings.batch_wait_max_s)
    # The queue the record came from: arn:aws:sqs:<region>:<account>:<name>.
    *_, account, name = record.event_source_arn.split(":")
    sqs = services.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=record.body, DelaySeconds=delay)
    tenant_id = message.request.tenant_id
    quota.wait_for_slot(services, tenant_id, delay)
    logger.info(
        "batch item waits for its tenant's slot",
        extra={**context, "tenant_id": tenant_id, "limit": refusal.limit, "delay_s": delay},
    )


def _cancel_item(services: Services, message: CancelMessage) -> None:
    """The item's task timed out: stop whatever it still has running on Modal."""
    for job_id in item_job_ids(services.s3, message.config, message.execution, message.index):
        try:
            cancel_job(services, job_id, message.tenant_id)
        except (JobFinalError, JobNotFoundError):
            continue
        logger.info(
            "timed-out batch item cancelled",
            extra={"execution": message.execution.name, "index": message.index, "job_id": job_id},
        )


def _summarize(services: Services, message: SummarizeMessage) -> None:
    try:
        short, full = summarize_batch(services.s3, message)
    except BatchError as exc:
        # A task failure here is retried by the definition; then the execution fails with it.
        _fail(services, message.task_token, exc.code, {"code": exc.code, "message": exc.message})
        return
    logger.info(
        "batch summarized",
        extra={
            "execution": message.execution.name,
            "status": full.status,
            "succeeded": full.succeeded,
            "failed": full.failed,
        },
    )
    _succeed(services, message.task_token, short.model_dump(mode="json"))


def _idempotency_key(message: ItemMessage) -> str:
    """Same message (redelivery) -> same job; a new attempt after a Retry -> a new job."""
    identity = f"{message.execution.arn}\n{message.index}\n{message.attempt}"
    return "batch-" + hashlib.sha256(identity.encode()).hexdigest()[:48]


def _succeed(services: Services, token: str, output: dict[str, Any]) -> None:
    with _unless_task_gone():
        services.stepfunctions.send_task_success(taskToken=token, output=json.dumps(output))


def _fail(services: Services, token: str, error: str, cause: dict[str, Any]) -> None:
    with _unless_task_gone():
        services.stepfunctions.send_task_failure(
            taskToken=token, error=error[:256], cause=json.dumps(cause)[:MAX_CAUSE]
        )


@contextmanager
def _unless_task_gone() -> Iterator[None]:
    """A task that timed out or whose execution stopped cannot be answered: nothing to retry."""
    try:
        yield
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code not in _TASK_GONE:
            raise
        logger.warning("the task no longer waits", extra={"code": code})
