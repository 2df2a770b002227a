"""Pre-signed URLs (SigV4, ``s3v4``) and the per-job callback secret.

A pre-signed URL dies with the credentials that signed it, whatever its ``X-Amz-Expires``
says: a Lambda role's session can end long before a one-hour PUT URL would. So every expiry is
capped by the signing credentials' remaining life (minus a margin); if that life is too short to
be useful, signing is refused and the caller retries once the runtime rotated the credentials.
The worker asks for fresh URLs through the signed ``job.url_refresh`` callback when one expires.

With S3 Transfer Acceleration on for a bucket, its URLs are signed by a second client built with
``use_accelerate_endpoint`` (``https://<bucket>.s3-accelerate.amazonaws.com/<key>``, always the
virtual-host form): the GPU side, far from the bucket's region, then moves the bytes through the
nearest edge. The Lambda's own S3 calls (HeadObject, ranged reads) stay on the regional endpoint.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aws.lambda_proxy.storage.exceptions import (
    AccelerationUnavailableError,
    SigningUnavailableError,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.credentials import Credentials

    from aws.lambda_proxy.jobs.models import S3Location

CREDENTIAL_MARGIN_S = 60
"""Seconds of credential life kept back so a URL never outlives its signature by a race."""


def new_callback_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def credentials_remaining_s(credentials: Credentials | None) -> float | None:
    """Seconds the signing credentials stay valid, or None when they do not expire/say so.

    botocore keeps the expiry of refreshable (role) credentials in ``_expiry_time``; there is no
    public accessor. Reading it first through ``get_frozen_credentials`` lets botocore refresh
    credentials that are about to expire, so the figure is about the credentials we sign with.
    """
    if credentials is None:
        return None
    credentials.get_frozen_credentials()
    expiry = getattr(credentials, "_expiry_time", None)
    if not isinstance(expiry, datetime):
        return None
    return (expiry - datetime.now(UTC)).total_seconds()


@dataclass(frozen=True)
class Acceleration:
    """Which buckets are signed through the accelerate endpoint, and the client that does it."""

    s3: BaseClient
    """An S3 client configured with ``Config(s3={"use_accelerate_endpoint": True})``."""
    buckets: frozenset[str]


class Presigner:
    """Signs short-lived GET and PUT URLs with the client's credentials."""

    def __init__(
        self,
        s3: BaseClient,
        *,
        credentials: Callable[[], Credentials | None],
        get_expires_s: int,
        put_expires_s: int,
        min_expires_s: int,
        acceleration: Acceleration | None = None,
    ) -> None:
        self._s3 = s3
        self._acceleration = acceleration
        self._credentials = credentials
        self._get_expires_s = get_expires_s
        self._put_expires_s = put_expires_s
        self._min_expires_s = min_expires_s

    def _expiry(self, wanted: int) -> int:
        remaining = credentials_remaining_s(self._credentials())
        if remaining is None:
            return wanted
        usable = int(remaining) - CREDENTIAL_MARGIN_S
        if usable < self._min_expires_s:
            raise SigningUnavailableError(
                "the signing credentials expire too soon to pre-sign useful URLs; retry shortly"
            )
        return min(wanted, usable)

    def _sign(self, operation: str, params: dict[str, str], expires_s: int, method: str) -> str:
        acceleration = self._acceleration
        if acceleration is None or params["Bucket"] not in acceleration.buckets:
            return self._s3.generate_presigned_url(
                operation, Params=params, ExpiresIn=expires_s, HttpMethod=method
            )
        from botocore.exceptions import EndpointResolutionError

        try:
            return acceleration.s3.generate_presigned_url(
                operation, Params=params, ExpiresIn=expires_s, HttpMethod=method
            )
        except EndpointResolutionError as error:
            # A custom S3 endpoint (AWS_ENDPOINT_URL_S3, an emulator) has no accelerate form.
            raise AccelerationUnavailableError(
                f"cannot sign through S3 Transfer Acceleration here: {error}"
            ) from None

    def get_url(self, location: S3Location) -> str:
        return self._sign(
            "get_object",
            {"Bucket": location.bucket, "Key": location.key},
            self._expiry(self._get_expires_s),
            "GET",
        )

    def put_url(self, location: S3Location, *, content_type: str) -> str:
        """A PUT URL whose signature covers ``Content-Type``: the uploader must send it exactly."""
        return self._sign(
            "put_object",
            {"Bucket": location.bucket, "Key": location.key, "ContentType": content_type},
            self._expiry(self._put_expires_s),
            "PUT",
        )
