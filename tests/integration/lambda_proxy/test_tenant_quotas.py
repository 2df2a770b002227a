"""Per-tenant limits on the local stack: the real handlers and submit path, the DynamoDB
emulator's transactions, a usage table of each test's own and tight limits for ``globex``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from aws.lambda_proxy.api.models import GenerateVideoRequest
from aws.lambda_proxy.auth.models import TenantContext
from aws.lambda_proxy.jobs.exceptions import SubmitError
from aws.lambda_proxy.jobs.models import JobFailure, JobStatus, iso, utc_now
from aws.lambda_proxy.jobs.settle import run_followups, settle_job
from aws.lambda_proxy.jobs.submit import submit_job
from aws.lambda_proxy.services import Services, set_services
from aws.lambda_proxy.tenants.limits import TenantLimits
from modal_service.contracts import ErrorCode, JobError, JobFailed, JobSucceeded
from tests.integration.lambda_proxy.conftest import Proxy
from tests.integration.lambda_proxy.test_callbacks import emitted_metrics, result, upload_output

pytestmark = pytest.mark.stack

TENANT = "globex"


@dataclass
class Quotas:
    proxy: Proxy
    services: Services

    def counters(self) -> dict[str, Any]:
        return self.services.usage.counters(TENANT, utc_now()).model_dump()

    def deployment_active(self) -> int:
        return self.services.usage.snapshot([TENANT]).deployment_active

    def request(self, **options: Any) -> GenerateVideoRequest:
        body = self.proxy.body(TENANT)
        body["options"].update(options)
        return GenerateVideoRequest.model_validate(body)

    def tenant_jobs(self, since: str) -> list[str]:
        jobs, _ = self.services.jobs.list_for_tenant(TENANT, limit=100)
        return [job.job_id for job in jobs if job.created_at >= since]


def make_quotas(proxy: Proxy, limits: TenantLimits, **settings: Any) -> Quotas:
    """A Services graph like the proxy's, with a fresh usage table and ``limits`` for globex."""
    name = f"usage-{uuid.uuid4().hex[:8]}"
    dynamodb = proxy.stack.client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    base = proxy.services.settings
    tenants = dict(base.tenants_config)
    tenants[TENANT] = tenants[TENANT].model_copy(update={"limits": limits})
    configured = base.model_copy(
        update={"usage_table_name": name, "tenants_config": tenants, **settings}
    )
    services = Services(
        configured,
        webhook_policy=proxy.services.webhook_policy,
        webhook_ssl_context=proxy.ssl_context,
    )
    return Quotas(proxy=proxy, services=services)


@pytest.fixture
def use(proxy: Proxy) -> Iterator[Any]:
    """``use(limits, **settings)``: make such a graph the container's for the test."""

    def _use(limits: TenantLimits, **settings: Any) -> Quotas:
        quotas = make_quotas(proxy, limits, **settings)
        set_services(quotas.services)
        return quotas

    try:
        yield _use
    finally:
        set_services(proxy.services)


def test_concurrent_submissions_never_exceed_the_active_limit(use: Any) -> None:
    quotas = use(TenantLimits(max_active=3, per_minute=1000))
    tenant = TenantContext(tenant_id=TENANT, scopes=frozenset({"videos:write"}))
    requests = [quotas.request() for _ in range(12)]
    since = iso(utc_now())

    def attempt(request: GenerateVideoRequest) -> str:
        try:
            return submit_job(request, tenant, services=quotas.services).job_id
        except SubmitError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(attempt, requests))

    admitted = [outcome for outcome in outcomes if outcome.startswith("job_")]
    assert len(admitted) == 3, outcomes
    assert outcomes.count("tenant_quota_exceeded") == 9
    assert sorted(quotas.tenant_jobs(since)) == sorted(admitted)
    assert quotas.counters()["active"] == 3
    assert quotas.counters()["submissions_this_minute"] == 3


def test_over_the_limit_is_429_with_retry_after_and_writes_nothing(use: Any) -> None:
    quotas = use(TenantLimits(max_active=1, per_minute=1000), quota_retry_after_s=17)
    proxy = quotas.proxy
    token = proxy.token(TENANT)
    first = proxy.invoke("POST", "/generate-video", token=token, body=proxy.body(TENANT))
    assert first.status == 202, first.body
    since = iso(utc_now())
    body = proxy.body(TENANT)
    key = f"quota-{uuid.uuid4().hex}"

    refused = proxy.invoke(
        "POST", "/generate-video", token=token, body=body, headers={"Idempotency-Key": key}
    )

    assert refused.status == 429, refused.body
    assert refused.headers["retry-after"] == "17"
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["code"], problem["limit"], problem["retry_after_s"]) == (
        "tenant_quota_exceeded",
        "max_active",
        17,
    )
    assert quotas.tenant_jobs(since) == []
    assert quotas.counters()["active"] == 1
    # The idempotency record was not left behind: once the slot is free, the same key and body
    # make a new job (a kept record would answer 409 in progress or the refusal again).
    job_id = first.json()["job_id"]
    assert proxy.invoke("DELETE", f"/jobs/{job_id}", token=token).status == 200
    again = proxy.invoke(
        "POST", "/generate-video", token=token, body=body, headers={"Idempotency-Key": key}
    )
    assert again.status == 202, again.body
    assert quotas.tenant_jobs(since) == [again.json()["job_id"]]


def test_submissions_per_minute_are_limited(use: Any) -> None:
    quotas = use(TenantLimits(max_active=100, per_minute=2))
    proxy = quotas.proxy
    token = proxy.token(TENANT)
    answers = [
        proxy.invoke("POST", "/generate-video", token=token, body=proxy.body(TENANT))
        for _ in range(3)
    ]
    assert [answer.status for answer in answers] == [202, 202, 429]
    assert answers[2].json()["limit"] == "per_minute"
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60


def test_a_spent_daily_gpu_budget_refuses_until_midnight(use: Any) -> None:
    quotas = use(TenantLimits(max_active=100, per_minute=100, gpu_seconds_per_day=30))
    proxy = quotas.proxy
    job_id = proxy.submit(TENANT)
    upload_output(proxy, job_id)
    spent = result().model_copy(update={"gpu_seconds": 31.5})
    assert proxy.callback(job_id, JobSucceeded(job_id=job_id, result=spent)).status == 200
    assert quotas.counters()["gpu_seconds_today"] == pytest.approx(31.5)

    refused = proxy.invoke(
        "POST", "/generate-video", token=proxy.token(TENANT), body=proxy.body(TENANT)
    )

    assert refused.status == 429
    assert refused.json()["limit"] == "gpu_seconds_per_day"
    now = utc_now()
    to_midnight = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    assert abs(int(refused.headers["retry-after"]) - to_midnight) <= 5


def test_the_active_count_returns_to_zero_on_every_way_a_job_ends(use: Any) -> None:
    quotas = use(TenantLimits(max_active=10, per_minute=100))
    proxy, services = quotas.proxy, quotas.services
    succeeded, failed, cancelled, overdue = (proxy.submit(TENANT) for _ in range(4))
    assert quotas.counters()["active"] == 4
    assert quotas.deployment_active() == 4

    upload_output(proxy, succeeded)
    done = result().model_copy(update={"gpu_seconds": 12.0})
    assert proxy.callback(succeeded, JobSucceeded(job_id=succeeded, result=done)).status == 200
    error = JobError(code=ErrorCode.AUDIO_INVALID, message="not a WAV file", retryable=False)
    assert proxy.callback(failed, JobFailed(job_id=failed, error=error)).status == 200
    assert proxy.invoke("DELETE", f"/jobs/{cancelled}", token=proxy.token(TENANT)).status == 200
    failure = JobFailure(code="deadline_exceeded", message="late", retryable=False)
    assert settle_job(services, overdue, JobStatus.FAILED, error=failure) is not None
    assert quotas.counters()["active"] == 0

    # Duplicate callbacks, a second settle and the reconciler's follow-up runs change nothing.
    assert proxy.callback(succeeded, JobSucceeded(job_id=succeeded, result=done)).status == 200
    assert proxy.callback(failed, JobFailed(job_id=failed, error=error)).status == 200
    assert settle_job(services, overdue, JobStatus.FAILED, error=failure) is None
    for job_id in (succeeded, failed, cancelled, overdue):
        run_followups(services, services.jobs.get(job_id))
    counters = quotas.counters()
    assert counters["active"] == 0
    assert counters["gpu_seconds_today"] == pytest.approx(12.0)
    assert counters["jobs_finished_today"] == 4
    assert quotas.deployment_active() == 0


def test_a_job_modal_refuses_gives_its_slot_back(use: Any, proxy: Proxy) -> None:
    quotas = use(
        TenantLimits(max_active=1, per_minute=100),
        modal_api_url="http://127.0.0.1:9/",
        modal_max_attempts=1,
    )
    answer = proxy.invoke(
        "POST", "/generate-video", token=proxy.token(TENANT), body=proxy.body(TENANT)
    )
    assert answer.status == 503, answer.body
    assert answer.json()["code"] == "modal_unavailable"
    assert quotas.counters()["active"] == 0


def test_usage_shows_the_callers_own_counters_and_limits(use: Any) -> None:
    quotas = use(TenantLimits(max_active=4, per_minute=50, gpu_seconds_per_day=3600))
    proxy = quotas.proxy
    proxy.submit(TENANT)
    proxy.submit(TENANT)

    answer = proxy.invoke("GET", "/usage", token=proxy.token(TENANT, scopes=("videos:read",)))

    assert answer.status == 200, answer.body
    usage = answer.json()
    assert usage["tenant_id"] == TENANT
    assert usage["limits"] == {"max_active": 4, "per_minute": 50, "gpu_seconds_per_day": 3600.0}
    assert usage["active"] == 2
    assert usage["submissions_this_minute"] == 2
    assert usage["gpu_seconds_today"] == 0
    other = proxy.invoke("GET", "/usage", token=proxy.token("acme", scopes=("videos:read",)))
    assert other.json()["tenant_id"] == "acme"
    assert other.json()["active"] == 0
    no_scope = proxy.invoke("GET", "/usage", token=proxy.token(TENANT, scopes=("videos:write",)))
    assert no_scope.status == 403


def test_quota_metrics_name_the_tenant_never_a_job(
    use: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the fixture turns them off
    quotas = use(TenantLimits(max_active=1, per_minute=100))
    proxy = quotas.proxy
    job_id = proxy.submit(TENANT)
    (admitted,) = [r for r in emitted_metrics(capsys.readouterr().out) if "TenantJobsAdmitted" in r]
    refused = proxy.invoke(
        "POST", "/generate-video", token=proxy.token(TENANT), body=proxy.body(TENANT)
    )
    assert refused.status == 429

    (record,) = [r for r in emitted_metrics(capsys.readouterr().out) if "TenantQuotaRefused" in r]
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"], ["service", "tenant"]]
    assert record["tenant"] == TENANT
    assert (record["TenantQuotaRefused"], record["TenantQuotaRefused_max_active"]) == ([1.0], [1.0])
    assert job_id not in json.dumps(admitted)


def test_the_openapi_document_shows_usage_and_the_quota_refusal(proxy: Proxy) -> None:
    spec = proxy.invoke("GET", "/openapi.json").json()
    usage = spec["paths"]["/usage"]["get"]
    assert usage["security"] == [{"bearer": []}]
    answer = usage["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("/TenantUsage")
    limits = spec["components"]["schemas"]["TenantLimits"]["properties"]
    assert set(limits) == {"max_active", "per_minute", "gpu_seconds_per_day"}
    refusal = spec["paths"]["/generate-video"]["post"]["responses"]["429"]["description"]
    assert "tenant_quota_exceeded" in refusal
    assert "Retry-After" in refusal
