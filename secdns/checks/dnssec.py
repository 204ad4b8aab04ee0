"""DNSSEC and ZONEMD checks of one copy of a zone: pure functions over its records.

Nothing here runs for an unsigned zone without ZONEMD beyond one scan for the
DNSSEC types.  For a signed zone the records are grouped into RRsets here
(:class:`SignedZone`), and every RRSIG is checked twice, apart, by
:mod:`secdns.checks.signatures` (on every core for a large zone): its validity
window against ``now`` (``dnssec.rrsig-validity``), and its signature against the
apex DNSKEY set at a time inside that window (``dnssec.signature``), so that an
expired but otherwise good signature is reported once, as expired.  The NSEC/NSEC3
chain is :mod:`secdns.checks.denial_chain`, ZONEMD :mod:`secdns.checks.zonemd`;
:mod:`secdns.checks.rdatareader` reads the rdata they need.
"""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY

from secdns import checks, wire
from secdns.checks import Finding, denial_chain, zonemd
from secdns.checks.canonical import CanonicalWire
from secdns.checks.rdatareader import RdataReader
from secdns.checks.signatures import SignatureJob, ZoneKey, check_rrsigs
from secdns.checks.zoneindex import Key, ZoneIndex

NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
DS = dns.rdatatype.DS
RRSIG = dns.rdatatype.RRSIG
NSEC = dns.rdatatype.NSEC
DNSKEY = dns.rdatatype.DNSKEY
NSEC3 = dns.rdatatype.NSEC3
NSEC3PARAM = dns.rdatatype.NSEC3PARAM
ZONEMD = dns.rdatatype.ZONEMD

DNSSEC_TYPES = frozenset({RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM, ZONEMD})
DAY = 86400


def applicable_checks(records: list[wire.Record]) -> frozenset[str]:
    """The DNSSEC-family checks that have something to look at in ``records``."""
    present = {rec.rdtype for rec in records if rec.rdtype in DNSSEC_TYPES}
    found: set[str] = set()
    if present & {RRSIG, DNSKEY}:
        found |= {checks.RRSIG_VALIDITY.id, checks.SIGNATURE.id, checks.DENIAL_CHAIN.id}
    if present & {NSEC, NSEC3, NSEC3PARAM}:
        found.add(checks.DENIAL_CHAIN.id)
    if ZONEMD in present:
        found.add(checks.ZONEMD.id)
    return frozenset(found)


def check_dnssec(
    origin: dns.name.Name,
    records: list[wire.Record],
    *,
    now: float,
    sig_warn_days: float = 7.0,
    index: ZoneIndex | None = None,
    selected: frozenset[str] | None = None,
    workers: int | None = None,
) -> list[Finding]:
    """Every DNSSEC and ZONEMD finding for the zone ``origin`` at time ``now``.

    ``workers`` processes check the signatures of a large zone (default: one per core).
    """
    wanted = applicable_checks(records)
    if selected is not None:
        wanted &= selected
    if not wanted:
        return []
    zone = SignedZone(index or ZoneIndex.build(origin, records), now, sig_warn_days, workers)
    if wanted & {checks.RRSIG_VALIDITY.id, checks.SIGNATURE.id, checks.DENIAL_CHAIN.id}:
        zone.prepare()
    if checks.RRSIG_VALIDITY.id in wanted or checks.SIGNATURE.id in wanted:
        zone.check_signatures(
            validity=checks.RRSIG_VALIDITY.id in wanted, signatures=checks.SIGNATURE.id in wanted
        )
    if checks.DENIAL_CHAIN.id in wanted:
        denial_chain.check_denial(zone)
    if checks.ZONEMD.id in wanted:
        zonemd.check_zonemd(zone, records)
    return zone.findings


class SignedZone:
    """A zone's records grouped for the DNSSEC checks: RRsets and the RRSIGs over
    each, the zone cuts, the apex DNSKEY set; the findings of every family."""

    def __init__(
        self, index: ZoneIndex, now: float, sig_warn_days: float, workers: int | None = None
    ) -> None:
        self.index = index
        self.origin = index.origin
        self.apex = index.origin_key
        self.now = now
        self.warn_seconds = sig_warn_days * DAY
        self.findings: list[Finding] = []
        self.cuts: set[Key] = set()
        self.rrsets: dict[tuple[Key, int], list[wire.Record]] = {}
        self.signatures: dict[tuple[Key, int], list[wire.Record]] = {}  # RRSIGs by what they cover
        self.canonical = CanonicalWire(index.origin)
        self.reader = RdataReader(self.canonical)
        self.bitmaps: dict[str, set[int]] = {}  # NSEC type lists, by their text
        self.workers = workers

    def owner(self, rec: wire.Record) -> str:
        return self.index.absolute(rec.owner)

    def rdata(self, rec: wire.Record) -> dns.rdata.Rdata | None:
        return self.reader.rdata(rec)

    def authoritative(self, key: Key) -> bool:
        """Is ``key`` authoritative data of this zone (not at or below a cut; cuts count)?"""
        for end in range(len(self.apex) + 1, len(key)):
            if key[:end] in self.cuts:
                return False
        return True

    # -- grouping

    def prepare(self) -> None:
        covered_by = self.canonical.covered
        for key, group in self.index.owners():
            if key != self.apex and any(rec.rdtype == NS for rec in group):
                self.cuts.add(key)
            for rec in group:
                if rec.rdtype == RRSIG:
                    covered = covered_by(rec)
                    if covered is not None:
                        self.signatures.setdefault((key, covered), []).append(rec)
                else:
                    self.rrsets.setdefault((key, rec.rdtype), []).append(rec)

    def dnskeys(self) -> list[dns.rdtypes.ANY.DNSKEY.DNSKEY] | None:
        """The apex DNSKEY set (duplicates dropped); None if the apex has no DNSKEY records."""
        records = self.rrsets.get((self.apex, DNSKEY))
        if not records:
            return None
        found: dict[dns.rdtypes.ANY.DNSKEY.DNSKEY, None] = {}
        for rec in records:
            rdata = self.rdata(rec)
            if isinstance(rdata, dns.rdtypes.ANY.DNSKEY.DNSKEY):
                found[rdata] = None
        return list(found)

    # -- RRSIG validity and signatures (secdns.checks.signatures)

    def check_signatures(self, *, validity: bool, signatures: bool) -> None:
        dnskeys = self.dnskeys()
        if dnskeys is None and signatures:
            self.findings.append(
                checks.SIGNATURE.error(
                    self.index.origin_text,
                    "DNSKEY",
                    "the zone has RRSIG records but no DNSKEY at the apex",
                )
            )
        keys: dict[tuple[int, int], list[ZoneKey]] | None = None
        if dnskeys is not None:
            keys = {}
            for dnskey in dnskeys:
                tag = dns.dnssec.key_id(dnskey)
                keys.setdefault((dnskey.algorithm, tag), []).append(ZoneKey.make(dnskey))
        job = SignatureJob(
            index=self.index,
            cuts=self.cuts,
            rrsets=self.rrsets,
            signed=list(self.signatures.items()),
            keys=keys,
            algorithms=sorted({dnskey.algorithm for dnskey in dnskeys or ()}),
            now=self.now,
            warn_seconds=self.warn_seconds,
            validity=validity,
            signatures=signatures,
        )
        self.findings += check_rrsigs(job, self.workers)
        if signatures and dnskeys is not None:
            self.check_unsigned()

    def check_unsigned(self) -> None:
        for (key, rdtype), records in self.rrsets.items():
            if (key, rdtype) in self.signatures or rdtype == RRSIG:
                continue
            if not self.authoritative(key):
                continue  # glue and occluded data are not signed
            if key in self.cuts and rdtype not in (DS, NSEC):
                continue  # the delegation NS (and glue at the cut) are not signed
            self.findings.append(
                checks.SIGNATURE.error(
                    self.owner(records[0]),
                    wire.type_text(rdtype),
                    "RRset has no RRSIG in a signed zone",
                    "RFC 4035 2.2",
                )
            )
