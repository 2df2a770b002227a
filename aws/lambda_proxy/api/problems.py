"""``application/problem+json`` (RFC 9457) answers with a stable ``code`` member."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from aws.lambda_proxy.exceptions import ProxyError

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:multitalk-video-api:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }


def _headers(error: ProxyError) -> dict[str, str]:
    headers = {"Cache-Control": "no-store"}
    challenge = getattr(error, "challenge", None)
    if challenge:
        headers["WWW-Authenticate"] = challenge
    retry_after_s = getattr(error, "retry_after_s", None)
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return headers


def problem_response(error: ProxyError) -> Response:
    """The resolver's answer for any :class:`ProxyError`."""
    body = problem_body(error.status, error.code, error.title, error.message, **error.extra)
    return Response(
        status_code=error.status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body),
        headers=_headers(error),
    )


def problem_result(error: ProxyError) -> dict[str, Any]:
    """The same answer as a raw payload-2.0 result, for refusals made before routing."""
    body = problem_body(error.status, error.code, error.title, error.message, **error.extra)
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": PROBLEM_CONTENT_TYPE, **_headers(error)},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
