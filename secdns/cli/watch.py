"""``secdns watch``: follow zones into files (mirror), or watch a serial propagate (monitor).

Parses, builds the core's :class:`~secdns.mirror.Mirror` or
:class:`~secdns.monitor.Monitor`, runs it until SIGINT/SIGTERM (or the ``--until-*``
condition), and renders its events: a rich live table (monitor) or coloured lines
on a terminal, one ``key=value`` line per event when piped, JSON lines with
``--json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import click
import dns.name
from click.core import ParameterSource
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from secdns import metrics, output, xot
from secdns.cli.options import (
    complete_zones,
    config_option,
    config_zones,
    force_option,
    resolve_key,
    resolve_tls,
    tls_options,
    tsig_options,
    verbosity_options,
)
from secdns.cli.pull import split_args
from secdns.config import Limits, parse_zone_name
from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import ExitCode, UsageError
from secdns.keys import TsigKey
from secdns.mirror import Mirror, MirrorEvent, MirrorEventKind, MirrorOptions, MirrorZone
from secdns.monitor import (
    FAST_INTERVAL,
    FAST_QUERIES,
    AddressStatus,
    Lag,
    Monitor,
    MonitorEvent,
    MonitorEventKind,
    MonitorOptions,
    MonitorOutcome,
    MonitorSummary,
    Target,
    nameserver_targets,
    stopped_summary,
    targets_from_endpoints,
)
from secdns.store import Store, iso_time
from secdns.watch import seconds_text, stop_on_signals
from secdns.xfr import XfrKind

DEFAULT_JOBS = 16
DEFAULT_MONITOR_INTERVAL = 1.0
T = TypeVar("T")


# --- rendering: plain lines, JSON lines, rich ----------------------------------------------------


def _value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and (not value or any(c in value for c in ' "=\\')):
        return json.dumps(value)
    return str(value)


def _line(*fields: tuple[str, object]) -> str:
    return " ".join(f"{key}={_value(value)}" for key, value in fields)


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
        return _line(
            *head,
            ("serial", f"{previous}->{event.serial}"),
            ("via", event.via.value if event.via is not XfrKind.NONE else None),
            ("added", event.added),
            ("removed", event.removed),
            ("primary", event.primary),
            ("file", event.file),
        )
    if kind is MirrorEventKind.SYNCED:
        return _line(
            *head, ("serial", event.serial), ("primary", event.primary), ("file", event.file)
        )
    if kind is MirrorEventKind.FAILED:
        return _line(
            *head,
            ("serial", event.serial),
            ("failures", event.failures),
            ("retry_in", seconds_text(event.retry_in or 0.0)),
            ("error", event.error),
        )
    if kind is MirrorEventKind.RECOVERED:
        return _line(*head, ("serial", event.serial), ("failures", event.failures))
    if kind is MirrorEventKind.NOTIFY:
        return _line(*head, ("serial", event.serial), ("source", event.source))
    fields = [*head, ("serial", event.serial), ("status", event.exit_status)]
    if event.error:
        fields.append(("error", event.error))
    return _line(*fields)


_MIRROR_STYLE = {
    MirrorEventKind.SYNCED: "cyan",
    MirrorEventKind.UPDATED: "green",
    MirrorEventKind.FAILED: "bold red",
    MirrorEventKind.RECOVERED: "green",
    MirrorEventKind.NOTIFY: "blue",
    MirrorEventKind.EXEC: "dim",
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
        text.append(f"NOTIFY from {event.source}: checking now", style=style)
    else:
        failed = event.exit_status != 0
        text.append(
            f"--exec exited {event.exit_status}"
            if event.error is None
            else f"--exec failed: {event.error}",
            style="bold red" if failed else style,
        )
    return text


def monitor_line(event: MonitorEvent) -> str:
    """One stable ``key=value`` line per monitor event."""
    head: list[tuple[str, object]] = [
        ("time", iso_time(event.at)),
        ("event", event.kind.value),
        ("zone", event.zone),
    ]
    if event.kind is MonitorEventKind.CONSISTENT:
        return _line(
            *head,
            ("serial", event.serial),
            ("lag", _lag_value(event.lag)),
            ("lag_precision", _lag_precision(event.lag)),
        )
    where = [("server", event.server), ("address", event.address)]
    if event.kind is MonitorEventKind.SERIAL:
        return _line(
            *head,
            *where,
            ("serial", event.serial),
            ("previous", event.previous),
            ("lag", _lag_value(event.lag)),
            ("lag_precision", _lag_precision(event.lag)),
            ("newest", event.newest),
        )
    if event.kind is MonitorEventKind.FAILED:
        return _line(*head, *where, ("serial", event.serial), ("error", event.error))
    return _line(*head, *where, ("serial", event.serial))


def _lag_value(lag: Lag | None) -> str | None:
    return f"{lag.value:.3f}s" if lag is not None else None


def _lag_precision(lag: Lag | None) -> str | None:
    return f"{lag.precision:.3f}s" if lag is not None else None


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
    """The end of a monitor run: one summary line, then one line per lagging address."""
    lagging = summary.lagging
    stamp = iso_time(time.time() if at is None else at)
    lines = [
        _line(
            ("time", stamp),
            ("event", "summary"),
            ("zone", summary.zone),
            ("result", summary.outcome.value),
            ("newest", summary.newest),
            ("start_serial", summary.start_serial),
            ("until_serial", _until_text(summary)),
            ("elapsed", f"{summary.elapsed:.3f}s"),
            ("addresses", len(summary.statuses)),
            ("lagging", len(lagging)),
        )
    ]
    for status in lagging:
        lines.append(
            _line(
                ("time", stamp),
                ("event", "lagging"),
                ("zone", summary.zone),
                ("server", status.server),
                ("address", status.address),
                ("serial", status.serial),
                ("error", _status_error(status)),
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
    return "-" if lag is None else f"{lag.value:.2f}s ±{lag.precision:.2f}"


def monitor_table(
    zone: str,
    statuses: tuple[AddressStatus, ...],
    newest: int | None,
    until_serial: int | None = None,
) -> Table:
    """The live table: who answers which serial, how late it caught up, since when."""
    current = sum(1 for s in statuses if s.current)
    title = f"secdns watch {zone}  newest serial {newest if newest is not None else '-'}"
    title += f"  {current}/{len(statuses)} current"
    if until_serial is not None:
        title += f"  waiting for {until_serial}"
    table = Table(title=title, title_justify="left")
    table.add_column("server")
    table.add_column("address")
    table.add_column("serial", justify="right", no_wrap=True, overflow="ellipsis", max_width=44)
    table.add_column("lag", justify="right")
    table.add_column("last change")
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
        table.add_row(status.server, status.address, serial, _lag_text(status.lag), changed)
    return table


def summary_text(summary: MonitorSummary) -> Text:
    text = Text()
    if summary.outcome in (MonitorOutcome.REACHED, MonitorOutcome.CONSISTENT):
        text.append(f"{summary.outcome.value}: ", style="bold green")
        text.append(
            f"every address answers serial {summary.target_serial} "
            f"after {seconds_text(summary.elapsed)}"
        )
        lags = [s.lag for s in summary.statuses if s.lag is not None]
        if lags:
            slowest = max(lags, key=lambda lag: lag.value)
            text.append(
                f"; slowest caught up {slowest.value:.2f}s ±{slowest.precision:.2f}s "
                "after the first"
            )
        return text
    style = "bold red" if summary.outcome is MonitorOutcome.TIMEOUT else "yellow"
    text.append(f"{summary.outcome.value}: ", style=style)
    text.append(
        f"{len(summary.lagging)} of {len(summary.statuses)} addresses not current "
        f"after {seconds_text(summary.elapsed)}"
    )
    return text


class _Out:
    """stdout for events: flushed per line; a closed pipe stops the watch quietly."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.stop: asyncio.Event | None = None
        self.broken = False

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        self.broken = True
        if self.stop is not None:
            self.stop.set()
        try:  # so that the interpreter's final flush does not fail again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass

    @contextlib.contextmanager
    def watching(self, stop: asyncio.Event) -> Iterator[None]:
        """Stop when the reader of a stdout pipe goes away (``| head``), not at the
        next event, which may be hours away: epoll flags the write end then."""
        self.stop = stop
        loop = asyncio.get_running_loop()
        try:
            fd = self.stream.fileno()
            is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except (OSError, ValueError, AttributeError):  # not a real file (tests)
            is_pipe = False
        if is_pipe:
            loop.add_reader(fd, self._reader_gone, fd)
        try:
            yield
        finally:
            if is_pipe:
                loop.remove_reader(fd)

    def _reader_gone(self, fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        self._gone()


class MirrorPrinter:
    def __init__(self, out: _Out, *, as_json: bool, quiet: bool, rich: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.quiet = quiet
        self.console = Console(file=out.stream, highlight=False) if rich else None

    def __call__(self, event: MirrorEvent) -> None:
        if self.as_json:
            self.out.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
        elif self.quiet:
            return
        elif self.console is not None:
            self.console.print(mirror_text(event))
        else:
            self.out.write(mirror_line(event) + "\n")


class MonitorDisplay:
    """Monitor events as a live table (TTY), lines (piped) or JSON lines."""

    def __init__(self, out: _Out, *, as_json: bool, quiet: bool, rich: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.quiet = quiet
        self.rich = rich and not as_json and not quiet
        self.monitor: Monitor | None = None
        self.live: Live | None = None

    def table(self) -> Table:
        assert self.monitor is not None
        return monitor_table(
            self.monitor.origin.to_text(),
            self.monitor.statuses(),
            self.monitor.tracker.newest,
            self.monitor.options.until_serial,
        )

    def start(self, monitor: Monitor) -> None:
        self.monitor = monitor
        if self.rich:
            console = Console(file=self.out.stream, highlight=False)
            self.live = Live(self.table(), console=console, auto_refresh=False)
            self.live.start(refresh=True)

    def __call__(self, event: MonitorEvent) -> None:
        if self.as_json:
            self.out.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
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
            Console(file=self.out.stream, highlight=False).print(summary_text(summary))
        elif self.as_json:
            self.out.write(json.dumps(summary_dict(summary), separators=(",", ":")) + "\n")
        elif not self.quiet:
            self.out.write("".join(line + "\n" for line in summary_lines(summary)))
        if summary.outcome is MonitorOutcome.TIMEOUT or summary.exit_code != 0:
            click.echo(lag_complaint(summary), err=True)


class SerialOrNext(click.ParamType):
    """A serial (0 to 2**32 - 1), or ``next``."""

    name = "serial"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | str:
        if isinstance(value, int) or value == "next":
            return value
        try:
            serial = int(str(value), 10)
        except ValueError:
            serial = -1
        if not 0 <= serial <= 0xFFFFFFFF:
            self.fail(f"{value!r} is not a serial (0 to 4294967295) or 'next'", param, ctx)
        return serial


# --- the command ---------------------------------------------------------------------------------


@click.command("watch")
@click.argument("args", nargs=-1, metavar="[ZONE] [@SERVER...]", shell_complete=complete_zones)
@config_option
@click.option(
    "-o",
    "--output",
    "output_path",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Mirror: keep the zone in FILE, replaced atomically at each change (by AXFR;"
    " -d keeps what IXFR needs).",
)
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False),
    help="Mirror: keep zones in this store (state, IXFR journal), as pull -d.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    metavar="SECONDS",
    help="Seconds between SOA checks.  Mirror: instead of each zone's SOA refresh; "
    f"monitor: to each address, staggered, default {DEFAULT_MONITOR_INTERVAL:g} "
    "(it bounds lag_precision).",
)
@click.option(
    "--notify-listen",
    metavar="ADDR[:PORT]",
    help="Mirror: also check at once on a NOTIFY from a zone's primaries, received "
    "on this UDP address (port 53 by default).",
)
@click.option(
    "--exec",
    "exec_command",
    metavar="CMD",
    help="Mirror: shell command run after each change, with SECDNS_ZONE, "
    "SECDNS_OLD_SERIAL, SECDNS_NEW_SERIAL, SECDNS_FILE, SECDNS_KIND set.",
)
@click.option(
    "--servers",
    "watch_servers",
    is_flag=True,
    help="Monitor: watch the serial on every address of each @SERVER.",
)
@click.option(
    "--nameservers",
    type=click.Choice(["auto"]),
    help="Monitor: watch every address of every name in the zone's NS set.",
)
@click.option(
    "--until-serial",
    type=SerialOrNext(),
    metavar="N|next",
    help="Monitor: exit 0 once every address answers serial N or newer (RFC 1982); "
    "next: a serial newer than the newest when the watch started.",
)
@click.option(
    "--until-consistent",
    is_flag=True,
    help="Monitor: exit 0 once every address answers the same serial.",
)
@click.option(
    "--timeout",
    "deadline",
    type=click.FloatRange(min=0.01),
    metavar="SECONDS",
    help="With --until-*: give up after SECONDS, print who lagged, exit 1.",
)
@click.option(
    "--fast-interval",
    type=click.FloatRange(min=0.005),
    default=FAST_INTERVAL,
    metavar="SECONDS",
    show_default=True,
    help="Monitor: seconds between queries to an address that answers an older serial "
    "than another, so that its lag is known to this precision.",
)
@click.option(
    "--fast-queries",
    type=click.IntRange(min=0),
    default=FAST_QUERIES,
    metavar="N",
    show_default=True,
    help="Monitor: at most N fast queries per address and new serial, then back to --interval.",
)
@click.option(
    "--query-timeout",
    type=click.FloatRange(min=0.01),
    default=5.0,
    metavar="SECONDS",
    show_default=True,
    help="Seconds to wait for each answer or transfer message.",
)
@click.option(
    "--lifetime",
    type=click.FloatRange(min=0.01),
    default=3600.0,
    metavar="SECONDS",
    show_default=True,
    help="Mirror: seconds a whole transfer may take.",
)
@force_option
@tsig_options
@tls_options
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help=f"Queries and transfers at once (default {DEFAULT_JOBS}, or the config's concurrency).",
)
@click.option(
    "--metrics-listen",
    metavar="ADDR:PORT",
    help="Serve Prometheus /metrics here: secdns_watch_serial and secdns_watch_lag_seconds "
    "(monitor), the zone metrics of serve (mirror).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per event (lines).")
@verbosity_options
def command(
    args: tuple[str, ...],
    config_path: str | None,
    output_path: str | None,
    directory: str | None,
    interval: float | None,
    notify_listen: str | None,
    exec_command: str | None,
    watch_servers: bool,
    nameservers: str | None,
    until_serial: int | str | None,
    until_consistent: bool,
    deadline: float | None,
    fast_interval: float,
    fast_queries: int,
    query_timeout: float,
    lifetime: float,
    force: bool,
    tsig: str | None,
    keyfile: str | None,
    jobs: int | None,
    metrics_listen: str | None,
    as_json: bool,
    verbose: int,
    quiet: bool,
) -> None:
    """Follow zones into local files, or watch a new serial reach every server.

    Mirror (the default): poll each zone's SOA at its refresh interval (or
    --interval), pull by IXFR when the serial moves (the same engine and store as
    pull), and run --exec after each change.  With --notify-listen a NOTIFY from
    a primary triggers the check at once.  An unreachable primary is retried with
    backoff from the SOA retry timer.

    Monitor (--servers or --nameservers auto): query the SOA on every address of
    every server (each every --interval, staggered) and show which have the
    newest serial and how long each took to catch up after the first one showed
    it.  An address behind another is asked every --fast-interval, so the
    moment it caught up is known to tens of milliseconds.  Each lag comes with
    its lag_precision: the true lag is within lag ± lag_precision, and the first
    address's --interval bounds it (a shorter --interval, a tighter lag).  With
    --until-serial N, --until-serial next (the next change after the start) or
    --until-consistent it exits 0 as soon as that holds, or 1 after --timeout
    with the list of who lagged.

    Runs until SIGINT/SIGTERM (exit 0), with a summary; with --until-* a stop
    before it holds exits 128 + the signal (130, 143).  Lines on stdout are one
    event each (key=value, or JSON with --json); a terminal gets a live table.

    \b
    Examples:
      secdns watch example.com @192.0.2.1 -d /var/lib/secdns
      secdns watch example.com @192.0.2.1 -o example.com.zone --interval 30 \\
          --notify-listen 0.0.0.0:5353 --exec 'rndc reload "$SECDNS_ZONE"'
      secdns watch -c secdns.toml --exec 'git -C zones commit -qam "$SECDNS_ZONE"'
      secdns watch example.com --servers @ns1.example.net @ns2.example.net
      secdns watch example.com --nameservers auto --until-serial 2026010102 --timeout 300
      secdns watch example.com --servers @192.0.2.1 @192.0.2.2 --until-consistent --json
      secdns watch example.com --servers @192.0.2.1 @192.0.2.2 --until-serial next
    """
    from secdns.cli import setup_logging

    setup_logging(verbose, quiet)
    tls = resolve_tls()
    zones, servers = split_args(args, xot.default_port(tls))
    if config_path and servers and not _given_on_command_line("config_path"):
        config_path = None  # $SECDNS_CONFIG does not override the @SERVERs typed
    key = resolve_key(tsig, keyfile)
    out = _Out(sys.stdout)
    rich = output.use_rich(sys.stdout) and not as_json
    metrics_endpoint = parse_endpoint(metrics_listen) if metrics_listen else None
    watch_metrics = metrics.WatchMetrics() if metrics_endpoint else None
    if watch_servers or nameservers:
        _reject(
            {
                "-c": config_path if _given_on_command_line("config_path") else None,
                "-o": output_path,
                "-d": directory,
                "--exec": exec_command,
                "--notify-listen": notify_listen,
                "--tls": tls,
            },
            "in monitor mode (--servers, --nameservers)",
        )
        if len(zones) != 1:
            raise UsageError(
                "usage: secdns watch ZONE --servers @SERVER [@SERVER...] (or --nameservers auto)"
            )
        if watch_servers and not servers:
            raise UsageError("--servers needs the @SERVER arguments to watch")
        if until_serial is not None and until_consistent:
            raise UsageError("give --until-serial or --until-consistent, not both")
        if deadline is not None and until_serial is None and not until_consistent:
            raise UsageError("--timeout goes with --until-serial or --until-consistent")
        options = MonitorOptions(
            interval=interval or DEFAULT_MONITOR_INTERVAL,
            timeout=query_timeout,
            concurrency=jobs or 2 * DEFAULT_JOBS,
            key=key,
            until_serial=until_serial if isinstance(until_serial, int) else None,
            until_next=until_serial == "next",
            until_consistent=until_consistent,
            deadline=deadline,
            fast_interval=fast_interval,
            fast_queries=fast_queries,
        )
        display = MonitorDisplay(out, as_json=as_json, quiet=quiet, rich=rich)
        with _signals_remembered():
            summary = asyncio.run(
                metrics.serving_metrics(
                    _monitor(
                        parse_zone_name(zones[0]),
                        servers,
                        nameservers == "auto",
                        options,
                        display,
                        out,
                        watch_metrics,
                    ),
                    metrics_endpoint,
                    watch_metrics,
                )
            )
        sys.exit(summary.exit_code)

    _reject(
        {
            "--until-serial": until_serial,
            "--until-consistent": until_consistent or None,
            "--timeout": deadline,
        },
        "in mirror mode; they go with --servers or --nameservers auto",
    )
    mirror_zones, store, concurrency, limits = _mirror_plan(
        zones, servers, config_path, output_path, directory, key, tls
    )
    mirror_options = MirrorOptions(
        interval=interval,
        concurrency=jobs or concurrency,
        timeout=query_timeout,
        lifetime=lifetime,
        limits=limits,
        force=force,
        exec_command=exec_command,
        notify_listen=parse_endpoint(notify_listen) if notify_listen else None,
    )
    printer: Callable[[MirrorEvent], None] = MirrorPrinter(
        out, as_json=as_json, quiet=quiet, rich=rich
    )
    if watch_metrics is not None:
        printer = metrics.tee(watch_metrics.observe_mirror, printer)
    asyncio.run(
        metrics.serving_metrics(
            _mirror(mirror_zones, store, mirror_options, printer, out, watch_metrics),
            metrics_endpoint,
            watch_metrics,
        )
    )
    sys.exit(0)


def _given_on_command_line(name: str) -> bool:
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def _reject(given: dict[str, object], where: str) -> None:
    used = [name for name, value in given.items() if value is not None]
    if used:
        raise UsageError(f"{', '.join(used)} cannot be used {where}")


def _mirror_plan(
    zones: list[str],
    servers: list[Endpoint],
    config_path: str | None,
    output_path: str | None,
    directory: str | None,
    key: TsigKey | None,
    tls: xot.TlsSettings | None = None,
) -> tuple[list[MirrorZone], Store | None, int, Limits]:
    out_path = Path(output_path) if output_path else None
    if output_path == "-":
        raise UsageError("watch writes files: give -o FILE or -d DIR, not -o -")
    if config_path:
        config, selected, store_dir = config_zones(
            config_path, zones, servers, output_given=out_path is not None, directory=directory
        )
        plan = [
            MirrorZone(
                z.name,
                z.primaries,
                key or config.key_for(z),
                out_path,
                z.allow_notify,
                tls=tls or z.tls,
                request_ixfr=z.request_ixfr,
            )
            for z in selected
        ]
        return (
            plan,
            Store(store_dir) if store_dir else None,
            config.server.concurrency,
            config.server.limits,
        )
    if len(zones) != 1 or not servers:
        raise UsageError(
            "usage: secdns watch ZONE @PRIMARY [@PRIMARY...] (-o FILE | -d DIR), "
            "or -c CONFIG, or ZONE --servers @SERVER..."
        )
    if out_path is None and directory is None:
        raise UsageError("say where the zone goes: -o FILE or -d DIR")
    plan = [MirrorZone(parse_zone_name(zones[0]), tuple(servers), key, out_path, tls=tls)]
    return plan, Store(directory) if directory else None, DEFAULT_JOBS, Limits()


async def _mirror(
    zones: list[MirrorZone],
    store: Store | None,
    options: MirrorOptions,
    printer: Callable[[MirrorEvent], None],
    out: _Out,
    watch_metrics: metrics.WatchMetrics | None = None,
) -> None:
    stop = asyncio.Event()
    mirror = Mirror(zones, store=store, options=options, on_event=printer)
    if watch_metrics is not None:
        watch_metrics.watch_mirror(lambda: [mirror.status(zone.origin) for zone in zones])
    with stop_on_signals(stop), out.watching(stop):
        await mirror.run(stop)


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

    def __init__(self, stop: asyncio.Event, out: _Out) -> None:
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


async def _targets(origin: dns.name.Name, servers: list[Endpoint], auto: bool) -> list[Target]:
    targets: list[Target] = []
    if auto:
        targets += await nameserver_targets(origin)
    targets += await targets_from_endpoints(servers)
    for target in targets:
        if target.address is None:
            click.echo(
                f"secdns: watch: zone {origin}: {target.server} has no address "
                f"({target.error}); not watched",
                err=True,
            )
    return targets


async def _monitor(
    origin: dns.name.Name,
    servers: list[Endpoint],
    auto: bool,
    options: MonitorOptions,
    display: MonitorDisplay,
    out: _Out,
    watch_metrics: metrics.WatchMetrics | None = None,
) -> MonitorSummary:
    """Look up the addresses, run the monitor, print the summary: on every way
    out but an error, a stop or the deadline during the lookups included."""
    stop = asyncio.Event()
    stopper = _Stopper(stop, out)
    began = time.monotonic()
    with stopper.installed():
        targets = await _unless_stopped(_targets(origin, servers, auto), stop, options.deadline)
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
