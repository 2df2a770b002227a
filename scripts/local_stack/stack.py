"""Bring the local AWS stack up and down.

Parts, each its own process on 127.0.0.1 with a free port:

- ``s3``: nanio, a strict S3 emulator that checks SigV4 signatures and expiry on every request,
  pre-signed or not, and refuses anonymous ones (LocalStack's S3 lets anonymous GETs through).
- ``aws``: moto server for DynamoDB (real conditional writes), SQS, Step Functions (executing
  definitions, reading S3 through the strict emulator) and Secrets Manager.
- ``jwks``: the development identity provider's JWKS.

What persists in the state directory across ``down``/``up``: S3 objects, JWT keys, S3 and secret
values. moto keeps DynamoDB, SQS and Step Functions in memory: those start empty each time.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import processes
from .config import ResourceConfig, StackInfo

if TYPE_CHECKING:
    from botocore.client import BaseClient

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "stack"


def default_state_dir() -> Path:
    """``$LOCAL_STACK_STATE_DIR`` when set (tests, parallel stacks), else ``.local/stack``."""
    return Path(os.environ.get("LOCAL_STACK_STATE_DIR", DEFAULT_STATE_DIR))


STACK_FILE = "stack.json"


def _load_or_create_json(path: Path, create: dict[str, Any]) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    path.touch(mode=0o600)
    path.write_text(json.dumps(create, indent=2))
    return create


def _webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class LocalStack:
    """The local stack rooted at ``state_dir`` (git-ignored; default ``.local/stack``)."""

    def __init__(self, state_dir: Path | None = None, config: ResourceConfig | None = None) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.config = config or ResourceConfig.load()

    # -- lifecycle ----------------------------------------------------------------------------

    def up(self, timeout_s: float = 30.0) -> StackInfo:
        """Start every part, wait for health, provision resources; idempotent when running."""
        running = self.info()
        if running is not None:
            return running
        self.state_dir.mkdir(parents=True, exist_ok=True)
        processes.stop_all(self.state_dir)  # leftovers of a crashed run, if any
        s3_credentials = _load_or_create_json(
            self.state_dir / "s3-credentials.json",
            {"access_key": "local-" + secrets.token_hex(6), "secret_key": secrets.token_hex(20)},
        )
        ports = {part: processes.free_port() for part in ("s3", "aws", "jwks")}
        s3_endpoint = f"http://127.0.0.1:{ports['s3']}"
        aws_endpoint = f"http://127.0.0.1:{ports['aws']}"
        issuer = f"http://127.0.0.1:{ports['jwks']}"
        python = sys.executable
        started = {
            "s3": processes.start(
                "s3",
                [
                    str(Path(python).with_name("nanio")),
                    "serve",
                    "--data-dir",
                    str(self.state_dir / "s3"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["s3"]),
                ],
                state_dir=self.state_dir,
                env={
                    "NANIO_ACCESS_KEY": s3_credentials["access_key"],
                    "NANIO_SECRET_KEY": s3_credentials["secret_key"],
                },
            ),
            "aws": processes.start(
                "aws",
                [python, "-m", "scripts.local_stack.moto_server", "--port", str(ports["aws"])],
                state_dir=self.state_dir,
                cwd=REPO_ROOT,
                env={
                    "LOCAL_S3_ENDPOINT": s3_endpoint,
                    "LOCAL_S3_ACCESS_KEY": s3_credentials["access_key"],
                    "LOCAL_S3_SECRET_KEY": s3_credentials["secret_key"],
                },
            ),
            "jwks": processes.start(
                "jwks",
                [
                    python,
                    "-m",
                    "scripts.local_stack.jwks_server",
                    "--state-dir",
                    str(self.state_dir),
                    "--port",
                    str(ports["jwks"]),
                ],
                state_dir=self.state_dir,
                cwd=REPO_ROOT,
            ),
        }
        info = StackInfo(
            state_dir=self.state_dir,
            region=self.config.region,
            s3_endpoint=s3_endpoint,
            s3_access_key=s3_credentials["access_key"],
            s3_secret_key=s3_credentials["secret_key"],
            aws_endpoint=aws_endpoint,
            issuer=issuer,
            jwks_url=f"{issuer}/.well-known/jwks.json",
            audience=self.config.jwt.audience,
            tenant_claim=self.config.jwt.tenant_claim,
            buckets=dict(self.config.buckets),
            tables={key: table.name for key, table in self.config.tables.items()},
            queues={},
            secrets={},
            tenants=dict(self.config.tenants),
            pids={name: process.pid for name, process in started.items()},
        )
        checks = {
            "s3": lambda: bool(info.s3_client().list_buckets()),
            "aws": lambda: processes.http_ok(f"{aws_endpoint}/moto-api/data.json"),
            "jwks": lambda: processes.http_ok(f"{issuer}/health"),
        }
        try:
            for name, process in started.items():
                processes.wait_until_healthy(
                    name, process, checks[name], state_dir=self.state_dir, timeout_s=timeout_s
                )
            info = self._provision(info)
        except BaseException:
            processes.stop_all(self.state_dir)
            raise
        (self.state_dir / STACK_FILE).write_text(info.model_dump_json(indent=2))
        return info

    def down(self) -> list[str]:
        """Stop every process this stack started (by PID); keep the state directory's data."""
        (self.state_dir / STACK_FILE).unlink(missing_ok=True)
        (self.state_dir / "product.json").unlink(missing_ok=True)
        return processes.stop_all(self.state_dir)

    def info(self) -> StackInfo | None:
        """The running stack's endpoints, or ``None`` when it is not (fully) running."""
        if not (self.state_dir / STACK_FILE).exists():
            return None
        info = StackInfo.read(self.state_dir)
        if all(processes.is_running(pid) for pid in info.pids.values()):
            return info
        return None

    # -- provisioning -------------------------------------------------------------------------

    def _provision(self, info: StackInfo) -> StackInfo:
        s3 = info.s3_client()
        existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
        for bucket in self.config.buckets.values():
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)
        self._create_tables(info.client("dynamodb"))
        queues = self._create_queues(info.client("sqs"))
        stored = self._create_secrets(info.client("secretsmanager"))
        return info.model_copy(update={"queues": queues, "secrets": stored})

    def _create_tables(self, dynamodb: BaseClient) -> None:
        for table in self.config.tables.values():
            keys = {table.hash_key: "HASH"} | (
                {table.range_key: "RANGE"} if table.range_key else {}
            )
            attributes = set(keys)
            indexes = []
            for index_name, index in table.indexes.items():
                index_keys = [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
                attributes.add(index.hash_key)
                if index.range_key:
                    index_keys.append({"AttributeName": index.range_key, "KeyType": "RANGE"})
                    attributes.add(index.range_key)
                indexes.append(
                    {
                        "IndexName": index_name,
                        "KeySchema": index_keys,
                        "Projection": {"ProjectionType": "ALL"},
                    }
                )
            dynamodb.create_table(
                TableName=table.name,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys.items()],
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)
                ],
                **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
            )
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={
                        "Enabled": True,
                        "AttributeName": table.ttl_attribute,
                    },
                )

    def _create_queues(self, sqs: BaseClient) -> dict[str, str]:
        urls: dict[str, str] = {}
        # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
        ordered = sorted(
            self.config.queues.items(), key=lambda item: item[1].dead_letter is not None
        )
        arns: dict[str, str] = {}
        for key, queue in ordered:
            attributes: dict[str, str] = {}
            if queue.dead_letter:
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": arns[queue.dead_letter],
                        "maxReceiveCount": queue.max_receive_count,
                    }
                )
            url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
            urls[key] = url
            arns[queue.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        return urls

    def _create_secrets(self, secretsmanager: BaseClient) -> dict[str, str]:
        # Values persist in the state directory so tokens and webhook secrets survive a restart.
        values = _load_or_create_json(self.state_dir / "secrets.json", {})
        arns: dict[str, str] = {}
        for key, secret in self.config.secrets.items():
            if key not in values:
                if secret.generate_per_tenant:
                    values[key] = {tenant: _webhook_secret() for tenant in self.config.tenants}
                else:
                    values[key] = {field: secrets.token_urlsafe(24) for field in secret.generate}
            arns[key] = secretsmanager.create_secret(
                Name=secret.name, SecretString=json.dumps(values[key])
            )["ARN"]
        (self.state_dir / "secrets.json").write_text(json.dumps(values, indent=2))
        return arns
