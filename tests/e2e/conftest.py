"""The whole product on the local stack, started once per test run: gateway -> Lambdas -> internal
API -> worker processes (``tiny`` preset) -> strict S3, with signed callbacks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts import samples
from scripts.local_stack import StackInfo, product

pytestmark = pytest.mark.stack


@pytest.fixture(scope="session")
def running_product(stack: StackInfo) -> product.ProductInfo:
    return product.up(stack)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample inputs made once: short, long (more than one clip) and a second voice."""
    directory = tmp_path_factory.mktemp("media")
    samples.write_speech_wav(directory / "short.wav", duration_s=2.0, seed=1)
    samples.write_speech_wav(directory / "second.wav", duration_s=2.0, seed=2)
    samples.write_speech_wav(directory / "long.wav", duration_s=7.0, seed=3)
    samples.draw_portrait(directory / "portrait.png", size=(320, 320))
    samples.draw_portrait(directory / "two.png", size=(480, 320), people=2)
    return directory


@pytest.fixture
def upload(stack: StackInfo, media_dir: Path):
    """Upload a sample under the tenant's input prefix; returns its s3:// URL."""

    def _upload(name: str, tenant: str = "acme") -> str:
        bucket = stack.buckets["data"]
        key = f"tenants/{tenant}/inputs/e2e/{uuid.uuid4().hex[:8]}-{name}"
        content_type = "audio/wav" if name.endswith(".wav") else "image/png"
        stack.s3_client().upload_file(
            str(media_dir / name), bucket, key, ExtraArgs={"ContentType": content_type}
        )
        return f"s3://{bucket}/{key}"

    return _upload


@pytest.fixture
def api(stack: StackInfo, running_product: product.ProductInfo) -> Iterator[httpx.Client]:
    """An HTTP client for the public API with a read+write token for tenant ``acme``."""
    token = stack.mint_token("acme", ["videos:read", "videos:write"])
    with httpx.Client(
        base_url=running_product.api_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        yield client
