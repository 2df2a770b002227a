"""The one submit path, shared by ``POST /generate-video`` and the batch submit handler.

Signature::

    submit_job(
        request: GenerateVideoRequest,          # aws.lambda_proxy.api.models (validated)
        tenant: TenantContext,                  # aws.lambda_proxy.auth.models
        *,
        idempotency_key: str | None = None,     # same key + same tenant -> same job
        task_token: str | None = None,          # batch: Step Functions task token
        batch_item: BatchItem | None = None,    # batch: execution ARN + item reference
        services: Services | None = None,       # default: the container's services
    ) -> JobRecord                              # aws.lambda_proxy.jobs.models

Every failure raises :class:`~aws.lambda_proxy.jobs.exceptions.SubmitError` with a stable
``code`` and an HTTP-style ``status`` (4xx: the request is at fault, do not retry as is; 5xx:
``retryable`` may be true). When ``job_id`` is set on the error, a job record exists and is
already ``failed`` with the same code (e.g. ``modal_unavailable``), and the caller's webhook was
sent; Step Functions is *not* told by this path: the batch handler reports a ``SubmitError``
with ``SendTaskFailure`` (or by failing its own task) itself, in every case.

Codes: ``s3_url_invalid``, ``s3_location_forbidden``, ``input_not_found``,
``input_size_refused``, ``unsupported_format``, ``audio_invalid``, ``image_invalid``,
``video_invalid`` (an input's first bytes are no audio / no image / no video),
``video_too_large``, ``video_too_long`` (a source video over the deployment's limits),
``image_too_small``, ``image_too_large``, ``audio_too_long``, ``decompression_bomb`` (what a
header declares), ``output_exists``, ``reference_image_required``,
``model_not_allowed``, ``video_length_exceeded``, ``webhook_url_refused``,
``webhook_secret_missing``, ``tenant_not_configured``, ``signing_credentials_expiring``,
``s3_unavailable``, ``modal_unavailable``, ``modal_rejected``, ``modal_contract_mismatch``,
``idempotency_key_reused``, ``idempotency_in_progress``, ``idempotency_unavailable``,
``submission_invalid`` (a malformed idempotency key or task token).

Steps: authorize and check every S3 location (``HeadObject``, then the first bytes of each
input by a ranged ``GetObject``: content decides, never the key's extension or
``Content-Type``) -> write the ``queued`` record (task token kept here, never sent to Modal) ->
pre-sign -> ``POST /v1/jobs`` -> store the call id. The record is written before Modal is
called, so an early callback always finds its job.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aws.lambda_proxy.api.models import GenerateVideoRequest
from aws.lambda_proxy.auth.models import TenantContext
from aws.lambda_proxy.config import PublicModel
from aws.lambda_proxy.exceptions import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    ProxyError,
    UpstreamError,
)
from aws.lambda_proxy.idempotency import make_idempotent
from aws.lambda_proxy.jobs.estimate import estimate_at_submit
from aws.lambda_proxy.jobs.exceptions import SubmitError
from aws.lambda_proxy.jobs.models import (
    BatchItem,
    JobFailure,
    JobRecord,
    JobStatus,
    S3Location,
    iso,
    new_job_id,
    utc_now,
)
from aws.lambda_proxy.jobs.settle import settle_job
from aws.lambda_proxy.modal.exceptions import ModalRejectedError, ModalUnavailableError
from aws.lambda_proxy.observability import logger, metrics
from aws.lambda_proxy.storage.objects import check_input, check_output_free
from aws.lambda_proxy.storage.presign import new_callback_secret
from aws.lambda_proxy.storage.s3_url import location, parse_s3_url
from aws.lambda_proxy.tenants import quota
from modal_service.contracts import (
    CallbackTarget,
    CreateJobRequest,
    GenerationParams,
    JobInputs,
    JobOutput,
    PresetName,
)

if TYPE_CHECKING:
    from aws.lambda_proxy.services import Services

OUTPUT_CONTENT_TYPE = "video/mp4"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:/-]{8,128}$"


def submit_job(
    request: GenerateVideoRequest,
    tenant: TenantContext,
    *,
    idempotency_key: str | None = None,
    task_token: str | None = None,
    batch_item: BatchItem | None = None,
    services: Services | None = None,
) -> JobRecord:
    """Create, sign and dispatch one job (see the module docstring for the contract)."""
    if services is None:
        from aws.lambda_proxy.services import get_services

        services = get_services()
    try:
        submission = Submission(
            tenant=tenant,
            request=request,
            task_token=task_token,
            batch_item=batch_item,
            idempotency_key=idempotency_key,
        )
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, error["loc"])) for error in exc.errors())
        raise SubmitError(
            f"invalid submission: {fields}",
            code="submission_invalid",
            status=422,
            title=BadRequestError.title,
        ) from None
    try:
        if idempotency_key is None:
            return _submit(services, submission)
        job_id = _idempotent_submit(services)(submission=submission)
    except IdempotencyValidationError:
        raise SubmitError(
            "this Idempotency-Key was used with a different request body",
            code="idempotency_key_reused",
            status=422,
            title=BadRequestError.title,
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise SubmitError(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_in_progress",
            status=409,
            title=ConflictError.title,
            retryable=True,
        ) from None
    except IdempotencyPersistenceLayerError:
        raise SubmitError(
            "the idempotency store is unavailable",
            code="idempotency_unavailable",
            status=503,
            title=UpstreamError.title,
            retryable=True,
        ) from None
    return services.jobs.get(job_id)


class Submission(BaseModel):
    """Everything one submission carries; the idempotency key hashes ``[tenant, key]`` and the
    stored record validates ``request``, so a reused key with another body is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: TenantContext
    request: GenerateVideoRequest
    task_token: str | None = Field(default=None, max_length=8192, repr=False)
    batch_item: BatchItem | None = None
    idempotency_key: str | None = Field(default=None, pattern=IDEMPOTENCY_KEY_PATTERN)


@cache
def _idempotent_submit(services: Services) -> Any:
    """The powertools-idempotent variant of :func:`_submit`, one per service graph."""

    def submit_once(submission: Submission) -> str:
        return _submit(services, Submission.model_validate(submission)).job_id

    return make_idempotent(
        services,
        submit_once,
        data_keyword_argument="submission",
        key_jmespath="[tenant.tenant_id, idempotency_key]",
        validation_jmespath="request",
        expires_after_seconds=services.settings.idempotency_ttl_s,
    )


def _submit(services: Services, submission: Submission) -> JobRecord:
    try:
        job = _prepare(services, submission)
    except SubmitError:
        raise
    except ProxyError as exc:
        metrics.add_metric(name="SubmitRefused", unit=MetricUnit.Count, value=1)
        raise SubmitError(exc.message, code=exc.code, status=exc.status, title=exc.title) from None
    # Last check, first write: the record is written with the tenant's count, or not at all.
    quota.admit_and_create(services, job, fair=submission.task_token is not None)
    logger.info("job created", extra={"job_id": job.job_id, "tenant_id": job.tenant_id})
    try:
        call_id = _dispatch(services, job)
    except (ModalUnavailableError, ModalRejectedError, ProxyError) as exc:
        failure = JobFailure(code=exc.code, message=exc.message, retryable=exc.status >= 500)
        settle_job(services, job.job_id, JobStatus.FAILED, error=failure, notify_task=False)
        raise SubmitError(
            f"the job could not be dispatched: {exc.message}",
            code=exc.code,
            status=exc.status,
            title=exc.title,
            job_id=job.job_id,
            retryable=exc.status >= 500,
        ) from None
    services.jobs.set_call_id(job.job_id, call_id)
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    return job.model_copy(update={"call_id": call_id})


def _prepare(services: Services, submission: Submission) -> JobRecord:
    """Authorize, check and build the ``queued`` record (nothing written yet)."""
    settings = services.settings
    tenant, request = submission.tenant, submission.request
    locations = services.tenant(tenant.tenant_id)
    if locations is None:
        raise ForbiddenError(
            f"tenant {tenant.tenant_id!r} is not configured", code="tenant_not_configured"
        )
    options = request.options
    if options.model not in settings.allowed_models:
        raise BadRequestError(
            f"model {options.model!r} is not enabled here; allowed: {settings.allowed_models}",
            code="model_not_allowed",
        )
    if options.video_length > settings.max_video_length_s:
        raise BadRequestError(
            f"video_length is limited to {settings.max_video_length_s:g} s",
            code="video_length_exceeded",
        )
    if options.webhook_url is not None:
        services.webhook_policy.check(options.webhook_url)
        if services.tenant_webhook_secret(tenant.tenant_id) is None:
            raise BadRequestError(
                "webhooks need a signing secret for the tenant; ask the operator to add one",
                code="webhook_secret_missing",
            )

    audio = [
        parse_s3_url(url, what=f"input.audio_s3_urls[{index}]")
        for index, url in enumerate(request.input.audio_urls)
    ]
    image: S3Location | None = None
    video: S3Location | None = None
    if request.input.video_s3_url is not None:
        # A video replaces the portrait: the tenant's default image is never added to it.
        video = parse_s3_url(request.input.video_s3_url, what="input.video_s3_url")
    else:
        image_url = request.input.reference_image_s3_url or locations.default_reference_image
        if image_url is None:
            raise BadRequestError(
                "input.reference_image_s3_url (or input.video_s3_url) is required (the tenant "
                "has no default image)",
                code="reference_image_required",
            )
        image = parse_s3_url(image_url, what="input.reference_image_s3_url")
    job_id = new_job_id()
    output = _output_location(request, job_id)

    for source in [*audio, *(ref for ref in (image, video) if ref is not None)]:
        locations.check_read(source)
    locations.check_write(output)
    for index, source in enumerate(audio):
        check_input(
            services.s3,
            source,
            kind="audio",
            label=f"audio {index + 1}",
            max_bytes=settings.max_audio_bytes,
            max_audio_s=settings.max_video_length_s,
        )
    if image is not None:
        check_input(
            services.s3,
            image,
            kind="image",
            label="the reference image",
            max_bytes=settings.max_image_bytes,
        )
    if video is not None:
        check_input(
            services.s3,
            video,
            kind="video",
            label="the source video",
            max_bytes=settings.max_video_bytes,
            max_video_s=settings.max_video_s,
        )
    check_output_free(services.s3, output, overwrite=request.output.overwrite)

    params = GenerationParams(
        prompt=request.input.prompt or "",
        resolution=options.resolution,
        max_duration_s=options.video_length,
        speed=options.speed_profile(settings.default_speed),
        audio_type=request.input.audio_type,
        bounding_boxes=request.input.bounding_boxes,
        seed=options.seed,
        sample_steps=options.sample_steps,
        model=gpu_preset(options.model, speakers=len(audio)),
    )
    now = utc_now()
    return JobRecord(
        job_id=job_id,
        tenant_id=tenant.tenant_id,
        status=JobStatus.QUEUED,
        created_at=iso(now),
        updated_at=iso(now),
        deadline=iso(now + timedelta(seconds=settings.job_deadline_s)),
        audio_inputs=audio,
        image_input=image,
        video_input=video,
        output=output,
        params=params,
        webhook_url=options.webhook_url,
        callback_secret=new_callback_secret(),
        estimated_time_s=estimate_at_submit(services, params),
        task_token=submission.task_token,
        batch_item=submission.batch_item,
        expires_at=int((now + timedelta(days=settings.job_ttl_days)).timestamp()),
    )


def gpu_preset(model: PublicModel, *, speakers: int) -> PresetName:
    """The GPU side's preset for a public model: InfiniteTalk has a two-speaker adapter of its
    own, which MultiTalk (one model for both) and the tiny presets do not need."""
    if model == "infinitetalk":
        return "infinitetalk-14b-multi" if speakers == 2 else "infinitetalk-14b"
    return model


def _output_location(request: GenerateVideoRequest, job_id: str) -> S3Location:
    prefix = request.output.s3_prefix
    filename = request.output.filename or f"{job_id}.mp4"
    key = f"{prefix.rstrip('/')}/{filename}" if prefix else filename
    return location(request.output.s3_bucket, key, what="output")


def signed_urls(services: Services, job: JobRecord) -> tuple[JobInputs, JobOutput]:
    """Fresh pre-signed URLs for a job's objects (dispatch and ``job.url_refresh``)."""
    presigner, settings = services.presigner, services.settings
    image, video = job.image_input, job.video_input
    inputs = JobInputs(
        audio_urls=[presigner.get_url(source) for source in job.audio_inputs],
        audio_names=[source.key for source in job.audio_inputs],
        image_url=presigner.get_url(image) if image is not None else None,
        image_name=image.key if image is not None else None,
        video_url=presigner.get_url(video) if video is not None else None,
        video_name=video.key if video is not None else None,
        max_audio_bytes=settings.max_audio_bytes,
        max_image_bytes=settings.max_image_bytes,
        max_video_bytes=settings.max_video_bytes,
        max_audio_s=settings.max_video_length_s,
        max_video_s=settings.max_video_s,
    )
    output = JobOutput(
        put_url=presigner.put_url(job.output, content_type=OUTPUT_CONTENT_TYPE),
        content_type=OUTPUT_CONTENT_TYPE,
    )
    return inputs, output


def _dispatch(services: Services, job: JobRecord) -> str:
    inputs, output = signed_urls(services, job)
    request = CreateJobRequest(
        job_id=job.job_id,
        inputs=inputs,
        output=output,
        params=job.params,
        callback=CallbackTarget(url=services.callback_url(job.job_id), secret=job.callback_secret),
        deadline=datetime.fromisoformat(job.deadline),
    )
    return services.modal.create_job(request).call_id
