"""Strict ``s3://bucket/key`` parsing.

Only the canonical form is accepted: lower-case scheme, a DNS-compatible bucket name, a key of
printable characters without ``.``/``..`` segments, empty segments or backslashes. Anything else
is refused rather than normalised, so what is authorized is exactly what is signed. Spaces are
allowed inside a name (``Voice Memo 3.m4a`` is what phones and desktops upload) but never at
either end of a segment, where they would make two keys look alike.
"""

from __future__ import annotations

import re

from aws.lambda_proxy.jobs.models import S3Location
from aws.lambda_proxy.storage.exceptions import S3UrlInvalidError

MAX_S3_URL_LENGTH = 1100  # "s3://" + 63-char bucket + "/" + 1024-byte key
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")
# S3's "safe" characters plus a few that need no encoding in keys, and the plain space; no other
# whitespace, no control characters.
_KEY = re.compile(r"[A-Za-z0-9!_.*'()/=+,@ -]{1,1024}")


def parse_s3_url(url: str, *, what: str = "URL") -> S3Location:
    """Parse ``s3://bucket/key``; raise :class:`S3UrlInvalidError` for anything else."""
    if not isinstance(url, str) or len(url) > MAX_S3_URL_LENGTH:
        raise S3UrlInvalidError(f"{what} must be an s3:// URL of at most {MAX_S3_URL_LENGTH} chars")
    if not url.startswith("s3://"):
        raise S3UrlInvalidError(f"{what} must start with s3:// (got another scheme)")
    bucket, sep, key = url[len("s3://") :].partition("/")
    return location(bucket, key if sep else "", what=what)


def location(bucket: str, key: str, *, what: str = "location") -> S3Location:
    """Validate a bucket + key pair (used for ``output.s3_bucket`` + prefix + filename too)."""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_LIKE.fullmatch(bucket):
        raise S3UrlInvalidError(f"{what}: {bucket!r} is not a valid S3 bucket name")
    if not _KEY.fullmatch(key):
        raise S3UrlInvalidError(f"{what}: the object key is empty or has refused characters")
    segments = key.split("/")
    if key.startswith("/") or any(segment in ("", ".", "..") for segment in segments):
        raise S3UrlInvalidError(f"{what}: the key has empty, '.' or '..' segments")
    if any(segment != segment.strip(" ") for segment in segments):
        raise S3UrlInvalidError(f"{what}: a key segment starts or ends with a space")
    return S3Location(bucket=bucket, key=key)
