"""Lambda entry point of the public API: ``aws.lambda_proxy.handlers.api.handler``.

Order of checks, so an anonymous caller learns nothing about the API's validation: body size ->
bearer token (401) -> scope by method (403: GET needs videos:read, POST/DELETE videos:write)
-> tenant configured (403) -> routing and body validation (422) -> the route.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from aws.lambda_proxy.api.app import app
from aws.lambda_proxy.api.problems import problem_result
from aws.lambda_proxy.auth.exceptions import TenantNotConfiguredError
from aws.lambda_proxy.auth.models import SCOPE_READ, SCOPE_WRITE
from aws.lambda_proxy.auth.scopes import require_scope
from aws.lambda_proxy.exceptions import BadRequestError, ProxyError
from aws.lambda_proxy.idempotency import register_lambda_context
from aws.lambda_proxy.observability import logger, metrics, tracer
from aws.lambda_proxy.services import get_services

MAX_BODY_BYTES = 16 * 1024
PUBLIC_ROUTES = frozenset({("GET", "/health"), ("GET", "/openapi.json")})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _route_path(event: dict[str, Any]) -> str:
    context = event.get("requestContext") or {}
    path = (context.get("http") or {}).get("path") or event.get("rawPath") or "/"
    stage = context.get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    return path


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        # Decoded size without decoding: 3 bytes per 4 characters.
        return len(body) * 3 // 4
    return len(body.encode())


def authorize(event: dict[str, Any]) -> None:
    """Authenticate and authorize the request; puts the tenant into the resolver context."""
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET").upper()
    if _body_size(event) > MAX_BODY_BYTES:
        raise BadRequestError(
            f"request body larger than {MAX_BODY_BYTES} bytes", code="body_too_large", status=413
        )
    if (method, _route_path(event)) in PUBLIC_ROUTES:
        return
    services = get_services()
    headers = event.get("headers") or {}
    tenant = services.verifier.verify(headers.get("authorization"))
    require_scope(tenant, SCOPE_READ if method in READ_METHODS else SCOPE_WRITE)
    if services.tenant(tenant.tenant_id) is None:
        raise TenantNotConfiguredError(f"tenant {tenant.tenant_id!r} is not configured here")
    logger.append_keys(tenant_id=tenant.tenant_id)
    app.append_context(tenant=tenant)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    register_lambda_context(context)
    try:
        authorize(event)
    except ProxyError as error:
        logger.info(
            "request refused before routing", extra={"code": error.code, "status": error.status}
        )
        app.clear_context()
        return problem_result(error)
    return app.resolve(event, context)
