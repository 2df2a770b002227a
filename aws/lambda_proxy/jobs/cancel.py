"""Cancelling a job: tell Modal (best effort), then settle it as ``cancelled``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws.lambda_proxy.jobs.exceptions import JobFinalError
from aws.lambda_proxy.jobs.models import JobFailure, JobRecord, JobStatus
from aws.lambda_proxy.jobs.settle import settle_job
from aws.lambda_proxy.modal.exceptions import ModalRejectedError, ModalUnavailableError
from aws.lambda_proxy.observability import logger

if TYPE_CHECKING:
    from aws.lambda_proxy.services import Services


def cancel_job(services: Services, job_id: str, tenant_id: str) -> JobRecord:
    """Cancel the tenant's job; raises ``job_not_found`` or ``job_final``.

    The job is cancelled in the table even when Modal cannot be told: a late result from the
    worker then meets a final state and is dropped, and the caller already got its answer.
    """
    job = services.jobs.get(job_id, tenant_id=tenant_id)
    if job.status.final:
        raise JobFinalError(f"job {job_id} is already {job.status.value}")
    if job.call_id:
        try:
            services.modal.cancel_job(job.call_id)
        except (ModalUnavailableError, ModalRejectedError) as exc:
            logger.warning(
                "Modal did not confirm the cancel", extra={"job_id": job_id, "code": exc.code}
            )
    settled = settle_job(
        services,
        job_id,
        JobStatus.CANCELLED,
        error=JobFailure(code="cancelled", message="cancelled by the caller", retryable=False),
    )
    if settled is None:
        current = services.jobs.get(job_id)
        raise JobFinalError(f"job {job_id} finished as {current.status.value} meanwhile")
    return settled
