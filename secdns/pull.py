"""``pull_zone()``: bring one zone up to date from its primaries.

The one path shared by ``pull``, ``watch`` and ``serve``: SOA probe, IXFR from the
stored serial (or AXFR), fallbacks, failover between primaries, then an atomic
write of the master file, the journal and the state.  No click, no rich.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import re
import time
from pathlib import Path

import dns.name
import dns.rcode

from secdns import wire, zonefile
from secdns.config import Limits
from secdns.endpoints import Endpoint, resolve
from secdns.engine import Progress, Transfer, probe_soa, transfer
from secdns.errors import (
    BadDataError,
    IxfrNotApplicable,
    LocalIOError,
    NetworkError,
    RefusedError,
    SecdnsError,
    SerialBackwards,
    TsigError,
)
from secdns.keys import TsigKey
from secdns.store import JournalEntry, Store, ZoneState, atomic_write, now_iso
from secdns.xfr import XfrKind, serial_compare

log = logging.getLogger(__name__)


class Status(enum.Enum):
    TRANSFERRED = "transferred"
    UP_TO_DATE = "up-to-date"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True, slots=True)
class PullOptions:
    key: TsigKey | None = None
    axfr: bool = False
    force: bool = False
    timeout: float = 10.0
    lifetime: float = 3600.0
    limits: Limits = Limits()


@dataclasses.dataclass(slots=True)
class PullResult:
    """What a pull did, for the renderers (text, table, JSON)."""

    zone: str
    status: Status
    kind: XfrKind = XfrKind.NONE
    primary: str | None = None
    serial_from: int | None = None
    serial_to: int | None = None
    added: int = 0
    removed: int = 0
    records: int | None = None
    messages: int = 0
    bytes: int = 0
    duration: float = 0.0
    output: str | None = None
    fallback: str | None = None
    error: SecdnsError | None = None
    text: str | None = dataclasses.field(default=None, repr=False)

    @property
    def exit_code(self) -> int:
        return int(self.error.exit_code) if self.error else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "zone": self.zone,
            "status": self.status.value,
            "kind": self.kind.value if self.kind is not XfrKind.NONE else None,
            "primary": self.primary,
            "serial_from": self.serial_from,
            "serial_to": self.serial_to,
            "added": self.added,
            "removed": self.removed,
            "records": self.records,
            "messages": self.messages,
            "bytes": self.bytes,
            "duration": round(self.duration, 4),
            "output": self.output,
            "fallback": self.fallback,
            "error": self.error.to_dict() if self.error else None,
        }


_HEADER_SERIAL = re.compile(r"^; zone \S+ serial (\d+) ")


def file_serial(path: Path) -> int | None:
    """The serial recorded in the header of a master file secdns wrote, if any."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return None
    match = _HEADER_SERIAL.match(first)
    return int(match.group(1)) if match else None


@dataclasses.dataclass(slots=True)
class _Local:
    """What we hold of the zone before the pull."""

    serial: int | None = None          # the serial we compare against
    text: str | None = None            # the stored master file, if intact (IXFR base)
    state: ZoneState | None = None
    why_full: str | None = None        # why an IXFR is impossible


async def pull_zone(origin: dns.name.Name, primaries: list[Endpoint], *,
                    store: Store | None = None, output: Path | None = None,
                    to_stdout: bool = False, options: PullOptions = PullOptions(),
                    progress: Progress | None = None) -> PullResult:
    """Bring ``origin`` up to date from the first primary that answers."""
    started = time.monotonic()
    zone_text = origin.to_text()
    local = _Local()
    if store is not None:
        store.ensure()
        local.state = store.load_state(origin)
        local.text, why = await asyncio.to_thread(store.read_zone, origin, local.state)
        if local.text is not None:
            local.serial = local.state.serial
        else:
            local.why_full = why
            if local.state.serial is not None:
                log.warning("pull: zone=%s %s: fetching it again by AXFR", zone_text, why)
    elif output is not None:
        local.serial = file_serial(output)
    errors: list[SecdnsError] = []
    result: PullResult | None = None
    for endpoint in primaries:
        try:
            addresses = await resolve(endpoint)
        except SecdnsError as err:
            errors.append(err.with_context(zone=zone_text))
            continue
        for address, port in addresses:
            try:
                result = await _pull_from(origin, address, port, local, store, output,
                                          to_stdout, options, progress)
                break
            except (NetworkError, RefusedError, TsigError, BadDataError) as err:
                err.with_context(zone=zone_text)
                log.info("pull: zone=%s failed: %s", zone_text, err.one_line())
                errors.append(err)
        if result is not None:
            break
    if result is None:
        error = _combine(errors, zone_text)
        result = PullResult(zone=zone_text, status=Status.FAILED, error=error,
                            serial_from=local.serial)
        if store is not None and local.state is not None:
            local.state.last_attempt = now_iso()
            local.state.last_error = error.one_line()
            try:
                store.save_state(origin, local.state)
            except LocalIOError as err:
                log.error("pull: zone=%s cannot save state: %s", zone_text, err.message)
    result.duration = time.monotonic() - started
    return result


def _combine(errors: list[SecdnsError], zone: str) -> SecdnsError:
    if not errors:
        return NetworkError("no primary to pull from", zone=zone)
    if len(errors) == 1:
        return errors[0]
    last = errors[-1]
    summary = "; ".join(f"{e.server}: {e.message}" for e in errors)
    combined = type(last)(f"all {len(errors)} primaries failed: {summary}", zone=zone,
                          hint=last.hint)
    return combined


async def _pull_from(origin: dns.name.Name, address: str, port: int, local: _Local,
                     store: Store | None, output: Path | None, to_stdout: bool,
                     options: PullOptions, progress: Progress | None) -> PullResult:
    zone_text = origin.to_text()
    soa = await probe_soa(origin, address, port, key=options.key, timeout=options.timeout)
    server = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if local.serial is not None and not options.force:
        order = serial_compare(soa.serial, local.serial)
        if order == 0 and not options.axfr:
            return PullResult(zone=zone_text, status=Status.UP_TO_DATE, primary=server,
                              serial_from=local.serial, serial_to=soa.serial,
                              records=local.state.records if local.state else None)
        if order not in (0, 1):
            raise SerialBackwards(
                f"primary has serial {soa.serial}, older than our {local.serial} "
                "(RFC 1982)", server=server,
                hint="use --force to take the primary's copy anyway")
    use_ixfr = (store is not None and local.text is not None and not options.axfr
                and local.serial is not None)
    fallback = None
    xfr: Transfer | None = None
    if use_ixfr:
        try:
            xfr = await transfer(origin, address, port, XfrKind.IXFR, serial=local.serial,
                                 key=options.key, timeout=options.timeout,
                                 lifetime=options.lifetime, limits=options.limits,
                                 progress=progress)
        except RefusedError as err:
            fallback = f"IXFR refused ({err.message}); AXFR instead"
        except BadDataError as err:
            if isinstance(err, SerialBackwards):
                raise
            fallback = f"IXFR answer unusable ({err.message}); AXFR instead"
        if fallback:
            log.info("pull: zone=%s %s", zone_text, fallback)
    if xfr is None:
        xfr = await transfer(origin, address, port, XfrKind.AXFR, key=options.key,
                             timeout=options.timeout, lifetime=options.lifetime,
                             limits=options.limits, progress=progress)
    reader = xfr.reader
    if reader.up_to_date:
        return PullResult(zone=zone_text, status=Status.UP_TO_DATE, primary=server,
                          serial_from=local.serial, serial_to=local.serial,
                          messages=reader.messages, bytes=reader.bytes,
                          records=local.state.records if local.state else None)
    new_serial = reader.new_serial
    assert new_serial is not None and reader.soa is not None
    if local.serial is not None and not options.force:
        order = serial_compare(new_serial, local.serial)
        if order not in (0, 1) or (order == 0 and not options.axfr):
            raise SerialBackwards(f"transfer brought serial {new_serial}, not newer than our "
                                  f"{local.serial}", server=server,
                                  hint="use --force to take the primary's copy anyway")
    result = PullResult(zone=zone_text, status=Status.TRANSFERRED, primary=server,
                        serial_from=local.serial, serial_to=new_serial,
                        messages=reader.messages, bytes=reader.bytes, fallback=fallback)
    if reader.records is None:
        result.kind = XfrKind.IXFR
        try:
            await asyncio.to_thread(_store_ixfr, origin, store, local, reader.deltas,
                                    reader.soa, result)
        except IxfrNotApplicable as err:
            result.fallback = f"IXFR delta does not apply ({err.message}); AXFR instead"
            log.warning("pull: zone=%s %s", zone_text, result.fallback)
            xfr = await transfer(origin, address, port, XfrKind.AXFR, key=options.key,
                                 timeout=options.timeout, lifetime=options.lifetime,
                                 limits=options.limits, progress=progress)
            reader = xfr.reader
            result.messages += reader.messages
            result.bytes += reader.bytes
            result.serial_to = reader.new_serial
            assert reader.records is not None and reader.soa is not None
            result.kind = XfrKind.AXFR
            await asyncio.to_thread(_store_axfr, origin, store, local, reader.records,
                                    reader.soa, result)
    else:
        result.kind = XfrKind.AXFR
        await asyncio.to_thread(_store_axfr, origin, store, local, reader.records,
                                reader.soa, result)
    if output is not None and result.text is not None:
        await asyncio.to_thread(atomic_write, output, result.text)
        result.output = str(output)
        if not to_stdout:
            result.text = None
    if store is not None:
        result.output = str(store.zone_path(origin))
    log.info("pull: zone=%s serial %s -> %s via %s, +%d -%d from %s", zone_text,
             result.serial_from, result.serial_to, result.kind.value, result.added,
             result.removed, server)
    return result


def _default_ttl(soa: wire.Record) -> int:
    return soa.ttl


def _save(origin: dns.name.Name, store: Store, local: _Local, text: str, serial: int,
          soa: wire.Record, records: int, kind: XfrKind, primary: str | None,
          journal: list[JournalEntry] | None) -> None:
    """Journal first, then the zone file, then the state: each step atomic."""
    if journal is None:
        store.reset_journal(origin)
    else:
        store.append_journal(origin, journal, local.serial)
    digest, size = store.write_zone(origin, text)
    state = local.state or ZoneState(zone=origin.to_text())
    serial_, refresh, retry, expire, minimum = wire.soa_fields(soa)
    state.serial = serial
    state.primary = primary
    state.last_attempt = state.last_success = now_iso()
    state.last_kind = kind.value
    state.last_error = None
    state.refresh, state.retry, state.expire, state.minimum = refresh, retry, expire, minimum
    state.records = records
    state.file_sha256 = digest
    state.file_size = size
    store.save_state(origin, state)


def _store_axfr(origin: dns.name.Name, store: Store | None, local: _Local,
                records: list[wire.Record], soa: wire.Record, result: PullResult) -> None:
    lines = zonefile.canonical_lines(records)
    text = zonefile.render(origin, soa.serial, _default_ttl(soa), lines)
    result.records = len(lines)
    journal: list[JournalEntry] | None = None
    if local.text is not None and local.serial is not None:
        _, old_lines = zonefile.split_header(local.text)
        old_set = set(old_lines)
        new_set = set(lines)
        deleted = old_set - new_set
        added = new_set - old_set
        result.added, result.removed = len(added), len(deleted)
        old_soa = [line for line in deleted if _is_soa_line(line)]
        new_soa = [line for line in added if _is_soa_line(line)]
        if len(old_soa) == 1 and len(new_soa) == 1 and soa.serial != local.serial:
            keyer = zonefile.LineKeyer(origin)
            journal = [JournalEntry(
                local.serial, soa.serial,  # type: ignore[arg-type]
                tuple(old_soa + sorted((d for d in deleted if d not in old_soa), key=keyer)),
                tuple(new_soa + sorted((a for a in added if a not in new_soa), key=keyer)))]
    else:
        result.added = len(lines)
    result.text = text
    if store is not None:
        _save(origin, store, local, text, soa.serial, soa, len(lines),  # type: ignore[arg-type]
              XfrKind.AXFR, result.primary, journal)


def _is_soa_line(line: str) -> bool:
    parts = line.split(" ", 4)
    return len(parts) == 5 and parts[3] == "SOA"


def _store_ixfr(origin: dns.name.Name, store: Store | None, local: _Local, deltas: list,
                soa: wire.Record, result: PullResult) -> None:
    assert store is not None and local.text is not None
    _, lines = zonefile.split_header(local.text)
    keyer = zonefile.LineKeyer(origin)
    journal = []
    for delta in deltas:
        lines, removed, added = zonefile.apply_delta(lines, keyer, delta.deleted, delta.added)
        result.removed += removed - 1  # not counting the SOA swap
        result.added += added - 1
        journal.append(JournalEntry(
            delta.serial_from, delta.serial_to,
            tuple(wire.record_line(r) for r in delta.deleted),
            tuple(wire.record_line(r) for r in delta.added)))
    text = zonefile.render(origin, soa.serial, _default_ttl(soa), lines)
    result.records = len(lines)
    result.text = text
    _save(origin, store, local, text, soa.serial, soa, len(lines),  # type: ignore[arg-type]
          XfrKind.IXFR, result.primary, journal)
