"""API Gateway v2 events built from the samples in ``tests/events``, as the gateway sends them."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


@cache
def _template(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


def api_event(
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A payload-2.0 event for the public API (route ``ANY /{proxy+}``)."""
    event = copy.deepcopy(_template("apigw_v2_generate_video.json"))
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["queryStringParameters"] = query or None
    event["rawQueryString"] = urlencode(query or {})
    base_headers = {"host": event["headers"]["host"], "user-agent": "pytest"}
    if token is not None:
        base_headers["authorization"] = f"Bearer {token}"
    if body is not None:
        base_headers["content-type"] = "application/json"
    base_headers.update({name.lower(): value for name, value in (headers or {}).items()})
    event["headers"] = base_headers
    if body is None:
        event["body"] = None
    else:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def callback_event(job_id: str, body: str, headers: dict[str, str]) -> dict[str, Any]:
    """A payload-2.0 event for ``POST /callbacks/{job_id}``."""
    event = copy.deepcopy(_template("apigw_v2_callback.json"))
    path = f"/callbacks/{job_id}"
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"job_id": job_id}
    event["headers"] = {"content-type": "application/json", "host": "abc123", **headers}
    event["body"] = body
    return event


def scheduler_event() -> dict[str, Any]:
    return copy.deepcopy(_template("scheduler_reconcile.json"))
