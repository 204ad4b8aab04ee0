"""Per-version answer data and the denial proofs: NSEC (RFC 4035) and NSEC3 (RFC 5155).

:class:`Index` is built on first use for each zone version and kept on it:
parsed nodes (a bounded cache), the apex, the negative-caching SOA, whether the
zone is signed, and the sorted NSEC owners / NSEC3 hashes that the proofs
search.  :class:`Proofs` adds the SOA and the NSEC/NSEC3 records of negative
and wildcard answers in BIND 9.18's choice and order.
"""

from __future__ import annotations

import bisect
import typing

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from secdns.server.zone import Node, ZoneVersion, name_key, parse_node

_NODE_CACHE_LIMIT = 16384

_SOA = dns.rdatatype.SOA
_NSEC = dns.rdatatype.NSEC
_NSEC3 = dns.rdatatype.NSEC3
_NSEC3PARAM = dns.rdatatype.NSEC3PARAM
_DNSKEY = dns.rdatatype.DNSKEY

KIND_NS = 1
KIND_DNAME = 2
KIND_HASHED = 4
"""An owner of NSEC3 records alone (with their RRSIGs): it is not a name of the zone to
a query (RFC 5155 7.2.9: NXDOMAIN for a hashed owner name; BIND keeps them in a tree
of their own)."""
_HASHED_ONLY = frozenset({"NSEC3", "RRSIG"})

NsecOrder = tuple[list[tuple[bytes, ...]], list[str]]
"""The NSEC owners in canonical order: their :func:`key_canon` and their keys."""
Nsec3Chain = tuple[list[str], dict[str, str], int, int, bytes]
"""The NSEC3 owners' hashes sorted, each hash's owner key, the algorithm, iterations, salt."""
Carried = tuple[NsecOrder | None, Nsec3Chain | None]


class Index:
    """Per-version helpers, built on first use and kept on the version: parsed nodes,
    whether the zone is signed, and sorted NSEC owners / NSEC3 hashes for denial proofs."""

    __slots__ = (
        "version",
        "origin",
        "_nodes",
        "_kinds",
        "_apex",
        "_secure",
        "_nsec",
        "_nsec3",
        "_negative_soa",
    )

    def __init__(self, version: ZoneVersion) -> None:
        self.version = version
        self.origin = version.origin
        self._nodes: dict[str, Node] = {}
        self._kinds: dict[str, int] = {}
        self._apex: Node | None = None
        self._negative_soa: tuple[dns.rrset.RRset, dns.rrset.RRset | None] | None = None
        self._secure: bool | None = None
        self._nsec: NsecOrder | None = None
        self._nsec3: Nsec3Chain | None = None

    def node(self, key: str) -> Node | None:
        node = self._nodes.get(key)
        if node is None:
            entry = self.version.entry(key)
            if not entry or not entry[0]:
                return None
            node = parse_node(entry[0], self.origin)
            if len(self._nodes) >= _NODE_CACHE_LIMIT:
                self._nodes.clear()
            self._nodes[key] = node
        return node

    def kinds(self, key: str, lines: tuple[str, ...]) -> int:
        """Whether the node at ``key`` has NS and/or DNAME records, or NSEC3 alone (bits),
        without parsing it."""
        kinds = self._kinds.get(key)
        if kinds is None:
            kinds = 0
            types = set()
            for line in lines:
                mnemonic = line_type(line)
                types.add(mnemonic)
                if mnemonic == "NS":
                    kinds |= KIND_NS
                elif mnemonic == "DNAME":
                    kinds |= KIND_DNAME
            if "NSEC3" in types and types <= _HASHED_ONLY:
                kinds |= KIND_HASHED
            if len(self._kinds) >= _NODE_CACHE_LIMIT:
                self._kinds.clear()
            self._kinds[key] = kinds
        return kinds

    @property
    def apex(self) -> Node:
        """The apex node, kept apart from the bounded node cache."""
        if self._apex is None:
            entry = self.version.entry(self.version.origin_key)
            assert entry is not None
            self._apex = parse_node(entry[0], self.origin)
        return self._apex

    @property
    def negative_soa(self) -> tuple[dns.rrset.RRset, dns.rrset.RRset | None]:
        """The SOA and its RRSIG with the negative-caching TTL, min(TTL, MINIMUM) (RFC 2308)."""
        if self._negative_soa is None:
            apex = self.apex
            soa = apex.rrsets[_SOA]
            minimum = next(iter(soa)).minimum
            sig = apex.sigs.get(_SOA)
            self._negative_soa = (
                with_ttl(soa, minimum),
                with_ttl(sig, minimum) if sig is not None else None,
            )
        return self._negative_soa

    @property
    def secure(self) -> bool:
        """Signed, as BIND's ``dns_db_issecure``: a DNSKEY and NSEC or NSEC3PARAM at the
        apex.  The apex's lines are looked at first: an unsigned zone's apex (no DNSKEY
        line) is not parsed for this (the filler asks it of 10,000 small zones)."""
        if self._secure is None:
            lines = self.version.lines(self.version.origin_key)
            if not any(" DNSKEY " in line for line in lines):  # ("owner ttl class type ...")
                self._secure = False
            else:
                apex = self.apex.rrsets
                self._secure = _DNSKEY in apex and (_NSEC in apex or _NSEC3PARAM in apex)
        return self._secure

    @property
    def uses_nsec3(self) -> bool:
        return _NSEC3PARAM in self.apex.rrsets and _NSEC not in self.apex.rrsets

    # NSEC: the owner at or before a name in canonical order (RFC 4034 6.1).
    def nsec_at_or_before(self, name: dns.name.Name) -> Node | None:
        key = self.nsec_key_at_or_before(canon(name))
        return self.node(key) if key is not None else None

    def nsec_key_at_or_before(self, canonical: tuple[bytes, ...]) -> str | None:
        """The key of the NSEC owner at or before the name whose :func:`canon` is
        ``canonical`` in canonical order (the last one before the first: it wraps)."""
        if self._nsec is None:
            self._nsec = self._carried_nsec() or self._built_nsec()
        order, keys = self._nsec
        if not keys:
            return None
        return keys[bisect.bisect_right(order, canonical) - 1]  # -1 wraps to the last

    def _built_nsec(self) -> NsecOrder:
        """The NSEC owners in canonical order (their :func:`key_canon`, their keys)."""
        owners: list[tuple[tuple[bytes, ...], str]] = []
        labels: dict[bytes, bytes] = {}  # one copy of each label (the origin's above all)
        for key, (lines, _below) in self.version.iter_entries():
            if any(line_type(line) == "NSEC" for line in lines):
                owners.append(
                    (tuple(labels.setdefault(label, label) for label in key_canon(key)), key)
                )
        owners.sort()
        return [o[0] for o in owners], [o[1] for o in owners]

    def carry(self) -> Carried | None:
        """What a later version's index starts from (:meth:`ZoneVersion.apply`): the sorted
        NSEC owners and the NSEC3 chain if built, never changed in place (a later
        version copies them before bringing them up to date); None if neither is."""
        if self._nsec is None and self._nsec3 is None:
            return None
        return (self._nsec, self._nsec3)

    def _handed(self) -> tuple[Carried, frozenset[str]] | None:
        """What the version was handed (:meth:`carry` of an earlier version's index)."""
        return typing.cast("tuple[Carried, frozenset[str]] | None", self.version.carried)

    def _carried_nsec(self) -> NsecOrder | None:
        """The NSEC owners of an earlier version brought up to date with the owners
        changed since (each looked up in this version), or None (nothing handed on)."""
        handed = self._handed()
        if handed is None:
            return None
        (earlier, _chain), touched = handed
        if earlier is None:
            return None
        order, keys = list(earlier[0]), list(earlier[1])
        for key in touched:
            at = key_canon(key)
            position = bisect.bisect_left(order, at)
            present = position < len(order) and order[position] == at
            lines = self.version.lines(key)
            if any(line_type(line) == "NSEC" for line in lines):
                if not present:
                    order.insert(position, at)
                    keys.insert(position, key)
            elif present:
                del order[position]
                del keys[position]
        return order, keys

    # NSEC3: hashed owners (RFC 5155).
    def nsec3_chain(self) -> Nsec3Chain | None:
        """The NSEC3 chain: its owners' hashes sorted, each hash's owner key, and the
        NSEC3PARAM's algorithm, iterations and salt; None without an NSEC3PARAM."""
        if self._nsec3 is None:
            param = self.apex.rrsets.get(_NSEC3PARAM)
            if param is None:
                return None
            rd = next(iter(param))
            params = (rd.algorithm, rd.iterations, rd.salt)
            self._nsec3 = self._carried_nsec3(*params) or self._built_nsec3(*params)
        return self._nsec3

    def _built_nsec3(self, algorithm: int, iterations: int, salt: bytes) -> Nsec3Chain:
        hashes: dict[str, str] = {}
        for key, (lines, _below) in self.version.iter_entries():
            if any(line_type(line) == "NSEC3" for line in lines):
                hashes[key.split(".", 1)[0]] = key
        return sorted(hashes), hashes, algorithm, iterations, salt

    def _carried_nsec3(self, algorithm: int, iterations: int, salt: bytes) -> Nsec3Chain | None:
        """An earlier version's NSEC3 chain brought up to date with the owners changed
        since, or None (nothing handed on, or other NSEC3 parameters)."""
        handed = self._handed()
        if handed is None:
            return None
        (_order, earlier), touched = handed
        if earlier is None or earlier[2:] != (algorithm, iterations, salt):
            return None
        sorted_hashes, hashes = list(earlier[0]), dict(earlier[1])
        for key in touched:
            label = key.split(".", 1)[0]
            lines = self.version.lines(key)
            has = any(line_type(line) == "NSEC3" for line in lines)
            if has and hashes.get(label) != key:
                if label not in hashes:
                    bisect.insort(sorted_hashes, label)
                hashes[label] = key
            elif not has and hashes.get(label) == key:
                del hashes[label]
                del sorted_hashes[bisect.bisect_left(sorted_hashes, label)]
        return sorted_hashes, hashes, algorithm, iterations, salt

    def _hash(self, name: dns.name.Name) -> str | None:
        index = self.nsec3_chain()
        if index is None:
            return None
        _sorted, _keys, algorithm, iterations, salt = index
        import dns.dnssec  # (here: with cryptography, ~40 ms of serve's start; signed zones only)

        try:
            return dns.dnssec.nsec3_hash(name, salt, iterations, algorithm).lower()
        except (ValueError, dns.exception.DNSException):
            return None

    def nsec3_match(self, name: dns.name.Name) -> Node | None:
        digest = self._hash(name)
        index = self.nsec3_chain()
        if digest is None or index is None:
            return None
        key = index[1].get(digest)
        return self.node(key) if key else None

    def nsec3_cover(self, name: dns.name.Name) -> Node | None:
        """The NSEC3 matching or covering ``name`` (the one at or before its hash, wrapping)."""
        digest = self._hash(name)
        index = self.nsec3_chain()
        if digest is None or index is None or not index[0]:
            return None
        hashes, keys = index[0], index[1]
        position = bisect.bisect_right(hashes, digest) - 1
        return self.node(keys[hashes[position]])


def index_of(version: ZoneVersion) -> Index:
    return version.answer_index(Index)


def line_type(line: str) -> str:
    return line.split(" ", 4)[3]


def canon(name: dns.name.Name) -> tuple[bytes, ...]:
    """Canonical sort key of a name: lowercased labels, most significant first, root left out."""
    return tuple(label.lower() for label in reversed(name.labels) if label)


def key_canon(key: str) -> tuple[bytes, ...]:
    if "\\" in key:
        return canon(dns.name.from_text(key))
    if key == ".":
        return ()
    return tuple(part.encode() for part in reversed(key[:-1].split(".")))


def common_labels(a: dns.name.Name, b: dns.name.Name) -> int:
    """Labels two names share at the end, the root included (``dns_name_fullcompare``)."""
    count = 0
    for x, y in zip(reversed(a.labels), reversed(b.labels), strict=False):
        if x.lower() != y.lower():
            break
        count += 1
    return count


def suffix(name: dns.name.Name, labels: int) -> dns.name.Name:
    return dns.name.Name(name.labels[len(name.labels) - labels :])


def renamed(rrset: dns.rrset.RRset, name: dns.name.Name) -> dns.rrset.RRset:
    out = dns.rrset.RRset(name, rrset.rdclass, rrset.rdtype, rrset.covers)
    out.update(rrset)
    out.ttl = rrset.ttl
    return out


def with_ttl(rrset: dns.rrset.RRset, ttl: int) -> dns.rrset.RRset:
    if rrset.ttl <= ttl:
        return rrset
    out = renamed(rrset, rrset.name)
    out.ttl = ttl
    return out


class Proofs:
    """The sections of one answer and the negative half of filling them: the SOA of
    NXDOMAIN/NODATA answers (RFC 2308) and, for DO queries of signed zones, the NSEC
    (RFC 4035 3.1.3) and NSEC3 (RFC 5155 7.2) proofs, as BIND's query.c orders them
    (``query_addwildcardproof``, ``query_addnxrrsetnsec``).  :class:`~secdns.server.lookup.Answerer`
    is one of these; the lookup fills the positive half."""

    index: Index | None
    dnssec: bool
    answer: list[dns.rrset.RRset]
    authority: list[dns.rrset.RRset]
    additional: list[dns.rrset.RRset]

    # -- sections
    @staticmethod
    def _add(section: list[dns.rrset.RRset], rrset: dns.rrset.RRset) -> bool:
        """Add unless the section has this name and type; keep RRsets grouped by owner."""
        last = -1
        for position, have in enumerate(section):
            if have.name == rrset.name:
                if have.rdtype == rrset.rdtype and have.covers == rrset.covers:
                    return False
                last = position
        if last < 0:
            section.append(rrset)
        else:
            section.insert(last + 1, rrset)
        return True

    def _add_signed(
        self,
        section: list[dns.rrset.RRset],
        rrset: dns.rrset.RRset,
        node: Node | None,
        owner: dns.name.Name | None = None,
    ) -> bool:
        """Add ``rrset`` and, for DNSSEC answers, the RRSIG covering it at ``node``."""
        if owner is not None and owner.labels != rrset.name.labels:
            rrset = renamed(rrset, owner)
        if not self._add(section, rrset):
            return False
        if self.dnssec and node is not None:
            sig = node.sigs.get(rrset.rdtype)
            if sig is not None:
                if sig.name.labels != rrset.name.labels:
                    sig = renamed(sig, rrset.name)
                self._add(section, sig)
        return True

    def _in_any_section(self, name: dns.name.Name, rdtype: int) -> bool:
        for section in (self.answer, self.authority, self.additional):
            for have in section:
                if have.rdtype == rdtype and have.name == name:
                    return True
        return False

    # -- negative answers
    def _add_soa(self, zero_ttl: bool = False) -> None:
        """The negative-caching SOA (and its RRSIG); ``zero_ttl``: with TTL 0, as BIND's
        ``zero-no-soa-ttl`` (on by default) writes it in NXDOMAIN to a query of type SOA,
        so that a stub finding a name's zone does not cache it."""
        index = self.index
        assert index is not None
        soa, sig = index.negative_soa
        if zero_ttl:
            soa, sig = with_ttl(soa, 0), (with_ttl(sig, 0) if sig is not None else None)
        self._add(self.authority, soa)
        if self.dnssec and sig is not None:
            self._add(self.authority, sig)

    def _nodata(self, name: dns.name.Name, node: Node | None, wild: bool) -> None:
        """NOERROR with no answer: SOA, and with DO the NSEC/NSEC3 proving the type absent
        (``node``: the one found at the name, or the wildcard's if ``wild``)."""
        index = self.index
        assert index is not None
        if not self.dnssec:
            self._add_soa()
            return
        if not index.uses_nsec3:
            if wild and node is not None:
                self._add_soa()
                nsec = node.rrsets.get(_NSEC)
                sig = node.sigs.get(_NSEC)
                if nsec is None or sig is None:
                    return
                labels = next(iter(sig)).labels
                if labels + 1 >= len(name.labels):
                    return
                self._wildcard_proof(name, positive=True)
                # BIND names it '*.' + the query name's last RRSIG-labels labels, then
                # renders it through the wildcard's case: the wildcard's own name
                self._add_signed(self.authority, nsec, node)
                return
            if node is None:  # an empty non-terminal: the NSEC before it
                node = index.nsec_at_or_before(name)
            self._add_soa()
            if node is not None and _NSEC in node.rrsets:
                self._add_signed(self.authority, node.rrsets[_NSEC], node)
            return
        if wild:
            self._nsec3_wildcard_proof(name, positive=False, nodata=True)
            self._add_soa()
            return
        self._nsec3_nodata(name, after_soa=True)

    def _nsec3_nodata(self, name: dns.name.Name, after_soa: bool) -> None:
        """The NSEC3 matching ``name``; else the closest provable encloser and the next closer.

        With ``after_soa`` (a NODATA answer) the SOA goes between them, as BIND orders it.
        """
        index = self.index
        assert index is not None
        node, encloser = self._nsec3_closest(name)
        if node is not None and encloser != name:
            self._add_signed(self.authority, node.rrsets[_NSEC3], node)
            closer = suffix(name, len(encloser.labels) + 1)
            node = index.nsec3_cover(closer)
        if after_soa:
            self._add_soa()
        if node is not None:
            self._add_signed(self.authority, node.rrsets[_NSEC3], node)

    def _nsec3_closest(self, name: dns.name.Name) -> tuple[Node | None, dns.name.Name]:
        """The NSEC3 of ``name`` or of its closest ancestor that has one (provable encloser)."""
        index = self.index
        assert index is not None
        walk = name
        while True:
            node = index.nsec3_match(walk)
            if node is not None or walk == index.origin or not walk.labels:
                return node, walk
            walk = walk.parent()

    def _nxdomain(self, name: dns.name.Name, qtype: int = 0) -> None:
        """NXDOMAIN (or an empty wildcard): SOA (TTL 0 to a query of type SOA), and with
        DO the proofs of no name/no wildcard."""
        self._add_soa(zero_ttl=qtype == dns.rdatatype.SOA)
        if not self.dnssec:
            return
        index = self.index
        assert index is not None
        if index.uses_nsec3:
            self._nsec3_wildcard_proof(name, positive=False, nodata=False)
        else:
            self._wildcard_proof(name, positive=False)

    def _wildcard_proof(self, name: dns.name.Name, positive: bool) -> None:
        """query_addwildcardproof: the NSEC covering ``name`` and, for a negative answer,
        the one covering the wildcard that could have matched (NSEC3 zones: see below)."""
        index = self.index
        assert index is not None
        if index.uses_nsec3:
            self._nsec3_wildcard_proof(name, positive=positive, nodata=False)
            return
        if index.version.exists(name_key(name)):
            return
        node = index.nsec_at_or_before(name)
        if node is None or _NSEC not in node.rrsets:
            return
        nsec = node.rrsets[_NSEC]
        self._add_signed(self.authority, nsec, node)
        if positive:
            return
        nxt: dns.name.Name = next(iter(nsec)).next
        common = max(common_labels(name, node.name), common_labels(name, nxt))
        if common >= len(name.labels):
            return
        wild = dns.name.Name((b"*",) + name.labels[len(name.labels) - common :])
        if wild == name or index.version.exists(name_key(wild)):
            return
        node = index.nsec_at_or_before(wild)
        if node is not None and _NSEC in node.rrsets:
            self._add_signed(self.authority, node.rrsets[_NSEC], node)

    def _nsec3_wildcard_proof(self, name: dns.name.Name, positive: bool, nodata: bool) -> None:
        """RFC 5155 closest encloser proof: the encloser's NSEC3 (negative answers only), the
        NSEC3 covering the next closer name, and (negative answers) the one for the wildcard."""
        index = self.index
        assert index is not None
        encloser = name
        while not index.version.exists(name_key(encloser)) and encloser != index.origin:
            encloser = encloser.parent()
        node, encloser = self._nsec3_closest(encloser)
        if node is None:
            return
        if not positive:
            self._add_signed(self.authority, node.rrsets[_NSEC3], node)
        if len(name.labels) > len(encloser.labels):
            closer = suffix(name, len(encloser.labels) + 1)
            cover = index.nsec3_cover(closer)
            if cover is not None:
                self._add_signed(self.authority, cover.rrsets[_NSEC3], cover)
        if positive:
            return
        wild = dns.name.Name((b"*",) + encloser.labels)
        if nodata:
            node = self._nsec3_closest(wild)[0]
        else:
            node = index.nsec3_cover(wild)
        if node is not None:
            self._add_signed(self.authority, node.rrsets[_NSEC3], node)
