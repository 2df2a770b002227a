"""The per-container service graph: settings, AWS clients and feature objects, built once.

Handlers call :func:`get_services`; everything is created lazily on first use so a cold start
pays only for what the invoked handler needs, and reused across invocations (JWKS and secret
caches live here). Tests swap the whole graph with :func:`set_services`, e.g. to inject a
webhook :class:`AddressPolicy` that admits their loopback receiver.

boto3 itself is imported when the first client is made, not with this module: the API
function's cold import and its public routes never load it.
"""

from __future__ import annotations

from functools import cache, cached_property
from typing import TYPE_CHECKING

from aws.lambda_proxy.config import Settings
from aws.lambda_proxy.exceptions import ConfigurationError
from aws.lambda_proxy.jobs.table import JobsTable
from aws.lambda_proxy.storage.policy import TenantLocations
from aws.lambda_proxy.storage.presign import Acceleration, Presigner

if TYPE_CHECKING:
    import ssl

    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from botocore.client import BaseClient
    from botocore.config import Config

    from aws.lambda_proxy.auth.verifier import TokenVerifier
    from aws.lambda_proxy.modal.client import ModalClient, ProxyToken
    from aws.lambda_proxy.tenants.usage_table import UsageTable
    from aws.lambda_proxy.webhooks.address_policy import AddressPolicy
    from aws.lambda_proxy.webhooks.sender import WebhookSender


@cache
def _boto_config(*, s3: bool = False, accelerate: bool = False) -> Config:
    """Every client's retries and timeouts. S3 signs SigV4 always (some regions and SDK paths
    still presign SigV2 by default); ``accelerate`` goes through the accelerate endpoint."""
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10
    )
    if s3:
        config = config.merge(Config(signature_version="s3v4"))
    if accelerate:
        config = config.merge(Config(s3={"use_accelerate_endpoint": True}))
    return config


class Services:
    """Lazily built dependencies of the handlers."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: boto3.session.Session | None = None,
        webhook_policy: AddressPolicy | None = None,
        webhook_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        if session is not None:
            self.session = session
        self._webhook_policy = webhook_policy
        self._webhook_ssl_context = webhook_ssl_context

    # --- AWS clients -------------------------------------------------------------------------

    @cached_property
    def session(self) -> boto3.session.Session:
        import boto3

        return boto3.session.Session()

    def client(self, service: str) -> BaseClient:
        return self.session.client(service, config=_boto_config())

    @cached_property
    def s3(self) -> BaseClient:
        return self.session.client("s3", config=_boto_config(s3=True))

    @cached_property
    def s3_accelerated(self) -> BaseClient:
        """S3 through ``<bucket>.s3-accelerate.amazonaws.com``: signs URLs for the buckets in
        ``s3_accelerated_buckets``."""
        return self.session.client("s3", config=_boto_config(s3=True, accelerate=True))

    @cached_property
    def dynamodb(self) -> BaseClient:
        return self.client("dynamodb")

    @cached_property
    def stepfunctions(self) -> BaseClient:
        return self.client("stepfunctions")

    @cached_property
    def secretsmanager(self) -> BaseClient:
        return self.client("secretsmanager")

    # --- features ----------------------------------------------------------------------------

    @cached_property
    def jobs(self) -> JobsTable:
        return JobsTable(
            self.dynamodb,
            self.settings.jobs_table_name,
            tenant_index=self.settings.jobs_tenant_index,
            active_index=self.settings.jobs_active_index,
            followup_index=self.settings.jobs_followup_index,
        )

    @cached_property
    def usage(self) -> UsageTable:
        """Per-tenant counters: limits, the fair share and ``GET /usage``."""
        from aws.lambda_proxy.tenants.usage_table import UsageTable

        return UsageTable(self.dynamodb, self.settings.usage_table_name)

    @cached_property
    def presigner(self) -> Presigner:
        return Presigner(
            self.s3,
            credentials=self.session.get_credentials,
            get_expires_s=self.settings.presign_get_expires_s,
            put_expires_s=self.settings.presign_put_expires_s,
            min_expires_s=self.settings.presign_min_expires_s,
            acceleration=(
                Acceleration(self.s3_accelerated, frozenset(buckets))
                if (buckets := self.settings.s3_accelerated_buckets)
                else None
            ),
        )

    @cached_property
    def verifier(self) -> TokenVerifier:
        from aws.lambda_proxy.auth.jwks import JwksCache
        from aws.lambda_proxy.auth.verifier import TokenVerifier

        settings = self.settings
        return TokenVerifier(
            JwksCache(
                settings.jwt_jwks_url,
                ttl_s=settings.jwks_cache_ttl_s,
                cooldown_s=settings.jwks_refetch_cooldown_s,
            ),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=settings.jwt_algorithms,
            tenant_claim=settings.jwt_tenant_claim,
            leeway_s=settings.jwt_leeway_s,
            max_age_s=settings.jwt_max_age_s,
        )

    @cached_property
    def _secrets_provider(self) -> SecretsProvider:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=self.secretsmanager)

    def _secret_json(self, arn: str) -> dict[str, str]:
        # Powertools caches the value for ``secrets_cache_ttl_s`` across invocations.
        value = self._secrets_provider.get(
            arn, transform="json", max_age=self.settings.secrets_cache_ttl_s
        )
        if not isinstance(value, dict):
            raise ConfigurationError("a configured secret is not a JSON object")
        return value

    def modal_token(self) -> ProxyToken | None:
        from aws.lambda_proxy.modal.client import ProxyToken

        arn = self.settings.modal_proxy_token_secret_arn
        return ProxyToken.model_validate(self._secret_json(arn)) if arn else None

    def tenant_webhook_secret(self, tenant_id: str) -> str | None:
        arn = self.settings.tenant_webhook_secrets_arn
        return self._secret_json(arn).get(tenant_id) if arn else None

    @cached_property
    def modal(self) -> ModalClient:
        from aws.lambda_proxy.modal.client import ModalClient

        return ModalClient(
            self.settings.modal_api_url,
            token=self.modal_token,
            timeout_s=self.settings.modal_timeout_s,
            max_attempts=self.settings.modal_max_attempts,
            backoff_base_s=self.settings.modal_backoff_base_s,
        )

    @cached_property
    def webhook_policy(self) -> AddressPolicy:
        from aws.lambda_proxy.webhooks.address_policy import AddressPolicy

        return self._webhook_policy or AddressPolicy()

    @cached_property
    def webhooks(self) -> WebhookSender:
        from aws.lambda_proxy.webhooks.sender import WebhookSender

        return WebhookSender(
            self.webhook_policy,
            timeout_s=self.settings.webhook_timeout_s,
            max_attempts=self.settings.webhook_max_attempts,
            backoff_base_s=self.settings.webhook_backoff_base_s,
            ssl_context=self._webhook_ssl_context,
        )

    def tenant(self, tenant_id: str) -> TenantLocations | None:
        config = self.settings.tenants_config.get(tenant_id)
        return TenantLocations(tenant_id, config) if config else None

    def callback_url(self, job_id: str) -> str:
        return f"{self.settings.callback_base_url.rstrip('/')}/callbacks/{job_id}"


_services: Services | None = None


def get_services() -> Services:
    """The container's services, built from the environment on first use."""
    global _services
    if _services is None:
        _services = Services(Settings.from_env())
    return _services


def set_services(services: Services | None) -> None:
    """Replace (or with None, forget) the container's services; for tests and local runs."""
    global _services
    _services = services
