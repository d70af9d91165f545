"""SSRF guard: which addresses a fetch may reach, checked on the address actually connected to.

A host name is resolved once; every address it resolves to must be public, and the
connection then goes to the address that was checked, so a second lookup cannot swap in
an internal one (DNS rebinding). Refused: loopback, private (RFC 1918, ULA), link-local,
shared (CGNAT, 100.64/10), multicast, unspecified, reserved and documentation ranges, and
the IPv4-mapped and NAT64 IPv6 forms of any of those.
"""

from __future__ import annotations

import ipaddress
import socket

from ..errors import BlockedAddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def checked_address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for ``host``: resolved once, every answer checked."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise BlockedAddress(f"cannot resolve {host!r}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in answers]
    if not allow_private and not all(is_public(address) for address in addresses):
        raise BlockedAddress(
            f"{host!r} resolves to an address that may not be fetched"
            " (PROXY_ALLOW_PRIVATE_ADDRESSES=1 allows private networks)"
        )
    return str(addresses[0])
