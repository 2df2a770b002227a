"""The resolver of the public API: routers joined, errors mapped to problem+json, OpenAPI."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from aws.lambda_proxy.api.models import Health, validation_code
from aws.lambda_proxy.api.problems import PROBLEM_CONTENT_TYPE, problem_body, problem_response
from aws.lambda_proxy.api.routes import router
from aws.lambda_proxy.exceptions import ProxyError
from aws.lambda_proxy.observability import logger

TITLE = "MultiTalk video API"
MAX_VALIDATION_ERRORS = 20

try:
    VERSION = version("multitalk-video-api")
except PackageNotFoundError:  # the Lambda zip carries the code, not the distribution metadata
    VERSION = "0.1.0"

# A response that fails its own model is our bug: 500, never a 422 blaming the caller.
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
app.include_router(router)


@app.get("/health", summary="Liveness", tags=["meta"])
def health() -> Health:
    return Health(version=VERSION)


@app.get("/openapi.json", summary="This document", tags=["meta"], include_in_schema=False)
def openapi() -> Response[str]:
    # Powertools' OpenAPI models are a hundred pydantic classes: built for this rare route only.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    schema = app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
        description=(
            "Talking-head videos from audio and a portrait in S3. Every route except /health "
            "and /openapi.json needs `Authorization: Bearer <JWT>` with the videos:read (GET) "
            "or videos:write (POST, DELETE) scope. Errors are application/problem+json with a "
            "stable `code`."
        ),
    )
    return Response(status_code=200, content_type="application/json", body=schema)


@app.exception_handler(ProxyError)
def _proxy_error(error: ProxyError) -> Response:
    return problem_response(error)


@app.exception_handler(RequestValidationError)
def _validation_error(error: RequestValidationError) -> Response:
    # Locations and messages only: pydantic's "input" would echo request values back.
    errors = [
        {"loc": [str(part) for part in item.get("loc", ())], "msg": item.get("msg", "")}
        for item in error.errors()[:MAX_VALIDATION_ERRORS]
    ]
    code = validation_code(error.errors(), "request_invalid")
    # A coded refusal (a contradiction between fields) is one sentence the caller can act on.
    detail = (
        errors[0]["msg"] if code != "request_invalid" else "the request does not match the schema"
    )
    body = problem_body(422, code, "Request invalid", detail, errors=errors)
    return Response(status_code=422, content_type=PROBLEM_CONTENT_TYPE, body=json.dumps(body))


@app.not_found
def _not_found(_: Exception) -> Response:
    body = problem_body(404, "route_not_found", "Not found", "no such route")
    return Response(status_code=404, content_type=PROBLEM_CONTENT_TYPE, body=json.dumps(body))


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    logger.exception("unhandled error", extra={"error_type": type(error).__name__})
    body = problem_body(500, "internal", "Internal error", "unexpected error; it was logged")
    return Response(status_code=500, content_type=PROBLEM_CONTENT_TYPE, body=json.dumps(body))
