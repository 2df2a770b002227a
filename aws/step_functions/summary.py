"""Count a batch's item records, list its failures and decide whether the batch succeeded.

Each item's record is written by the state machine (``succeeded/<index>.json`` or
``failed/<index>.json`` under the execution's results prefix), so the counts are exact for any
batch size and include failures no handler saw (heartbeat and task timeouts). The decision
repeats Step Functions' own tolerance rule (fail when the failed share exceeds
``ToleratedFailurePercentage``), so the outcome and its reason are the same whether the Map
stopped itself (AWS) or ran to the end (an engine that does not enforce the tolerance).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from aws.step_functions.exceptions import BatchError
from aws.step_functions.models import (
    FailedItem,
    ResultLocations,
    SummarizeMessage,
    Summary,
)
from aws.step_functions.planning import results_base

if TYPE_CHECKING:
    from botocore.client import BaseClient

MAX_FAILED_IN_OUTPUT = 50
"""Failed items listed in the execution output (256 KiB limit); summary.json lists more."""
MAX_FAILED_READ = 1000


def summarize_batch(s3: BaseClient, message: SummarizeMessage) -> tuple[Summary, Summary]:
    """``(short, full)`` summaries; ``full`` is stored as summary.json, ``short`` is returned."""
    config, execution, plan = message.config, message.execution, message.plan
    bucket = config.results_bucket
    base = results_base(config, execution)
    try:
        succeeded = _keys(s3, bucket, base + "succeeded/")
        failed_keys = _keys(s3, bucket, base + "failed/")
        failed_items = [_failed_item(s3, bucket, key) for key in failed_keys[:MAX_FAILED_READ]]
    except (ClientError, BotoCoreError) as exc:
        raise BatchError(f"cannot read the item records: {exc}", code="s3_unavailable") from None
    failed_items.sort(key=lambda item: item.index)

    total, failed = plan.item_count, len(failed_keys)
    not_run = max(total - len(succeeded) - failed, 0)
    percentage = round(100.0 * failed / total, 2)
    tolerated = config.tolerated_failure_percentage
    counts = f"{failed} of {total} items failed ({percentage:g}%)"
    status, error = "failed", None
    if message.map_error is not None:
        # A Fail state may not raise States.* names, so the Map's own error goes into the reason.
        map_error = str(message.map_error.get("Error") or "unknown")
        error = (
            "batch_tolerance_exceeded"
            if map_error == "States.ExceedToleratedFailureThreshold"
            else "batch_map_failed"
        )
        cause = message.map_error.get("Cause") or ""
        reason = f"the Map stopped with {map_error} {cause}".strip() + f"; {counts}"
    elif percentage > tolerated:
        error = "batch_tolerance_exceeded"
        reason = f"{counts}, more than the tolerated {tolerated:g}%"
    elif not_run:
        error = "batch_incomplete"
        reason = f"{not_run} of {total} items left no record; {counts}"
    else:
        status = "succeeded"
        reason = f"{len(succeeded)} of {total} items succeeded; {counts}, tolerated {tolerated:g}%"

    manifest = (message.map or {}).get("ResultWriterDetails") or {}
    results = ResultLocations(
        summary=f"s3://{bucket}/{base}summary.json",
        items=f"s3://{plan.items_bucket}/{plan.items_key}",
        succeeded=f"s3://{bucket}/{base}succeeded/",
        failed=f"s3://{bucket}/{base}failed/",
        map_run_manifest=(
            f"s3://{manifest['Bucket']}/{manifest['Key']}" if manifest.get("Key") else None
        ),
    )
    full = Summary(
        status=status,
        error=error,
        reason=reason,
        execution_arn=execution.arn,
        total=total,
        succeeded=len(succeeded),
        failed=failed,
        not_run=not_run,
        failure_percentage=percentage,
        tolerated_failure_percentage=tolerated,
        failed_items=failed_items,
        failed_items_truncated=failed > len(failed_items),
        results=results,
    )
    short = full.model_copy(
        update={
            "failed_items": failed_items[:MAX_FAILED_IN_OUTPUT],
            "failed_items_truncated": failed > MAX_FAILED_IN_OUTPUT,
        }
    )
    try:
        s3.put_object(
            Bucket=bucket,
            Key=base + "summary.json",
            Body=full.model_dump_json(indent=2).encode(),
            ContentType="application/json",
        )
    except (ClientError, BotoCoreError) as exc:
        raise BatchError(f"cannot store summary.json: {exc}", code="s3_unavailable") from None
    return short, full


def _keys(s3: BaseClient, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(entry["Key"] for entry in page.get("Contents", []))
    return keys


def _failed_item(s3: BaseClient, bucket: str, key: str) -> FailedItem:
    record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    failure = record.get("failure") or {}
    error = str(failure.get("Error") or "unknown")
    message, job_id = "", None
    cause = failure.get("Cause")
    if isinstance(cause, str) and cause:
        # Job failures carry {"job_id", "code", "message", ...}; engine errors a plain string.
        try:
            details = json.loads(cause)
        except json.JSONDecodeError:
            details = None
        if isinstance(details, dict):
            message = str(details.get("message") or "")
            job_id = details.get("job_id")
        else:
            message = cause
    item = record.get("item") or {}
    return FailedItem(
        index=int(record.get("index", -1)),
        id=str(item.get("id", "")),
        audio_s3_url=str(item.get("audio_s3_url", "")),
        error=error,
        message=message[:1000],
        job_id=job_id if isinstance(job_id, str) else None,
    )
