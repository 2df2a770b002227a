"""The local gateway's caller-webhook policy: production by default, loopback only on request.

``lambda_environment`` is what ``product.up`` and ``start_gateway`` hand the gateway process;
``create_app`` is what that process runs. A receiver on loopback is reachable only through a
gateway started with ``loopback_webhooks=True``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws.lambda_proxy import services as services_module
from aws.lambda_proxy.webhooks.address_policy import AddressPolicy
from aws.lambda_proxy.webhooks.exceptions import WebhookUrlRefusedError
from scripts.local_stack.config import WEBHOOK_CA_FILE_ENV, WEBHOOK_NETWORKS_ENV, StackInfo
from scripts.local_stack.gateway import create_app, loopback_webhook_policy
from scripts.local_stack.product import lambda_environment


def stack_info(state_dir: Path) -> StackInfo:
    """A stack description with placeholder endpoints (nothing is contacted)."""
    return StackInfo(
        state_dir=state_dir,
        region="us-east-1",
        s3_endpoint="http://127.0.0.1:1",
        s3_access_key="local",
        s3_secret_key="local",
        aws_endpoint="http://127.0.0.1:2",
        issuer="http://127.0.0.1:3",
        jwks_url="http://127.0.0.1:3/jwks.json",
        audience="multitalk-video-api",
        tenant_claim="tenant_id",
        buckets={"data": "multitalk-local-data"},
        tables={"jobs": "jobs", "idempotency": "idempotency", "usage": "usage"},
        queues={},
        secrets={"tenant_webhook_secrets": "arn:secret:w", "modal_proxy_token": "arn:secret:m"},
        tenants={},
        pids={},
    )


@pytest.fixture
def no_services() -> Iterator[None]:
    """The handlers' service graph is module state: start from none and leave none behind."""
    services_module.set_services(None)
    yield
    services_module.set_services(None)


def test_the_lambda_environment_carries_no_widening_by_default(tmp_path: Path) -> None:
    environment = lambda_environment(stack_info(tmp_path), "http://gw", "http://internal")
    assert WEBHOOK_NETWORKS_ENV not in environment
    assert WEBHOOK_CA_FILE_ENV not in environment
    assert not (tmp_path / "tls").exists()  # not even the CA is made


def test_loopback_webhooks_is_an_explicit_opt_in(tmp_path: Path) -> None:
    environment = lambda_environment(
        stack_info(tmp_path), "http://gw", "http://internal", loopback_webhooks=True
    )
    networks = [ipaddress.ip_network(n) for n in environment[WEBHOOK_NETWORKS_ENV].split(",")]
    assert all(network.is_loopback for network in networks)
    assert Path(environment[WEBHOOK_CA_FILE_ENV]).is_file()


def test_create_app_keeps_the_production_policy_by_default(
    monkeypatch: pytest.MonkeyPatch, no_services: None
) -> None:
    monkeypatch.delenv(WEBHOOK_NETWORKS_ENV, raising=False)
    monkeypatch.delenv(WEBHOOK_CA_FILE_ENV, raising=False)
    create_app()
    # No services injected: the handlers build their own, with AddressPolicy() (production).
    assert services_module._services is None


def test_create_app_widens_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_services: None
) -> None:
    environment = lambda_environment(
        stack_info(tmp_path), "http://gw", "http://internal", loopback_webhooks=True
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    create_app()
    policy = services_module.get_services().webhook_policy
    assert policy.check("https://127.0.0.1:41234/hooks")
    with pytest.raises(WebhookUrlRefusedError):
        policy.check("https://169.254.169.254/latest/")
    with pytest.raises(WebhookUrlRefusedError):
        policy.check("https://127.0.0.1:0/hooks")


def test_a_widened_gateway_without_the_ca_does_not_start(
    monkeypatch: pytest.MonkeyPatch, no_services: None
) -> None:
    monkeypatch.setenv(WEBHOOK_NETWORKS_ENV, "127.0.0.0/8")
    monkeypatch.delenv(WEBHOOK_CA_FILE_ENV, raising=False)
    with pytest.raises(RuntimeError, match=WEBHOOK_CA_FILE_ENV):
        create_app()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://127.0.0.1:8443/hooks",
        "https://[::1]:41234/hooks",
        "https://10.0.0.5:41234/hooks",
        "https://169.254.169.254/latest/",
    ],
)
def test_the_production_policy_refuses_every_local_receiver(url: str) -> None:
    with pytest.raises(WebhookUrlRefusedError):
        AddressPolicy().check(url)


def test_the_loopback_policy_admits_loopback_only() -> None:
    policy = loopback_webhook_policy("127.0.0.0/8")
    assert policy.check("https://127.0.0.1:41234/hooks")
    assert policy.check("https://127.8.9.10:8443/hooks")
    for refused in ("https://[::1]:41234/x", "https://10.0.0.5/x", "http://127.0.0.1:41234/x"):
        with pytest.raises(WebhookUrlRefusedError):
            policy.check(refused)
