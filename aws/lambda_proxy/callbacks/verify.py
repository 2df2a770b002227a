"""Standard Webhooks verification with a per-job secret and a configurable tolerance.

``standardwebhooks`` fixes its tolerance at five minutes, so the timestamp check is ours; the
signature itself is computed with the library's ``sign`` (HMAC-SHA256 over
``{id}.{timestamp}.{body}``) and compared in constant time against every ``v1,`` signature the
sender listed (several allow secret rotation).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from datetime import UTC, datetime

from standardwebhooks import Webhook

from aws.lambda_proxy.callbacks.exceptions import SignatureInvalidError

_WEBHOOK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
MAX_SIGNATURES = 8


def verify_signature(
    secret: str,
    body: str,
    headers: dict[str, str],
    *,
    tolerance_s: int,
    now: float | None = None,
) -> str:
    """Check the headers against ``body``; returns the ``webhook-id`` (the dedupe key)."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (message_id and timestamp and signatures):
        raise SignatureInvalidError(
            "webhook-id, webhook-timestamp and webhook-signature are required",
            code="signature_headers_missing",
        )
    if not _WEBHOOK_ID.fullmatch(message_id) or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureInvalidError("malformed webhook headers", code="signature_headers_missing")
    sent_at = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        raise SignatureInvalidError(
            "webhook-timestamp is outside the accepted window", code="timestamp_out_of_tolerance"
        )
    expected = Webhook(secret).sign(message_id, datetime.fromtimestamp(sent_at, UTC), body)
    expected_bytes = base64.b64decode(expected.split(",", 1)[1])
    matched = False
    for candidate in signatures.split(" ")[:MAX_SIGNATURES]:
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Keep comparing after a match: the time taken does not depend on which one matched.
        matched = hmac.compare_digest(expected_bytes, given) or matched
    if not matched:
        raise SignatureInvalidError("no valid signature for this job", code="signature_invalid")
    return message_id


def sign_headers(secret: str, body: str, message_id: str) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (signs our answers to URL-refresh requests)."""
    sent_at = datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent_at, body),
    }
