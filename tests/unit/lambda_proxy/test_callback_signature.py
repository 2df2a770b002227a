"""Standard Webhooks verification of callbacks: tolerance, rotation, malformed headers."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from aws.lambda_proxy.callbacks.exceptions import SignatureInvalidError
from aws.lambda_proxy.callbacks.verify import sign_headers, verify_signature
from aws.lambda_proxy.storage.presign import new_callback_secret

SECRET = new_callback_secret()
BODY = '{"type":"job.started","job_id":"job_00000000000000000000000000"}'


def headers(
    secret: str = SECRET, *, at: float | None = None, message_id: str = "msg_1"
) -> dict[str, str]:
    sent = datetime.fromtimestamp(int(time.time() if at is None else at), UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent, BODY),
    }


def test_a_valid_signature_returns_the_message_id() -> None:
    assert verify_signature(SECRET, BODY, headers(), tolerance_s=300) == "msg_1"


def test_any_listed_signature_may_match_during_rotation() -> None:
    signed = headers()
    old = headers(new_callback_secret())["webhook-signature"]
    signed["webhook-signature"] = f"v1a,ignored {old} {signed['webhook-signature']}"
    assert verify_signature(SECRET, BODY, signed, tolerance_s=300) == "msg_1"


@pytest.mark.parametrize(
    ("offset", "tolerance", "accepted"),
    [(-299, 300, True), (-301, 300, False), (301, 300, False), (-50, 30, False)],
)
def test_timestamp_tolerance_is_configurable(offset: int, tolerance: int, accepted: bool) -> None:
    signed = headers(at=time.time() + offset)
    if accepted:
        verify_signature(SECRET, BODY, signed, tolerance_s=tolerance)
    else:
        with pytest.raises(SignatureInvalidError) as error:
            verify_signature(SECRET, BODY, signed, tolerance_s=tolerance)
        assert error.value.code == "timestamp_out_of_tolerance"


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": ""},
        {"webhook-id": "msg with spaces"},
        {"webhook-timestamp": "12.5"},
        {"webhook-timestamp": "-1"},
        {"webhook-signature": ""},
        {"webhook-signature": "v1,not-base64!!"},
        {"webhook-signature": "v2,AAAA"},
        {"webhook-id": "msg_2"},  # signed for another id
    ],
)
def test_malformed_or_mismatched_headers_are_refused(change: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalidError):
        verify_signature(SECRET, BODY, {**headers(), **change}, tolerance_s=300)


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(SignatureInvalidError):
        verify_signature(SECRET, BODY.replace("started", "failed"), headers(), tolerance_s=300)


def test_answers_are_signed_verifiably() -> None:
    signed = sign_headers(SECRET, BODY, "msg_answer")
    Webhook(SECRET).verify(BODY, signed)
