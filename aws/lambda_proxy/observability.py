"""Powertools Logger, Metrics and Tracer shared by every module of the proxy.

Never log a token, a pre-signed URL, a callback or webhook secret, or a request body: events
carry JWTs and answers carry signed URLs, so ``log_event`` stays off and modules log ids and
codes only.

The Tracer is built at the first traced invocation, not at import: building it imports the
X-Ray SDK and patches every library the SDK traces (botocore, httpx, http.client, ...), which no
cold import should pay for (and where tracing is off, as on the local stack, it is never built).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    from modal_service.contracts import JobResult

Handler = TypeVar("Handler", bound=Callable[..., Any])

# Powertools' own variables win, so Terraform (and the local stack) name the service and the
# metrics namespace in one place; the defaults are what Terraform sets.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "multitalk-video-api"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MultiTalkVideoApi"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def tracing_enabled() -> bool:
    """Powertools' own rule: traced in Lambda (``LAMBDA_TASK_ROOT``) unless
    ``POWERTOOLS_TRACE_DISABLED`` says otherwise or a local emulator (SAM, Chalice) runs it."""
    if resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false")):
        return False
    local = os.getenv(constants.SAM_LOCAL_ENV) or os.getenv(constants.CHALICE_LOCAL_ENV)
    return bool(os.getenv(constants.LAMBDA_TASK_ROOT_ENV)) and not local


class DeferredTracer:
    """Powertools' :class:`Tracer`, built when the first traced invocation needs it."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._tracer: Tracer | None = None
        self._lock = threading.Lock()

    def get(self) -> Tracer:
        with self._lock:
            if self._tracer is None:
                from aws_lambda_powertools import Tracer

                self._tracer = Tracer(service=self._service)
            return self._tracer

    def capture_lambda_handler(
        self, *, capture_response: bool = False
    ) -> Callable[[Handler], Handler]:
        """``Tracer.capture_lambda_handler`` for ``handler``, wrapped at its first call."""

        def decorate(handler: Handler) -> Handler:
            traced: Callable[..., Any] | None = None

            @functools.wraps(handler)
            def run(event: Any, context: Any) -> Any:
                nonlocal traced
                if traced is None:
                    traced = (
                        self.get().capture_lambda_handler(
                            handler, capture_response=capture_response
                        )
                        if tracing_enabled()
                        else handler
                    )
                return traced(event, context)

            return run  # type: ignore[return-value]

        return decorate


tracer = DeferredTracer(SERVICE)


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
