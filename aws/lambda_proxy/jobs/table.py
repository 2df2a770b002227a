"""The jobs table: one item per job, status changed only by conditional updates.

Item layout (hash key ``job_id``):

* scalars: ``tenant_id``, ``status``, ``created_at``, ``updated_at``, ``deadline``,
  ``started_at``, ``finished_at`` (fixed-width ISO UTC strings), ``call_id``, ``task_token``,
  ``webhook_url``, ``callback_secret``, ``estimated_time_s`` and ``expires_at`` (numbers, the
  latter the TTL attribute), ``progress_percent`` (number, guards against reordered progress);
* ``active`` = ``"1"`` only while the job is queued or processing: the sparse index
  ``active-by-deadline`` (``active`` + ``deadline``) is what the reconciler scans;
* JSON strings: ``doc`` (locations, params, batch item) and ``progress``, ``result``, ``error``,
  ``webhook_delivery``.

The tenant index ``by-tenant`` (``tenant_id`` + ``created_at``) serves ``GET /jobs``. The sparse
index ``followups`` (``followup_pending`` + ``followup_at``) is an outbox: settling a job sets
them in the same conditional update, and they are removed only once Step Functions and the
caller's webhook were told, so a crash between the two is repaired by the reconciler. All
indexes project ALL attributes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from aws.lambda_proxy.exceptions import BadRequestError
from aws.lambda_proxy.jobs.exceptions import JobNotFoundError
from aws.lambda_proxy.jobs.models import (
    ACTIVE_STATUSES,
    JobFailure,
    JobRecord,
    JobStatus,
    Progress,
    WebhookDelivery,
    iso,
    utc_now,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from modal_service.contracts import JobResult

_DOC_FIELDS = ("audio_inputs", "image_input", "video_input", "output", "params", "batch_item")
_JSON_FIELDS = ("progress", "result", "error", "webhook_delivery")
_SCALAR_FIELDS = (
    "job_id",
    "tenant_id",
    "status",
    "created_at",
    "updated_at",
    "deadline",
    "started_at",
    "finished_at",
    "call_id",
    "task_token",
    "task_state",
    "webhook_url",
    "callback_secret",
)
_NUMBER_FIELDS = ("estimated_time_s", "expires_at")
_ACTIVE = {
    ":queued": {"S": JobStatus.QUEUED.value},
    ":processing": {"S": JobStatus.PROCESSING.value},
}
_IS_ACTIVE = "#status IN (:queued, :processing)"


def _to_item(job: JobRecord) -> dict[str, Any]:
    data = job.model_dump(mode="json")
    item: dict[str, Any] = {}
    for name in _SCALAR_FIELDS:
        if data[name] is not None:
            item[name] = {"S": str(data[name])}
    for name in _NUMBER_FIELDS:
        item[name] = {"N": str(int(data[name]))}
    item["doc"] = {"S": json.dumps({name: data[name] for name in _DOC_FIELDS}, sort_keys=True)}
    for name in _JSON_FIELDS:
        if data[name] is not None:
            item[name] = {"S": json.dumps(data[name], sort_keys=True)}
    item["progress_percent"] = {"N": str(job.progress.percent)}
    if job.status in ACTIVE_STATUSES:
        item["active"] = {"S": "1"}
    return item


def _from_item(item: dict[str, Any]) -> JobRecord:
    data: dict[str, Any] = {}
    for name in _SCALAR_FIELDS:
        if name in item:
            data[name] = item[name]["S"]
    for name in _NUMBER_FIELDS:
        data[name] = int(item[name]["N"])
    data.update(json.loads(item["doc"]["S"]))
    for name in _JSON_FIELDS:
        if name in item:
            data[name] = json.loads(item[name]["S"])
    return JobRecord.model_validate(data)


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobsTable:
    """Repository over the jobs table. Every status change is conditional on the current status,
    so a final state (succeeded, failed, cancelled) can never be overwritten."""

    def __init__(
        self,
        client: BaseClient,
        table_name: str,
        *,
        tenant_index: str = "by-tenant",
        active_index: str = "active-by-deadline",
        followup_index: str = "followups",
    ) -> None:
        self._client = client
        self._table = table_name
        self._tenant_index = tenant_index
        self._active_index = active_index
        self._followup_index = followup_index

    # --- reads ---------------------------------------------------------------------------

    def get(self, job_id: str, *, tenant_id: str | None = None) -> JobRecord:
        """The job; with ``tenant_id``, another tenant's job is reported as not found."""
        answer = self._client.get_item(
            TableName=self._table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None or (tenant_id is not None and item["tenant_id"]["S"] != tenant_id):
            raise JobNotFoundError(f"job {job_id} not found")
        return _from_item(item)

    def list_for_tenant(
        self,
        tenant_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        status: JobStatus | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """Newest first, one page; the cursor is opaque and bound to the tenant."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": self._tenant_index,
            "KeyConditionExpression": "tenant_id = :tenant",
            "ExpressionAttributeValues": {":tenant": {"S": tenant_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if status is not None:
            query["FilterExpression"] = "#status = :status"
            query["ExpressionAttributeNames"] = {"#status": "status"}
            query["ExpressionAttributeValues"][":status"] = {"S": status.value}
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, tenant_id)
        answer = self._client.query(**query)
        # The index projects ALL attributes, so items are whole jobs (no second read).
        jobs = [_from_item(item) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return jobs, _encode_cursor(last) if last else None

    def overdue(self, *, now_iso: str, limit: int = 100) -> list[JobRecord]:
        """Unsettled jobs whose deadline is before ``now_iso`` (sparse ``active`` index)."""
        answer = self._client.query(
            TableName=self._table,
            IndexName=self._active_index,
            KeyConditionExpression="active = :one AND deadline < :now",
            ExpressionAttributeValues={":one": {"S": "1"}, ":now": {"S": now_iso}},
            Limit=limit,
        )
        return [_from_item(item) for item in answer.get("Items", [])]

    def silent(self, *, now_iso: str, updated_before_iso: str, limit: int = 100) -> list[JobRecord]:
        """Unsettled jobs not yet overdue whose last update is before ``updated_before_iso``.

        The sparse ``active`` index holds only unsettled jobs (bounded by the GPU concurrency
        and the queue), so reading it whole is cheap.
        """
        found: list[JobRecord] = []
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=self._active_index,
            KeyConditionExpression="active = :one AND deadline >= :now",
            FilterExpression="updated_at < :before",
            ExpressionAttributeValues={
                ":one": {"S": "1"},
                ":now": {"S": now_iso},
                ":before": {"S": updated_before_iso},
            },
        )
        for page in pages:
            found += [_from_item(item) for item in page.get("Items", [])]
            if len(found) >= limit:
                break
        return found[:limit]

    def unsettled(self, *, limit: int) -> list[tuple[str, int]]:
        """``(created_at, estimated_time_s)`` of up to ``limit`` unsettled jobs, earliest
        deadline first: one query page of the sparse ``active`` index (the job estimates'
        queue), never a scan."""
        answer = self._client.query(
            TableName=self._table,
            IndexName=self._active_index,
            KeyConditionExpression="active = :one",
            ExpressionAttributeValues={":one": {"S": "1"}},
            ProjectionExpression="created_at, estimated_time_s",
            Limit=limit,
        )
        return [
            (item["created_at"]["S"], int(item["estimated_time_s"]["N"]))
            for item in answer.get("Items", [])
        ]

    # --- writes ----------------------------------------------------------------------------

    def create(self, job: JobRecord) -> None:
        self._client.put_item(**self.create_operation(job)["Put"])

    def create_operation(self, job: JobRecord) -> dict[str, Any]:
        """:meth:`create` as one operation of a ``TransactWriteItems`` (tenant admission)."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": _to_item(job),
                "ConditionExpression": "attribute_not_exists(job_id)",
            }
        }

    def set_call_id(self, job_id: str, call_id: str) -> bool:
        """Record Modal's call id while the job is unsettled; False once it is final."""
        return self._update(
            job_id,
            "SET call_id = :call, updated_at = :now",
            {":call": {"S": call_id}},
        )

    def mark_started(self, job_id: str, call_id: str | None) -> bool:
        expression = "SET #status = :processing, updated_at = :now, "
        expression += "started_at = if_not_exists(started_at, :now)"
        values: dict[str, Any] = {}
        if call_id:
            expression += ", call_id = if_not_exists(call_id, :call)"
            values[":call"] = {"S": call_id}
        return self._update(job_id, expression, values)

    def update_progress(
        self, job_id: str, progress: Progress, *, estimated_time_s: int | None = None
    ) -> bool:
        """Apply progress unless a later (higher) percentage already arrived; the revised
        estimate, if any, under the same guard (a stale event changes neither)."""
        expression = (
            "SET #status = :processing, progress = :progress, progress_percent = :percent, "
            "updated_at = :now, started_at = if_not_exists(started_at, :now)"
        )
        values = {
            ":progress": {"S": progress.model_dump_json()},
            ":percent": {"N": str(progress.percent)},
        }
        if estimated_time_s is not None:
            expression += ", estimated_time_s = :estimate"
            values[":estimate"] = {"N": str(estimated_time_s)}
        return self._update(
            job_id, expression, values, extra_condition="progress_percent <= :percent"
        )

    def settle(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: JobResult | None = None,
        error: JobFailure | None = None,
        followup_at: str,
        task_pending: bool,
    ) -> JobRecord | None:
        """Move an unsettled job to a final state; None if it was already final (lost race).

        The same update opens the job's follow-up (``followup_at``) and, with ``task_pending``,
        marks the Step Functions notification as owed.
        """
        if not status.final:
            raise ValueError(f"{status} is not a final status")
        expression = "SET #status = :final, updated_at = :now, finished_at = :now, "
        expression += "followup_pending = :one, followup_at = :followup"
        values: dict[str, Any] = {
            ":final": {"S": status.value},
            ":one": {"S": "1"},
            ":followup": {"S": followup_at},
        }
        if task_pending:
            expression += ", task_state = :task_pending"
            values[":task_pending"] = {"S": "pending"}
        if status is JobStatus.SUCCEEDED:
            progress = Progress(stage="done", percent=100.0)
            expression += ", progress = :progress, progress_percent = :percent"
            values[":progress"] = {"S": progress.model_dump_json()}
            values[":percent"] = {"N": "100"}
        if result is not None:
            expression += ", #result = :result"
            values[":result"] = {"S": result.model_dump_json()}
        if error is not None:
            expression += ", #error = :error"
            values[":error"] = {"S": error.model_dump_json()}
        expression += " REMOVE active"
        names = {"#status": "status"}
        if result is not None:
            names["#result"] = "result"
        if error is not None:
            names["#error"] = "error"
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expression,
                ConditionExpression=_IS_ACTIVE,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**_ACTIVE, **values, ":now": {"S": iso(utc_now())}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _from_item(answer["Attributes"])

    def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> None:
        """Store the caller-webhook outcome (allowed on final jobs: it is not a status)."""
        self._set_on_final(job_id, "webhook_delivery", delivery.model_dump_json())

    def set_task_state(self, job_id: str, state: str) -> None:
        self._set_on_final(job_id, "task_state", state)

    def schedule_followup(self, job_id: str, at: str | None) -> None:
        """Due again at ``at``, or (None) leave the follow-up index: nothing is owed."""
        if at is None:
            expression, values = "REMOVE followup_pending, followup_at", {}
        else:
            expression = "SET followup_pending = :one, followup_at = :at"
            values = {":one": {"S": "1"}, ":at": {"S": at}}
        self._client.update_item(
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(job_id)",
            **({"ExpressionAttributeValues": values} if values else {}),
        )

    def followups_due(self, *, now_iso: str, limit: int = 50) -> list[JobRecord]:
        """Final jobs that still owe Step Functions or the caller a notification."""
        answer = self._client.query(
            TableName=self._table,
            IndexName=self._followup_index,
            KeyConditionExpression="followup_pending = :one AND followup_at <= :now",
            ExpressionAttributeValues={":one": {"S": "1"}, ":now": {"S": now_iso}},
            Limit=limit,
        )
        return [_from_item(item) for item in answer.get("Items", [])]

    def _set_on_final(self, job_id: str, attribute: str, value: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression=f"SET {attribute} = :value",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeValues={":value": {"S": value}},
        )

    def _update(
        self,
        job_id: str,
        expression: str,
        values: dict[str, Any],
        *,
        extra_condition: str | None = None,
    ) -> bool:
        condition = _IS_ACTIVE if extra_condition is None else f"{_IS_ACTIVE} AND {extra_condition}"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    **_ACTIVE,
                    **values,
                    ":now": {"S": iso(utc_now())},
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str, tenant_id: str) -> dict[str, Any]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(plain, dict)
            and set(plain) == {"job_id", "tenant_id", "created_at"}
            and all(isinstance(value, str) for value in plain.values())
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    # A cursor from another tenant's listing must not open that tenant's partition.
    if not valid or plain["tenant_id"] != tenant_id:
        raise BadRequestError("next_token is not a cursor from this listing", code="cursor_invalid")
    return {name: {"S": value} for name, value in plain.items()}
