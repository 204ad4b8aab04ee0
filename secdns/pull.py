"""``pull_zone()``: bring one zone up to date from its primaries.

The one path shared by ``pull``, ``watch`` and ``serve``: SOA probe, IXFR from the
stored serial (or AXFR), fallbacks, failover between primaries, then an atomic
write of the master file, the journal and the state.  No click, no rich.
Where the zone goes (a file, the store, memory) is a :class:`~secdns.copies.ZoneCopy`.

Failover (``_first_primary``) tries each primary address with ``_pull_from``:
probe and compare, then ``_request`` (IXFR or AXFR, with the fallbacks) and
``_apply`` (to the copy, again by AXFR when a delta does not apply).  About 670
lines with the --explain notes beside the decisions they explain, kept together
(``settle``, for a write left to a group commit by ``pull`` of many zones, shares
``_failed`` with ``pull_zone``: a write that fails late fails the zone the same way).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import dns.name
import dns.rcode
import dns.rdatatype

from secdns import wire, xot
from secdns.addresses import resolve
from secdns.config import Limits
from secdns.copies import ZoneCopy
from secdns.endpoints import Endpoint, format_addr
from secdns.engine import Progress, SoaInfo, Transfer, probe_soa, transfer
from secdns.errors import (
    BadDataError,
    IxfrNotApplicable,
    NetworkError,
    RefusedError,
    SecdnsError,
    SerialBackwards,
    TimeoutError_,
    TsigError,
    not_tried,
)
from secdns.explain import Explain, Explainer, Step
from secdns.keys import TsigKey
from secdns.unreachable import Unreachable
from secdns.xfr import XfrKind, serial_compare

if TYPE_CHECKING:
    from secdns.server.xferproc import Far

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
    force_hint: str = "use --force to take the primary's copy anyway"
    """What a primary behind us is told to do (serve and watch: :data:`RETRANSFER_HINT`)."""


RETRANSFER_HINT = (
    "secdns ctl retransfer ZONE takes the primary's copy whatever its serial, "
    "as the zone does by itself once it expires"
)
"""serve's and watch's :attr:`PullOptions.force_hint` (their refreshes take no --force)."""


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
    as written (the name XoT verifies by default).  An address held as unreachable
    after timeouts (:mod:`secdns.unreachable`) is skipped, as a timeout at once.
    ``note``: say each try (--explain)."""
    if note is None:
        note = Explainer(origin.to_text(), None)
    zone_text = note.zone  # (rendered once per pull: pull_zone's note has it)
    unreachable = Unreachable.current()  # (serve, pull -c, watch: addresses that time out)
    errors: list[SecdnsError] = []
    for index, endpoint in enumerate(primaries, 1):
        if note:
            note.primary = str(endpoint)
            why = "the first in order" if index == 1 else "the next in order"
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
            more = index < len(primaries) or (address, port) != addresses[-1]
            skipped = unreachable.skip(address, port, more) if unreachable is not None else None
            if skipped is not None and unreachable is not None:  # (held: no slot waits on it)
                errors.append(
                    TimeoutError_(
                        skipped, zone=zone_text, server=format_addr(address, port)
                    ).not_tried(unreachable.held_for(address, port))
                )
                note("failover", f"skipped: {skipped}; {_next(index, primaries)}")
                continue
            heard: bool | None = None  # (None: the try was cancelled)
            failed = down = unwell = False
            try:
                result = await attempt(address, port, endpoint.host)
                heard = True
                return result
            except SecdnsError as err:
                heard = not (isinstance(err, TimeoutError_) and err.silent)
                failed = True
                down = isinstance(err, NetworkError) and err.no_server
                # the primary's own failure (no answer, no server, a broken connection),
                # not the zone's (its key, its ACL, its data): a stranger's one zone with
                # a wrong key had a primary serving 397 others listed as failing
                unwell = isinstance(err, NetworkError)
                if not isinstance(err, _FAILOVER):
                    raise
                err.with_context(zone=zone_text)
                if index < len(primaries) or (address, port) != addresses[-1]:
                    # the last failure is the caller's to report (serve: with its retry time)
                    log.info("pull: zone=%s failed: %s", zone_text, err.one_line())
                errors.append(err)
                note(
                    "failover",
                    f"failed: {err.message}; {_next(index, primaries)}",
                )
            finally:
                if unreachable is not None:
                    unreachable.tried(address, port, heard, failed=failed, down=down, unwell=unwell)
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
    try:
        await copy.prepare()
    except SecdnsError as err:  # -d in a missing directory: failed, as a failed write is
        err.with_context(zone=zone_text)
        return PullResult(
            zone=zone_text, status=Status.FAILED, error=err, duration=time.monotonic() - started
        )
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
        result = await _failed(zone_text, copy, error, copy.serial_before)
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


async def _failed(
    zone_text: str, copy: ZoneCopy, error: SecdnsError, held: int | None
) -> PullResult:
    """The result of a pull that failed (``held``: the serial we hold), the failure
    noted in the copy's state."""
    error.with_context(zone=zone_text)  # a local write error knows no zone
    result = PullResult(
        zone=zone_text,
        status=Status.FAILED,
        error=error,
        serial_from=held,
        primary=error.server,  # the one that failed last, as error.server says
    )
    await copy.failed(error)
    return result


async def settle(result: PullResult, copy: ZoneCopy) -> PullResult:
    """``result`` once the write ``copy`` left to a group commit is durable (``pull``
    of many zones into a store); a write that failed there fails the zone, as one
    that fails at once does (:func:`pull_zone`); the wait is counted in its time."""
    began = time.monotonic()
    try:
        await copy.settled()
    except SecdnsError as error:
        failed = await _failed(result.zone, copy, error, result.serial_from)
        failed.primary = failed.primary or result.primary
        failed.duration, failed.steps = result.duration, result.steps
        result = failed
        await copy.settled()  # (the failure noted in the state)
    result.duration += time.monotonic() - began
    return result


def _explain_hold(note: Explainer, copy: ZoneCopy, options: PullOptions) -> None:
    if copy.serial is None:
        note("hold", "we hold no copy of the zone: a full AXFR is needed, after a SOA query")
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
    message = f"all {len(errors)} primaries failed: {summary}"
    combined = type(last)(message, zone=zone, hint=last.hint)
    if isinstance(combined, NetworkError):  # (every primary refused: said once, as each)
        combined.no_server = all(isinstance(e, NetworkError) and e.no_server for e in errors)
    if isinstance(combined, TimeoutError_) and all(map(not_tried, errors)):
        # (tried again once the first of the holds ends)
        combined.not_tried(min(e.retry_after for e in errors if isinstance(e, TimeoutError_)))
    return combined


@dataclasses.dataclass(frozen=True, slots=True)
class _Source:
    """One primary address a pull asks, with how it asks (key, limits, TLS) and
    what it says on the way (--explain)."""

    origin: dns.name.Name
    address: str
    port: int
    options: PullOptions
    progress: Progress | None
    note: Explainer
    pooled: bool = False  # see ZoneCopy.pooled

    @property
    def server(self) -> str:
        return format_addr(self.address, self.port)

    async def transfer(
        self, kind: XfrKind, serial: int | None = None, *, ask_expire: bool = False
    ) -> Transfer:
        options = self.options
        return await transfer(
            self.origin,
            self.address,
            self.port,
            kind,
            serial=serial,
            key=options.key,
            timeout=options.timeout,
            lifetime=options.lifetime,
            limits=options.limits,
            progress=self.progress,
            tls=options.tls,
            pooled=self.pooled,
            ask_expire=ask_expire,
        )


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
    """One pull from one primary address: SOA (probed now or given), compare with
    what ``copy`` holds, IXFR or AXFR (with the fallbacks), apply to ``copy``."""
    if note is None:
        note = Explainer(origin.to_text(), None)
    zone_text = note.zone
    source = _Source(origin, address, port, options, progress, note, copy.pooled)
    if probed is not None:
        soa = probed.soa
        note("probe", f"the SOA probe just made answered serial {soa.serial} over {soa.transport}")
    elif unprobed := await _without_probe(source, copy):
        return unprobed
    else:
        soa = await probe_soa(
            origin, address, port, key=options.key, timeout=options.timeout, tls=options.tls
        )
        note("probe", f"SOA probe answered serial {soa.serial} over {soa.transport}")
    held = copy.serial
    if note:
        _explain_compare(note, soa.serial, held, options)
    result = PullResult(
        zone=zone_text,
        status=Status.UP_TO_DATE,
        primary=source.server,
        serial_from=copy.serial_before,
        serial_to=soa.serial,
        records=copy.records,
        primary_serial=soa.serial,
        timers=(soa.refresh, soa.retry, soa.expire),
        edns_expire=soa.edns_expire,
    )
    floor = copy.floor  # a file at -o written by hand or edited: no older serial over it
    if floor is not None and not options.force and serial_compare(soa.serial, floor) not in (0, 1):
        raise SerialBackwards(
            f"primary has serial {soa.serial}, older than the {floor} of {copy.floor_file} "
            "(written by hand, or edited since secdns wrote it): left as it is (RFC 1982)",
            server=source.server,
            hint=options.force_hint,
        )
    if held is not None and not options.force:
        order = serial_compare(soa.serial, held)
        if order == 0 and not options.axfr:
            return result
        if order not in (0, 1):
            raise SerialBackwards(
                f"primary has serial {soa.serial}, older than our {held} (RFC 1982)",
                server=source.server,
                hint=options.force_hint,
            )
    xfr, result.fallback = await _request(source, copy, soa.serial)
    reader = xfr.reader
    if note:
        _explain_answer(note, xfr, options)
    result.messages, result.bytes = reader.messages, reader.bytes
    if reader.up_to_date:
        if held is None or serial_compare(soa.serial, held) == 1:
            # RFC 1995: an SOA alone is "up to date" only when it is not newer than ours
            raise BadDataError(
                f"the transfer says we are up to date at serial {held}, but the primary's "
                f"SOA has serial {soa.serial}: staying behind is a failure",
                server=source.server,
                hint="ask for AXFR only for this primary if its IXFR is broken",
            )
        result.serial_to, result.fallback = held, None
        return result
    await _apply(source, copy, xfr, result)
    _pulled(source, result)
    return result


def _pulled(source: _Source, result: PullResult) -> None:
    # debug: serve and watch log each refresh once, in their own words (issue 11)
    log.debug(
        "pull: zone=%s serial %s -> %s via %s, +%d -%d from %s",
        result.zone,
        "none" if result.serial_from is None else result.serial_from,
        result.serial_to,
        result.kind.value,
        result.added,
        result.removed,
        source.server,
    )


async def _without_probe(source: _Source, copy: ZoneCopy) -> PullResult | None:
    """A copy that holds nothing and asks for it (``axfr_unprobed``: serve's cold
    start) takes an AXFR straight away, without the SOA probe: the transfer brings
    the SOA, and the EDNS EXPIRE (RFC 7314) is asked in it.  Unsigned, plain TCP and
    no --explain only.  None when it is not for this copy or when the transfer
    failed: the caller then probes as always, so a failure is reported exactly as
    the probing path reports it (at the cost of a second try).  A timeout is not
    tried again (that would double the wait): it is reported as it came."""
    options = source.options
    if not copy.axfr_unprobed or copy.serial is not None or source.note:
        return None
    if options.key is not None or options.tls is not None:
        return None
    far: Far | str | None = None
    if copy.elsewhere is not None:  # serve's transfer process, at a cold start
        far = await copy.elsewhere.axfr(source.origin, source.address, source.port, options)
    if isinstance(far, str):  # (it failed there)
        log.debug("pull: zone=%s AXFR without a probe failed (%s): probing", source.origin, far)
        return None
    if far is None:  # (that process is not running: here)
        try:
            xfr = await source.transfer(XfrKind.AXFR, ask_expire=True)
        except TimeoutError_:
            raise
        except SecdnsError as err:
            log.debug("pull: zone=%s AXFR without a probe failed (%s): probing", source.origin, err)
            return None
        reader = xfr.reader
        assert reader.soa is not None and reader.zone is not None
        far = (reader.soa, reader.zone, reader.messages, reader.bytes, xfr.edns_expire)
    soa, zone, messages, size, edns_expire = far
    serial, refresh, retry, expire, _minimum = wire.soa_fields(soa)
    result = PullResult(
        zone=source.note.zone,
        status=Status.TRANSFERRED,
        kind=XfrKind.AXFR,
        primary=source.server,
        serial_from=copy.serial_before,
        serial_to=serial,
        primary_serial=serial,
        timers=(refresh, retry, expire),
        edns_expire=edns_expire,
        messages=messages,
        bytes=size,
    )
    await copy.apply_axfr(zone, soa, result)  # (nothing held: no serial to compare)
    _pulled(source, result)
    return result


async def _request(
    source: _Source, copy: ZoneCopy, primary_serial: int
) -> tuple[Transfer, str | None]:
    """IXFR from the serial ``copy`` holds when it can take one, else (or when the
    IXFR is refused or unusable) AXFR; and why it fell back, if it did."""
    options, note, held = source.options, source.note, copy.serial
    fallback = None
    # an IXFR "from our serial" asks for changes since a version newer than the primary's:
    # with --force and a primary behind us (serial went backwards), only an AXFR takes it
    behind = held is not None and serial_compare(primary_serial, held) not in (0, 1)
    if behind:
        note(
            "request",
            f"the primary's serial {primary_serial} is older than our {held}: "
            "--force takes it by AXFR",
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
            return await source.transfer(XfrKind.IXFR, serial=held), None
        except RefusedError as err:
            fallback = f"IXFR refused ({err.message}); AXFR instead"
        except BadDataError as err:
            if isinstance(err, SerialBackwards):
                raise
            fallback = f"IXFR answer unusable ({err.message}); AXFR instead"
        log.info("pull: zone=%s %s", source.note.zone, fallback)
        note("fallback", fallback)
    else:
        note("request", f"ask AXFR: {_axfr_reason(copy, options)}")
    return await source.transfer(XfrKind.AXFR), fallback


async def _apply(source: _Source, copy: ZoneCopy, xfr: Transfer, result: PullResult) -> None:
    """Write a transfer that brought a newer serial to ``copy``: its IXFR deltas,
    or a full AXFR (again, by AXFR, when the deltas do not apply)."""
    options, note, reader = source.options, source.note, xfr.reader
    held = copy.serial
    new_serial = reader.new_serial
    assert new_serial is not None and reader.soa is not None
    if held is not None and not options.force:
        order = serial_compare(new_serial, held)
        if order not in (0, 1) or (order == 0 and not options.axfr):
            raise SerialBackwards(
                f"transfer brought serial {new_serial}, not newer than our {held}",
                server=source.server,
                hint=options.force_hint,
            )
    result.status, result.serial_to, result.records = Status.TRANSFERRED, new_serial, None
    if reader.zone is not None:
        result.kind = XfrKind.AXFR
        await copy.apply_axfr(reader.zone, reader.soa, result)
        return
    result.kind = XfrKind.IXFR
    try:
        await copy.apply_ixfr(reader.deltas, reader.soa, result)
    except IxfrNotApplicable as err:
        result.fallback = f"IXFR delta does not apply ({err.message}); AXFR instead"
        log.warning("pull: zone=%s %s", source.note.zone, result.fallback)
        note("fallback", result.fallback)
        result.added = result.removed = 0
        xfr = await source.transfer(XfrKind.AXFR)
        reader = xfr.reader
        if note:
            _explain_answer(note, xfr, options)
        assert reader.zone is not None and reader.soa is not None
        result.messages += reader.messages
        result.bytes += reader.bytes
        result.serial_to = reader.new_serial
        result.kind = XfrKind.AXFR
        await copy.apply_axfr(reader.zone, reader.soa, result)


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
    plural = "" if reader.messages == 1 else "s"
    size = f"{reader.messages} message{plural}, {reader.bytes} bytes"
    if reader.up_to_date:
        note("answer", f"the IXFR answer is a single SOA: up to date ({size})")
    elif reader.zone is None:
        deltas = len(reader.deltas)
        note(
            "answer",
            f"true IXFR: {deltas} delta{'s' if deltas != 1 else ''} to serial "
            f"{reader.new_serial} ({size})",
        )
    elif xfr.kind is XfrKind.IXFR:
        note(
            "answer",
            f"AXFR-style IXFR: the primary sent the whole zone, {len(reader.zone)} records "
            f"at serial {reader.new_serial} ({size})",
        )
    else:
        note(
            "answer",
            f"AXFR: {len(reader.zone)} records at serial {reader.new_serial} ({size})",
        )
    if options.key is not None:
        note("tsig", f"every message was signed with key {options.key.name} and verified")
    else:
        note("tsig", "no TSIG key configured: the answer is not authenticated")
