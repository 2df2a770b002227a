"""Per-tenant CloudWatch metrics (EMF), each event flushed at once in its own record.

Dimension sets: ``service`` (what the alarms read) and ``service`` + ``tenant`` (the
dashboard's split). Tenants are the deployment's configured list, never a job id. The names
below are what terraform/monitoring.tf alarms on and charts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from aws.lambda_proxy.observability import NAMESPACE, SERVICE

if TYPE_CHECKING:
    from aws.lambda_proxy.jobs.models import JobRecord

ADMITTED = "TenantJobsAdmitted"
REFUSED = "TenantQuotaRefused"
"""API submissions refused by a tenant limit (batch items wait instead: ``BATCH_WAITS``)."""
BATCH_WAITS = "BatchItemsWaiting"
FINISHED = "TenantJobsFinished"
GPU_SECONDS = "TenantGpuSeconds"
QUEUE_WAIT = "JobQueueWaitSeconds"
"""A job's wait from its creation until a GPU started it."""
END_TO_END = "JobEndToEndSeconds"
"""A job's whole time, from its creation until it was settled."""


def _emit(tenant_id: str, values: dict[str, tuple[MetricUnit, float]]) -> None:
    record = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    record.add_dimensions(service=SERVICE, tenant=tenant_id)
    for name, (unit, value) in values.items():
        record.add_metric(name=name, unit=unit, value=value)
    record.flush_metrics()


def record_admitted(tenant_id: str) -> None:
    _emit(tenant_id, {ADMITTED: (MetricUnit.Count, 1)})


def record_refused(tenant_id: str, limit: str) -> None:
    """``TenantQuotaRefused`` (all limits) and ``TenantQuotaRefused_<limit>``."""
    _emit(tenant_id, {REFUSED: (MetricUnit.Count, 1), f"{REFUSED}_{limit}": (MetricUnit.Count, 1)})


def record_batch_wait(tenant_id: str) -> None:
    _emit(tenant_id, {BATCH_WAITS: (MetricUnit.Count, 1)})


def record_released(job: JobRecord) -> None:
    """A finished job, once: its GPU-seconds, its wait in the queue (created to started) and
    its end-to-end time (created to finished)."""
    values: dict[str, tuple[MetricUnit, float]] = {FINISHED: (MetricUnit.Count, 1)}
    created = datetime.fromisoformat(job.created_at)
    if job.result is not None and job.result.gpu_seconds is not None:
        values[GPU_SECONDS] = (MetricUnit.Seconds, job.result.gpu_seconds)
    if job.started_at is not None:
        waited = datetime.fromisoformat(job.started_at) - created
        values[QUEUE_WAIT] = (MetricUnit.Seconds, waited.total_seconds())
    if job.finished_at is not None:
        took = datetime.fromisoformat(job.finished_at) - created
        values[END_TO_END] = (MetricUnit.Seconds, took.total_seconds())
    _emit(job.tenant_id, values)
