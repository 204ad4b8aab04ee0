"""Smoke tests of the server fixtures: each real server starts, answers, transfers, stops."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.flags
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone
import pytest
from servers import (
    LOOPBACK,
    REQUIRE_SERVERS_ENV,
    SBIN_DIRS,
    Bind,
    DnsServer,
    DynamicServer,
    Knot,
    Nsd,
    ServerError,
    TsigKey,
    free_port,
    need_binary,
    tsig_secret,
    zone_text,
)

ZONE = "example.com"
SERIAL = 2024010101
KINDS = ["bind", "knot", "nsd"]

StartServer = Callable[..., DnsServer]


@pytest.fixture(params=KINDS)
def primary_factory(request: pytest.FixtureRequest) -> StartServer:
    """Each kind of primary in turn: start(zones=None, **kw) -> server."""
    factory: StartServer = request.getfixturevalue(f"{request.param}_primary")
    return factory


def axfr(server: DnsServer, zone: str = ZONE, key: TsigKey | None = None) -> dns.zone.Zone:
    return dns.zone.from_xfr(
        dns.query.xfr(
            server.host,
            zone,
            port=server.port,
            timeout=5,
            keyring=key.keyring if key else None,
        )
    )


def ixfr_answer(server: DnsServer, serial: int, zone: str = ZONE) -> list[dns.rrset.RRset]:
    """The answer records of an IXFR from `serial`, across all response messages."""
    records: list[dns.rrset.RRset] = []
    for message in dns.query.xfr(
        server.host,
        zone,
        rdtype=dns.rdatatype.IXFR,
        serial=serial,
        port=server.port,
        timeout=5,
        relativize=False,
    ):
        records.extend(message.answer)
    return records


def soa_serials(records: list[dns.rrset.RRset]) -> list[int]:
    return [rrset[0].serial for rrset in records if rrset.rdtype == dns.rdatatype.SOA]


def add_record(server: DnsServer, name: str, address: str) -> int:
    """Add `name` A `address` to the zone the way this server takes changes; the new serial."""
    if isinstance(server, DynamicServer):
        server.nsupdate(f"update add {name}.{ZONE}. 300 A {address}")
        return SERIAL + 1
    text = zone_text(ZONE).replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial")
    server.write_zone(ZONE, f"{text}{name} 300 A {address}\n")
    server.reload()
    server.wait_for_serial(ZONE, SERIAL + 1)
    return SERIAL + 1


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- free_port ------------------------------------------------------------------


def test_free_port_binds_udp_and_tcp() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((LOOPBACK, port))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind((LOOPBACK, port))


# --- need_binary ----------------------------------------------------------------


def test_missing_binary_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_SERVERS_ENV, raising=False)

    with pytest.raises(pytest.skip.Exception, match="no-such-dns-daemon is not installed"):
        need_binary("no-such-dns-daemon")


def test_missing_binary_fails_when_servers_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SERVERS_ENV, "1")

    with pytest.raises(pytest.fail.Exception, match=REQUIRE_SERVERS_ENV):
        need_binary("no-such-dns-daemon")


def test_present_binary_is_found_in_sbin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    assert Path(need_binary("named")).parent in {Path(d) for d in SBIN_DIRS}


def test_failed_start_reports_the_server_log(tmp_path: Path) -> None:
    need_binary(Bind.program)

    with pytest.raises(ServerError, match=r"(?s)exited with status 1.*server\.log"):
        Bind.start(tmp_path, {ZONE: zone_text()}, tsig={"k": ("hmac-bogus", "c2VjcmV0")})


# --- every primary --------------------------------------------------------------


def test_primary_answers_soa_authoritatively(primary_factory: StartServer) -> None:
    server = primary_factory()

    response = server.query(ZONE, "SOA")

    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert server.soa_serial(ZONE) == SERIAL
    assert server.addr == f"127.0.0.1:{server.port}"


def test_primary_serves_the_whole_zone_by_axfr(primary_factory: StartServer) -> None:
    server = primary_factory()

    served = axfr(server)

    # Equal node for node: every record type and name in the file survived the server.
    assert served == dns.zone.from_text(zone_text(ZONE), ZONE)


def test_primary_serves_ixfr_after_a_change(primary_factory: StartServer) -> None:
    server = primary_factory()
    whole_zone = axfr(server)

    new_serial = add_record(server, "added", "192.0.2.123")

    assert server.soa_serial(ZONE) == new_serial
    records = ixfr_answer(server, SERIAL)
    # Incremental, not AXFR-style: new SOA, then the old SOA opening the first delta.
    assert soa_serials(records)[:2] == [new_serial, SERIAL]
    assert soa_serials(records)[-1] == new_serial
    added = dns.name.from_text(f"added.{ZONE}")
    assert added in [r.name for r in records if r.rdtype == dns.rdatatype.A]
    assert len(records) < len(list(whole_zone.iterate_rdatasets()))
    if not isinstance(server, Nsd):
        # SOA, old SOA, (no deletions), new SOA, the A record, SOA. NSD 4.6.1's
        # create-ixfr also "adds" some RRsets that were already there: dnspython
        # applies that, Knot as a secondary refuses it and falls back to AXFR.
        assert len(records) == 5
    # Applied to the old zone, the IXFR gives what the server now serves.
    copy = dns.zone.from_text(zone_text(ZONE), ZONE)
    dns.query.inbound_xfr(server.host, copy, port=server.port, timeout=5)
    assert copy == axfr(server)


def test_tsig_only_primary_refuses_unsigned_axfr(primary_factory: StartServer) -> None:
    key = TsigKey.generate("xfr-key")
    server = primary_factory(
        tsig={key.name: (key.algorithm, key.secret)}, allow_transfer_key=key.name
    )

    with pytest.raises((dns.xfr.TransferError, dns.exception.FormError, EOFError)):
        axfr(server)
    assert axfr(server, key=key) == dns.zone.from_text(zone_text(ZONE), ZONE)


def test_wrong_tsig_key_is_refused(primary_factory: StartServer) -> None:
    key = TsigKey.generate("xfr-key")
    server = primary_factory(
        tsig={key.name: (key.algorithm, key.secret)}, allow_transfer_key=key.name
    )

    with pytest.raises((dns.tsig.PeerError, dns.xfr.TransferError, EOFError)):
        axfr(server, key=TsigKey(key.name, key.algorithm, tsig_secret()))


def test_stop_leaves_no_process(primary_factory: StartServer) -> None:
    server = primary_factory()
    pid = server.pid

    server.stop()
    server.stop()  # idempotent

    assert not server.running
    assert gone(pid)
    assert server.live_processes() == []  # no helper of its process group either


# --- dynamic updates ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bind", "knot"])
def test_keyed_update_refuses_unsigned_nsupdate(kind: str, request: pytest.FixtureRequest) -> None:
    start: Callable[..., DynamicServer] = request.getfixturevalue(f"{kind}_primary")
    key = TsigKey.generate("update-key")
    server = start(tsig={key.name: (key.algorithm, key.secret)}, allow_update_key=key.name)

    with pytest.raises(ServerError, match="REFUSED|NOTAUTH"):
        server.nsupdate(f"update add nope.{ZONE}. 300 A 192.0.2.9")
    server.nsupdate(f"update add yes.{ZONE}. 300 A 192.0.2.9", key=key.name)

    assert server.soa_serial(ZONE) == SERIAL + 1
    assert server.query(f"yes.{ZONE}", "A").answer


def test_bind_static_zone_reloads_with_ixfr(bind_primary: Callable[..., Bind]) -> None:
    server = bind_primary(dynamic=False)
    text = zone_text(ZONE).replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial")

    server.write_zone(ZONE, f"{text}edited 300 A 192.0.2.124\n")
    server.reload()
    server.wait_for_serial(ZONE, SERIAL + 1)

    assert soa_serials(ixfr_answer(server, SERIAL)) == [SERIAL + 1, SERIAL, SERIAL + 1, SERIAL + 1]


def test_knot_zone_file_edit_reloads_with_ixfr(knot_primary: Callable[..., Knot]) -> None:
    server = knot_primary()
    text = zone_text(ZONE).replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial")

    server.write_zone(ZONE, f"{text}edited 300 A 192.0.2.124\n")
    server.reload()

    assert server.soa_serial(ZONE) == SERIAL + 1
    assert soa_serials(ixfr_answer(server, SERIAL)) == [SERIAL + 1, SERIAL, SERIAL + 1, SERIAL + 1]


# --- secondaries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("primary_kind", "secondary_kind"),
    [("bind", "knot"), ("knot", "bind"), ("nsd", "bind"), ("nsd", "knot")],
)
def test_secondary_follows_primary_on_notify(
    primary_kind: str, secondary_kind: str, request: pytest.FixtureRequest
) -> None:
    start_primary: StartServer = request.getfixturevalue(f"{primary_kind}_primary")
    start_secondary: Callable[..., DynamicServer] = request.getfixturevalue(
        f"{secondary_kind}_secondary"
    )
    key = TsigKey.generate("xfr-key")
    secondary_port = free_port()
    primary = start_primary(
        tsig={key.name: (key.algorithm, key.secret)},
        allow_transfer_key=key.name,
        notify=[(LOOPBACK, secondary_port)],
    )
    secondary = start_secondary({ZONE: primary.endpoint}, key=key, port=secondary_port)
    assert secondary.soa_serial(ZONE) == SERIAL

    new_serial = add_record(primary, "pushed", "192.0.2.125")

    # The refresh timer is two hours: only a NOTIFY gets the change here in time.
    secondary.wait_for_serial(ZONE, new_serial, timeout=10)
    assert axfr(secondary) == axfr(primary, key=key)
