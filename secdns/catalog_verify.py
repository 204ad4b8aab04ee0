"""``verify --catalog``: do two servers agree on a catalog and on every member's serial?

The catalog itself is verified as any zone with ``--deep`` (SOA on every
address, a transfer from each, the copies diffed: differing member lists show
as a content difference).  Then every member listed by any server's copy is
verified with the SOA probe checks only (reachable, authoritative, serials
agree), at most ``concurrency`` zones at once.  Catalog findings (RFC 9432
records that cannot be used) are reported beside the reports.
"""

from __future__ import annotations

import asyncio
import dataclasses

import dns.name

from secdns import catalog as catalogs
from secdns.errors import SecdnsError
from secdns.sources import LoadOptions, SourceKind, load_zone, parse_source
from secdns.verify import verify_zone
from secdns.verify_report import PROBE_CHECKS, VerifyOptions, VerifyReport


@dataclasses.dataclass(slots=True)
class CatalogVerifyReport:
    """The catalog's report, one per member, and the catalog findings of each copy."""

    catalog: VerifyReport
    members: list[VerifyReport]
    findings: list[catalogs.CatalogFinding]

    @property
    def reports(self) -> list[VerifyReport]:
        return [self.catalog, *self.members]

    def exit_code(self, strict: bool = False) -> int:
        codes = [report.exit_code(strict) for report in self.reports]
        if self.findings:
            codes.append(1)
        errors = [c for c in codes if c >= 2]
        return max(errors) if errors else max(codes)

    def to_dict(self, strict: bool = False) -> dict[str, object]:
        return {
            "catalog": self.catalog.to_dict(strict),
            "members": [report.to_dict(strict) for report in self.members],
            "catalog_findings": [f.to_dict() for f in self.findings],
        }


async def verify_catalog(
    name: dns.name.Name,
    specs: list[str],
    options: VerifyOptions,
    *,
    max_members: int = catalogs.DEFAULT_MAX_MEMBERS,
) -> CatalogVerifyReport:
    """Verify the catalog ``name`` on the ``@SERVER`` sources ``specs``, then its members."""
    report = await verify_zone(name, specs, dataclasses.replace(options, deep=True))
    load = LoadOptions(
        key=options.key,
        timeout=options.timeout,
        lifetime=options.lifetime,
        limits=options.limits,
        tls=options.tls,
    )
    members: set[dns.name.Name] = set()
    findings: list[catalogs.CatalogFinding] = []
    for spec in specs:
        source = parse_source(spec)
        if source.kind is not SourceKind.SERVER:
            continue
        try:
            loaded = await load_zone(source, name, load)
        except SecdnsError:
            continue  # the catalog's report says why
        parsed = catalogs.parse_catalog(name, loaded.records, max_members=max_members)
        findings += [f for f in parsed.findings if f not in findings]
        members |= set(parsed.members)
    member_options = dataclasses.replace(
        options, deep=False, nameservers_auto=False, checks=options.checks & PROBE_CHECKS
    )
    gate = asyncio.Semaphore(options.concurrency)

    async def one(member: dns.name.Name) -> VerifyReport:
        async with gate:
            return await verify_zone(member, specs, member_options)

    reports = list(await asyncio.gather(*(one(m) for m in sorted(members))))
    return CatalogVerifyReport(report, reports, findings)
