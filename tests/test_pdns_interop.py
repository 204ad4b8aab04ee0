"""PowerDNS Authoritative (pdns_server, gsqlite3) as a primary of ``secdns pull`` and
as a secondary of ``secdns serve``.

PowerDNS keeps no IXFR journal: it answers IXFR with the SOA alone when we are
current, and otherwise with the whole zone AXFR-style, the SOA alone in the
first message.  Before RFC 1995's serial comparison was applied to that lone SOA,
``pull`` reported up-to-date while PowerDNS served a newer serial.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dns.name
import dns.zone
import pytest
from click.testing import CliRunner
from servers import (
    Endpoint,
    PowerDns,
    TsigKey,
    free_port,
    need_binary,
    output_master,
    stored_master,
    zone_text,
)
from serving import ServerThread, write_config

from secdns.cli import cli

ZONE_FILE = Path(__file__).parent / "zones" / "example.com.zone"
ORIGIN = "example.com."
ZONE = "example.com"
SERIAL = 2024010101


@pytest.fixture
def pdns_secondary(tmp_path: Path) -> Iterator[Callable[..., PowerDns]]:
    """start(zones: {zone: (host, port)}, **kw) -> PowerDns. See PowerDns.start_secondary."""
    need_binary(PowerDns.program)
    started: list[PowerDns] = []

    def start(zones: Mapping[str, Endpoint], **kw: Any) -> PowerDns:
        workdir = tmp_path / f"pdns-secondary-{len(started)}"
        server = PowerDns.start_secondary(workdir, zones, **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    assert not [s for s in started if s.live_processes()], "pdns_server still running"


def pull(*args: str):
    return CliRunner().invoke(cli, ["pull", *args])


def file_records(path: Path) -> set[tuple[str, int, str, str]]:
    zone = dns.zone.from_file(str(path), origin=ORIGIN, relativize=False)
    return {
        (name.to_text().lower(), rds.ttl, dns.rdatatype.to_text(rds.rdtype), rd.to_text())
        for name, node in zone.nodes.items()
        for rds in node
        for rd in rds
    }


def dig_axfr(server: PowerDns, tmp_path: Path, key: TsigKey | None = None) -> Path:
    """What dig's AXFR from `server` holds, as a file (the reference to compare with)."""
    argv = [need_binary("dig"), f"@{server.host}", "-p", str(server.port), ORIGIN, "AXFR"]
    if key is not None:
        argv += ["-y", key.nsupdate_arg]
    done = subprocess.run([*argv, "+nocmd", "+nostats"], capture_output=True, text=True)
    assert done.returncode == 0 and "Transfer failed" not in done.stdout, done.stdout
    path = tmp_path / f"dig-{server.port}.zone"
    path.write_text(done.stdout)
    return path


def changed(serial: int, extra: str = "") -> str:
    return zone_text().replace(f"{SERIAL} ; serial", f"{serial} ; serial") + extra


def test_axfr_from_powerdns(pdns_primary, tmp_path):
    primary = pdns_primary()
    out = tmp_path / "z.zone"
    result = pull(ORIGIN, f"@{primary.addr}", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "kind=AXFR" in result.output
    # PowerDNS loads this file's relative SVCB targets as absolute, so compare
    # with what it serves (dig), not with the file
    assert file_records(out) == file_records(dig_axfr(primary, tmp_path))
    assert len(file_records(out)) == len(file_records(ZONE_FILE))


def test_ixfr_after_a_change_is_not_taken_for_up_to_date(pdns_primary, tmp_path):
    """PowerDNS answers IXFR with the new SOA alone, the zone, then the SOA again."""
    primary = pdns_primary()
    store = tmp_path / "store"
    assert pull(ORIGIN, f"@{primary.addr}", "-d", str(store)).exit_code == 0
    primary.write_zone(ZONE, changed(SERIAL + 1, "pdnsnew 60 IN A 192.0.2.55\n"))
    primary.reload()
    primary.wait_for_serial(ORIGIN, SERIAL + 1)
    result = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert (doc["status"], doc["kind"], doc["serial_from"], doc["serial_to"]) == (
        "transferred",
        "AXFR",
        SERIAL,
        SERIAL + 1,
    ), doc
    assert doc["fallback"] is None  # it came in the IXFR answer itself
    assert "pdnsnew 60 IN A 192.0.2.55" in (store / "example.com.zone").read_text()
    fresh = tmp_path / "fresh.zone"
    assert pull(ORIGIN, f"@{primary.addr}", "-o", str(fresh), "--axfr").exit_code == 0
    assert stored_master(store / "example.com.zone") == output_master(fresh)
    same = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
    assert json.loads(same.stdout)["status"] == "up-to-date"


def test_request_ixfr_false_asks_powerdns_for_axfr_only(pdns_primary, tmp_path):
    primary = pdns_primary()
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr], "request_ixfr": False}],
    )
    assert CliRunner().invoke(cli, ["pull", "-c", str(config)]).exit_code == 0
    primary.write_zone(ZONE, changed(SERIAL + 1))
    primary.reload()
    primary.wait_for_serial(ORIGIN, SERIAL + 1)
    result = CliRunner().invoke(cli, ["pull", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["kind"], doc["serial_to"]) == ("AXFR", SERIAL + 1), doc
    log = primary.log_path.read_text()
    assert (
        "IXFR" not in log
        and log.count("AXFR-out zone 'example.com', client '127.0.0.1', AXFR finished") == 2
    )


KEY = TsigKey.generate("pdns-xfr")


def test_tsig_with_powerdns(pdns_primary, tmp_path):
    primary = pdns_primary(
        tsig={KEY.name: (KEY.algorithm, KEY.secret)}, allow_transfer_key=KEY.name
    )
    tsig = f"{KEY.algorithm}:{KEY.name}:{KEY.secret}"
    result = pull(ORIGIN, f"@{primary.addr}", "-o", str(tmp_path / "z"), "--tsig", tsig)
    assert result.exit_code == 0, result.stderr
    assert file_records(tmp_path / "z") == file_records(dig_axfr(primary, tmp_path, KEY))
    unsigned = pull(ORIGIN, f"@{primary.addr}", "-o", str(tmp_path / "u"))
    assert unsigned.exit_code == 4, unsigned.stderr
    assert "zone example.com., server 127.0.0.1:" in unsigned.stderr
    wrong = TsigKey.generate(KEY.name)
    bad = pull(
        ORIGIN,
        f"@{primary.addr}",
        "-o",
        str(tmp_path / "w"),
        "--tsig",
        f"{wrong.algorithm}:{wrong.name}:{wrong.secret}",
    )
    assert bad.exit_code == 5, bad.stderr
    assert not (tmp_path / "u").exists() and not (tmp_path / "w").exists()


@pytest.mark.parametrize("with_tsig", [False, True])
def test_powerdns_as_secondary_of_serve(with_tsig, pdns_secondary, tmp_path):
    key = TsigKey.generate("down-key") if with_tsig else None
    secondary_port = free_port()
    zone_file = tmp_path / "primary.zone"
    zone_file.write_text(ZONE_FILE.read_text())
    zone: dict = {
        "name": ZONE,
        "file": str(zone_file),
        "notify": [f"127.0.0.1:{secondary_port}"],
        "allow_transfer": [f"key:{key.name}"] if key else ["127.0.0.0/8"],
    }
    keys = {key.name: {"algorithm": key.algorithm, "secret": key.secret}} if key else None
    config = write_config(
        tmp_path / "secdns.toml", directory=tmp_path / "store", zones=[zone], keys=keys
    )
    server = ServerThread(config)
    try:
        secondary = pdns_secondary({ZONE: ("127.0.0.1", server.port)}, key=key, port=secondary_port)
        assert secondary.soa_serial(ZONE) == SERIAL  # its first AXFR from serve
        axfr = tmp_path / "from-pdns.zone"
        assert pull(ORIGIN, f"@{secondary.addr}", "-o", str(axfr)).exit_code == 0
        assert file_records(axfr) == file_records(ZONE_FILE)  # as serve sent it
        zone_file.write_text(changed(SERIAL + 1, "added 300 IN A 192.0.2.222\n"))
        server.call(server.server.reload)  # as on SIGHUP: serve sends NOTIFY
        secondary.wait_for_serial(ZONE, SERIAL + 1, timeout=15)
        assert secondary.query("added.example.com.", "A").answer[0][0].address == "192.0.2.222"
    finally:
        server.stop()


def test_request_ixfr_must_be_a_boolean(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[zone]]\nname = "example.com"\nprimaries = ["127.0.0.1"]\nrequest_ixfr = "no"\n'
    )
    result = CliRunner().invoke(cli, ["pull", "-c", str(config)])
    assert result.exit_code == 2
    assert "zone[0] (example.com).request_ixfr: expected true or false" in result.stderr


def test_serve_follows_powerdns_by_notify(pdns_primary, tmp_path):
    """The issue's case: serve logged PowerDNS's NOTIFY, then stayed on the old serial."""
    port = free_port()
    primary = pdns_primary(notify=[("127.0.0.1", port)])
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        port=port,
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
    )
    server = ServerThread(config)
    try:
        server.wait_serial(ZONE, SERIAL)
        for round_ in (1, 2):
            primary.write_zone(
                ZONE, changed(SERIAL + round_, f"r{round_} 60 IN A 192.0.2.{round_}\n")
            )
            primary.reload()
            primary.wait_for_serial(ORIGIN, SERIAL + round_)
            primary.control("notify", ZONE)
            # NOTIFY, not the refresh timer (7200 s), brings the change
            assert server.wait_serial(ZONE, SERIAL + round_, timeout=10) < 8
            assert server.query(f"r{round_}.example.com.", "A").answer[0][0].address == (
                f"192.0.2.{round_}"
            )
    finally:
        server.stop()


def test_a_notify_without_its_soa_behind_a_packet_cache_is_checked_again(
    pdns_primary, tmp_path, caplog
):
    """PowerDNS's NOTIFY carries no SOA, and its packet cache answers the old SOA for a
    while after a change (a stranger's pdnsutil + pdns_control notify): the check it
    wakes finds no change, and is made again until one does (before: the zone stayed
    behind until its SOA refresh, ``ok`` in ctl status)."""
    import logging

    caplog.set_level(logging.INFO, logger="secdns")
    port = free_port()
    primary = pdns_primary(notify=[("127.0.0.1", port)], cache_ttl=5)
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        port=port,
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
    )
    server = ServerThread(config)
    try:
        server.wait_serial(ZONE, SERIAL)
        assert server.server is not None
        runtime = server.server.runtimes[dns.name.from_text(ORIGIN)]
        server.call(runtime.refresh)  # (its SOA now in the packet cache)
        primary.write_zone(ZONE, changed(SERIAL + 1, "p 60 IN A 192.0.2.9\n"))
        primary.reload()
        primary.control("notify", ZONE)
        server.wait_serial(ZONE, SERIAL + 1, timeout=20)
    finally:
        server.stop()
    said = [r.getMessage() for r in caplog.records]
    assert any("a NOTIFY without a serial" in line for line in said), said


def test_watch_mirror_with_request_ixfr_false_asks_axfr_only(pdns_primary, tmp_path):
    """watch -c honours [[zone]] request_ixfr = false as pull -c and serve do."""
    from test_watch import Recorder, run_mirror

    from secdns.endpoints import Endpoint
    from secdns.mirror import Mirror, MirrorEventKind, MirrorOptions, MirrorZone
    from secdns.store import Store
    from secdns.xfr import XfrKind

    primary = pdns_primary()
    events = Recorder()
    mirror = Mirror(
        [
            MirrorZone(
                dns.name.from_text(ORIGIN),
                (Endpoint(primary.host, primary.port),),
                request_ixfr=False,
            )
        ],
        store=Store(tmp_path / "store"),
        options=MirrorOptions(interval=0.2, jitter=0, timeout=1.0),
        on_event=events,
    )

    async def scenario() -> None:
        await events.wait(lambda: len(events.of(MirrorEventKind.UPDATED)) == 1)
        await asyncio.to_thread(primary.write_zone, ZONE, changed(SERIAL + 1))
        await asyncio.to_thread(primary.reload)
        await events.wait(lambda: len(events.of(MirrorEventKind.UPDATED)) == 2)

    asyncio.run(run_mirror(mirror, scenario))
    updates = events.of(MirrorEventKind.UPDATED)
    assert [(u.serial, u.via) for u in updates] == [
        (SERIAL, XfrKind.AXFR),
        (SERIAL + 1, XfrKind.AXFR),
    ]
    assert "IXFR" not in primary.log_path.read_text()
