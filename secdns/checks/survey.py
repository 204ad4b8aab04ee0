"""The integrity checks' one pass over a zone's owners (:class:`Survey`).

It reports what one record or one name shows on its own (an SOA below the apex,
a DS outside a delegation, SPF without TXT, TTLs differing within an RRset, CNAME
or DNAME beside other data, wildcard oddities), and collects what the zone-wide
checks of :mod:`secdns.checks.integrity` need.  Rdata text is parsed only for SOA,
NS, CNAME, DNAME, MX and SRV records.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import dns.rdatatype

from secdns import checks, wire
from secdns.checks import Finding
from secdns.checks.zoneindex import Key, ZoneIndex

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
NS = dns.rdatatype.NS
CNAME = dns.rdatatype.CNAME
SOA = dns.rdatatype.SOA
MX = dns.rdatatype.MX
TXT = dns.rdatatype.TXT
SRV = dns.rdatatype.SRV
DNAME = dns.rdatatype.DNAME
DS = dns.rdatatype.DS
RRSIG = dns.rdatatype.RRSIG
NSEC = dns.rdatatype.NSEC
SPF = dns.rdatatype.SPF

ADDRESS_TYPES = frozenset({A, AAAA})
NS_ONLY = frozenset({NS})
# Types whose rdata or placement a check looks at; every other record is only grouped.
NOTED_TYPES = frozenset({SOA, NS, CNAME, DNAME, MX, SRV, DS, SPF})
# Types that may share a name with a CNAME (as BIND's dns_rdatatype_atcname says).
CNAME_COMPANIONS = frozenset(
    {RRSIG, NSEC, dns.rdatatype.KEY, dns.rdatatype.SIG, dns.rdatatype.NXT, DNAME}
)
# What the parent side of a zone cut may hold (glue addresses are checked apart).
AT_CUT_TYPES = frozenset({NS, DS, NSEC, RRSIG})


class Target(NamedTuple):
    """A domain name inside an NS, MX or SRV record (or an SOA's MNAME).

    A named tuple, not a frozen dataclass: a big zone makes one per NS, MX and SRV
    record, and a tuple is built several times faster."""

    record: wire.Record
    text: str
    key: Key


# ``Target`` from one (record, text, key) tuple, without the Python-level __new__.
new_target = functools.partial(tuple.__new__, Target)


class Survey:
    """What one pass over a zone's owners found: findings about single records and
    names, and what the zone-wide checks need (zone cuts, DNAMEs, CNAME targets,
    NS/MX/SRV targets, the apex SOA, the owners of addresses)."""

    def __init__(self, index: ZoneIndex) -> None:
        self.index = index
        self.findings: list[Finding] = []
        self.depth = len(index.origin_key)
        self.cuts: set[Key] = set()  # names below the apex with NS records
        self.cut_labels: frozenset[bytes] | None = None  # see cut_of
        self.dnames: set[Key] = set()
        self.cname_target: dict[Key, Key | None] = {}  # None: target is not a name
        self.apex_soa: list[wire.Record] = []
        self.ns: list[Target] = []
        self.mx_srv: list[Target] = []
        self.address_owners: list[str] = []  # relative owner text of A/AAAA owners
        self.good_hostnames: set[str] = set()  # rdata names already found valid
        self.name_keys: dict[str, Key] = {}  # rdata name text -> key

    # -- helpers

    def owner(self, rec: wire.Record) -> str:
        return self.index.absolute(rec.owner)

    def shown(self, target: Target) -> str:
        return self.index.absolute(target.text)

    def target(self, rec: wire.Record, text: str) -> Target | None:
        key = self.name_keys.get(text)
        if key is None:
            try:
                key = self.name_keys[text] = self.index.name_key(text)
            except ValueError:
                return None  # the parser accepted it; nothing more to say here
        return new_target((rec, text, key))

    def has_type(self, key: Key, types: frozenset[int]) -> bool:
        return any(rec.rdtype in types for rec in self.index.group(key))

    def has_address(self, key: Key) -> bool:
        """``has_type(key, ADDRESS_TYPES)``, without building a group for the usual
        owner (one A record, or an A record first)."""
        rec = self.index.first.get(key)
        if rec is None:
            return False
        if rec.rdtype in ADDRESS_TYPES:
            return True
        group = self.index.groups.get(key)
        return group is not None and any(r.rdtype in ADDRESS_TYPES for r in group)

    def has_only_addresses(self, key: Key) -> bool:
        group = self.index.groups.get(key)
        if group is None:
            return self.index.first[key].rdtype in ADDRESS_TYPES
        return all(rec.rdtype in ADDRESS_TYPES for rec in group)

    def enclosing(self, key: Key, blockers: set[Key], *, inclusive: bool) -> Key | None:
        """The highest name of ``blockers`` from the apex down to just above ``key``
        (or down to ``key`` itself with ``inclusive``)."""
        if not blockers:
            return None
        stop = len(key) + 1 if inclusive else len(key)
        for end in range(self.depth, stop):
            if key[:end] in blockers:
                return key[:end]
        return None

    def cut_of(self, key: Key) -> Key | None:
        """``enclosing(key, self.cuts, inclusive=True)`` for an in-zone ``key`` (once
        the pass over owners is done: :func:`secdns.checks.targets.check_targets`
        sets ``cut_labels``).  When every cut is a child of the apex, as in most
        zones, that is one look-up of the label below the apex."""
        labels = self.cut_labels
        if labels is None:
            return self.enclosing(key, self.cuts, inclusive=True)
        depth = self.depth
        if len(key) > depth and key[depth] in labels:
            return key[: depth + 1]
        return None

    def redirected(self, key: Key) -> bool:
        """Is ``key`` below a DNAME (so that it can hold no data)?"""
        return bool(self.dnames) and self.enclosing(key, self.dnames, inclusive=False) is not None

    # -- the pass over owners

    def run(self) -> None:
        """The pass over owners: every owner's first record, then the names with several."""
        apex = self.index.origin_key
        address_owners = self.address_owners
        # Every owner's first record (for most owners of a big zone, the only one)...
        for key, rec in self.index.first.items():
            rdtype = rec.rdtype
            if rdtype == A or rdtype == AAAA:
                address_owners.append(rec.owner)
            elif rdtype in NOTED_TYPES:
                self.note(key, rec, key == apex)
            if "*" in rec.owner:
                self.wildcard(key, self.index.group(key))
        # ...then the names with several records.
        for key, group in self.index.groups.items():
            self.owner_group(key, group, key == apex)

    def note(self, key: Key, rec: wire.Record, at_apex: bool) -> None:
        """Collect what later checks need from one record of a noted type."""
        rdtype = rec.rdtype
        if rdtype == NS:
            if not at_apex:
                self.cuts.add(key)
            found = self.target(rec, rec.rdata)
            if found is not None:
                self.ns.append(found)
        elif rdtype == CNAME:
            if key not in self.cname_target:
                found = self.target(rec, rec.rdata)
                self.cname_target[key] = found.key if found else None
        elif rdtype == MX:
            exchange = rec.rdata.partition(" ")[2]
            if exchange != ".":  # a null MX (RFC 7505)
                found = self.target(rec, exchange)
                if found is not None:
                    self.mx_srv.append(found)
        elif rdtype == SRV:
            fields = rec.rdata.split(" ")
            if len(fields) == 4 and fields[3] != ".":
                found = self.target(rec, fields[3])
                if found is not None:
                    self.mx_srv.append(found)
        elif rdtype == SOA:
            if at_apex:
                self.apex_soa.append(rec)
            else:
                self.findings.append(
                    checks.SOA.error(
                        self.owner(rec),
                        "SOA",
                        "SOA record below the apex (BIND: not at top of "
                        "zone); a zone has its SOA only at its apex",
                    )
                )
        elif rdtype == DNAME:
            self.dnames.add(key)
        elif rdtype == DS:
            self.check_ds(key, rec, at_apex)
        elif rdtype == SPF and key not in self.index.groups:  # (else see owner_group)
            self.findings.append(
                checks.SPF.warning(
                    self.owner(rec),
                    "SPF",
                    "SPF record without a TXT record: SPF policies are "
                    "read from TXT only (the SPF type is obsolete)",
                )
            )

    def owner_group(self, key: Key, group: list[wire.Record], at_apex: bool) -> None:
        """Checks of a name that owns several records (the first one is already noted)."""
        ttls: dict[int, int] = {}  # type -> TTL of its first record
        sig_ttls: dict[str, int] = {}  # RRSIG RRsets are per covered type
        mismatched: list[int | str] = []
        for position, rec in enumerate(group):
            rdtype = rec.rdtype
            if rdtype == RRSIG:
                covered = rec.rdata.partition(" ")[0]
                if sig_ttls.setdefault(covered, rec.ttl) != rec.ttl and covered not in mismatched:
                    mismatched.append(covered)
                continue
            if ttls.setdefault(rdtype, rec.ttl) != rec.ttl and rdtype not in mismatched:
                mismatched.append(rdtype)
            if position and rdtype in NOTED_TYPES:
                self.note(key, rec, at_apex)
        if group[0].rdtype not in ADDRESS_TYPES and (A in ttls or AAAA in ttls):
            self.address_owners.append(group[0].owner)
        if not (mismatched or SPF in ttls or CNAME in ttls or DNAME in ttls):
            return  # (most names: nothing to report, and no owner text to make)
        owner = self.owner(group[0])
        if SPF in ttls and TXT not in ttls:
            self.findings.append(
                checks.SPF.warning(
                    owner,
                    "SPF",
                    "SPF record without a TXT record: SPF policies are read "
                    "from TXT only (the SPF type is obsolete)",
                )
            )
        for which in mismatched:
            if isinstance(which, str):
                rrset = f"RRSIG {which}"
                values = sorted(
                    {
                        rec.ttl
                        for rec in group
                        if rec.rdtype == RRSIG and rec.rdata.partition(" ")[0] == which
                    }
                )
            else:
                rrset = wire.type_text(which)
                values = sorted({rec.ttl for rec in group if rec.rdtype == which})
            self.findings.append(
                checks.TTL_MISMATCH.warning(
                    owner,
                    rrset,
                    "records of one RRset have different TTLs "
                    f"({', '.join(map(str, values))}); servers use one (BIND: the first)",
                )
            )
        if CNAME in ttls:
            self.singleton(owner, group, CNAME, checks.CNAME_AND_OTHER_DATA)
            others = sorted(
                wire.type_text(t) for t in ttls if t not in CNAME_COMPANIONS and t != CNAME
            )
            if others:
                self.findings.append(
                    checks.CNAME_AND_OTHER_DATA.error(
                        owner, "CNAME", f"CNAME and other data ({', '.join(others)}) at one name"
                    )
                )
        if DNAME in ttls:
            self.singleton(owner, group, DNAME, checks.DNAME, "RFC 6672 2.4")
            if CNAME in ttls:
                self.findings.append(
                    checks.DNAME.error(owner, "DNAME", "DNAME beside a CNAME at one name")
                )

    def singleton(
        self,
        owner: str,
        group: list[wire.Record],
        rdtype: int,
        check: checks.Check,
        rfc: str | None = None,
    ) -> None:
        distinct = {rec.rdata.lower() for rec in group if rec.rdtype == rdtype}
        if len(distinct) > 1:
            name = wire.type_text(rdtype)
            self.findings.append(
                check.error(
                    owner,
                    name,
                    f"{len(distinct)} {name} records at one name; only one is allowed",
                    rfc,
                )
            )

    # -- per-name checks

    def wildcard(self, key: Key, group: Sequence[wire.Record]) -> None:
        if b"*" not in key:
            return
        owner = self.owner(group[0])
        if key[-1] != b"*":
            self.findings.append(
                checks.WILDCARD.warning(
                    owner,
                    None,
                    "'*' label in the middle of a name: it is not a wildcard "
                    "(non-terminal wildcard)",
                    "RFC 4592 2.1.1",
                )
            )
            return
        types = {rec.rdtype for rec in group}
        if NS in types:
            self.findings.append(
                checks.WILDCARD.error(owner, "NS", "NS records at a wildcard name", "RFC 4592 4.2")
            )
        if DNAME in types:
            self.findings.append(
                checks.WILDCARD.warning(
                    owner, "DNAME", "DNAME record at a wildcard name", "RFC 4592 4.4"
                )
            )

    def check_ds(self, key: Key, rec: wire.Record, at_apex: bool) -> None:
        if at_apex:
            self.findings.append(
                checks.DS_PLACEMENT.error(
                    self.owner(rec), "DS", "DS record at the apex: DS belongs in the parent zone"
                )
            )
        elif not self.has_type(key, NS_ONLY):
            self.findings.append(
                checks.DS_PLACEMENT.warning(
                    self.owner(rec), "DS", "DS record at a name that is not a delegation"
                )
            )
