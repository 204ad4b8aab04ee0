"""Zone sources shared by diff, verify and watch: where a copy of a zone comes from.

A source is written as:

* ``@HOST[:PORT]`` — a live AXFR from that server (TSIG as for pull);
* ``-`` — a master file on standard input;
* a directory — the store entry ``DIR/<zone>.zone`` (see :mod:`secdns.store`);
* anything else — a master file path.

Loading is the engine's job: every command gets the same records
(:class:`secdns.wire.Record`, rendered canonically) whatever the source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import sys
from pathlib import Path

import dns.name
import dns.rdatatype

from secdns import wire, xot
from secdns.addresses import resolve
from secdns.config import Limits
from secdns.endpoints import parse_endpoint
from secdns.engine import transfer
from secdns.errors import BadDataError, LocalIOError, SecdnsError, other_zone_words
from secdns.keys import TsigKey
from secdns.store import Store
from secdns.xfr import XfrKind


class SourceKind(enum.Enum):
    SERVER = "server"
    STDIN = "stdin"
    STORE = "store"
    FILE = "file"


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    kind: SourceKind
    spec: str

    def __str__(self) -> str:
        return self.spec


@dataclasses.dataclass(slots=True)
class LoadedZone:
    """A zone's records from one source."""

    origin: dns.name.Name
    source: Source
    serial: int | None
    records: list[wire.Record] = dataclasses.field(default_factory=list, repr=False)
    server: str | None = None  # the address that answered, for @SERVER sources

    @property
    def label(self) -> str:
        return self.server or self.source.spec


def parse_source(spec: str) -> Source:
    if spec.startswith("@"):
        parse_endpoint(spec)  # validate early: a usage error, not a network one
        return Source(SourceKind.SERVER, spec)
    if spec == "-":
        return Source(SourceKind.STDIN, "-")
    if Path(spec).is_dir():
        return Source(SourceKind.STORE, spec)
    return Source(SourceKind.FILE, spec)


@dataclasses.dataclass(frozen=True, slots=True)
class LoadOptions:
    key: TsigKey | None = None
    timeout: float = 10.0
    lifetime: float = 3600.0
    limits: Limits = Limits()
    tls: xot.TlsSettings | None = None  # @SERVER over TLS (XoT)


def _serial_of(records: list[wire.Record]) -> int | None:
    for rec in records:
        if rec.rdtype == 6 and rec.serial is not None:
            return rec.serial
    return None


def read_file_records(
    path: str | Path | None, origin: dns.name.Name, text: str | None = None
) -> list[wire.Record]:
    """Records of a master file (or of ``text``), rendered relative to ``origin``."""
    from secdns.masterfile import read_master

    if text is not None:
        return read_master(text, origin, filename=str(path or "<stdin>")).records
    assert path is not None
    try:
        raw = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise LocalIOError(f"no such zone file: {path}") from None
    except OSError as err:
        raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
    return read_master(raw, origin, filename=str(path)).records


def other_zone(origin: dns.name.Name, records: list[wire.Record]) -> str | None:
    """Why a file is not a copy of ``origin`` (``diff example.org example.com.zone``):
    no SOA at our apex, an SOA outside the zone.  ``None`` for a file of this zone, or
    one with no SOA at all.  verify reports it as one finding, diff refuses the file."""
    if any(rec.rdtype == dns.rdatatype.SOA and rec.owner == "@" for rec in records):
        return None
    foreign = next(
        (r for r in records if r.rdtype == dns.rdatatype.SOA and r.owner.endswith(".")), None
    )
    if foreign is None:
        return None
    outside = sum(1 for r in records if r.owner.endswith("."))
    return (
        f"the file {other_zone_words(foreign.owner, origin.to_text())}: "
        f"{outside} of {len(records)} records are outside {origin.to_text()}; "
        "wrong file or wrong zone name?"
    )


def require_zone(loaded: LoadedZone) -> None:
    """Refuse a file, stdin or store copy that is not a copy of the zone: another
    zone's records (:func:`other_zone`) or no SOA at all (an empty file)."""
    if loaded.source.kind is SourceKind.SERVER:
        return
    message = other_zone(loaded.origin, loaded.records)
    if message is None and loaded.serial is None:
        message = (
            f"the file holds no SOA record for {loaded.origin.to_text()} "
            f"({len(loaded.records)} records): empty, or not a copy of the zone"
        )
    if message is not None:
        raise BadDataError(f"{loaded.source.spec}: {message}", zone=loaded.origin.to_text())


async def load_zone(
    source: Source, origin: dns.name.Name, options: LoadOptions = LoadOptions()
) -> LoadedZone:
    """Load ``origin`` from ``source``; errors name the zone and the source."""
    zone = origin.to_text()
    try:
        if source.kind is SourceKind.SERVER:
            endpoint = parse_endpoint(source.spec, xot.default_port(options.tls))
            errors: list[SecdnsError] = []
            for address, port in await resolve(endpoint):
                try:
                    xfr = await transfer(
                        origin,
                        address,
                        port,
                        XfrKind.AXFR,
                        key=options.key,
                        timeout=options.timeout,
                        lifetime=options.lifetime,
                        limits=options.limits,
                        tls=xot.for_endpoint(options.tls, endpoint),
                    )
                except SecdnsError as err:
                    errors.append(err)
                    continue
                records = xfr.reader.records or []
                return LoadedZone(origin, source, xfr.reader.new_serial, records, server=xfr.server)
            raise errors[-1]
        if source.kind is SourceKind.STDIN:
            text = await asyncio.to_thread(sys.stdin.read)
            records = await asyncio.to_thread(read_file_records, "<stdin>", origin, text)
        elif source.kind is SourceKind.STORE:
            path = Store(source.spec).zone_path(origin)
            if not path.exists():
                raise LocalIOError(
                    f"the store {source.spec} holds no copy of {zone} ({path.name} missing)"
                )
            records = await asyncio.to_thread(read_file_records, path, origin)
        else:
            records = await asyncio.to_thread(read_file_records, source.spec, origin)
        return LoadedZone(origin, source, _serial_of(records), records)
    except SecdnsError as err:
        err.with_context(
            zone=zone, server=source.spec if source.kind is SourceKind.SERVER else None
        )
        raise
