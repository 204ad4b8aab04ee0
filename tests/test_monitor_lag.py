"""Lags measured from the primary (pure: the tracker given times), and the lag as
a window in every output (key=value, JSON, table, summary)."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from secdns.cli.watch_monitor import monitor_line, monitor_table, summary_lines, summary_text
from secdns.errors import NetworkError
from secdns.monitor import Lag, MonitorEventKind, MonitorOutcome, MonitorSummary, Target
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
    assert "lag=0.250s lag_min=0.200s lag_max=0.300s" in summary_lines(summary, at=0.0)[0]
    assert "caught up 0.250s after the primary (between 0.200 and 0.300s)" in str(
        summary_text(summary)
    )
    buffer = io.StringIO()
    Console(file=buffer, width=140).print(monitor_table("z.", tracked.statuses(), 6))
    table = buffer.getvalue()
    assert "primary (primary)" in table and "0.200-0.300s" in table and "0.250s" in table
    assert "the middle of the window the switch lies in" in " ".join(table.split())
