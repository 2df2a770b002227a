"""Signed callbacks from the worker to the AWS side (Standard Webhooks, per-job secret).

Every event is a JSON body from :mod:`modal_service.contracts`, signed with the job's secret
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<HMAC-SHA256>``). Retries keep
the same ``webhook-id`` so the receiver drops duplicates, and are signed again with a fresh
timestamp so a slow retry is not refused as stale.

Delivery effort depends on the event: progress is best effort (a newer one follows), a final
event (``job.succeeded``/``job.failed``) is retried with exponential backoff for a long window,
because losing it would leave the job hanging on the AWS side.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import BaseModel, ValidationError
from standardwebhooks import Webhook

from modal_service.contracts import CallbackTarget, ErrorCode, UrlRefreshResponse
from modal_service.worker.errors import WorkerError

logger = logging.getLogger(__name__)

MAX_REFRESH_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try one event: total window, first delay, cap on the delay between tries."""

    window_s: float
    initial_delay_s: float = 1.0
    max_delay_s: float = 30.0
    attempts_cap: int = 1000


class CallbackRefused(Exception):
    """The receiver answered with a 4xx other than 408/429: retrying the same body won't help."""


class CallbackUndelivered(Exception):
    """The receiver could not be reached within the event's delivery window."""


class CallbackClient:
    """Sends one job's events to its callback URL."""

    def __init__(
        self,
        target: CallbackTarget,
        client: httpx.Client,
        *,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = target.url
        self._webhook = Webhook(target.secret)
        self._client = client
        self._timeout_s = timeout_s
        self._sleep = sleep

    def send(self, event: BaseModel, policy: DeliveryPolicy) -> httpx.Response:
        """Deliver ``event`` (retrying per ``policy``) and return the receiver's 2xx answer.

        Raises :class:`CallbackRefused` on a definitive 4xx and :class:`CallbackUndelivered` when
        the window closes first.
        """
        body = event.model_dump_json()
        message_id = f"msg_{uuid.uuid4().hex}"
        event_type = getattr(event, "type", "event")
        started = time.monotonic()
        delay = policy.initial_delay_s
        last = "no attempt made"
        for attempt in range(1, policy.attempts_cap + 1):
            try:
                response = self._post(message_id, body)
            except httpx.HTTPError as error:
                last = type(error).__name__
            else:
                if response.is_success:
                    return response
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    raise CallbackRefused(f"{event_type}: receiver answered {response.status_code}")
                last = f"HTTP {response.status_code}"
            elapsed = time.monotonic() - started
            if elapsed + delay > policy.window_s:
                break
            logger.warning("callback %s attempt %d failed (%s)", event_type, attempt, last)
            self._sleep(delay)
            delay = min(max(delay * 2, 0.05), policy.max_delay_s)
        raise CallbackUndelivered(f"{event_type}: not delivered ({last})")

    def _post(self, message_id: str, body: str) -> httpx.Response:
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook.sign(message_id, now, body),
        }
        return self._client.post(
            self._url, content=body.encode("utf-8"), headers=headers, timeout=self._timeout_s
        )

    def request_url_refresh(self, event: BaseModel, policy: DeliveryPolicy) -> UrlRefreshResponse:
        """Send the signed ``job.url_refresh`` event and parse the fresh URLs it answers with."""
        try:
            response = self.send(event, policy)
        except (CallbackRefused, CallbackUndelivered) as error:
            raise WorkerError(
                ErrorCode.URL_EXPIRED,
                f"a pre-signed URL expired and no fresh one was obtained ({error})",
                retryable=True,
            ) from error
        if len(response.content) > MAX_REFRESH_RESPONSE_BYTES:
            raise WorkerError(
                ErrorCode.URL_EXPIRED, "the URL refresh answer is too large", retryable=True
            )
        try:
            return UrlRefreshResponse.model_validate_json(response.content)
        except ValidationError as error:
            raise WorkerError(
                ErrorCode.URL_EXPIRED,
                f"the URL refresh answer is not a valid UrlRefreshResponse "
                f"({error.error_count()} errors)",
                retryable=True,
            ) from error
