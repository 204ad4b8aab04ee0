"""Host names to socket addresses: the one call to ``getaddrinfo`` in secdns.

Kept apart from :mod:`secdns.endpoints`, which is pure, so that parsing an
endpoint never needs an event loop.
"""

from __future__ import annotations

import asyncio
import socket

from secdns.endpoints import Endpoint
from secdns.errors import NetworkError, os_reason


async def resolve(endpoint: Endpoint) -> list[tuple[str, int]]:
    """Every (address, port) for an endpoint; a host name is resolved (IPv4 and IPv6)."""
    if endpoint.is_address:
        return [(endpoint.host, endpoint.port)]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise NetworkError(
            f"cannot resolve {endpoint.host}: {os_reason(err)}", server=str(endpoint)
        ) from err
    seen: list[tuple[str, int]] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = (str(sockaddr[0]), endpoint.port)
        if addr not in seen:
            seen.append(addr)
    return seen
