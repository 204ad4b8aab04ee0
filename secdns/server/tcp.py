"""The table of open TCP connections: who may open one, and whose is closed to make room.

One address must not be able to shut out TCP service (zone transfers
included) by holding connections open.  The rules, after BIND's and Knot's TCP
handling:

* at most ``per_source`` connections from one address: when a source is at its
  limit, its own oldest idle connection is closed for the new one (or the new
  one is refused if all of them are busy); a secondary of ours (an address in
  ``allow_transfer``, or one that has made a transfer its key allowed) may hold
  :data:`TRANSFER_PER_SOURCE` (NSD's xfrd opens up to 128 connections at once: at
  32 a stranger's NSD had its fresh connections closed under it and took 101 s
  instead of 2.6 s to fetch 1,000 zones);
* at most ``limit`` connections in all: when the table is full, the oldest idle
  connection is closed for the new one;
* ``reserved`` of those are kept for addresses allowed to transfer a zone
  (``allow_transfer``): other clients stop at ``limit - reserved``, and their
  connections are reclaimed first.

A connection is idle while it waits for the first byte of its next message
(the server marks it); a busy one (reading a message, answering, sending a
transfer) is never reclaimed.  No I/O here: ``close`` is the connection's own
abort callback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

DEFAULT_TCP_CLIENTS = 512
DEFAULT_TCP_PER_SOURCE = 128
"""A quarter of DEFAULT_TCP_CLIENTS: one address cannot shut out TCP, and NSD's xfrd (up to
128 connections opened at once) is not cut off (at 32, a stranger's NSD took 109 s to
fetch 1,000 zones, its fresh connections closed under it; 3 s at 128)."""
DEFAULT_TCP_IDLE_TIMEOUT = 10.0
TRANSFER_PER_SOURCE = 128
"""Connections a secondary of ours may hold (at least ``per_source``, at most half of
``limit``)."""


@dataclasses.dataclass(eq=False, slots=True)
class TcpClient:
    source: str
    allowed: bool
    close: Callable[[], None]
    open: bool = True


class TcpClients:
    """Open TCP connections, with the per-source and global limits and idle reclaim."""

    def __init__(
        self,
        limit: int,
        per_source: int,
        reserved: int | None = None,
        on_limit: Callable[[str, bool, int], None] | None = None,
    ) -> None:
        self.limit = limit
        self.per_source = per_source
        self.transfer_per_source = max(per_source, min(TRANSFER_PER_SOURCE, limit // 2))
        self.on_limit = on_limit  # (source, refused, its limit): a source at its limit
        self.reserved = limit // 8 if reserved is None else reserved
        self.clients: set[TcpClient] = set()
        self.ordinary = 0
        self.by_source: dict[str, set[TcpClient]] = {}
        # idle connections, oldest first (dicts keep insertion order)
        self.idle_all: dict[TcpClient, None] = {}
        self.idle_ordinary: dict[TcpClient, None] = {}
        self.idle_by_source: dict[str, dict[TcpClient, None]] = {}
        self.reclaimed = 0
        self.refused = 0

    def admit(self, source: str, allowed: bool, close: Callable[[], None]) -> TcpClient | None:
        """Room for a new connection from ``source`` (closing idle ones if need be), or None."""
        mine = self.by_source.get(source)
        limit = self.transfer_per_source if allowed else self.per_source
        if mine is not None and len(mine) >= limit:
            reclaimed = self._reclaim(self.idle_by_source.get(source))
            if self.on_limit is not None:
                self.on_limit(source, not reclaimed, limit)
            if not reclaimed:
                self.refused += 1
                return None
        if not allowed and self.ordinary >= self.limit - self.reserved:
            if not self._reclaim(self.idle_ordinary):
                self.refused += 1
                return None
        if len(self.clients) >= self.limit:
            if not self._reclaim(self.idle_ordinary) and not (
                allowed and self._reclaim(self.idle_all)
            ):
                self.refused += 1
                return None
        client = TcpClient(source, allowed, close)
        self.clients.add(client)
        self.by_source.setdefault(source, set()).add(client)
        if not allowed:
            self.ordinary += 1
        return client

    def idle(self, client: TcpClient) -> None:
        """``client`` waits for its next message: it may be reclaimed from now on."""
        if not client.open or client in self.idle_all:
            return
        self.idle_all[client] = None
        if not client.allowed:
            self.idle_ordinary[client] = None
        self.idle_by_source.setdefault(client.source, {})[client] = None

    def busy(self, client: TcpClient) -> None:
        """``client`` is reading or answering a message: not to be reclaimed."""
        if self.idle_all.pop(client, 0) is None:
            self.idle_ordinary.pop(client, None)
            idle = self.idle_by_source.get(client.source)
            if idle is not None:
                idle.pop(client, None)
                if not idle:
                    del self.idle_by_source[client.source]

    def release(self, client: TcpClient) -> None:
        """The connection is closed (by either side): forget it.  Idempotent."""
        if not client.open:
            return
        client.open = False
        self.busy(client)
        self.clients.discard(client)
        if not client.allowed:
            self.ordinary -= 1
        mine = self.by_source.get(client.source)
        if mine is not None:
            mine.discard(client)
            if not mine:
                del self.by_source[client.source]

    def _reclaim(self, idle: dict[TcpClient, None] | None) -> bool:
        """Close the oldest connection of ``idle``; False if there is none."""
        if not idle:
            return False
        victim = next(iter(idle))
        self.release(victim)
        self.reclaimed += 1
        victim.close()
        return True
