"""Applying a verified callback event to its job.

Each ``webhook-id`` is applied at most once (powertools idempotency keyed on job and message
id; a replay answers the stored outcome marked ``duplicate``). Status only moves forward:
``started``/``progress`` apply to unsettled jobs, ``succeeded``/``failed`` settle them, and
anything arriving for a final job is acknowledged and ignored.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from aws.lambda_proxy.idempotency import make_idempotent
from aws.lambda_proxy.jobs.estimate import revised_estimate
from aws.lambda_proxy.jobs.models import JobFailure, JobStatus, Progress
from aws.lambda_proxy.jobs.settle import send_heartbeat, settle_job, settle_succeeded
from aws.lambda_proxy.observability import logger
from modal_service.contracts import (
    CALLBACK_EVENT_ADAPTER,
    JobFailed,
    JobProgress,
    JobStarted,
    JobSucceeded,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from aws.lambda_proxy.services import Services


class Delivery(BaseModel):
    """One verified callback: what dedupe keys on, and the event body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    webhook_id: str
    event: dict[str, Any]


def _mark_duplicate(response: Any, _: DataRecord) -> Any:
    return {**response, "duplicate": True}


@cache
def _apply_once(services: Services) -> Any:
    def apply_delivery(delivery: Delivery) -> dict[str, Any]:
        delivery = Delivery.model_validate(delivery)
        return apply_event(services, delivery.job_id, delivery.event)

    return make_idempotent(
        services,
        apply_delivery,
        data_keyword_argument="delivery",
        key_jmespath="[job_id, webhook_id]",
        # Past twice the tolerance a replay is refused by its timestamp anyway.
        expires_after_seconds=max(3600, 2 * services.settings.callback_tolerance_s),
        response_hook=_mark_duplicate,
    )


def apply_delivery(services: Services, delivery: Delivery) -> dict[str, Any]:
    """Apply once per ``webhook-id``; returns ``{"applied", "status"[, "duplicate"]}``."""
    return _apply_once(services)(delivery=delivery)


def apply_event(services: Services, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
    event = CALLBACK_EVENT_ADAPTER.validate_python(body)
    jobs = services.jobs
    applied = False
    if isinstance(event, JobStarted):
        applied = jobs.mark_started(job_id, event.call_id)
        if applied:
            send_heartbeat(services, jobs.get(job_id))
    elif isinstance(event, JobProgress):
        progress = Progress(
            stage=event.stage,
            percent=event.percent,
            step=event.step,
            total=event.total,
            remaining_s=event.remaining_s,
        )
        estimate = None
        if event.remaining_s is not None:
            estimate = revised_estimate(jobs.get(job_id).created_at, event.remaining_s)
        applied = jobs.update_progress(job_id, progress, estimated_time_s=estimate)
        if applied:
            send_heartbeat(services, jobs.get(job_id))
    elif isinstance(event, JobSucceeded):
        job = jobs.get(job_id)
        applied = not job.status.final and settle_succeeded(services, job, event.result) is not None
    elif isinstance(event, JobFailed):
        failure = JobFailure(**event.error.model_dump(mode="json"))
        applied = settle_job(services, job_id, JobStatus.FAILED, error=failure) is not None
    status = jobs.get(job_id).status
    logger.info(
        "callback",
        extra={"job_id": job_id, "event": event.type, "applied": applied, "status": status.value},
    )
    return {"applied": applied, "status": status.value}
