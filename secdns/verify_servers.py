"""``secdns verify`` asks the servers: the SOA from every address of each
``@SERVER`` (and, with ``nameservers_auto``, of each name in the zone's NS set),
the serial findings, and with ``deep`` an AXFR from each address that answered and
the comparison of what came.  The network is :func:`secdns.engine.probe_soa` and
:func:`secdns.engine.transfer`; the findings are pure functions of the answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from secdns import checks, wire, xot
from secdns.addresses import resolve
from secdns.checks import Finding
from secdns.diff import absolute_line, compare_key, diff_zones
from secdns.endpoints import parse_endpoint
from secdns.engine import probe_soa, transfer
from secdns.errors import (
    NetworkError,
    RefusedError,
    SecdnsError,
    TimeoutError_,
    TsigError,
)
from secdns.sources import Source
from secdns.verify_report import ProbeStatus, ServerAnswer, Target, VerifyOptions
from secdns.xfr import XfrKind, serial_compare

log = logging.getLogger(__name__)

T = TypeVar("T")

DIFF_EXAMPLES = 3  # records quoted in a content-difference finding


@dataclasses.dataclass(slots=True)
class LoadedCopy:
    """One copy of the zone the data checks run on: a file, stdin, a store entry,
    or (``deep``) what one or more servers transferred."""

    source: str
    kind: str
    records: list[wire.Record]
    serial: int | None


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
            key=None,  # TSIG is for the transfer: a server may know the key for no query
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


async def ask_servers(
    origin: dns.name.Name, servers: list[Source], options: VerifyOptions, alone: bool = True
) -> tuple[list[ServerAnswer], list[Finding], list[LoadedCopy]]:
    """The SOA from every address (and with ``deep`` the AXFR from each that
    answered): the answers, the findings on them, and one copy per distinct
    content transferred.  ``alone``: no copy of the zone was given besides (then a
    failed look-up of the NS set, with no @SERVER either, ends the run: exit 3)."""
    targets, findings = await _server_targets(origin, servers, options, alone)
    answers = await _bounded(
        options.concurrency,
        [functools.partial(probe, origin, target, options) for target in targets],
    )
    findings += serial_findings(origin.to_text(), answers)
    if not options.deep:
        return answers, findings, []
    transferred, problems = await _transfer_all(origin, targets, answers, options)
    findings += problems + _compare_copies(origin, transferred)
    return answers, findings, _distinct(transferred)


async def _server_targets(
    origin: dns.name.Name, servers: list[Source], options: VerifyOptions, alone: bool = True
) -> tuple[list[Target], list[Finding]]:
    """Every address to ask: of each @SERVER, and of each NS with --nameservers auto
    (an NS set that cannot be looked up is a finding beside other sources: a stranger's
    file checks were never reported when the zone was not in the DNS yet)."""
    targets: list[Target] = []
    findings: list[Finding] = []
    if options.nameservers_auto:
        try:
            found, problems = await discover_nameservers(origin, options.resolver, options.timeout)
        except NetworkError as err:
            if alone and not servers:
                raise
            finding = checks.REACHABLE.error(origin.to_text(), "NS", err.message)
            found, problems = [], [finding.with_source("--nameservers auto")]
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
) -> tuple[list[LoadedCopy], list[Finding]]:
    """AXFR from every address that answered the SOA query."""
    answered = {a.address for a in answers if a.status is ProbeStatus.OK}

    async def one(target: Target) -> LoadedCopy | Finding:
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
        return LoadedCopy(target.label, "axfr", xfr.reader.records or [], xfr.reader.new_serial)

    results = await _bounded(
        options.concurrency,
        [functools.partial(one, target) for target in targets if target.label in answered],
    )
    return (
        [r for r in results if isinstance(r, LoadedCopy)],
        [r for r in results if isinstance(r, Finding)],
    )


def _fingerprint(records: list[wire.Record]) -> frozenset[tuple[object, ...]]:
    """The content of a copy, compared as ``secdns diff`` compares (names ignore case)."""
    return frozenset((*compare_key(r), r.ttl) for r in records)


def _distinct(copies: list[LoadedCopy]) -> list[LoadedCopy]:
    """One copy per distinct content, labelled with every server that sent it."""
    groups: dict[frozenset[tuple[object, ...]], list[LoadedCopy]] = {}
    for copy in copies:
        groups.setdefault(_fingerprint(copy.records), []).append(copy)
    return [
        LoadedCopy(", ".join(c.source for c in group), "axfr", group[0].records, group[0].serial)
        for group in groups.values()
    ]


def _compare_copies(origin: dns.name.Name, copies: list[LoadedCopy]) -> list[Finding]:
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
