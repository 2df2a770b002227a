"""Webhook URL ports: an impossible port is refused with ``webhook_url_refused`` before any
resolution, even by a policy that allows every port (the one tests use for loopback receivers).

Port 0 used to pass as 443 (``parts.port or 443``) and an empty ``host:`` as no port at all.
"""

from __future__ import annotations

import pytest

from aws.lambda_proxy.webhooks.address_policy import AddressPolicy
from aws.lambda_proxy.webhooks.exceptions import WebhookUrlRefusedError
from aws.lambda_proxy.webhooks.sender import WebhookMessage, WebhookSender

PUBLIC = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

IMPOSSIBLE_PORTS = [
    "https://hooks.example.com:0/x",
    "https://hooks.example.com:00000/x",
    "https://hooks.example.com:65536/x",
    "https://hooks.example.com:99999999999/x",
    "https://hooks.example.com:-1/x",
    "https://hooks.example.com:-443/x",
    "https://hooks.example.com:+443/x",
    "https://hooks.example.com:abc/x",
    "https://hooks.example.com:44a/x",
    "https://hooks.example.com:1_0/x",
    "https://hooks.example.com:443:443/x",
    "https://hooks.example.com:\u0664\u0664\u0663/x",  # Arabic-Indic digits for 443
    "https://hooks.example.com:/x",  # empty port
    "https://hooks.example.com:",
    f"https://{PUBLIC}:0/x",
    f"https://{PUBLIC}:/x",
    f"https://[{PUBLIC_V6}]:0/x",
    f"https://[{PUBLIC_V6}]:/x",
    f"https://[{PUBLIC_V6}]:70000/x",
    f"https://[{PUBLIC_V6}]443/x",  # no colon after the literal
]


def recording_policy(resolved: list[str], allowed_ports: set[int] | None) -> AddressPolicy:
    """A policy whose resolver records every host it is asked for (and answers public)."""

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return [PUBLIC]

    return AddressPolicy(resolver=resolver, allowed_ports=allowed_ports)


@pytest.mark.parametrize("url", IMPOSSIBLE_PORTS)
@pytest.mark.parametrize("allowed_ports", [{443, 8443}, None], ids=["default", "any-port"])
def test_impossible_ports_are_refused_before_resolution(
    url: str, allowed_ports: set[int] | None
) -> None:
    resolved: list[str] = []
    policy = recording_policy(resolved, allowed_ports)
    with pytest.raises(WebhookUrlRefusedError) as refused:
        policy.check(url)
    assert refused.value.code == "webhook_url_refused"
    assert refused.value.status == 422
    assert resolved == []


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("https://hooks.example.com/x", 443),
        ("https://hooks.example.com:443/x", 443),
        ("https://hooks.example.com:8443/x", 8443),
        ("https://hooks.example.com:0443/x", 443),  # leading zeros name the same port
        (f"https://[{PUBLIC_V6}]/x", 443),
        (f"https://[{PUBLIC_V6}]:8443/x", 8443),
        ("https://user-less.example.com:8443", 8443),
    ],
)
def test_possible_ports_are_parsed(url: str, port: int) -> None:
    assert AddressPolicy().check_url(url)[1] == port


@pytest.mark.parametrize("port", [1, 80, 22, 65535])
def test_the_default_policy_still_allows_only_its_ports(port: int) -> None:
    with pytest.raises(WebhookUrlRefusedError, match="one of"):
        AddressPolicy().check_url(f"https://hooks.example.com:{port}/x")
    # ... while a policy that allows any port takes every port from 1 to 65535.
    assert AddressPolicy(allowed_ports=None).check_url(f"https://hooks.example.com:{port}/x") == (
        "hooks.example.com",
        port,
    )


def test_delivery_refuses_a_stored_url_with_port_zero() -> None:
    """A job stored before the check existed: the sender refuses it without connecting."""
    resolved: list[str] = []
    sender = WebhookSender(
        recording_policy(resolved, None),
        timeout_s=1,
        max_attempts=3,
        backoff_base_s=0,
        sleep=lambda s: None,
    )
    message = WebhookMessage(type="job.failed", job_id="job_x", timestamp="t", data={})
    delivery = sender.deliver("https://hooks.example.com:0/x", "whsec_" + "A" * 43 + "=", message)
    assert delivery.state == "refused"
    assert delivery.attempts == 0
    assert resolved == []
