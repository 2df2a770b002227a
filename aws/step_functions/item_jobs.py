"""Which jobs an item created: one small object per attempt, ``jobs/<index>/<attempt>.json``.

The state machine knows items by index, the jobs table knows jobs by id; these pointers join
the two, so a timed-out item's jobs can be found and cancelled on Modal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws.step_functions.planning import results_base

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from aws.step_functions.models import BatchConfig, Execution


def _prefix(config: BatchConfig, execution: Execution, index: int) -> str:
    return f"{results_base(config, execution)}jobs/{index}/"


def record_job(
    s3: BaseClient,
    config: BatchConfig,
    execution: Execution,
    *,
    index: int,
    attempt: int,
    job_id: str,
) -> None:
    s3.put_object(
        Bucket=config.results_bucket,
        Key=f"{_prefix(config, execution, index)}{attempt}.json",
        Body=json.dumps({"job_id": job_id}).encode(),
        ContentType="application/json",
    )


def item_job_ids(
    s3: BaseClient, config: BatchConfig, execution: Execution, index: int
) -> list[str]:
    job_ids = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=config.results_bucket, Prefix=_prefix(config, execution, index)
    ):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=config.results_bucket, Key=entry["Key"])["Body"].read()
            job_ids.append(str(json.loads(body)["job_id"]))
    return job_ids
