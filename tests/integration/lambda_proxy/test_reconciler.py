"""The scheduled reconciler settles overdue jobs from what the real internal API says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aws.lambda_proxy.handlers import reconciler
from aws.lambda_proxy.jobs.models import JobFailure, JobStatus, iso, utc_now
from aws.lambda_proxy.reconcile.reconciler import reconcile
from scripts.local_stack.gateway import LambdaContext
from tests.integration.lambda_proxy.conftest import Proxy, free_port
from tests.integration.lambda_proxy.events import scheduler_event
from tests.integration.lambda_proxy.test_modal_and_webhooks import modal_at

pytestmark = pytest.mark.stack


def make_overdue(proxy: Proxy, job_id: str, *, by: timedelta = timedelta(minutes=10)) -> None:
    """Move the job's deadline into the past (the reconciler's only trigger)."""
    proxy.services.dynamodb.update_item(
        TableName=proxy.services.settings.jobs_table_name,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET deadline = :past",
        ExpressionAttributeValues={":past": {"S": iso(utc_now() - by)}},
    )


def run_reconciler() -> dict[str, int]:
    return reconciler.handler(scheduler_event(), LambdaContext(function_name="reconciler"))


@pytest.mark.fault("job still running past its deadline")
def test_a_job_still_running_past_its_deadline_is_cancelled_and_failed(proxy: Proxy) -> None:
    job_id = proxy.submit()
    on_time = proxy.submit()
    make_overdue(proxy, job_id)

    summary = run_reconciler()
    assert summary["settled"] >= 1
    job = proxy.services.jobs.get(job_id)
    assert job.status.value == "failed"
    assert job.error is not None
    assert job.error.code == "deadline_exceeded"
    assert proxy.services.modal.get_job(job.call_id).state.value == "cancelled"
    assert proxy.services.jobs.get(on_time).status.value == "queued"


def test_a_call_cancelled_at_modal_is_settled_as_cancelled(proxy: Proxy) -> None:
    job_id = proxy.submit()
    proxy.services.modal.cancel_job(proxy.services.jobs.get(job_id).call_id)
    make_overdue(proxy, job_id)
    run_reconciler()
    assert proxy.services.jobs.get(job_id).status.value == "cancelled"


@pytest.mark.fault("proxy crashed between the job record and the dispatch")
def test_a_job_never_dispatched_is_failed(proxy: Proxy) -> None:
    job_id = proxy.submit()
    proxy.services.dynamodb.update_item(
        TableName=proxy.services.settings.jobs_table_name,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="REMOVE call_id",
    )
    make_overdue(proxy, job_id)
    run_reconciler()
    job = proxy.services.jobs.get(job_id)
    assert job.status.value == "failed"
    assert job.error is not None
    assert "never dispatched" in job.error.message


@pytest.mark.fault("render service unreachable for the reconciler")
def test_modal_unreachable_defers_then_fails_a_very_late_job(proxy: Proxy) -> None:
    late = proxy.submit()
    very_late = proxy.submit()
    make_overdue(proxy, late)
    make_overdue(proxy, very_late, by=timedelta(hours=3))
    with modal_at(proxy, f"http://127.0.0.1:{free_port()}") as services:
        summary = reconcile(services)
    assert summary.deferred >= 1
    assert proxy.services.jobs.get(late).status.value == "queued"
    job = proxy.services.jobs.get(very_late)
    assert job.status.value == "failed"
    assert job.error is not None
    assert job.error.code == "modal_unavailable"


def make_silent(proxy: Proxy, job_id: str) -> None:
    """No update for longer than ``silent_job_s`` (the deadline still ahead)."""
    silent_for = timedelta(seconds=proxy.services.settings.silent_job_s + 60)
    proxy.services.dynamodb.update_item(
        TableName=proxy.services.settings.jobs_table_name,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET updated_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utc_now() - silent_for)}},
    )


@pytest.mark.fault("call ended without a final callback")
def test_a_silent_job_whose_call_ended_is_settled_before_its_deadline(proxy: Proxy) -> None:
    """The worker died or its final callback never came: Modal knows the call is over."""
    ended, running, recent = proxy.submit(), proxy.submit(), proxy.submit()
    proxy.services.modal.cancel_job(proxy.services.jobs.get(ended).call_id)
    proxy.services.modal.cancel_job(proxy.services.jobs.get(recent).call_id)
    make_silent(proxy, ended)
    make_silent(proxy, running)

    summary = run_reconciler()
    assert summary["silent_examined"] >= 2
    assert summary["silent_settled"] >= 1
    assert proxy.services.jobs.get(ended).status.value == "cancelled"
    assert proxy.services.jobs.get(running).status.value == "queued"  # still queued at Modal
    assert proxy.services.jobs.get(recent).status.value == "queued"  # not silent long enough
    assert proxy.services.modal.get_job(proxy.services.jobs.get(running).call_id).state.value in {
        "queued",
        "running",
    }


def test_settled_jobs_leave_the_overdue_index(proxy: Proxy) -> None:
    job_id = proxy.submit()
    make_overdue(proxy, job_id)
    run_reconciler()
    overdue = proxy.services.jobs.overdue(now_iso=iso(utc_now()))
    assert job_id not in {job.job_id for job in overdue}
    assert proxy.services.jobs.get(job_id).status.final


def make_followup_due(proxy: Proxy, job_id: str) -> None:
    proxy.services.dynamodb.update_item(
        TableName=proxy.services.settings.jobs_table_name,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET followup_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utc_now() - timedelta(seconds=1))}},
    )


@pytest.mark.fault("caller webhook round failed, sent again later")
def test_a_failed_webhook_round_is_sent_again_by_the_reconciler(proxy: Proxy) -> None:
    hook = f"{proxy.receiver.base_url}/hooks/later"
    job_id = proxy.submit(options={"webhook_url": hook})
    proxy.receiver.answers[:] = [(503, {})] * 3  # the whole first round fails
    proxy.invoke("DELETE", f"/jobs/{job_id}", token=proxy.token())

    first = proxy.services.jobs.get(job_id).webhook_delivery
    assert first is not None
    assert (first.state, first.rounds, first.retryable) == ("failed", 1, True)
    assert first.next_attempt_at is not None
    due_now = proxy.services.jobs.followups_due(now_iso=iso(utc_now()))
    assert job_id not in {job.job_id for job in due_now}  # armed for the next round, not now

    make_followup_due(proxy, job_id)
    proxy.services.dynamodb.update_item(  # and make the round itself due
        TableName=proxy.services.settings.jobs_table_name,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET webhook_delivery = :delivery",
        ExpressionAttributeValues={
            ":delivery": {
                "S": first.model_copy(update={"next_attempt_at": iso(utc_now())}).model_dump_json()
            }
        },
    )
    assert run_reconciler()["followups"] >= 1
    second = proxy.services.jobs.get(job_id).webhook_delivery
    assert second is not None
    assert (second.state, second.rounds, second.next_attempt_at) == ("delivered", 2, None)
    deliveries = proxy.receiver.for_job(job_id)
    assert len(deliveries) == 4
    assert len({item.headers["webhook-id"] for item in deliveries}) == 1
    later = proxy.services.jobs.followups_due(now_iso=iso(utc_now() + timedelta(days=1)))
    assert job_id not in {job.job_id for job in later}


@pytest.mark.fault("settling process died before notifying anyone")
def test_followups_lost_in_a_crash_are_completed_by_the_reconciler(proxy: Proxy) -> None:
    """The settling process died right after its conditional update: nobody was told."""
    hook = f"{proxy.receiver.base_url}/hooks/crash"
    job_id = proxy.submit(options={"webhook_url": hook})
    settled = proxy.services.jobs.settle(
        job_id,
        JobStatus.FAILED,
        error=JobFailure(code="internal", message="worker lost"),
        followup_at=iso(utc_now() - timedelta(seconds=1)),
        task_pending=True,
    )
    assert settled is not None
    assert proxy.receiver.for_job(job_id) == []

    run_reconciler()
    (notice,) = proxy.receiver.for_job(job_id)
    assert notice.json()["type"] == "job.failed"
    assert job_id not in {
        job.job_id for job in proxy.services.jobs.followups_due(now_iso=iso(utc_now()))
    }
    run_reconciler()
    assert len(proxy.receiver.for_job(job_id)) == 1  # done once, not again
