"""DNSSEC and ZONEMD checks of one copy of a zone: pure functions over its records.

Nothing here runs for an unsigned zone without ZONEMD beyond one scan for the
DNSSEC types.  For a signed zone the records are grouped into RRsets here, and
every RRSIG is checked twice, apart, by :mod:`secdns.checks.signatures` (on
every core for a large zone): its validity window against ``now``
(``dnssec.rrsig-validity``), and its signature against the apex DNSKEY set at a
time inside that window (``dnssec.signature``), so that an expired but otherwise
good signature is reported once, as expired.  The NSEC/NSEC3 chain and ZONEMD
are checked here.
"""

from __future__ import annotations

import base64
import binascii

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.ANY.ZONEMD
import dns.rdtypes.util
import dns.rrset
import dns.zone
import dns.zonetypes

from secdns import checks, wire
from secdns.checks import Finding
from secdns.checks.canonical import CanonicalWire, sig_time
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
_NSEC3_OPT_OUT = 0x01
_SUPPORTED_ZONEMD = {
    (dns.zonetypes.DigestScheme.SIMPLE, dns.zonetypes.DigestHashAlgorithm.SHA384),
    (dns.zonetypes.DigestScheme.SIMPLE, dns.zonetypes.DigestHashAlgorithm.SHA512),
}
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
    zone = _Dnssec(index or ZoneIndex.build(origin, records), now, sig_warn_days, workers)
    if wanted & {checks.RRSIG_VALIDITY.id, checks.SIGNATURE.id, checks.DENIAL_CHAIN.id}:
        zone.prepare()
    if checks.RRSIG_VALIDITY.id in wanted or checks.SIGNATURE.id in wanted:
        zone.check_signatures(
            validity=checks.RRSIG_VALIDITY.id in wanted, signatures=checks.SIGNATURE.id in wanted
        )
    if checks.DENIAL_CHAIN.id in wanted:
        zone.check_denial()
    if checks.ZONEMD.id in wanted:
        zone.check_zonemd(records)
    return zone.findings


class _Dnssec:
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
        self.reader = _RdataReader(index.origin)
        self.canonical = CanonicalWire(index.origin)
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

    # -- NSEC / NSEC3

    def check_denial(self) -> None:
        apex_text = self.index.origin_text
        if self.rrsets.get((self.apex, NSEC3PARAM)):
            self.check_nsec3()
        elif any(rdtype == NSEC for (_key, rdtype) in self.rrsets):
            self.check_nsec()
        elif any(rdtype == NSEC3 for (_key, rdtype) in self.rrsets):
            self.findings.append(
                checks.DENIAL_CHAIN.error(
                    apex_text,
                    "NSEC3PARAM",
                    "NSEC3 records but no NSEC3PARAM at the apex",
                    "RFC 5155 4",
                )
            )
        else:
            self.findings.append(
                checks.DENIAL_CHAIN.error(
                    apex_text, None, "signed zone without an NSEC or NSEC3 chain"
                )
            )

    def names(self) -> list[Key]:
        """Authoritative names with data (delegation points included), canonical order."""
        found = []
        for key, group in self.index.owners():
            if not self.authoritative(key):
                continue
            if all(rec.rdtype in (NSEC3, RRSIG) for rec in group):
                continue  # an NSEC3 owner (or an orphan signature)
            found.append(key)
        found.sort()
        return found

    def types_at(self, key: Key) -> set[int]:
        types = {rec.rdtype for rec in self.index.group(key)}
        if key in self.cuts:
            types &= {NS, DS, NSEC, RRSIG}  # glue and occluded data are not the parent's
        return types

    def check_nsec(self) -> None:
        names = self.names()
        expected = set(names)
        nsec_at: dict[Key, list[wire.Record]] = {}
        for (key, rdtype), records in self.rrsets.items():
            if rdtype == NSEC:
                nsec_at[key] = records
        for key, records in nsec_at.items():
            if key not in expected:
                self.findings.append(
                    checks.DENIAL_CHAIN.error(
                        self.owner(records[0]),
                        "NSEC",
                        "NSEC record at a name that is not authoritative data of the zone",
                    )
                )
        for position, key in enumerate(names):
            at_name = nsec_at.get(key)
            if not at_name:
                self.findings.append(
                    checks.DENIAL_CHAIN.error(
                        self.index.key_text(key), "NSEC", "no NSEC record: the chain is broken here"
                    )
                )
                continue
            owner = self.owner(at_name[0])
            if len(at_name) > 1:
                self.findings.append(
                    checks.DENIAL_CHAIN.error(
                        owner, "NSEC", f"{len(at_name)} NSEC records at one name"
                    )
                )
            fields = self.nsec_fields(at_name[0])
            if fields is None:
                continue
            next_key, next_text, listed = fields
            following = names[(position + 1) % len(names)]
            if next_key != following:
                self.findings.append(
                    checks.DENIAL_CHAIN.error(
                        owner,
                        "NSEC",
                        f"next name is {next_text}, expected "
                        f"{self.index.key_text(following)}: the chain is not closed",
                    )
                )
            self.compare_bitmap(owner, "NSEC", listed, self.types_at(key))

    def nsec_fields(self, rec: wire.Record) -> tuple[Key, str, set[int]] | None:
        """An NSEC's next name (key and absolute text) and listed types, from its text.

        The text is dnspython's rendering, read here without building an rdata
        object (a signed zone has one NSEC a name); dnspython reads anything else.
        """
        if rec.rdclass == dns.rdataclass.IN:
            following, _, types = rec.rdata.partition(" ")
            try:
                listed = self.bitmaps.get(types)
                if listed is None:
                    listed = {self.canonical.rdtype(t) for t in types.split(" ") if t}
                    self.bitmaps[types] = listed
                if "\\" not in following:
                    return self.index.name_key(following), self.index.absolute(following), listed
            except (ValueError, dns.exception.DNSException):
                pass
        nsec = self.rdata(rec)
        if not isinstance(nsec, dns.rdtypes.ANY.NSEC.NSEC):
            return None
        return _name_key(nsec.next), nsec.next.to_text(), _bitmap_types(nsec.windows)

    def compare_bitmap(self, owner: str, rdtype: str, listed: set[int], present: set[int]) -> None:
        if listed == present:
            return
        extra = sorted(wire.type_text(t) for t in listed - present)
        missing = sorted(wire.type_text(t) for t in present - listed)
        parts = []
        if missing:
            parts.append(f"omits {', '.join(missing)}")
        if extra:
            parts.append(f"lists absent {', '.join(extra)}")
        self.findings.append(
            checks.DENIAL_CHAIN.error(
                owner, rdtype, f"type bitmap {' and '.join(parts)}", "RFC 4034 4.1.2"
            )
        )

    def check_nsec3(self) -> None:
        apex_text = self.index.origin_text
        param = self.rdata(self.rrsets[(self.apex, NSEC3PARAM)][0])
        if not isinstance(param, dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM):
            return
        hashed: dict[str, tuple[wire.Record, dns.rdtypes.ANY.NSEC3.NSEC3]] = {}
        opt_out = False
        for (key, rdtype), records in self.rrsets.items():
            if rdtype != NSEC3:
                continue
            for rec in records:
                nsec3 = self.rdata(rec)
                if not isinstance(nsec3, dns.rdtypes.ANY.NSEC3.NSEC3):
                    continue
                if (nsec3.algorithm, nsec3.iterations, nsec3.salt) != (
                    param.algorithm,
                    param.iterations,
                    param.salt,
                ):
                    self.findings.append(
                        checks.DENIAL_CHAIN.error(
                            self.owner(rec),
                            "NSEC3",
                            "NSEC3 parameters differ from the NSEC3PARAM at the apex",
                            "RFC 5155 7.2",
                        )
                    )
                    continue
                opt_out |= bool(nsec3.flags & _NSEC3_OPT_OUT)
                if len(key) != len(self.apex) + 1:
                    self.findings.append(
                        checks.DENIAL_CHAIN.error(
                            self.owner(rec),
                            "NSEC3",
                            "NSEC3 record not directly below the apex",
                            "RFC 5155 7.1",
                        )
                    )
                    continue
                hashed[key[-1].decode("ascii", "replace").upper()] = (rec, nsec3)
        expected: dict[str, Key] = {}
        for key in self.nsec3_names():
            if opt_out and key in self.cuts and not self.rrsets.get((key, DS)):
                continue  # an unsigned delegation may be opted out
            name = dns.name.Name([*reversed(key), b""])
            digest = dns.dnssec.nsec3_hash(name, param.salt, param.iterations, param.algorithm)
            expected[digest] = key
        for digest, key in expected.items():
            if digest not in hashed:
                self.findings.append(
                    checks.DENIAL_CHAIN.error(
                        self.index.key_text(key),
                        "NSEC3",
                        f"no NSEC3 record for this name (hash {digest}): the chain is broken here",
                        "RFC 5155 7.1",
                    )
                )
        for digest, (rec, _nsec3) in hashed.items():
            if digest not in expected and not opt_out:
                self.findings.append(
                    checks.DENIAL_CHAIN.error(
                        self.owner(rec),
                        "NSEC3",
                        "NSEC3 record for a name that is not in the zone",
                        "RFC 5155 7.1",
                    )
                )
        order = sorted(hashed)
        for position, digest in enumerate(order):
            rec, nsec3 = hashed[digest]
            following = order[(position + 1) % len(order)]
            next_hash = base64.b32encode(nsec3.next).decode().translate(_B32_TO_HEX)
            if next_hash.rstrip("=") != following:
                self.findings.append(
                    checks.DENIAL_CHAIN.error(
                        self.owner(rec),
                        "NSEC3",
                        f"next hashed owner is {next_hash}, expected "
                        f"{following}: the chain is not closed",
                        "RFC 5155 7.1",
                    )
                )
            hashed_from = expected.get(digest)
            if hashed_from is not None:
                present = self.types_at(hashed_from) - {NSEC}
                self.compare_bitmap(self.owner(rec), "NSEC3", _bitmap_types(nsec3.windows), present)
        if not hashed:
            self.findings.append(
                checks.DENIAL_CHAIN.error(
                    apex_text,
                    "NSEC3",
                    "NSEC3PARAM at the apex but no NSEC3 records",
                    "RFC 5155 7.1",
                )
            )

    def nsec3_names(self) -> list[Key]:
        """Authoritative names and the empty non-terminals between them and the apex."""
        names = set(self.names())
        depth = len(self.apex)
        for key in list(names):
            for end in range(depth + 1, len(key)):
                names.add(key[:end])
        return sorted(names)

    # -- ZONEMD

    def check_zonemd(self, records: list[wire.Record]) -> None:
        apex = self.index.group(self.apex)
        zonemds = [self.rdata(rec) for rec in apex if rec.rdtype == ZONEMD]
        soa = next((rec for rec in apex if rec.rdtype == SOA), None)
        apex_text = self.index.origin_text
        if soa is None:
            return  # integrity.soa says why
        serial = wire.soa_fields(soa)[0]
        zone: dns.zone.Zone | None = None
        seen: set[tuple[int, int]] = set()
        for zonemd in zonemds:
            if not isinstance(zonemd, dns.rdtypes.ANY.ZONEMD.ZONEMD):
                continue
            kind = (zonemd.scheme, zonemd.hash_algorithm)
            label = f"scheme {zonemd.scheme}, hash algorithm {zonemd.hash_algorithm}"
            if kind in seen:
                self.findings.append(
                    checks.ZONEMD.error(
                        apex_text, "ZONEMD", f"more than one ZONEMD with {label}", "RFC 8976 2"
                    )
                )
                continue
            seen.add(kind)
            if zonemd.serial != serial:
                self.findings.append(
                    checks.ZONEMD.error(
                        apex_text,
                        "ZONEMD",
                        f"ZONEMD serial {zonemd.serial} is not the SOA serial "
                        f"{serial}: the digest is stale",
                    )
                )
                continue
            if kind not in _SUPPORTED_ZONEMD:
                self.findings.append(
                    checks.ZONEMD.warning(
                        apex_text, "ZONEMD", f"ZONEMD with {label} cannot be verified (unsupported)"
                    )
                )
                continue
            if zone is None:
                zone = self.build_zone(records)
                if zone is None:
                    return
            try:
                computed = zone.compute_digest(
                    dns.zonetypes.DigestHashAlgorithm(zonemd.hash_algorithm),
                    dns.zonetypes.DigestScheme(zonemd.scheme),
                )
            except (dns.exception.DNSException, ValueError) as err:
                self.findings.append(
                    checks.ZONEMD.error(apex_text, "ZONEMD", f"cannot compute the digest: {err}")
                )
                continue
            if computed.digest != zonemd.digest:
                algorithm = dns.zonetypes.DigestHashAlgorithm(zonemd.hash_algorithm).name
                self.findings.append(
                    checks.ZONEMD.error(
                        apex_text,
                        "ZONEMD",
                        f"{algorithm} digest does not match the zone's "
                        f"content (computed {computed.digest.hex()[:16]}..., ZONEMD has "
                        f"{zonemd.digest.hex()[:16]}...)",
                    )
                )

    def build_zone(self, records: list[wire.Record]) -> dns.zone.Zone | None:
        lines = [wire.record_line(rec) for rec in records if self.index.in_zone(rec.key)]
        try:
            return dns.zone.from_text(
                "\n".join(lines), origin=self.origin, relativize=False, check_origin=False
            )
        except (dns.exception.DNSException, ValueError) as err:
            self.findings.append(
                checks.ZONEMD.error(
                    self.index.origin_text, "ZONEMD", f"cannot compute the digest: {err}"
                )
            )
            return None


class _RdataReader:
    """Rdata objects from record text, as ``dns.rdata.from_text`` makes them.

    dnspython's tokenizer reads a character at a time, which makes the long
    RRSIG and NSEC3 records of a signed zone slow to parse; these, and NSEC, are
    built here straight from the canonical text (``secdns.wire`` and
    ``secdns.masterfile`` both write dnspython's rendering), with caches for the
    names, types and timestamps they repeat.  Anything unexpected falls back to
    dnspython.
    """

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.names: dict[str, dns.name.Name] = {}
        self.types: dict[str, int] = {}
        self.times: dict[str, int] = {}

    def rdata(self, rec: wire.Record) -> dns.rdata.Rdata | None:
        try:
            if rec.rdclass == dns.rdataclass.IN:
                if rec.rdtype == RRSIG:
                    return self.rrsig(rec.rdata)
                if rec.rdtype == NSEC3:
                    return self.nsec3(rec.rdata)
                if rec.rdtype == NSEC:
                    return self.nsec(rec.rdata)
        except (ValueError, KeyError, IndexError, binascii.Error, dns.exception.DNSException):
            pass  # not the canonical rendering after all: let dnspython read it
        try:
            return dns.rdata.from_text(
                dns.rdataclass.RdataClass.make(rec.rdclass),
                dns.rdatatype.RdataType.make(rec.rdtype),
                rec.rdata,
                origin=self.origin,
                relativize=False,
            )
        except (dns.exception.DNSException, ValueError):
            return None  # already reported by whoever parsed the zone

    def name(self, text: str) -> dns.name.Name:
        name = self.names.get(text)
        if name is None:
            name = self.names[text] = dns.name.from_text(text, self.origin)
        return name

    def rdtype(self, text: str) -> int:
        rdtype = self.types.get(text)
        if rdtype is None:
            rdtype = self.types[text] = dns.rdatatype.from_text(text)
        return rdtype

    def time(self, text: str) -> int:
        value = self.times.get(text)
        if value is None:
            value = self.times[text] = sig_time(text)
        return value

    def bitmap(self, fields: list[str]) -> list[tuple[int, bytes]]:
        types = [dns.rdatatype.RdataType.make(self.rdtype(f)) for f in fields]
        return list(dns.rdtypes.util.Bitmap.from_rdtypes(types).windows)

    def rrsig(self, text: str) -> dns.rdtypes.ANY.RRSIG.RRSIG:
        fields = text.split(" ")
        covered, algorithm, labels, ttl, expiration, inception, tag, signer = fields[:8]
        return dns.rdtypes.ANY.RRSIG.RRSIG(
            dns.rdataclass.IN,
            dns.rdatatype.RRSIG,
            self.rdtype(covered),
            int(algorithm),
            int(labels),
            int(ttl),
            self.time(expiration),
            self.time(inception),
            int(tag),
            self.name(signer),
            base64.b64decode("".join(fields[8:]), validate=True),
        )

    def nsec3(self, text: str) -> dns.rdtypes.ANY.NSEC3.NSEC3:
        fields = text.split(" ")
        algorithm, flags, iterations, salt, following = fields[:5]
        padded = following.upper().translate(_HEX_TO_B32)
        padded += "=" * (-len(padded) % 8)
        return dns.rdtypes.ANY.NSEC3.NSEC3(
            dns.rdataclass.IN,
            dns.rdatatype.NSEC3,
            int(algorithm),
            int(flags),
            int(iterations),
            b"" if salt == "-" else bytes.fromhex(salt),
            base64.b32decode(padded),
            self.bitmap(fields[5:]),
        )

    def nsec(self, text: str) -> dns.rdtypes.ANY.NSEC.NSEC:
        fields = text.split(" ")
        return dns.rdtypes.ANY.NSEC.NSEC(
            dns.rdataclass.IN, dns.rdatatype.NSEC, self.name(fields[0]), self.bitmap(fields[1:])
        )


_HEX_TO_B32 = str.maketrans("0123456789ABCDEFGHIJKLMNOPQRSTUV", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_B32_TO_HEX = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV")


def _name_key(name: dns.name.Name) -> Key:
    return tuple(label.lower() for label in reversed(name.labels[:-1]))


def _bitmap_types(windows: tuple[tuple[int, bytes], ...]) -> set[int]:
    types = set()
    for window, bitmap in windows:
        for index, octet in enumerate(bitmap):
            for bit in range(8):
                if octet & (0x80 >> bit):
                    types.add(window * 256 + index * 8 + bit)
    return types
