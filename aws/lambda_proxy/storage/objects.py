"""Checks before anything is signed: inputs exist (``HeadObject``), are small enough and are,
by their first bytes (a ranged ``GetObject``), audio, an image or a video, a picture within the
size rules when its header says its size, a video within the length limit when its header says
its length; the output key is free unless overwriting was asked for.

Key extensions and ``Content-Type`` are never a reason to refuse: they are the uploader's guess
(S3's default is ``binary/octet-stream``, browsers call a voice note ``video/webm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from aws.lambda_proxy.exceptions import UpstreamError
from aws.lambda_proxy.storage.exceptions import (
    InputMissingError,
    InputRefusedError,
    OutputExistsError,
)
from modal_service.sniff import SNIFF_BYTES, first_bytes_refusal

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from aws.lambda_proxy.jobs.models import S3Location

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class ObjectInfo(BaseModel):
    size: int
    content_type: str


def head_object(s3: BaseClient, location: S3Location) -> ObjectInfo | None:
    """Size and content type of an object, or None when it is missing (or not visible)."""
    try:
        answer = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND or code == "403":
            # 403 on HEAD means "missing or not ours": S3 hides which from a role without
            # ListBucket, and the caller gets the same answer either way.
            return None
        raise UpstreamError(f"S3 HeadObject failed ({code})", code="s3_unavailable") from None
    except BotoCoreError as exc:
        raise UpstreamError(
            f"S3 unreachable: {type(exc).__name__}", code="s3_unavailable"
        ) from None
    content_type = str(answer.get("ContentType", "")).split(";")[0].strip().lower()
    return ObjectInfo(size=int(answer.get("ContentLength", 0)), content_type=content_type)


def read_head(s3: BaseClient, location: S3Location, size: int) -> bytes:
    """The first :data:`SNIFF_BYTES` of an object of ``size`` bytes (a ranged GET)."""
    # S3 clamps a range past the end, but an exact range is valid everywhere.
    last = min(size, SNIFF_BYTES) - 1
    try:
        answer = s3.get_object(Bucket=location.bucket, Key=location.key, Range=f"bytes=0-{last}")
        with answer["Body"] as body:
            return body.read(SNIFF_BYTES)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND or code in ("403", "AccessDenied"):
            raise InputMissingError(f"input {location.url} does not exist") from None
        raise UpstreamError(f"S3 GetObject failed ({code})", code="s3_unavailable") from None
    except BotoCoreError as exc:
        raise UpstreamError(
            f"S3 unreachable: {type(exc).__name__}", code="s3_unavailable"
        ) from None


def check_input(
    s3: BaseClient,
    location: S3Location,
    *,
    kind: Literal["audio", "image", "video"],
    label: str,
    max_bytes: int,
    max_audio_s: float | None = None,
    max_video_s: float | None = None,
) -> ObjectInfo:
    """Check one input object. ``label`` names it in messages (``audio 1``); ``max_audio_s``
    is the deployment's longest track, which a FLAC header can be held to already;
    ``max_video_s`` the longest source video, which a header-first MP4 or a Matroska file with a
    ``Duration`` can be."""
    info = head_object(s3, location)
    if info is None:
        raise InputMissingError(f"{label} {location.url} does not exist")
    if info.size == 0:
        raise InputRefusedError(f"{label} {location.url} is empty", code=f"{kind}_invalid")
    # A video over the limit has a code of its own (video_too_large), from the shared rule below.
    if kind != "video" and info.size > max_bytes:
        raise InputRefusedError(
            f"{label} {location.url} is {info.size} bytes; allowed 1..{max_bytes}",
            code="input_size_refused",
        )
    head = read_head(s3, location, info.size)
    refusal = first_bytes_refusal(
        kind, head, info.size, max_audio_s, max_video_s=max_video_s, max_video_bytes=max_bytes
    )
    if refusal is not None:
        code, reason = refusal
        raise InputRefusedError(f"{label} {location.url} {reason}", code=code)
    return info


def check_output_free(s3: BaseClient, location: S3Location, *, overwrite: bool) -> None:
    """Refuse an existing output object unless ``overwrite`` was asked for."""
    if overwrite:
        return
    if head_object(s3, location) is not None:
        raise OutputExistsError(
            f"{location.url} already exists; choose another filename or set output.overwrite"
        )
