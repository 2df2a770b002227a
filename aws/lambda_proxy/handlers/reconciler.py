"""Scheduled entry point: ``aws.lambda_proxy.handlers.reconciler.handler``.

EventBridge Scheduler invokes it (e.g. every 5 minutes); the event's content is ignored.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from aws.lambda_proxy.observability import logger, metrics, tracer
from aws.lambda_proxy.reconcile.reconciler import reconcile
from aws.lambda_proxy.services import get_services


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return reconcile(get_services()).model_dump()
