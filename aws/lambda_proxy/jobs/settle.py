"""Settling a job: the one conditional move to a final state, and what follows it.

Whoever wins the conditional update (callback, reconciler, cancel, or a failed submit) performs
the follow-ups: ``SendTaskSuccess``/``SendTaskFailure`` for batch jobs and the caller's webhook.
A loser gets None and does nothing, so a final state never changes. The settling update also
opens an outbox entry (``followup_at``, a couple of minutes ahead) that is closed once every
follow-up is done; if this process dies or a follow-up fails for a passing reason, the
reconciler finds the entry when it falls due and runs :func:`run_followups` again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from aws.lambda_proxy.jobs.models import (
    WEBHOOK_RETRY_SCHEDULE_S,
    JobFailure,
    JobRecord,
    JobStatus,
    JobView,
    WebhookDelivery,
    iso,
    utc_now,
)
from aws.lambda_proxy.observability import logger, metrics, record_render_usage
from aws.lambda_proxy.storage.objects import head_object
from aws.lambda_proxy.tenants import quota
from aws.lambda_proxy.webhooks.sender import WebhookMessage

if TYPE_CHECKING:
    from aws.lambda_proxy.services import Services
    from modal_service.contracts import JobResult

MAX_TASK_CAUSE = 32768
FOLLOWUP_GRACE_S = 120
"""How long the settling process has to finish its follow-ups before the reconciler may."""
TASK_RETRY_S = 60
_TASK_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


def settle_job(
    services: Services,
    job_id: str,
    status: JobStatus,
    *,
    result: JobResult | None = None,
    error: JobFailure | None = None,
    notify_task: bool = True,
) -> JobRecord | None:
    """Finalize ``job_id``; returns the settled record, or None when it was already final.

    ``notify_task=False`` leaves Step Functions to the caller (the submit path raises instead,
    and the batch submit handler reports the failure itself).
    """
    job = services.jobs.settle(
        job_id,
        status,
        result=result,
        error=error,
        followup_at=iso(utc_now() + timedelta(seconds=FOLLOWUP_GRACE_S)),
        task_pending=notify_task,
    )
    if job is None:
        logger.info("job already final; nothing applied", extra={"job_id": job_id})
        return None
    logger.info(
        "job settled",
        extra={"job_id": job_id, "status": status.value, "code": error.code if error else None},
    )
    metrics.add_metric(name=f"Jobs{status.value.capitalize()}", unit=MetricUnit.Count, value=1)
    run_followups(services, job)
    return job


def run_followups(services: Services, job: JobRecord) -> None:
    """Tell Step Functions and the caller what they are still owed, then close or re-arm the
    job's outbox entry."""
    # The tenant's slot first: a job is uncounted once (its lease), and a failed release keeps
    # the outbox entry open so that the reconciler tries again.
    released = quota.release(services, job)
    if job.task_token and job.task_state == "pending":
        state = _notify_task(services, job)
        if state != "pending":
            services.jobs.set_task_state(job.job_id, state)
        job.task_state = state
    if job.webhook_url and _webhook_due(job):
        job.webhook_delivery = notify_caller(services, job)
    services.jobs.schedule_followup(job.job_id, _next_followup(job, released=released))


def _webhook_due(job: JobRecord) -> bool:
    delivery = job.webhook_delivery
    if delivery is None:
        return True
    return delivery.next_attempt_at is not None and delivery.next_attempt_at <= iso(utc_now())


def _next_followup(job: JobRecord, *, released: bool) -> str | None:
    due: list[str] = []
    if not released:
        due.append(iso(utc_now() + timedelta(seconds=TASK_RETRY_S)))
    if job.task_token and job.task_state == "pending":
        due.append(iso(utc_now() + timedelta(seconds=TASK_RETRY_S)))
    if job.webhook_url and job.webhook_delivery and job.webhook_delivery.next_attempt_at:
        due.append(job.webhook_delivery.next_attempt_at)
    return min(due) if due else None


def _notify_task(services: Services, job: JobRecord) -> str:
    """``done``, ``gone`` (the execution stopped waiting) or ``pending`` (try again later)."""
    try:
        if job.status is JobStatus.SUCCEEDED:
            output = {
                "job_id": job.job_id,
                "status": job.status.value,
                "output_url": job.output.url,
                "result": job.result.model_dump(mode="json") if job.result else None,
            }
            services.stepfunctions.send_task_success(
                taskToken=job.task_token, output=json.dumps(output)
            )
        else:
            failure = job.error or JobFailure(code=job.status.value, message=job.status.value)
            cause = json.dumps({"job_id": job.job_id, **failure.model_dump(mode="json")})
            services.stepfunctions.send_task_failure(
                taskToken=job.task_token, error=failure.code, cause=cause[:MAX_TASK_CAUSE]
            )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        logger.warning(
            "Step Functions did not take the result", extra={"job_id": job.job_id, "code": code}
        )
        return "gone" if code in _TASK_GONE else "pending"
    except BotoCoreError as exc:
        logger.warning(
            "Step Functions unreachable", extra={"job_id": job.job_id, "code": type(exc).__name__}
        )
        return "pending"
    return "done"


def send_heartbeat(services: Services, job: JobRecord) -> None:
    """Keep a batch item's task alive while the worker reports progress."""
    if not job.task_token:
        return
    try:
        services.stepfunctions.send_task_heartbeat(taskToken=job.task_token)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("heartbeat refused", extra={"job_id": job.job_id, "code": code})


def notify_caller(services: Services, job: JobRecord) -> WebhookDelivery:
    """Send the caller's webhook for a final job and record the outcome on the job.

    A round that failed for a retryable reason gets a ``next_attempt_at`` on
    :data:`WEBHOOK_RETRY_SCHEDULE_S`; :func:`run_followups` re-arms the outbox for it.
    """
    assert job.webhook_url is not None
    rounds = job.webhook_delivery.rounds + 1 if job.webhook_delivery else 1
    secret = services.tenant_webhook_secret(job.tenant_id)
    if secret is None:
        delivery = WebhookDelivery(state="refused", detail="no webhook secret for the tenant")
    else:
        message = WebhookMessage(
            type=f"job.{job.status.value}",
            job_id=job.job_id,
            timestamp=iso(utc_now()),
            data=JobView.of(job).model_dump(mode="json", exclude={"webhook_delivery"}),
        )
        delivery = services.webhooks.deliver(job.webhook_url, secret, message)
    delivery.rounds = rounds
    if delivery.retryable and rounds <= len(WEBHOOK_RETRY_SCHEDULE_S):
        delay = timedelta(seconds=WEBHOOK_RETRY_SCHEDULE_S[rounds - 1])
        delivery.next_attempt_at = iso(utc_now() + delay)
    services.jobs.record_webhook(job.job_id, delivery)
    metrics.add_metric(name=f"Webhook{delivery.state.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info(
        "caller webhook",
        extra={
            "job_id": job.job_id,
            "state": delivery.state,
            "attempts": delivery.attempts,
            "rounds": rounds,
            "next_attempt_at": delivery.next_attempt_at,
        },
    )
    return delivery


def settle_succeeded(services: Services, job: JobRecord, result: JobResult) -> JobRecord | None:
    """Settle a reported success, but only if the MP4 really is in S3 with the reported size.

    The worker's word is not enough: the output is checked with ``HeadObject`` first, and a
    missing or differently sized object fails the job with ``output_missing``.
    """
    info = head_object(services.s3, job.output)
    if info is None or info.size != result.size_bytes:
        found = "no object" if info is None else f"{info.size} bytes"
        failure = JobFailure(
            code="output_missing",
            message=f"the worker reported {result.size_bytes} bytes at the output, S3 has {found}",
            retryable=True,
        )
        return settle_job(services, job.job_id, JobStatus.FAILED, error=failure)
    settled = settle_job(services, job.job_id, JobStatus.SUCCEEDED, result=result)
    if settled is not None:  # only the one process that settled it: each job counts once
        record_render_usage(settled.params.model, result)
    return settled
