"""A caller's webhook receives the result over https, signed with the tenant's secret.

The product's own gateway keeps the production address policy, so it refuses this test's
receiver (loopback, an ephemeral port, the stack's CA). The delivery test opts in explicitly: it
submits through a second gateway started with ``loopback_webhooks=True``; the job calls back to
that gateway, which sends the webhook under the widened policy.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from queue import Empty, Queue

import httpx
import pytest
from standardwebhooks import Webhook

from scripts.local_stack import StackInfo, processes, product, tls
from tests.e2e.test_jobs import submit, wait_final

pytestmark = pytest.mark.stack

WEBHOOK_GATEWAY = "loopback-webhooks-gateway"


@pytest.fixture(scope="module")
def loopback_webhook_gateway(
    stack: StackInfo, running_product: product.ProductInfo
) -> Iterator[str]:
    """A gateway in front of the same product whose webhook policy admits loopback receivers."""
    url = product.start_gateway(stack, running_product, WEBHOOK_GATEWAY, {}, loopback_webhooks=True)
    try:
        yield url
    finally:
        processes.stop_some(stack.state_dir, [WEBHOOK_GATEWAY])


@pytest.fixture
def webhook_api(api: httpx.Client, loopback_webhook_gateway: str) -> Iterator[httpx.Client]:
    """The ``api`` client's token, pointed at the loopback-webhooks gateway."""
    with httpx.Client(
        base_url=loopback_webhook_gateway, headers=api.headers, timeout=api.timeout
    ) as client:
        yield client


@pytest.fixture
def receiver(stack: StackInfo) -> Iterator[tuple[str, Queue]]:
    """An https server on loopback (certificate from the stack's CA) that records deliveries."""
    received: Queue = Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    certificate, key = tls.issue_server_certificate(stack.state_dir, "webhook-receiver")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hooks/video", received
    finally:
        server.shutdown()


def tenant_secret(stack: StackInfo, tenant: str) -> str:
    stored = json.loads((stack.state_dir / "secrets.json").read_text())
    return stored["tenant_webhook_secrets"][tenant]


def test_the_product_gateway_refuses_a_loopback_receiver(
    api: httpx.Client, stack: StackInfo, upload, receiver
) -> None:
    """The default local gateway runs the production policy: no job, a 422 with the code."""
    url, received = receiver
    body = {
        "input": {
            "audio_s3_url": upload("short.wav"),
            "reference_image_s3_url": upload("portrait.png"),
        },
        "output": {"s3_bucket": stack.buckets["data"], "s3_prefix": "tenants/acme/outputs/e2e/"},
        "options": {"model": "tiny", "webhook_url": url},
    }
    response = api.post("/generate-video", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "webhook_url_refused"
    assert received.empty()


def test_success_webhook_is_signed_with_the_tenant_secret(
    webhook_api: httpx.Client, stack: StackInfo, upload, receiver
) -> None:
    url, received = receiver
    job_id = submit(
        webhook_api,
        stack,
        {"audio_s3_url": upload("short.wav"), "reference_image_s3_url": upload("portrait.png")},
        webhook_url=url,
        video_length=1.0,  # the 2 s voice is cut, and the webhook must say so
    )
    job = wait_final(webhook_api, job_id)
    assert job["status"] == "succeeded", job
    try:
        headers, body = received.get(timeout=30)
    except Empty:
        pytest.fail("the caller webhook never arrived")
    message = Webhook(tenant_secret(stack, "acme")).verify(body, headers)
    assert message["type"] == "job.succeeded"
    assert message["job_id"] == job_id
    assert message["data"]["output_url"] == job["output_url"]
    result = message["data"]["result"]
    assert result["audio_durations_s"] == [pytest.approx(2.0, abs=0.05)]
    assert result["duration_s"] == pytest.approx(1.0)
    assert any("longer than video_length (1 s)" in note for note in result["notes"]), result
    assert result == job["result"]  # the webhook and GET /jobs/{id} say the same
    with pytest.raises(Exception, match="signature"):
        Webhook(tenant_secret(stack, "globex")).verify(body, headers)
