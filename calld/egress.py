"""Where calld may connect on an API user's behalf: the ``[egress]`` policy.

Webhook subscriptions and SIP probes make calld open connections to addresses an API user chose, so
without a policy calld is a way into the networks it can reach (cloud metadata, the database, other
services on the host). Link-local and metadata addresses are refused always; private, loopback and
other non-public addresses only when ``egress.allow_networks`` names their network (calld runs beside
a PBX on a LAN, so the PBX's network is one line of configuration). The address is checked when the
socket is opened, after name resolution, so a name that resolves (or re-resolves) to a refused
address is refused too.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never a target, whatever is allowed: link-local (169.254.169.254 is the cloud metadata service),
# the AWS IPv6 metadata address, "this network", multicast and broadcast.
ALWAYS_DENIED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "fe80::/10",
        "fd00:ec2::254/128",
        "ff00::/8",
    )
)
# inet_aton's spellings of an IPv4 address (2130706433, 0x7f000001, 0177.1, 127.1): resolvers accept
# them, so a URL host written so is an address, not a name.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


class EgressRefused(OSError):
    """A connection the egress policy does not allow."""

    def __init__(self, reason: str) -> None:
        super().__init__(errno.EACCES, f"refused by calld's egress policy: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Public addresses are allowed; non-public ones only inside ``allow_networks``."""

    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> EgressPolicy:
        return cls(tuple(ipaddress.ip_network(net, strict=False) for net in networks))

    def refusal(self, address: IPAddress) -> str | None:
        """Why calld may not connect to ``address``, or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_link_local or address.is_multicast or any(address in net for net in ALWAYS_DENIED):
            return f"{address} is a link-local, metadata, multicast or reserved address (never allowed)"
        if address.is_global or any(address in net for net in self.allow_networks):
            return None
        return f"{address} is a private or loopback address; allow its network in [egress] allow_networks"

    def check(self, address: str) -> None:
        """Raise ``EgressRefused`` unless calld may connect to ``address`` (an IP address)."""
        problem = self.refusal(ipaddress.ip_address(address.partition("%")[0]))
        if problem is not None:
            raise EgressRefused(problem)

    def host_problem(self, host: str) -> str | None:
        """Why a URL's ``host`` is refused before any lookup (an address, however spelled), or None.
        A name is checked when it is resolved, at connect time."""
        literal = host_address(host)
        return self.refusal(literal) if literal is not None else None

    def socket_factory(self, addr_info: Any) -> socket.socket:
        """For ``aiohttp.TCPConnector(socket_factory=...)``: the resolved address is checked just
        before the socket connects to it (names, redirects and re-resolution included)."""
        family, kind, proto, _name, sockaddr = addr_info
        self.check(str(sockaddr[0]))
        return socket.socket(family, kind, proto)


def host_address(host: str) -> IPAddress | None:
    """The IP address ``host`` denotes, in any spelling a resolver accepts, or None for a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None
