"""Lags measured from the primary (pure: the tracker given times), and the lag as
a window in every output (key=value, JSON, table, summary)."""

from __future__ import annotations

import asyncio
import io
import json

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest
from click.testing import CliRunner
from rich.console import Console

from secdns.cli import cli, watch_monitor
from secdns.cli.watch import _primary
from secdns.cli.watch_monitor import monitor_line, monitor_table, summary_lines, summary_text
from secdns.endpoints import parse_endpoint
from secdns.errors import NetworkError
from secdns.monitor import (
    Lag,
    MonitorEventKind,
    MonitorOutcome,
    MonitorSummary,
    Target,
    nameserver_targets,
)
from secdns.propagation import PropagationTracker

PRIMARY, NOTIFIED, TIMER = 0, 1, 2


def tracker() -> PropagationTracker:
    targets = [
        Target("primary", "192.0.2.1", primary=True),
        Target("notified", "192.0.2.2"),
        Target("timer", "192.0.2.3"),
    ]
    tracked = PropagationTracker("z.", targets, started=0.0, wall_started=0.0, primaries=[0])
    for index in range(3):
        tracked.observe(index, 0.01, serial=5, sent=0.0)
    return tracked


def serial_events(events):
    return [(e.address, e.serial, e.lag) for e in events if e.kind is MonitorEventKind.SERIAL]


def test_lags_are_measured_from_the_primary_window():
    tracked = tracker()
    assert tracked.observe(PRIMARY, 10.00, serial=5, sent=9.99) == []
    (moved,) = tracked.observe(PRIMARY, 10.05, serial=6, sent=10.04)
    assert moved.lag == Lag(0.0, 0.0)  # the reference: it switched in (9.99, 10.05)
    # a secondary asked at once after: it had switched between its last ask and now
    tracked.observe(NOTIFIED, 9.50, serial=5, sent=9.49)
    (notified,) = tracked.observe(NOTIFIED, 10.06, serial=6, sent=10.055)
    assert notified.lag.low == 0.0 and notified.lag.high == pytest.approx(10.06 - 9.99)
    # the timer one: asked every 25 ms until it switched, 2 s later
    tracked.observe(TIMER, 12.00, serial=5, sent=11.999)
    events = tracked.observe(TIMER, 12.026, serial=6, sent=12.025)
    lag = events[0].lag
    assert (lag.low, lag.high) == (pytest.approx(11.999 - 10.05), pytest.approx(12.026 - 9.99))
    assert lag.precision < 0.05 and lag.value == pytest.approx((lag.low + lag.high) / 2)
    assert events[1].kind is MonitorEventKind.CONSISTENT and events[1].lag == lag


def test_an_address_ahead_of_the_primary_waits_for_it():
    """Seen on a secondary first (its slow poll landed between the primary's): no
    event until the primary, asked at once, shows the serial; then both, in order."""
    tracked = tracker()
    tracked.observe(PRIMARY, 10.00, serial=5, sent=9.99)
    assert tracked.observe(NOTIFIED, 10.03, serial=6, sent=10.029) == []
    assert tracked.newest == 6 and tracked.serial_of(NOTIFIED) == 6  # the state moves
    events = tracked.observe(PRIMARY, 10.032, serial=6, sent=10.031)
    assert serial_events(events) == [
        ("192.0.2.2:53", 6, Lag(0.0, pytest.approx(10.03 - 9.99))),
        ("192.0.2.1:53", 6, Lag(0.0, 0.0)),
    ]
    assert events[0].elapsed == pytest.approx(10.03)  # when it was seen, not released


def test_a_primary_behind_the_others_is_not_the_reference():
    tracked = tracker()
    tracked.observe(PRIMARY, 10.00, serial=5, sent=9.99)
    assert tracked.observe(NOTIFIED, 10.03, serial=6, sent=10.029) == []
    # an answer to a query sent before the secondary showed it proves nothing
    assert tracked.observe(PRIMARY, 10.035, serial=5, sent=10.02) == []
    # one sent after: the change did not start at the primary; the first address is
    (released,) = tracked.observe(PRIMARY, 10.05, serial=5, sent=10.045)
    assert released.lag == Lag(0.0, 0.0) and released.address == "192.0.2.2:53"
    tracked.observe(TIMER, 10.4, serial=5, sent=10.39)
    (late,) = tracked.observe(TIMER, 10.5, serial=6, sent=10.48)  # after (0.0, 10.03)
    assert late.lag == Lag(pytest.approx(10.39 - 10.03), pytest.approx(10.5 - 0.0))


def test_a_failing_primary_releases_the_waiting_and_the_end_settles_the_rest():
    tracked = tracker()
    assert tracked.observe(NOTIFIED, 10.03, serial=6, sent=10.029) == []
    events = tracked.observe(PRIMARY, 12.0, error=NetworkError("refused"), sent=11.0)
    assert [e.kind for e in events] == [MonitorEventKind.FAILED, MonitorEventKind.SERIAL]
    assert tracked.observe(TIMER, 13.0, serial=7, sent=12.9) == []
    (settled,) = tracked.settle()
    assert (settled.address, settled.serial, settled.lag) == ("192.0.2.3:53", 7, Lag(0.0, 0.0))


def test_without_a_primary_the_first_address_is_the_reference():
    targets = [Target("a", "192.0.2.1"), Target("b", "192.0.2.2")]
    tracked = PropagationTracker("z.", targets, started=0.0)
    tracked.observe(0, 0.01, serial=5)
    tracked.observe(1, 0.01, serial=5)
    (first,) = tracked.observe(1, 1.0, serial=6, sent=0.99)
    assert first.lag == Lag(0.0, 0.0)
    tracked.observe(0, 1.2, serial=5, sent=1.19)
    second = tracked.observe(0, 1.5, serial=6, sent=1.49)[0]  # b switched in (0.01, 1.0)
    assert second.lag == Lag(pytest.approx(1.19 - 1.0), pytest.approx(1.5 - 0.01))


def test_the_lag_window_is_in_every_output():
    tracked = tracker()
    tracked.observe(PRIMARY, 10.001, serial=5, sent=10.0)
    tracked.observe(PRIMARY, 10.05, serial=6, sent=10.04)  # switched in (10.0, 10.05)
    for index in (NOTIFIED, TIMER):
        tracked.observe(index, 10.26, serial=5, sent=10.25)
    tracked.observe(NOTIFIED, 10.3, serial=6, sent=10.29)
    events = tracked.observe(TIMER, 10.3, serial=6, sent=10.29)
    event = events[0]
    assert event.lag == Lag(pytest.approx(0.2), pytest.approx(0.3))
    assert "lag=0.250s lag_min=0.200s lag_max=0.300s lag_precision=0.050s" in monitor_line(event)
    doc = json.loads(json.dumps(event.to_dict()))
    assert (doc["lag"], doc["lag_min"], doc["lag_max"], doc["lag_precision"]) == (
        0.25,
        0.2,
        0.3,
        0.05,
    )
    assert "lag=0.250s lag_min=0.200s lag_max=0.300s" in monitor_line(events[1])  # consistent
    summary = MonitorSummary("z.", MonitorOutcome.REACHED, 10.3, 6, 6, tracked.statuses(), 0)
    assert summary.to_dict()["lag_max"] == 0.3
    assert summary.to_dict()["servers"][0]["primary"] is True
    assert "lag=0.250s lag_min=0.200s lag_max=0.300s" in summary_lines(summary, at=0.0)[-1]
    assert "caught up 0.250s after the primary (between 0.200 and 0.300s)" in str(
        summary_text(summary)
    )
    buffer = io.StringIO()
    Console(file=buffer, width=140).print(monitor_table("z.", tracked.statuses(), 6))
    table = buffer.getvalue()
    assert "primary (primary)" in table and "0.200-0.300s" in table and "0.250s" in table
    assert "the middle of the window the switch lies in" in " ".join(table.split())


# --- which address is the primary -----------------------------------------------------------------


def targets_for(args: list[str], auto: bool = False, resolver=None, monkeypatch=None):
    """The targets ``watch`` would build for these @SERVERs and --primary (no lookups:
    addresses only, or ``resolver`` for --nameservers auto)."""
    servers = [parse_endpoint(a) for a in args if a.startswith("@")]
    spec = next((a.split("=", 1)[1] for a in args if a.startswith("--primary=")), None)
    origin = dns.name.from_text("example.com")
    if resolver is not None:

        async def with_stub(origin):
            return await nameserver_targets(origin, resolver=resolver)

        monkeypatch.setattr(watch_monitor, "nameserver_targets", with_stub)
    return asyncio.run(watch_monitor._targets(origin, servers, auto, _primary(spec, servers)))


def marked(targets) -> list[tuple[str, bool]]:
    return [(t.where, t.primary) for t in targets]


def test_the_primary_is_the_first_server_or_the_one_given_or_none():
    assert marked(targets_for(["@192.0.2.1", "@192.0.2.2"])) == [
        ("192.0.2.1:53", True),
        ("192.0.2.2:53", False),
    ]
    assert marked(targets_for(["@192.0.2.1", "@192.0.2.2", "--primary=@192.0.2.2"])) == [
        ("192.0.2.2:53", True),
        ("192.0.2.1:53", False),
    ]
    # a primary not among the servers is watched too
    assert marked(targets_for(["@192.0.2.1", "--primary=@192.0.2.9:5300"])) == [
        ("192.0.2.9:5300", True),
        ("192.0.2.1:53", False),
    ]
    assert marked(targets_for(["@192.0.2.1", "@192.0.2.2", "--primary=none"])) == [
        ("192.0.2.1:53", False),
        ("192.0.2.2:53", False),
    ]


class StubResolver:
    """NS, SOA and addresses of example.com, as a recursive resolver would answer."""

    def __init__(self, mname: str) -> None:
        self.mname = mname

    async def resolve(self, name, rdtype, search=False):
        text = {
            ("example.com.", "NS"): ["ns1.example.com.", "ns2.example.net."],
            ("example.com.", "SOA"): [f"{self.mname} hostmaster.example.com. 1 2 3 4 5"],
            ("ns1.example.com.", "A"): ["192.0.2.1"],
            ("ns2.example.net.", "A"): ["192.0.2.2"],
        }.get((str(name), dns.rdatatype.to_text(rdtype)))
        if text is None:
            raise dns.resolver.NoAnswer()
        return [dns.rdata.from_text(dns.rdataclass.IN, rdtype, t) for t in text]


def test_with_nameservers_auto_the_primary_is_the_ns_named_in_the_soa_mname(monkeypatch):
    found = targets_for(
        [], auto=True, resolver=StubResolver("ns1.example.com."), monkeypatch=monkeypatch
    )
    assert marked(found) == [("192.0.2.1:53", True), ("192.0.2.2:53", False)]
    hidden = targets_for(
        [], auto=True, resolver=StubResolver("hidden.example.com."), monkeypatch=monkeypatch
    )
    assert marked(hidden) == [("192.0.2.1:53", False), ("192.0.2.2:53", False)]
    # a hidden primary given as @SERVER is the primary, not the MNAME
    given = targets_for(
        ["@192.0.2.9"],
        auto=True,
        resolver=StubResolver("ns1.example.com."),
        monkeypatch=monkeypatch,
    )
    assert marked(given) == [
        ("192.0.2.9:53", True),
        ("192.0.2.1:53", False),
        ("192.0.2.2:53", False),
    ]


def test_primary_options_are_checked():
    runner = CliRunner()
    bad = runner.invoke(cli, ["watch", "example.com", "--servers", "@192.0.2.1", "--primary", "x"])
    assert bad.exit_code == 2 and "--primary takes @SERVER or none, not 'x'" in bad.output
    mirror = runner.invoke(
        cli, ["watch", "example.com", "@192.0.2.1", "-o", "f", "--primary", "@192.0.2.1"]
    )
    assert mirror.exit_code == 2 and "--primary cannot be used in mirror mode" in mirror.output


def test_a_change_from_before_the_watch_has_only_a_lower_bound():
    """The primary had serial 6 at its first answer (``--until-serial 6`` started after
    the update): how long before is unknown, so a secondary's lag is at least the
    time since the watch first saw it there, with no upper bound."""
    targets = [Target("primary", "192.0.2.1", primary=True), Target("s", "192.0.2.2")]
    tracked = PropagationTracker("z.", targets, started=0.0, wall_started=0.0, primaries=[0])
    tracked.observe(PRIMARY, 0.01, serial=6, sent=0.0)
    tracked.observe(1, 0.02, serial=5, sent=0.01)
    tracked.observe(1, 2.00, serial=5, sent=1.99)
    (event, consistent) = tracked.observe(1, 2.03, serial=6, sent=2.02)
    assert event.lag == Lag(pytest.approx(1.99 - 0.01), None)
    doc = event.to_dict()
    assert (doc["lag"], doc["lag_min"], doc["lag_max"], doc["lag_precision"]) == (
        None,
        1.98,
        None,
        None,
    )
    assert "lag=- lag_min=1.980s lag_max=- lag_precision=-" in monitor_line(event)
    summary = MonitorSummary("z.", MonitorOutcome.REACHED, 2.03, 6, 6, tracked.statuses(), 0)
    assert "caught up at least 1.980s after the primary (which had it before" in str(
        summary_text(summary)
    )
    buffer = io.StringIO()
    Console(file=buffer, width=140).print(monitor_table("z.", tracked.statuses(), 6))
    assert "≥1.980s" in buffer.getvalue() and "1.980-?s" in buffer.getvalue()


def test_a_notify_event_names_its_source():
    tracked = tracker()
    event = tracked.notified(10.0, "192.0.2.1:40000")
    assert event.kind is MonitorEventKind.NOTIFY and event.elapsed == 10.0
    assert monitor_line(event) == (
        "time=1970-01-01T00:00:10.000Z event=notify zone=z. source=192.0.2.1:40000 newest=5"
    )
    assert event.to_dict()["address"] == "192.0.2.1:40000"
