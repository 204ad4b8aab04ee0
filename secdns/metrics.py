"""Prometheus metrics and health checks for ``serve``, and a textfile for ``pull``.

Exposition is ``prometheus-client``'s (the standard text format, its process
collector, and its parser in the tests).  The names are a contract that
dashboards are written against; keep them:

- ``secdns_zone_serial{zone}``, ``secdns_zone_expired{zone}`` (0/1),
  ``secdns_zone_last_refresh_timestamp_seconds{zone}`` (last successful SOA check),
  ``secdns_zone_last_change_timestamp_seconds{zone}`` (last new serial),
  ``secdns_zone_expiry_timestamp_seconds{zone}``: read from the zones' statuses at
  scrape time.
- ``secdns_transfers_total{zone,kind,result}`` (kind ``axfr``/``ixfr``, result
  ``ok``/``failed``/``skipped``: not tried, its primaries held as unreachable),
  ``secdns_notify_received_total{zone,result}``,
  ``secdns_propagation_seconds`` (a NOTIFY received to its new serial answered).
- ``secdns_primary_unreachable{primary}`` (1 while held after timeouts in a row,
  :mod:`secdns.unreachable`), ``secdns_primary_skipped_total{primary}``,
  ``secdns_primary_failed_total{primary}`` (its tries that failed for want of it,
  failovers included, not one zone's key or ACL: a primary that refuses is never held).
- ``secdns_queries_total{transport,rcode}`` (transport ``udp``, ``tcp`` or ``tls``, the
  last for tls_listen's XoT connections): the UDP workers and the TCP handler
  keep plain per-rcode integer lists on the answering path (one list increment per
  answer, no lock, no label lookup); a collector sums them at scrape time.
- ``secdns_catalog_members{catalog}``, ``secdns_catalog_records_skipped{catalog}``,
  ``secdns_catalog_usable{catalog}``: each ``[[catalog]]`` serve follows.
- ``secdns_zones{state}``: how many zones are in each refresh state (every state,
  0 included), for alerts that need not read a series per zone.

The series per zone are written as text here (:class:`ZoneSeries`, :class:`LabelCounts`),
the same bytes ``generate_latest`` writes for them: through prometheus-client's
collectors they cost ~37 us a zone, and a scrape held serve's event loop for 0.38 s
at 10,000 zones; the rest (process, queries, primaries, propagation) goes through
prometheus-client.  No ``_created`` series (prometheus-client's default adds one to
every counter: 10,000 more lines at 10,000 zones that no dashboard reads).  A
scraper that sends ``Accept-Encoding: gzip``, as Prometheus does, gets the page
gzipped (4.7 MB against 0.18 MB at 10,000 zones).

The HTTP side (``[server] metrics_listen``) runs on serve's own event loop, so a
200 from ``/healthz`` means the loop is turning; ``/readyz`` is 200 once every
zone is loaded and none is expired, else 503 naming those that are not.
Requests are bounded: 8 KiB of head, 5 s to send it, 32 connections at once.

About 720 lines, kept whole: the collectors, the series written as text, the page
and the HTTP side that serves it (for serve and watch), and pull's textfile share
the metric names and their help texts, which are a contract kept in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import dns.rcode
import prometheus_client.metrics
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from secdns.endpoints import Endpoint
from secdns.errors import LocalIOError, not_tried, os_reason
from secdns.pull import PullResult, Status
from secdns.refresh import ANNOUNCED_RECHECKS
from secdns.store import Store, atomic_write
from secdns.xfr import XfrKind, serial_newer
from secdns.zonestatus import STATES, ZoneStatus

if TYPE_CHECKING:
    from secdns.mirror import MirrorEvent
    from secdns.propagation import AddressStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

PROPAGATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
NOTIFY_SETTLE = 10.0
"""Seconds past a NOTIFY without its SOA's checks again (``ANNOUNCED_RECHECKS``) after
which a check that finds the zone current ends it without a propagation."""
MAX_REQUEST_HEAD = 8192
REQUEST_TIMEOUT = 5.0
MAX_CONNECTIONS = 32

QueryCounts = Callable[[], Iterable[tuple[str, list[int]]]]
"""(transport, counts indexed by rcode) pairs, read at scrape time."""
CatalogCounts = Callable[[], Iterable[tuple[str, int, int, bool]]]
"""(catalog, members it gives, records of its last read skipped, whether that read was
usable) of each ``[[catalog]]`` (:meth:`secdns.server.catalogs.CatalogZones.counts`)."""
HeldPrimaries = Callable[[], Iterable[tuple[str, bool, int, int]]]
"""(primary, held now, tries skipped, tries failed) of each primary, read at scrape time
(:meth:`secdns.unreachable.Unreachable.counts`)."""


def label_value(value: str) -> str:
    """A label value as the text format writes it (as prometheus-client escapes it)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, help_text: str, kind: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


ZONE_GAUGES = (
    ("secdns_zone_serial", "SOA serial served"),
    ("secdns_zone_expired", "1 while past SOA expire (SERVFAIL)"),
    ("secdns_zone_last_refresh_timestamp_seconds", "Last successful SOA check"),
    ("secdns_zone_last_change_timestamp_seconds", "Last new serial"),
    (
        "secdns_zone_expiry_timestamp_seconds",
        "When the zone expires without a successful refresh",
    ),
)


class CatalogCollector(Collector):
    """``secdns_catalog_members{catalog}``, ``secdns_catalog_records_skipped{catalog}``
    (records of its last read that could not be used, each logged as an error) and
    ``secdns_catalog_usable{catalog}`` (0 while its last serial is unusable as a whole:
    not version 2, over max_members; its members held are kept), at scrape time."""

    def __init__(self, counts: CatalogCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        members = GaugeMetricFamily(
            "secdns_catalog_members", "Member zones a catalog gives", labels=["catalog"]
        )
        skipped = GaugeMetricFamily(
            "secdns_catalog_records_skipped",
            "Records of a catalog's last read that could not be used (logged as errors)",
            labels=["catalog"],
        )
        usable = GaugeMetricFamily(
            "secdns_catalog_usable",
            "0 while a catalog's last serial is unusable as a whole (its members are kept)",
            labels=["catalog"],
        )
        for catalog, count, bad, good in self.counts():
            members.add_metric([catalog], count)
            skipped.add_metric([catalog], bad)
            usable.add_metric([catalog], 1 if good else 0)
        yield from (members, skipped, usable)


class ZoneSeries:
    """The per-zone gauges and ``secdns_zones{state}``, from the zones' statuses at
    scrape time, written as text (the bytes ``generate_latest`` writes for them).  A
    zone's label set and values are rendered again only when they change (most zones'
    do not between two scrapes)."""

    def __init__(self) -> None:
        # zone -> (serial, last refresh, last change, expiry), their texts, the label set
        self._rendered: dict[str, tuple[tuple[object, ...], tuple[str, ...], str]] = {}

    def text(self, statuses: list[ZoneStatus]) -> str:
        now = time.time()
        rendered = self._rendered
        if len(rendered) > 2 * len(statuses) + 1024:  # (zones removed by reloads)
            rendered.clear()
        columns: tuple[list[str], ...] = ([], [], [], [], [])
        serial, expired, refreshed, changed, expiry = columns
        states = dict.fromkeys(STATES, 0)
        for status in statuses:
            values = (status.serial, status.last_refresh, status.last_change, status.expires_at)
            known = rendered.get(status.zone)
            if known is None or known[0] != values:
                label = known[2] if known else f'{{zone="{label_value(status.zone)}"}} '
                texts = tuple("" if v is None else label + floatToGoString(v) for v in values)
                known = rendered[status.zone] = (values, texts, label)
            _values, (serial_text, refreshed_text, changed_text, expiry_text), label = known
            states[status.state] = states.get(status.state, 0) + 1
            if serial_text:
                serial.append(serial_text)
            past = status.expires_at is not None and status.expires_at < now
            expired.append(label + ("1.0" if status.state == "expired" or past else "0.0"))
            if refreshed_text:
                refreshed.append(refreshed_text)
            if changed_text:
                changed.append(changed_text)
            if expiry_text:
                expiry.append(expiry_text)
        out = [_family("secdns_zones", "Zones by refresh state", "gauge")]
        out += [f'secdns_zones{{state="{state}"}} {count:d}.0\n' for state, count in states.items()]
        for (name, help_text), lines in zip(ZONE_GAUGES, columns, strict=True):
            out.append(_family(name, help_text, "gauge"))
            if lines:
                out.append(name + f"\n{name}".join(lines) + "\n")
        return "".join(out)


class LabelCounts:
    """A counter per label set from plain counts (what a prometheus Counter exposes,
    without its child per label set: ~650 bytes with a lock and a value object, 10,000
    zones transferred at a cold start), written as text (:meth:`text`: the bytes
    ``generate_latest`` writes for that Counter, labels in sorted order)."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help = help_text
        self.labels = labels
        self._order = sorted(range(len(labels)), key=labels.__getitem__)
        self.counts: dict[tuple[str, ...], int] = {}
        self._labels: dict[tuple[str, ...], str] = {}  # label values -> "name_total{...} "
        self._lock = threading.Lock()  # (NOTIFYs are counted in the UDP worker's thread)

    def inc(self, *values: str) -> None:
        with self._lock:
            self.counts[values] = self.counts.get(values, 0) + 1

    def forget(self, zone: str) -> None:
        """Every label set whose first label (the zone) is ``zone``."""
        with self._lock:
            for key in [key for key in self.counts if key[0] == zone]:
                del self.counts[key]
                self._labels.pop(key, None)

    def text(self) -> str:
        with self._lock:
            items = list(self.counts.items())
        rendered = self._labels
        out = [_family(self.name + "_total", self.help, "counter")]
        for values, count in items:
            head = rendered.get(values)
            if head is None:
                labels = ",".join(
                    f'{self.labels[i]}="{label_value(values[i])}"' for i in self._order
                )
                head = rendered[values] = f"{self.name}_total{{{labels}}} "
            out.append(f"{head}{count:d}.0\n")
        return "".join(out)


class QueryCollector(Collector):
    """``secdns_queries_total`` from the answering path's plain integer counts."""

    def __init__(self, counts: QueryCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "secdns_queries", "Answers sent", labels=["transport", "rcode"]
        )
        totals: dict[tuple[str, int], int] = {}
        for transport, counts in self.counts():
            for rcode, count in enumerate(list(counts)):
                if count:
                    key = (transport, rcode)
                    totals[key] = totals.get(key, 0) + count
        for (transport, rcode), count in sorted(totals.items()):
            family.add_metric([transport, dns.rcode.Rcode.to_text(rcode)], count)
        yield family


class HeldCollector(Collector):
    """``secdns_primary_unreachable{primary}`` (1 for each primary address held after
    timeouts in a row: :mod:`secdns.unreachable`; 0 once it answers again) and
    ``secdns_primary_skipped_total`` (its zones' tries skipped, kept when it answers
    again), at scrape time."""

    def __init__(self, held: HeldPrimaries) -> None:
        self.held = held

    def collect(self) -> Iterator[Metric]:
        held = GaugeMetricFamily(
            "secdns_primary_unreachable",
            "1 while a primary address is held as unreachable after timeouts in a row",
            labels=["primary"],
        )
        skipped = CounterMetricFamily(
            "secdns_primary_skipped",
            "Tries of a held primary skipped (its zones retried later or failed over)",
            labels=["primary"],
        )
        failed = CounterMetricFamily(
            "secdns_primary_failed",
            "Tries of a primary that failed for want of it (refused, timed out, a bad "
            "answer; not one zone's key or ACL), failovers to the next primary included",
            labels=["primary"],
        )
        for primary, now, count, failures in self.held():
            held.add_metric([primary], 1 if now else 0)
            skipped.add_metric([primary], count)
            failed.add_metric([primary], failures)
        yield from (held, skipped, failed)


prometheus_client.disable_created_metrics()  # (module docstring)


def transfer_kind(result: PullResult) -> str:
    """``axfr`` or ``ixfr``: what was transferred, or for a failure what would have been."""
    if result.kind is not XfrKind.NONE:
        return result.kind.value.lower()
    return "axfr" if result.serial_from is None else "ixfr"


class Metrics:
    """The registry of one serve (or watch): its own, so two in a process do not mix."""

    def __init__(
        self,
        statuses: Callable[[], list[ZoneStatus]],
        queries: QueryCounts | None = None,
        held: HeldPrimaries | None = None,
        catalogs: CatalogCounts | None = None,
        missed: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.missed = missed
        ProcessCollector(registry=self.registry)
        self.statuses = statuses
        self.zones = ZoneSeries()
        if queries is not None:
            self.registry.register(QueryCollector(queries))
        if held is not None:
            self.registry.register(HeldCollector(held))
        if catalogs is not None:
            self.registry.register(CatalogCollector(catalogs))
        self.transfers = LabelCounts(
            "secdns_transfers", "Zone transfers in, by kind and result", ("zone", "kind", "result")
        )
        self.notifies = LabelCounts(
            "secdns_notify_received",
            "NOTIFY messages received, by result (accepted/refused/dropped)",
            ("zone", "result"),
        )
        self.transfers_out = LabelCounts(
            "secdns_transfers_out",
            "Zone transfers served, by what went out (axfr; ixfr; ixfr-full: the whole zone for "
            "an IXFR the journal did not reach; current: the client was up to date) and result "
            "(ok, cut: the client went away)",
            ("kind", "result"),
        )
        self.notifies_sent = LabelCounts(
            "secdns_notify_sent",
            "NOTIFYs we sent, by target and how they ended (acknowledged; unanswered: every "
            "send timed out; unreachable: refused, nothing listens; or the error RCODE)",
            ("target", "result"),
        )
        self.propagation = Histogram(
            "secdns_propagation_seconds",
            "From a NOTIFY received to the new serial answered",
            buckets=PROPAGATION_BUCKETS,
            registry=self.registry,
        )
        self._notified: dict[str, tuple[float, int | None]] = {}
        """Zones whose NOTIFY is not yet served: when the first came, and the newest
        serial announced (None: a NOTIFY without its SOA, as PowerDNS sends)."""

    def count_transfer_out(self, kind: str, result: str) -> None:
        self.transfers_out.inc(kind, result)

    def count_notify_sent(self, target: str, result: str) -> None:
        self.notifies_sent.inc(target, result)

    def observe_notify(self, zone: str, result: str, serial: int | None = None) -> None:
        """A NOTIFY came in (called from the UDP worker thread too: counters are
        thread-safe); *serial*: the one it announced, if it did."""
        self.notifies.inc(zone, result)
        if result != "accepted":
            return
        pending = self._notified.get(zone)
        if pending is None:
            self._notified[zone] = (time.monotonic(), serial)
        elif serial is not None and (pending[1] is None or serial_newer(serial, pending[1])):
            self._notified[zone] = (pending[0], serial)  # (timed from the first)

    def forget(self, zone: str) -> None:
        """A zone no longer served (removed by a reload): its series go, as its status
        lines went (a stranger found a removed zone's counters still scraped)."""
        self.transfers.forget(zone)
        self.notifies.forget(zone)
        self._notified.pop(zone, None)

    def observe_pull(self, zone: str, result: PullResult) -> None:
        """A refresh ended: count the transfer; a new serial ends a NOTIFY's propagation."""
        if result.status is Status.UP_TO_DATE:
            self._already_served(zone, result.serial_to)
            return
        ok = result.status is Status.TRANSFERRED
        skipped = not ok and not_tried(result.error)
        kind = transfer_kind(result)
        self.count_transfer(zone, kind, ok, skipped=skipped, serial=result.serial_to)

    def count_transfer(
        self, zone: str, kind: str, ok: bool, *, skipped: bool = False, serial: int | None = None
    ) -> None:
        """``skipped``: failed without a try, every primary held as unreachable; ``serial``:
        the one transferred, if known (one older than a NOTIFY announced does not end
        its propagation)."""
        self.transfers.inc(zone, kind, "ok" if ok else "skipped" if skipped else "failed")
        pending = self._notified.get(zone) if ok else None
        if pending is None:
            return
        notified, announced = pending
        if announced is not None and serial is not None and serial_newer(announced, serial):
            return  # (still under way: the primary's newer serial comes next)
        self._notified.pop(zone, None)
        self.propagation.observe(time.monotonic() - notified)

    def _already_served(self, zone: str, serial: int | None) -> None:
        """A check found the zone current: a NOTIFY of a serial already served ends
        without a propagation (a stranger saw one counted hours later, at the next
        change), as does one without its SOA once its checks again are over."""
        pending = self._notified.get(zone)
        if pending is None:
            return
        notified, announced = pending
        if announced is None:
            over = time.monotonic() - notified > sum(ANNOUNCED_RECHECKS) + NOTIFY_SETTLE
        else:
            over = serial is not None and not serial_newer(announced, serial)
        if over:
            self._notified.pop(zone, None)

    def exposition(self) -> bytes:
        """The page: prometheus-client's collectors, then the series per zone."""
        return self.render(self.statuses())

    def render(self, statuses: list[ZoneStatus]) -> bytes:
        """The page of these statuses (taken on the event loop: the rest may run in a
        thread, as /metrics does)."""
        zones = self.zones.text(statuses)
        counts = self.transfers.text() + self.transfers_out.text() + self.notifies.text()
        counts += self.notifies_sent.text()
        return generate_latest(self.registry) + (zones + counts + self._missed()).encode()

    def _missed(self) -> str:
        """``secdns_notify_missed{target}``: zones whose NOTIFY a target never
        acknowledged, sent again when it answers (secdns.notifysend)."""
        if self.missed is None:
            return ""
        out = [
            _family(
                "secdns_notify_missed",
                "Zones whose NOTIFY the target never acknowledged (sent again when it answers)",
                "gauge",
            )
        ]
        for target, count in sorted(self.missed().items()):
            out.append(f'secdns_notify_missed{{target="{label_value(target)}"}} {count:d}.0\n')
        return "".join(out)


# --- watch --metrics-listen -------------------------------------------------------------------


class MonitorCollector(Collector):
    """``secdns_watch_serial`` and ``secdns_watch_lag_seconds`` per address, at scrape time.

    The lag of an address with the newest serial is how long after the primary
    (or the first address) it showed it, the middle of its window (its lower
    bound when the change came before the watch; 0 if it had the serial when the
    watch started); of one still behind, how long the newest serial has been out.
    """

    def __init__(self, zone: str, statuses: Callable[[], Iterable[AddressStatus]]) -> None:
        self.zone = zone
        self.statuses = statuses

    def collect(self) -> Iterator[Metric]:
        labels = ["zone", "server"]
        serial = GaugeMetricFamily("secdns_watch_serial", "SOA serial answered", labels=labels)
        lag = GaugeMetricFamily(
            "secdns_watch_lag_seconds",
            "Behind the first address to show the newest serial",
            labels=labels,
        )
        try:
            statuses = list(self.statuses())
        except AttributeError:  # the monitor has not started yet
            statuses = []
        firsts = [s.changed_at for s in statuses if s.current and s.changed_at is not None]
        out_since = min(firsts) if firsts else None
        for status in statuses:
            where = status.address
            server = (
                where
                if status.server in (where, where.rsplit(":", 1)[0])
                else (f"{status.server}@{where}")
            )
            if status.serial is not None:
                serial.add_metric([self.zone, server], status.serial)
            if status.current:
                lag.add_metric([self.zone, server], status.lag.best if status.lag else 0.0)
            elif out_since is not None:
                lag.add_metric([self.zone, server], max(0.0, time.time() - out_since))
        yield from (serial, lag)


class WatchMetrics:
    """The metrics of ``watch``: per-address serials and lags for the monitor; for the
    mirror, the zone metrics of serve, from the same refresh scheduler's statuses, with
    transfers and NOTIFYs counted from its events."""

    def __init__(self) -> None:
        self._statuses: Callable[[], list[ZoneStatus]] = list
        self.metrics = Metrics(self.statuses)

    def statuses(self) -> list[ZoneStatus]:
        return self._statuses()

    def watch_monitor(self, zone: str, statuses: Callable[[], Iterable[AddressStatus]]) -> None:
        self.metrics.registry.register(MonitorCollector(zone, statuses))

    def watch_mirror(self, statuses: Callable[[], list[ZoneStatus]]) -> None:
        self._statuses = statuses

    def observe_mirror(self, event: MirrorEvent) -> None:
        kind = event.kind.value
        if kind == "notify":
            self.metrics.observe_notify(event.zone, "accepted")
        elif kind == "updated":
            via = event.via.value.lower() if event.via is not XfrKind.NONE else "axfr"
            self.metrics.count_transfer(event.zone, via, True)
        elif kind == "failed":
            kind_asked = "axfr" if event.serial is None else "ixfr"
            self.metrics.count_transfer(event.zone, kind_asked, False)


async def serving_metrics(
    work: Awaitable[T], endpoint: Endpoint | None, watch: WatchMetrics | None
) -> T:
    """Run ``work`` with /metrics served at ``endpoint`` meanwhile (watch --metrics-listen)."""
    if endpoint is None or watch is None:
        return await work
    http = MetricsServer(endpoint, watch.metrics, watch.statuses)
    await http.start()
    try:
        return await work
    finally:
        await http.close()


# --- HTTP: /metrics, /healthz, /readyz --------------------------------------------------------


def readiness(statuses: list[ZoneStatus]) -> tuple[bool, str]:
    """Ready once every zone is loaded, none is expired and no catalog is unusable (its
    members as they were: a stranger's new catalog, unusable, was 200); else the zones
    that are not."""
    waiting = [s for s in statuses if s.serial is None or s.state in ("expired", "unusable")]
    if not waiting:
        return True, f"ready: {len(statuses)} zones\n"
    return False, "".join(f"not ready: zone={s.zone} state={s.state}\n" for s in waiting)


def accepts_gzip(fields: str) -> bool:
    """Whether a request's header fields accept a gzipped body (RFC 9110 12.5.3:
    ``Accept-Encoding: gzip``, unless its weight is 0)."""
    for line in fields.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() != "accept-encoding":
            continue
        for coding in value.split(","):
            token, _, params = coding.partition(";")
            if token.strip().lower() in ("gzip", "x-gzip", "*"):
                weight = params.strip().lower().removeprefix("q=").strip()
                return not weight or weight.strip("0.") != ""
    return False


def _page(metrics: Metrics, statuses: list[ZoneStatus], zipped: bool) -> bytes:
    """/metrics' body: the page of ``statuses``, gzipped (past 1 KiB) when ``zipped``."""
    page = metrics.render(statuses)
    return gzip.compress(page, compresslevel=1, mtime=0) if zipped and len(page) > 1024 else page


class MetricsServer:
    """A tiny HTTP/1.0 server on the event loop (one request per connection)."""

    def __init__(
        self,
        endpoint: Endpoint,
        metrics: Metrics,
        statuses: Callable[[], list[ZoneStatus]],
    ) -> None:
        self.endpoint = endpoint
        self.metrics = metrics
        self.statuses = statuses
        self.server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None
        self._connections = 0

    async def start(self) -> None:
        try:
            self.server = await asyncio.start_server(
                self._handle,
                self.endpoint.host,
                self.endpoint.port,
                reuse_address=True,
                limit=MAX_REQUEST_HEAD,
            )
        except OSError as err:
            raise LocalIOError(
                f"cannot listen for metrics on {self.endpoint}: {os_reason(err)}",
                hint="is another server using the port? (server.metrics_listen)",
            ) from err
        sockname = self.server.sockets[0].getsockname()
        self.address = (sockname[0], sockname[1])
        log.info("metrics: listening on http://%s:%d/metrics", *self.address)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request; pure apart from the statuses."""
        path = path.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":  # (_handle makes it in a thread)
            return 200, CONTENT_TYPE_LATEST, self.metrics.exposition()
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            ready, text = readiness(self.statuses())
            return (200 if ready else 503), "text/plain", text.encode()
        return 404, "text/plain", b"not found: try /metrics, /healthz, /readyz\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            request, _, fields = head.decode("latin-1").partition("\r\n")
            parts = request.split()
            zipped = accepts_gzip(fields)
            if len(parts) < 2:
                status, ctype, body = 400, "text/plain", b"bad request\n"
            elif parts[0] in ("GET", "HEAD") and parts[1].split("?", 1)[0] == "/metrics":
                # the zones' statuses taken here, the page made in a thread: 10,000 zones'
                # page does not hold the loop (NOTIFYs, refreshes) for its ~80 ms
                status, ctype = 200, CONTENT_TYPE_LATEST
                body = await asyncio.to_thread(_page, self.metrics, self.statuses(), zipped)
            else:
                status, ctype, body = self.respond(parts[0], parts[1])
            zipped = zipped and body[:2] == b"\x1f\x8b"
            encoding = "Content-Encoding: gzip\r\n" if zipped else ""
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
            writer.write(
                f"HTTP/1.0 {status} {reason.get(status, 'Service Unavailable')}\r\n"
                f"Content-Type: {ctype}\r\n{encoding}Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            if parts[:1] != ["HEAD"]:
                writer.write(body)
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except ValueError:  # a head over the limit
            pass
        except Exception:
            log.exception("metrics: internal error answering a request")
        finally:
            self._connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


# --- pull --metrics-file ----------------------------------------------------------------------


def pull_status(result: PullResult, store: Store | None) -> ZoneStatus:
    """A zone's status after one pull, from its result and (with a store) its state."""
    import dns.name

    now = time.time()
    ok = result.status is not Status.FAILED
    expires_at = None
    last_refresh = now if ok else None
    primary = result.primary
    if store is not None:
        state = store.load_state(dns.name.from_text(result.zone))
        if not ok and state.last_success:
            last_refresh = _iso_epoch(state.last_success)
        if last_refresh is not None and state.expire:
            expires_at = last_refresh + state.expire
        primary = primary or state.primary
    state_name = "ok" if ok else "retrying"
    if expires_at is not None and expires_at < now:
        state_name = "expired"
    return ZoneStatus(
        zone=result.zone,
        serial=result.serial_to if result.serial_to is not None else result.serial_from,
        state=state_name,
        primary=primary,
        last_refresh=last_refresh,
        last_change=now if result.status is Status.TRANSFERRED else None,
        next_refresh=None,
        expires_at=expires_at,
        records=result.records,
        last_error=result.error.one_line() if result.error else None,
    )


def _iso_epoch(text: str) -> float | None:
    import datetime

    try:
        when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.UTC).timestamp()


def write_textfile(path: str | Path, results: list[PullResult], store: Store | None) -> None:
    """The zone metrics of a pull, atomically, in node_exporter's textfile format."""
    statuses = [pull_status(result, store) for result in results]
    atomic_write(Path(path), ZoneSeries().text(statuses).encode())
