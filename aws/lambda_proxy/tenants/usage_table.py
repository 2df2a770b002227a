"""The usage table: per-tenant counters, changed only by DynamoDB transactions.

Items (hash key ``pk``, TTL ``expires_at`` on the windowed ones):

* ``tenant#<id>``: ``active`` (jobs admitted and not yet released) and ``waiting_until`` (ISO
  UTC: a batch item of the tenant waits for a slot until about then);
* ``tenant#<id>#minute#<YYYY-MM-DDTHH:MM>``: ``submissions`` admitted in that UTC minute;
* ``tenant#<id>#day#<YYYY-MM-DD>``: ``gpu_seconds`` and ``jobs`` of jobs finished that UTC day;
* ``job#<job_id>``: the job's lease, present from admission to release. Admission creates it in
  the same transaction that counts the job; release deletes it in the same transaction that
  uncounts it, on the condition that it still exists: a job is uncounted exactly once, however
  many callbacks, reconciler runs or retries try;
* ``deployment``: ``active`` over all tenants (what the GPU slots are compared with).

No count is ever read and then written: every limit is a condition of the write itself.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from aws.lambda_proxy.jobs.models import iso

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from aws.lambda_proxy.tenants.limits import TenantLimits

Limit = Literal["max_active", "per_minute", "gpu_seconds_per_day", "gpu_slots"]
DEPLOYMENT_KEY = "deployment"
_MINUTE_TTL = timedelta(days=1)
_DAY_TTL = timedelta(days=35)
_LEASE_TTL = timedelta(days=90)
"""Only a safety net: a lease normally goes at release."""
_CONFLICT_ATTEMPTS = 4


class AdmissionRefused(Exception):
    """The transaction was cancelled by the condition guarding ``limit``."""

    def __init__(self, limit: Limit) -> None:
        super().__init__(limit)
        self.limit = limit


class UsageSnapshot(BaseModel):
    """The tenants' counters as read at one moment (for the fair share: never for a limit)."""

    model_config = ConfigDict(frozen=True)

    active: dict[str, int]
    waiting_until: dict[str, str]
    deployment_active: int


class TenantCounters(BaseModel):
    """One tenant's counters now (``GET /usage``)."""

    model_config = ConfigDict(frozen=True)

    active: int
    submissions_this_minute: int
    gpu_seconds_today: float
    jobs_finished_today: int


def tenant_key(tenant_id: str) -> str:
    return f"tenant#{tenant_id}"


def minute_key(tenant_id: str, now: datetime) -> str:
    return f"tenant#{tenant_id}#minute#{now.strftime('%Y-%m-%dT%H:%M')}"


def day_key(tenant_id: str, now: datetime) -> str:
    return f"tenant#{tenant_id}#day#{now.strftime('%Y-%m-%d')}"


def lease_key(job_id: str) -> str:
    return f"job#{job_id}"


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def _number(item: dict[str, Any], name: str) -> float:
    return float(item[name]["N"]) if name in item else 0.0


class UsageTable:
    """Repository over the usage table."""

    def __init__(self, client: BaseClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def admit(
        self,
        tenant_id: str,
        job_id: str,
        limits: TenantLimits,
        *,
        now: datetime,
        tenant_cap: int,
        gpu_slots: int | None,
        with_operations: tuple[dict[str, Any], ...] = (),
    ) -> None:
        """Count one job for ``tenant_id`` if every limit allows it, in one transaction.

        ``tenant_cap`` bounds the tenant's active jobs (its limit, or less: its fair share);
        with ``gpu_slots`` the deployment's active jobs must also be below it.
        ``with_operations`` join the same transaction (the job's record: it exists if and only
        if the job was counted). Raises :class:`AdmissionRefused` naming the first guard that
        failed.
        """
        expires = int((now + _MINUTE_TTL).timestamp())
        slots: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(DEPLOYMENT_KEY),
            "UpdateExpression": "ADD active :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        if gpu_slots is not None:  # API calls count in the slots without waiting for one
            slots["ConditionExpression"] = "attribute_not_exists(active) OR active < :slots"
            slots["ExpressionAttributeValues"][":slots"] = {"N": str(gpu_slots)}
        items: list[tuple[Limit | None, dict[str, Any]]] = [
            (
                "max_active",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(tenant_key(tenant_id)),
                        "UpdateExpression": "ADD active :one",
                        "ConditionExpression": "attribute_not_exists(active) OR active < :cap",
                        "ExpressionAttributeValues": {
                            ":one": {"N": "1"},
                            ":cap": {"N": str(tenant_cap)},
                        },
                    }
                },
            ),
            (
                "per_minute",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(minute_key(tenant_id, now)),
                        "UpdateExpression": "ADD submissions :one SET expires_at = :expires",
                        "ConditionExpression": (
                            "attribute_not_exists(submissions) OR submissions < :rate"
                        ),
                        "ExpressionAttributeValues": {
                            ":one": {"N": "1"},
                            ":rate": {"N": str(limits.per_minute)},
                            ":expires": {"N": str(expires)},
                        },
                    }
                },
            ),
            ("gpu_slots", {"Update": slots}),
            (
                None,
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **_key(lease_key(job_id)),
                            "tenant_id": {"S": tenant_id},
                            "admitted_at": {"S": iso(now)},
                            "expires_at": {"N": str(int((now + _LEASE_TTL).timestamp()))},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ),
        ]
        if limits.gpu_seconds_per_day is not None:
            items.append(
                (
                    "gpu_seconds_per_day",
                    {
                        "ConditionCheck": {
                            "TableName": self._table,
                            "Key": _key(day_key(tenant_id, now)),
                            "ConditionExpression": (
                                "attribute_not_exists(gpu_seconds) OR gpu_seconds < :budget"
                            ),
                            "ExpressionAttributeValues": {
                                ":budget": {"N": repr(float(limits.gpu_seconds_per_day))}
                            },
                        }
                    },
                )
            )
        items += [(None, operation) for operation in with_operations]
        failed = self._transact([operation for _, operation in items])
        if failed is not None:
            limit = items[failed][0]
            if limit is None:  # a second lease or record for one job id: a bug, not a caller's
                raise RuntimeError(f"job {job_id} was already admitted")
            raise AdmissionRefused(limit)

    def release(
        self, tenant_id: str, job_id: str, *, now: datetime, gpu_seconds: float | None
    ) -> bool:
        """Uncount a finished job (and add its GPU-seconds to the day); False if it was
        already released or never admitted."""
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":seconds": {"N": repr(float(gpu_seconds or 0.0))},
            ":expires": {"N": str(int((now + _DAY_TTL).timestamp()))},
        }
        operations = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _key(lease_key(job_id)),
                    "ConditionExpression": "attribute_exists(pk) AND tenant_id = :tenant",
                    "ExpressionAttributeValues": {":tenant": {"S": tenant_id}},
                }
            },
            *(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(pk),
                        "UpdateExpression": "ADD active :minus",
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                    }
                }
                for pk in (tenant_key(tenant_id), DEPLOYMENT_KEY)
            ),
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(day_key(tenant_id, now)),
                    "UpdateExpression": (
                        "ADD gpu_seconds :seconds, jobs :one SET expires_at = :expires"
                    ),
                    "ExpressionAttributeValues": values,
                }
            },
        ]
        return self._transact(operations) is None

    def mark_waiting(self, tenant_id: str, until: datetime) -> None:
        """Record that a batch item of the tenant waits for a slot until about ``until``."""
        self._client.update_item(
            TableName=self._table,
            Key=_key(tenant_key(tenant_id)),
            UpdateExpression="SET waiting_until = :until",
            ExpressionAttributeValues={":until": {"S": iso(until)}},
        )

    def snapshot(self, tenant_ids: list[str]) -> UsageSnapshot:
        """Every listed tenant's counters and the deployment's, in one consistent read each."""
        items = self._get_many([tenant_key(tenant) for tenant in tenant_ids] + [DEPLOYMENT_KEY])
        active: dict[str, int] = {}
        waiting: dict[str, str] = {}
        for tenant in tenant_ids:
            item = items.get(tenant_key(tenant), {})
            active[tenant] = int(_number(item, "active"))
            if "waiting_until" in item:
                waiting[tenant] = item["waiting_until"]["S"]
        deployment = int(_number(items.get(DEPLOYMENT_KEY, {}), "active"))
        return UsageSnapshot(active=active, waiting_until=waiting, deployment_active=deployment)

    def counters(self, tenant_id: str, now: datetime) -> TenantCounters:
        keys = [tenant_key(tenant_id), minute_key(tenant_id, now), day_key(tenant_id, now)]
        items = self._get_many(keys)
        tenant, minute, day = (items.get(key, {}) for key in keys)
        return TenantCounters(
            active=int(_number(tenant, "active")),
            submissions_this_minute=int(_number(minute, "submissions")),
            gpu_seconds_today=_number(day, "gpu_seconds"),
            jobs_finished_today=int(_number(day, "jobs")),
        )

    def _get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        # BatchGetItem takes 100 keys a call; the tenants of one deployment are configured.
        for start in range(0, len(keys), 100):
            request = {
                self._table: {
                    "Keys": [_key(pk) for pk in keys[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[item["pk"]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
        return found

    def _transact(self, operations: list[dict[str, Any]]) -> int | None:
        """Run the transaction; the index of the operation whose condition failed, or None.

        Concurrent transactions on one tenant's items cancel each other with
        ``TransactionConflict`` (botocore does not retry that): tried again a few times, then
        raised, as is any other cancellation (throttling), for the caller's retry.
        """
        attempt = 1
        while True:
            try:
                self._client.transact_write_items(TransactItems=operations)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    return reasons.index("ConditionalCheckFailed")
                if "TransactionConflict" not in reasons or attempt == _CONFLICT_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 (jitter)
                attempt += 1
            else:
                return None
