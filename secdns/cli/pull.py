"""``secdns pull``: transfer zones and write them as master files."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import dns.name

from secdns import output, tcpstream, xot
from secdns.cli.options import (
    DEFAULT_CONFIG,
    complete_zones,
    config_option,
    config_zones,
    find_config_path,
    force_option,
    json_option,
    network_options,
    resolve_key,
    set_by_user,
    tls_options,
    tsig_options,
    verbosity_options,
    zones_and_servers,
)
from secdns.cli.progress import TransferProgress as _Progress
from secdns.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_MEMBERS,
    Limits,
    ServerConfig,
    parse_zone_name,
)
from secdns.copies import ZoneCopy, make_copy
from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import ExitCode, UsageError, worst
from secdns.explain import Step, printer
from secdns.keys import TsigKey
from secdns.pull import PullOptions, PullResult, pull_zone, settle
from secdns.server.persist import BATCH as STORE_BATCH
from secdns.server.persist import StoreQueue
from secdns.store import Store
from secdns.unreachable import Unreachable

if TYPE_CHECKING:
    from secdns.catalog_pull import CatalogPlan


def _looks_like_server(word: str) -> bool:
    """A word that is an address or HOST:PORT, not a zone name: a primary without its '@'."""
    try:
        endpoint = parse_endpoint(word)  # pure parsing, no lookup
    except UsageError:
        return False
    return ":" in word or endpoint.is_address


def _ignore(step: Step) -> None:
    """--explain --json: the steps go only into the JSON document."""


def _finish_catalogs(
    plans: list[CatalogPlan],
    notes: list[str],
    store: Store | None,
    prune: bool,
    pulled: frozenset[dns.name.Name],
) -> list[int]:
    """After the members: print each catalog's findings and notes, prune, record members."""
    codes: list[int] = []
    if plans:
        from secdns.catalog_pull import finish  # catalogs only: a plain pull need not import them
    for plan in plans:
        assert store is not None
        for finding in plan.findings:
            click.echo(f"secdns: error: {finding.line()}", err=True)
            codes = [ExitCode.BAD_DATA]
        notes += finish(plan, store, prune, pulled)
    for note in notes:
        click.echo(f"secdns: {note}", err=True)
    return codes


ZonePlan = tuple[dns.name.Name, list[Endpoint], TsigKey | None, xot.TlsSettings | None]
CatalogSpec = tuple[dns.name.Name, list[Endpoint], TsigKey | None, xot.TlsSettings | None, int]


@dataclasses.dataclass(slots=True)
class _Plan:
    """What to pull: the zones (name, primaries, key, TLS), the catalogs first, where to."""

    store: Store | None
    jobs: int  # at once, unless -j says
    zones: list[ZonePlan]
    axfr_only: set[dns.name.Name]
    catalogs: list[CatalogSpec]
    # -c: the config's [server] table (kept connections, unreachable_hold, timeout and
    # lifetime unless given here); None: its defaults
    server: ServerConfig | None = None


def _config_for_zones(zones: list[str]) -> str | None:
    """ZONE alone: its primaries come from the config, as tab completion's zones do
    (unless a later word is a primary without its '@')."""
    no_at = [z for z in zones[1:] if _looks_like_server(z)]
    if no_at:
        raise UsageError(f"{no_at[0]}: primaries start with '@' (secdns pull ZONE @{no_at[0]} ...)")
    found = find_config_path(click.get_current_context())
    return str(found) if found is not None else None


def _plan(
    zones: list[str],
    servers: list[Endpoint],
    config_path: str | None,
    catalog_name: str | None,
    output_path: str | None,
    directory: str | None,
    key: TsigKey | None,
    tls: xot.TlsSettings | None,
    max_members: int,
) -> _Plan:
    """The zones of the config (-c), a catalog and its members (--catalog), or ZONE @PRIMARY."""
    if config_path:
        config, selected, store_dir = config_zones(
            config_path, zones, servers, output_given=output_path is not None, directory=directory
        )
        return _Plan(
            Store(store_dir) if store_dir else None,
            config.server.concurrency,
            [(z.name, list(z.primaries), key or config.key_for(z), tls or z.tls) for z in selected],
            {z.name for z in selected if not z.request_ixfr},
            [  # [[catalog]]s: only when no ZONE is named
                (c.name, list(c.primaries), key or config.key_for(c), tls or c.tls, c.max_members)
                for c in config.catalogs
                if not zones
            ],
            config.server,
        )
    if catalog_name is not None:
        if zones or not servers or directory is None or output_path is not None:
            raise UsageError("usage: secdns pull --catalog CATALOG @PRIMARY [@PRIMARY...] -d DIR")
        catalog = (parse_zone_name(catalog_name), servers, key, tls, max_members)
        return _Plan(Store(directory), DEFAULT_CONCURRENCY, [], set(), [catalog])
    if len(zones) > 1 and not servers:
        raise UsageError(
            f"one ZONE at a time, then its primaries, which start with '@' "
            f"(secdns pull {zones[0]} @{zones[1]} ...)"
        )
    if len(zones) != 1 or not servers:
        raise UsageError(
            "usage: secdns pull ZONE @PRIMARY [@PRIMARY...] [-o FILE|-d DIR] (or -c CONFIG, "
            f"or ZONE alone with ./{DEFAULT_CONFIG})"
        )
    if output_path is None and directory is None:
        raise UsageError("say where the zone goes: -o FILE, -o - (stdout) or -d DIR")
    store = Store(directory) if directory else None
    return _Plan(store, 1, [(parse_zone_name(zones[0]), servers, key, tls)], set(), [])


class _Lines:
    """``pull -c`` piped: one ``key=value`` line per zone, in the config's order, written
    as soon as the zone and every zone before it are done.  A reader that goes away
    (``| head``) stops the lines, not the pull."""

    def __init__(self, wanted: bool, first: list[PullResult]) -> None:
        self.enabled = wanted and not output.use_rich(sys.stdout)
        self.first = first  # the catalogs' own results, pulled before their members
        self.written = 0
        self.reader_gone = False

    def write(self, results: list[PullResult | None]) -> None:
        if not self.enabled or self.reader_gone:
            return
        start = self.written
        while self.written < len(results) and results[self.written] is not None:
            self.written += 1
        done = [r for r in results[start : self.written] if r is not None]
        if start == 0 and done:
            done[:0] = self.first
        if not done:
            return
        try:
            sys.stdout.write("".join(output.pull_line(r) + "\n" for r in done))
            sys.stdout.flush()
        except BrokenPipeError:
            self.reader_gone = True


def _report(
    results: list[PullResult],
    store: Store | None,
    *,
    to_stdout: bool,
    as_json: bool,
    quiet: bool,
    metrics_file: str | None,
) -> None:
    """Each error on stderr, the zone text with -o -, the results, the metrics file."""
    if metrics_file:
        from secdns.metrics import write_textfile

        write_textfile(metrics_file, results, store)
    for result in results:
        if result.error is not None:
            click.echo(f"secdns: error: {result.error.one_line()}", err=True)
    if to_stdout:
        for result in results:
            if result.text is not None:
                sys.stdout.write(result.text)
        from secdns.cli import check_stdout

        check_stdout()  # before the summary says "transferred" to a closed pipe
        output.render_pull(results, as_json=as_json, quiet=quiet, stream=sys.stderr)
    else:
        output.render_pull(results, as_json=as_json, quiet=quiet)


@click.command("pull")
@click.argument("args", nargs=-1, metavar="[ZONE] [@PRIMARY...]", shell_complete=complete_zones)
@config_option
@click.option(
    "-o",
    "--output",
    "output_path",
    metavar="FILE|-",
    help="Write the zone to FILE (atomically), or to stdout with '-'.",
)
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False),
    help="Zone store: DIR/<zone>.zone plus state and IXFR journal; later pulls use IXFR.",
)
@click.option("--axfr", is_flag=True, help="Force a full transfer (AXFR), even if up to date.")
@force_option
@tsig_options
@tls_options
@network_options
@click.option(
    "--max-records",
    type=click.IntRange(min=1),
    default=Limits().max_records,
    show_default=True,
    help="Refuse a transfer with more records than this.",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=Limits().max_bytes,
    show_default=True,
    help="Refuse a transfer larger than this many bytes (on the wire or as text).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Zones transferred at once with -c (default: the config's concurrency).",
)
@click.option(
    "--catalog",
    "catalog_name",
    metavar="CATALOG",
    help="Pull the catalog zone CATALOG (RFC 9432) and then every member into -d DIR.",
)
@click.option("--prune", is_flag=True, help="With --catalog: remove zones no longer listed.")
@click.option(
    "--max-members",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_MEMBERS,
    show_default=True,
    help="With --catalog: refuse a catalog listing more members than this.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Say each decision as it is made (primary, SOA probe, IXFR/AXFR, fallbacks, "
    "TSIG, what was written) on stderr; with --json as a steps array.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="Also write the zone metrics to FILE (atomically) for node_exporter's textfile collector.",
)
@json_option
@verbosity_options
def command(
    args: tuple[str, ...],
    config_path: str | None,
    output_path: str | None,
    directory: str | None,
    axfr: bool,
    force: bool,
    tsig: str | None,
    keyfile: str | None,
    timeout: float,
    lifetime: float,
    max_records: int,
    max_bytes: int,
    jobs: int | None,
    catalog_name: str | None,
    prune: bool,
    max_members: int,
    explain: bool,
    metrics_file: str | None,
    as_json: bool,
    verbose: int,
    quiet: bool,
) -> None:
    """Transfer a zone (AXFR, or IXFR from the stored serial) and write a master file.

    The file is RFC 1035, one record per line in canonical order, so two versions
    diff line by line; it is replaced atomically or not at all.  With -d the
    next pull asks IXFR from the stored serial; with -o an existing file of the
    same zone at the primary's serial is left alone.  Several @PRIMARY are tried
    in order.  A ZONE without @PRIMARY is looked up in the config (-c, else
    $SECDNS_CONFIG, else ./secdns.toml), the zones tab completion offers.

    \b
    Examples:
      secdns pull example.com @192.0.2.1 -o example.com.zone
      secdns pull example.com @ns1.example.net:5300 @[2001:db8::1] -d /var/lib/secdns
      secdns pull example.com @127.0.0.1 -o - --tsig hmac-sha256:xfr:c2VjcmV0
      secdns pull -c secdns.toml            # every zone in the config
      secdns pull --catalog catalog.example @192.0.2.1 -d /var/lib/secdns --prune
    """
    from secdns.cli import setup_logging

    setup_logging(verbose, quiet)
    tls, zones, servers, config_path = zones_and_servers(args, config_path)
    key = resolve_key(tsig, keyfile)
    limits = Limits(max_records=max_records, max_bytes=max_bytes)
    to_stdout = output_path == "-"
    if output_path and output_path.endswith("/"):  # (Path would drop the slash: a file)
        raise UsageError(f"-o {output_path}: a file's path, not a directory's (or -d DIR)")
    out_path = None if (output_path is None or to_stdout) else Path(output_path)
    if not config_path and zones and not servers:
        config_path = _config_for_zones(zones)
    if config_path and catalog_name is not None:
        raise UsageError("--catalog goes with @PRIMARY, not -c (-c pulls the [[catalog]] tables)")
    plan = _plan(
        zones, servers, config_path, catalog_name, output_path, directory, key, tls, max_members
    )
    store, plans, axfr_only, catalog_specs = plan.store, plan.zones, plan.axfr_only, plan.catalogs
    if plan.server is not None:  # the config's, unless given here
        timeout = timeout if set_by_user("timeout") else plan.server.timeout
        lifetime = lifetime if set_by_user("lifetime") else plan.server.lifetime
    server = plan.server or ServerConfig()
    if store is not None and not force:
        from secdns.server.storelock import refuse_if_served

        refuse_if_served(store.directory)
    jobs = jobs or plan.jobs

    def options_for(
        zone_key: TsigKey | None, zone_tls: xot.TlsSettings | None, request_ixfr: bool = True
    ) -> PullOptions:
        return PullOptions(
            key=zone_key,
            axfr=axfr,
            request_ixfr=request_ixfr,
            force=force,
            timeout=timeout,
            lifetime=lifetime,
            limits=limits,
            tls=zone_tls,
            explain=(_ignore if as_json else printer()) if explain else None,
        )

    if prune and not catalog_specs:
        raise UsageError("--prune removes former catalog members: use it with --catalog or -c")
    catalog_plans: list[CatalogPlan] = []
    catalog_notes: list[str] = []
    if catalog_specs:  # the catalogs first: their members join the plans
        from secdns.catalog_pull import member_plans, pull_catalogs

        if store is None:
            raise UsageError("[[catalog]] needs a store: -d DIR or [server] directory")
        specs = [(c, p, options_for(k, t), limit) for c, p, k, t, limit in catalog_specs]
        catalog_plans = asyncio.run(pull_catalogs(specs, store))
        members, catalog_notes = member_plans(catalog_plans, {plan[0] for plan in plans})
        plans += [(m, c.primaries, c.options.key, c.options.tls) for m, c in members]
    show_progress = not quiet and not as_json and output.use_rich(sys.stderr)
    # piped, many zones: each zone's line as soon as it and the zones before it are done
    # (10,000 zones: the first lines after a moment, not all after the last zone)
    lines = _Lines(
        not to_stdout and not as_json and not quiet and len(plans) > 1,
        [c.result for c in catalog_plans],
    )

    async def run_all() -> list[PullResult]:
        # a pool of `jobs` workers over the plans: 10,000 zones are not 10,000 tasks
        results: list[PullResult | None] = [None] * len(plans)
        pending = iter(enumerate(plans))
        # several zones into a store: their writes made durable in groups (one round
        # of fsyncs for up to STORE_BATCH zones), as serve commits its store
        grouped = store is not None and len(plans) > 1 and output_path is None and not explain
        commits = StoreQueue() if grouped else None
        with _Progress(show_progress, len(plans)) as progress:

            async def one(
                origin: dns.name.Name,
                primaries: list[Endpoint],
                zone_key: TsigKey | None,
                zone_tls: xot.TlsSettings | None,
            ) -> tuple[PullResult, ZoneCopy]:
                options = options_for(zone_key, zone_tls, origin not in axfr_only)
                copy = make_copy(
                    origin,
                    store=store,
                    output=out_path,
                    to_stdout=to_stdout,
                    force=force,
                    commits=commits,
                )
                try:
                    result = await pull_zone(
                        origin,
                        primaries,
                        copy,
                        options=options,
                        progress=progress.callback(origin.to_text()),
                    )
                finally:
                    progress.done(origin.to_text())
                return result, copy

            async def finish(index: int, result: PullResult, copy: ZoneCopy) -> None:
                results[index] = await settle(result, copy)
                lines.write(results)

            behind: set[asyncio.Task[None]] = set()

            async def worker() -> None:
                for index, plan in pending:
                    if lines.reader_gone:  # (| head has what it wanted: no more pulls)
                        return
                    result, copy = await one(*plan)
                    if commits is None:
                        results[index] = result
                        lines.write(results)
                        continue
                    # the zone's store write is left to the next group commit, and
                    # the next zone pulled meanwhile (at most 2 groups' worth held)
                    while len(behind) >= 2 * STORE_BATCH:
                        await asyncio.wait(behind, return_when=asyncio.FIRST_COMPLETED)
                    task = asyncio.get_running_loop().create_task(finish(index, result, copy))
                    behind.add(task)
                    task.add_done_callback(behind.discard)

            # several zones: a transfer's connection is kept for the next from its primary
            keep = len(plans) > 1 and server.keep_connections
            kept = tcpstream.IdleConnections.install() if keep else None
            # and an address that times out is held back, not waited on by each zone
            held = Unreachable.install(server.unreachable_hold) if len(plans) > 1 else None
            try:
                await asyncio.gather(*(worker() for _ in range(min(jobs or 1, len(plans)) or 1)))
                while behind:
                    await asyncio.wait(behind)
            finally:
                if kept is not None:
                    kept.close()
                if held is not None:
                    held.close()
                if commits is not None:
                    commits.close()
        return [result for result in results if result is not None]

    results = asyncio.run(run_all())
    results[:0] = [c.result for c in catalog_plans]
    pulled = frozenset(plan[0] for plan in plans)
    codes = _finish_catalogs(catalog_plans, catalog_notes, store, prune, pulled)
    if lines.reader_gone:
        # the reader of the lines has gone (| head): the pulls under way were finished
        # and written, no other was started, and nothing more is said (a stranger's
        # pull -c | head -1 pulled all 399 zones and then listed their errors)
        from secdns.cli import exit_on_broken_pipe

        exit_on_broken_pipe()
    _report(
        results,
        store,
        to_stdout=to_stdout,
        as_json=as_json,
        quiet=quiet or lines.enabled,
        metrics_file=metrics_file,
    )
    sys.exit(worst([r.exit_code for r in results] + codes))
