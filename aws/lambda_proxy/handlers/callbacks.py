"""Lambda entry point for Modal's callbacks: ``aws.lambda_proxy.handlers.callbacks.handler``.

Route ``POST /callbacks/{job_id}``, no JWT: the body is authenticated by the job's own Standard
Webhooks secret. Order: job id shape -> body size -> the job -> signature and timestamp ->
parse -> dedupe by ``webhook-id`` -> apply. ``job.url_refresh`` is answered with fresh
pre-signed URLs (:class:`UrlRefreshResponse`), itself signed with the job's secret.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from aws.lambda_proxy.api.problems import problem_response
from aws.lambda_proxy.callbacks.apply import Delivery, apply_delivery
from aws.lambda_proxy.callbacks.exceptions import CallbackInvalidError
from aws.lambda_proxy.callbacks.verify import sign_headers, verify_signature
from aws.lambda_proxy.exceptions import BadRequestError, ConflictError, ProxyError
from aws.lambda_proxy.idempotency import register_lambda_context
from aws.lambda_proxy.jobs.exceptions import JobFinalError, JobNotFoundError
from aws.lambda_proxy.jobs.submit import signed_urls
from aws.lambda_proxy.observability import logger, metrics, tracer
from aws.lambda_proxy.services import get_services
from modal_service.contracts import (
    CALLBACK_EVENT_ADAPTER,
    JOB_ID_PATTERN,
    UrlRefreshRequested,
    UrlRefreshResponse,
)

MAX_CALLBACK_BYTES = 64 * 1024
_JOB_ID = re.compile(JOB_ID_PATTERN)

app = APIGatewayHttpResolver()


@app.post("/callbacks/<job_id>")
def callback(job_id: str) -> Response:
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFoundError("no such job")
    event = app.current_event
    body = event.decoded_body or ""
    if len(body.encode()) > MAX_CALLBACK_BYTES:
        raise BadRequestError("callback body too large", code="body_too_large", status=413)
    services = get_services()
    job = services.jobs.get(job_id)
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    webhook_id = verify_signature(
        job.callback_secret, body, headers, tolerance_s=services.settings.callback_tolerance_s
    )
    try:
        parsed = CALLBACK_EVENT_ADAPTER.validate_json(body)
    except ValidationError:
        metrics.add_metric(name="CallbackInvalid", unit=MetricUnit.Count, value=1)
        raise CallbackInvalidError("the callback body is not a known event") from None
    if parsed.job_id != job_id:
        raise CallbackInvalidError("the event names another job", code="callback_job_mismatch")

    if isinstance(parsed, UrlRefreshRequested):
        if job.status.final:
            raise JobFinalError(f"job {job_id} is {job.status.value}; no fresh URLs")
        inputs, output = signed_urls(services, job)
        answer = UrlRefreshResponse(inputs=inputs, output=output).model_dump_json()
        logger.info("urls refreshed", extra={"job_id": job_id})
        return Response(
            status_code=200,
            content_type="application/json",
            body=answer,
            headers=sign_headers(job.callback_secret, answer, f"{webhook_id}-answer"),
        )

    delivery = Delivery(job_id=job_id, webhook_id=webhook_id, event=parsed.model_dump(mode="json"))
    try:
        outcome = apply_delivery(services, delivery)
    except IdempotencyAlreadyInProgressError:
        raise ConflictError(
            "this webhook-id is being applied right now; retry", code="callback_in_progress"
        ) from None
    if outcome.get("duplicate"):
        metrics.add_metric(name="CallbackDuplicate", unit=MetricUnit.Count, value=1)
    return Response(status_code=200, content_type="application/json", body=outcome)


@app.exception_handler(ProxyError)
def _proxy_error(error: ProxyError) -> Response:
    if error.status in (401, 403):
        metrics.add_metric(name="CallbackRejected", unit=MetricUnit.Count, value=1)
    logger.info("callback refused", extra={"code": error.code, "status": error.status})
    return problem_response(error)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    register_lambda_context(context)
    return app.resolve(event, context)
