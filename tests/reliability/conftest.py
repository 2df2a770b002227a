"""The reliability suite runs against the whole product on the local stack, over real HTTP.

:class:`Footprint` is its invariant for refused input: what a refusal may never leave behind,
taken before and after (every object in the data bucket, every item of the jobs and idempotency
tables).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from scripts.local_stack import StackInfo

pytestmark = pytest.mark.stack


@dataclass(frozen=True)
class Footprint:
    objects: frozenset[str]
    jobs: frozenset[str]
    idempotency: frozenset[str]

    @classmethod
    def take(cls, stack: StackInfo) -> Footprint:
        s3, bucket = stack.s3_client(), stack.buckets["data"]
        keys = {
            entry["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for entry in page.get("Contents", [])
        }
        return cls(
            objects=frozenset(keys),
            jobs=_keys(stack, stack.tables["jobs"], "job_id"),
            # Callback deliveries of jobs still rendering from earlier tests (a burst leaves
            # dozens) land at any moment; what a refusal must not leave is its own records.
            idempotency=frozenset(
                key
                for key in _keys(stack, stack.tables["idempotency"], "id")
                if "apply_delivery" not in key
            ),
        )

    def added_since(self, earlier: Footprint) -> dict[str, list[str]]:
        """What is here now that was not: empty when nothing was written."""
        added = {
            "objects": sorted(self.objects - earlier.objects),
            "jobs": sorted(self.jobs - earlier.jobs),
            "idempotency": sorted(self.idempotency - earlier.idempotency),
        }
        return {name: keys for name, keys in added.items() if keys}


def _keys(stack: StackInfo, table: str, key: str) -> frozenset[str]:
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return frozenset(item[key]["S"] for page in pages for item in page["Items"])


def problem_code(response: Any) -> str | None:
    """The stable ``code`` of a problem+json answer (None if the answer is not one)."""
    try:
        return json.loads(response.text).get("code")
    except (ValueError, AttributeError):
        return None
