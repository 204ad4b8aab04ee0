"""``secdns verify``: load copies of a zone, run the checks, ask the servers.

The orchestration only: the checks themselves are pure functions in
:mod:`secdns.checks`; loading is :func:`secdns.sources.load_zone`; the network
is :func:`secdns.engine.probe_soa` and :func:`secdns.engine.transfer`.  The
result is a :class:`VerifyReport`, a value that every renderer (text, rich,
JSON, JUnit) reads.

Sources:

* a file, ``-`` (stdin) or a store directory: integrity and DNSSEC checks;
* ``@SERVER`` (and, with ``nameservers_auto``, every address of every NS of the
  zone): an SOA query to each address (serial, authority, reachability); with
  ``deep`` also an AXFR from each, the data checks on what came, and a diff
  of the copies.

A problem with the zone or a server is a finding; only a problem that keeps a
check from running at all (a missing file, an unreadable store, a zone whose
NS set cannot be looked up) raises a :class:`secdns.errors.SecdnsError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from secdns import checks, wire, xot
from secdns.addresses import resolve
from secdns.checks import CHECKS, Finding, Severity
from secdns.checks.dnssec import applicable_checks, check_dnssec
from secdns.checks.integrity import check_integrity
from secdns.checks.zoneindex import ZoneIndex
from secdns.config import Limits
from secdns.diff import absolute_line, compare_key, diff_zones
from secdns.endpoints import format_addr, parse_endpoint
from secdns.engine import probe_soa, transfer
from secdns.errors import (
    ExitCode,
    NetworkError,
    RefusedError,
    SecdnsError,
    TimeoutError_,
    TsigError,
    UsageError,
    ZoneFileError,
)
from secdns.keys import TsigKey
from secdns.sources import LoadOptions, Source, SourceKind, load_zone, parse_source
from secdns.xfr import XfrKind, serial_compare

log = logging.getLogger(__name__)

T = TypeVar("T")

DATA_CHECKS = frozenset(c for c in CHECKS if c.startswith(("integrity.", "dnssec.")))
INTEGRITY_CHECKS = frozenset(c for c in CHECKS if c.startswith("integrity."))
PROBE_CHECKS = frozenset({checks.SERIAL.id, checks.AUTHORITATIVE.id, checks.REACHABLE.id})
DIFF_EXAMPLES = 3  # records quoted in a content-difference finding


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyOptions:
    key: TsigKey | None = None
    timeout: float = 10.0
    lifetime: float = 3600.0
    limits: Limits = Limits()
    sig_warn_days: float = 7.0
    deep: bool = False
    nameservers_auto: bool = False
    checks: frozenset[str] = frozenset(CHECKS)
    concurrency: int = 16
    now: float | None = None  # the time signatures are judged at (default: now)
    resolver: dns.asyncresolver.Resolver | None = None  # for nameservers_auto
    tls: xot.TlsSettings | None = None  # ask @SERVERs over TLS (XoT)


class ProbeStatus(enum.Enum):
    OK = "ok"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    LAME = "lame"
    TSIG = "tsig"
    BAD_ANSWER = "bad-answer"


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One address of one server: ``server`` is how it was named (@spec or NS name)."""

    server: str
    address: str
    port: int

    @property
    def label(self) -> str:
        return format_addr(self.address, self.port)


@dataclasses.dataclass(frozen=True, slots=True)
class ServerAnswer:
    """What one address said to the SOA query."""

    server: str
    address: str
    status: ProbeStatus
    serial: int | None = None
    detail: str | None = None
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "address": self.address,
            "status": self.status.value,
            "serial": self.serial,
            "detail": self.detail,
            "elapsed": round(self.elapsed, 4),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CopySummary:
    """One copy of the zone that the data checks ran on."""

    source: str
    kind: str
    serial: int | None
    records: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "serial": self.serial,
            "records": self.records,
        }


class CheckStatus(enum.Enum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"  # selected, but nothing to look at (e.g. DNSSEC of an unsigned zone)


@dataclasses.dataclass(slots=True)
class VerifyReport:
    """Everything ``verify`` found, for every renderer."""

    zone: str
    selected: frozenset[str]
    ran: frozenset[str]
    findings: list[Finding]
    servers: list[ServerAnswer]
    copies: list[CopySummary]
    duration: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors) or (strict and bool(self.warnings))

    @property
    def unparsable(self) -> bool:
        """A zone file did not parse, so its checks could not run: exit 6, as diff."""
        return any(
            f.check == checks.PARSE.id and f.severity is Severity.ERROR for f in self.findings
        )

    def exit_code(self, strict: bool = False) -> int:
        if self.unparsable:
            return int(ExitCode.BAD_DATA)
        return int(ExitCode.DIFFERENT if self.failed(strict) else ExitCode.OK)

    @property
    def sources(self) -> list[str]:
        """Every copy and server address the findings can come from."""
        labels = [c.source for c in self.copies] + [s.address for s in self.servers]
        labels += [f.source for f in self.findings if f.source]
        return list(dict.fromkeys(labels))

    def findings_of(self, check_id: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check_id]

    def status(self, check_id: str, strict: bool = False) -> CheckStatus:
        found = self.findings_of(check_id)
        if any(f.severity is Severity.ERROR for f in found):
            return CheckStatus.FAILED
        if found:
            return CheckStatus.FAILED if strict else CheckStatus.WARNING
        if check_id not in self.ran:
            return CheckStatus.SKIPPED
        return CheckStatus.PASSED

    def checks(self) -> list[checks.Check]:
        """The selected checks, in catalogue order."""
        return [check for check_id, check in CHECKS.items() if check_id in self.selected]

    def to_dict(self, strict: bool = False) -> dict[str, object]:
        return {
            "zone": self.zone,
            "result": "failed" if self.failed(strict) else "passed",
            "strict": strict,
            "exit_code": self.exit_code(strict),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checks": [
                {
                    **check.to_dict(),
                    "status": self.status(check.id, strict).value,
                    "findings": len(self.findings_of(check.id)),
                }
                for check in self.checks()
            ],
            "findings": [f.to_dict() for f in self.findings],
            "servers": [s.to_dict() for s in self.servers],
            "copies": [c.to_dict() for c in self.copies],
            "duration": round(self.duration, 3),
        }


# --- the data checks ---------------------------------------------------------------------------


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: the checks allocate millions of small objects
    that form no cycles, and its passes over the (millions of) live records only cost time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def check_records(
    origin: dns.name.Name,
    records: list[wire.Record],
    *,
    selected: frozenset[str],
    now: float,
    sig_warn_days: float,
) -> tuple[list[Finding], frozenset[str]]:
    """Run the integrity and DNSSEC checks on one copy; return findings and the checks run."""
    with _no_cyclic_gc():
        return _check_records(
            origin, records, selected=selected, now=now, sig_warn_days=sig_warn_days
        )


def _check_records(
    origin: dns.name.Name,
    records: list[wire.Record],
    *,
    selected: frozenset[str],
    now: float,
    sig_warn_days: float,
) -> tuple[list[Finding], frozenset[str]]:
    index = ZoneIndex.build(origin, records)
    findings: list[Finding] = []
    ran = set(INTEGRITY_CHECKS - {checks.PARSE.id})
    if selected & INTEGRITY_CHECKS:
        findings += check_integrity(origin, records, index=index)
    dnssec_ran = applicable_checks(records) & selected
    if dnssec_ran:
        findings += check_dnssec(
            origin, records, now=now, sig_warn_days=sig_warn_days, index=index, selected=selected
        )
    ran |= dnssec_ran
    return [f for f in findings if f.check in selected], frozenset(ran & selected)


# --- the consistency checks -------------------------------------------------------------------


def classify(err: SecdnsError) -> ProbeStatus:
    if isinstance(err, TimeoutError_):
        return ProbeStatus.TIMEOUT
    if isinstance(err, NetworkError):
        return ProbeStatus.UNREACHABLE
    if isinstance(err, RefusedError):
        return ProbeStatus.LAME
    if isinstance(err, TsigError):
        return ProbeStatus.TSIG
    return ProbeStatus.BAD_ANSWER


def _detail(err: SecdnsError) -> str:
    return f"{err.message} ({err.hint})" if err.hint else err.message


def serial_findings(origin_text: str, answers: list[ServerAnswer]) -> list[Finding]:
    """Pure: one finding per address whose answer is missing, lame or behind the newest."""
    findings: list[Finding] = []
    for answer in answers:
        if answer.status in (ProbeStatus.TIMEOUT, ProbeStatus.UNREACHABLE):
            findings.append(
                checks.REACHABLE.error(
                    origin_text,
                    "SOA",
                    f"{answer.server} ({answer.address}) does not answer: {answer.detail}",
                ).with_source(answer.address)
            )
        elif answer.status is not ProbeStatus.OK:
            findings.append(
                checks.AUTHORITATIVE.error(
                    origin_text,
                    "SOA",
                    f"{answer.server} ({answer.address}) gives no "
                    f"authoritative answer ({answer.status.value}): {answer.detail}",
                ).with_source(answer.address)
            )
    answered = [a for a in answers if a.serial is not None]
    newest = newest_serial([a.serial for a in answered if a.serial is not None])
    if newest is None:
        return findings
    at_newest = [a.address for a in answered if a.serial == newest]
    for answer in answered:
        if answer.serial == newest:
            continue
        order = serial_compare(answer.serial or 0, newest)
        relation = "behind" if order == -1 else "not comparable with"
        findings.append(
            checks.SERIAL.error(
                origin_text,
                "SOA",
                f"serial {answer.serial} at {answer.address} is {relation} "
                f"serial {newest} at {', '.join(at_newest)}",
            ).with_source(answer.address)
        )
    return findings


def newest_serial(serials: Iterable[int]) -> int | None:
    """The newest serial under RFC 1982 (numeric maximum when they are not comparable)."""
    newest: int | None = None
    for serial in serials:
        if newest is None or serial_compare(serial, newest) == 1:
            newest = serial
    return newest


async def discover_nameservers(
    origin: dns.name.Name, resolver: dns.asyncresolver.Resolver | None = None, timeout: float = 10.0
) -> tuple[list[Target], list[Finding]]:
    """Every IPv4 and IPv6 address of every name in the zone's NS set (port 53)."""
    resolver = resolver or dns.asyncresolver.Resolver()
    zone = origin.to_text()
    try:
        answer = await resolver.resolve(origin, dns.rdatatype.NS, lifetime=timeout)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as err:
        raise NetworkError(f"the zone has no NS set in the DNS: {err}", zone=zone) from err
    except dns.exception.DNSException as err:
        raise NetworkError(f"cannot look up the zone's NS set: {err}", zone=zone) from err
    names = sorted({rdata.target for rdata in answer})

    async def addresses(name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> list[str]:
        try:
            found = await resolver.resolve(name, rdtype, lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as err:
            log.info(
                "verify: zone=%s cannot resolve %s %s: %s",
                zone,
                name,
                dns.rdatatype.to_text(rdtype),
                err,
            )
            return []
        return [rdata.address for rdata in found]

    lookups = await asyncio.gather(
        *(
            addresses(name, rdtype)
            for name in names
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        )
    )
    targets: list[Target] = []
    findings: list[Finding] = []
    for position, name in enumerate(names):
        found = lookups[2 * position] + lookups[2 * position + 1]
        if not found:
            findings.append(
                checks.REACHABLE.error(
                    zone, "NS", f"name server {name} has no IPv4 or IPv6 address"
                )
            )
        targets += [Target(name.to_text(), address, 53) for address in found]
    return targets, findings


async def _bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


def _tls(target: Target, options: VerifyOptions) -> xot.TlsSettings | None:
    """The TLS settings for ``target``, verifying the name it was given by."""
    if options.tls is None:
        return None
    spec = target.server
    host = parse_endpoint(spec).host if spec.startswith("@") else spec.rstrip(".")
    return options.tls.for_host(host)


async def probe(origin: dns.name.Name, target: Target, options: VerifyOptions) -> ServerAnswer:
    started = time.monotonic()
    try:
        soa = await probe_soa(
            origin,
            target.address,
            target.port,
            key=options.key,
            timeout=options.timeout,
            tls=_tls(target, options),
        )
    except SecdnsError as err:
        return ServerAnswer(
            target.server,
            target.label,
            classify(err),
            None,
            _detail(err),
            time.monotonic() - started,
        )
    return ServerAnswer(
        target.server, target.label, ProbeStatus.OK, soa.serial, None, time.monotonic() - started
    )


# --- the whole run -----------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Copy:
    source: str
    kind: str
    records: list[wire.Record]
    serial: int | None


def other_zone_finding(origin: dns.name.Name, records: list[wire.Record]) -> Finding | None:
    """The one finding for a file of another zone (``verify example.org example.com.zone``):
    no SOA at our apex, an SOA outside the zone.  ``None`` for a file of this zone."""
    if any(rec.rdtype == dns.rdatatype.SOA and rec.owner == "@" for rec in records):
        return None
    foreign = next(
        (r for r in records if r.rdtype == dns.rdatatype.SOA and r.owner.endswith(".")), None
    )
    if foreign is None:
        return None
    outside = sum(1 for r in records if r.owner.endswith("."))
    return checks.OUT_OF_ZONE.error(
        origin.to_text(),
        None,
        f"the file holds zone {foreign.owner} (its SOA), not {origin.to_text()}: "
        f"{outside} of {len(records)} records are outside {origin.to_text()}; "
        "wrong file or wrong zone name?",
    )


async def verify_zone(
    origin: dns.name.Name, specs: list[str], options: VerifyOptions = VerifyOptions()
) -> VerifyReport:
    """Verify ``origin`` from the sources ``specs`` (files, ``-``, store dirs, ``@SERVER``)."""
    started = time.monotonic()
    zone = origin.to_text()
    sources = [parse_source(spec) for spec in specs]
    servers = [s for s in sources if s.kind is SourceKind.SERVER]
    if not sources and not options.nameservers_auto:
        raise UsageError(
            "nothing to verify: give a zone file, '-', a store directory or "
            "@SERVER, or --nameservers auto",
            zone=zone,
        )
    if sum(1 for s in sources if s.kind is SourceKind.STDIN) > 1:
        raise UsageError("'-' (stdin) can be given once", zone=zone)
    if options.deep and not servers and not options.nameservers_auto:
        raise UsageError(
            "--deep transfers from servers: give @SERVER or --nameservers auto", zone=zone
        )
    findings: list[Finding] = []
    ran: set[str] = set()

    # Copies of the zone: files, stdin, store entries...
    copies: list[_Copy] = []
    for source in sources:
        if source.kind is SourceKind.SERVER:
            continue
        ran.add(checks.PARSE.id)
        try:
            loaded = await load_zone(source, origin, LoadOptions(timeout=options.timeout))
        except ZoneFileError as err:
            findings.append(checks.PARSE.error(zone, None, err.message).with_source(str(source)))
            continue
        other = other_zone_finding(origin, loaded.records)
        if other is not None:  # one finding, not one out-of-zone warning per record
            findings.append(other.with_source(str(source)))
            ran.add(checks.OUT_OF_ZONE.id)
            continue
        copies.append(_Copy(str(source), source.kind.value, loaded.records, loaded.serial))

    # ...what the servers say, and (--deep) the copies they transfer.
    answers: list[ServerAnswer] = []
    if servers or options.nameservers_auto:
        ran |= PROBE_CHECKS
        targets, problems = await _targets(origin, servers, options)
        findings += problems
        answers = await _bounded(
            options.concurrency,
            [functools.partial(probe, origin, target, options) for target in targets],
        )
        findings += serial_findings(zone, answers)
        if options.deep:
            ran.add(checks.CONTENT.id)
            transferred, problems = await _transfer_all(origin, targets, answers, options)
            findings += problems + _compare_copies(origin, transferred)
            copies += _distinct(transferred)

    now = time.time() if options.now is None else options.now
    for copy in copies:
        found, checked = await asyncio.to_thread(
            check_records,
            origin,
            copy.records,
            selected=options.checks,
            now=now,
            sig_warn_days=options.sig_warn_days,
        )
        log.info(
            "verify: zone=%s %s: %d records, %d findings",
            zone,
            copy.source,
            len(copy.records),
            len(found),
        )
        findings += [f.with_source(copy.source) for f in found]
        ran |= checked

    selected = options.checks
    findings = checks.sort_findings(f for f in findings if f.check in selected)
    return VerifyReport(
        zone=zone,
        selected=selected,
        ran=frozenset(ran & selected),
        findings=findings,
        servers=answers,
        copies=[CopySummary(c.source, c.kind, c.serial, len(c.records)) for c in copies],
        duration=time.monotonic() - started,
    )


async def _targets(
    origin: dns.name.Name, servers: list[Source], options: VerifyOptions
) -> tuple[list[Target], list[Finding]]:
    """Every address to ask: of each @SERVER, and of each NS with --nameservers auto."""
    targets: list[Target] = []
    findings: list[Finding] = []
    if options.nameservers_auto:
        found, problems = await discover_nameservers(origin, options.resolver, options.timeout)
        if options.tls is not None:  # XoT: the name servers' TLS port
            found = [dataclasses.replace(t, port=xot.DEFAULT_PORT) for t in found]
        targets += found
        findings += problems
    for source in servers:
        endpoint = parse_endpoint(source.spec, xot.default_port(options.tls))
        try:
            addresses = await resolve(endpoint)
        except NetworkError as err:
            findings.append(
                checks.REACHABLE.error(
                    origin.to_text(), "SOA", f"{source.spec}: {err.message}"
                ).with_source(source.spec)
            )
            continue
        targets += [Target(source.spec, address, port) for address, port in addresses]
    unique: dict[str, Target] = {}
    for target in targets:
        unique.setdefault(target.label, target)  # an address is asked once
    return list(unique.values()), findings


async def _transfer_all(
    origin: dns.name.Name,
    targets: list[Target],
    answers: list[ServerAnswer],
    options: VerifyOptions,
) -> tuple[list[_Copy], list[Finding]]:
    """AXFR from every address that answered the SOA query."""
    answered = {a.address for a in answers if a.status is ProbeStatus.OK}

    async def one(target: Target) -> _Copy | Finding:
        try:
            xfr = await transfer(
                origin,
                target.address,
                target.port,
                XfrKind.AXFR,
                key=options.key,
                timeout=options.timeout,
                lifetime=options.lifetime,
                limits=options.limits,
                tls=_tls(target, options),
            )
        except SecdnsError as err:
            return checks.CONTENT.error(
                origin.to_text(),
                None,
                f"cannot transfer the zone from {target.label}: {_detail(err)}",
            ).with_source(target.label)
        return _Copy(target.label, "axfr", xfr.reader.records or [], xfr.reader.new_serial)

    results = await _bounded(
        options.concurrency,
        [functools.partial(one, target) for target in targets if target.label in answered],
    )
    return (
        [r for r in results if isinstance(r, _Copy)],
        [r for r in results if isinstance(r, Finding)],
    )


def _fingerprint(records: list[wire.Record]) -> frozenset[tuple[object, ...]]:
    """The content of a copy, compared as ``secdns diff`` compares (names ignore case)."""
    return frozenset((*compare_key(r), r.ttl) for r in records)


def _distinct(copies: list[_Copy]) -> list[_Copy]:
    """One copy per distinct content, labelled with every server that sent it."""
    groups: dict[frozenset[tuple[object, ...]], list[_Copy]] = {}
    for copy in copies:
        groups.setdefault(_fingerprint(copy.records), []).append(copy)
    return [
        _Copy(", ".join(c.source for c in group), "axfr", group[0].records, group[0].serial)
        for group in groups.values()
    ]


def _compare_copies(origin: dns.name.Name, copies: list[_Copy]) -> list[Finding]:
    """Pure: each copy that differs from the newest one (the reference) is a finding.

    SOA serials are left out of the comparison: consistency.serial reports them.
    """
    if len(copies) < 2:
        return []
    newest = newest_serial(c.serial for c in copies if c.serial is not None)
    reference = next((c for c in copies if c.serial == newest), copies[0])
    findings: list[Finding] = []
    for copy in copies:
        if copy is reference:
            continue
        delta = diff_zones(origin, reference.records, copy.records, ignore_serial=True)
        if delta.same:
            continue
        message = (
            f"{copy.source} differs from {reference.source}: "
            f"{_count(len(delta.removed), 'record')} missing, {len(delta.added)} extra, "
            f"{len(delta.ttl_changed)} with another TTL"
        )
        examples = (
            [f"-{absolute_line(r, origin)}" for r in delta.removed]
            + [f"+{absolute_line(r, origin)}" for r in delta.added]
        )[:DIFF_EXAMPLES]
        if examples:
            message += f" (e.g. {'; '.join(examples)})"
        findings.append(
            checks.CONTENT.error(origin.to_text(), None, message).with_source(copy.source)
        )
    return findings


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
