"""The webhook address policy: https only, and no private, loopback, link-local or metadata
address however it is spelled or resolved."""

from __future__ import annotations

import pytest

from aws.lambda_proxy.webhooks.address_policy import AddressPolicy
from aws.lambda_proxy.webhooks.exceptions import WebhookUrlRefusedError
from aws.lambda_proxy.webhooks.sender import WebhookMessage, WebhookSender

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",  # EC2/ECS metadata
    "169.254.170.2",  # ECS task metadata
    "100.100.100.200",  # Alibaba metadata (shared address space)
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
    "224.0.0.1",
    "255.255.255.255",
    "192.0.0.1",
    "198.18.0.1",
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",  # EC2 metadata over IPv6
    "fc00::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "ff02::1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_refused_literal_addresses(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(WebhookUrlRefusedError):
        AddressPolicy().check(f"https://{host}/hook")


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    assert [str(ip) for ip in AddressPolicy().check(f"https://{host}/hook")] == [address]


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "2130706433",  # decimal 127.0.0.1: getaddrinfo understands it
        "0x7f.1",  # hex/short form of 127.0.0.1
        "0177.0.0.1",  # octal
        "127.1",
    ],
)
def test_names_and_numeric_tricks_are_resolved_then_refused(host: str) -> None:
    with pytest.raises(WebhookUrlRefusedError):
        AddressPolicy().check(f"https://{host}/hook")


def test_a_name_with_any_private_answer_is_refused() -> None:
    policy = AddressPolicy(resolver=lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(WebhookUrlRefusedError, match="refused address"):
        policy.check("https://hooks.example.com/x")


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(WebhookUrlRefusedError, match="does not resolve"):
        AddressPolicy(resolver=lambda host, port: []).check("https://nowhere.example/x")


def test_scoped_ipv6_answers_are_refused() -> None:
    policy = AddressPolicy(resolver=lambda host, port: ["fe80::1%eth0"])
    with pytest.raises(WebhookUrlRefusedError):
        policy.check("https://hooks.example.com/x")


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "gopher://hooks.example.com/x",
        "https://user:pass@hooks.example.com/x",
        "https://hooks.example.com:22/x",
        "https:///x",
        "https://hooks.example.com/x\r\nHost: evil",
        "https://hooks.example.com:99999/x",
        "https://" + "a" * 2100 + ".com/",
    ],
)
def test_url_shape_is_checked_before_resolution(url: str) -> None:
    resolved: list[str] = []
    policy = AddressPolicy(resolver=lambda host, port: resolved.append(host) or ["93.184.216.34"])
    with pytest.raises(WebhookUrlRefusedError):
        policy.check(url)
    assert resolved == []


def test_allowed_networks_widen_only_what_they_name() -> None:
    policy = AddressPolicy(allowed_networks=["127.0.0.1/32"], allowed_ports=None)
    assert policy.check("https://127.0.0.1:8443/x")
    with pytest.raises(WebhookUrlRefusedError):
        policy.check("https://127.0.0.2/x")
    with pytest.raises(WebhookUrlRefusedError):
        policy.check("https://169.254.169.254/x")


def test_delivery_resolves_again_and_refuses_a_rebound_name() -> None:
    """DNS rebinding: the name was public when the job was submitted, private at delivery."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    policy = AddressPolicy(resolver=lambda host, port: next(answers))
    assert policy.check("https://rebind.example/x")  # at submit time
    sender = WebhookSender(
        policy, timeout_s=1, max_attempts=3, backoff_base_s=0, sleep=lambda s: None
    )
    message = WebhookMessage(type="job.failed", job_id="job_x", timestamp="t", data={})
    delivery = sender.deliver("https://rebind.example/x", "whsec_" + "A" * 43 + "=", message)
    assert delivery.state == "refused"
    assert delivery.attempts == 1
