"""Runtime configuration of the proxy Lambdas, read once per container from the environment.

Every setting has exactly one environment variable (the field name in upper case, listed in
:data:`ENV_VARS`); Terraform wires them, and the local stack sets them for tests. Nothing here
is a secret: the Modal proxy token and the tenants' webhook secrets stay in Secrets Manager and
only their ARNs appear in the environment.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from aws.lambda_proxy.exceptions import ConfigurationError
from aws.lambda_proxy.tenants.limits import TenantLimits
from modal_service.contracts import SpeedProfile
from modal_service.video_rules import MAX_VIDEO_BYTES, MAX_VIDEO_S

_S3_PREFIX = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([A-Za-z0-9!_.*'()/=+,@-]*/)?")
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ACCELERATABLE_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")

PublicModel = Literal["multitalk-14b", "infinitetalk", "tiny", "tiny-infinitetalk"]
"""The models a caller names in ``options.model`` and a deployment lists in ``allowed_models``.
The submit path turns each into a GPU preset (``infinitetalk`` becomes ``infinitetalk-14b``, or
``infinitetalk-14b-multi`` for two speakers); ``tiny*`` render noise, for tests."""
GpuKind = Literal["H100", "H200", "A100-80GB"]
"""GPU kinds the job estimates have figures for (Modal's names)."""
GPUS_PER_CONTAINER = (1, 2, 4, 8)
MODEL_ALIASES: dict[str, PublicModel] = {"infinitetalk-14b": "infinitetalk"}
"""Other names accepted for a public model (the GPU preset's name)."""


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class TenantConfig(BaseModel):
    """Where one tenant may read inputs from and write outputs to (``s3://bucket/prefix/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read: list[str] = Field(min_length=1, max_length=20)
    write: list[str] = Field(min_length=1, max_length=20)
    default_reference_image: str | None = None
    """Used when a request names no reference image (the seed API makes it optional)."""
    limits: TenantLimits | None = None
    """This tenant's limits; None: the deployment's ``tenant_limits_default``."""

    @field_validator("read", "write")
    @classmethod
    def _prefixes(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            if not _S3_PREFIX.fullmatch(prefix) or "/../" in prefix or "/./" in prefix:
                raise ValueError(f"{prefix!r} is not an s3://bucket/prefix/ location ending in /")
        return prefixes


class Settings(BaseModel):
    """All settings; ``Settings.from_env()`` builds it from ``os.environ``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # --- DynamoDB ---------------------------------------------------------------------------
    jobs_table_name: str = Field(min_length=3)
    """One item per job (hash key ``job_id``)."""
    jobs_tenant_index: str = "by-tenant"
    """GSI ``tenant_id`` + ``created_at`` used by ``GET /jobs``."""
    jobs_active_index: str = "active-by-deadline"
    """Sparse GSI ``active`` + ``deadline`` (only unsettled jobs carry ``active``): reconciler."""
    jobs_followup_index: str = "followups"
    """Sparse GSI ``followup_pending`` + ``followup_at``: final jobs that still owe Step
    Functions or the caller a notification (the reconciler's outbox)."""
    idempotency_table_name: str = Field(min_length=3)
    """Powertools idempotency records (hash key ``id``, TTL ``expiration``)."""
    job_ttl_days: int = Field(default=30, ge=1, le=3650)
    idempotency_ttl_s: int = Field(default=3600, ge=60, le=7 * 86400)

    # --- Tenants ----------------------------------------------------------------------------
    tenants_config: dict[Annotated[str, Field(pattern=TENANT_PATTERN)], TenantConfig]
    """JSON: ``{"acme": {"read": ["s3://b/tenants/acme/inputs/"], "write": [...]}}``."""
    tenant_webhook_secrets_arn: str | None = None
    """Secrets Manager JSON ``{tenant: "whsec_..."}``: signs caller webhooks per tenant."""
    usage_table_name: str = Field(min_length=3)
    """Per-tenant usage counters (hash key ``pk``, TTL ``expires_at``)."""
    tenant_limits_default: TenantLimits = TenantLimits()
    """JSON: the limits of tenants that set none of their own."""
    gpu_slots: int = Field(default=10, ge=1, le=10_000)
    """Jobs the GPU side runs at once (Modal's ``max_containers``): what the fair share divides."""
    quota_retry_after_s: int = Field(default=30, ge=1, le=3600)
    """``Retry-After`` when a tenant is at its active-jobs limit or over its fair share."""
    batch_wait_max_s: int = Field(default=300, ge=1, le=900)
    """A batch item over its tenant's limits is sent to its queue again, delayed by what the
    refusal says but at most this: below the item task's heartbeat (SQS allows 900 s)."""

    # --- JWT --------------------------------------------------------------------------------
    jwt_issuer: str = Field(min_length=1)
    jwt_audience: str = Field(min_length=1)
    jwt_jwks_url: str = Field(min_length=8)
    jwt_tenant_claim: str = "tenant_id"
    jwt_algorithms: Annotated[list[str], Field(min_length=1)] = ["RS256", "ES256"]
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    jwt_max_age_s: int = Field(default=86400, ge=60)
    """Tokens issued (``iat``) longer ago than this are refused even if ``exp`` is later."""
    jwks_cache_ttl_s: int = Field(default=300, ge=10, le=86400)
    jwks_refetch_cooldown_s: int = Field(default=30, ge=1, le=3600)
    """An unknown ``kid`` refetches the JWKS at most this often (defends against kid floods)."""

    # --- Modal internal API -----------------------------------------------------------------
    modal_api_url: str = Field(min_length=8)
    modal_proxy_token_secret_arn: str | None = None
    """Secrets Manager JSON ``{"token_id", "token_secret"}`` sent as Modal-Key/Modal-Secret."""
    # Defaults keep the worst case (3 x 5 s + backoff) inside API Gateway's 30 s together with a
    # caller webhook for the failure (3 x 3 s + backoff).
    modal_timeout_s: float = Field(default=5.0, gt=0, le=60)
    modal_max_attempts: int = Field(default=3, ge=1, le=10)
    modal_backoff_base_s: float = Field(default=0.25, ge=0, le=10)

    # --- Callbacks (Modal -> AWS) -------------------------------------------------------------
    callback_base_url: str = Field(min_length=8)
    """Public base URL of the API; the worker posts to ``{base}/callbacks/{job_id}``."""
    callback_tolerance_s: int = Field(default=300, ge=10, le=3600)

    # --- Caller webhooks (AWS -> caller) ------------------------------------------------------
    webhook_max_attempts: int = Field(default=3, ge=1, le=10)
    webhook_timeout_s: float = Field(default=3.0, gt=0, le=30)
    webhook_backoff_base_s: float = Field(default=0.5, ge=0, le=30)

    # --- Pre-signing and limits ---------------------------------------------------------------
    presign_get_expires_s: int = Field(default=900, ge=60, le=7 * 86400)
    presign_put_expires_s: int = Field(default=3600, ge=60, le=7 * 86400)
    presign_min_expires_s: int = Field(default=120, ge=30, le=3600)
    """Refuse to sign when the signing credentials have less life left than this."""
    s3_accelerated_buckets: list[str] = []
    """Buckets with S3 Transfer Acceleration on (Terraform ``s3_transfer_acceleration``), comma
    separated: the GPU side's URLs for their objects are signed for
    ``<bucket>.s3-accelerate.amazonaws.com``; other buckets keep the regional endpoint."""
    max_audio_bytes: int = Field(default=100 * 1024 * 1024, gt=0, le=1024**3)
    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0, le=200 * 1024**2)
    max_video_length_s: float = Field(default=600.0, gt=0, le=600)
    """The longest video a job may ask for (``video_length``) and the longest audio it may give:
    10 minutes, what InfiniteTalk renders without drift. The request's own default stays 15 s."""
    max_video_bytes: int = Field(default=MAX_VIDEO_BYTES, gt=0, le=8 * 1024**3)
    """The largest source video (dubbing) a job may name; bigger is ``video_too_large``."""
    max_video_s: float = Field(default=MAX_VIDEO_S, gt=0, le=MAX_VIDEO_S)
    """The longest source video; longer is ``video_too_long`` (a shorter one loops, so this
    limits what is read, not the output, which ``max_video_length_s`` limits)."""
    allowed_models: Annotated[list[PublicModel], Field(min_length=1)] = ["multitalk-14b"]
    default_speed: SpeedProfile = "quality"
    """The speed profile of jobs that name none (``options.speed``)."""
    job_deadline_s: int = Field(default=3600, ge=60, le=86400)
    """How long a job may run before the reconciler settles it."""
    reconcile_grace_s: int = Field(default=120, ge=0, le=3600)
    silent_job_s: int = Field(default=600, ge=60, le=86400)
    """An unsettled job with no update for this long is checked with Modal before its deadline
    (a worker that died, or a final callback that never arrived)."""
    secrets_cache_ttl_s: int = Field(default=300, ge=0, le=86400)

    # --- The GPU deployment, for job estimates (must match the Modal deploy's settings) ------
    gpu_kind: GpuKind = "H100"
    """The GPU the estimates assume: the first of the deploy's ``MULTITALK_GPUS``."""
    gpus_per_container: int = 1
    """``MULTITALK_GPUS_PER_CONTAINER``: the GPUs one clip's forward passes are split across."""
    warm_containers: int = Field(default=0, ge=0, le=1000)
    """``MULTITALK_MIN_CONTAINERS``: containers kept loaded, so a job that finds one free does
    not wait for a cold start."""

    @field_validator("jwt_algorithms", "s3_accelerated_buckets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _csv(value)

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _public_model_names(cls, value: object) -> object:
        names = _csv(value)
        if isinstance(names, list):
            return [MODEL_ALIASES.get(name, name) for name in names]
        return names

    @field_validator("tenants_config", "tenant_limits_default", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @field_validator("gpus_per_container")
    @classmethod
    def _split_the_heads(cls, count: int) -> int:
        # The estimates' speed-ups are for Ulysses splits of the 40 heads that the benchmark
        # arithmetic covers (scripts/bench/parallel_arithmetic.py).
        if count not in GPUS_PER_CONTAINER:
            raise ValueError(f"must be one of {GPUS_PER_CONTAINER}")
        return count

    @field_validator("s3_accelerated_buckets")
    @classmethod
    def _acceleratable(cls, buckets: list[str]) -> list[str]:
        # The accelerate endpoint is virtual-host only, and its wildcard certificate does not
        # cover a dotted name (botocore refuses to sign one for it, too).
        for bucket in buckets:
            if not _ACCELERATABLE_BUCKET.fullmatch(bucket):
                raise ValueError(
                    f"{bucket!r} cannot use S3 Transfer Acceleration: it needs a bucket name of "
                    "3-63 lower-case letters, digits and hyphens (no dots)"
                )
        return buckets

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        refused = set(algorithms) - {"RS256", "ES256"}
        if refused:
            raise ValueError(f"only RS256 and ES256 are allowed, not {sorted(refused)}")
        return algorithms

    @model_validator(mode="after")
    def _warm_within_the_slots(self) -> Settings:
        if self.warm_containers > self.gpu_slots:
            raise ValueError(
                f"warm_containers ({self.warm_containers}) is more than gpu_slots "
                f"({self.gpu_slots}): MULTITALK_MIN_CONTAINERS above MULTITALK_MAX_GPU_CONTAINERS"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {name: environ[var] for name, var in ENV_VARS.items() if var in environ}
        try:
            return cls.model_validate(values)
        except (ValidationError, json.JSONDecodeError) as exc:
            # Names only: values may be long JSON and are never secrets, but keep logs short.
            raise ConfigurationError(f"invalid Lambda configuration: {exc}") from None


ENV_VARS: dict[str, str] = {name: name.upper() for name in Settings.model_fields}
"""Field name -> environment variable name (always the upper-case field name)."""
