"""Strict s3:// parsing and the tenant location policy."""

from __future__ import annotations

import pytest

from aws.lambda_proxy.config import TenantConfig
from aws.lambda_proxy.storage.exceptions import LocationForbiddenError, S3UrlInvalidError
from aws.lambda_proxy.storage.policy import TenantLocations
from aws.lambda_proxy.storage.s3_url import location, parse_s3_url


def test_canonical_url_is_parsed() -> None:
    parsed = parse_s3_url("s3://my-bucket.data/tenants/acme/inputs/a-b_c.wav")
    assert (parsed.bucket, parsed.key) == ("my-bucket.data", "tenants/acme/inputs/a-b_c.wav")
    assert parsed.url == "s3://my-bucket.data/tenants/acme/inputs/a-b_c.wav"


@pytest.mark.parametrize(
    "url",
    [
        "S3://bucket/key.wav",
        "s3:/bucket/key.wav",
        "https://bucket.s3.amazonaws.com/key.wav",
        "s3://bucket",
        "s3://bucket/",
        "s3://Bucket/key.wav",
        "s3://b/key.wav",
        "s3://bucket..name/key.wav",
        "s3://192.168.1.1/key.wav",
        "s3://bucket/a/../b.wav",
        "s3://bucket/a/./b.wav",
        "s3://bucket//b.wav",
        "s3://bucket/a//b.wav",
        "s3://bucket/a /b.wav",
        "s3://bucket/ a.wav",
        "s3://bucket/a.wav ",
        "s3://bucket/a\tb.wav",
        "s3://bucket/a\\b.wav",
        "s3://bucket/a%2F..%2Fb.wav",
        "s3://bucket/key.wav\n",
        "s3://bucket/ключ.wav",
        "s3://bucket/a?versionId=1",
        "s3://bucket/a#frag",
        "s3://" + "b" * 64 + "/k",
        "s3://bucket/" + "k" * 1100,
    ],
)
def test_anything_not_canonical_is_refused(url: str) -> None:
    with pytest.raises(S3UrlInvalidError):
        parse_s3_url(url)


def test_a_space_inside_a_name_is_ordinary() -> None:
    parsed = parse_s3_url("s3://bucket/tenants/acme/inputs/Voice Memo 3.m4a")
    assert parsed.key == "tenants/acme/inputs/Voice Memo 3.m4a"


def test_output_location_is_validated_like_an_url() -> None:
    assert location("bucket", "out/x.mp4").key == "out/x.mp4"
    with pytest.raises(S3UrlInvalidError):
        location("bucket", "/out/x.mp4")


@pytest.fixture
def acme() -> TenantLocations:
    config = TenantConfig(
        read=["s3://data/tenants/acme/inputs/", "s3://shared-media/portraits/"],
        write=["s3://data/tenants/acme/outputs/"],
    )
    return TenantLocations("acme", config)


@pytest.mark.parametrize(
    "url",
    ["s3://data/tenants/acme/inputs/a.wav", "s3://shared-media/portraits/deep/x.png"],
)
def test_reads_inside_the_allow_list(acme: TenantLocations, url: str) -> None:
    acme.check_read(parse_s3_url(url))


@pytest.mark.parametrize(
    "url",
    [
        "s3://data/tenants/acme/inputs-other/a.wav",
        "s3://data/tenants/acme/outputs/a.wav",
        "s3://data/tenants/globex/inputs/a.wav",
        "s3://data2/tenants/acme/inputs/a.wav",
        "s3://shared-media/portraits",
    ],
)
def test_reads_outside_are_forbidden(acme: TenantLocations, url: str) -> None:
    with pytest.raises((LocationForbiddenError, S3UrlInvalidError)):
        acme.check_read(parse_s3_url(url))


def test_write_list_is_separate(acme: TenantLocations) -> None:
    acme.check_write(parse_s3_url("s3://data/tenants/acme/outputs/x.mp4"))
    with pytest.raises(LocationForbiddenError):
        acme.check_write(parse_s3_url("s3://data/tenants/acme/inputs/x.mp4"))


@pytest.mark.parametrize(
    "prefix",
    ["s3://data/tenants/acme", "s3://data/../x/", "https://data/x/", "s3://data/a b/"],
)
def test_configured_prefixes_must_be_canonical(prefix: str) -> None:
    with pytest.raises(ValueError, match="location"):
        TenantConfig(read=[prefix], write=["s3://data/out/"])
