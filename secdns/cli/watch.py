"""``secdns watch``: follow zones into files (mirror), or watch a serial propagate (monitor).

The click veneer: parses and checks the options, then hands over to
:mod:`secdns.cli.watch_mirror` (builds the core's :class:`~secdns.mirror.Mirror`
and renders its events) or :mod:`secdns.cli.watch_monitor` (the core's
:class:`~secdns.monitor.Monitor`, its live table and summary).  Both run until
SIGINT/SIGTERM (or the ``--until-*`` condition) and write to stdout through
:class:`~secdns.cli.stream.EventStream`: a rich table or coloured lines on a
terminal, one ``key=value`` line per event when piped, JSON lines with ``--json``.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, NoReturn

import click
from click.core import ParameterSource

from secdns import catalog as catalogs
from secdns import output
from secdns.cli.options import (
    complete_zones,
    config_option,
    force_option,
    resolve_key,
    set_by_user,
    tls_options,
    tsig_options,
    verbosity_options,
    zones_and_servers,
)
from secdns.cli.stream import EventStream
from secdns.cli.watch_mirror import DEFAULT_JOBS, mirror_plan, run_mirror
from secdns.cli.watch_monitor import run_monitor
from secdns.config import parse_zone_name
from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import UsageError
from secdns.keys import TsigKey
from secdns.mirror import MirrorOptions
from secdns.monitor import FAST_INTERVAL, FAST_QUERIES, PRIMARY_INTERVAL, MonitorOptions

if TYPE_CHECKING:  # prometheus_client loads only when --metrics-listen is given
    pass

DEFAULT_MONITOR_INTERVAL = 1.0


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
    f"monitor: to each address but the primary's, staggered, default "
    f"{DEFAULT_MONITOR_INTERVAL:g} (without a primary it bounds lag_precision).",
)
@click.option(
    "--notify-listen",
    metavar="ADDR[:PORT]",
    help="Mirror: also check at once on a NOTIFY from a zone's primaries, received "
    "on this UDP address (port 53 by default).  Monitor: a NOTIFY for the zone from "
    "a watched server (the primary's also-notify) has every address asked at once.",
)
@click.option(
    "--exec",
    "exec_command",
    metavar="CMD",
    help="Mirror: shell command run after each change, with SECDNS_ZONE, "
    "SECDNS_OLD_SERIAL (the serial held before; empty when none was, as for a first "
    "transfer into an empty file or store), SECDNS_NEW_SERIAL, SECDNS_FILE, SECDNS_KIND "
    "set.  Its output goes to stderr: stdout carries only the events.",
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
    help="Monitor, with --until-*: a deadline for the whole watch: give up after "
    "SECONDS, print who lagged, exit 1.  Not per message as in pull and serve: "
    "--query-timeout is that here.",
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
    "--primary",
    "primary_spec",
    metavar="@SERVER|none",
    help="Monitor: the primary, where changes start: asked every --primary-interval, and "
    "lags are measured from it (default: the first @SERVER; with --nameservers auto "
    "alone, the NS named in the SOA MNAME; none: no primary, lags from the first "
    "address to show the serial).  Added to the watched servers if not among them.",
)
@click.option(
    "--primary-interval",
    type=click.FloatRange(min=0.01),
    default=PRIMARY_INTERVAL,
    metavar="SECONDS",
    show_default=True,
    help="Monitor: seconds between queries to each address of the primary: 20 SOA "
    "queries a second to that one server at the default, which puts lags within tens "
    "of milliseconds.",
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
@click.option(
    "--catalog",
    "catalog_name",
    metavar="CATALOG",
    help="Mirror: follow the catalog zone CATALOG (RFC 9432) and every member into -d DIR.",
)
@click.option("--prune", is_flag=True, help="With --catalog: remove zones no longer listed.")
@click.option(
    "--max-members",
    type=click.IntRange(min=1),
    default=catalogs.DEFAULT_MAX_MEMBERS,
    show_default=True,
    help="With --catalog: ignore a catalog listing more members than this.",
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
    primary_spec: str | None,
    primary_interval: float,
    fast_queries: int,
    query_timeout: float,
    lifetime: float,
    force: bool,
    tsig: str | None,
    keyfile: str | None,
    jobs: int | None,
    metrics_listen: str | None,
    catalog_name: str | None,
    prune: bool,
    max_members: int,
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
    newest serial and how long each took to catch up after the primary had it.
    The primary (--primary; by default the first @SERVER) is asked every
    --primary-interval (20 queries a second), so the start of a change is known
    to 50 ms; an address behind another is asked at once and then every
    --fast-interval, so the moment it caught up is known to tens of
    milliseconds.  A lag is a window: the address switched between lag_min and
    lag_max seconds after the primary; lag is the middle, lag_precision half
    the width.  The time shown with it (changed, last change) is when this
    watch saw the serial, up to the window's width after the switch.  With
    --until-serial N, --until-serial next (the next change after the start) or
    --until-consistent it exits 0 as soon as that holds, or 1 after --timeout
    with the list of who lagged.

    Catalog (--catalog CATALOG @PRIMARY -d DIR): mirror the catalog zone (RFC
    9432) and, after each change of it, every member it lists: added members
    are followed and transferred, removed ones followed no more (their files
    removed only with --prune), a member whose unique id changed transferred
    from scratch.  Bad catalog records are logged and skipped.

    Runs until SIGINT/SIGTERM (exit 0), with a summary; with --until-* a stop
    before it holds exits 128 + the signal (130, 143).  Lines on stdout are one
    event each (key=value, or JSON with --json); a terminal gets a live table.

    \b
    Examples:
      secdns watch example.com @192.0.2.1 -d /var/lib/secdns
      secdns watch example.com @192.0.2.1 -o example.com.zone --interval 30 \\
          --notify-listen 0.0.0.0:5353 --exec 'rndc reload "$SECDNS_ZONE"'
      secdns watch -c secdns.toml --exec 'git -C zones commit -qam "$SECDNS_ZONE"'
      secdns watch --catalog catalog.example @192.0.2.1 -d /var/lib/secdns --prune
      secdns watch example.com --servers @ns1.example.net @ns2.example.net
      secdns watch example.com --nameservers auto --until-serial 2026010102 --timeout 300
      secdns watch example.com --servers @192.0.2.1 @192.0.2.2 --until-consistent --json
      secdns watch example.com --servers @192.0.2.1 @192.0.2.2 --until-serial next
      secdns watch example.com --nameservers auto --primary @192.0.2.53 --until-serial next
    """
    from secdns.cli import setup_logging

    setup_logging(verbose, quiet)
    tls, zones, servers, config_path = zones_and_servers(args, config_path)
    key = resolve_key(tsig, keyfile)
    out = EventStream(sys.stdout)
    rich = output.use_rich(sys.stdout) and not as_json
    metrics_endpoint = parse_endpoint(metrics_listen) if metrics_listen else None
    watch_metrics = None
    if metrics_endpoint is not None:
        from secdns import metrics

        watch_metrics = metrics.WatchMetrics()
    if watch_servers or nameservers:
        _check_monitor_args(
            zones,
            watch_servers and not servers,
            {
                "-c": config_path if _given_on_command_line("config_path") else None,
                "-o": output_path,
                "-d": directory,
                "--exec": exec_command,
                "--tls": tls,
                "--catalog": catalog_name,
            },
        )
        options = _monitor_options(
            interval,
            query_timeout,
            jobs,
            key,
            until_serial,
            until_consistent,
            deadline,
            fast_interval,
            fast_queries,
            primary_interval,
        )
        if notify_listen:
            options = dataclasses.replace(options, notify_listen=parse_endpoint(notify_listen))
        summary = run_monitor(
            parse_zone_name(zones[0]),
            servers,
            nameservers == "auto",
            options,
            out,
            as_json=as_json,
            quiet=quiet,
            rich=rich,
            metrics_endpoint=metrics_endpoint,
            watch_metrics=watch_metrics,
            primary=_primary(primary_spec, servers),
        )
        _leave(out, summary.exit_code)

    _reject(
        {
            "--until-serial": until_serial,
            "--until-consistent": until_consistent or None,
            "--timeout": deadline,
            "--primary": primary_spec,
        },
        "in mirror mode; they go with --servers or --nameservers auto",
    )
    if catalog_name is None:
        if prune:
            raise UsageError("--prune removes former catalog members: use it with --catalog")
        mirror_zones, store, concurrency, limits, server = mirror_plan(
            zones, servers, config_path, output_path, directory, key, tls
        )
    else:
        from secdns.cli.watch_catalog import catalog_plan, run_catalog

        mirror_zones, store, concurrency, limits, server = catalog_plan(
            catalog_name,
            zones,
            servers,
            directory,
            key,
            tls,
            _given_on_command_line("config_path"),
            output_path,
        )
    if config_path and catalog_name is None:  # the config's, unless given here
        query_timeout = query_timeout if set_by_user("query_timeout") else server.timeout
        lifetime = lifetime if set_by_user("lifetime") else server.lifetime
    mirror_options = MirrorOptions(
        interval=interval,
        concurrency=jobs or concurrency,
        timeout=query_timeout,
        lifetime=lifetime,
        limits=limits,
        force=force,
        exec_command=exec_command,
        notify_listen=parse_endpoint(notify_listen) if notify_listen else None,
        keep_connections=server.keep_connections,
        unreachable_hold=server.unreachable_hold,
    )
    if store is not None and not force:  # (serve's store: as pull refuses it)
        from secdns.server.storelock import refuse_if_served

        refuse_if_served(store.directory)
    if catalog_name is not None:
        assert store is not None
        run_catalog(
            mirror_zones[0],
            store,
            mirror_options,
            out,
            max_members=max_members,
            prune=prune,
            as_json=as_json,
            quiet=quiet,
            rich=rich,
            metrics_endpoint=metrics_endpoint,
            watch_metrics=watch_metrics,
        )
        _leave(out, 0)
    run_mirror(
        mirror_zones,
        store,
        mirror_options,
        out,
        as_json=as_json,
        quiet=quiet,
        rich=rich,
        metrics_endpoint=metrics_endpoint,
        watch_metrics=watch_metrics,
    )
    _leave(out, 0)


def _leave(out: EventStream, status: int) -> NoReturn:
    """Exit with ``status``, or 141 as every other command does if the watch ended
    because the reader of its output went away (``| head -1``)."""
    if out.broken:
        from secdns.cli import exit_on_broken_pipe

        exit_on_broken_pipe()
    sys.exit(status)


def _check_monitor_args(
    zones: list[str], servers_missing: bool, mirror_only: dict[str, object]
) -> None:
    """Monitor mode watches one zone on the servers given: no mirror options."""
    _reject(mirror_only, "in monitor mode (--servers, --nameservers)")
    if len(zones) != 1:
        raise UsageError(
            "usage: secdns watch ZONE --servers @SERVER [@SERVER...] (or --nameservers auto)"
        )
    if servers_missing:
        raise UsageError("--servers needs the @SERVER arguments to watch")


def _monitor_options(
    interval: float | None,
    query_timeout: float,
    jobs: int | None,
    key: TsigKey | None,
    until_serial: int | str | None,
    until_consistent: bool,
    deadline: float | None,
    fast_interval: float,
    fast_queries: int,
    primary_interval: float = PRIMARY_INTERVAL,
) -> MonitorOptions:
    """The monitor's options, once the ``--until-*`` and ``--timeout`` go together."""
    if until_serial is not None and until_consistent:
        raise UsageError("give --until-serial or --until-consistent, not both")
    if deadline is not None and until_serial is None and not until_consistent:
        raise UsageError("--timeout goes with --until-serial or --until-consistent")
    return MonitorOptions(
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
        primary_interval=primary_interval,
    )


def _primary(spec: str | None, servers: list[Endpoint]) -> tuple[Endpoint | None, bool]:
    """``--primary``: (the primary, whether to look for the SOA MNAME among the NS).
    By default the first @SERVER, or with none given the MNAME; ``none``: neither."""
    if spec is None:
        return (servers[0], False) if servers else (None, True)
    if spec.lower() == "none":
        return None, False
    if not spec.startswith("@"):
        raise UsageError(f"--primary takes @SERVER or none, not {spec!r}")
    return parse_endpoint(spec), False


def _given_on_command_line(name: str) -> bool:
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def _reject(given: dict[str, object], where: str) -> None:
    used = [name for name, value in given.items() if value is not None]
    if used:
        raise UsageError(f"{', '.join(used)} cannot be used {where}")
