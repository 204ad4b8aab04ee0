"""The lookup: RFC 1034 4.3.2 over the served zones, as BIND 9.18 answers.

:func:`answer` (dnspython message in and out) and :class:`Answerer` (what the
front renders straight to wire) resolve one question: exact matches, CNAME
chains inside the zone, wildcards (RFC 4592), DNAME (RFC 6672), referrals with
glue, DS from the parent side, NXDOMAIN/NODATA with the SOA for negative
caching (RFC 2308; the proofs are :mod:`secdns.server.denial`'s), RRSIGs for
DO queries, minimal ANY over UDP (RFC 8482) and additional-section
processing.  No I/O.

The answers are BIND 9.18's (``recursion no``, ``minimal-responses
no-auth-recursive`` as by default, ``minimal-any yes``): tests/test_answer.py
sends a battery of queries to a real named and compares.  The BIND behaviours
copied here, with the ``lib/ns/query.c`` function they come from:

* Only the zone of the first name answers: a CNAME or DNAME whose target is in
  another zone (even one we serve) ends the chain with what was found so far,
  and additional data comes from that zone only (``query_getzonedb``).
* The apex NS RRset goes into the authority section of positive answers unless
  the query had RD=1, was for DS, DNSKEY, CDS or CDNSKEY, was a minimal ANY, or
  had EDNS with a UDP size of 512 or less; the last two also drop the
  additional section, and ANY queries never get one (``ns_query_start``).
* Referrals carry only real glue (addresses below a zone cut of this zone, the
  glue cache of ``rbtdb.c``), never addresses of authoritative names, and in
  reverse NS order; glue that answers the question goes first and must fit.
* An RRset of more than 13 records gets no additional-section processing.
* A CNAME chain is followed for 11 restarts; a longer one (or a loop) answers
  SERVFAIL with what was found and EDE 0 "max. restarts reached".
* Owner names keep the zone's case, the question keeps the query's (0x20).
* Minimal ANY picks the first RRset in BIND's node order: "priority" types
  (SOA, A, AAAA, MX, TXT, SRV, NS, DS, CNAME, DNAME, NSEC, NSEC3, DNSKEY,
  SVCB, HTTPS, PTR, NAPTR and their RRSIGs) in zone-file order, then the other
  types in zone-file order.

Where secdns differs on purpose: an RRSIG query gets every RRSIG at the node
over UDP too (BIND's ``minimal-any yes`` would send one; RFC 8482 is about ANY
only, and BIND's default sends them all); class CH is REFUSED for every name unless
``[server]`` sets an identity or version (the front answers those), and the
additional section always prefers A glue, as BIND does for IPv4 clients.

About 620 lines, kept whole: the restart loop of 4.3.2 (exact match, CNAME,
wildcard, DNAME, referral) and the additional-section rules it feeds are one
algorithm over one state; the denial proofs and wire rendering already live apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.TXT
import dns.rrset

from secdns.server.denial import (
    KIND_DNAME,
    KIND_HASHED,
    KIND_NS,
    Index,
    Proofs,
    index_of,
    line_type,
    renamed,
    suffix,
)
from secdns.server.render import Result
from secdns.server.zone import Node, ServedZone, ZoneTable, name_key

MAX_RESTARTS = 11
"""CNAME/DNAME restarts before giving up with SERVFAIL (BIND 9.18's max-query-restarts)."""

MAX_ADDITIONAL = 13
"""An RRset with more records than this gets no additional-section processing
(BIND's DNS_RDATASET_MAXADDITIONAL, against CPU exhaustion by huge MX/SRV/NS sets)."""

_IN = dns.rdataclass.IN
_CH = dns.rdataclass.CH
_ANY_CLASS = dns.rdataclass.ANY
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
_DS = dns.rdatatype.DS
_RRSIG = dns.rdatatype.RRSIG
_NSEC = dns.rdatatype.NSEC
_NSEC3 = dns.rdatatype.NSEC3
_NSEC3PARAM = dns.rdatatype.NSEC3PARAM
_DNSKEY = dns.rdatatype.DNSKEY
_ANY = dns.rdatatype.ANY
_AXFR = dns.rdatatype.AXFR
_IXFR = dns.rdatatype.IXFR

# Types answered from the parent side at a delegation point when the parent holds them
# there (rbtdb.c zone_find: "unless we're actually at the zone cut and the type is NSEC
# or KEY"); DS always is (RFC 4035 3.1.4.1).  Otherwise a referral.
_AT_THE_CUT = frozenset({_NSEC, dns.rdatatype.KEY})
# Types a CNAME does not answer for (rbtdb zone_find: "Certain DNSSEC types are not
# subject to CNAME matching (RFC4035, section 2.5 and RFC3007)"; RRSIG and ANY apart).
_AT_CNAME = frozenset({_NSEC, dns.rdatatype.KEY})
# Types whose queries get neither the apex NS nor additional data (ns_query_start).
_MINIMAL_TYPES = frozenset(
    {dns.rdatatype.DS, dns.rdatatype.DNSKEY, dns.rdatatype.CDS, dns.rdatatype.CDNSKEY}
)
# BIND's prio_type(): these come first when a node's RRsets are iterated (minimal ANY).
_PRIORITY_TYPES = frozenset(
    {
        _SOA,
        _A,
        dns.rdatatype.MX,
        _AAAA,
        _NSEC,
        _NSEC3,
        _NS,
        _DS,
        _CNAME,
        _DNAME,
        dns.rdatatype.SVCB,
        dns.rdatatype.HTTPS,
        _DNSKEY,
        dns.rdatatype.SRV,
        dns.rdatatype.TXT,
        dns.rdatatype.PTR,
        dns.rdatatype.NAPTR,
    }
)
# Types whose targets get A/AAAA in the additional section, and the rdata field naming them.
_TARGET_FIELD = {
    _NS: "target",
    dns.rdatatype.MX: "exchange",
    dns.rdatatype.SRV: "target",
    dns.rdatatype.KX: "exchange",
    dns.rdatatype.AFSDB: "exchange",
    dns.rdatatype.RT: "exchange",
}


def answer(query: dns.message.Message, table: ZoneTable, *, tcp: bool) -> dns.message.Message:
    """The response to ``query`` (one question) from the zones in ``table``.

    ``tcp`` matters for ANY (minimal over UDP) and for the EDNS-512 minimal
    rule; the message is not size-limited: :func:`secdns.server.front.handle`
    truncates on render.
    A query signed with TSIG is answered by a message set up to be signed with
    the same key (``query.keyring``), as :func:`dns.message.make_response` does.
    """
    if len(query.question) != 1:
        response = dns.message.Message(id=query.id)
        response.flags = dns.flags.QR | (query.flags & dns.flags.RD)
        response.set_rcode(dns.rcode.FORMERR)
        return response
    return Answerer(query, table, tcp).run().message()


def find_zone(table: ZoneTable, name: dns.name.Name, key: str | None = None) -> ServedZone | None:
    """``table.find(name)`` (the deepest zone holding ``name``), walking one key string."""
    zones = table.zones
    if key is None:
        key = name_key(name)
    if "\\" in key:
        return table.find(name)
    while True:
        zone = zones.get(key)
        if zone is not None:
            return zone
        if key == ".":
            return None
        key = key.split(".", 1)[1] or "."


def wildcard_owner(name: dns.name.Name, wildcard: dns.name.Name) -> dns.name.Name:
    """The owner BIND gives a wildcard-synthesized RRset: the query name, with the case of
    the wildcard's owner applied octet by octet over the wire form (BIND keeps one
    upper/lower bit per octet of the owner with each RRset, and renders through it)."""
    pattern = wildcard.to_wire() or b""
    wire = bytearray(name.to_wire() or b"")
    for position, octet in enumerate(wire):
        if 0x41 <= octet <= 0x5A or 0x61 <= octet <= 0x7A:
            upper = position < len(pattern) and 0x41 <= pattern[position] <= 0x5A
            wire[position] = octet & ~0x20 if upper else octet | 0x20
    return dns.name.from_wire(bytes(wire), 0)[0]


def ancestor_keys(qname: dns.name.Name, origin: dns.name.Name, key: str | None = None) -> list[str]:
    """Keys of the origin and every name between it and ``qname`` (inclusive), top down."""
    extra = len(qname.labels) - len(origin.labels)
    if key is None:
        key = name_key(qname)
    if "\\" not in key:
        parts = key.split(".")
        return [".".join(parts[extra - depth :]) for depth in range(extra + 1)]
    return [name_key(suffix(qname, len(origin.labels) + depth)) for depth in range(extra + 1)]


# lookup outcomes
_FOUND, _CNAME_FOUND, _NXRRSET, _EMPTYNAME, _NXDOMAIN, _EMPTYWILD, _DELEGATION, _DNAME_FOUND = (
    range(8)
)


@dataclasses.dataclass(slots=True)
class _Lookup:
    status: int
    node: Node | None = None  # the matching node (the wildcard's if synthesized), the cut,
    key: str = ""  # or the DNAME owner; and its key
    wild: bool = False  # synthesized from a wildcard


class Answerer(Proofs):
    """One query's resolution: BIND's query_lookup / restart loop, section by section."""

    def __init__(self, query: dns.message.Message, table: ZoneTable, tcp: bool) -> None:
        self.query = query
        self.table = table
        self.tcp = tcp
        self.answer: list[dns.rrset.RRset] = []
        self.authority: list[dns.rrset.RRset] = []
        self.additional: list[dns.rrset.RRset] = []
        self.required_glue: dns.rrset.RRset | None = None
        self.zone: ServedZone | None = None
        self.index: Index | None = None
        self.dnssec = False
        self.no_authority = False
        self.no_additional = False
        self.ede: dns.edns.EDEOption | None = None
        self.cacheable = True

    # -- the response skeleton
    def _finish(self, rcode: int, aa: bool = False) -> Result:
        query = self.query
        flags = (
            dns.flags.QR
            | (query.flags & (dns.flags.RD | dns.flags.CD | 0x7800))
            | (dns.flags.AA if aa else 0)
        )
        return Result(
            query,
            flags,
            rcode,
            self.answer,
            self.authority,
            self.additional,
            self.ede,
            self.zone,
            self.required_glue,
            self.cacheable,
        )

    def run(self) -> Result:
        query = self.query
        if query.edns > 0:
            self.answer, self.authority, self.additional = [], [], []
            return self._finish(dns.rcode.BADVERS)
        question = query.question[0]
        qname, qtype, qclass = question.name, question.rdtype, question.rdclass
        if qclass != _IN:
            if qclass == _ANY_CLASS:
                return self._finish(dns.rcode.FORMERR)
            text = self.table.chaos.get(name_key(qname)) if qclass == _CH else None
            if text is not None and qtype == dns.rdatatype.TXT:
                return self._chaos(question, text)
            if qclass != _CH:
                self.ede = dns.edns.EDEOption(dns.edns.EDECode.PROHIBITED)
            return self._finish(dns.rcode.REFUSED)
        if dns.rdatatype.is_metatype(qtype) and qtype != _ANY:
            if qtype in (dns.rdatatype.MAILA, dns.rdatatype.MAILB):
                return self._finish(dns.rcode.NOTIMP)
            if qtype in (_AXFR, _IXFR):  # the server answers transfers itself
                return self._finish(dns.rcode.NOTIMP)
            return self._finish(dns.rcode.FORMERR)
        qkey = name_key(qname)
        zone = find_zone(self.table, qname, qkey)
        if qtype == _DS and zone is not None and zone.origin == qname and qname.labels != (b"",):
            parent = find_zone(self.table, qname.parent())
            if parent is not None and not parent.servfail:
                zone = parent  # DS is answered from the parent side of the cut
        if zone is None:
            return self._finish(dns.rcode.REFUSED)
        self.zone = zone
        version = zone.version
        if zone.servfail or version is None:
            self.cacheable = False
            return self._finish(dns.rcode.SERVFAIL)
        self.index = index_of(version)
        edns_small = query.edns >= 0 and query.payload <= 512 and not self.tcp
        self.dnssec = bool(query.ednsflags & dns.flags.DO) and self.index.secure
        self.no_authority = (
            bool(query.flags & dns.flags.RD)
            or qtype in _MINIMAL_TYPES
            or (qtype == _ANY and not self.tcp)
            or edns_small
        )
        self.no_additional = qtype == _ANY or edns_small
        rcode, aa = self._resolve(qname, qtype, qkey)
        return self._finish(rcode, aa)

    # -- lookup in the zone (BIND's zone_find for the authoritative data)
    def _lookup(self, qname: dns.name.Name, qtype: int, key: str | None = None) -> _Lookup:
        index = self.index
        assert index is not None
        version = index.version
        keys = ancestor_keys(qname, index.origin, key)
        last = len(keys) - 1
        for depth, key in enumerate(keys):
            entry = version.entry(key)
            if entry is None:
                return self._wildcard(qname, qtype, keys[depth - 1])
            lines = entry[0]
            if not lines:
                continue
            at_qname = depth == last
            kinds = index.kinds(key, lines)
            if kinds & KIND_HASHED and not entry[1]:  # not a name to a query (RFC 5155 7.2.9)
                return self._wildcard(qname, qtype, keys[depth - 1])
            if depth > 0 and kinds & KIND_NS:
                node = index.node(key)
                if not at_qname or not (
                    qtype == _DS
                    or (qtype in _AT_THE_CUT and node is not None and qtype in node.rrsets)
                ):
                    return _Lookup(_DELEGATION, node, key)
            if not at_qname and kinds & KIND_DNAME:
                return _Lookup(_DNAME_FOUND, index.node(key), key)
        entry = version.entry(keys[last])
        assert entry is not None
        if not entry[0]:
            return _Lookup(_EMPTYNAME)
        node = index.node(keys[last])
        assert node is not None
        return self._match(node, keys[last], qtype, False)

    def _wildcard(self, qname: dns.name.Name, qtype: int, encloser_key: str) -> _Lookup:
        index = self.index
        assert index is not None
        wild_key = "*." + encloser_key if encloser_key != "." else "*."
        entry = index.version.entry(wild_key)
        if entry is None:
            return _Lookup(_NXDOMAIN)
        if not entry[0]:
            return _Lookup(_EMPTYWILD)
        node = index.node(wild_key)
        assert node is not None
        return self._match(node, wild_key, qtype, True)

    @staticmethod
    def _match(node: Node, key: str, qtype: int, wild: bool) -> _Lookup:
        if qtype in (_ANY, _RRSIG) or qtype in node.rrsets:
            return _Lookup(_FOUND, node, key, wild)
        if _CNAME in node.rrsets and qtype not in _AT_CNAME:
            return _Lookup(_CNAME_FOUND, node, key, wild)
        return _Lookup(_NXRRSET, node, key, wild)

    # -- the restart loop
    def _chaos(self, question: dns.rrset.RRset, text: str) -> Result:
        """CH TXT version.bind, hostname.bind, id.server (RFC 4892) when [server] sets them."""
        data = text.encode()
        strings = [data[at : at + 255] for at in range(0, len(data), 255)] or [b""]
        rdata = dns.rdtypes.ANY.TXT.TXT(_CH, dns.rdatatype.TXT, strings)
        self.answer.append(dns.rrset.from_rdata(question.name, 0, rdata))
        self.cacheable = False
        return self._finish(dns.rcode.NOERROR, aa=True)

    def _resolve(self, qname: dns.name.Name, qtype: int, qkey: str | None) -> tuple[int, bool]:
        index = self.index
        assert index is not None and self.zone is not None
        restarts = 0
        aa = True
        name = qname
        key = qkey
        while True:
            found = self._lookup(name, qtype, key)
            status = found.status
            if status == _FOUND:
                assert found.node is not None
                if qtype in (_ANY, _RRSIG):
                    self._respond_any(name, qtype, found)
                else:
                    self._respond(name, qtype, found)
                return dns.rcode.NOERROR, aa
            if status == _DELEGATION:
                assert found.node is not None
                if restarts == 0:
                    aa = False
                self._referral(name, qtype, found.node)
                return dns.rcode.NOERROR, aa
            if status in (_NXRRSET, _EMPTYNAME):
                self._nodata(name, found.node, found.wild)
                return dns.rcode.NOERROR, aa
            if status in (_NXDOMAIN, _EMPTYWILD):
                self._nxdomain(name, qtype)
                return (dns.rcode.NXDOMAIN if status == _NXDOMAIN else dns.rcode.NOERROR), aa
            assert found.node is not None
            if status == _CNAME_FOUND:
                target = self._cname(name, found)
            else:
                synthesized = self._dname(name, found)
                if synthesized is None:  # the new name would be longer than 255 octets
                    return dns.rcode.YXDOMAIN, aa
                target = synthesized
            if restarts >= MAX_RESTARTS:
                self.ede = dns.edns.EDEOption(dns.edns.EDECode.OTHER, "max. restarts reached")
                return dns.rcode.SERVFAIL, aa
            restarts += 1
            key = name_key(target)
            if find_zone(self.table, target, key) is not self.zone:
                return dns.rcode.NOERROR, aa  # another zone (or none): the chain stops here
            name = target

    def _respond(self, name: dns.name.Name, qtype: int, found: _Lookup) -> None:
        node = found.node
        assert node is not None
        owner = wildcard_owner(name, node.name) if found.wild else node.name
        rrset = node.rrsets[qtype]
        self._add_signed(self.answer, rrset, node, owner)
        self._additional_for(rrset)
        self._add_authority(
            answer_has_ns=qtype == _NS
            and name == node.name
            and self.index is not None
            and name == self.index.origin
        )
        if found.wild and self.dnssec:
            self._wildcard_proof(name, positive=True)

    def _respond_any(self, name: dns.name.Name, qtype: int, found: _Lookup) -> None:
        """ANY, or RRSIG (answered like ANY over the RRSIG sets, but never minimal: RFC 8482
        is about ANY only, and BIND with its default ``minimal-any no`` sends them all)."""
        node = found.node
        index = self.index
        assert node is not None and index is not None
        owner = wildcard_owner(name, node.name) if found.wild else node.name
        minimal = not self.tcp and qtype == _ANY
        want_dnssec = bool(self.query.ednsflags & dns.flags.DO)
        onetype = 0
        answer_has_ns = False
        added = False
        for rrset in _iteration_order(node, index.version.lines(found.key)):
            is_sig = rrset.rdtype == _RRSIG
            if qtype == _ANY and rrset.rdtype == _NS:
                answer_has_ns = True
            if qtype == _ANY and not index.secure and _is_dnssec_type(rrset.rdtype):
                continue  # an unsigned zone hides DNSSEC records from ANY
            if minimal and not want_dnssec and qtype == _ANY and is_sig:
                continue
            if minimal and onetype and rrset.rdtype != onetype and rrset.covers != onetype:
                continue
            if qtype != _ANY and rrset.rdtype != qtype:
                continue
            onetype = rrset.covers if is_sig else rrset.rdtype
            self._add(
                self.answer, renamed(rrset, owner) if owner.labels != rrset.name.labels else rrset
            )
            added = True
        if not added:
            self._nodata(name, found.node, found.wild)
            return
        self._add_authority(answer_has_ns)
        if found.wild and self.dnssec:
            self._wildcard_proof(name, positive=True)

    def _add_authority(self, answer_has_ns: bool) -> None:
        """query_addauth for positive answers: the apex NS (and its addresses) unless minimal."""
        if self.no_authority or answer_has_ns:
            return
        index = self.index
        assert index is not None
        apex = index.apex
        ns = apex.rrsets.get(_NS)
        if ns is not None and self._add_signed(self.authority, ns, apex):
            self._additional_for(ns)

    def _cname(self, name: dns.name.Name, found: _Lookup) -> dns.name.Name:
        node = found.node
        assert node is not None
        rrset = node.rrsets[_CNAME]
        owner = wildcard_owner(name, node.name) if found.wild else node.name
        self._add_signed(self.answer, rrset, node, owner)
        if found.wild and self.dnssec:
            self._wildcard_proof(name, positive=True)
        target: dns.name.Name = next(iter(rrset)).target
        return target

    def _dname(self, name: dns.name.Name, found: _Lookup) -> dns.name.Name | None:
        node = found.node
        assert node is not None
        rrset = node.rrsets[_DNAME]
        self._add_signed(self.answer, rrset, node)
        prefix = name.labels[: len(name.labels) - len(node.name.labels)]
        target_base: dns.name.Name = next(iter(rrset)).target
        try:
            target = dns.name.Name(prefix + target_base.labels)
        except dns.name.NameTooLong:
            return None
        cname = dns.rrset.from_rdata(
            name, rrset.ttl, dns.rdtypes.ANY.CNAME.CNAME(_IN, _CNAME, target)
        )
        self._add(self.answer, cname)
        return target

    # -- referrals
    def _referral(self, name: dns.name.Name, qtype: int, cut: Node) -> None:
        index = self.index
        assert index is not None
        ns = cut.rrsets[_NS]
        self._add(self.authority, ns)
        self._add_glue(ns)
        if self.dnssec:
            ds = cut.rrsets.get(_DS)
            if ds is not None and _DS in cut.sigs:
                self._add_signed(self.authority, ds, cut)
            elif _NSEC in cut.rrsets and _NSEC in cut.sigs:
                self._add_signed(self.authority, cut.rrsets[_NSEC], cut)
            elif index.uses_nsec3:
                self._nsec3_nodata(cut.name, after_soa=False)
        if qtype in (_A, _AAAA):
            # query_glueanswer: glue that answers the question goes first and must fit (TC)
            # (the whole name moves to the front, the asked-for type first within it)
            for rrset in self.additional:
                if rrset.rdtype == qtype and rrset.name == name:
                    same = [r for r in self.additional if r.name == name and r is not rrset]
                    rest = [r for r in self.additional if r.name != name]
                    self.additional[:] = [rrset, *same, *rest]
                    self.required_glue = rrset
                    break

    def _add_glue(self, ns: dns.rrset.RRset) -> None:
        """BIND's glue cache: addresses found only below a zone cut, in reverse NS order."""
        index = self.index
        assert index is not None
        glue: list[tuple[dns.name.Name, list[dns.rrset.RRset]]] = []
        for rd in ns:
            target: dns.name.Name = rd.target
            if not target.is_subdomain(index.origin):
                continue
            node = self._glue_node(target)
            if node is None:
                continue
            found = [node.rrsets[t] for t in (_A, _AAAA) if t in node.rrsets]
            if found:
                glue.append((target, found))
        for _target, rrsets in reversed(glue):
            for rrset in rrsets:
                if not self._in_any_section(rrset.name, rrset.rdtype):
                    self._add(self.additional, rrset)

    def _glue_node(self, target: dns.name.Name) -> Node | None:
        """The node at ``target`` if it is at or below a zone cut (glue), else None."""
        index = self.index
        assert index is not None
        keys = ancestor_keys(target, index.origin)
        below_cut = False
        for depth, key in enumerate(keys):
            entry = index.version.entry(key)
            if entry is None:
                return None
            if depth > 0 and any(line_type(line) == "NS" for line in entry[0]):
                below_cut = True
        return index.node(keys[-1]) if below_cut else None

    # -- additional data (query_additional_cb): addresses from this zone's authoritative data
    def _additional_for(self, rrset: dns.rrset.RRset) -> None:
        if self.no_additional:
            return
        field = _TARGET_FIELD.get(rrset.rdtype)
        if field is None or len(rrset) > MAX_ADDITIONAL:
            return
        for rd in rrset:
            self._add_addresses(getattr(rd, field))

    def _add_addresses(self, target: dns.name.Name) -> None:
        index = self.index
        assert index is not None
        if not target.is_subdomain(index.origin) or find_zone(self.table, target) is not self.zone:
            return
        found = self._lookup(target, _A)
        if found.status not in (_FOUND, _CNAME_FOUND, _NXRRSET) or found.node is None:
            return
        node = found.node
        owner = wildcard_owner(target, node.name) if found.wild else node.name
        for rdtype in (_A, _AAAA):
            rrset = node.rrsets.get(rdtype)
            if rrset is not None and not self._in_any_section(owner, rdtype):
                self._add_signed(self.additional, rrset, node, owner)


def _is_dnssec_type(rdtype: int) -> bool:
    return rdtype in (_RRSIG, _NSEC, _NSEC3, _DNSKEY, _NSEC3PARAM)


def _iteration_order(node: Node, lines: Iterable[str]) -> list[dns.rrset.RRset]:
    """A node's RRsets (RRSIGs per covered type) in BIND's rdataset-iterator order: the
    priority types in the order they first appear in the zone file, then the others."""
    first: list[dns.rrset.RRset] = []
    rest: list[dns.rrset.RRset] = []
    seen: set[tuple[int, int]] = set()
    for line in lines:
        mnemonic = line_type(line)
        if mnemonic == "RRSIG":
            covers = _type_code(line.split(" ", 5)[4])
            rrset = node.sigs.get(covers)
        else:
            covers = 0
            rrset = node.rrsets.get(_type_code(mnemonic))
        if rrset is None or (rrset.rdtype, covers) in seen:
            continue
        seen.add((rrset.rdtype, covers))
        kind = covers if covers else rrset.rdtype
        (first if kind in _PRIORITY_TYPES else rest).append(rrset)
    return first + rest


_type_codes: dict[str, int] = {}


def _type_code(mnemonic: str) -> int:
    code = _type_codes.get(mnemonic)
    if code is None:
        code = _type_codes[mnemonic] = dns.rdatatype.from_text(mnemonic)
    return code
