"""secdns.server.tcp: the TCP connection table's limits and idle reclaim (no sockets)."""

from __future__ import annotations

from secdns.server.tcp import TcpClient, TcpClients


def opener(table: TcpClients, closed: list[str]):
    def open_(source: str, allowed: bool = False, idle: bool = True) -> TcpClient | None:
        name = f"{source}#{len(table.clients)}-{table.reclaimed}-{len(closed)}"
        client = table.admit(source, allowed, lambda: closed.append(name))
        if client is not None and idle:
            table.idle(client)
        return client

    return open_


def test_a_source_at_its_limit_loses_its_own_oldest_idle_connection() -> None:
    table, closed = TcpClients(limit=100, per_source=3), []
    open_ = opener(table, closed)
    first = open_("10.0.0.2")
    open_("10.0.0.2")
    open_("10.0.0.2")
    other = open_("10.0.0.1")
    assert open_("10.0.0.2") is not None
    assert closed and closed[0].startswith("10.0.0.2") and first is not None and not first.open
    assert other is not None and other.open and len(table.by_source["10.0.0.2"]) == 3


def test_busy_connections_are_never_reclaimed() -> None:
    table, closed = TcpClients(limit=100, per_source=2), []
    open_ = opener(table, closed)
    open_("10.0.0.2", idle=False)
    open_("10.0.0.2", idle=False)
    assert open_("10.0.0.2") is None and table.refused == 1 and not closed


def test_a_full_table_reclaims_the_oldest_idle_and_keeps_room_for_transfers() -> None:
    table, closed = TcpClients(limit=8, per_source=100, reserved=2), []
    open_ = opener(table, closed)
    clients = [open_(f"10.0.0.{n}") for n in range(6)]
    assert all(c is not None for c in clients)
    # ordinary clients stop at limit - reserved: the oldest idle one makes room
    assert open_("10.0.1.1") is not None and len(closed) == 1 and not clients[0].open
    # an allowed client uses the reserved room without closing anyone
    assert open_("192.0.2.1", allowed=True) is not None and len(closed) == 1
    assert open_("192.0.2.2", allowed=True) is not None and len(closed) == 1
    # full now: an allowed client reclaims an ordinary idle connection, never another allowed
    assert open_("192.0.2.3", allowed=True) is not None and len(closed) == 2
    assert all(c.open for c in table.clients if c.allowed)
    # with every ordinary connection busy, a new ordinary client is refused
    for client in list(table.clients):
        table.busy(client)
    assert open_("10.0.2.1") is None
    for client in list(table.clients):
        table.release(client)
    assert not table.clients and not table.by_source and not table.idle_all and table.ordinary == 0


def test_a_secondary_of_ours_may_hold_more_connections_and_a_limit_is_said() -> None:
    """A secondary (allowed to transfer) may hold TRANSFER_PER_SOURCE connections, not
    per_source: NSD's xfrd opens many at once, and at 32 a stranger's NSD had its fresh
    connections closed under it (101 s instead of 2.6 s for 1,000 zones).  Reaching a
    limit is told to on_limit (serve logs it)."""
    said: list[tuple[str, bool, int]] = []
    table, closed = TcpClients(limit=512, per_source=4, on_limit=lambda *a: said.append(a)), []
    open_ = opener(table, closed)
    assert table.transfer_per_source == 128
    for _ in range(128):
        assert open_("192.0.2.53", allowed=True) is not None
    assert not closed and not said
    assert open_("192.0.2.53", allowed=True) is not None and len(closed) == 1
    assert said == [("192.0.2.53", False, 128)]
    for _ in range(4):
        open_("10.0.0.9")
    assert open_("10.0.0.9") is not None and said[-1] == ("10.0.0.9", False, 4)
    assert TcpClients(limit=100, per_source=40).transfer_per_source == 50
    assert TcpClients(limit=100, per_source=64).transfer_per_source == 64
