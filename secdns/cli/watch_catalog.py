"""``secdns watch --catalog CATALOG @PRIMARY -d DIR``: the CLI side of
:class:`~secdns.catalog_watch.CatalogWatch` (check the arguments, run it until
SIGINT/SIGTERM, print the mirror events and, at the end, one summary line).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text

from secdns import xot
from secdns.catalog_watch import CatalogSummary, CatalogWatch
from secdns.cli.stream import EventStream
from secdns.cli.watch_mirror import (
    DEFAULT_JOBS,
    MirrorPrinter,
    logs_beside_events,
    tee,
    with_metrics,
)
from secdns.config import Limits, ServerConfig, parse_zone_name
from secdns.endpoints import Endpoint
from secdns.errors import UsageError
from secdns.keys import TsigKey
from secdns.mirror import MirrorEvent, MirrorOptions, MirrorZone
from secdns.output import kv_line
from secdns.store import Store, iso_time
from secdns.watch import stop_on_signals

if TYPE_CHECKING:  # prometheus_client loads only when --metrics-listen is given
    from secdns import metrics

USAGE = "usage: secdns watch --catalog CATALOG @PRIMARY [@PRIMARY...] -d DIR"


def catalog_plan(
    catalog: str,
    zones: list[str],
    servers: list[Endpoint],
    directory: str | None,
    key: TsigKey | None,
    tls: xot.TlsSettings | None,
    config_given: bool,
    output_path: str | None,
) -> tuple[list[MirrorZone], Store, int, Limits, ServerConfig]:
    """The catalog to follow, the store its members go to, the default concurrency
    and the limits (as ``mirror_plan`` gives them), or a usage error."""
    used = [name for name, value in (("-c", config_given), ("-o", output_path)) if value]
    if used:
        raise UsageError(f"{', '.join(used)} cannot be used with --catalog")
    if zones or not servers or directory is None:
        raise UsageError(USAGE)
    zone = MirrorZone(parse_zone_name(catalog), tuple(servers), key, tls=tls)
    return [zone], Store(directory), DEFAULT_JOBS, Limits(), ServerConfig()


def summary_line(summary: CatalogSummary, at: float | None = None) -> str:
    """The last line of a run: ``key=value`` as every event line."""
    doc = summary.to_dict()
    stamp = iso_time(time.time() if at is None else at)
    return kv_line(("time", stamp), *doc.items())


def summary_text(summary: CatalogSummary) -> Text:
    text = Text()
    text.append("catalog ", style="dim")
    text.append(summary.catalog, style="bold")
    serial = "-" if summary.serial is None else str(summary.serial)
    text.append(f" serial {serial}: {summary.members} members followed")
    text.append(
        f"; added {summary.added}, removed {summary.removed}, reset {summary.reset}, "
        f"pruned {summary.pruned}"
    )
    if summary.findings:
        text.append(f"; {summary.findings} catalog records unusable", style="bold red")
    return text


def run_catalog(
    catalog: MirrorZone,
    store: Store,
    options: MirrorOptions,
    out: EventStream,
    *,
    max_members: int,
    prune: bool,
    as_json: bool,
    quiet: bool,
    rich: bool,
    metrics_endpoint: Endpoint | None = None,
    watch_metrics: metrics.WatchMetrics | None = None,
) -> CatalogSummary:
    """Follow the catalog until stopped, printing each event as mirror mode does;
    print the summary (also after an error)."""
    printer: Callable[[MirrorEvent], None] = MirrorPrinter(
        out, as_json=as_json, quiet=quiet, rich=rich
    )
    if watch_metrics is not None:
        printer = tee(watch_metrics.observe_mirror, printer)
    watch = CatalogWatch(
        catalog, store, options, max_members=max_members, prune=prune, on_event=printer
    )
    if watch_metrics is not None:
        mirror = watch.mirror
        watch_metrics.watch_mirror(lambda: [mirror.status(o) for o in mirror.origins])

    async def follow() -> None:
        stop = asyncio.Event()
        with stop_on_signals(stop), out.watching(stop):
            await watch.run(stop)

    try:
        with logs_beside_events(rich and not quiet and not as_json):
            asyncio.run(with_metrics(follow(), metrics_endpoint, watch_metrics))
    finally:
        summary = watch.summary()
        if as_json:
            doc = summary.to_dict()
            doc = {"event": doc.pop("event"), "time": iso_time(time.time()), **doc}
            out.write_json(doc)
        elif quiet:
            pass
        elif rich:
            out.console().print(summary_text(summary))
        else:
            out.write(summary_line(summary) + "\n")
    return summary
