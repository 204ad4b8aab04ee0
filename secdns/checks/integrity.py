"""Integrity of one copy of a zone's data: pure checks over its records.

Everything named-checkzone rejects is an error here, and what it warns about
is a warning (``tests/test_checks.py`` runs the real named-checkzone over the
broken-zone corpus to keep it so); a few things BIND lets pass silently
(CNAME loops, data below a DNAME, occluded data, SOA timers) are reported too.

The work is linear in the number of records: one grouping pass
(:class:`~secdns.checks.zoneindex.ZoneIndex`), one pass over the owners, and
rdata text is parsed only for SOA, NS, CNAME, DNAME, MX and SRV records.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import dns.name
import dns.rdatatype

from secdns import checks, wire
from secdns.checks import Finding
from secdns.checks.zoneindex import Key, ZoneIndex, is_absolute_text

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
_NS_ONLY = frozenset({NS})
# Types whose rdata or placement a check looks at; every other record is only grouped.
_NOTED_TYPES = frozenset({SOA, NS, CNAME, DNAME, MX, SRV, DS, SPF})
# Types that may share a name with a CNAME (as BIND's dns_rdatatype_atcname says).
_CNAME_COMPANIONS = frozenset(
    {RRSIG, NSEC, dns.rdatatype.KEY, dns.rdatatype.SIG, dns.rdatatype.NXT, DNAME}
)
# What the parent side of a zone cut may hold (glue addresses are checked apart).
_AT_CUT_TYPES = frozenset({NS, DS, NSEC, RRSIG})

# SOA sanity (RFC 1912 2.2 suggests an expire of 2-4 weeks).
MIN_EXPIRE = 7 * 86400

_LDH_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?:\*\.)?{_LDH_LABEL}(?:\.{_LDH_LABEL})*\.?|\*")
_LDH_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.\n"
_DOTTED_QUAD = re.compile(r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\.")


class _Target(NamedTuple):
    """A domain name inside an NS, MX or SRV record (or an SOA's MNAME).

    A named tuple, not a frozen dataclass: a big zone makes one per NS, MX and SRV
    record, and a tuple is built several times faster."""

    record: wire.Record
    text: str
    key: Key


# ``_Target`` from one (record, text, key) tuple, without the Python-level __new__.
_new_target = functools.partial(tuple.__new__, _Target)


def check_integrity(
    origin: dns.name.Name, records: list[wire.Record], *, index: ZoneIndex | None = None
) -> list[Finding]:
    """Every integrity finding for the zone ``origin`` made of ``records``."""
    return _Integrity(index or ZoneIndex.build(origin, records)).run()


class _Integrity:
    def __init__(self, index: ZoneIndex) -> None:
        self.index = index
        self.findings: list[Finding] = []
        self.depth = len(index.origin_key)
        self.cuts: set[Key] = set()  # names below the apex with NS records
        self.cut_labels: frozenset[bytes] | None = None  # see cut_of
        self.dnames: set[Key] = set()
        self.cname_target: dict[Key, Key | None] = {}  # None: target is not a name
        self.apex_soa: list[wire.Record] = []
        self.ns: list[_Target] = []
        self.mx_srv: list[_Target] = []
        self.address_owners: list[str] = []  # relative owner text of A/AAAA owners
        self.good_hostnames: set[str] = set()  # rdata names already found valid
        self.name_keys: dict[str, Key] = {}  # rdata name text -> key

    # -- helpers

    def owner(self, rec: wire.Record) -> str:
        return self.index.absolute(rec.owner)

    def shown(self, target: _Target) -> str:
        return self.index.absolute(target.text)

    def target(self, rec: wire.Record, text: str) -> _Target | None:
        key = self.name_keys.get(text)
        if key is None:
            try:
                key = self.name_keys[text] = self.index.name_key(text)
            except ValueError:
                return None  # the parser accepted it; nothing more to say here
        return _new_target((rec, text, key))

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
        the pass over owners is done: ``check_targets`` sets ``cut_labels``).  When
        every cut is a child of the apex, as in most zones, that is one look-up of
        the label below the apex."""
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

    def run(self) -> list[Finding]:
        apex = self.index.origin_key
        address_owners = self.address_owners
        # Every owner's first record (for most owners of a big zone, the only one)...
        for key, rec in self.index.first.items():
            rdtype = rec.rdtype
            if rdtype == A or rdtype == AAAA:
                address_owners.append(rec.owner)
            elif rdtype in _NOTED_TYPES:
                self.note(key, rec, key == apex)
            if "*" in rec.owner:
                self.wildcard(key, self.index.group(key))
        # ...then the names with several records.
        for key, group in self.index.groups.items():
            self.owner_group(key, group, key == apex)
        self.check_soa()
        self.check_apex_ns()
        self.check_cname_loops()
        self.check_targets()
        self.check_occluded()
        self.check_out_of_zone()
        self.check_hostnames()
        return self.findings

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
            if position and rdtype in _NOTED_TYPES:
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
                wire.type_text(t) for t in ttls if t not in _CNAME_COMPANIONS and t != CNAME
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
        elif not self.has_type(key, _NS_ONLY):
            self.findings.append(
                checks.DS_PLACEMENT.warning(
                    self.owner(rec), "DS", "DS record at a name that is not a delegation"
                )
            )

    # -- zone-wide checks

    def check_soa(self) -> None:
        apex = self.index.origin_text
        distinct = {rec.rdata.lower(): rec for rec in self.apex_soa}
        if not distinct:
            self.findings.append(checks.SOA.error(apex, "SOA", "no SOA record at the apex"))
            return
        if len(distinct) > 1:
            self.findings.append(
                checks.SOA.error(
                    apex, "SOA", f"{len(distinct)} SOA records at the apex; exactly one is allowed"
                )
            )
        soa = self.apex_soa[0]
        try:
            _serial, refresh, retry, expire, _minimum = wire.soa_fields(soa)
        except ValueError:
            return
        mname = soa.rdata.split(" ", 1)[0]
        self.hostname_target(_Target(soa, mname, ()), "SOA", "MNAME")
        problems = []
        if retry >= refresh:
            problems.append(f"retry ({retry}) is not shorter than refresh ({refresh})")
        if refresh >= expire:
            problems.append(f"refresh ({refresh}) is not shorter than expire ({expire})")
        if expire < MIN_EXPIRE:
            problems.append(
                f"expire ({expire}) is shorter than a week: secondaries drop the "
                "zone after that long without the primary (2-4 weeks suggested)"
            )
        for problem in problems:
            self.findings.append(checks.SOA_TIMERS.warning(apex, "SOA", problem))

    def check_apex_ns(self) -> None:
        if not self.has_type(self.index.origin_key, _NS_ONLY):
            self.findings.append(
                checks.APEX_NS.error(self.index.origin_text, "NS", "no NS records at the apex")
            )

    def check_cname_loops(self) -> None:
        targets = self.cname_target
        done: set[Key] = set()
        for start in targets:
            path: list[Key] = []
            on_path: set[Key] = set()
            key: Key | None = start
            while key is not None and key in targets and key not in done:
                if key in on_path:
                    loop = path[path.index(key) :]
                    first = min(loop)
                    turn = loop.index(first)
                    loop = loop[turn:] + loop[:turn] + [first]
                    chain = " -> ".join(self.index.key_text(k) for k in loop)
                    self.findings.append(
                        checks.CNAME_LOOP.error(
                            self.index.key_text(first), "CNAME", f"CNAME loop: {chain}"
                        )
                    )
                    break
                on_path.add(key)
                path.append(key)
                key = targets[key]
            done.update(path)

    def check_targets(self) -> None:
        """NS, MX and SRV targets: CNAMEs, addresses, glue, host name syntax."""
        apex = self.index.origin_key
        self.cut_labels = _child_labels(self.cuts, self.depth)
        good = self.good_hostnames
        if "*" not in self.index.origin_text and _HOSTNAME.fullmatch(self.index.origin_text):
            good |= _plain_hostnames(t.text for targets in (self.ns, self.mx_srv) for t in targets)
        for target in self.ns:
            if target.text not in good:
                self.hostname_target(target, "NS")
            if not self.index.in_zone(target.key):
                continue
            at_apex = target.record.key == apex
            cut = self.cut_of(target.key)
            if cut is not None:
                if not self.has_address(target.key):
                    self.missing_glue(target, cut, at_apex)
                continue
            if target.key in self.cname_target:
                problem = f"name server {self.shown(target)} is a CNAME"
                check = checks.TARGET_IS_CNAME
            elif not self.redirected(target.key) and not self.has_address(target.key):
                problem = f"name server {self.shown(target)} has no address records (A or AAAA)"
                check = checks.TARGET_ADDRESS
            else:
                continue
            owner = self.owner(target.record)
            # BIND refuses a zone whose own name servers are broken; a delegation's, it warns.
            self.findings.append(
                check.error(owner, "NS", problem)
                if at_apex
                else check.warning(owner, "NS", problem)
            )
        for target in self.mx_srv:
            rdtype = wire.type_text(target.record.rdtype)
            if target.text not in good:
                self.hostname_target(target, rdtype)
            if not self.index.in_zone(target.key):
                continue
            if self.cut_of(target.key) or self.redirected(target.key):
                continue  # the name lives in a child zone, or is redirected
            rfc = "RFC 2782" if target.record.rdtype == SRV else None
            if target.key in self.cname_target:
                self.findings.append(
                    checks.TARGET_IS_CNAME.warning(
                        self.owner(target.record),
                        rdtype,
                        f"{rdtype} target {self.shown(target)} is a CNAME",
                        rfc,
                    )
                )
            elif not self.has_address(target.key):
                self.findings.append(
                    checks.TARGET_ADDRESS.warning(
                        self.owner(target.record),
                        rdtype,
                        f"{rdtype} target {self.shown(target)} has no address records (A or AAAA)",
                        rfc or "RFC 5321 5.1",
                    )
                )

    def missing_glue(self, target: _Target, cut: Key, at_apex: bool) -> None:
        delegation = target.record.key
        name = self.shown(target)
        if not at_apex and (
            target.key == delegation or self.index.is_below(target.key, delegation)
        ):
            message = (
                f"name server {name} is inside the delegated zone but has no glue "
                "address records (A or AAAA)"
            )
        else:
            message = (
                f"name server {name} is inside the delegation "
                f"{self.index.key_text(cut)} and has no glue address records (A or AAAA)"
            )
        self.findings.append(checks.MISSING_GLUE.warning(self.owner(target.record), "NS", message))

    def check_occluded(self) -> None:
        """Data at or below a zone cut that is not glue, and data below a DNAME."""
        if not self.cuts and not self.dnames:
            return
        blockers = self.cuts | self.dnames
        glue = {target.key for target in self.ns}
        shortest = min(len(key) for key in blockers)
        first = self.index.first
        groups = self.index.groups
        only_cuts = not self.dnames
        for key in _below_some(first, blockers, self.depth):
            if only_cuts and key in glue and self.has_only_addresses(key):
                continue  # (glue: most names below the cuts of a big zone)
            above = None
            for end in range(shortest, len(key)):
                if key[:end] in blockers:
                    above = key[:end]
                    break
            if above is None:
                continue
            group = groups.get(key) or (first[key],)
            if above in self.dnames and above not in self.cuts:
                for rdtype in _types(group):
                    self.findings.append(
                        checks.OCCLUDED.error(
                            self.owner(group[0]),
                            wire.type_text(rdtype),
                            f"data below the DNAME at {self.index.key_text(above)}: "
                            "it can never be answered",
                            "RFC 6672 2.4",
                        )
                    )
                continue
            for rdtype in _types(group):
                if rdtype in ADDRESS_TYPES and key in glue:
                    continue
                self.findings.append(
                    checks.OCCLUDED.warning(
                        self.owner(group[0]),
                        wire.type_text(rdtype),
                        f"data below the delegation at {self.index.key_text(above)} "
                        "is not glue: the child zone answers for this name",
                    )
                )
        for key in self.cuts:
            if self.enclosing(key, blockers, inclusive=False) is None:
                self.at_cut(key, self.index.group(key), glue)

    def at_cut(self, key: Key, group: Sequence[wire.Record], glue: set[Key]) -> None:
        for rdtype in _types(group):
            if rdtype in _AT_CUT_TYPES or (rdtype in ADDRESS_TYPES and key in glue):
                continue
            self.findings.append(
                checks.OCCLUDED.warning(
                    self.owner(group[0]),
                    wire.type_text(rdtype),
                    "data at a delegation point other than NS, DS and glue: the child zone "
                    "answers for this name",
                )
            )

    def check_out_of_zone(self) -> None:
        seen: set[tuple[Key, int]] = set()
        for rec in self.index.out_of_zone:
            if (rec.key, rec.rdtype) in seen:
                continue
            seen.add((rec.key, rec.rdtype))
            self.findings.append(
                checks.OUT_OF_ZONE.warning(
                    self.owner(rec),
                    wire.type_text(rec.rdtype),
                    f"outside the zone {self.index.origin_text}: ignored (BIND: ignoring "
                    "out-of-zone data)",
                )
            )

    # -- host names (BIND's check-names)

    def check_hostnames(self) -> None:
        for text in _invalid_hostnames(self.address_owners):
            absolute = self.index.absolute(text)
            group = self.index.group(self.index.name_key(absolute))
            rdtype = next(
                (wire.type_text(r.rdtype) for r in group if r.rdtype in ADDRESS_TYPES), None
            )
            self.findings.append(
                checks.HOSTNAME.warning(
                    absolute,
                    rdtype,
                    "the owner of an address record is not a valid host name "
                    "(letters, digits, hyphens)",
                )
            )
        if "@" in self.address_owners and not _HOSTNAME.fullmatch(self.index.origin_text):
            self.findings.append(
                checks.HOSTNAME.warning(
                    self.index.origin_text,
                    None,
                    "the owner of an address record is not a "
                    "valid host name (letters, digits, hyphens)",
                )
            )

    def hostname_target(self, target: _Target, rdtype: str, field: str = "target") -> None:
        text = target.text
        if text == "@" or text == "." or text in self.good_hostnames:
            return
        if is_absolute_text(text) and _DOTTED_QUAD.fullmatch(text):
            self.findings.append(
                checks.HOSTNAME.warning(
                    self.owner(target.record),
                    rdtype,
                    f"{rdtype} {field} {text} is an IPv4 address written as a name; it must name "
                    "a host",
                )
            )
            return
        absolute = self.index.absolute(text)
        if not _HOSTNAME.fullmatch(absolute) or absolute.startswith("*"):
            self.findings.append(
                checks.HOSTNAME.warning(
                    self.owner(target.record),
                    rdtype,
                    f"{rdtype} {field} {absolute} is not a valid host name (letters, digits, "
                    "hyphens)",
                )
            )
        else:
            self.good_hostnames.add(text)


def _child_labels(blockers: set[Key], depth: int) -> frozenset[bytes] | None:
    """The labels of ``blockers`` below the apex if they all are children of the apex
    (``depth`` labels deep), else None."""
    if all(len(key) == depth + 1 for key in blockers):
        return frozenset(key[depth] for key in blockers)
    return None


def _below_some(keys: Iterable[Key], blockers: set[Key], depth: int) -> list[Key]:
    """The in-zone keys strictly below some key of ``blockers``, in their order.

    One comprehension per depth that blockers have (usually one: the delegations
    one label below the apex, ``depth`` labels deep, when a label is enough),
    instead of a loop over every depth for every name."""
    labels = _child_labels(blockers, depth)
    if labels is not None:
        return [key for key in keys if len(key) > depth + 1 and key[depth] in labels]
    depths = sorted({len(key) for key in blockers})
    if len(depths) == 1:
        depth = depths[0]
        return [key for key in keys if len(key) > depth and key[:depth] in blockers]
    keys = list(keys)
    below: set[Key] = set()
    for depth in depths:
        below.update(key for key in keys if len(key) > depth and key[:depth] in blockers)
    return [key for key in keys if key in below]


def _types(group: Sequence[wire.Record]) -> list[int]:
    """The distinct types of a name's records, in order of first appearance."""
    return list(dict.fromkeys(rec.rdtype for rec in group))


def _plain_hostnames(texts: Iterable[str]) -> set[str]:
    """Target texts (as records write them) that one scan shows to be valid host
    names, relative ones given an origin that is one; empty if the scan finds
    anything unusual (a '*', an odd hyphen, an empty label...), and never a text
    that starts with a digit (an absolute one may be an address written as a name).
    Each text left out is checked alone by ``hostname_target``."""
    unique = set(texts)
    unique.discard("@")
    unique.discard(".")
    blob = "\n".join(unique).encode("ascii", "replace")
    if (
        not blob
        or blob.translate(None, _LDH_BYTES)
        or b".." in blob
        or b"\n." in blob
        or blob.startswith((b".", b"-", b"\n"))
        or blob.endswith((b"-", b"\n"))
        or b"-." in blob
        or b".-" in blob
        or b"\n-" in blob
        or b"-\n" in blob
        or b"\n\n" in blob
    ):
        return set()
    return {text for text in unique if not text[0].isdigit()}


def _invalid_hostnames(owners: list[str]) -> list[str]:
    """Owner texts (relative, as records write them) that are not host names.

    One scan of the joined text settles the usual all-clean case; only if it finds
    something suspicious are the names matched one by one.
    """
    texts = [text for text in owners if text != "@"]
    blob = "\n".join(texts).encode("ascii", "replace")
    stars = blob.count(b"*")
    suspicious = (
        bool(blob.translate(None, _LDH_BYTES).replace(b"*", b""))
        or (
            b"-" in blob
            and (
                b"-." in blob
                or b".-" in blob
                or b"\n-" in blob
                or b"-\n" in blob
                or blob.startswith(b"-")
                or blob.endswith(b"-")
            )
        )
        or (
            stars
            and stars
            != (
                blob.count(b"\n*.")
                + blob.count(b"\n*\n")
                + blob.startswith(b"*.")
                + blob.startswith(b"*\n")
                + blob.endswith(b"\n*")
                + (blob == b"*")
            )
        )
    )
    if not suspicious:
        return []
    return [text for text in texts if not _HOSTNAME.fullmatch(text)]
