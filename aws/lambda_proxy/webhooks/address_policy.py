"""Which network addresses a caller-supplied webhook URL may reach.

The default refuses every address that is not globally routable unicast: private (RFC 1918,
ULA), loopback, link-local (incl. 169.254.169.254 and fd00:ec2::254, the metadata services),
shared/CGNAT (100.64/10, incl. 100.100.100.200), unspecified, multicast, reserved, and IPv6
forms that embed an IPv4 address (mapped, 6to4, NAT64, Teredo) when the embedded one is refused.

A host name is resolved once and *every* answer must pass (a name with one public and one
private record is refused); the connection then goes to one of exactly those checked addresses,
so a second, different DNS answer (rebinding) is never used. Tests inject ``allowed_networks``
to reach their loopback receiver; nothing in production code widens the default.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from aws.lambda_proxy.webhooks.exceptions import WebhookUrlRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = frozenset({443, 8443})
MAX_PORT = 65535
_PORT_TEXT = re.compile(r"[0-9]{1,5}")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_LENGTH = 2048


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses ``getaddrinfo`` gives for ``host`` (IPv4 and IPv6)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(answer[4][0]) for answer in answers})


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _port(netloc: str) -> int:
    """The port ``netloc`` names, 443 when it names none.

    Parsed here rather than with ``SplitResult.port``: that reads ``host:0`` as port 0, which
    ``port or 443`` silently turned into 443, and ``host:`` as no port at all. A port that is
    present must be ASCII digits naming 1-65535; anything else (0, 65536, -1, +443, an empty
    ``host:``) is refused, whatever the allowed ports are.
    """
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):  # an IPv6 literal: the port (if any) follows the bracket
        host_port = host_port.partition("]")[2]
        if not host_port:
            return 443
        colon, text = host_port[:1], host_port[1:]
    else:
        _, colon, text = host_port.partition(":")
    if not colon:
        return 443
    if colon != ":" or not _PORT_TEXT.fullmatch(text) or not 1 <= int(text) <= MAX_PORT:
        raise WebhookUrlRefusedError(f"webhook_url port must be a number from 1 to {MAX_PORT}")
    return int(text)


class AddressPolicy:
    """Decides whether a webhook URL and the addresses its host resolves to may be called."""

    def __init__(
        self,
        *,
        allowed_networks: Iterable[str] = (),
        allowed_ports: Iterable[int] | None = DEFAULT_PORTS,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._allowed_networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(network) for network in allowed_networks
        )
        self._allowed_ports = None if allowed_ports is None else frozenset(allowed_ports)
        self._resolver = resolver

    def address_allowed(self, address: IPAddress) -> bool:
        if any(address in network for network in self._allowed_networks):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            if address.scope_id:
                return False
            embedded = _embedded_ipv4(address)
            if embedded is not None and not self.address_allowed(embedded):
                return False
        return address.is_global and not address.is_multicast

    def check_url(self, url: str) -> tuple[str, int]:
        """Syntax and scheme: https, a host, no credentials; returns ``(host, port)``."""
        if len(url) > MAX_URL_LENGTH:
            raise WebhookUrlRefusedError(f"webhook_url is longer than {MAX_URL_LENGTH} chars")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise WebhookUrlRefusedError("webhook_url is not a valid URL") from None
        if parts.scheme != "https":
            raise WebhookUrlRefusedError("webhook_url must use https")
        if not parts.hostname or parts.username is not None or parts.password is not None:
            raise WebhookUrlRefusedError("webhook_url needs a host and no user:password part")
        if any(ch.isspace() or ord(ch) < 32 for ch in url):
            raise WebhookUrlRefusedError("webhook_url contains whitespace or control characters")
        port = _port(parts.netloc)
        if self._allowed_ports is not None and port not in self._allowed_ports:
            raise WebhookUrlRefusedError(
                f"webhook_url port must be one of {sorted(self._allowed_ports)}"
            )
        return parts.hostname, port

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Checked addresses for ``host``; refuses if any answer is refused or none exist."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        answers = [literal] if literal is not None else self._resolve_name(host, port)
        if not answers:
            raise WebhookUrlRefusedError(f"webhook host {host!r} does not resolve")
        for address in answers:
            if not self.address_allowed(address):
                raise WebhookUrlRefusedError(
                    f"webhook host {host!r} resolves to a refused address "
                    "(private, loopback, link-local, metadata or reserved)"
                )
        return answers

    def _resolve_name(self, host: str, port: int) -> list[IPAddress]:
        addresses: list[IPAddress] = []
        for text in self._resolver(host, port):
            try:
                # "fe80::1%eth0": a scope makes it link-local by definition.
                addresses.append(ipaddress.ip_address(text))
            except ValueError:
                raise WebhookUrlRefusedError(
                    f"webhook host {host!r} resolves to a refused address (scoped)"
                ) from None
        return addresses

    def check(self, url: str) -> list[IPAddress]:
        """URL and resolution together (what submit uses to fail early)."""
        host, port = self.check_url(url)
        return self.resolve(host, port)
