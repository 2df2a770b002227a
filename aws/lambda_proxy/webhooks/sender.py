"""Delivers caller webhooks: Standard Webhooks signed, to a checked and pinned address.

One POST per attempt, no redirects followed (a 3xx is a failed delivery), a short timeout,
retries with full-jitter backoff on network errors, 429 and 5xx. The TCP connection goes to an
address the :class:`AddressPolicy` approved in the same resolution, while TLS still verifies the
certificate against the URL's host name (SNI), so DNS rebinding cannot redirect the request.
"""

from __future__ import annotations

import json
import random
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpcore
from pydantic import BaseModel
from standardwebhooks import Webhook

from aws.lambda_proxy.jobs.models import WebhookDelivery
from aws.lambda_proxy.webhooks.address_policy import AddressPolicy
from aws.lambda_proxy.webhooks.exceptions import WebhookUrlRefusedError

USER_AGENT = "multitalk-video-api-webhooks/1"


class _PinnedBackend(httpcore.SyncBackend):
    """Resolves through the policy and connects only to approved addresses."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in self._policy.resolve(host, port):
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() never returns an empty list
        raise failure


class WebhookMessage(BaseModel):
    """The body of a caller webhook."""

    type: str
    job_id: str
    timestamp: str
    data: dict[str, Any]


class WebhookSender:
    """Signs and delivers one message with bounded retries; never raises for delivery errors."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout_s: float,
        max_attempts: int,
        backoff_base_s: float,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._policy = policy
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._sleep = sleep
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            network_backend=_PinnedBackend(policy),
            max_connections=4,
            retries=0,
        )

    def deliver(self, url: str, secret: str, message: WebhookMessage) -> WebhookDelivery:
        try:
            self._policy.check_url(url)
        except WebhookUrlRefusedError as exc:
            return WebhookDelivery(state="refused", attempts=0, detail=exc.message)
        body = json.dumps(message.model_dump(mode="json"), separators=(",", ":"))
        # The id is stable per job and event, so a receiver can drop our own retries.
        message_id = f"msg_{message.job_id}_{message.type.replace('.', '_')}"
        last_status: int | None = None
        detail = ""
        for attempt in range(1, self._max_attempts + 1):
            sent_at = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": message_id,
                "webhook-timestamp": str(int(sent_at.timestamp())),
                "webhook-signature": Webhook(secret).sign(message_id, sent_at, body),
            }
            try:
                answer = self._pool.request(
                    "POST",
                    url,
                    headers=headers,
                    content=body.encode(),
                    extensions={"timeout": self._timeouts()},
                )
            except WebhookUrlRefusedError as exc:
                return WebhookDelivery(state="refused", attempts=attempt, detail=exc.message)
            except httpcore.TimeoutException:
                detail = "timeout"
            except httpcore.NetworkError as exc:
                detail = f"network error ({type(exc).__name__})"
            except httpcore.ProtocolError as exc:
                detail = f"protocol error ({type(exc).__name__})"
            else:
                last_status = answer.status
                if 200 <= answer.status < 300:
                    return WebhookDelivery(
                        state="delivered", attempts=attempt, last_status=answer.status
                    )
                if 300 <= answer.status < 400:
                    return WebhookDelivery(
                        state="failed",
                        attempts=attempt,
                        last_status=answer.status,
                        detail="redirects are not followed",
                    )
                detail = f"HTTP {answer.status}"
                if answer.status < 500 and answer.status != 429:
                    return WebhookDelivery(
                        state="failed", attempts=attempt, last_status=answer.status, detail=detail
                    )  # 4xx: the receiver refuses this message; sending it again will not help
            if attempt < self._max_attempts:
                self._sleep(random.uniform(0, self._backoff_base_s * 2 ** (attempt - 1)))  # noqa: S311
        return WebhookDelivery(
            state="failed",
            attempts=self._max_attempts,
            last_status=last_status,
            detail=detail,
            retryable=True,
        )

    def _timeouts(self) -> dict[str, float]:
        return {
            "connect": self._timeout_s,
            "read": self._timeout_s,
            "write": self._timeout_s,
            "pool": self._timeout_s,
        }
