"""``secdns watch`` in monitor mode: look up the addresses, run
:class:`~secdns.monitor.Monitor` until its ``--until-*`` condition, a deadline or a
signal, and render it: a rich live table on a terminal, one ``key=value`` line per
event when piped, JSON lines with ``--json``, and the summary at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, TypeVar

import click
import dns.name
from rich.live import Live
from rich.table import Table
from rich.text import Text

from secdns.cli.stream import EventPrinter, EventStream
from secdns.cli.watch_mirror import with_metrics
from secdns.endpoints import Endpoint
from secdns.errors import ExitCode
from secdns.monitor import (
    AddressStatus,
    Lag,
    Monitor,
    MonitorEvent,
    MonitorEventKind,
    MonitorOptions,
    MonitorOutcome,
    MonitorSummary,
    Target,
    mark_primary,
    nameserver_targets,
    stopped_summary,
    targets_from_endpoints,
)
from secdns.output import kv_line
from secdns.propagation import lag_fields
from secdns.store import iso_time
from secdns.watch import seconds_text

if TYPE_CHECKING:  # prometheus_client loads only when --metrics-listen is given
    from secdns import metrics

T = TypeVar("T")


def monitor_line(event: MonitorEvent) -> str:
    """One stable ``key=value`` line per monitor event."""
    head: list[tuple[str, object]] = [
        ("time", iso_time(event.at)),
        ("event", event.kind.value),
        ("zone", event.zone),
    ]
    if event.kind is MonitorEventKind.CONSISTENT:
        return kv_line(*head, ("serial", event.serial), *lag_pairs(event.lag))
    if event.kind is MonitorEventKind.NOTIFY:
        return kv_line(*head, ("source", event.address), ("newest", event.newest))
    where = [("server", event.server), ("address", event.address)]
    if event.kind is MonitorEventKind.SERIAL:
        return kv_line(
            *head,
            *where,
            ("serial", event.serial),
            ("previous", event.previous),
            *lag_pairs(event.lag),
            ("newest", event.newest),
        )
    if event.kind is MonitorEventKind.FAILED:
        return kv_line(*head, *where, ("serial", event.serial), ("error", event.error))
    return kv_line(*head, *where, ("serial", event.serial))


def lag_pairs(lag: Lag | None) -> list[tuple[str, object]]:
    """``lag``, ``lag_min``, ``lag_max``, ``lag_precision`` for a ``key=value`` line:
    the same keys as JSON, in seconds (``0.027s``)."""
    return [
        (key, None if value is None else f"{value:.3f}s") for key, value in lag_fields(lag).items()
    ]


NO_ANSWER = "no answer"
"""What an address that never answered says in ``error`` (never null beside a null serial)."""


def _status_error(status: AddressStatus) -> str | None:
    return status.error or (NO_ANSWER if status.serial is None else None)


def summary_dict(summary: MonitorSummary, at: float | None = None) -> dict[str, object]:
    """The summary as its JSON line: ``time`` like every other event, and ``error``
    set for an address that never answered."""
    doc = summary.to_dict()
    for key in ("lagging", "servers"):
        entries = doc.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if entry.get("serial") is None and not entry.get("error"):
                entry["error"] = NO_ANSWER
    at = time.time() if at is None else at
    return {"event": doc.pop("event"), "time": iso_time(at), **doc}


def summary_lines(summary: MonitorSummary, at: float | None = None) -> list[str]:
    """The end of a monitor run: one line per lagging address, then the summary line,
    which is always the last event."""
    lagging = summary.lagging
    stamp = iso_time(time.time() if at is None else at)
    lines = [
        kv_line(
            ("time", stamp),
            ("event", "lagging"),
            ("zone", summary.zone),
            ("server", status.server),
            ("address", status.address),
            ("serial", status.serial),
            ("error", _status_error(status)),
        )
        for status in lagging
    ]
    lines.append(
        kv_line(
            ("time", stamp),
            ("event", "summary"),
            ("zone", summary.zone),
            ("result", summary.outcome.value),
            ("newest", summary.newest),
            ("start_serial", summary.start_serial),
            ("until_serial", _until_text(summary)),
            *lag_pairs(summary.slowest),
            ("elapsed", f"{summary.elapsed:.3f}s"),
            ("addresses", len(summary.statuses)),
            ("lagging", len(lagging)),
        )
    )
    return lines


def _until_text(summary: MonitorSummary) -> int | str | None:
    if summary.until_next and summary.until_serial is None:
        return "next"
    return summary.until_serial


def lag_complaint(summary: MonitorSummary) -> str:
    """The stderr line for a timeout: who did not get there."""
    wanted = summary.target_serial
    lagging = summary.lagging
    who = ", ".join(
        f"{s.server if s.address == '-' else s.address} "
        f"({_status_error(s) or f'serial {s.serial}'})"
        for s in lagging
    )
    if summary.until_next and summary.until_serial is None:
        start = "none" if summary.start_serial is None else summary.start_serial
        goal = f"a serial newer than {start}"
    elif summary.until_serial is not None:
        goal = f"serial {wanted}"
    else:
        goal = f"the same serial (newest {'none' if wanted is None else wanted})"
    how = "when stopped after" if summary.outcome is MonitorOutcome.STOPPED else "after"
    return (
        f"secdns: watch: zone {summary.zone}: {len(lagging)} of {len(summary.statuses)} "
        f"addresses not at {goal} {how} {seconds_text(summary.elapsed)}"
        + (f": {who}" if who else "")
    )


def _lag_text(lag: Lag | None) -> str:
    if lag is None:
        return "-"
    return f"≥{lag.low:.3f}s" if lag.value is None else f"{lag.value:.3f}s"


def _window_text(lag: Lag | None) -> str:
    if lag is None:
        return "-"
    return f"{lag.low:.3f}-?s" if lag.high is None else f"{lag.low:.3f}-{lag.high:.3f}s"


LAG_CAPTION = (
    "lag: seconds after the primary (or the first) had the serial, the middle of the "
    "window the switch lies in; last change: when this watch saw it."
)


def monitor_table(
    zone: str,
    statuses: tuple[AddressStatus, ...],
    newest: int | None,
    until_serial: int | None = None,
    width: int | None = None,
) -> Table:
    """The live table: who answers which serial, how late it caught up, since when.

    Made for a terminal ``width`` columns wide (80 and up): nothing that tells two
    addresses apart, nor a number, is cut with an ellipsis.  The address and window
    columns keep their width; the server's name (blank when it is the address, as
    for @IP:PORT) and a serial's error fold onto more lines; "last change" is left
    out first when the rest would not fit."""
    current = sum(1 for s in statuses if s.current)
    title = f"secdns watch {zone}  newest serial {newest if newest is not None else '-'}"
    title += f"  {current}/{len(statuses)} current"
    if until_serial is not None:
        title += f"  waiting for {until_serial}"
    table = Table(title=title, title_justify="left", caption=LAG_CAPTION, caption_justify="left")
    address_width = max((len(s.address) for s in statuses), default=7)
    window_width = max((len(_window_text(s.lag)) for s in statuses), default=6)
    # server (9), serial (10), lag (6), last change (8), and 3 of border and padding a column
    with_changed = width is None or address_width + window_width + 33 + 6 * 3 + 1 <= width
    table.add_column("server", overflow="fold", min_width=9)
    table.add_column("address", no_wrap=True, min_width=address_width)
    table.add_column("serial", justify="right", overflow="fold", min_width=10)
    table.add_column("lag", justify="right", no_wrap=True, min_width=6)
    table.add_column("window", justify="right", no_wrap=True, min_width=window_width)
    if with_changed:
        table.add_column("last change", min_width=8)
    for status in statuses:
        if status.error is not None:
            serial = Text(
                f"{status.serial if status.serial is not None else '-'} ({status.error})",
                style="bold red",
            )
        elif status.current:
            serial = Text(str(status.serial), style="green")
        else:
            serial = Text(str(status.serial) if status.serial is not None else "-", style="yellow")
        changed = iso_time(status.changed_at)[11:19] if status.changed_at else "-"
        server = "" if status.server == status.address else status.server
        if status.primary:
            server = f"{server} (primary)".lstrip()
        table.add_row(
            server,
            status.address,
            serial,
            _lag_text(status.lag),
            _window_text(status.lag),
            *([changed] if with_changed else []),
        )
    return table


def summary_text(summary: MonitorSummary) -> Text:
    text = Text()
    if summary.outcome in (MonitorOutcome.REACHED, MonitorOutcome.CONSISTENT):
        text.append(f"{summary.outcome.value}: ", style="bold green")
        text.append(
            f"every address answers serial {summary.target_serial} "
            f"after {seconds_text(summary.elapsed)}"
        )
        slowest = summary.slowest
        if slowest is not None:
            after = "primary" if summary.has_primary else "first"
            if slowest.high is None:
                text.append(
                    f"; the slowest caught up at least {slowest.low:.3f}s after the {after} "
                    "(which had it before the watch started)"
                )
            else:
                text.append(
                    f"; the slowest caught up {slowest.best:.3f}s after the {after} "
                    f"(between {slowest.low:.3f} and {slowest.high:.3f}s)"
                )
        return text
    style = "bold red" if summary.outcome is MonitorOutcome.TIMEOUT else "yellow"
    text.append(f"{summary.outcome.value}: ", style=style)
    text.append(
        f"{len(summary.lagging)} of {len(summary.statuses)} addresses not current "
        f"after {seconds_text(summary.elapsed)}"
    )
    return text


class MonitorDisplay(EventPrinter):
    """Monitor events as a live table (TTY), lines (piped) or JSON lines."""

    def __init__(self, out: EventStream, *, as_json: bool, quiet: bool, rich: bool) -> None:
        super().__init__(out, as_json=as_json, quiet=quiet, rich=rich and not quiet)
        self.monitor: Monitor | None = None
        self.live: Live | None = None

    def table(self) -> Table:
        assert self.monitor is not None
        return monitor_table(
            self.monitor.origin.to_text(),
            self.monitor.statuses(),
            self.monitor.tracker.newest,
            self.monitor.options.until_serial,
            width=self.live.console.width if self.live is not None else None,
        )

    def start(self, monitor: Monitor) -> None:
        self.monitor = monitor
        if self.rich:
            console = self.out.console()
            self.live = Live(console=console, auto_refresh=False)
            self.live.update(self.table())
            self.live.start(refresh=True)

    def __call__(self, event: MonitorEvent) -> None:
        if self.as_json:
            self.out.write_json(event.to_dict())
        elif self.live is not None:
            self.live.update(self.table(), refresh=True)
        elif not self.quiet:
            self.out.write(monitor_line(event) + "\n")

    def abort(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def finish(self, summary: MonitorSummary) -> None:
        if self.live is not None:
            self.live.update(self.table(), refresh=True)
            self.live.stop()
            self.live = None
            self.out.console().print(summary_text(summary))
        elif self.as_json:
            self.out.write_json(summary_dict(summary))
        elif not self.quiet:
            self.out.write("".join(line + "\n" for line in summary_lines(summary)))
        if summary.outcome is MonitorOutcome.TIMEOUT or summary.exit_code != 0:
            click.echo(lag_complaint(summary), err=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_early_signals: list[int] = []


def _remember_signal(signum: int, frame: object) -> None:
    """Outside the event loop (before it starts, after it ends) a SIGINT/SIGTERM is
    remembered, not fatal: before, it stops the watch at once; after, the summary
    is out and the exit status decided."""
    _early_signals.append(signum)


@contextlib.contextmanager
def _signals_remembered() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    _early_signals.clear()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _remember_signal)
    try:
        yield
    finally:
        if sys.stdout is not sys.__stdout__:  # in-process (click's CliRunner): restore
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        else:  # the summary is out and the status decided: a signal now must not kill
            # us as the interpreter exits (it restores SIG_DFL first); blocked, it is
            # dropped at exit.  The loop's executor threads are gone by now.
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


class _Stopper:
    """SIGINT/SIGTERM (and a reader gone from the stdout pipe) set ``stop``, from
    the start, target lookups included; ``code()`` is the exit status a stop
    gives when it cuts short a --until-* wait: 128 + the signal."""

    def __init__(self, stop: asyncio.Event, out: EventStream) -> None:
        self.stop = stop
        self.out = out
        self.signum: int | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed = []
        for signum in STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            installed.append(signum)
        if _early_signals:
            self._on_signal(_early_signals[0])
        try:
            with self.out.watching(self.stop):
                yield
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)  # which restores SIG_DFL
                signal.signal(signum, _remember_signal)

    def _on_signal(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.stop.set()

    def code(self) -> int:
        if self.signum is not None:
            return 128 + self.signum
        if self.out.broken:
            from secdns.cli import EXIT_BROKEN_PIPE

            return EXIT_BROKEN_PIPE
        return int(ExitCode.INTERRUPTED)


async def _unless_stopped(
    work: Awaitable[T], stop: asyncio.Event, timeout: float | None
) -> T | None:
    """``await work``, or None if ``stop`` is set or ``timeout`` passes first."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            [task, waiter], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        waiter.cancel()
    if task in done:
        return task.result()
    task.cancel()
    return None


async def _targets(
    origin: dns.name.Name,
    servers: list[Endpoint],
    auto: bool,
    primary: tuple[Endpoint | None, bool] = (None, False),
) -> list[Target]:
    """The addresses to watch, the primary's marked (see ``--primary``)."""
    targets: list[Target] = []
    given, by_mname = primary
    if auto:
        found = await nameserver_targets(origin)
        targets += found if by_mname else [dataclasses.replace(t, primary=False) for t in found]
    targets += await targets_from_endpoints(servers)
    if given is not None:
        targets = mark_primary(targets, await targets_from_endpoints([given]))
    for target in targets:
        if target.address is None:
            click.echo(
                f"secdns: watch: zone {origin}: {target.server} has no address "
                f"({target.error}); not watched",
                err=True,
            )
    return targets


def run_monitor(
    origin: dns.name.Name,
    servers: list[Endpoint],
    auto: bool,
    options: MonitorOptions,
    out: EventStream,
    *,
    as_json: bool,
    quiet: bool,
    rich: bool,
    metrics_endpoint: Endpoint | None = None,
    watch_metrics: metrics.WatchMetrics | None = None,
    primary: tuple[Endpoint | None, bool] = (None, False),
) -> MonitorSummary:
    """Watch ``origin``'s serial on ``servers`` (and, with ``auto``, its NS set) and
    render it; ``primary``: the primary given, and whether to find it by the SOA
    MNAME among the NS.  A SIGINT/SIGTERM from before the loop starts to after the
    summary is out stops the watch and never kills it mid-summary."""
    display = MonitorDisplay(out, as_json=as_json, quiet=quiet, rich=rich)
    with _signals_remembered():
        return asyncio.run(
            with_metrics(
                _monitor(origin, servers, auto, options, display, out, watch_metrics, primary),
                metrics_endpoint,
                watch_metrics,
            )
        )


async def _monitor(
    origin: dns.name.Name,
    servers: list[Endpoint],
    auto: bool,
    options: MonitorOptions,
    display: MonitorDisplay,
    out: EventStream,
    watch_metrics: metrics.WatchMetrics | None = None,
    primary: tuple[Endpoint | None, bool] = (None, False),
) -> MonitorSummary:
    """Look up the addresses, run the monitor, print the summary: on every way
    out but an error, a stop or the deadline during the lookups included."""
    stop = asyncio.Event()
    stopper = _Stopper(stop, out)
    began = time.monotonic()
    with stopper.installed():
        targets = await _unless_stopped(
            _targets(origin, servers, auto, primary), stop, options.deadline
        )
        if targets is None:
            if stop.is_set():
                code = stopper.code() if options.waits else int(ExitCode.OK)
                summary = stopped_summary(origin, options, MonitorOutcome.STOPPED, code)
            else:
                summary = stopped_summary(
                    origin, options, MonitorOutcome.TIMEOUT, int(ExitCode.NETWORK)
                )
            display.finish(summary)
            return summary
        if options.deadline is not None:
            left = max(0.0, options.deadline - (time.monotonic() - began))
            options = dataclasses.replace(options, deadline=left)
        monitor = Monitor(
            origin, targets, options=options, on_event=display, stop_code=stopper.code
        )
        if watch_metrics is not None:
            watch_metrics.watch_monitor(origin.to_text(), monitor.statuses)
        display.start(monitor)
        try:
            summary = await monitor.run(stop)
        except BaseException:
            display.abort()
            raise
    display.finish(summary)
    return summary
