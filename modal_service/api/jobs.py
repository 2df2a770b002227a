"""``/v1/jobs``: submit (returns a call id at once), status and cancel."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from modal_service.api.problems import Problem
from modal_service.config import ServiceSettings
from modal_service.contracts import (
    CreateJobRequest,
    CreateJobResponse,
    JobStatusResponse,
    contains_aws_credentials,
)
from modal_service.runner.base import CallNotFound, JobRunner, RunnerUnavailable
from modal_service.url_policy import UrlPolicyError, check_request_urls

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

CALL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
MAX_DEADLINE_AHEAD = timedelta(hours=24)
_MAX_ERRORS_SHOWN = 20

CallId = Annotated[str, Path(pattern=CALL_ID_PATTERN)]


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.runner
    return runner


def _settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


async def _read_bounded(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "payload_too_large", f"the request body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise Problem(413, "payload_too_large", f"the request body exceeds {limit} bytes")
    return bytes(body)


def _validation_errors(error: ValidationError) -> list[dict[str, Any]]:
    # Location and message only: the offending input may be a URL with a signature in it.
    return [
        {"loc": ".".join(str(part) for part in item["loc"]), "msg": item["msg"]}
        for item in error.errors(include_url=False, include_input=False)[:_MAX_ERRORS_SHOWN]
    ]


def parse_job_request(raw: bytes, settings: ServiceSettings) -> CreateJobRequest:
    """Validate a submitted body completely, or raise a :class:`Problem` saying why."""
    if contains_aws_credentials(raw.decode("utf-8", errors="replace")):
        raise Problem(
            422, "credentials_refused", "the request looks like it carries AWS credentials"
        )
    try:
        job = CreateJobRequest.model_validate_json(raw)
    except ValidationError as error:
        raise Problem(
            422, "invalid_request", "the job request is invalid", errors=_validation_errors(error)
        ) from error
    try:
        check_request_urls(job, allow_loopback_http=settings.allow_loopback_http)
    except UrlPolicyError as error:
        raise Problem(422, "url_refused", str(error)) from error
    if job.deadline.tzinfo is None:
        raise Problem(422, "invalid_request", "deadline must carry a UTC offset")
    now = datetime.now(UTC)
    if job.deadline <= now:
        raise Problem(422, "deadline_passed", "the job's deadline has already passed")
    if job.deadline - now > MAX_DEADLINE_AHEAD:
        raise Problem(422, "invalid_request", "the deadline is more than 24 hours away")
    return job


@router.post("", status_code=202, response_model=CreateJobResponse)
async def create_job(
    request: Request,
    runner: Annotated[JobRunner, Depends(_runner)],
    settings: Annotated[ServiceSettings, Depends(_settings)],
) -> CreateJobResponse:
    """Validate the job and start it; answers with the call id before any work is done."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Problem(415, "unsupported_media_type", "send the job as application/json")
    job = parse_job_request(await _read_bounded(request, settings.max_body_bytes), settings)
    try:
        call_id = await run_in_threadpool(runner.submit, job)
    except RunnerUnavailable as error:
        raise Problem(503, "runner_unavailable", str(error)) from error
    return CreateJobResponse(job_id=job.job_id, call_id=call_id)


@router.get("/{call_id}", response_model=JobStatusResponse)
async def get_job(
    call_id: CallId, runner: Annotated[JobRunner, Depends(_runner)]
) -> JobStatusResponse:
    """Where the call stands: running, succeeded (with the result), failed, cancelled, expired."""
    return await _ask(runner.status, call_id)


@router.delete("/{call_id}", status_code=202, response_model=JobStatusResponse)
async def cancel_job(
    call_id: CallId, runner: Annotated[JobRunner, Depends(_runner)]
) -> JobStatusResponse:
    """Ask the call to stop (idempotent); a call already final is reported as it ended."""
    return await _ask(runner.cancel, call_id)


async def _ask(operation: Any, call_id: str) -> JobStatusResponse:
    if not re.fullmatch(CALL_ID_PATTERN, call_id):
        raise Problem(404, "not_found", "no such call")
    try:
        status: JobStatusResponse = await run_in_threadpool(operation, call_id)
    except CallNotFound as error:
        raise Problem(404, "not_found", "no such call") from error
    except RunnerUnavailable as error:
        raise Problem(503, "runner_unavailable", str(error)) from error
    return status
