"""``secdns watch``: the NOTIFY decision and the propagation bookkeeping (pure), then
mirror and monitor against real BIND and Knot on loopback, in-process and as a CLI."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import logging
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dns.asyncresolver
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from click.testing import CliRunner
from rich.console import Console
from servers import free_port, stored_master, tsig_secret, zone_text

from secdns.cli import cli
from secdns.cli.watch import command
from secdns.cli.watch_mirror import mirror_line
from secdns.cli.watch_monitor import monitor_line, monitor_table
from secdns.endpoints import Endpoint
from secdns.errors import NetworkError, TimeoutError_
from secdns.hook import exec_environment
from secdns.mirror import (
    Mirror,
    MirrorEvent,
    MirrorEventKind,
    MirrorOptions,
    MirrorZone,
)
from secdns.monitor import (
    Lag,
    Monitor,
    MonitorEvent,
    MonitorEventKind,
    MonitorOptions,
    MonitorOutcome,
    PropagationTracker,
    Target,
    nameserver_targets,
)
from secdns.notify import NotifyAcl, answer_notify
from secdns.refresh import retry_delay
from secdns.store import Store
from secdns.xfr import XfrKind

ZONE = "example.com"
ORIGIN = dns.name.from_text(ZONE)
SERIAL = 2024010101
ROOT = Path(__file__).resolve().parent.parent
# Until `watch` is registered in secdns/cli/__init__.py, subprocesses add it themselves.
SECDNS = [
    sys.executable,
    "-c",
    "from secdns.cli import cli; from secdns.cli.watch import "
    "command; cli.add_command(command); cli(prog_name='secdns')",
]


def run(*args: str, env: dict[str, str] | None = None):
    """``secdns watch ARGS`` in-process; registers the command only meanwhile, so that
    tests of the generated docs see the tree secdns/cli/__init__.py builds."""
    added = "watch" not in cli.commands
    if added:
        cli.add_command(command)
    try:
        return CliRunner().invoke(cli, ["watch", *args], env=env)
    finally:
        if added:
            cli.commands.pop("watch", None)


# --- NOTIFY: the decision ------------------------------------------------------------------------

TABLE = {
    ORIGIN: NotifyAcl(
        sources=(ipaddress.ip_network("192.0.2.1/32"), ipaddress.ip_network("2001:db8::/64"))
    )
}


def notify_wire(
    zone: str = ZONE,
    *,
    opcode: dns.opcode.Opcode = dns.opcode.NOTIFY,
    rdtype: str = "SOA",
    edns: bool = False,
    serial: int | None = None,
) -> bytes:
    query = dns.message.make_query(zone, rdtype, use_edns=0 if edns else None)
    query.flags = dns.flags.AA  # the opcode lives in the flags: set it after
    query.set_opcode(opcode)
    if serial is not None:
        query.answer.append(
            dns.rrset.from_text(
                zone + ".", 3600, "IN", "SOA", f"ns1.{zone}. h.{zone}. {serial} 1 1 1 1"
            )
        )
    return query.to_wire()


def test_notify_from_a_primary_is_accepted_with_aa_and_the_question_echoed():
    wire = notify_wire(serial=SERIAL + 1, edns=True)
    decision = answer_notify(wire, "192.0.2.1", TABLE)
    assert decision.zone == ORIGIN
    response = dns.message.from_wire(decision.response)
    query = dns.message.from_wire(wire)
    assert response.id == query.id
    assert response.flags & dns.flags.QR and response.flags & dns.flags.AA
    assert response.opcode() == dns.opcode.NOTIFY and response.rcode() == dns.rcode.NOERROR
    assert response.question == query.question
    assert not response.answer and response.edns == 0  # an OPT in, an OPT out (RFC 6891)
    # from an allowed network, and as an IPv4-mapped IPv6 socket address
    assert answer_notify(wire, "2001:db8::99", TABLE).zone == ORIGIN
    assert answer_notify(wire, "::ffff:192.0.2.1", TABLE).zone == ORIGIN


@pytest.mark.parametrize(
    ("wire", "source", "rcode"),
    [
        (notify_wire(), "192.0.2.2", dns.rcode.REFUSED),  # not a primary
        (notify_wire(), "2001:db8:1::1", dns.rcode.REFUSED),
        (notify_wire(), "not-an-address", dns.rcode.REFUSED),
        (notify_wire("example.org"), "192.0.2.1", dns.rcode.NOTAUTH),  # not a zone we watch
        (notify_wire(opcode=dns.opcode.QUERY), "192.0.2.1", dns.rcode.NOTIMP),
        (notify_wire(opcode=dns.opcode.UPDATE), "192.0.2.1", dns.rcode.NOTIMP),
        (notify_wire(rdtype="A"), "192.0.2.1", dns.rcode.FORMERR),
    ],
    ids=[
        "other-source",
        "other-v6-source",
        "bad-source",
        "other-zone",
        "query",
        "update",
        "not-soa",
    ],
)
def test_notify_refusals(wire, source, rcode):
    decision = answer_notify(wire, source, TABLE)
    assert decision.zone is None
    response = dns.message.from_wire(decision.response)
    assert response.rcode() == rcode
    assert not response.flags & dns.flags.AA
    assert len(decision.response) <= len(wire)


def test_notify_garbage_is_dropped_and_no_answer_is_larger_than_its_query():
    rng = random.Random(1996)
    answered = 0
    seeds = [
        notify_wire(),
        notify_wire(edns=True, serial=7),
        notify_wire("a.example.com"),
        notify_wire(opcode=dns.opcode.QUERY),
    ]
    for _ in range(8000):
        if rng.random() < 0.5:  # random bytes
            wire = bytearray(rng.randbytes(rng.randint(0, 80)))
        else:  # a real query with a few bytes changed, cut or extended
            wire = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 3)):
                wire[rng.randrange(len(wire))] = rng.randrange(256)
            if rng.random() < 0.3:
                wire = wire[: rng.randrange(len(wire))] + rng.randbytes(rng.randint(0, 20))
        decision = answer_notify(bytes(wire), "192.0.2.1", TABLE)
        if decision.response is not None:
            answered += 1
            assert len(decision.response) <= len(wire)
            assert dns.message.from_wire(decision.response).flags & dns.flags.QR
    assert answered > 800
    # a response is never answered (no loops), nor a short or huge datagram
    response = dns.message.make_response(dns.message.from_wire(notify_wire())).to_wire()
    for wire in (response, b"\x00" * 11, notify_wire() + b"\x00" * 5000):
        assert answer_notify(wire, "192.0.2.1", TABLE).response is None
    # no question: FORMERR with nothing echoed
    empty = dns.message.Message()
    empty.set_opcode(dns.opcode.NOTIFY)
    decision = answer_notify(empty.to_wire(), "192.0.2.1", TABLE)
    assert dns.message.from_wire(decision.response).rcode() == dns.rcode.FORMERR


# --- pure helpers --------------------------------------------------------------------------------


def test_retry_backs_off_from_the_soa_retry_capped_at_the_refresh():
    assert [retry_delay(n, 7200, 900) for n in range(1, 6)] == [900, 1800, 3600, 7200, 7200]
    assert [retry_delay(n, 0.2, 0.2) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.6, 1.6]
    assert retry_delay(10_000, 3600, 60) == 3600


def test_exec_environment_has_the_change_and_no_secdns_variable(monkeypatch):
    base = {
        "PATH": "/bin",
        "SECDNS_WATCH_TSIG": "hmac-sha256:k:c2VjcmV0",
        "SECDNS_KEYFILE": "/etc/k",
    }
    env = exec_environment(
        base,
        zone="example.com.",
        old_serial=None,
        new_serial=7,
        file="/z/example.com.zone",
        kind=XfrKind.AXFR,
    )
    assert env == {
        "PATH": "/bin",
        "SECDNS_ZONE": "example.com.",
        "SECDNS_OLD_SERIAL": "",
        "SECDNS_NEW_SERIAL": "7",
        "SECDNS_FILE": "/z/example.com.zone",
        "SECDNS_KIND": "AXFR",
    }


def test_tracker_measures_drift_lag_and_convergence():
    targets = [
        Target("ns1", "192.0.2.1"),
        Target("ns2", "192.0.2.2"),
        Target("ns3.example.net.", None, error="NXDOMAIN"),
    ]
    tracker = PropagationTracker("example.com.", targets, started=100.0, wall_started=0.0)
    first = tracker.observe(0, 100.1, serial=5) + tracker.observe(1, 100.2, serial=5)
    assert [e.kind for e in first] == [
        MonitorEventKind.SERIAL,
        MonitorEventKind.SERIAL,
        MonitorEventKind.CONSISTENT,
    ]
    assert [e.lag for e in first[:2]] == [None, None]  # they had it before we asked
    assert tracker.consistent_serial() == 5
    # ns1 moves to 6: drift; ns2 answers the old serial, then fails, then catches up
    (moved,) = tracker.observe(0, 110.0, serial=6)
    assert (moved.serial, moved.previous, moved.lag, moved.newest) == (6, 5, Lag(0.0, 0.0), 6)
    assert tracker.observe(1, 110.5, serial=5) == []
    assert tracker.consistent_serial() is None and not tracker.reached(6)
    (failed,) = tracker.observe(1, 111.0, error=TimeoutError_("no answer within 2s"))
    assert failed.kind is MonitorEventKind.FAILED and failed.error == "no answer within 2s"
    assert tracker.observe(1, 111.5, error=TimeoutError_("no answer within 2s")) == []
    caught_up = tracker.observe(1, 113.5, serial=6)
    assert [e.kind for e in caught_up] == [MonitorEventKind.SERIAL, MonitorEventKind.CONSISTENT]
    # ns2 switched between 110.5 and 113.5, ns1 between 100.1 and 110.0: 0.5 to 13.4 s later
    lag = caught_up[0].lag
    assert (lag.value, lag.precision) == (pytest.approx(6.95), pytest.approx(6.45))
    assert caught_up[1].lag == lag
    assert caught_up[0].elapsed == pytest.approx(13.5) and caught_up[0].at == pytest.approx(13.5)
    assert tracker.reached(6) and tracker.reached(5) and not tracker.reached(7)
    statuses = tracker.statuses()
    assert [(s.serial, s.current, s.lag) for s in statuses] == [
        (6, True, Lag(0.0, 0.0)),
        (6, True, lag),
        (None, False, None),
    ]
    assert statuses[2].error == "NXDOMAIN" and statuses[2].address == "-"


def test_tracker_compares_serials_by_rfc_1982():
    tracker = PropagationTracker("z.", [Target("a", "192.0.2.1")], started=0.0)
    tracker.observe(0, 1.0, serial=3)  # 0xFFFFFFFF + 4: wrapped around
    assert tracker.reached(0xFFFFFFFF) and tracker.reached(3) and not tracker.reached(4)
    tracker.observe(0, 2.0, serial=0xFFFFFFF0)
    assert tracker.newest == 3  # 0xFFFFFFF0 is older than 3


def test_event_lines_json_and_table():
    event = MonitorEvent(
        MonitorEventKind.SERIAL,
        "example.com.",
        0.5,
        0.5,
        server="ns1",
        address="192.0.2.1:53",
        serial=6,
        previous=5,
        lag=Lag(1.2, 1.3),
        newest=6,
    )
    assert monitor_line(event) == (
        "time=1970-01-01T00:00:00.500Z event=serial zone=example.com. server=ns1 "
        "address=192.0.2.1:53 serial=6 previous=5 lag=1.250s lag_min=1.200s lag_max=1.300s "
        "lag_precision=0.050s newest=6"
    )
    assert list(event.to_dict()) == [
        "event",
        "time",
        "elapsed",
        "zone",
        "server",
        "address",
        "serial",
        "previous",
        "lag",
        "lag_min",
        "lag_max",
        "lag_precision",
        "newest",
        "error",
    ]
    update = MirrorEvent(
        MirrorEventKind.UPDATED,
        "example.com.",
        0.0,
        serial=6,
        previous=5,
        via=XfrKind.IXFR,
        primary="192.0.2.1:53",
        file="/z/a b.zone",
        added=2,
        removed=1,
    )
    assert mirror_line(update) == (
        "time=1970-01-01T00:00:00.000Z event=updated zone=example.com. serial=5->6 via=IXFR "
        'added=2 removed=1 primary=192.0.2.1:53 file="/z/a b.zone"'
    )
    assert json.loads(json.dumps(update.to_dict()))["via"] == "IXFR"
    tracker = PropagationTracker(
        "example.com.", [Target("ns1", "192.0.2.1"), Target("ns2", "192.0.2.2")], started=0.0
    )
    tracker.observe(0, 0.1, serial=6)
    tracker.observe(1, 0.2, error=NetworkError("refused"))
    buffer = io.StringIO()
    Console(file=buffer, width=100).print(
        monitor_table("example.com.", tracker.statuses(), tracker.newest)
    )
    table = buffer.getvalue()
    assert "newest serial 6  1/2 current" in table
    assert "192.0.2.1:53" in table and "(refused)" in table
    assert "lag" in table and "last change" in table


def test_cli_usage_errors_are_exit_2():
    cases = [
        (["example.com"], "usage: secdns watch ZONE @PRIMARY"),
        (["example.com", "@127.0.0.1"], "say where the zone goes"),
        (["example.com", "@127.0.0.1", "-o", "-"], "not -o -"),
        (
            ["example.com", "@127.0.0.1", "-o", "f", "--until-consistent"],
            "--until-consistent cannot be used in mirror mode",
        ),
        (["example.com", "--servers"], "--servers needs the @SERVER arguments"),
        (
            ["example.com", "--servers", "@127.0.0.1", "-d", "x"],
            "-d cannot be used in monitor mode",
        ),
        (
            ["example.com", "--servers", "@127.0.0.1", "--timeout", "3"],
            "--timeout goes with --until-serial or --until-consistent",
        ),
        (
            ["example.com", "--servers", "@127.0.0.1", "--until-serial", "3", "--until-consistent"],
            "not both",
        ),
        (["a.example", "b.example", "--servers", "@127.0.0.1"], "usage: secdns watch ZONE"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1
    result = run("-h")
    assert result.exit_code == 0 and "Examples:" in result.output


def test_nothing_answers_is_exit_3(tmp_path):
    # $SECDNS_CONFIG (for shell completion) does not get in the way of @SERVERs
    env = {"SECDNS_CONFIG": str(tmp_path / "secdns.toml")}
    result = run(
        "example.com",
        "--servers",
        "@127.0.0.1:9",
        "--until-consistent",
        "--timeout",
        "0.5",
        "--query-timeout",
        "0.1",
        "--interval",
        "0.1",
        env=env,
    )
    assert result.exit_code == 3, (result.output, result.stderr)
    assert "event=lagging" in result.stdout and "127.0.0.1:9" in result.stderr
    result = run("example.com", "@127.0.0.1:9", env=env)
    assert result.exit_code == 2 and "say where the zone goes" in result.stderr
    result = run("example.com", "@127.0.0.1:9", "-c", env["SECDNS_CONFIG"], "-d", "x")
    assert result.exit_code == 2 and "drop the @SERVER arguments" in result.stderr


# --- mirror against real servers -----------------------------------------------------------------


class Recorder:
    """Collects events; ``await wait(pred)`` until one (or a state) matches."""

    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, event: object) -> None:
        self.events.append(event)

    def of(self, kind: object) -> list:
        return [e for e in self.events if e.kind is kind]

    async def wait(self, predicate: Callable[[], object], timeout: float = 8.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events: {self.events}")
            await asyncio.sleep(0.02)


async def run_mirror(mirror: Mirror, scenario: Callable[[], object]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(mirror.run(stop))
    try:
        await scenario()  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("kind", ["bind", "knot"])
def test_mirror_follows_nsupdates_by_ixfr_and_runs_exec(kind, request, tmp_path, monkeypatch):
    primary = request.getfixturevalue(f"{kind}_primary")()
    # a secret in the environment must not reach the command
    monkeypatch.setenv("SECDNS_WATCH_TSIG", "hmac-sha256:xfr:c2VjcmV0")
    hook_log = tmp_path / "hook.log"
    hook = (
        f'echo "$SECDNS_ZONE $SECDNS_OLD_SERIAL $SECDNS_NEW_SERIAL $SECDNS_KIND '
        f'$SECDNS_FILE $(env | grep -c c2VjcmV0)" >> {hook_log}'
    )
    store = Store(tmp_path / "store")
    events = Recorder()
    mirror = Mirror(
        [MirrorZone(ORIGIN, (Endpoint(primary.host, primary.port),))],
        store=store,
        options=MirrorOptions(interval=0.2, jitter=0, timeout=1.0, exec_command=hook),
        on_event=events,
    )
    changes = [
        "update add new1.example.com. 300 A 192.0.2.71",
        "update delete www.example.com. A 192.0.2.81",
        'update add new3.example.com. 300 TXT "third"',
    ]

    async def scenario() -> None:
        await events.wait(lambda: len(events.of(MirrorEventKind.EXEC)) == 1)
        for number, change in enumerate(changes, start=1):
            await asyncio.to_thread(primary.nsupdate, change)
            await events.wait(lambda n=number: len(events.of(MirrorEventKind.EXEC)) == n + 1)

    asyncio.run(run_mirror(mirror, scenario))
    updates = events.of(MirrorEventKind.UPDATED)
    assert [(u.previous, u.serial, u.via) for u in updates] == [
        (None, SERIAL, XfrKind.AXFR),
        (SERIAL, SERIAL + 1, XfrKind.IXFR),
        (SERIAL + 1, SERIAL + 2, XfrKind.IXFR),
        (SERIAL + 2, SERIAL + 3, XfrKind.IXFR),
    ]
    assert [(u.added, u.removed) for u in updates[1:]] == [(1, 0), (0, 1), (1, 0)]
    path = store.zone_path(ORIGIN)
    assert hook_log.read_text().splitlines() == [
        f"example.com.  {SERIAL} AXFR {path} 0",  # no old serial: empty
        f"example.com. {SERIAL} {SERIAL + 1} IXFR {path} 0",
        f"example.com. {SERIAL + 1} {SERIAL + 2} IXFR {path} 0",
        f"example.com. {SERIAL + 2} {SERIAL + 3} IXFR {path} 0",
    ]
    assert all(e.exit_status == 0 for e in events.of(MirrorEventKind.EXEC))
    text = path.read_text()
    assert "new1 300 IN A 192.0.2.71" in text and 'new3 300 IN TXT "third"' in text
    assert "192.0.2.81" not in text
    assert store.load_state(ORIGIN).serial == SERIAL + 3


def test_mirror_writes_its_store_in_group_commits(knot_primary, tmp_path):
    """Watch's store writes go through group commits, as serve's and pull -c's (a
    stranger's 5,000 current zones took watch 6.6 s, each state write fsynced alone,
    against pull -c's 3.3 s; 4.4 s now), waited for out of the transfer slot: the
    file is there when the event comes."""
    names = [f"g{i}.example" for i in range(30)]
    soa = "@ IN SOA ns1 hostmaster 7 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    primary = knot_primary({name: f"$ORIGIN {name}.\n$TTL 300\n{soa}" for name in names})
    store = Store(tmp_path / "store")
    zones = [
        MirrorZone(dns.name.from_text(name), (Endpoint(primary.host, primary.port),))
        for name in names
    ]
    for round_, wanted in enumerate((MirrorEventKind.UPDATED, MirrorEventKind.SYNCED)):
        events = Recorder()
        seen: list[bool] = []

        def on_event(event: object, events: Recorder = events, seen: list[bool] = seen) -> None:
            events(event)
            if getattr(event, "kind", None) in (MirrorEventKind.UPDATED, MirrorEventKind.SYNCED):
                origin = dns.name.from_text(event.zone)  # type: ignore[attr-defined]
                seen.append(store.zone_path(origin).exists())

        mirror = Mirror(zones, store=store, options=MirrorOptions(timeout=2.0), on_event=on_event)

        async def scenario(events: Recorder = events, wanted: MirrorEventKind = wanted) -> None:
            await events.wait(lambda: len(events.of(wanted)) == len(names), timeout=20)

        asyncio.run(run_mirror(mirror, scenario))
        assert mirror._commits is not None
        assert mirror._commits.written >= len(names), round_  # (batched as they queue up)
        assert all(seen) and len(seen) == len(names)
    assert all(store.load_state(zone.origin).serial == 7 for zone in zones)


def test_notify_triggers_the_refresh_long_before_the_poll_interval(bind_primary, tmp_path):
    listen_port = free_port()
    primary = bind_primary(notify=[("127.0.0.1", listen_port)])
    out = tmp_path / "example.com.zone"
    events = Recorder()
    mirror = Mirror(
        [MirrorZone(ORIGIN, (Endpoint(primary.host, primary.port),), output=out)],
        options=MirrorOptions(
            interval=60, jitter=0, timeout=1.0, notify_listen=Endpoint("127.0.0.1", listen_port)
        ),
        on_event=events,
    )

    async def scenario() -> None:
        await events.wait(lambda: events.of(MirrorEventKind.UPDATED))
        assert mirror.notify_address == ("127.0.0.1", listen_port)
        started = time.monotonic()
        await asyncio.to_thread(primary.nsupdate, "update add n.example.com. 60 A 192.0.2.9")
        await events.wait(lambda: len(events.of(MirrorEventKind.UPDATED)) == 2, timeout=5)
        assert time.monotonic() - started < 5  # the poll would come after 60 s
        # a second change: NOTIFYs keep working, and coalesce (one check per burst)
        await asyncio.to_thread(primary.nsupdate, "update add m.example.com. 60 A 192.0.2.8")
        await events.wait(lambda: len(events.of(MirrorEventKind.UPDATED)) == 3, timeout=5)

    asyncio.run(run_mirror(mirror, scenario))
    notifies = events.of(MirrorEventKind.NOTIFY)
    assert notifies and all(n.source.startswith("127.0.0.1:") for n in notifies)
    # what BIND's NOTIFY announced, beside the serial held when it came (a stranger read
    # the held one as the NOTIFY's)
    assert {n.announced for n in notifies} <= {SERIAL + 1, SERIAL + 2}
    assert any(n.announced == SERIAL + 2 and n.serial == SERIAL + 1 for n in notifies)
    assert events.of(MirrorEventKind.UPDATED)[-1].serial == SERIAL + 2
    log_text = primary.log_path.read_text()
    assert f"sending notifies (serial {SERIAL + 2})" in log_text
    assert not [
        line
        for line in log_text.splitlines()
        if "notify" in line.lower() and ("refused" in line or "NOTIMP" in line)
    ]
    assert "n 60 IN A 192.0.2.9" in out.read_text()


def test_notify_listener_answers_only_primaries_on_the_wire(tmp_path):
    port = free_port()
    out = tmp_path / "z.zone"
    mirror = Mirror(
        [MirrorZone(ORIGIN, (Endpoint("127.0.0.1", 9),), output=out)],
        options=MirrorOptions(interval=60, timeout=0.2, notify_listen=Endpoint("127.0.0.1", port)),
    )

    def ask(wire: bytes, source: str) -> dns.message.Message | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((source, 0))
            sock.settimeout(1.0)
            sock.sendto(wire, ("127.0.0.1", port))
            try:
                return dns.message.from_wire(sock.recv(4096))
            except TimeoutError:
                return None

    async def scenario() -> None:
        await asyncio.sleep(0.1)
        primary = await asyncio.to_thread(ask, notify_wire(), "127.0.0.1")
        other = await asyncio.to_thread(ask, notify_wire(), "127.0.0.2")
        query = await asyncio.to_thread(ask, notify_wire(opcode=dns.opcode.QUERY), "127.0.0.1")
        garbage = await asyncio.to_thread(ask, b"\x12\x34" + b"\x00" * 3, "127.0.0.1")
        assert primary is not None and primary.rcode() == dns.rcode.NOERROR
        assert primary.flags & dns.flags.AA
        assert other is not None and other.rcode() == dns.rcode.REFUSED
        assert query is not None and query.rcode() == dns.rcode.NOTIMP
        assert garbage is None

    asyncio.run(run_mirror(mirror, scenario))


def test_mirror_recovers_when_the_primary_is_stopped_and_restarted(bind_primary, tmp_path, caplog):
    primary = bind_primary()
    port = primary.port
    store = Store(tmp_path / "store")
    events = Recorder()
    mirror = Mirror(
        [MirrorZone(ORIGIN, (Endpoint("127.0.0.1", port),))],
        store=store,
        options=MirrorOptions(interval=0.2, jitter=0, timeout=0.2),
        on_event=events,
    )
    newer = zone_text().replace(str(SERIAL), str(SERIAL + 5)) + "back A 192.0.2.55\n"

    async def scenario() -> None:
        await events.wait(lambda: events.of(MirrorEventKind.UPDATED))
        await asyncio.to_thread(primary.stop)
        await events.wait(lambda: len(events.of(MirrorEventKind.FAILED)) >= 3)
        failed = events.of(MirrorEventKind.FAILED)
        assert [f.failures for f in failed[:3]] == [1, 2, 3]
        assert [f.retry_in for f in failed[:3]] == [0.2, 0.4, 0.8]  # backing off
        await asyncio.to_thread(bind_primary, {ZONE: newer}, port=port)
        await events.wait(lambda: len(events.of(MirrorEventKind.UPDATED)) == 2, timeout=10)

    with caplog.at_level(logging.INFO, logger="secdns"):
        asyncio.run(run_mirror(mirror, scenario))
    assert events.of(MirrorEventKind.RECOVERED)
    assert events.of(MirrorEventKind.UPDATED)[-1].serial == SERIAL + 5
    assert "back 3600 IN A 192.0.2.55" in store.zone_path(ORIGIN).read_text()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    # a refusing primary is one warning; each zone's failure is info (a stranger's
    # stopped primary made one warning a zone: 2,000)
    assert any(
        level == "INFO" and m.startswith("watch: zone=example.com. primary unreachable, retry in")
        for level, m in said
    ), said
    refuses = [level for level, m in said if "refuses: nothing serves there" in m]
    assert refuses == ["WARNING"], said
    assert any("answers again" in m for _level, m in said)


def test_cli_mirror_follows_every_configured_zone_with_tsig_and_stops_on_sigterm(
    bind_primary, tmp_path
):
    secret = tsig_secret()
    other = (
        "$ORIGIN example.org.\n$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 300\n"
        "@ NS ns1\nns1 A 192.0.2.1\n"
    )
    primary = bind_primary(
        {ZONE: zone_text(), "example.org": other},
        tsig={"xfr": ("hmac-sha256", secret)},
        allow_transfer_key="xfr",
    )
    config = tmp_path / "secdns.toml"
    config.write_text(f"""[server]
directory = "zones"
[keys.xfr]
algorithm = "hmac-sha256"
secret = "{secret}"
[[zone]]
name = "example.com"
primaries = ["{primary.addr}"]
key = "xfr"
[[zone]]
name = "example.org"
primaries = ["{primary.addr}"]
key = "xfr"
""")
    process = subprocess.Popen(
        [*SECDNS, "watch", "-c", str(config), "--interval", "0.2", "--json", "-vv"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = [json.loads(process.stdout.readline()) for _ in range(2)]  # type: ignore[union-attr]
        assert sorted((e["event"], e["zone"], e["serial"], e["via"]) for e in first) == [
            ("updated", "example.com.", SERIAL, "AXFR"),
            ("updated", "example.org.", 7, "AXFR"),
        ]
        # a few more checks, logged at debug level: each one is recorded in the state
        # (the first version holds its state in its first line: the first check after
        # it makes the state file)
        state = tmp_path / "zones" / "example.org.state.toml"
        deadline = time.monotonic() + 10
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        before = state.stat().st_mtime_ns
        while state.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state.stat().st_mtime_ns != before
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "pull: zone=example.org. serial none -> 7 via AXFR" in stderr
    assert secret not in stderr and secret not in stdout
    assert stored_master(tmp_path / "zones" / "example.org.zone").startswith(
        "; zone example.org. serial 7 "
    )


# --- monitor against real servers ----------------------------------------------------------------


@pytest.fixture
def drifting(bind_primary, knot_secondary):
    """A BIND primary and a Knot secondary of it that refreshes only when told to."""
    primary = bind_primary()
    secondary = knot_secondary({ZONE: primary.endpoint})
    return primary, secondary


def test_monitor_sees_two_servers_drift_and_converge(drifting):
    primary, secondary = drifting
    targets = [
        Target("primary", primary.host, primary.port),
        Target("secondary", secondary.host, secondary.port),
    ]
    events = Recorder()
    monitor = Monitor(
        ORIGIN, targets, options=MonitorOptions(interval=0.1, timeout=1.0), on_event=events
    )

    def consistent_at(serial: int) -> bool:
        return any(e.serial == serial for e in events.of(MonitorEventKind.CONSISTENT))

    def drift() -> dict[str, tuple[int | None, bool]]:
        return {s.server: (s.serial, s.current) for s in monitor.statuses()}

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(monitor.run(stop))
        await events.wait(lambda: consistent_at(SERIAL))
        await asyncio.to_thread(primary.nsupdate, "update add d.example.com. 60 A 192.0.2.4")
        await events.wait(
            lambda: any(e.serial == SERIAL + 1 for e in events.of(MonitorEventKind.SERIAL))
        )
        # drift: the primary answers the new serial, the secondary still the old one
        drifted = {"primary": (SERIAL + 1, True), "secondary": (SERIAL, False)}
        await events.wait(lambda: drift() == drifted)
        await asyncio.to_thread(secondary.knotc, "zone-refresh", f"{ZONE}.")
        await events.wait(lambda: consistent_at(SERIAL + 1))
        stop.set()
        summary = await task
        assert summary.outcome is MonitorOutcome.STOPPED and summary.exit_code == 0

    asyncio.run(scenario())
    moved = {e.server: e for e in events.of(MonitorEventKind.SERIAL) if e.serial == SERIAL + 1}
    assert moved["primary"].lag == Lag(0.0, 0.0)
    assert 0 < moved["secondary"].lag.value < 5
    assert moved["secondary"].previous == SERIAL
    converged = [e for e in events.of(MonitorEventKind.CONSISTENT) if e.serial == SERIAL + 1]
    assert converged[0].lag == pytest.approx(moved["secondary"].lag)


def test_until_consistent_exits_0_when_they_converge(drifting):
    primary, secondary = drifting
    primary.nsupdate("update add d.example.com. 60 A 192.0.2.4")
    process = subprocess.Popen(
        [
            *SECDNS,
            "watch",
            ZONE,
            "--servers",
            f"@{primary.addr}",
            f"@{secondary.addr}",
            "--until-consistent",
            "--timeout",
            "20",
            "--interval",
            "0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen: list[str] = []
        while len(seen) < 2:  # each server's first answer: they differ
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, process.stderr.read()  # type: ignore[union-attr]
            if "event=serial" in line:
                seen.append(line)
        assert {f"serial={SERIAL + 1}", f"serial={SERIAL}"} == {
            next(f for f in line.split() if f.startswith("serial=")) for line in seen
        }
        with pytest.raises(subprocess.TimeoutExpired):  # still waiting at the deadline
            process.wait(timeout=0.3)
        secondary.knotc("zone-refresh", f"{ZONE}.")
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    assert any(
        f"event=consistent zone=example.com. serial={SERIAL + 1}" in line for line in lines[:-1]
    ), lines
    assert lines[-1].startswith("time=")  # the summary is timed like every event
    assert (
        lines[-1]
        .split(" ", 1)[1]
        .startswith(f"event=summary zone=example.com. result=consistent newest={SERIAL + 1} ")
    )
    assert "lagging=0" in lines[-1]


def test_until_consistent_and_until_serial_exit_1_on_timeout_naming_who_lagged(drifting):
    primary, secondary = drifting
    primary.nsupdate("update add d.example.com. 60 A 192.0.2.4")
    servers = ["--servers", f"@{primary.addr}", f"@{secondary.addr}", "--interval", "0.1"]
    started = time.monotonic()
    result = run(ZONE, *servers, "--until-consistent", "--timeout", "1")
    assert time.monotonic() - started < 4
    assert result.exit_code == 1, (result.output, result.stderr)
    summary = [  # the summary lines, without their time=
        line.split(" ", 1)[1]
        for line in result.stdout.splitlines()
        if line.split(" ", 2)[1:2] in (["event=summary"], ["event=lagging"])
    ]
    assert summary[-1].startswith("event=summary zone=example.com. result=timeout ")
    assert summary[-2] == (
        f"event=lagging zone=example.com. server={secondary.addr} "
        f"address={secondary.addr} serial={SERIAL} error=-"
    )
    assert result.stderr.startswith(
        "secdns: watch: zone example.com.: 1 of 2 addresses not at "
        f"the same serial (newest {SERIAL + 1})"
    )
    assert f"{secondary.addr} (serial {SERIAL})" in result.stderr
    # --until-serial: the primary's serial is enough for the primary alone...
    result = run(
        ZONE,
        "--servers",
        f"@{primary.addr}",
        "--until-serial",
        str(SERIAL + 1),
        "--timeout",
        "5",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary_doc = json.loads(result.stdout.splitlines()[-1])
    assert (summary_doc["event"], summary_doc["result"], summary_doc["lagging"]) == (
        "summary",
        "reached",
        [],
    )
    # ...not for both, as JSON
    result = run(ZONE, *servers, "--until-serial", str(SERIAL + 1), "--timeout", "0.5", "--json")
    assert result.exit_code == 1
    summary_doc = json.loads(result.stdout.splitlines()[-1])
    assert summary_doc["result"] == "timeout" and summary_doc["until_serial"] == SERIAL + 1
    assert [s["address"] for s in summary_doc["lagging"]] == [secondary.addr]


def test_cli_monitor_stops_cleanly_on_sigterm(bind_primary):
    primary = bind_primary()
    process = subprocess.Popen(
        [*SECDNS, "watch", ZONE, "--servers", f"@{primary.addr}", "--interval", "0.1", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert (first["event"], first["serial"]) == ("serial", SERIAL)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert json.loads(stdout.splitlines()[-1])["result"] == "stopped"


def test_nameservers_auto_watches_every_address_of_the_ns_set(bind_primary):
    primary = bind_primary()
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [primary.host]
    resolver.port = primary.port
    resolver.lifetime = 2.0
    targets = asyncio.run(nameserver_targets(ORIGIN, resolver=resolver, port=5300))
    # ns1.example.com. has an A and an AAAA in the zone; ns2.example.net. has no address here
    assert [(t.server, t.address, t.port) for t in targets] == [
        ("ns1.example.com.", "192.0.2.53", 5300),
        ("ns1.example.com.", "2001:db8::53", 5300),
        ("ns2.example.net.", None, 5300),
    ]
    assert targets[2].error


def test_cli_stops_when_the_reader_of_its_output_goes_away(bind_primary):
    """``secdns watch ... | head -1`` ends with head, not at the next event."""
    primary = bind_primary()
    process = subprocess.Popen(
        [*SECDNS, "watch", ZONE, "--servers", f"@{primary.addr}", "--interval", "0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().startswith("time=")  # type: ignore[union-attr]
        process.stdout.close()  # type: ignore[union-attr]
        assert process.wait(5) == 141  # as every command whose reader went away
        assert process.stderr.read() == ""  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
