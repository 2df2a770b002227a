"""Powertools Logger, Metrics and Tracer shared by every module of the proxy.

Never log a token, a pre-signed URL, a callback or webhook secret, or a request body: events
carry JWTs and answers carry signed URLs, so ``log_event`` stays off and modules log ids and
codes only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

if TYPE_CHECKING:
    from modal_service.contracts import JobResult

# Powertools' own variables win, so Terraform (and the local stack) name the service and the
# metrics namespace in one place; the defaults are what Terraform sets.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "multitalk-video-api"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MultiTalkVideoApi"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def record_render_usage(model: str, result: JobResult) -> None:
    """A succeeded job's GPU figures as CloudWatch metrics, flushed at once in their own EMF
    record: ``GpuUtilizationMean`` (%), ``GpuMemoryPeakGb``, ``GpuSeconds``, ``EstimatedCostUsd``.

    Two dimension sets: ``service`` (what the low-utilisation alarm reads) and ``service`` +
    ``model`` (the dashboard's split by preset). ``model`` is the job's requested preset, one of
    a closed list; a job id as a dimension would make a metric per job. A CPU render has no
    utilisation to report, so it cannot pull the alarm's average down; it reports its zero
    GPU-seconds and cost.
    """
    usage = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    usage.add_dimensions(service=SERVICE, model=model)
    if result.gpu is not None:
        usage.add_metric(
            name="GpuUtilizationMean",
            unit=MetricUnit.Percent,
            value=result.gpu.utilization_mean_pct,
        )
        usage.add_metric(
            name="GpuMemoryPeakGb", unit=MetricUnit.Gigabytes, value=result.gpu.memory_peak_gb
        )
    if result.gpu_seconds is not None:
        usage.add_metric(name="GpuSeconds", unit=MetricUnit.Seconds, value=result.gpu_seconds)
    if result.estimated_cost_usd is not None:
        usage.add_metric(
            name="EstimatedCostUsd", unit=MetricUnit.NoUnit, value=result.estimated_cost_usd
        )
    if usage.metric_set:  # a result from a worker that predates these figures has none
        usage.flush_metrics()
