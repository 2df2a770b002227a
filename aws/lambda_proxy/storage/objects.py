"""``HeadObject`` checks before anything is signed: inputs exist, are small enough and have an
accepted content type; the output key is free unless overwriting was asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from aws.lambda_proxy.exceptions import UpstreamError
from aws.lambda_proxy.storage.exceptions import (
    InputMissingError,
    InputRefusedError,
    OutputExistsError,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from aws.lambda_proxy.jobs.models import S3Location

AUDIO_TYPES = frozenset(
    {
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/vnd.wave",
        "audio/mpeg",
        "audio/mp3",
        "audio/mp4",
        "audio/x-m4a",
        "audio/aac",
        "audio/flac",
        "audio/x-flac",
        "audio/ogg",
    }
)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
# Many uploaders leave S3's default type; accept it only when the key's extension agrees.
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
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


def check_input(
    s3: BaseClient,
    location: S3Location,
    *,
    kind: str,
    max_bytes: int,
) -> ObjectInfo:
    """Check one input object; ``kind`` is ``audio`` or ``image``."""
    info = head_object(s3, location)
    if info is None:
        raise InputMissingError(f"{kind} input {location.url} does not exist")
    if info.size == 0 or info.size > max_bytes:
        raise InputRefusedError(
            f"{kind} input {location.url} is {info.size} bytes; allowed 1..{max_bytes}",
            code="input_size_refused",
        )
    types, extensions = (
        (AUDIO_TYPES, AUDIO_EXTENSIONS) if kind == "audio" else (IMAGE_TYPES, IMAGE_EXTENSIONS)
    )
    generic_ok = info.content_type in GENERIC_TYPES and location.key.lower().endswith(extensions)
    if info.content_type not in types and not generic_ok:
        raise InputRefusedError(
            f"{kind} input {location.url} has content type {info.content_type!r}; "
            f"accepted: {', '.join(sorted(types))}",
            code="input_type_refused",
        )
    return info


def check_output_free(s3: BaseClient, location: S3Location, *, overwrite: bool) -> None:
    """Refuse an existing output object unless ``overwrite`` was asked for."""
    if overwrite:
        return
    if head_object(s3, location) is not None:
        raise OutputExistsError(
            f"{location.url} already exists; choose another filename or set output.overwrite"
        )
