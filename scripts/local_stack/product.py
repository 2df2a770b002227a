"""The product on top of the local AWS stack: the internal API (with local worker processes), the
API gateway in front of the real Lambda handlers, and the batch state machine with its queue's
event source.

Three more processes, started after :class:`~scripts.local_stack.LocalStack` and recorded in the
same PID file, so ``down`` stops them too:

- ``internal-api``: ``modal_service.api`` under uvicorn in local mode, demanding the Modal
  proxy-auth headers (the token lives in the stack's Secrets Manager, as in AWS), running jobs in
  worker subprocesses whose environment holds no AWS variable;
- ``gateway``: :mod:`scripts.local_stack.gateway` under uvicorn, its handlers configured through
  the same environment variables Terraform sets on the Lambdas, so caller webhooks get the
  production address policy (a loopback receiver is refused; see :func:`start_gateway` for a
  gateway that admits one);
- ``batch-events``: :mod:`scripts.local_stack.sqs_event_source`, delivering the batch queue to
  the real ``batch_submit`` handler (configured the same way).

The batch state machine is the Terraform template rendered with Terraform's defaults (but a
concurrency that fits two local workers) and created in the local Step Functions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from aws.step_functions.render import render_definition

from . import processes, tls
from .config import (
    LOOPBACK_WEBHOOK_NETWORKS,
    WEBHOOK_CA_FILE_ENV,
    WEBHOOK_NETWORKS_ENV,
    StackInfo,
)
from .sqs_event_source import READY_LINE
from .stack import REPO_ROOT

PRODUCT_FILE = "product.json"
STARTUP_TIMEOUT_S = 60.0
PARTS = ("internal-api", "gateway", "batch-events")
BATCH_ROLE_ARN = "arn:aws:iam::123456789012:role/multitalk-local-batch"
BATCH_RESULTS_PREFIX = "batch-results/"
BATCH_HANDLER = "aws.step_functions.handlers.batch_submit.handler"
LOCAL_MAX_VIDEO_LENGTH_S = 15.0
DEFAULT_SPEED = "quality"
"""Terraform's ``default_speed`` default (tests/terraform/test_local_parity.py holds them equal)."""


class ProductInfo(BaseModel):
    """Where the running product answers (``<state_dir>/product.json``)."""

    model_config = ConfigDict(extra="forbid")

    api_url: str
    internal_api_url: str
    state_machine_arn: str

    @classmethod
    def read(cls, state_dir: Path) -> ProductInfo | None:
        path = state_dir / PRODUCT_FILE
        return cls.model_validate_json(path.read_text()) if path.exists() else None


def lambda_environment(
    info: StackInfo, api_url: str, internal_api_url: str, *, loopback_webhooks: bool = False
) -> dict[str, str]:
    """What Terraform would set on the proxy, callback and reconciler Lambdas, for this stack.

    Caller webhooks get the production address policy (public addresses, ports 443 and 8443,
    publicly trusted TLS) unless ``loopback_webhooks`` asks for more: then the gateway also
    admits https receivers on loopback, on any port, with certificates from the stack's CA.
    Only what needs a local receiver (a test, a developer's listener) asks for that.
    """
    tenants = {name: tenant.model_dump() for name, tenant in info.tenants.items()}
    environment = {
        **info.env(),
        "JOBS_TABLE_NAME": info.tables["jobs"],
        "IDEMPOTENCY_TABLE_NAME": info.tables["idempotency"],
        "USAGE_TABLE_NAME": info.tables["usage"],
        # Generous: one test session submits hundreds of jobs for acme, many never settled (the
        # integration tests play a worker that never finishes). The quota and fairness tests
        # set tight limits and few slots on stacks of their own.
        "TENANT_LIMITS_DEFAULT": json.dumps({"max_active": 1000, "per_minute": 1000}),
        "GPU_SLOTS": "100",
        "TENANTS_CONFIG": json.dumps(tenants),
        "TENANT_WEBHOOK_SECRETS_ARN": info.secrets["tenant_webhook_secrets"],
        "JWT_ISSUER": info.issuer,
        "JWT_AUDIENCE": info.audience,
        "JWT_JWKS_URL": info.jwks_url,
        "JWT_TENANT_CLAIM": info.tenant_claim,
        "MODAL_API_URL": internal_api_url,
        "MODAL_PROXY_TOKEN_SECRET_ARN": info.secrets["modal_proxy_token"],
        "CALLBACK_BASE_URL": api_url,
        # The local stack renders with the tiny presets; a deployment allows the 14B models
        # whose weights it downloaded (Terraform's allowed_models, multitalk-14b by default).
        "ALLOWED_MODELS": "tiny,tiny-infinitetalk,multitalk-14b,infinitetalk",
        "DEFAULT_SPEED": DEFAULT_SPEED,
        # 15 s, not a deployment's 10 minutes: the input corpus's too-long cases are written
        # for it (scripts/corpus/audio.py CORPUS_MAX_S), and tiny renders stay short.
        "MAX_VIDEO_LENGTH_S": str(LOCAL_MAX_VIDEO_LENGTH_S),
        "POWERTOOLS_SERVICE_NAME": "multitalk-local",
        "POWERTOOLS_METRICS_NAMESPACE": "MultiTalkLocal",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if loopback_webhooks:
        # Read by the gateway (scripts.local_stack.gateway.create_app), never by the handlers.
        environment[WEBHOOK_NETWORKS_ENV] = ",".join(LOOPBACK_WEBHOOK_NETWORKS)
        environment[WEBHOOK_CA_FILE_ENV] = str(tls.ensure_ca(info.state_dir))
    return environment


def internal_api_environment(info: StackInfo) -> dict[str, str]:
    """Local mode, the proxy token the Lambda will present, and no AWS variable at all."""
    token = json.loads((info.state_dir / "secrets.json").read_text())["modal_proxy_token"]
    return {
        "MODAL_SERVICE_MODE": "local",
        "MODAL_SERVICE_PROXY_KEY": token["token_id"],
        "MODAL_SERVICE_PROXY_SECRET": token["token_secret"],
        "MODAL_SERVICE_MAX_LOCAL_WORKERS": "2",
        "MULTITALK_PROGRESS_EVERY": "0.5",
    }


def up(info: StackInfo) -> ProductInfo:
    """Start the internal API and the gateway against a running stack (idempotent)."""
    running = ProductInfo.read(info.state_dir)
    pids = processes.read_pids(info.state_dir)
    if running and all(name in pids and processes.is_running(pids[name]) for name in PARTS):
        return running
    processes.stop_some(info.state_dir, [name for name in PARTS if name in pids])  # half-started
    ports = {part: processes.free_port() for part in ("internal-api", "gateway")}
    product = ProductInfo(
        api_url=f"http://127.0.0.1:{ports['gateway']}",
        internal_api_url=f"http://127.0.0.1:{ports['internal-api']}",
        state_machine_arn=create_batch_state_machine(info),
    )
    lambda_env = lambda_environment(info, product.api_url, product.internal_api_url)
    events_log_start = processes.log_size(info.state_dir, "batch-events")
    # The internal API must not inherit AWS variables: its workers would see them.
    clean_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("AWS_")}
    started = {
        "internal-api": processes.start(
            "internal-api",
            _uvicorn("modal_service.api:create_app_from_env", ports["internal-api"]),
            state_dir=info.state_dir,
            cwd=REPO_ROOT,
            env=internal_api_environment(info),
            base_env=clean_env,
        ),
        "gateway": processes.start(
            "gateway",
            _uvicorn("scripts.local_stack.gateway:create_app", ports["gateway"]),
            state_dir=info.state_dir,
            cwd=REPO_ROOT,
            env=lambda_env,
        ),
        "batch-events": processes.start(
            "batch-events",
            [
                sys.executable,
                "-m",
                "scripts.local_stack.sqs_event_source",
                "--queue-url",
                info.queues["batch_submit"],
                "--handler",
                BATCH_HANDLER,
            ],
            state_dir=info.state_dir,
            cwd=REPO_ROOT,
            env=lambda_env,
        ),
    }
    checks = {
        "internal-api": lambda: processes.http_ok(f"{product.internal_api_url}/v1/health"),
        "gateway": lambda: processes.http_ok(f"{product.api_url}/health"),
        # It says so (in this run's part of its log) once it reached the queue and imported
        # the handler.
        "batch-events": lambda: (
            READY_LINE in processes.log_text(info.state_dir, "batch-events", events_log_start)
        ),
    }
    try:
        for name, check in checks.items():
            processes.wait_until_healthy(
                name, started[name], check, state_dir=info.state_dir, timeout_s=STARTUP_TIMEOUT_S
            )
    except BaseException:
        processes.stop_some(info.state_dir, list(started))
        raise
    (info.state_dir / PRODUCT_FILE).write_text(product.model_dump_json(indent=2))
    return product


def start_gateway(
    info: StackInfo,
    product: ProductInfo,
    name: str,
    overrides: dict[str, str],
    *,
    loopback_webhooks: bool = False,
) -> str:
    """Another gateway in front of the same Lambdas, internal API and tables, with some of the
    Lambdas' or the gateway's settings changed (``CALLBACK_BASE_URL``,
    ``LOCAL_GATEWAY_THROTTLING``, ...): what a second stage or a misconfiguration looks like.
    ``loopback_webhooks`` widens its webhook policy to receivers on this machine (see
    :func:`lambda_environment`); jobs submitted through it call back to it, so their webhooks are
    sent under that policy. Recorded in the PID file, so ``down`` stops it; returns its URL."""
    port = processes.free_port()
    url = f"http://127.0.0.1:{port}"
    environment = lambda_environment(
        info, url, product.internal_api_url, loopback_webhooks=loopback_webhooks
    )
    started = processes.start(
        name,
        _uvicorn("scripts.local_stack.gateway:create_app", port),
        state_dir=info.state_dir,
        cwd=REPO_ROOT,
        env={**environment, **overrides},
    )
    try:
        processes.wait_until_healthy(
            name,
            started,
            lambda: processes.http_ok(f"{url}/health"),
            state_dir=info.state_dir,
            timeout_s=STARTUP_TIMEOUT_S,
        )
    except BaseException:
        processes.stop_some(info.state_dir, [name])
        raise
    return url


def create_batch_state_machine(info: StackInfo) -> str:
    """The batch definition rendered from the Terraform template, in the local Step Functions."""
    definition = render_definition(
        {
            "submit_queue_url": info.queues["batch_submit"],
            "results_bucket": info.buckets["data"],
            "results_prefix": BATCH_RESULTS_PREFIX,
            "max_concurrency": 2,  # the local worker processes
            "tolerated_failure_percentage": 25,
            "heartbeat_seconds": 120,
            "task_timeout_seconds": 1800,
        }
    )
    return info.client("stepfunctions").create_state_machine(
        name=f"multitalk-local-batch-{os.urandom(3).hex()}",
        definition=json.dumps(definition),
        roleArn=BATCH_ROLE_ARN,
    )["stateMachineArn"]


def _uvicorn(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
