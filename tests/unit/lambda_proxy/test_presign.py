"""Pre-signed URL expiries respect the signing credentials' remaining life."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials, RefreshableCredentials

from aws.lambda_proxy.jobs.models import S3Location
from aws.lambda_proxy.storage.exceptions import SigningUnavailableError
from aws.lambda_proxy.storage.presign import (
    CREDENTIAL_MARGIN_S,
    Presigner,
    credentials_remaining_s,
    new_callback_secret,
)
from modal_service.contracts import CALLBACK_SECRET_PATTERN, CallbackTarget

LOCATION = S3Location(bucket="data", key="tenants/acme/outputs/x.mp4")


def role_credentials(lifetime: timedelta) -> RefreshableCredentials:
    """Role-style credentials that expire after ``lifetime`` (and refresh to the same)."""
    expiry = (datetime.now(UTC) + lifetime).isoformat()

    def refresh() -> dict[str, str]:
        return {
            "access_key": "ASIAEXAMPLEEXAMPLE00",
            "secret_key": "secret",
            "token": "session-token",
            "expiry_time": expiry,
        }

    return RefreshableCredentials.create_from_metadata(
        refresh(), refresh_using=refresh, method="test"
    )


def presigner(credentials: Credentials | None) -> Presigner:
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="ASIAEXAMPLEEXAMPLE00",
        aws_secret_access_key="secret",
        aws_session_token="session-token",
        config=Config(signature_version="s3v4"),
    )
    return Presigner(
        s3,
        credentials=lambda: credentials,
        get_expires_s=900,
        put_expires_s=3600,
        min_expires_s=120,
    )


def expires(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])


def test_static_credentials_get_the_configured_expiries() -> None:
    signer = presigner(None)
    assert expires(signer.get_url(LOCATION)) == 900
    put = signer.put_url(LOCATION, content_type="video/mp4")
    assert expires(put) == 3600
    query = parse_qs(urlsplit(put).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "content-type" in query["X-Amz-SignedHeaders"][0]


def test_expiry_is_capped_by_the_credentials_life() -> None:
    signer = presigner(role_credentials(timedelta(minutes=20)))
    assert expires(signer.get_url(LOCATION)) == 900
    put = expires(signer.put_url(LOCATION, content_type="video/mp4"))
    assert 20 * 60 - CREDENTIAL_MARGIN_S - 5 <= put <= 20 * 60 - CREDENTIAL_MARGIN_S


def test_credentials_about_to_expire_refuse_to_sign() -> None:
    # botocore refreshes credentials with under 15 minutes left; ours refresh to the same
    # short life, so the signer must refuse rather than hand out URLs that die at once.
    signer = presigner(role_credentials(timedelta(seconds=150)))
    with pytest.raises(SigningUnavailableError):
        signer.put_url(LOCATION, content_type="video/mp4")


def test_remaining_life_is_unknown_for_static_keys() -> None:
    assert credentials_remaining_s(Credentials("AKIAEXAMPLE", "secret")) is None


def test_callback_secrets_follow_the_contract_and_never_repeat() -> None:
    secrets = {new_callback_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert CallbackTarget(url="https://api.example.com/callbacks/x", secret=secret)
        assert re.fullmatch(CALLBACK_SECRET_PATTERN, secret)
