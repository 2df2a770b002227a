"""S3 Transfer Acceleration: the URLs the GPU side gets for an accelerated bucket.

On AWS the proxy signs virtual-host URLs: ``<bucket>.s3.amazonaws.com`` by default and
``<bucket>.s3-accelerate.amazonaws.com`` for a bucket in ``S3_ACCELERATED_BUCKETS``. The local
stack signs path-style URLs for its emulator instead (a custom endpoint on 127.0.0.1), and the
emulator routes path-style only, so it cannot serve either host name. What it can do is check
the signature: its SigV4 middleware runs before routing, over the request's ``Host`` header and
path. So each URL is sent to the emulator with the host it was signed for. A valid signature
passes and reaches routing, which reads the key's first segment as a bucket and answers
``NoSuchBucket``; a signature that does not hold (another host, another method, another
Content-Type) is ``SignatureDoesNotMatch``, as S3 answers it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import boto3
import httpx
import pytest

from aws.lambda_proxy.config import Settings
from aws.lambda_proxy.exceptions import ConfigurationError
from aws.lambda_proxy.jobs.models import S3Location
from aws.lambda_proxy.services import Services
from aws.lambda_proxy.storage.exceptions import AccelerationUnavailableError
from scripts.local_stack import StackInfo
from tests.unit.lambda_proxy.test_config_and_models import REQUIRED

KEY = "tenants/acme/outputs/accelerated/video.mp4"


def _services(stack: StackInfo, accelerated: str) -> Services:
    """The proxy's services with the emulator's key pair and region, signing for AWS's own
    endpoints (no custom endpoint), as a Lambda does."""
    settings = Settings.from_env({**REQUIRED, "S3_ACCELERATED_BUCKETS": accelerated})
    session = boto3.session.Session(
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name=stack.region,
    )
    return Services(settings, session=session)


@pytest.fixture
def aws_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """No custom endpoint in this process: clients resolve AWS's own host names."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def _send(
    stack: StackInfo, method: str, url: str, *, host: str | None = None, **headers: str
) -> httpx.Response:
    """``url``'s path and query, sent to the emulator with ``Host: host`` (default: the URL's)."""
    parts = urlsplit(url)
    return httpx.request(
        method,
        f"{stack.s3_endpoint}{parts.path}?{parts.query}",
        headers={"Host": host or parts.netloc, **headers},
        content=b"video" if method == "PUT" else None,
    )


def _s3_code(response: httpx.Response) -> str:
    found = re.search(r"<Code>([^<]+)</Code>", response.text)
    return found.group(1) if found else ""


@pytest.mark.usefixtures("aws_endpoints")
def test_an_accelerated_bucket_is_signed_for_the_accelerate_host(stack: StackInfo) -> None:
    bucket = stack.buckets["data"]
    signer = _services(stack, bucket).presigner
    url = signer.get_url(S3Location(bucket=bucket, key=KEY))
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        f"{bucket}.s3-accelerate.amazonaws.com",
        f"/{KEY}",
    )
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in parts.query
    assert _s3_code(_send(stack, "GET", url)) == "NoSuchBucket"
    # The same signature does not hold for another host: the check above is a real one.
    other = f"other-{bucket}.s3-accelerate.amazonaws.com"
    refused = _send(stack, "GET", url, host=other)
    assert (refused.status_code, _s3_code(refused)) == (403, "SignatureDoesNotMatch")


@pytest.mark.usefixtures("aws_endpoints")
def test_an_accelerated_put_url_still_binds_its_content_type(stack: StackInfo) -> None:
    bucket = stack.buckets["data"]
    signer = _services(stack, bucket).presigner
    url = signer.put_url(S3Location(bucket=bucket, key=KEY), content_type="video/mp4")
    assert urlsplit(url).netloc == f"{bucket}.s3-accelerate.amazonaws.com"
    passed = _send(stack, "PUT", url, **{"Content-Type": "video/mp4"})
    assert _s3_code(passed) == "NoSuchBucket"
    for refused in (
        _send(stack, "PUT", url, **{"Content-Type": "text/html"}),
        _send(stack, "GET", url),
    ):
        assert (refused.status_code, _s3_code(refused)) == (403, "SignatureDoesNotMatch")


@pytest.mark.usefixtures("aws_endpoints")
def test_other_buckets_keep_the_regional_virtual_host(stack: StackInfo) -> None:
    bucket = stack.buckets["data"]
    signer = _services(stack, "another-accelerated-bucket").presigner
    url = signer.get_url(S3Location(bucket=bucket, key=KEY))
    assert urlsplit(url).netloc == f"{bucket}.s3.amazonaws.com"  # us-east-1's global name
    assert _s3_code(_send(stack, "GET", url)) == "NoSuchBucket"


def test_acceleration_behind_a_custom_endpoint_is_a_coded_configuration_error(
    stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local stack's endpoint (as AWS_ENDPOINT_URL_S3 sets it) has no accelerate form.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", stack.s3_endpoint)
    bucket = stack.buckets["data"]
    signer = _services(stack, bucket).presigner
    with pytest.raises(AccelerationUnavailableError) as refused:
        signer.get_url(S3Location(bucket=bucket, key=KEY))
    assert refused.value.code == "s3_acceleration_unavailable"
    assert refused.value.status == 500
    assert "custom endpoint" in refused.value.message


def test_accelerated_buckets_are_a_comma_separated_list() -> None:
    settings = Settings.from_env({**REQUIRED, "S3_ACCELERATED_BUCKETS": "media-a, media-b"})
    assert settings.s3_accelerated_buckets == ["media-a", "media-b"]
    assert Settings.from_env(REQUIRED).s3_accelerated_buckets == []


@pytest.mark.parametrize("bucket", ["media.example.com", "Media", "ab", "-media"])
def test_a_bucket_acceleration_cannot_serve_is_refused_at_start(bucket: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot use S3 Transfer Acceleration"):
        Settings.from_env({**REQUIRED, "S3_ACCELERATED_BUCKETS": bucket})
