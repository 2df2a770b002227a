"""Modal unreachable or failing (a real local HTTP server with the failure), proxy-token refusal
by the real internal API, caller-webhook retries, redirects and cancellation notices."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from aws.lambda_proxy.modal.client import ModalClient, ProxyToken
from aws.lambda_proxy.modal.exceptions import ModalRejectedError
from aws.lambda_proxy.services import Services, set_services
from tests.integration.lambda_proxy.conftest import Proxy, free_port

pytestmark = pytest.mark.stack


class FaultyModal:
    """Answers ``POST /v1/jobs`` with the queued behaviours, then 503: a status code, ``"hang"``
    (answers after the client's timeout), ``"accept"`` (a valid answer for the request's job),
    or ``(status, body)``."""

    def __init__(self, behaviours: list[Any]) -> None:
        self.behaviours = behaviours
        self.requests = 0
        faulty = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                faulty.requests += 1
                behaviour = faulty.behaviours.pop(0) if faulty.behaviours else 503
                if behaviour == "hang":
                    time.sleep(1.0)
                    behaviour = 503
                if behaviour == "accept":
                    answer = {"job_id": request["job_id"], "call_id": "call-after-retry"}
                    behaviour = (202, json.dumps(answer).encode())
                status, body = (
                    behaviour if isinstance(behaviour, tuple) else (behaviour, b'{"code": "boom"}')
                )
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout), as intended

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def modal_at(proxy: Proxy, url: str, **settings: Any) -> Iterator[Services]:
    """The container's services with Modal at ``url`` (and fast retries)."""
    updates = {"modal_api_url": url, "modal_timeout_s": 0.3, "modal_max_attempts": 3, **settings}
    services = Services(
        proxy.services.settings.model_copy(update=updates),
        webhook_policy=proxy.services.webhook_policy,
        webhook_ssl_context=proxy.ssl_context,
    )
    set_services(services)
    try:
        yield services
    finally:
        set_services(proxy.services)


@pytest.mark.fault("render service down at submission (handler)")
def test_modal_down_fails_the_job_with_a_clear_code_and_tells_the_caller(proxy: Proxy) -> None:
    hook = f"{proxy.receiver.base_url}/hooks/modal-down"
    body = proxy.body(options={"webhook_url": hook})
    with modal_at(proxy, f"http://127.0.0.1:{free_port()}"):  # nothing listens there
        answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)

    assert answer.status == 503
    problem = answer.json()
    assert problem["code"] == "modal_unavailable"
    job = proxy.services.jobs.get(problem["job_id"])
    assert job.status.value == "failed"
    assert job.error is not None
    assert job.error.code == "modal_unavailable"
    assert job.error.retryable is True
    (notice,) = proxy.receiver.for_job(job.job_id)
    assert notice.json()["type"] == "job.failed"
    assert notice.json()["data"]["error"]["code"] == "modal_unavailable"


@pytest.mark.parametrize(
    ("behaviours", "status", "code", "requests"),
    [
        ([500, 502, 503], 503, "modal_unavailable", 3),
        (["hang", "hang", "hang"], 503, "modal_unavailable", 3),
        ([400], 502, "modal_rejected", 1),
        ([(202, b'{"unexpected": true}')], 502, "modal_contract_mismatch", 1),
    ],
)
def test_modal_failures_are_retried_only_when_worth_it(
    proxy: Proxy, behaviours: list[Any], status: int, code: str, requests: int
) -> None:
    faulty = FaultyModal(behaviours)
    with modal_at(proxy, faulty.url):
        answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=proxy.body())
    assert answer.status == status, answer.body
    assert answer.json()["code"] == code
    assert faulty.requests == requests
    assert proxy.services.jobs.get(answer.json()["job_id"]).status.value == "failed"


@pytest.mark.fault("render service answers 5xx, then recovers")
def test_a_transient_5xx_is_retried_to_success(proxy: Proxy) -> None:
    faulty = FaultyModal([503, "accept"])
    with modal_at(proxy, faulty.url):
        answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=proxy.body())
    assert answer.status == 202, answer.body
    assert faulty.requests == 2
    assert proxy.services.jobs.get(answer.json()["job_id"]).call_id == "call-after-retry"


def test_the_internal_api_refuses_a_wrong_proxy_token(proxy: Proxy) -> None:
    client = ModalClient(
        proxy.internal_api_url,
        token=lambda: ProxyToken(token_id="wk-wrong", token_secret="ws-wrong"),
        timeout_s=2,
        max_attempts=3,
        backoff_base_s=0,
    )
    with pytest.raises(ModalRejectedError):
        client.get_job("lc-anything")


@pytest.mark.fault("caller's webhook receiver failing")
def test_webhook_is_retried_with_backoff_until_delivered(proxy: Proxy) -> None:
    hook = f"{proxy.receiver.base_url}/hooks/flaky"
    job_id = proxy.submit(options={"webhook_url": hook})
    proxy.receiver.answers[:] = [(500, {}), (503, {})]
    assert proxy.invoke("DELETE", f"/jobs/{job_id}", token=proxy.token()).status == 200

    deliveries = proxy.receiver.for_job(job_id)
    assert [item.json()["type"] for item in deliveries] == ["job.cancelled"] * 3
    # Retries carry the same message id, so the receiver can drop repeats.
    assert len({item.headers["webhook-id"] for item in deliveries}) == 1
    delivery = proxy.services.jobs.get(job_id).webhook_delivery
    assert delivery is not None
    assert delivery.state == "delivered"
    assert delivery.attempts == 3


def test_webhook_redirects_are_not_followed(proxy: Proxy) -> None:
    hook = f"{proxy.receiver.base_url}/hooks/redirect"
    job_id = proxy.submit(options={"webhook_url": hook})
    proxy.receiver.answers[:] = [(302, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    proxy.invoke("DELETE", f"/jobs/{job_id}", token=proxy.token())

    assert len(proxy.receiver.for_job(job_id)) == 1
    delivery = proxy.services.jobs.get(job_id).webhook_delivery
    assert delivery is not None
    assert delivery.state == "failed"
    assert delivery.last_status == 302
    assert delivery.attempts == 1


def test_default_policy_refuses_loopback_webhooks(proxy: Proxy) -> None:
    services = Services(proxy.services.settings)  # production defaults: no allowed networks
    set_services(services)
    try:
        body = proxy.body(options={"webhook_url": f"{proxy.receiver.base_url}/hooks/x"})
        answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    finally:
        set_services(proxy.services)
    assert answer.status == 422
    assert answer.json()["code"] == "webhook_url_refused"
