"""Per-tenant limits and the fair share, applied where a job is admitted and released.

:func:`admit_and_create` runs in the submit path after every check: one DynamoDB transaction
counts the job, on conditions that are the limits (active jobs, the minute's submissions, the
day's GPU-seconds, the fair share or a spare GPU slot), and writes its record, so a job exists
if and only if it was counted. A refusal raises
:class:`~aws.lambda_proxy.tenants.exceptions.QuotaExceededError` (429 ``tenant_quota_exceeded``
with ``Retry-After``) and nothing is written. :func:`release` runs
in the follow-ups of a settled job (the one winner of the settle, and the reconciler's retries):
the job's lease makes it uncount the job exactly once.

The rule for a tenant T (see :mod:`.fairness` for the share):

* T's active jobs < T's ``max_active``, the minute's submissions < ``per_minute`` and, when set,
  today's GPU-seconds < ``gpu_seconds_per_day``: always;
* and either T holds fewer than its fair share, or the deployment holds fewer than
  ``gpu_slots`` (a spare slot).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from aws.lambda_proxy.jobs.models import iso, utc_now
from aws.lambda_proxy.observability import logger
from aws.lambda_proxy.tenants import metrics
from aws.lambda_proxy.tenants.exceptions import QuotaExceededError
from aws.lambda_proxy.tenants.fairness import fair_share
from aws.lambda_proxy.tenants.usage_table import AdmissionRefused, Limit, TenantCounters

if TYPE_CHECKING:
    from datetime import datetime

    from aws.lambda_proxy.config import Settings
    from aws.lambda_proxy.jobs.models import JobRecord
    from aws.lambda_proxy.services import Services
    from aws.lambda_proxy.tenants.limits import TenantLimits


def limits_of(services: Services, tenant_id: str) -> TenantLimits:
    settings = services.settings
    config = settings.tenants_config.get(tenant_id)
    own = config.limits if config is not None else None
    return own or settings.tenant_limits_default


def admit_and_create(services: Services, job: JobRecord, *, fair: bool) -> None:
    """Count ``job`` against its tenant's limits and write its record, in one transaction;
    or raise ``QuotaExceededError`` with nothing written.

    ``fair`` (batch items, which can wait) also applies the fair share; an API call, which
    cannot wait, is held to the tenant's own limits only (and still counts in the deployment's
    slots, so batch items yield to it).
    """
    tenant_id, settings, now = job.tenant_id, services.settings, utc_now()
    limits = limits_of(services, tenant_id)
    record = (services.jobs.create_operation(job),)

    def count(tenant_cap: int, gpu_slots: int | None) -> None:
        services.usage.admit(
            tenant_id,
            job.job_id,
            limits,
            now=now,
            tenant_cap=tenant_cap,
            gpu_slots=gpu_slots,
            with_operations=record,
        )

    if not fair:
        try:
            count(limits.max_active, None)
        except AdmissionRefused as refused:
            # A refused call counts; a batch item that waits counts as waiting (its handler).
            metrics.record_refused(tenant_id, refused.limit)
            raise _refused(refused.limit, tenant_id, limits, 0, settings, now) from None
        metrics.record_admitted(tenant_id)
        return
    snapshot = services.usage.snapshot(sorted(settings.tenants_config))
    share = fair_share(tenant_id, snapshot, gpu_slots=settings.gpu_slots, now_iso=iso(now))
    within_share = min(share, limits.max_active)

    def counted_within_share() -> bool:
        if snapshot.active.get(tenant_id, 0) >= within_share:
            return False
        try:
            count(within_share, None)
        except AdmissionRefused as refused:
            if refused.limit != "max_active":
                raise
            return False  # over its share since the read
        return True

    try:
        if not counted_within_share():
            count(limits.max_active, settings.gpu_slots)  # over its share: a spare slot only
    except AdmissionRefused as refused:
        raise _refused(refused.limit, tenant_id, limits, share, settings, now) from None
    metrics.record_admitted(tenant_id)


def _refused(
    limit: Limit,
    tenant_id: str,
    limits: TenantLimits,
    share: int,
    settings: Settings,
    now: datetime,
) -> QuotaExceededError:
    logger.info("tenant quota refused", extra={"tenant_id": tenant_id, "limit": limit})
    # A slot (active jobs, fair share) frees when some job finishes, which no one can foresee:
    # the deployment's quota_retry_after_s. Windows reopen at a known time.
    retry = settings.quota_retry_after_s
    if limit == "per_minute":
        message = f"tenant {tenant_id!r} may submit {limits.per_minute} jobs a minute"
        retry = 60 - now.second
    elif limit == "gpu_seconds_per_day":
        message = (
            f"tenant {tenant_id!r} used its {limits.gpu_seconds_per_day:g} GPU-seconds for "
            "today (UTC)"
        )
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        retry = math.ceil((midnight - now).total_seconds())
    elif limit == "max_active":
        message = f"tenant {tenant_id!r} may have {limits.max_active} jobs queued or processing"
    else:
        message = (
            f"every GPU slot ({settings.gpu_slots}) is taken and tenant {tenant_id!r} holds its "
            f"fair share of them ({share}) or more"
        )
    return QuotaExceededError(message, limit=limit, retry_after_s=max(1, retry))


def release(services: Services, job: JobRecord) -> bool:
    """Uncount a final job once; False when the table could not be reached (the caller keeps
    the job's follow-up open so that the reconciler tries again)."""
    gpu_seconds = job.result.gpu_seconds if job.result is not None else None
    try:
        released = services.usage.release(
            job.tenant_id, job.job_id, now=utc_now(), gpu_seconds=gpu_seconds
        )
    except (ClientError, BotoCoreError) as exc:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("quota release failed", extra={"job_id": job.job_id, "code": code})
        return False
    if released:
        metrics.record_released(job)
    return True


def wait_for_slot(services: Services, tenant_id: str, delay_s: int) -> None:
    """A batch item of ``tenant_id`` waits ``delay_s``: the tenant counts as wanting GPUs
    (for the fair share) a little longer than that, until the item is back."""
    services.usage.mark_waiting(tenant_id, utc_now() + timedelta(seconds=delay_s + 30))
    metrics.record_batch_wait(tenant_id)


def usage_of(services: Services, tenant_id: str) -> tuple[TenantLimits, TenantCounters]:
    """The tenant's limits and its counters now."""
    return limits_of(services, tenant_id), services.usage.counters(tenant_id, utc_now())
