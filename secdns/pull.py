"""``pull_zone()``: bring one zone up to date from its primaries.

The one path shared by ``pull``, ``watch`` and ``serve``: SOA probe, IXFR from the
stored serial (or AXFR), fallbacks, failover between primaries, then an atomic
write of the master file, the journal and the state.  No click, no rich.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import enum
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import dns.name
import dns.rcode
import dns.rdatatype

from secdns import wire, xot, zonefile
from secdns.addresses import resolve
from secdns.config import Limits
from secdns.endpoints import Endpoint, format_addr
from secdns.engine import Progress, SoaInfo, Transfer, probe_soa, transfer
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
from secdns.explain import Explain, Explainer, Step
from secdns.keys import TsigKey
from secdns.store import (
    JournalEntry,
    Store,
    StoredSoa,
    Written,
    ZoneState,
    ZoneWriter,
    atomic_write,
)
from secdns.xfr import Delta, XfrKind, serial_compare

log = logging.getLogger(__name__)


class Status(enum.Enum):
    TRANSFERRED = "transferred"
    UP_TO_DATE = "up-to-date"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True, slots=True)
class PullOptions:
    key: TsigKey | None = None
    axfr: bool = False
    request_ixfr: bool = True  # False: AXFR when the serial changed (request-ixfr no)
    explain: Explain | None = None  # --explain: called with each decision (secdns.explain)
    force: bool = False
    timeout: float = 10.0
    lifetime: float = 3600.0
    limits: Limits = Limits()
    tls: xot.TlsSettings | None = None  # XoT (RFC 9103) instead of UDP and TCP


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
    primary_serial: int | None = None  # the serial the primary's SOA showed
    timers: tuple[int, int, int] | None = None  # its SOA refresh, retry, expire
    edns_expire: int | None = None  # the primary's EDNS EXPIRE (RFC 7314), when it sent one
    steps: list[Step] = dataclasses.field(default_factory=list, repr=False)

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
        } | ({"steps": [step.to_dict() for step in self.steps]} if self.steps else {})


_HEADER_SERIAL = re.compile(r"^; zone (\S+) serial (\d+) ")


def _not_whole(path: Path, origin: dns.name.Name, serial: int) -> str | None:
    """Why the file secdns wrote at ``path`` is not a whole copy of ``origin`` at
    ``serial``, or None.

    Its head and tail only, so an up-to-date ``pull -o`` of a million-record zone
    stays instant: the header's $ORIGIN, the apex SOA first with that serial, and
    the final newline that a copy cut short lacks.
    """
    with open(path, "rb") as handle:
        head = [handle.readline().decode("utf-8", "replace").rstrip("\n") for _ in range(8)]
        handle.seek(0, 2)
        if handle.tell() == 0:
            return "is empty"
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            return "is cut short (no final newline)"
    header = [line for line in head if line.startswith(zonefile.HEADER_PREFIXES)]
    if f"$ORIGIN {origin.to_text()}".lower() not in (line.lower() for line in header):
        return f"has no $ORIGIN {origin.to_text()} line"
    records = head[len(header) :]
    first = records[0].split(" ", 4) if records else []
    if (
        len(first) != 5
        or first[0] != "@"
        or first[3] != "SOA"
        or first[4].split()[2:3] != [str(serial)]
    ):
        return f"does not start with the apex SOA of serial {serial}"
    return None


def file_serial(path: Path, origin: dns.name.Name | None = None) -> int | None:
    """The serial recorded in the header of a master file secdns wrote, if any.

    With ``origin`` (``pull -o`` deciding whether the file is current) the header is
    trusted only when it names that zone and the file is whole (:func:`_not_whole`).
    Otherwise ``None``: fetch the zone again.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return None
    match = _HEADER_SERIAL.match(first)
    if match is None:
        return None
    serial = int(match.group(2))
    if origin is None:
        return serial
    if match.group(1).lower() != origin.to_text().lower():
        log.warning(
            "pull: zone=%s %s holds zone %s: fetching it by AXFR", origin, path, match.group(1)
        )
        return None
    try:
        problem = _not_whole(path, origin, serial)
    except OSError as err:
        problem = f"cannot be read ({err.strerror})"
    if problem is not None:
        log.warning("pull: zone=%s %s %s: fetching it by AXFR", origin, path, problem)
        return None
    return serial


class ZoneCopy(abc.ABC):
    """Where a pulled zone goes, and what we already hold of it.

    :func:`pull_zone` decides (probe, IXFR or AXFR, fallbacks, failover, checks);
    a copy only applies what was decided: to a store, a file, or (``serve``) a
    zone in memory.
    """

    origin: dns.name.Name
    serial: int | None = None  # the serial we hold, None when we hold nothing
    lost_serial: int | None = None  # what we held before the copy was lost or hand-edited
    can_ixfr: bool = False  # an IXFR delta can be applied to what we hold
    records: int | None = None

    async def prepare(self) -> None:
        """Load what we hold (before the SOA probe)."""
        return None

    @abc.abstractmethod
    async def apply_axfr(
        self, records: list[wire.Record], soa: wire.Record, result: PullResult
    ) -> None: ...

    async def apply_ixfr(self, deltas: list[Delta], soa: wire.Record, result: PullResult) -> None:
        raise IxfrNotApplicable("this copy cannot take an IXFR")

    async def checked(self, result: PullResult) -> None:
        """Called after a successful check that found the zone up to date."""
        return None

    async def failed(self, error: SecdnsError) -> None:
        """Called when every primary failed."""
        return None


def render_records(
    origin: dns.name.Name, records: list[wire.Record], soa: wire.Record
) -> tuple[list[str], str]:
    """A full transfer as canonical lines and master-file text ($TTL: the SOA's TTL)."""
    lines = zonefile.canonical_lines(records)
    return lines, zonefile.render(origin, soa.serial, soa.ttl, lines)


def _is_soa_line(line: str) -> bool:
    parts = line.split(" ", 4)
    return len(parts) == 5 and parts[3] == "SOA"


def axfr_journal(
    origin: dns.name.Name,
    old_lines: list[str],
    new_lines: list[str],
    serial_from: int,
    serial_to: int,
) -> tuple[JournalEntry | None, int, int]:
    """The difference of two full versions as one journal entry, and (+, -) counts.

    The counts leave the SOA out, as an IXFR's do (its SOA swap is not a change
    of data), so a full zone answering an IXFR counts as the true IXFR would.
    """
    old_set = set(old_lines)
    new_set = set(new_lines)
    deleted = old_set - new_set
    added = new_set - old_set
    old_soa = [line for line in deleted if _is_soa_line(line)]
    new_soa = [line for line in added if _is_soa_line(line)]
    entry = None
    if len(old_soa) == 1 and len(new_soa) == 1 and serial_from != serial_to:
        keyer = zonefile.LineKeyer(origin)
        entry = JournalEntry(
            serial_from,
            serial_to,
            tuple(old_soa + sorted((d for d in deleted if d not in old_soa), key=keyer)),
            tuple(new_soa + sorted((a for a in added if a not in new_soa), key=keyer)),
        )
    return entry, len(added) - len(new_soa), len(deleted) - len(old_soa)


def delta_entries(deltas: list[Delta]) -> list[JournalEntry]:
    return [
        JournalEntry(
            d.serial_from,
            d.serial_to,
            tuple(wire.record_line(r) for r in d.deleted),
            tuple(wire.record_line(r) for r in d.added),
        )
        for d in deltas
    ]


class FileCopy(ZoneCopy):
    """A master file (``pull -o FILE``, or ``-o -`` for stdout): AXFR only."""

    def __init__(self, origin: dns.name.Name, output: Path | None, to_stdout: bool = False):
        self.origin = origin
        self.output = output
        self.to_stdout = to_stdout

    async def prepare(self) -> None:
        if self.output is not None and self.output.exists():
            self.serial = await asyncio.to_thread(file_serial, self.output, self.origin)

    async def apply_axfr(
        self, records: list[wire.Record], soa: wire.Record, result: PullResult
    ) -> None:
        def work() -> None:
            lines, text = render_records(self.origin, records, soa)
            result.records = len(lines)
            result.added = len(lines)
            if self.output is not None:
                atomic_write(self.output, text)
                result.output = str(self.output)
            if self.to_stdout:
                result.text = text

        await asyncio.to_thread(work)


class StoreCopy(ZoneCopy):
    """A zone in the store (``pull -d DIR``), written through :class:`ZoneWriter`."""

    def __init__(
        self,
        store: Store,
        origin: dns.name.Name,
        output: Path | None = None,
        to_stdout: bool = False,
    ) -> None:
        self.store = store
        self.origin = origin
        self.output = output
        self.to_stdout = to_stdout
        self.writer: ZoneWriter | None = None
        self.text: str | None = None

    @property
    def state(self) -> ZoneState:
        assert self.writer is not None, "prepare() first"
        return self.writer.state

    async def prepare(self) -> None:
        self.writer = await asyncio.to_thread(ZoneWriter, self.store, self.origin)
        state = self.writer.state
        self.text, why = await asyncio.to_thread(self.store.read_zone, self.origin, state)
        if self.text is not None:
            self.serial = state.serial
            self.can_ixfr = True
            self.records = state.records
        elif state.serial is not None:
            self.lost_serial = state.serial  # reported as serial_from: none->N would forget it
            log.warning("pull: zone=%s %s: fetching it again by AXFR", self.origin, why)

    def _written(self, written: Written, soa: wire.Record, result: PullResult) -> None:
        if self.output is not None:
            atomic_write(self.output, written.text)
        self.text, self.serial, self.can_ixfr = written.text, soa.serial, True
        self.records = result.records = written.records
        result.output = str(self.output or self.store.zone_path(self.origin))
        if self.to_stdout:
            result.text = written.text

    async def apply_axfr(
        self, records: list[wire.Record], soa: wire.Record, result: PullResult
    ) -> None:
        def work() -> None:
            assert self.writer is not None
            lines = zonefile.canonical_lines(records)
            journal: list[JournalEntry] | None = None
            if self.text is not None and self.serial is not None:
                _, old_lines = zonefile.split_header(self.text)
                assert soa.serial is not None  # the reader only ends on an SOA
                entry, result.added, result.removed = axfr_journal(
                    self.origin, old_lines, lines, self.serial, soa.serial
                )
                journal = [entry] if entry else None
            else:
                result.added = len(lines)
            written = self.writer.replace(
                lines, stored_soa(soa), primary=result.primary, journal=journal
            )
            self._written(written, soa, result)

        await asyncio.to_thread(work)

    async def apply_ixfr(self, deltas: list[Delta], soa: wire.Record, result: PullResult) -> None:
        def work() -> None:
            assert self.writer is not None
            if self.text is None:
                raise IxfrNotApplicable("no stored copy to apply the IXFR to")
            _, lines = zonefile.split_header(self.text)
            entries = delta_entries(deltas)
            written = self.writer.apply(
                entries, stored_soa(soa), primary=result.primary, lines=lines
            )
            result.removed += written.removed - len(entries)  # not counting the SOA swaps
            result.added += written.added - len(entries)
            self._written(written, soa, result)

        await asyncio.to_thread(work)

    async def checked(self, result: PullResult) -> None:
        assert self.writer is not None
        await asyncio.to_thread(self.writer.checked)

    async def failed(self, error: SecdnsError) -> None:
        if self.writer is None:
            return
        try:
            await asyncio.to_thread(self.writer.failed, error.one_line())
        except LocalIOError as err:
            log.error("pull: zone=%s cannot save state: %s", self.origin, err.message)


def stored_soa(soa: wire.Record) -> StoredSoa:
    """What the store keeps of a transferred SOA record."""
    serial, refresh, retry, expire, minimum = wire.soa_fields(soa)
    return StoredSoa(serial, soa.ttl, refresh, retry, expire, minimum)


def make_copy(
    origin: dns.name.Name,
    *,
    store: Store | None = None,
    output: Path | None = None,
    to_stdout: bool = False,
) -> ZoneCopy:
    if store is not None:
        return StoreCopy(store, origin, output, to_stdout)
    return FileCopy(origin, output, to_stdout)


@dataclasses.dataclass(frozen=True, slots=True)
class Probed:
    """A primary's SOA, already asked for (by :func:`probe_primaries`)."""

    soa: SoaInfo
    address: str
    port: int
    host: str = ""  # the primary as written, for XoT

    @property
    def server(self) -> str:
        return format_addr(self.address, self.port)


_FAILOVER = (NetworkError, RefusedError, TsigError, BadDataError)
"""Errors after which the next primary address is tried."""

T = TypeVar("T")


async def _first_primary(
    origin: dns.name.Name,
    primaries: list[Endpoint],
    attempt: Callable[[str, int, str], Awaitable[T]],
    note: Explainer | None = None,
) -> T:
    """``attempt`` on each primary address in order until one works (failover);
    every error combined into one when none does.  ``attempt`` also gets the host
    as written (the name XoT verifies by default).  ``note``: say each try (--explain)."""
    zone_text = origin.to_text()
    note = note or Explainer(zone_text, None)
    errors: list[SecdnsError] = []
    for index, endpoint in enumerate(primaries, 1):
        if note:
            note.primary = str(endpoint)
            why = "the first in the configured order" if index == 1 else "the next in order"
            note("primary", f"try {endpoint}: primary {index} of {len(primaries)}, {why}")
        try:
            addresses = await resolve(endpoint)
        except SecdnsError as err:
            errors.append(err.with_context(zone=zone_text))
            note("failover", f"cannot resolve {endpoint}: {err.message}; {_next(index, primaries)}")
            continue
        for address, port in addresses:
            if note and (address, port) != (endpoint.host, endpoint.port):
                note.primary = format_addr(address, port)
                note("primary", f"{endpoint} resolved to {note.primary}")
            try:
                return await attempt(address, port, endpoint.host)
            except _FAILOVER as err:
                err.with_context(zone=zone_text)
                log.info("pull: zone=%s failed: %s", zone_text, err.one_line())
                errors.append(err)
                note(
                    "failover",
                    f"failed: {err.message} ({type(err).__name__}); {_next(index, primaries)}",
                )
    raise _combine(errors, zone_text)


def _next(index: int, primaries: list[Endpoint]) -> str:
    return "trying the next primary" if index < len(primaries) else "no primary left"


async def probe_primaries(
    origin: dns.name.Name, primaries: list[Endpoint], options: PullOptions = PullOptions()
) -> Probed:
    """The SOA from the first primary address that answers, as :func:`pull_zone` tries them."""

    async def probe(address: str, port: int, host: str) -> Probed:
        soa = await probe_soa(
            origin,
            address,
            port,
            key=options.key,
            timeout=options.timeout,
            tls=options.tls.for_host(host) if options.tls else None,
        )
        return Probed(soa, address, port, host)

    return await _first_primary(origin, primaries, probe)


async def pull_zone(
    origin: dns.name.Name,
    primaries: list[Endpoint],
    copy: ZoneCopy,
    *,
    options: PullOptions = PullOptions(),
    progress: Progress | None = None,
    probed: Probed | None = None,
) -> PullResult:
    """Bring ``copy`` of ``origin`` up to date from the first primary that answers.

    ``probed``: a SOA already asked for; its address is used first without asking again.
    """
    started = time.monotonic()
    zone_text = origin.to_text()
    note = Explainer(zone_text, options.explain)
    await copy.prepare()
    if note:
        _explain_hold(note, copy, options)
    first = [probed]

    async def attempt(address: str, port: int, host: str) -> PullResult:
        known = first.pop() if first else None
        if known is not None and (known.address, known.port) != (address, port):
            known = None
        here = options
        if options.tls is not None:  # XoT verifies the primary as written
            host = known.host if known is not None and known.host else host
            here = dataclasses.replace(options, tls=options.tls.for_host(host))
        return await _pull_from(origin, address, port, copy, here, progress, known, note)

    if probed is not None:
        primaries = [Endpoint(probed.address, probed.port), *primaries]
    try:
        result = await _first_primary(origin, primaries, attempt, note)
    except SecdnsError as error:
        result = PullResult(
            zone=zone_text, status=Status.FAILED, error=error, serial_from=copy.serial
        )
        await copy.failed(error)
        note("write", "nothing written: the copy we hold is left as it was")
    else:
        if result.status is Status.UP_TO_DATE:
            await copy.checked(result)
            note("write", f"left alone: serial {result.serial_to} is current, nothing written")
        else:
            where = f" to {result.output}" if result.output else ""
            note(
                "write",
                f"wrote serial {result.serial_to}{where} by {result.kind.value}: "
                f"+{result.added} -{result.removed} records",
            )
    result.duration = time.monotonic() - started
    result.steps = note.steps
    return result


def _explain_hold(note: Explainer, copy: ZoneCopy, options: PullOptions) -> None:
    if copy.serial is None:
        note("hold", "we hold no copy of the zone: a full AXFR is needed")
    elif not copy.can_ixfr:
        note("hold", f"we hold serial {copy.serial} but no copy an IXFR delta can apply to")
    else:
        note("hold", f"we hold serial {copy.serial} ({copy.records} records)")
    if options.axfr:
        note("hold", "a full AXFR was asked for (--axfr / retransfer), whatever the serial")
    elif not options.request_ixfr:
        note("hold", "request_ixfr = false: a changed zone is fetched by AXFR")


def _combine(errors: list[SecdnsError], zone: str) -> SecdnsError:
    if not errors:
        return NetworkError("no primary to pull from", zone=zone)
    if len(errors) == 1:
        return errors[0]
    last = errors[-1]
    summary = "; ".join(f"{e.server}: {e.message}" for e in errors)
    return type(last)(f"all {len(errors)} primaries failed: {summary}", zone=zone, hint=last.hint)


async def _pull_from(
    origin: dns.name.Name,
    address: str,
    port: int,
    copy: ZoneCopy,
    options: PullOptions,
    progress: Progress | None,
    probed: Probed | None = None,
    note: Explainer | None = None,
) -> PullResult:
    zone_text = origin.to_text()
    note = note or Explainer(zone_text, None)
    if probed is not None:
        soa = probed.soa
        note("probe", f"the SOA probe just made answered serial {soa.serial} over {soa.transport}")
    else:
        soa = await probe_soa(
            origin, address, port, key=options.key, timeout=options.timeout, tls=options.tls
        )
        note("probe", f"SOA probe answered serial {soa.serial} over {soa.transport}")
    server = format_addr(address, port)
    held = copy.serial
    if note:
        _explain_compare(note, soa.serial, held, options)
    timers = (soa.refresh, soa.retry, soa.expire)
    if held is not None and not options.force:
        order = serial_compare(soa.serial, held)
        if order == 0 and not options.axfr:
            return PullResult(
                zone=zone_text,
                status=Status.UP_TO_DATE,
                primary=server,
                serial_from=held if held is not None else copy.lost_serial,
                serial_to=soa.serial,
                records=copy.records,
                primary_serial=soa.serial,
                timers=timers,
                edns_expire=soa.edns_expire,
            )
        if order not in (0, 1):
            raise SerialBackwards(
                f"primary has serial {soa.serial}, older than our {held} (RFC 1982)",
                server=server,
                hint="use --force to take the primary's copy anyway",
            )

    async def axfr() -> Transfer:
        return await transfer(
            origin,
            address,
            port,
            XfrKind.AXFR,
            key=options.key,
            timeout=options.timeout,
            lifetime=options.lifetime,
            limits=options.limits,
            progress=progress,
            tls=options.tls,
        )

    fallback = None
    xfr: Transfer | None = None
    # an IXFR "from our serial" asks for changes since a version newer than the primary's:
    # with --force and a primary behind us (serial went backwards), only an AXFR takes it
    behind = held is not None and serial_compare(soa.serial, held) not in (0, 1)
    if behind:
        note(
            "request",
            f"the primary's serial {soa.serial} is older than our {held}: --force takes it by AXFR",
        )
    if (
        copy.can_ixfr
        and held is not None
        and not behind
        and not options.axfr
        and options.request_ixfr
    ):
        note("request", f"ask IXFR from our serial {held} (RFC 1995): only the changes")
        try:
            xfr = await transfer(
                origin,
                address,
                port,
                XfrKind.IXFR,
                serial=held,
                key=options.key,
                timeout=options.timeout,
                lifetime=options.lifetime,
                limits=options.limits,
                progress=progress,
                tls=options.tls,
            )
        except RefusedError as err:
            fallback = f"IXFR refused ({err.message}); AXFR instead"
        except BadDataError as err:
            if isinstance(err, SerialBackwards):
                raise
            fallback = f"IXFR answer unusable ({err.message}); AXFR instead"
        if fallback:
            log.info("pull: zone=%s %s", zone_text, fallback)
            note("fallback", fallback)
    if xfr is None:
        if not fallback:
            note("request", f"ask AXFR: {_axfr_reason(copy, options)}")
        xfr = await axfr()
    reader = xfr.reader
    if note:
        _explain_answer(note, xfr, options)
    if reader.up_to_date:
        if held is None or serial_compare(soa.serial, held) == 1:
            # RFC 1995: an SOA alone is "up to date" only when it is not newer than ours
            raise BadDataError(
                f"the transfer says we are up to date at serial {held}, but the primary's "
                f"SOA has serial {soa.serial}: staying behind is a failure",
                server=server,
                hint="ask for AXFR only for this primary if its IXFR is broken",
            )
        return PullResult(
            zone=zone_text,
            status=Status.UP_TO_DATE,
            primary=server,
            serial_from=held if held is not None else copy.lost_serial,
            serial_to=held,
            messages=reader.messages,
            bytes=reader.bytes,
            records=copy.records,
            primary_serial=soa.serial,
            timers=timers,
            edns_expire=soa.edns_expire,
        )
    new_serial = reader.new_serial
    assert new_serial is not None and reader.soa is not None
    if held is not None and not options.force:
        order = serial_compare(new_serial, held)
        if order not in (0, 1) or (order == 0 and not options.axfr):
            raise SerialBackwards(
                f"transfer brought serial {new_serial}, not newer than our {held}",
                server=server,
                hint="use --force to take the primary's copy anyway",
            )
    result = PullResult(
        zone=zone_text,
        status=Status.TRANSFERRED,
        primary=server,
        serial_from=held if held is not None else copy.lost_serial,
        serial_to=new_serial,
        messages=reader.messages,
        bytes=reader.bytes,
        fallback=fallback,
        primary_serial=soa.serial,
        timers=timers,
        edns_expire=soa.edns_expire,
    )
    if reader.records is None:
        result.kind = XfrKind.IXFR
        try:
            await copy.apply_ixfr(reader.deltas, reader.soa, result)
        except IxfrNotApplicable as err:
            result.fallback = f"IXFR delta does not apply ({err.message}); AXFR instead"
            log.warning("pull: zone=%s %s", zone_text, result.fallback)
            note("fallback", result.fallback)
            result.added = result.removed = 0
            xfr = await axfr()
            reader = xfr.reader
            if note:
                _explain_answer(note, xfr, options)
            assert reader.records is not None and reader.soa is not None
            result.messages += reader.messages
            result.bytes += reader.bytes
            result.serial_to = reader.new_serial
            result.kind = XfrKind.AXFR
            await copy.apply_axfr(reader.records, reader.soa, result)
    else:
        result.kind = XfrKind.AXFR
        assert reader.soa is not None  # a finished AXFR ends on its SOA
        await copy.apply_axfr(reader.records, reader.soa, result)
    # debug: serve and watch log each refresh once, in their own words (issue 11)
    log.debug(
        "pull: zone=%s serial %s -> %s via %s, +%d -%d from %s",
        zone_text,
        "none" if result.serial_from is None else result.serial_from,
        result.serial_to,
        result.kind.value,
        result.added,
        result.removed,
        server,
    )
    return result


def _explain_compare(note: Explainer, serial: int, held: int | None, options: PullOptions) -> None:
    if held is None:
        return
    order = serial_compare(serial, held)
    if order == 0:
        if options.axfr:
            note("compare", f"the primary's serial {serial} equals ours; transferring anyway")
        else:
            note("compare", f"up to date: the primary's serial {serial} equals ours")
    elif order == 1:
        note("compare", f"the primary's serial {serial} is newer than our {held}")
    elif options.force:
        note("compare", f"the primary's serial {serial} is not newer than our {held}: --force")
    else:
        note("compare", f"the primary's serial {serial} is older than our {held} (RFC 1982)")


def _axfr_reason(copy: ZoneCopy, options: PullOptions) -> str:
    if options.axfr:
        return "a full transfer was asked for (--axfr / retransfer)"
    if copy.serial is None:
        return "we hold no copy to ask IXFR from"
    if not options.request_ixfr:
        return "request_ixfr = false for this zone"
    return "our copy cannot take an IXFR delta (no stored master file to apply it to)"


def _explain_answer(note: Explainer, xfr: Transfer, options: PullOptions) -> None:
    reader = xfr.reader
    size = f"{reader.messages} messages, {reader.bytes} bytes"
    if reader.up_to_date:
        note("answer", f"the IXFR answer is a single SOA: up to date ({size})")
    elif reader.records is None:
        deltas = len(reader.deltas)
        note(
            "answer",
            f"true IXFR: {deltas} delta{'s' if deltas != 1 else ''} to serial "
            f"{reader.new_serial} ({size})",
        )
    elif xfr.kind is XfrKind.IXFR:
        note(
            "answer",
            f"AXFR-style IXFR: the primary sent the whole zone, {len(reader.records)} records "
            f"at serial {reader.new_serial} ({size})",
        )
    else:
        note(
            "answer",
            f"AXFR: {len(reader.records)} records at serial {reader.new_serial} ({size})",
        )
    if options.key is not None:
        note("tsig", f"every message was signed with key {options.key.name} and verified")
    else:
        note("tsig", "no TSIG key configured: the answer is not authenticated")
