"""The series per zone written as text (secdns.metrics.LabelCounts, ZoneSeries) are the
bytes prometheus-client writes for the Counter and the gauges they replaced, and no
``_created`` series is written."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from secdns.metrics import ZONE_GAUGES, LabelCounts, Metrics, ZoneSeries
from secdns.zonestatus import STATES, ZoneStatus

INCS = [
    ("a.example.", "axfr", "ok"),
    ("b.example.", "ixfr", "failed"),
    ("a.example.", "axfr", "ok"),
    ("a.example.", "ixfr", "ok"),
    ('odd"\\name\n.', "axfr", "failed"),
]


def test_label_counts_expose_what_a_counter_did():
    registry = CollectorRegistry(auto_describe=True)
    counter = Counter(
        "secdns_transfers",
        "Zone transfers in, by kind and result",
        ["zone", "kind", "result"],
        registry=registry,
    )
    counts = LabelCounts(
        "secdns_transfers", "Zone transfers in, by kind and result", ("zone", "kind", "result")
    )
    assert counts.text().encode() == generate_latest(registry)  # none yet
    for labels in INCS:
        counter.labels(*labels).inc()
        counts.inc(*labels)
    text = counts.text()
    assert text.encode() == generate_latest(registry)
    assert "_created" not in text
    assert 'secdns_transfers_total{kind="axfr",result="ok",zone="a.example."} 2.0' in text
    counts.forget("a.example.")
    counter.remove("a.example.", "axfr", "ok")
    counter.remove("a.example.", "ixfr", "ok")
    assert counts.text().encode() == generate_latest(registry)


def _status(zone: str, serial: int | None, state: str, when: float | None) -> ZoneStatus:
    return ZoneStatus(
        zone=zone,
        serial=serial,
        state=state,
        primary=None,
        last_refresh=when,
        last_change=when and when - 3600.5,
        next_refresh=None,
        expires_at=when and when + 86400.25,
        records=20,
        last_error=None,
    )


class _Reference:
    """The per-zone gauges as prometheus-client's families (the collector ZoneSeries
    replaced)."""

    def __init__(self, statuses: list[ZoneStatus]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        states = GaugeMetricFamily("secdns_zones", "Zones by refresh state", labels=["state"])
        for state in STATES:
            states.add_metric([state], sum(s.state == state for s in self.statuses))
        yield states
        families = [GaugeMetricFamily(name, text, labels=["zone"]) for name, text in ZONE_GAUGES]
        serial, expired, refreshed, changed, expiry = families
        for status in self.statuses:
            labels = [status.zone]
            if status.serial is not None:
                serial.add_metric(labels, status.serial)
            past = status.expires_at is not None and status.expires_at < now
            expired.add_metric(labels, 1 if status.state == "expired" or past else 0)
            for family, value in (
                (refreshed, status.last_refresh),
                (changed, status.last_change),
                (expiry, status.expires_at),
            ):
                if value is not None:
                    family.add_metric(labels, value)
        yield from families


def test_zone_series_are_what_prometheus_client_writes():
    now = time.time()
    statuses = [
        _status("a.example.", 2026120301, "ok", now),
        _status("b.example.", None, "loading", None),
        _status('odd"\\name\n.', 7, "retrying", now - 100000),  # past its expiry
        _status("c.example.", 4294967295, "expired", now - 5),
    ]
    registry = CollectorRegistry()
    registry.register(_Reference(statuses))
    series = ZoneSeries()
    assert series.text(statuses).encode() == generate_latest(registry)
    statuses[0] = _status("a.example.", 2026120302, "ok", now + 1)  # changed: rendered again
    assert series.text(statuses).encode() == generate_latest(registry)
    assert series.text([]).count("secdns_zones{") == len(STATES)  # every state, 0 included


def test_the_page_parses_and_has_no_created_series():
    statuses = [_status(f"z{i}.example.", i, "ok", time.time()) for i in range(3)]
    metrics = Metrics(lambda: statuses)
    metrics.count_transfer("z0.example.", "axfr", True)
    metrics.observe_notify("z1.example.", "accepted")
    page = metrics.exposition().decode()
    assert "_created" not in page
    families = {f.name: f for f in text_string_to_metric_families(page)}
    assert families["secdns_transfers"].samples[0].value == 1.0
    assert families["secdns_notify_received"].samples[0].labels == {
        "zone": "z1.example.",
        "result": "accepted",
    }
    assert {s.labels["state"]: s.value for s in families["secdns_zones"].samples}["ok"] == 3
    metrics.forget("z1.example.")
    assert "z1.example." not in metrics.notifies.text()


def _propagations(metrics: Metrics) -> float:
    page = metrics.exposition().decode()
    families = {f.name: f for f in text_string_to_metric_families(page)}
    samples = families["secdns_propagation_seconds"].samples
    return next(s.value for s in samples if s.name.endswith("_count"))


def test_a_notify_of_a_serial_already_served_is_no_propagation_later(monkeypatch):
    """A NOTIFY of the serial served (a primary's restart, a second primary's) ended in a
    check that found nothing new, and stayed pending: the next change, hours later by
    the refresh timer, was counted as hours of propagation.  A transfer of a serial
    older than announced does not end the propagation; the announced one does."""
    from secdns import metrics as metrics_module
    from secdns.pull import PullResult, Status

    now = [1000.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: now[0])
    metrics = Metrics(lambda: [])
    zone = "z.example."
    metrics.observe_notify(zone, "accepted", 7)
    metrics.observe_pull(zone, PullResult(zone, Status.UP_TO_DATE, serial_to=7))
    now[0] += 3600
    metrics.observe_pull(zone, PullResult(zone, Status.TRANSFERRED, serial_to=8))
    assert _propagations(metrics) == 0
    # announced 10; 9 comes first (the primary behind its NOTIFY), then 10
    metrics.observe_notify(zone, "accepted", 10)
    now[0] += 1
    metrics.observe_pull(zone, PullResult(zone, Status.TRANSFERRED, serial_to=9))
    assert _propagations(metrics) == 0
    now[0] += 1
    metrics.observe_pull(zone, PullResult(zone, Status.TRANSFERRED, serial_to=10))
    assert _propagations(metrics) == 1
    # without its SOA (PowerDNS): pending while its checks again run, then let go
    metrics.observe_notify(zone, "accepted")
    now[0] += 5
    metrics.observe_pull(zone, PullResult(zone, Status.UP_TO_DATE, serial_to=10))
    now[0] += 5
    metrics.observe_pull(zone, PullResult(zone, Status.TRANSFERRED, serial_to=11))
    assert _propagations(metrics) == 2
    metrics.observe_notify(zone, "accepted")
    now[0] += 120
    metrics.observe_pull(zone, PullResult(zone, Status.UP_TO_DATE, serial_to=11))
    now[0] += 3600
    metrics.observe_pull(zone, PullResult(zone, Status.TRANSFERRED, serial_to=12))
    assert _propagations(metrics) == 2
