"""The reconciler: settles, from Modal's view, what the callbacks did not.

Callbacks are the normal path; this catches what they miss (a worker killed mid-job, a lost
callback, a Lambda that crashed between writing the record and calling Modal). Two kinds of
unsettled job are examined:

* **overdue** (past ``deadline + grace``): Modal's state decides: succeeded (after the S3
  check), failed, cancelled, or, if still running or forgotten, cancelled at Modal and failed
  here with ``deadline_exceeded``. If Modal cannot be asked, the job waits for the next run,
  unless it is a whole extra deadline late: then it fails with ``modal_unavailable`` so no batch
  item waits forever.
* **silent** (no update for ``silent_job_s``, deadline still ahead): settled only if Modal says
  the call is over, so a dead worker or a lost final callback is found in minutes rather than at
  the deadline; a call still queued or running is left alone.

It also runs the follow-ups of settled jobs whose outbox entry fell due: a Step Functions
notification that did not go through, a caller webhook round that failed or never ran.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel

from aws.lambda_proxy.jobs.models import JobFailure, JobRecord, JobStatus, iso, utc_now
from aws.lambda_proxy.jobs.settle import run_followups, settle_job, settle_succeeded
from aws.lambda_proxy.modal.exceptions import ModalRejectedError, ModalUnavailableError
from aws.lambda_proxy.observability import logger
from modal_service.contracts import CallState, JobStatusResponse

if TYPE_CHECKING:
    from aws.lambda_proxy.services import Services


class ReconcileSummary(BaseModel):
    examined: int = 0
    settled: int = 0
    deferred: int = 0
    silent_examined: int = 0
    silent_settled: int = 0
    followups: int = 0


def reconcile(
    services: Services, *, now: datetime | None = None, limit: int = 100
) -> ReconcileSummary:
    now = now or utc_now()
    grace = timedelta(seconds=services.settings.reconcile_grace_s)
    summary = ReconcileSummary()
    modal_down: ModalUnavailableError | None = None
    for job in services.jobs.overdue(now_iso=iso(now - grace), limit=limit):
        summary.examined += 1
        try:
            if modal_down is not None:
                raise modal_down  # one outage per run is enough: do not wait on Modal per job
            settled = _settle_overdue(services, job)
        except (ModalUnavailableError, ModalRejectedError) as exc:
            if isinstance(exc, ModalUnavailableError):
                modal_down = exc
            overdue_by = now - datetime.fromisoformat(job.deadline)
            if overdue_by < timedelta(seconds=services.settings.job_deadline_s):
                logger.warning("Modal unreachable; retry next run", extra={"job_id": job.job_id})
                summary.deferred += 1
                continue
            failure = JobFailure(code=exc.code, message=exc.message, retryable=True)
            settled = settle_job(services, job.job_id, JobStatus.FAILED, error=failure) is not None
        summary.settled += int(settled)
    if modal_down is None:
        silent_since = now - timedelta(seconds=services.settings.silent_job_s)
        for job in services.jobs.silent(now_iso=iso(now), updated_before_iso=iso(silent_since)):
            summary.silent_examined += 1
            try:
                summary.silent_settled += int(_settle_silent(services, job))
            except ModalRejectedError:
                continue  # Modal does not know the call: the deadline path settles it
            except ModalUnavailableError:
                break  # asked again next run

    for job in services.jobs.followups_due(now_iso=iso(now)):
        run_followups(services, job)
        summary.followups += 1
    logger.info("reconciled", extra=summary.model_dump())
    return summary


def _deadline_failure(message: str) -> JobFailure:
    return JobFailure(code="deadline_exceeded", message=message, retryable=True)


def _settle_from_call(services: Services, job: JobRecord, status: JobStatusResponse) -> bool | None:
    """Settle ``job`` as its finished call ended; None while the call is not over."""
    if status.state is CallState.SUCCEEDED and status.result is not None:
        return settle_succeeded(services, job, status.result) is not None
    if status.state is CallState.FAILED and status.error is not None:
        failure = JobFailure(**status.error.model_dump(mode="json"))
        return settle_job(services, job.job_id, JobStatus.FAILED, error=failure) is not None
    if status.state is CallState.CANCELLED:
        failure = JobFailure(code="cancelled", message="cancelled at the render service")
        return settle_job(services, job.job_id, JobStatus.CANCELLED, error=failure) is not None
    return None


def _settle_silent(services: Services, job: JobRecord) -> bool:
    if job.call_id is None:
        return False  # a submit may still be on its way; the deadline path settles it
    settled = _settle_from_call(services, job, services.modal.get_job(job.call_id))
    if settled:
        logger.info("silent job settled from the render service", extra={"job_id": job.job_id})
    return bool(settled)


def _settle_overdue(services: Services, job: JobRecord) -> bool:
    if job.call_id is None:
        failure = _deadline_failure("the job was never dispatched to the render service")
        return settle_job(services, job.job_id, JobStatus.FAILED, error=failure) is not None
    status = services.modal.get_job(job.call_id)
    settled = _settle_from_call(services, job, status)
    if settled is not None:
        return settled
    if status.state is CallState.RUNNING:
        services.modal.cancel_job(job.call_id)
    failure = _deadline_failure(f"the render did not finish by its deadline ({status.state.value})")
    return settle_job(services, job.job_id, JobStatus.FAILED, error=failure) is not None
