"""The sample events in tests/events, exactly as stored, go through the real handlers."""

from __future__ import annotations

import json

import pytest

from aws.lambda_proxy.handlers import api, callbacks, reconciler
from scripts.local_stack.gateway import LambdaContext
from tests.integration.lambda_proxy.conftest import Proxy, to_answer
from tests.integration.lambda_proxy.events import EVENTS_DIR

pytestmark = pytest.mark.stack

# The stored events carry placeholders (``Bearer <token>``, ``<base64 HMAC-SHA256>``), so
# every authenticated one must be refused, and the public ones answered.
EXPECTED = {
    "apigw_v2_generate_video.json": (401, "token_malformed"),
    "apigw_v2_get_job.json": (401, "token_malformed"),
    "apigw_v2_list_jobs.json": (401, "token_malformed"),
    "apigw_v2_delete_job.json": (401, "token_malformed"),
    "apigw_v2_health.json": (200, None),
    "apigw_v2_openapi.json": (200, None),
    "apigw_v2_callback.json": (404, "job_not_found"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stored_api_events(proxy: Proxy, name: str) -> None:
    event = json.loads((EVENTS_DIR / name).read_text())
    handler = callbacks.handler if name == "apigw_v2_callback.json" else api.handler
    answer = to_answer(handler(event, LambdaContext(function_name="samples")))
    status, code = EXPECTED[name]
    assert answer.status == status, answer.body
    if code:
        assert answer.json()["code"] == code


def test_every_stored_event_is_covered() -> None:
    stored = {path.name for path in EVENTS_DIR.glob("*.json")}
    assert stored == {*EXPECTED, "scheduler_reconcile.json"}


def test_stored_schedule_event_runs_the_reconciler(proxy: Proxy) -> None:
    event = json.loads((EVENTS_DIR / "scheduler_reconcile.json").read_text())
    summary = reconciler.handler(event, LambdaContext(function_name="samples"))
    assert set(summary) == {
        "examined",
        "settled",
        "deferred",
        "silent_examined",
        "silent_settled",
        "followups",
    }
