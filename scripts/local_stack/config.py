"""The one config the local stack provisions from, and what a running stack tells its users.

``resources.json`` names every bucket, table, queue, secret and tenant; :class:`StackInfo` is the
``stack.json`` a running stack writes into its state directory, read by tests, the demo and the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from botocore.client import BaseClient

RESOURCES_FILE = Path(__file__).with_name("resources.json")

WEBHOOK_NETWORKS_ENV = "LOCAL_WEBHOOK_ALLOWED_NETWORKS"
"""Comma-separated networks the local gateway's webhook policy admits on top of the production
policy. Unset (the default) means the production policy, unchanged."""
WEBHOOK_CA_FILE_ENV = "LOCAL_WEBHOOK_CA_FILE"
"""The CA the widened gateway trusts for webhook receivers (the stack's own, see ``tls``)."""
LOOPBACK_WEBHOOK_NETWORKS = ("127.0.0.0/8",)
"""What a gateway started with ``loopback_webhooks=True`` admits: receivers on this machine."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IndexConfig(_Strict):
    hash_key: str
    range_key: str | None = None


class TableConfig(_Strict):
    name: str
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None
    indexes: dict[str, IndexConfig] = Field(default_factory=dict)


class QueueConfig(_Strict):
    name: str
    dead_letter: str | None = None
    max_receive_count: int = 3


class SecretConfig(_Strict):
    name: str
    generate: list[str] = Field(default_factory=list)
    """Keys of a JSON secret filled with random values at first start."""
    generate_per_tenant: bool = False
    """A JSON secret ``{tenant: whsec_…}`` with one random webhook secret per tenant."""


class TenantConfig(_Strict):
    read: list[str]
    write: list[str]


class JwtConfig(_Strict):
    audience: str
    tenant_claim: str
    scopes: list[str]


class ResourceConfig(_Strict):
    region: str
    buckets: dict[str, str]
    tables: dict[str, TableConfig]
    queues: dict[str, QueueConfig]
    secrets: dict[str, SecretConfig]
    tenants: dict[str, TenantConfig]
    jwt: JwtConfig

    @classmethod
    def load(cls, path: Path = RESOURCES_FILE) -> ResourceConfig:
        return cls.model_validate_json(path.read_text())


class StackInfo(_Strict):
    """Endpoints and names of a running local stack (``<state_dir>/stack.json``)."""

    state_dir: Path
    region: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    aws_endpoint: str
    """moto server: DynamoDB, SQS, Step Functions (executing), Secrets Manager, STS."""
    issuer: str
    jwks_url: str
    audience: str
    tenant_claim: str
    buckets: dict[str, str]
    tables: dict[str, str]
    queues: dict[str, str]
    """Logical queue name -> queue URL."""
    secrets: dict[str, str]
    """Logical secret name -> secret ARN."""
    tenants: dict[str, TenantConfig]
    pids: dict[str, int]

    @classmethod
    def read(cls, state_dir: Path) -> StackInfo:
        return cls.model_validate_json((state_dir / "stack.json").read_text())

    def s3_client(self) -> BaseClient:
        """An S3 client for the strict emulator (SigV4 always: boto3 presigns SigV2 otherwise)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=self.region,
            aws_access_key_id=self.s3_access_key,
            aws_secret_access_key=self.s3_secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def client(self, service: str) -> BaseClient:
        """A boto3 client for ``service`` on this stack (S3 goes to the strict emulator)."""
        if service == "s3":
            return self.s3_client()
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=self.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 (moto accepts any credentials)
        )

    def mint_token(self, tenant: str, scopes: list[str] | tuple[str, ...], **claims: Any) -> str:
        """A development JWT from this stack's issuer (see :mod:`.jwt_issuer`)."""
        from .jwt_issuer import DevIssuer

        issuer = DevIssuer.load(self.state_dir / "jwt", issuer=self.issuer)
        return issuer.mint(
            audience=self.audience,
            tenant_claim=self.tenant_claim,
            tenant=tenant,
            scopes=scopes,
            **claims,
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point the AWS SDK and handlers at this stack.

        Every SDK client honours ``AWS_ENDPOINT_URL_<SERVICE>``; S3 gets the strict emulator
        and its key pair, everything else the moto server.
        """
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            "LOCAL_STACK_STATE_DIR": str(self.state_dir),
        }
