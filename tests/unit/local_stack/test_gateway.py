"""The local gateway builds real payload-2.0 events and maps results back like API Gateway."""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.testclient import TestClient

from scripts.local_stack.gateway import LocalGateway, RouteThrottle, ThrottlingSettings, TokenBucket

ROUTES = (
    ("POST /callbacks/{job_id}", f"{__name__}.echo_handler"),
    ("GET /files/{path+}", f"{__name__}.binary_handler"),
    ("ANY /{proxy+}", f"{__name__}.echo_handler"),
)


def echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-request": context.aws_request_id},
        "body": json.dumps(
            {"event": event, "remaining_ms": context.get_remaining_time_in_millis()}
        ),
    }


def binary_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(b"\x00\x01" + event["pathParameters"]["path"].encode()).decode(),
        "isBase64Encoded": True,
    }


def test_route_with_path_parameter_builds_a_v2_event() -> None:
    client = TestClient(LocalGateway(ROUTES))
    response = client.post(
        "/callbacks/job_123?a=1&a=2&b=x",
        content=b'{"type":"job.started"}',
        headers={"Content-Type": "application/json", "Webhook-Id": "msg_1"},
    )
    assert response.status_code == 201
    event = response.json()["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /callbacks/{job_id}"
    assert event["pathParameters"] == {"job_id": "job_123"}
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["rawQueryString"] == "a=1&a=2&b=x"
    assert event["headers"]["webhook-id"] == "msg_1"
    assert event["body"] == '{"type":"job.started"}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    assert response.json()["remaining_ms"] > 0


def test_catch_all_route_and_binary_bodies() -> None:
    client = TestClient(LocalGateway(ROUTES))
    response = client.put(
        "/jobs/abc", content=b"\xff\xfe", headers={"Content-Type": "application/octet-stream"}
    )
    event = response.json()["event"]
    assert event["routeKey"] == "ANY /{proxy+}"
    assert event["pathParameters"] == {"proxy": "jobs/abc"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


def test_base64_responses_are_decoded() -> None:
    client = TestClient(LocalGateway(ROUTES))
    response = client.get("/files/a/b.bin")
    assert response.status_code == 200
    assert response.content == b"\x00\x01a/b.bin"


def test_unmatched_route_is_404() -> None:
    gateway = LocalGateway((("GET /health", f"{__name__}.echo_handler"),))
    assert TestClient(gateway).get("/nope").status_code == 404
    assert TestClient(gateway).post("/health").status_code == 404


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(RouteThrottle(rate_limit=2, burst_limit=3), clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2 a second
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # never more than the burst saved
    assert sum(bucket.take() for _ in range(10)) == 3


def test_throttled_requests_get_429_before_the_handler_runs() -> None:
    throttling = ThrottlingSettings(
        default=RouteThrottle(rate_limit=0.001, burst_limit=2),
        routes={"POST /callbacks/{job_id}": RouteThrottle(rate_limit=0.001, burst_limit=1)},
    )
    client = TestClient(LocalGateway(ROUTES, throttling=throttling))
    assert [client.get("/anything").status_code for _ in range(3)] == [201, 201, 429]
    refused = client.get("/anything")
    assert refused.json() == {"message": "Too Many Requests"}
    # Each route has its own bucket, with its own limits.
    statuses = [client.post("/callbacks/job_1", json={}).status_code for _ in range(2)]
    assert statuses == [201, 429]
