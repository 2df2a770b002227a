"""The proxy Lambdas against the local stack and the real internal API.

Session fixtures start, in this process: an HTTPS webhook receiver, the real internal API
(``modal_service.api``) under uvicorn with a local runner that has no worker slots (jobs stay
queued and "running", so the tests play the GPU worker by sending signed callbacks themselves),
and the local API gateway (callbacks the tests send go to the real callback handler through it).
Handlers are called with real API Gateway v2 events; their environment is the one the local
stack gives the Lambdas (``scripts.local_stack.product.lambda_environment``).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from pydantic import BaseModel
from standardwebhooks import Webhook

from aws.lambda_proxy.config import Settings
from aws.lambda_proxy.handlers import api as api_handler
from aws.lambda_proxy.handlers import callbacks as callbacks_handler
from aws.lambda_proxy.services import Services, set_services
from aws.lambda_proxy.webhooks.address_policy import AddressPolicy
from modal_service.api import create_app
from modal_service.config import ServiceSettings
from modal_service.runner.local import LocalRunner
from scripts.local_stack import StackInfo
from scripts.local_stack.gateway import LambdaContext, LocalGateway
from scripts.local_stack.product import lambda_environment
from tests.integration.lambda_proxy.events import api_event, callback_event
from tests.integration.lambda_proxy.receiver import (
    WebhookReceiver,
    make_certificate,
    start_receiver,
)

pytestmark = pytest.mark.stack

# Small, valid-looking media: the inputs are checked by HeadObject (size, type), never decoded,
# because no worker runs in these tests.
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 60  # headers only: the proxy reads no further
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """An ASGI app under uvicorn in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def to_answer(result: dict[str, Any]) -> Answer:
    headers = {name.lower(): str(value) for name, value in (result.get("headers") or {}).items()}
    return Answer(int(result["statusCode"]), headers, result.get("body") or "")


@dataclass
class Proxy:
    """What the tests drive: handlers, tokens, inputs, signed callbacks."""

    stack: StackInfo
    services: Services
    receiver: WebhookReceiver
    runner: LocalRunner
    internal_api_url: str
    gateway_url: str
    ssl_context: ssl.SSLContext

    @property
    def bucket(self) -> str:
        return self.stack.buckets["data"]

    def token(
        self,
        tenant: str = "acme",
        scopes: tuple[str, ...] = ("videos:read", "videos:write"),
        **claims: Any,
    ) -> str:
        return self.stack.mint_token(tenant, list(scopes), **claims)

    def invoke(self, method: str, path: str, **kwargs: Any) -> Answer:
        event = api_event(method, path, **kwargs)
        return to_answer(api_handler.handler(event, LambdaContext(function_name="api")))

    def upload(self, name: str, data: bytes, content_type: str, *, tenant: str = "acme") -> str:
        key = f"tenants/{tenant}/inputs/{uuid.uuid4().hex[:10]}-{name}"
        self.stack.s3_client().put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
        )
        return f"s3://{self.bucket}/{key}"

    def body(self, tenant: str = "acme", **sections: dict[str, Any]) -> dict[str, Any]:
        """A valid request with freshly uploaded inputs; ``sections`` update its parts."""
        body: dict[str, Any] = {
            "input": {
                "audio_s3_url": self.upload("voice.wav", WAV, "audio/wav", tenant=tenant),
                "reference_image_s3_url": self.upload("face.png", PNG, "image/png", tenant=tenant),
                "prompt": "A person talking",
            },
            "output": {
                "s3_bucket": self.bucket,
                "s3_prefix": f"tenants/{tenant}/outputs/{uuid.uuid4().hex[:8]}",
            },
            "options": {"resolution": "480p", "video_length": 5, "model": "tiny"},
        }
        for name, update in sections.items():
            body[name] = {**body.get(name, {}), **update}
        return body

    def submit(self, tenant: str = "acme", **sections: dict[str, Any]) -> str:
        answer = self.invoke(
            "POST", "/generate-video", token=self.token(tenant), body=self.body(tenant, **sections)
        )
        assert answer.status == 202, answer.body
        return answer.json()["job_id"]

    def callback(
        self,
        job_id: str,
        event: BaseModel | str,
        *,
        secret: str | None = None,
        webhook_id: str | None = None,
        timestamp: int | None = None,
    ) -> Answer:
        """Send a callback signed as the worker signs it (with the job's secret by default)."""
        body = event if isinstance(event, str) else event.model_dump_json()
        secret = secret or self.services.jobs.get(job_id).callback_secret
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        sent = timestamp if timestamp is not None else int(time.time())
        signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(sent, UTC), body)
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(sent),
            "webhook-signature": signature,
        }
        event_ = callback_event(job_id, body, headers)
        return to_answer(
            callbacks_handler.handler(event_, LambdaContext(function_name="callbacks"))
        )

    def wait_for(self, condition: Any, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def proxy(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    cert, key = make_certificate(tmp_path_factory.mktemp("tls"))
    receiver = start_receiver(cert, key)
    token = json.loads((stack.state_dir / "secrets.json").read_text())["modal_proxy_token"]
    runner = LocalRunner(max_workers=0)  # no slots: jobs stay queued, the tests play the worker
    internal = Served(
        create_app(
            ServiceSettings(
                mode="local",
                local_proxy_key=token["token_id"],
                local_proxy_secret=token["token_secret"],
            ),
            runner,
        )
    )
    gateway = Served(LocalGateway())
    environment = lambda_environment(stack, gateway.url, internal.url)
    environment.update(
        {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "MODAL_BACKOFF_BASE_S": "0.01",
            "WEBHOOK_BACKOFF_BASE_S": "0.01",
        }
    )
    ssl_context = ssl.create_default_context(cafile=str(cert))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        services = Services(
            Settings.from_env(),
            # Tests reach their receiver on loopback; the production default refuses it.
            webhook_policy=AddressPolicy(allowed_networks=["127.0.0.1/32"], allowed_ports=None),
            webhook_ssl_context=ssl_context,
        )
        set_services(services)
        try:
            yield Proxy(
                stack=stack,
                services=services,
                receiver=receiver,
                runner=runner,
                internal_api_url=internal.url,
                gateway_url=gateway.url,
                ssl_context=ssl_context,
            )
        finally:
            set_services(None)
            gateway.stop()
            internal.stop()
            runner.close()
            receiver.server.shutdown()
