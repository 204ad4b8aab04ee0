"""``secdns watch`` in mirror mode: the plan from the arguments or the config, the
run of :class:`~secdns.mirror.Mirror`, and its events rendered (coloured lines on a
terminal, one ``key=value`` line per event when piped, JSON lines with ``--json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.text import Text

from secdns import xot
from secdns.cli.options import config_zones
from secdns.cli.progress import TransferProgress
from secdns.cli.stream import EventPrinter, EventStream
from secdns.config import Limits, ServerConfig, keyring_conflicts, parse_zone_name
from secdns.endpoints import Endpoint
from secdns.errors import ConfigError, UsageError
from secdns.keys import TsigKey
from secdns.mirror import (
    Mirror,
    MirrorEvent,
    MirrorEventKind,
    MirrorOptions,
    MirrorZone,
    TransferDisplay,
)
from secdns.output import kv_line, tally
from secdns.refresh import ZoneStatus
from secdns.store import Store, iso_time
from secdns.watch import seconds_text, stop_on_signals
from secdns.xfr import XfrKind

if TYPE_CHECKING:  # prometheus_client loads only when --metrics-listen is given
    from secdns import metrics

DEFAULT_JOBS = 16


T = TypeVar("T")


def tee(first: Callable[[Any], None], then: Callable[[Any], None]) -> Callable[[Any], None]:
    """One event callback that calls two."""

    def both(event: Any) -> None:
        first(event)
        then(event)

    return both


def with_metrics(
    work: Coroutine[Any, Any, T],
    endpoint: Endpoint | None,
    watch_metrics: metrics.WatchMetrics | None,
) -> Coroutine[Any, Any, T]:
    """``work``, with /metrics served at ``endpoint`` meanwhile; without an endpoint
    the Prometheus client is never imported (a plain watch starts sooner)."""
    if endpoint is None or watch_metrics is None:
        return work
    from secdns import metrics

    return metrics.serving_metrics(work, endpoint, watch_metrics)


def mirror_line(event: MirrorEvent) -> str:
    """One stable ``key=value`` line per mirror event, for pipes and logs."""
    head: list[tuple[str, object]] = [
        ("time", iso_time(event.at)),
        ("event", event.kind.value),
        ("zone", event.zone),
    ]
    kind = event.kind
    if kind is MirrorEventKind.UPDATED:
        previous = "none" if event.previous is None else event.previous
        return kv_line(
            *head,
            ("serial", f"{previous}->{event.serial}"),
            ("via", event.via.value if event.via is not XfrKind.NONE else None),
            ("added", event.added),
            ("removed", event.removed),
            ("primary", event.primary),
            ("file", event.file),
        )
    if kind is MirrorEventKind.SYNCED:
        return kv_line(
            *head, ("serial", event.serial), ("primary", event.primary), ("file", event.file)
        )
    if kind is MirrorEventKind.FAILED:
        return kv_line(
            *head,
            ("serial", event.serial),
            ("failures", event.failures),
            ("retry_in", seconds_text(event.retry_in or 0.0)),
            ("error", event.error),
        )
    if kind is MirrorEventKind.RECOVERED:
        return kv_line(*head, ("serial", event.serial), ("failures", event.failures))
    if kind is MirrorEventKind.REMOVED:
        return kv_line(*head, ("serial", event.serial))
    if kind is MirrorEventKind.NOTIFY:
        return kv_line(
            *head,
            ("serial", event.serial),
            ("announced", event.announced),
            ("source", event.source),
        )
    fields = [*head, ("serial", event.serial), ("status", event.exit_status)]
    if event.error:
        fields.append(("error", event.error))
    return kv_line(*fields)


_MIRROR_STYLE = {
    MirrorEventKind.SYNCED: "cyan",
    MirrorEventKind.UPDATED: "green",
    MirrorEventKind.FAILED: "bold red",
    MirrorEventKind.RECOVERED: "green",
    MirrorEventKind.NOTIFY: "blue",
    MirrorEventKind.EXEC: "dim",
    MirrorEventKind.REMOVED: "yellow",
}


def mirror_text(event: MirrorEvent) -> Text:
    """A mirror event as one coloured line for a terminal."""
    text = Text()
    text.append(iso_time(event.at)[11:19] + " ", style="dim")
    text.append(event.zone, style="bold")
    text.append(" ")
    style = _MIRROR_STYLE[event.kind]
    kind = event.kind
    if kind is MirrorEventKind.UPDATED:
        previous = "none" if event.previous is None else str(event.previous)
        text.append(f"{event.via.value} serial {previous} → {event.serial}", style=style)
        text.append(f", +{event.added} -{event.removed}")
        if event.file:
            text.append(f" → {event.file}", style="dim")
    elif kind is MirrorEventKind.SYNCED:
        text.append(f"up to date at serial {event.serial}", style=style)
        if event.file:
            text.append(f" ({event.file})", style="dim")
    elif kind is MirrorEventKind.FAILED:
        text.append(f"check failed, retry in {seconds_text(event.retry_in or 0.0)}: ", style=style)
        text.append(event.error or "")
    elif kind is MirrorEventKind.RECOVERED:
        text.append(f"primary answers again after {event.failures} failed checks", style=style)
    elif kind is MirrorEventKind.NOTIFY:
        announced = f" (serial {event.announced})" if event.announced is not None else ""
        text.append(f"NOTIFY from {event.source}{announced}: checking now", style=style)
    elif kind is MirrorEventKind.REMOVED:
        text.append("no longer a member of its catalog: followed no more", style=style)
    else:
        failed = event.exit_status != 0
        text.append(
            f"--exec exited {event.exit_status}"
            if event.error is None
            else f"--exec failed: {event.error}",
            style="bold red" if failed else style,
        )
    return text


class FirstRound:
    """``watch`` on a terminal: the first check of every zone behind the progress
    display of ``pull -c`` (:class:`~secdns.cli.progress.TransferProgress`: an
    overall bar, a row per running transfer), then one line saying how it went.

    With more than one zone, a zone found up to date is only counted; transfers
    and failures are printed above the bar.  Once every zone was checked the
    display goes and the events are printed as they come.
    """

    FIRST = (MirrorEventKind.SYNCED, MirrorEventKind.UPDATED, MirrorEventKind.FAILED)

    def __init__(self, zones: int, console: Console) -> None:
        self.zones = zones
        self.console = console
        self.progress = TransferProgress(True, zones, console)
        self.checked: dict[str, MirrorEventKind] = {}
        self.started = time.monotonic()

    @property
    def running(self) -> bool:
        return self.progress.progress is not None

    def start(self) -> None:
        self.started = time.monotonic()
        self.progress.start()

    def show(self, event: MirrorEvent) -> None:
        """Print (or count) one event."""
        first = self.running and event.kind in self.FIRST and event.zone not in self.checked
        if not first:
            self.console.print(mirror_text(event))
            return
        self.checked[event.zone] = event.kind
        self.progress.advance()
        if self.progress.progress is not None:  # the display as it is now, not 0.1 s ago
            self.progress.progress.refresh()
        if event.kind is not MirrorEventKind.SYNCED or self.zones == 1:
            self.console.print(mirror_text(event))
        if len(self.checked) >= self.zones:
            self.stop()

    def stop(self) -> None:
        """The first round is over (or the watch stops): the display goes, a line stays."""
        if not self.running:
            return
        self.progress.stop()
        if self.zones > 1:
            self.console.print(self.line())

    def line(self) -> Text:
        kinds = list(self.checked.values())
        text = Text(f"{len(kinds):,} of {self.zones:,} zones checked in ", style="bold")
        text.append(seconds_text(time.monotonic() - self.started), style="bold")
        text.append(": ")
        return tally(
            text,
            kinds.count(MirrorEventKind.UPDATED),
            kinds.count(MirrorEventKind.SYNCED),
            kinds.count(MirrorEventKind.FAILED),
        )


def summary_text(statuses: list[ZoneStatus]) -> Text:
    """The stop on a terminal: how many zones are in which state, then a line for
    each zone that is not ok (piped, every zone gets its ``event=summary`` line)."""
    states = [status.state for status in statuses]
    text = Text(f"stopped: {len(statuses):,} zones: ", style="bold")
    tally = sorted({state: states.count(state) for state in states}.items())
    text.append(", ".join(f"{count:,} {state}" for state, count in tally))
    for status in statuses:
        if status.state != "ok":
            text.append(f"\n  {status.zone} {status.state}", style="yellow")
            serial = "none" if status.serial is None else status.serial
            text.append(
                f" (serial {serial})" + (f": {status.last_error}" if status.last_error else "")
            )
    return text


class MirrorPrinter(EventPrinter):
    """Mirror events as coloured lines (TTY), ``key=value`` lines (piped) or JSON lines.

    With ``zones``, a terminal shows the first check of the zones as a
    :class:`FirstRound`; piped output stays one line per event (per zone at first)."""

    def __init__(
        self, out: EventStream, *, as_json: bool, quiet: bool, rich: bool, zones: int = 0
    ) -> None:
        super().__init__(out, as_json=as_json, quiet=quiet, rich=rich)
        self.console = out.console() if self.rich else None
        self.first_round = (
            FirstRound(zones, self.console)
            if self.console is not None and zones and not quiet
            else None
        )

    def __call__(self, event: MirrorEvent) -> None:
        if self.as_json:
            self.out.write_json(event.to_dict())
        elif self.quiet:
            return
        elif self.first_round is not None:
            self.first_round.show(event)
        elif self.console is not None:
            self.console.print(mirror_text(event))
        else:
            self.out.write(mirror_line(event) + "\n")

    def summary(self, statuses: list[ZoneStatus]) -> None:
        """At the stop, one ``event=summary`` line per zone: where it was left."""
        if self.first_round is not None:
            self.first_round.stop()  # the display off the terminal before the lines
        if self.quiet:
            return
        if self.first_round is not None and self.first_round.zones > 1 and not self.as_json:
            self.first_round.console.print(summary_text(statuses))  # not 10,000 lines
            return
        stamp = iso_time(time.time())
        for status in statuses:
            if self.as_json:
                self.out.write_json({"event": "summary", "time": stamp, **status.to_dict()})
                continue
            self.out.write(
                kv_line(
                    ("time", stamp),
                    ("event", "summary"),
                    ("zone", status.zone),
                    ("serial", status.serial),
                    ("state", status.state),
                    ("primary", status.primary),
                    ("records", status.records),
                    ("error", status.last_error),
                )
                + "\n"
            )


def mirror_plan(
    zones: list[str],
    servers: list[Endpoint],
    config_path: str | None,
    output_path: str | None,
    directory: str | None,
    key: TsigKey | None,
    tls: xot.TlsSettings | None = None,
) -> tuple[list[MirrorZone], Store | None, int, Limits, ServerConfig]:
    """The zones to mirror, their store, the default concurrency, the limits and
    the [server] table (keep_connections, unreachable_hold): from the config
    (``-c``), else from ZONE @PRIMARY... with -o FILE or -d DIR."""
    out_path = Path(output_path) if output_path else None
    if output_path == "-":
        raise UsageError("watch writes files: give -o FILE or -d DIR, not -o -")
    if config_path:
        config, selected, store_dir = config_zones(
            config_path, zones, servers, output_given=out_path is not None, directory=directory
        )
        conflicts = keyring_conflicts(config)  # (NOTIFYs are checked against one keyring)
        if conflicts:
            raise ConfigError(f"{config_path}: " + "; ".join(conflicts))
        plan = [
            MirrorZone(
                z.name,
                z.primaries,
                key or config.key_for(z),
                out_path,
                z.allow_notify,
                tls=tls or z.tls,
                request_ixfr=z.request_ixfr,
                notify_key_required=z.notify_key_required,
            )
            for z in selected
        ]
        return (
            plan,
            Store(store_dir) if store_dir else None,
            config.server.concurrency,
            config.server.limits,
            config.server,
        )
    if len(zones) != 1 or not servers:
        raise UsageError(
            "usage: secdns watch ZONE @PRIMARY [@PRIMARY...] (-o FILE | -d DIR), "
            "or -c CONFIG, or ZONE --servers @SERVER..."
        )
    if out_path is None and directory is None:
        raise UsageError("say where the zone goes: -o FILE or -d DIR")
    plan = [MirrorZone(parse_zone_name(zones[0]), tuple(servers), key, out_path, tls=tls)]
    return plan, Store(directory) if directory else None, DEFAULT_JOBS, Limits(), ServerConfig()


def run_mirror(
    zones: list[MirrorZone],
    store: Store | None,
    options: MirrorOptions,
    out: EventStream,
    *,
    as_json: bool,
    quiet: bool,
    rich: bool,
    metrics_endpoint: Endpoint | None = None,
    watch_metrics: metrics.WatchMetrics | None = None,
) -> None:
    """Mirror the zones until SIGINT/SIGTERM (or the stdout pipe's reader goes),
    printing each event; with ``metrics_endpoint``, serve /metrics meanwhile."""
    events = MirrorPrinter(out, as_json=as_json, quiet=quiet, rich=rich, zones=len(zones))
    printer: Callable[[MirrorEvent], None] = events
    if watch_metrics is not None:
        printer = tee(watch_metrics.observe_mirror, printer)
    first_round = events.first_round
    if first_round is not None:
        first_round.start()
    try:
        with logs_beside_events(events.console is not None and not quiet):
            asyncio.run(
                with_metrics(
                    _mirror(
                        zones,
                        store,
                        options,
                        printer,
                        out,
                        watch_metrics,
                        events.summary,
                        first_round.progress if first_round is not None else None,
                    ),
                    metrics_endpoint,
                    watch_metrics,
                )
            )
    finally:
        if first_round is not None:
            first_round.stop()


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at each write: while rich's live display runs, its
    proxy, which prints a log line above the bar instead of into it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _not_shown_as_event(record: logging.LogRecord) -> bool:
    return not getattr(record, "shown_as_event", False)


@contextlib.contextmanager
def logs_beside_events(on_terminal: bool) -> Iterator[None]:
    """While events are shown on a terminal: a log line goes above the progress
    display, not into it, and one that only repeats an event on the same terminal
    (a failed check, ``--exec``'s status: :data:`~secdns.mirror.SHOWN_AS_EVENT`) is
    dropped.  Piped, events (stdout) and logs (stderr) both go out, unchanged."""
    if not on_terminal:
        yield
        return
    same_screen = sys.stderr.isatty()
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream in (sys.stderr, sys.__stderr__)
    ]
    streams = [h.setStream(_CurrentStderr()) for h in handlers]  # type: ignore[arg-type]
    if same_screen:
        for handler in handlers:
            handler.addFilter(_not_shown_as_event)
    try:
        yield
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.removeFilter(_not_shown_as_event)
            if stream is not None:
                handler.setStream(stream)


async def _mirror(
    zones: list[MirrorZone],
    store: Store | None,
    options: MirrorOptions,
    printer: Callable[[MirrorEvent], None],
    out: EventStream,
    watch_metrics: metrics.WatchMetrics | None = None,
    summary: Callable[[list[ZoneStatus]], None] | None = None,
    progress: TransferDisplay | None = None,
) -> None:
    stop = asyncio.Event()
    mirror = Mirror(zones, store=store, options=options, on_event=printer, progress=progress)
    if watch_metrics is not None:
        watch_metrics.watch_mirror(lambda: [mirror.status(zone.origin) for zone in zones])
    with stop_on_signals(stop), out.watching(stop):
        await mirror.run(stop)
    if summary is not None:  # the README's "exit 0, after a summary"
        summary([mirror.status(zone.origin) for zone in zones])
