"""``secdns verify``: load copies of a zone, run the checks, ask the servers.

The orchestration only: the checks themselves are pure functions in
:mod:`secdns.checks`; loading is :func:`secdns.sources.load_zone`; asking the
servers (SOA probes, serial findings, ``--deep`` transfers and their comparison)
is :mod:`secdns.verify_servers`.  The result is a
:class:`~secdns.verify_report.VerifyReport`, a value that every renderer (text,
rich, JSON, JUnit) reads.

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
import logging
import time

import dns.name
import dns.rdatatype

from secdns import checks, wire
from secdns.checks import CHECKS, Finding, Severity
from secdns.checks.dnssec import applicable_checks, check_dnssec
from secdns.checks.integrity import check_integrity
from secdns.checks.zoneindex import ZoneIndex
from secdns.errors import SecdnsError, UsageError, ZoneFileError
from secdns.gcpause import gc_paused
from secdns.sources import (
    LoadOptions,
    Source,
    SourceKind,
    load_zone,
    other_zone,
    parse_source,
)
from secdns.store import Store
from secdns.verify_report import (
    INTEGRITY_CHECKS,
    CopySummary,
    ProbeStatus,
    ServerAnswer,
    VerifyOptions,
    VerifyReport,
)
from secdns.verify_servers import LoadedCopy, ask_servers

log = logging.getLogger(__name__)


# --- the data checks ---------------------------------------------------------------------------


def check_records(
    origin: dns.name.Name,
    records: list[wire.Record],
    *,
    selected: frozenset[str],
    now: float,
    sig_warn_days: float,
) -> tuple[list[Finding], frozenset[str]]:
    """Run the integrity and DNSSEC checks on one copy; return findings and the checks run."""
    with gc_paused():  # the checks allocate millions of small objects, no cycles
        index = ZoneIndex.build(origin, records)
        findings: list[Finding] = []
        ran = set(INTEGRITY_CHECKS - {checks.PARSE.id, checks.STORE.id})
        if selected & INTEGRITY_CHECKS:
            findings += check_integrity(origin, records, index=index)
        dnssec_ran = applicable_checks(records) & selected
        if dnssec_ran:
            findings += check_dnssec(
                origin,
                records,
                now=now,
                sig_warn_days=sig_warn_days,
                index=index,
                selected=selected,
            )
        ran |= dnssec_ran
        return [f for f in findings if f.check in selected], frozenset(ran & selected)


def other_zone_finding(origin: dns.name.Name, records: list[wire.Record]) -> Finding | None:
    """The one finding for a file of another zone (``verify example.org example.com.zone``),
    from :func:`secdns.sources.other_zone` (diff refuses such a file).  ``None`` for a
    file of this zone."""
    message = other_zone(origin, records)
    if message is None:
        return None
    return checks.OUT_OF_ZONE.error(origin.to_text(), None, message)


async def _load_copies(
    origin: dns.name.Name, sources: list[Source], options: VerifyOptions
) -> tuple[list[LoadedCopy], list[Finding], set[str]]:
    """Load every source but the servers: the copies, the findings of those that
    did not load (or hold another zone), and the checks that ran on the way."""
    zone = origin.to_text()
    copies: list[LoadedCopy] = []
    findings: list[Finding] = []
    ran: set[str] = set()
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
        if source.kind is SourceKind.STORE:
            ran.add(checks.STORE.id)
            problem = await asyncio.to_thread(_store_problem, source.spec, origin)
            if problem is not None:  # (a stranger's hand edit passed verify)
                findings.append(checks.STORE.error(zone, None, problem).with_source(str(source)))
        copies.append(LoadedCopy(str(source), source.kind.value, loaded.records, loaded.serial))
    return copies, findings, ran


def _store_problem(directory: str, origin: dns.name.Name) -> str | None:
    """Why a store's copy of ``origin`` is not the file secdns wrote, or None."""
    store = Store(directory)
    try:
        state = store.load_state(origin)
    except SecdnsError as err:
        return f"its state cannot be read: {err.message}"
    if state.file_sha256 is None:
        return None  # (a copy written before secdns kept its SHA-256: nothing to hold it to)
    why = store.zone_problem(origin, state)
    if why is None:
        return None
    return f"{why}: its SHA-256 is not the one in its state (serve and pull replace it)"


_NOTHING_TO_CHECK = {
    "dnssec": "the zone is not signed (no DNSKEY at its apex)",
    "dnssec.zonemd": "the zone has no ZONEMD at its apex",
    "consistency": "no server was given (@SERVER, or --nameservers auto)",
    "consistency.content": "it compares the servers' transfers: give --deep",
    "integrity.store": "no store directory was given",
}


def _not_checked(
    zone: str,
    required: tuple[frozenset[str], ...],
    selected: frozenset[str],
    ran: set[str],
) -> list[Finding]:
    """An error for each thing --check named that had nothing to check (a check, or
    every check of a family): a stranger's ``--check dnssec`` passed an unsigned zone,
    where dnssec-verify and ldns-verify-zone fail it."""
    found = []
    for wanted in required:
        wanted = wanted & selected
        if not wanted or wanted & ran:
            continue
        first = min(wanted, key=list(CHECKS).index)
        family = first.split(".", 1)[0]
        reason = _NOTHING_TO_CHECK.get(first) if len(wanted) == 1 else None
        reason = reason or _NOTHING_TO_CHECK.get(family, "nothing here for it to look at")
        named = first if len(wanted) == 1 else family
        message = f"--check {named} was asked for, but nothing was checked: {reason}"
        found.append(Finding(first, Severity.ERROR, zone, None, message, CHECKS[first].rfc))
    return found


async def verify_zone(
    origin: dns.name.Name, specs: list[str], options: VerifyOptions | None = None
) -> VerifyReport:
    """Verify ``origin`` from the sources ``specs`` (files, ``-``, store dirs, ``@SERVER``).

    The cyclic collector pauses from the first load to the last check: once the
    reader has made a copy's million records, each young-generation pass would
    walk them all again (about a tenth of verify's time at 1M records); the
    records are freed by reference counting when the copies go."""
    with gc_paused():  # the checks allocate millions of small objects, no cycles
        return await _verify_zone(origin, specs, options)


async def _verify_zone(
    origin: dns.name.Name, specs: list[str], options: VerifyOptions | None
) -> VerifyReport:
    options = VerifyOptions() if options is None else options
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
    # Copies of the zone: files, stdin, store entries...
    copies, findings, ran = await _load_copies(origin, sources, options)
    # ...what the servers say, and (--deep) the copies they transfer.
    answers: list[ServerAnswer] = []
    if servers or options.nameservers_auto:
        if options.deep:
            ran.add(checks.CONTENT.id)
        alone = not copies
        answers, problems, transferred = await ask_servers(origin, servers, options, alone)
        findings += problems
        copies += transferred
        # what no server answered had nothing to compare: skipped, not passed (a
        # stranger's one unreachable server "passed" serial and authoritative)
        ran.add(checks.REACHABLE.id)
        if any(a.status in (ProbeStatus.OK, ProbeStatus.LAME) for a in answers):
            ran.add(checks.AUTHORITATIVE.id)
        if any(a.serial is not None for a in answers):
            ran.add(checks.SERIAL.id)

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
    findings += _not_checked(zone, options.required, selected, ran)
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
