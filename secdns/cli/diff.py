"""``secdns diff``: compare two copies of a zone from any sources."""

from __future__ import annotations

import asyncio
import dataclasses
import sys

import click
import dns.rdatatype

from secdns import output, wire
from secdns.cli.options import (
    complete_zones,
    json_option,
    network_options,
    resolve_key,
    resolve_tls,
    split_list,
    tls_options,
    tsig_options,
    verbosity_options,
)
from secdns.config import parse_zone_name
from secdns.diff import Delta, TtlChange, diff_zones, to_ixfr, to_json, to_nsupdate
from secdns.endpoints import parse_endpoint
from secdns.errors import ExitCode, UsageError
from secdns.sources import (
    LoadedZone,
    LoadOptions,
    SourceKind,
    load_zone,
    parse_source,
    require_zone,
)

FORMATS = ("text", "json", "nsupdate", "ixfr")


def _types(values: tuple[str, ...]) -> frozenset[int]:
    out = set()
    for item in split_list(values):
        if item:
            try:
                out.add(dns.rdatatype.from_text(item.upper()))
            except dns.rdatatype.UnknownRdatatype:
                raise UsageError(f"--ignore-type: unknown record type {item!r}") from None
    return frozenset(out)


def nsupdate_server(text: str) -> str:
    """``--server`` as nsupdate's ``server HOST PORT`` takes it, from ``HOST``,
    ``HOST:PORT``, ``[V6]:PORT``, a bare IPv6 address, or the quoted ``"HOST PORT"``."""
    words = text.split()
    if len(words) == 2 and words[1].isdigit():
        host = words[0].strip("[]")
        text = f"[{host}]:{words[1]}" if ":" in host else f"{host}:{words[1]}"
    elif len(words) != 1:
        raise UsageError(f"--server {text!r}: give HOST, HOST:PORT or [V6]:PORT")
    try:
        endpoint = parse_endpoint(text)
    except UsageError as err:
        raise UsageError(f"--server: {err.message}") from None
    return f"{endpoint.host} {endpoint.port}"


def _serial(serial: int | None) -> str:
    return "none" if serial is None else str(serial)


def render_text(delta: Delta, label_a: str, label_b: str, *, stat: bool, rich: bool) -> str:
    """The unified-diff-like text form (plain, stable; coloured by the caller on a TTY)."""
    zone = delta.origin.to_text()
    lines = []
    if stat:
        s = delta.stats()
        lines.append(
            f"{zone} {s['added']} added, {s['removed']} removed, "
            f"{s['ttl_changed']} TTL changed (serial {_serial(delta.serial_a)} -> "
            f"{_serial(delta.serial_b)})"
        )
        return "\n".join(lines) + "\n"
    if delta.same:
        return ""
    lines.append(f"--- {label_a} (serial {_serial(delta.serial_a)})")
    lines.append(f"+++ {label_b} (serial {_serial(delta.serial_b)})")
    for _key, items in delta.by_owner():
        first = items[0][1]
        owner_rec = first.new if isinstance(first, TtlChange) else first
        assert isinstance(owner_rec, wire.Record)
        lines.append(f"@@ {owner_rec.owner} @@")
        for sign, obj in items:
            if isinstance(obj, TtlChange):
                lines.append(f"~{wire.record_line(obj.new)} ; TTL {obj.old.ttl} -> {obj.new.ttl}")
            else:
                assert isinstance(obj, wire.Record)
                lines.append(f"{sign}{wire.record_line(obj)}")
    return "\n".join(lines) + "\n"


def _colour(text: str) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    for line in text.splitlines():
        style = {"-": "red", "+": "green", "~": "yellow", "@": "cyan"}.get(line[:1], "bold")
        console.print(Text(line, style=style))


@click.command("diff")
@click.argument("zone", shell_complete=complete_zones)
@click.argument("source_a", metavar="A")
@click.argument("source_b", metavar="B")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text (+/- lines), json, nsupdate (a script turning A "
    "into B) or ixfr (an RFC 1995 IXFR-style listing).",
)
@json_option
@click.option("--ignore-ttl", is_flag=True, help="Do not report TTL changes.")
@click.option("--ignore-serial", is_flag=True, help="Ignore the SOA serial.")
@click.option(
    "--ignore-type",
    "ignore_type",
    multiple=True,
    metavar="TYPE[,TYPE]",
    help="Ignore these record types (e.g. RRSIG,NSEC,NSEC3 for DNSSEC churn); "
    "comma-separated or repeated.",
)
@click.option("--stat", is_flag=True, help="Print only counts.")
@click.option(
    "--server",
    "server",
    metavar="HOST[:PORT]",
    help="With --format nsupdate: start the script with 'server HOST PORT' "
    "(HOST, HOST:PORT or [V6]:PORT; port 53 by default).",
)
@tsig_options
@click.option(
    "--tsig-side",
    type=click.Choice(["a", "b", "both"]),
    default="both",
    show_default=True,
    help="Which server's AXFR --tsig/-k signs: a primary without the key beside a "
    "secondary that requires it (diff Z @primary @secondary --tsig-side b).",
)
@tls_options
@network_options
@verbosity_options
def command(
    zone: str,
    source_a: str,
    source_b: str,
    fmt: str,
    as_json: bool,
    ignore_ttl: bool,
    ignore_serial: bool,
    ignore_type: tuple[str, ...],
    stat: bool,
    server: str | None,
    tsig: str | None,
    keyfile: str | None,
    tsig_side: str,
    timeout: float,
    lifetime: float,
    verbose: int,
    quiet: bool,
) -> None:
    """Compare two copies of ZONE, record by record; exit 1 if they differ.

    A and B are each a master file, '-' (stdin), a store directory (-d DIR of
    pull), or @SERVER[:PORT] (a live AXFR, with --tsig/-k as for pull).  Names
    compare case-insensitively; TTL-only changes are shown with '~'.

    \b
    Examples:
      secdns diff example.com zones/ @192.0.2.1          # store vs primary
      secdns diff example.com @ns1.example.net @ns2.example.net --stat
      secdns diff example.com @hidden-primary @127.0.0.1:5353 --tsig-side b -k down.key
      secdns diff example.com old.zone new.zone -f nsupdate | nsupdate -k key
      secdns diff example.com a.zone b.zone --ignore-type RRSIG,NSEC,NSEC3 --json
    """
    from secdns.cli import setup_logging

    setup_logging(verbose, quiet)
    if as_json:
        if fmt not in ("text", "json"):  # (a stranger's -f nsupdate --json printed JSON)
            raise UsageError(f"--json and --format {fmt} ask for two outputs: give one")
        fmt = "json"
    origin = parse_zone_name(zone)
    server_line = nsupdate_server(server) if server else None
    sources = [parse_source(source_a), parse_source(source_b)]
    if all(s.kind is SourceKind.STDIN for s in sources):
        raise UsageError("only one of A and B can be '-' (stdin)")
    options = LoadOptions(
        key=resolve_key(tsig, keyfile), timeout=timeout, lifetime=lifetime, tls=resolve_tls()
    )
    unsigned = dataclasses.replace(options, key=None)
    side_options = [
        options if tsig_side in ("a", "both") else unsigned,
        options if tsig_side in ("b", "both") else unsigned,
    ]

    async def load_both() -> list[LoadedZone]:
        loaded = await asyncio.gather(
            *(load_zone(s, origin, o) for s, o in zip(sources, side_options, strict=True)),
            return_exceptions=True,
        )
        for item in loaded:  # A's error first, whichever failed first (both read at once)
            if isinstance(item, BaseException):
                raise item
        return [item for item in loaded if isinstance(item, LoadedZone)]

    zone_a, zone_b = asyncio.run(load_both())
    require_zone(zone_a)
    require_zone(zone_b)
    delta = diff_zones(
        origin,
        zone_a.records,
        zone_b.records,
        ignore_ttl=ignore_ttl,
        ignore_serial=ignore_serial,
        ignore_types=_types(ignore_type),
    )
    status = ExitCode.OK if delta.same else ExitCode.DIFFERENT
    if quiet:
        sys.exit(status)
    if fmt == "json":
        doc = to_json(delta, zone_a.label, zone_b.label)
        if stat:
            doc = {k: v for k, v in doc.items() if k not in ("added", "removed", "ttl_changed")}
        output.emit_json(doc)
    elif fmt == "nsupdate":
        sys.stdout.write(to_nsupdate(delta, server_line))
    elif fmt == "ixfr":
        if not delta.same:
            try:
                sys.stdout.write(to_ixfr(delta))
            except ValueError as err:
                raise UsageError(f"--format ixfr: {err}") from None
    else:
        text = render_text(delta, zone_a.label, zone_b.label, stat=stat, rich=output.use_rich())
        if output.use_rich():
            _colour(text)
        else:
            sys.stdout.write(text)
    sys.stdout.flush()
    sys.exit(status)
