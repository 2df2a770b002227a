"""Routes of the public API (joined to the resolver with ``include_router``).

Authentication happened before routing (see :mod:`aws.lambda_proxy.handlers.api`); routes
read the caller's :class:`TenantContext` from the resolver context and only ever touch that
tenant's jobs: another tenant's job id answers 404, exactly like a missing one.

A route imports what only it needs (submitting, cancelling, the quota counters) when it first
runs: the function's cold import stays free of boto3 and of the submit path's dependencies.
"""

from __future__ import annotations

import re
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from aws.lambda_proxy.api.models import (
    GenerateVideoRequest,
    GenerateVideoResponse,
    JobList,
    TenantUsage,
)
from aws.lambda_proxy.auth.models import TenantContext
from aws.lambda_proxy.exceptions import BadRequestError
from aws.lambda_proxy.jobs.exceptions import JobNotFoundError
from aws.lambda_proxy.jobs.models import JobStatus, JobView
from aws.lambda_proxy.services import get_services
from modal_service.contracts import JOB_ID_PATTERN

router = Router()
# OpenAPI documentation only: the handler enforces it before routing.
BEARER = [{"bearer": []}]
_JOB_ID = re.compile(JOB_ID_PATTERN)


def _tenant() -> TenantContext:
    return router.context["tenant"]


def _job_id(job_id: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFoundError(f"job {job_id[:64]!r} not found")
    return job_id


@router.post(
    "/generate-video",
    summary="Submit a talking-head video job",
    responses={
        202: {
            "description": "Accepted",
            "content": {"application/json": {"model": GenerateVideoResponse}},
        },
        429: {
            "description": "tenant_quota_exceeded: a limit of the caller's tenant (active jobs, "
            "submissions per minute, GPU-seconds per day; see GET /usage). Nothing was written; "
            "the Retry-After header says when a retry may pass.",
        },
    },
    tags=["jobs"],
    security=BEARER,
)
def generate_video(request: GenerateVideoRequest) -> Response[GenerateVideoResponse]:
    from aws.lambda_proxy.jobs.submit import IDEMPOTENCY_KEY_PATTERN, submit_job

    key = router.current_event.headers.get("idempotency-key")
    if key is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise BadRequestError(
            "Idempotency-Key must be 8-128 characters of A-Z a-z 0-9 . _ : / -",
            code="idempotency_key_invalid",
        )
    job = submit_job(request, _tenant(), idempotency_key=key)
    answer = GenerateVideoResponse(
        job_id=job.job_id,
        status=job.status,
        estimated_time=job.estimated_time_s,
        output_url=job.output.url,
    )
    return Response(
        status_code=202,
        content_type="application/json",
        body=answer,
        headers={"Location": f"/jobs/{job.job_id}"},
    )


@router.get(
    "/jobs/<job_id>",
    summary="A job's status, progress and result",
    tags=["jobs"],
    security=BEARER,
)
def get_job(job_id: str) -> JobView:
    job = get_services().jobs.get(_job_id(job_id), tenant_id=_tenant().tenant_id)
    return JobView.of(job)


@router.get("/jobs", summary="The caller's jobs, newest first", tags=["jobs"], security=BEARER)
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
    status: Annotated[JobStatus | None, Query()] = None,
) -> JobList:
    jobs, cursor = get_services().jobs.list_for_tenant(
        _tenant().tenant_id, limit=limit, cursor=next_token, status=status
    )
    return JobList(jobs=[JobView.of(job) for job in jobs], next_token=cursor)


@router.delete("/jobs/<job_id>", summary="Cancel a job", tags=["jobs"], security=BEARER)
def delete_job(job_id: str) -> JobView:
    from aws.lambda_proxy.jobs.cancel import cancel_job

    job = cancel_job(get_services(), _job_id(job_id), _tenant().tenant_id)
    return JobView.of(job)


@router.get(
    "/usage",
    summary="The caller's tenant: its limits and what it uses now",
    tags=["tenants"],
    security=BEARER,
)
def get_usage() -> TenantUsage:
    from aws.lambda_proxy.tenants.quota import usage_of

    tenant_id = _tenant().tenant_id
    limits, counters = usage_of(get_services(), tenant_id)
    return TenantUsage(tenant_id=tenant_id, limits=limits, **counters.model_dump())
