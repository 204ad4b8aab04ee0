"""Server endpoints written as ``@HOST``, ``@HOST:PORT`` or ``@[V6ADDR]:PORT``.

Pure: parsing, formatting and address matching, with no I/O and no event
loop.  Turning a host name into addresses is :func:`secdns.addresses.resolve`.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Sequence

from secdns.errors import UsageError

DEFAULT_PORT = 53


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """A DNS server as the user wrote it: a host (address or name) and a port."""

    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def is_address(self) -> bool:
        return _is_address(self.host)


@functools.lru_cache(maxsize=4096)
def _is_address(host: str) -> bool:
    """(Asked for every zone's primaries at each refresh: 10,000 zones share a few.)"""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_endpoint(text: str, default_port: int = DEFAULT_PORT) -> Endpoint:
    """Parse ``@HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address."""
    spec = text[1:] if text.startswith("@") else text
    if not spec:
        raise UsageError(f"empty server address {text!r}")
    host: str
    port = default_port
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            raise UsageError(f"bad server address {text!r}: missing ']'")
        host = spec[1:end]
        rest = spec[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"bad server address {text!r}: expected ':PORT' after ']'")
            port = _port(rest[1:], text)
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
        port = _port(port_text, text)
    else:
        host = spec  # a name, an IPv4 address, or a bare IPv6 address
    if not host:
        raise UsageError(f"bad server address {text!r}: no host")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise UsageError(f"bad server address {text!r}: not an IPv6 address") from None
    return Endpoint(host, port)


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise UsageError(f"bad port in server address {whole!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"port out of range in server address {whole!r}")
    return port


def format_addr(address: str, port: int) -> str:
    """``address:port``, with an IPv6 address in brackets (``[::1]:53``)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_networks(addresses: Sequence[str]) -> tuple[IPNetwork, ...]:
    """Addresses (``127.0.0.1``, ``::1``) and CIDRs as networks; others are skipped."""
    networks: list[IPNetwork] = []
    for text in addresses:
        try:
            networks.append(ipaddress.ip_network(text.split("%", 1)[0], strict=False))
        except ValueError:
            continue
    return tuple(networks)


def source_allowed(source: str, allowed: Sequence[IPNetwork]) -> bool:
    """Whether ``source`` (as a socket reports it) is inside one of ``allowed``."""
    try:
        address = ipaddress.ip_address(source.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in allowed)
