"""Turn a batch source (an S3 prefix or a manifest) into the item list the Distributed Map reads.

A prefix becomes one item per audio file; what it renders from is the video beside it with the
same name (``talk.wav`` + ``talk.mp4``: dubbing), else the image with the same name
(``talk.wav`` + ``talk.png``), else the batch's one image, else none (the submit path then uses
the tenant's default or fails that item alone). A video beats an image of the same name: the
image may be its thumbnail, and the item list (``items.json``) shows what each item took. A
manifest is JSONL or CSV with the fields of :class:`ManifestRow`, a portrait or a video per row.
A manifest line that cannot be read at all refuses the whole batch, with its line number, before
anything is submitted, and so does a video item in a batch whose model cannot dub
(``video_needs_infinitetalk``); a well-formed item that names a missing or forbidden object fails
only itself later, in the submit path.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from aws.lambda_proxy.api.models import validation_code, video_model_refusal
from aws.lambda_proxy.exceptions import ProxyError
from aws.lambda_proxy.storage.s3_url import parse_s3_url
from aws.step_functions.exceptions import BatchError
from aws.step_functions.models import (
    BatchConfig,
    BatchRequest,
    Execution,
    ManifestRow,
    Plan,
    PlannedItem,
)

if TYPE_CHECKING:
    from aws.lambda_proxy.services import Services
    from aws.lambda_proxy.storage.policy import TenantLocations

# Which keys of a prefix are items and which their portraits or videos. Only a prefix listing
# looks at names (it must tell a voice from a photo without reading both); every item's content
# is then judged by its bytes like any other submission.
# Video containers (.mp4, .mov, .mkv) are no items: in a prefix they are the videos to dub.
# .webm is both a browser's voice note and a video: it is an item unless another audio file has
# its name, and then it is that item's video.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".mp3", ".flac", ".m4a", ".ogg", ".opus", ".aac", ".aif", ".aiff", ".aifc", ".caf"}
    | {".webm", ".mka", ".amr"}
)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")
"""In order of preference when one name has several."""
IMAGE_SUFFIXES = (
    *(".png", ".jpg", ".jpeg", ".webp", ".avif", ".heic", ".heif"),
    *(".bmp", ".tif", ".tiff", ".gif"),
)
MAX_ITEMS = 10_000
MAX_LISTED_OBJECTS = 4 * MAX_ITEMS
"""Audio and images together; a prefix holding more is refused, never planned in part."""
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def results_base(config: BatchConfig, execution: Execution) -> str:
    """Key prefix of one execution's records (the definition builds the same keys)."""
    return f"{config.results_prefix}{execution.name}/"


def plan_batch(
    services: Services, raw_request: dict[str, object], config: BatchConfig, execution: Execution
) -> Plan:
    """Validate the request, build the item list and store it as JSON beside the results."""
    try:
        request = BatchRequest.model_validate(raw_request)
    except ValidationError as exc:
        # The API's code for the same contradiction (speed_conflict), else the batch's own.
        raise BatchError(
            f"the batch input is invalid: {exc}",
            code=validation_code(exc.errors(), "batch_request_invalid"),
        ) from None
    locations = services.tenant(request.tenant_id)
    if locations is None:
        raise BatchError(
            f"tenant {request.tenant_id!r} is not configured", code="tenant_not_configured"
        )
    source = request.source
    if source.prefix is not None:
        items = list(
            _prefix_items(services, locations, source.prefix, source.reference_image_s3_url)
        )
    else:
        assert source.manifest is not None
        items = list(
            _manifest_items(services, locations, source.manifest, source.reference_image_s3_url)
        )
    if not items:
        raise BatchError("the batch source names no audio file", code="batch_empty")
    dubbed = next((item for item in items if item.video_s3_url is not None), None)
    refusal = video_model_refusal(request.options.model) if dubbed is not None else None
    if dubbed is not None and refusal is not None:
        raise BatchError(f"item {dubbed.id!r}: {refusal.message()}", code=refusal.type)
    if len(items) > MAX_ITEMS:
        raise BatchError(
            f"{len(items)} items; one batch may hold at most {MAX_ITEMS}", code="batch_too_large"
        )
    _refuse_duplicate_outputs(items)
    key = results_base(config, execution) + "items.json"
    body = json.dumps([item.model_dump(mode="json") for item in items]).encode()
    try:
        services.s3.put_object(
            Bucket=config.results_bucket, Key=key, Body=body, ContentType="application/json"
        )
    except (ClientError, BotoCoreError) as exc:
        raise BatchError(f"could not store the item list: {exc}", code="s3_unavailable") from None
    return Plan(
        items_bucket=config.results_bucket, items_key=key, item_count=len(items), request=request
    )


def _authorized(locations: TenantLocations, url: str, what: str) -> tuple[str, str]:
    try:
        location = parse_s3_url(url, what=what)
        locations.check_read(location)
    except ProxyError as exc:
        raise BatchError(exc.message, code=exc.code) from None
    return location.bucket, location.key


def _output_name(key: str) -> str:
    stem = _UNSAFE.sub("-", PurePosixPath(key).stem).strip("-._") or "item"
    return f"{stem[:190]}.mp4"


def _prefix_items(
    services: Services, locations: TenantLocations, prefix: str, shared_image: str | None
) -> Iterator[PlannedItem]:
    # The prefix itself must be readable; every object under it then is too.
    bucket, key_prefix = _authorized(locations, prefix + "x", "source.prefix")
    key_prefix = key_prefix[:-1]
    keys: set[str] = set()
    try:
        for page in services.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key_prefix
        ):
            keys.update(entry["Key"] for entry in page.get("Contents", []))
            if len(keys) > MAX_LISTED_OBJECTS:
                # Refuse rather than plan from a partial listing.
                raise BatchError(
                    f"more than {MAX_LISTED_OBJECTS} objects under {prefix}; use a manifest",
                    code="batch_too_large",
                )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        raise BatchError(f"cannot list {prefix}: {code}", code="batch_source_unreadable") from None
    yield from pair_prefix_items(bucket, key_prefix, keys, shared_image)


def pair_prefix_items(
    bucket: str, key_prefix: str, keys: set[str], shared_image: str | None
) -> Iterator[PlannedItem]:
    """The items of a prefix listing (``keys`` under ``key_prefix``), each audio file with the
    video or image of its name (see the module docstring)."""
    voiced = {
        str(PurePosixPath(key).with_suffix(""))
        for key in keys
        if PurePosixPath(key).suffix.lower() in AUDIO_SUFFIXES - {".webm"}
    }

    def beside(path: PurePosixPath, suffixes: tuple[str, ...]) -> str | None:
        return next(
            (
                f"s3://{bucket}/{candidate}"
                for suffix in suffixes
                for candidate in (
                    str(path.with_suffix(suffix)),
                    str(path.with_suffix(suffix.upper())),
                )
                if candidate in keys and candidate != str(path)
            ),
            None,
        )

    for key in sorted(keys):
        path = PurePosixPath(key)
        suffix = path.suffix.lower()
        if suffix not in AUDIO_SUFFIXES:
            continue
        if suffix == ".webm" and str(path.with_suffix("")) in voiced:
            continue  # the video of the audio file with its name
        video = beside(path, VIDEO_SUFFIXES)
        yield PlannedItem(
            id=key[len(key_prefix) :],
            audio_s3_url=f"s3://{bucket}/{key}",
            video_s3_url=video,
            reference_image_s3_url=None if video else beside(path, IMAGE_SUFFIXES) or shared_image,
            filename=_output_name(key),
        )


def _manifest_items(
    services: Services, locations: TenantLocations, manifest: str, shared_image: str | None
) -> Iterator[PlannedItem]:
    bucket, key = _authorized(locations, manifest, "source.manifest")
    try:
        response = services.s3.get_object(Bucket=bucket, Key=key)
        if response["ContentLength"] > MAX_MANIFEST_BYTES:
            raise BatchError(
                f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes", code="manifest_too_large"
            )
        text = response["Body"].read().decode("utf-8")
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        raise BatchError(
            f"cannot read {manifest}: {code}", code="batch_source_unreadable"
        ) from None
    except UnicodeDecodeError:
        raise BatchError("the manifest is not UTF-8 text", code="manifest_invalid") from None
    rows = _jsonl_rows(text) if key.lower().endswith(".jsonl") else _csv_rows(text)
    for line, row in rows:
        try:
            parsed = ManifestRow.model_validate(row)
        except ValidationError as exc:
            raise BatchError(
                f"manifest line {line}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}",
                code="manifest_invalid",
            ) from None
        yield PlannedItem(
            id=parsed.id or f"line-{line}",
            audio_s3_url=parsed.audio_s3_url,
            video_s3_url=parsed.video_s3_url,
            reference_image_s3_url=parsed.reference_image_s3_url
            or (shared_image if parsed.video_s3_url is None else None),
            prompt=parsed.prompt,
            filename=parsed.filename or _output_name(parsed.audio_s3_url),
        )


def _jsonl_rows(text: str) -> Iterator[tuple[int, object]]:
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            yield line, json.loads(content)
        except json.JSONDecodeError as exc:
            raise BatchError(
                f"manifest line {line} is not JSON: {exc.msg}", code="manifest_invalid"
            ) from None


def _csv_rows(text: str) -> Iterator[tuple[int, object]]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        # Empty cells mean "not given", so optional columns may be left blank.
        cleaned = {name: value for name, value in row.items() if value not in (None, "")}
        if None in cleaned:
            raise BatchError(
                f"manifest line {reader.line_num} has more cells than the header",
                code="manifest_invalid",
            )
        if cleaned:
            yield reader.line_num, cleaned


def _refuse_duplicate_outputs(items: list[PlannedItem]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        if item.filename in seen:
            raise BatchError(
                f"items {seen[item.filename]!r} and {item.id!r} would both write {item.filename}",
                code="batch_output_collision",
            )
        seen[item.filename] = item.id
