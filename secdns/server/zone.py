"""Zones held in memory for answering: immutable versions with copy-on-write buckets.

A :class:`ZoneVersion` maps each owner name (lowercased absolute text, the
*key*) to its master-file lines (the canonical ``owner TTL IN TYPE rdata`` form
of :mod:`secdns.zonefile`) and to the number of owner names below it, so empty
non-terminals are known without a sorted index.  The map is split into
buckets; a new version made by an IXFR copies the bucket list (pointers) and
only the buckets it touches, so applying a small delta costs O(delta), never a
copy of the zone.  Readers (queries, AXFR out) keep the version they started
with: no reader ever sees half an IXFR.

Lines are parsed into dnspython rdatas only when a query or transfer needs a
node, so loading a million-record store file is a split and a dict build.

The module is past the house size (~820 lines) because the version, its builders
(``from_lines``/``from_groups``/``from_buckets``, the names-below counts, the
buckets) and :meth:`ZoneVersion.apply` share the entry layout and
:func:`line_fields`; the seam for the next split is the node parsing
(``fast_rdata``, ``fast_dnssec``, ``parse_node``, ``_A``/``_AAAA``/``_RRSIG``/``_NSEC``,
~200 lines), which needs ``line_fields`` and :class:`Node` moved with it to avoid an
import cycle.
"""

from __future__ import annotations

import binascii
import collections
import dataclasses
import itertools
import socket
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TypeVar

import dns.dnssectypes
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.DNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

from secdns.dnssecwire import RRSIG_HEAD, rrsig_fields, type_bitmap
from secdns.errors import IxfrNotApplicable, ZoneFileError

Entry = tuple[tuple[str, ...], int]  # (lines, number of owner names strictly below)
EMPTY: Entry = ((), 0)

_versions = itertools.count(1)
_T = TypeVar("_T")


def name_key(name: dns.name.Name) -> str:
    """The lookup key of a name: its absolute text, lowercased."""
    return name.to_text().lower()


def parent_key(key: str) -> str:
    """The key of the parent name (``a.b.`` -> ``b.``)."""
    if "\\" not in key:
        return key.split(".", 1)[1] or "."
    return name_key(dns.name.from_text(key).parent())


def line_fields(line: str) -> tuple[str, int, str, str]:
    """(owner, ttl, type, rdata) of a canonical line."""
    owner, ttl, _cls, rtype, rdata = line.split(" ", 4)
    return owner, int(ttl), rtype, rdata


@dataclasses.dataclass(slots=True)
class ChangeTally:
    """Records an IXFR removed and added, counted as the store counts them
    (:func:`secdns.zonefile.apply_keyed_delta`): a record added again exactly as it
    is (NSD re-sends a whole node) is no change; one added again with another TTL
    replaces the old (one removed, one added)."""

    removed: int = 0
    added: int = 0


@dataclasses.dataclass(slots=True)
class Node:
    """One owner name, parsed: RRsets by type (RRSIGs by the type they cover)."""

    name: dns.name.Name
    rrsets: dict[int, dns.rrset.RRset]
    sigs: dict[int, dns.rrset.RRset]

    def get(self, rdtype: int) -> dns.rrset.RRset | None:
        return self.rrsets.get(rdtype)


class ZoneVersion:
    """An immutable snapshot of a zone."""

    __slots__ = (
        "origin",
        "origin_key",
        "origin_text",
        "serial",
        "buckets",
        "mask",
        "names",
        "records",
        "number",
        "_sorted_cache",
        "_answer_index",
        "carried",
        "kept",
    )

    def __init__(
        self,
        origin: dns.name.Name,
        buckets: list[dict[str, Entry]],
        serial: int,
        names: int,
        records: int,
        origin_text: str | None = None,
    ) -> None:
        self.origin = origin
        # (dnspython's to_text costs ~10 us: a builder that has it passes it on)
        self.origin_text = origin.to_text() if origin_text is None else origin_text
        self.origin_key = self.origin_text.lower()
        self.buckets = buckets
        self.mask = len(buckets) - 1
        self.serial = serial
        self.names = names
        self.records = records
        self.number = next(_versions)
        self._sorted_cache: object | None = None
        self._answer_index: object | None = None
        # what an earlier version's answer index hands on, and the owners changed since
        # (:meth:`apply`): its sorted denial owners are brought up to date, not rebuilt
        self.carried: tuple[object, frozenset[str]] | None = None
        # what the prepared path keeps of this version (its apex blocks, its negative
        # answers' SOA bytes): kept with the version, not in a table of every zone's
        self.kept: dict[tuple[object, ...], object] | None = None

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def from_lines(
        cls, origin: dns.name.Name, lines: Iterable[str], origin_text: str | None = None
    ) -> ZoneVersion:
        """Build from canonical master-file lines (any order; sorted is fastest);
        ``origin_text``: ``origin.to_text()``, when the caller has it."""
        if origin_text is None:
            origin_text = origin.to_text()
        origin_key = origin_text.lower()
        suffix = "." + origin_text if origin_text != "." else "."
        groups: dict[str, list[str]] = {}
        prev_owner: str | None = None
        current: list[str] = []
        for line in lines:
            if not line or line[0] in ";$":
                continue
            owner = line[: line.find(" ")]
            if owner == prev_owner:
                current.append(line)
                continue
            prev_owner = owner
            if owner == "@":
                key = origin_key
            elif owner.endswith("."):
                cut = line[:80] + ("..." if len(line) > 80 else "")
                raise ZoneFileError(f"record outside the zone {origin_text}: {cut}")
            else:
                key = (owner + suffix).lower()
            current = groups.setdefault(key, [])
            current.append(line)
        return cls.from_groups(origin, groups, origin_text)

    @classmethod
    def from_groups(
        cls, origin: dns.name.Name, groups: dict[str, list[str]], origin_text: str | None = None
    ) -> ZoneVersion:
        """Build from each owner's key (:func:`name_key`) and canonical lines (serve's
        loader groups a master file's records as it reads them: secdns.server.load)."""
        if origin_text is None:
            origin_text = origin.to_text()
        origin_key = origin_text.lower()
        records = sum(map(len, groups.values()))
        below = _names_below(groups, origin_key)
        size = bucket_count(len(groups) + len(below))
        if size == 1:  # a small zone (10,000 of them at a start): one dict, no hashing here
            bucket = {key: (tuple(group), below.pop(key, 0)) for key, group in groups.items()}
            for key, count in below.items():
                bucket[key] = ((), count)
            buckets = [bucket]
        else:
            buckets = [{} for _ in range(size)]
            mask = size - 1
            for key, group in groups.items():
                buckets[hash(key) & mask][key] = (tuple(group), below.pop(key, 0))
            for key, count in below.items():
                buckets[hash(key) & mask][key] = ((), count)
        return cls.from_buckets(origin, buckets, len(groups), records, origin_text)

    @classmethod
    def from_buckets(
        cls,
        origin: dns.name.Name,
        buckets: list[dict[str, Entry]],
        names: int,
        records: int,
        origin_text: str | None = None,
    ) -> ZoneVersion:
        """Build from buckets laid out as :meth:`from_groups` lays them out (serve's
        loader builds them in several processes: secdns.server.loadsplit)."""
        if origin_text is None:
            origin_text = origin.to_text()
        origin_key = origin_text.lower()
        serial = None
        apex = buckets[hash(origin_key) & (len(buckets) - 1)].get(origin_key)
        for ln in apex[0] if apex is not None else ():
            fields = line_fields(ln)
            if fields[2] == "SOA":
                serial = int(fields[3].split()[2])  # the last SOA line's, as before
        if serial is None:
            raise ZoneFileError(f"zone {origin_text} has no SOA at its apex")
        return cls(origin, buckets, serial, names, records, origin_text)

    # --- reading ----------------------------------------------------------------------------
    def entry(self, key: str) -> Entry | None:
        return self.buckets[hash(key) & self.mask].get(key)

    def lines(self, key: str) -> tuple[str, ...]:
        found = self.buckets[hash(key) & self.mask].get(key)
        return found[0] if found else ()

    def exists(self, key: str) -> bool:
        """True for owner names and empty non-terminals."""
        return key in self.buckets[hash(key) & self.mask]

    def node(self, key: str) -> Node | None:
        """The parsed node at ``key``, or None if it owns no records."""
        found = self.buckets[hash(key) & self.mask].get(key)
        if not found or not found[0]:
            return None
        return parse_node(found[0], self.origin)

    def iter_entries(self) -> Iterator[tuple[str, Entry]]:
        for bucket in self.buckets:
            yield from bucket.items()

    def iter_lines(self) -> Iterator[str]:
        for bucket in self.buckets:
            for lines, _below in bucket.values():
                yield from lines

    @property
    def soa_line(self) -> str:
        for line in self.lines(self.origin_key):
            if line_fields(line)[2] == "SOA":
                return line
        raise AssertionError("zone without SOA")

    def soa_rrset(self) -> dns.rrset.RRset:
        node = self.node(self.origin_key)
        assert node is not None
        rrset = node.get(dns.rdatatype.SOA)
        assert rrset is not None
        return rrset

    def answer_index(self, build: Callable[[ZoneVersion], _T]) -> _T:
        """Derived data the answerer keeps for this version (parsed nodes, sorted NSEC owners),
        made by ``build(self)`` on first use.  A version never changes, so neither does it."""
        index = self._answer_index
        if index is None:
            index = self._answer_index = build(self)
        return index  # type: ignore[return-value]  # one build per version: its _T

    # --- changing (a new version) -----------------------------------------------------------
    def apply(
        self,
        changes: Iterable[tuple[Iterable[str], Iterable[str]]],
        serial: int,
        tally: ChangeTally | None = None,
    ) -> ZoneVersion:
        """A new version with each (deleted lines, added lines) applied in order,
        counted into ``tally`` when given.

        Deleted records must exist (TTL ignored), else :class:`IxfrNotApplicable`
        and this version is untouched.  Cost: O(size of the changes).
        """
        count = tally if tally is not None else ChangeTally()
        buckets = list(self.buckets)
        copied: set[int] = set()
        mask = self.mask
        origin_key = self.origin_key
        suffix = "." + self.origin_text if self.origin_text != "." else "."
        names = self.names
        records = self.records

        def writable(key: str) -> dict[str, Entry]:
            index = hash(key) & mask
            if index not in copied:
                buckets[index] = dict(buckets[index])
                copied.add(index)
            return buckets[index]

        def get(key: str) -> Entry | None:
            return buckets[hash(key) & mask].get(key)

        def key_of(line: str) -> str:
            owner = line[: line.find(" ")]
            if owner == "@":
                return origin_key
            if owner.endswith("."):
                raise IxfrNotApplicable(f"record outside the zone: {line[:80]}")
            return (owner + suffix).lower()

        def adjust_ancestors(key: str, delta: int) -> None:
            walk = key
            while walk != origin_key:
                walk = parent_key(walk)
                lines, below = get(walk) or EMPTY
                below += delta
                bucket = writable(walk)
                if below == 0 and not lines:
                    bucket.pop(walk, None)
                else:
                    bucket[walk] = (lines, below)

        touched: set[str] = set()
        for deleted, added in changes:
            for line in deleted:
                key = key_of(line)
                touched.add(key)
                _o, _t, rtype, rdata = line_fields(line)
                entry = get(key)
                match = None
                if entry:
                    for candidate in entry[0]:
                        fields = line_fields(candidate)
                        if fields[2] == rtype and fields[3] == rdata:
                            match = candidate
                            break
                if match is None:
                    raise IxfrNotApplicable(
                        f"IXFR deletes {line[:80]}, which the zone does not have"
                    )
                assert entry is not None
                remaining = tuple(x for x in entry[0] if x is not match)
                records -= 1
                count.removed += 1
                bucket = writable(key)
                if remaining or entry[1]:
                    bucket[key] = (remaining, entry[1])
                else:
                    del bucket[key]
                if not remaining:
                    names -= 1
                    if key != origin_key:
                        adjust_ancestors(key, -1)
            for line in added:
                key = key_of(line)
                touched.add(key)
                _o, _t, rtype, rdata = line_fields(line)
                entry = get(key)
                if entry and entry[0]:
                    kept = tuple(x for x in entry[0] if line_fields(x)[2:] != (rtype, rdata))
                    records += 1 - (len(entry[0]) - len(kept))
                    if len(kept) == len(entry[0]):
                        count.added += 1
                    elif line not in entry[0]:  # the same record with another TTL: replaced
                        count.removed += 1
                        count.added += 1
                    writable(key)[key] = (kept + (line,), entry[1])
                else:
                    count.added += 1
                    records += 1
                    names += 1
                    writable(key)[key] = ((line,), entry[1] if entry else 0)
                    if key != origin_key:
                        adjust_ancestors(key, +1)
        if names > len(buckets) * BUCKET_REGROW:  # grew by IXFR: rebucket (O(1) test)
            buckets = _bucketed({k: v for bucket in buckets for k, v in bucket.items()})
        version = ZoneVersion(self.origin, buckets, serial, names, records, self.origin_text)
        if not version.lines(origin_key):
            raise IxfrNotApplicable("the change deletes the zone's SOA")
        version.carried = self._carry(frozenset(touched))
        return version

    def _carry(self, touched: frozenset[str]) -> tuple[object, frozenset[str]] | None:
        """What the next version's answer index starts from: this version's index's
        :meth:`carry` (no reference to this version), or what this version was handed
        if its index was never built, with the owners ``touched`` since; None when the
        changes add up to more than :data:`CARRY_LIMIT` owners (then it is rebuilt)."""
        carry = getattr(self._answer_index, "carry", None)
        if carry is not None:
            handed = carry()
            return None if handed is None else (handed, touched)
        if self.carried is None or len(self.carried[1]) + len(touched) > CARRY_LIMIT:
            return None
        return (self.carried[0], self.carried[1] | touched)


CARRY_LIMIT = 4096
"""Owners changed since an answer index was built, at most, for a later version's to be
brought up to date from it (a change of more is rebuilt)."""

SMALL_NAMES = 64
"""A zone of at most this many owners counts its names below by walking each owner's
ancestors (:func:`_small_names_below`)."""


def _names_below(groups: dict[str, list[str]], origin_key: str) -> dict[str, int]:
    """How many owner names lie below each name that has any (ancestors and empty
    non-terminals alike): each owner counts once for its parent, then each name's
    count is added to its parent's, deepest names first (a parent's key is a suffix of
    its child's with fewer dots), instead of walking every owner's ancestors."""
    if len(groups) <= SMALL_NAMES:
        below = _small_names_below(groups, origin_key)
        if below is not None:
            return below
    return _add_below(_parents_counted(groups, origin_key), origin_key)


def _small_names_below(groups: Collection[str], origin_key: str) -> dict[str, int] | None:
    """:func:`_names_below` of a small zone (10,000 of them at a cold start), the same
    counts (in another order) by walking each owner's ancestors up to the apex, which
    for a few dozen shallow owners costs less than sorting the names by depth; None
    when a key is not a plain name under ``origin_key`` (escaped, or outside)."""
    if origin_key == ".":
        return None
    suffix = "." + origin_key
    below: dict[str, int] = {}
    get = below.get
    for key in groups:
        if key == origin_key:
            continue
        if "\\" in key or not key.endswith(suffix):
            return None
        while key != origin_key:
            key = key[key.find(".") + 1 :]
            below[key] = get(key, 0) + 1
    return below


def _parents_counted(groups: Collection[str], origin_key: str) -> dict[str, int]:
    """How many of the owners *groups* each name is the parent of (the apex's parent,
    outside the zone, left out), in the order the parents first come."""
    below: dict[str, int]
    if origin_key != "." and "\\" not in "".join(groups):
        # plain keys: each parent is what follows the first dot (counted in C)
        below = collections.Counter(key.partition(".")[2] for key in groups)
        outside = origin_key.partition(".")[2]  # the apex's own parent, not in the zone
        if outside in below:
            below[outside] -= 1
            if not below[outside]:
                del below[outside]
    else:
        below = {}
        for key in groups:
            if key != origin_key:
                parent = (key[key.find(".") + 1 :] or ".") if "\\" not in key else parent_key(key)
                below[parent] = below.get(parent, 0) + 1
    return below


def _add_below(below: dict[str, int], origin_key: str) -> dict[str, int]:
    """*below* (:func:`_parents_counted`) with each name's count added to its
    ancestors', and the ancestors (empty non-terminals too) added."""
    get = below.get
    by_depth: dict[int, list[str]] = {}
    for key in below:
        by_depth.setdefault(key.count("."), []).append(key)
    for depth in range(max(by_depth, default=0), 0, -1):
        for key in by_depth.get(depth, ()):  # parents are shallower: added for later
            if key == origin_key or key == ".":
                continue
            parent = (key[key.find(".") + 1 :] or ".") if "\\" not in key else parent_key(key)
            count = get(parent)
            if count is None:
                count = 0
                by_depth.setdefault(parent.count("."), []).append(parent)
            below[parent] = count + below[key]
    return below


BUCKET_NAMES = 64
"""Names per bucket when a version is built (an IXFR copies the buckets it touches)."""
BUCKET_REGROW = 4 * BUCKET_NAMES
"""An IXFR that leaves more names than this per bucket builds the buckets afresh (a
zone loaded small and grown by IXFR), so a copy stays O(changes) amortised."""


def bucket_count(names: int) -> int:
    """A power of two, as few buckets as ~BUCKET_NAMES names each allow: a zone of
    20 records is one dict, not 64 (10,000 small zones)."""
    size = 1
    while size < names // BUCKET_NAMES and size < 1 << 16:
        size <<= 1
    return size


def _bucketed(entries: dict[str, Entry]) -> list[dict[str, Entry]]:
    size = bucket_count(len(entries))
    buckets: list[dict[str, Entry]] = [{} for _ in range(size)]
    mask = size - 1
    for key, entry in entries.items():
        buckets[hash(key) & mask][key] = entry
    return buckets


_IN = dns.rdataclass.IN
_TYPES: dict[str, dns.rdatatype.RdataType] = {}


class _A(dns.rdtypes.IN.A.A):
    """dnspython's A with its wire form made by the C library (its own is pure Python)."""

    __slots__ = ()

    def _to_wire(self, file, compress=None, origin=None, canonicalize=False):
        file.write(socket.inet_aton(self.address))


class _AAAA(dns.rdtypes.IN.AAAA.AAAA):
    __slots__ = ()

    def _to_wire(self, file, compress=None, origin=None, canonicalize=False):
        file.write(socket.inet_pton(socket.AF_INET6, self.address))


_NAME_CLASSES: dict[int, type[dns.rdata.Rdata]] = {
    dns.rdatatype.NS: dns.rdtypes.ANY.NS.NS,
    dns.rdatatype.CNAME: dns.rdtypes.ANY.CNAME.CNAME,
    dns.rdatatype.PTR: dns.rdtypes.ANY.PTR.PTR,
    dns.rdatatype.DNAME: dns.rdtypes.ANY.DNAME.DNAME,
}


def _make(cls: type, rdtype: int, **fields: object) -> dns.rdata.Rdata:
    """An rdata built without dnspython's text parser and validation.

    Only for lines of our own canonical files, which dnspython (or the wire
    decoder checked against it) rendered, so they are valid by construction;
    tests compare every fast-built rdata with ``dns.rdata.from_text``.
    """
    rd: dns.rdata.Rdata = object.__new__(cls)
    setattr_ = object.__setattr__
    setattr_(rd, "rdclass", _IN)
    setattr_(rd, "rdtype", rdtype)
    setattr_(rd, "rdcomment", None)
    for field, value in fields.items():
        setattr_(rd, field, value)
    return rd


def fast_rdata(rdtype: int, text: str, origin: dns.name.Name) -> dns.rdata.Rdata | None:
    """A, AAAA, NS, CNAME, PTR, DNAME, MX and plain TXT rdata from canonical text, fast;
    None for anything else (the caller uses dnspython)."""
    if rdtype == dns.rdatatype.A:
        return _make(_A, rdtype, address=text)
    if rdtype == dns.rdatatype.AAAA:
        return _make(_AAAA, rdtype, address=text)
    if "\\" in text:
        return None
    cls = _NAME_CLASSES.get(rdtype)
    if cls is not None:
        return _make(cls, rdtype, target=dns.name.from_text(text, origin))
    if rdtype == dns.rdatatype.MX:
        preference, exchange = text.split(" ")
        return _make(
            dns.rdtypes.ANY.MX.MX,
            rdtype,
            preference=int(preference),
            exchange=dns.name.from_text(exchange, origin),
        )
    if rdtype == dns.rdatatype.TXT and text.startswith('"') and text.endswith('"'):
        strings = tuple(part.encode() for part in text[1:-1].split('" "'))
        if any(b'"' in part for part in strings):
            return None
        return _make(dns.rdtypes.ANY.TXT.TXT, rdtype, strings=strings)
    return None


class _RRSIG(dns.rdtypes.ANY.RRSIG.RRSIG):
    """An RRSIG built by :func:`fast_dnssec`, its signer's wire kept (the signer is never
    compressed, RFC 4034 3.1.7): written, and hashed (dnspython's hash, of the canonical
    wire, which an RRset builds for each record it takes), without a Name.to_wire each."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._wire(_signer_wire(self.signer, True)))

    def _wire(self, signer: bytes) -> bytes:
        head = RRSIG_HEAD.pack(
            self.type_covered,
            self.algorithm,
            self.labels,
            self.original_ttl,
            self.expiration,
            self.inception,
            self.key_tag,
        )
        return head + signer + self.signature

    def _to_wire(self, file, compress=None, origin=None, canonicalize=False):  # type: ignore[no-untyped-def]
        file.write(self._wire(_signer_wire(self.signer, canonicalize)))


class _NSEC(dns.rdtypes.ANY.NSEC.NSEC):
    """An NSEC built by :func:`fast_dnssec`, hashed as dnspython hashes it (its wire: the
    next name is not lowercased, RFC 6840 5.1) without a Bitmap object each time."""

    __slots__ = ()

    def __hash__(self) -> int:
        windows = b"".join(bytes((w, len(b))) + b for w, b in self.windows)
        return hash((self.next.to_wire() or b"") + windows)


_SIGNERS: dict[tuple[dns.name.Name, bool], bytes] = {}


def _signer_wire(signer: dns.name.Name, lower: bool) -> bytes:
    found = _SIGNERS.get((signer, lower))
    if found is None:
        if len(_SIGNERS) >= 4096:
            _SIGNERS.clear()
        found = _SIGNERS[(signer, lower)] = (
            signer.to_digestable() if lower else signer.to_wire() or b""
        )
    return found


_RRSIG_TYPE = dns.rdatatype.RRSIG
_NSEC_TYPE = dns.rdatatype.NSEC
_DNSSEC_FAST = frozenset({_RRSIG_TYPE, _NSEC_TYPE})


def fast_dnssec(rdtype: int, text: str, origin: dns.name.Name) -> dns.rdata.Rdata | None:
    """RRSIG and NSEC rdata from canonical text without dnspython's tokenizer (~85 us
    an RRSIG through it: a DO answer of a signed zone parses several, and was ~550 us
    on its first ask); None for anything else, or text not in that plain form."""
    if "\\" in text:
        return None
    try:
        if rdtype == _RRSIG_TYPE:
            fields, signer, signature = rrsig_fields(text)
            covered, algorithm, labels, ttl, expiration, inception, tag = fields
            return _make(
                _RRSIG,
                rdtype,
                type_covered=dns.rdatatype.RdataType.make(covered),
                algorithm=dns.dnssectypes.Algorithm.make(algorithm),
                labels=_in_range(labels, 0xFF),
                original_ttl=_in_range(ttl, 0xFFFFFFFF),
                expiration=expiration,
                inception=inception,
                key_tag=_in_range(tag, 0xFFFF),
                signer=origin if signer == "@" else dns.name.from_text(signer, origin),
                signature=signature,
            )
        if rdtype == _NSEC_TYPE:
            following, _space, types = text.partition(" ")
            bitmap = type_bitmap(types)
            windows = []
            at = 0
            while at < len(bitmap):
                size = bitmap[at + 1]
                windows.append((bitmap[at], bitmap[at + 2 : at + 2 + size]))
                at += 2 + size
            next_name = origin if following == "@" else dns.name.from_text(following, origin)
            return _make(dns.rdtypes.ANY.NSEC.NSEC, rdtype, next=next_name, windows=tuple(windows))
    except (ValueError, KeyError, IndexError, binascii.Error, dns.exception.DNSException):
        return None
    return None


def _in_range(value: int, top: int) -> int:
    if not 0 <= value <= top:
        raise ValueError(f"{value} out of range")
    return value


def parse_node(lines: tuple[str, ...], origin: dns.name.Name) -> Node:
    """Parse a node's lines into RRsets (TTL of an RRset: the smallest of its records)."""
    rrsets: dict[int, dns.rrset.RRset] = {}
    sigs: dict[int, dns.rrset.RRset] = {}
    name: dns.name.Name | None = None
    for line in lines:
        owner, ttl, rtype, rdata = line_fields(line)
        if name is None:
            name = origin if owner == "@" else dns.name.from_text(owner, origin)
        rdtype = _TYPES.get(rtype)
        if rdtype is None:
            rdtype = _TYPES[rtype] = dns.rdatatype.from_text(rtype)
        try:
            rd = (
                fast_rdata(rdtype, rdata, origin)
                or (fast_dnssec(rdtype, rdata, origin) if rdtype in _DNSSEC_FAST else None)
                or dns.rdata.from_text(_IN, rdtype, rdata, origin=origin, relativize=False)
            )
        except (dns.exception.DNSException, ValueError) as err:
            raise ZoneFileError(f"bad record {line[:80]}: {err}") from err
        if rdtype == dns.rdatatype.RRSIG:
            assert isinstance(rd, dns.rdtypes.ANY.RRSIG.RRSIG)
            table, key = sigs, dns.rdatatype.RdataType.make(rd.type_covered)
        else:
            table, key = rrsets, rdtype
        rrset = table.get(key)
        if rrset is None:
            rrset = table[key] = dns.rrset.RRset(name, _IN, rdtype, rd.covers())
            rrset.update_ttl(ttl)
        rrset.add(rd, ttl)
    assert name is not None
    return Node(name, rrsets, sigs)


class ServedZone:
    """A zone the server answers for: the current version, swapped atomically."""

    def __init__(self, origin: dns.name.Name, text: str | None = None) -> None:
        self.origin = origin
        # ``text``: the origin's text when the caller has it (``origin.to_text()``)
        self.key = name_key(origin) if text is None else text.lower()
        self.version: ZoneVersion | None = None
        self.expires_at: float | None = None
        """When our copy expires (time.time() seconds), set by the refresh scheduler of a
        secondary; None for a primary zone (or not known yet).  EDNS EXPIRE (RFC 7314)
        answers the seconds left, or the SOA EXPIRE field when None."""
        self._expired = False
        self.generation = 0  # bumped on every change: answer caches key on it

    @property
    def expired(self) -> bool:
        return self._expired

    @expired.setter
    def expired(self, value: bool) -> None:
        if value != self._expired:
            self._expired = value
            self.generation += 1  # cached answers of the other state are stale

    @property
    def servfail(self) -> bool:
        """True while the zone cannot be answered (never loaded, or expired)."""
        return self.version is None or self.expired

    def swap(self, version: ZoneVersion) -> None:
        self.version = version
        self._expired = False
        self.generation += 1


class ZoneTable:
    """The served zones, looked up by the longest origin a name is under."""

    def __init__(self) -> None:
        self.zones: dict[str, ServedZone] = {}
        self.generation = 0
        self._below: tuple[int, dict[str, list[str]]] = (-1, {})
        self.chaos: dict[str, str] = {}
        """CH TXT answers by lowercased name ("version.bind." -> text), from [server]."""

    def add(self, zone: ServedZone) -> None:
        if zone.key != ".":
            parent = self.find_key(parent_key(zone.key))
            if parent is not None:  # it answered for names that are now the new zone's
                parent.generation += 1
        self.zones[zone.key] = zone
        self.generation += 1

    def remove(self, key: str) -> ServedZone | None:
        self.generation += 1
        zone = self.zones.pop(key, None)
        if zone is not None:  # its cached answers must not outlive it (SIGHUP removal)
            zone.generation += 1
        return zone

    def get(self, origin: dns.name.Name) -> ServedZone | None:
        return self.zones.get(name_key(origin))

    def served_below(self, key: str) -> list[str]:
        """The keys of the zones served here beneath zone ``key`` (child zones whose
        names are theirs, not its).  Found for every zone at once and kept until a zone
        is added or removed: O(zones x depth) once, not O(zones) per zone (10,000 zones
        loading at a start asked it 10,000 times)."""
        generation, below = self._below
        if generation != self.generation:
            below = {}
            for child in list(self.zones):  # one C call: the filler's thread asks too
                walk = child
                while walk != ".":
                    walk = parent_key(walk)
                    if walk in self.zones:
                        below.setdefault(walk, []).append(child)
            self._below = (self.generation, below)
        return below.get(key, [])

    def find(self, qname: dns.name.Name) -> ServedZone | None:
        """The zone that ``qname`` belongs to (deepest origin), or None."""
        return self.find_key(name_key(qname))

    def find_key(self, key: str) -> ServedZone | None:
        """:meth:`find` by a name's key (its ancestors' keys are string suffixes)."""
        while True:
            zone = self.zones.get(key)
            if zone is not None:
                return zone
            if key == ".":
                return None
            key = parent_key(key)
