"""Answering queries from the served zones, as an authoritative server (RFC 1034 4.3.2).

Two layers, no I/O in either:

* :func:`answer` turns a parsed query into a response message over a
  :class:`~secdns.server.zone.ZoneTable`: exact matches, CNAME chains inside the
  zone, wildcards (RFC 4592), DNAME (RFC 6672), referrals with glue, DS from
  the parent side, NXDOMAIN/NODATA with the SOA for negative caching
  (RFC 2308), RRSIGs and NSEC/NSEC3 denial proofs for DO queries, minimal ANY
  over UDP (RFC 8482) and additional-section processing.
* :func:`handle` is what the listeners call: query bytes in, a :class:`Reply`
  out.  It parses (FORMERR, NOTIMP, BADVERS, TSIG errors, drops), hands
  NOTIFY, UPDATE and zone transfers back to the server, and renders the answer
  into the size the client allows, truncating the way BIND does.  It never
  raises.

The answers are BIND 9.18's (``recursion no``, ``minimal-responses
no-auth-recursive`` as by default, ``minimal-any yes``): tests/test_answer.py
sends a battery of queries to a real named and to :func:`handle` and compares
the responses section by section.  The BIND behaviours copied here, with the
``lib/ns/query.c`` function they come from:

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
* Without EDNS an answer or authority section that does not fit is cut record
  by record (a partial RRset), with TC; with EDNS (whose OPT is reserved
  first) whole RRsets only.  The additional section is filled A first, then
  AAAA, then RRSIGs, then the rest, and stops silently at the first RRset that
  does not fit (``dns_message_rendersection``).
* Owner names keep the zone's case, the question keeps the query's (0x20):
  names are compressed case-sensitively, and only against a name or its
  parent, as BIND does, so sizes and truncation points are BIND's too.
* Minimal ANY picks the first RRset in BIND's node order: "priority" types
  (SOA, A, AAAA, MX, TXT, SRV, NS, DS, CNAME, DNAME, NSEC, NSEC3, DNSKEY,
  SVCB, HTTPS, PTR, NAPTR and their RRSIGs) in zone-file order, then the other
  types in zone-file order.

Where secdns differs on purpose (see tests/test_answer.py): queries with
trailing bytes after the question get FORMERR (BIND ignores the junk); class CH
is REFUSED for every name (BIND answers version.bind, hostname.bind and friends
from a built-in view); and the additional section always prefers A glue, as
BIND does for IPv4 clients (``handle()`` is not told the client's family).

Speed: plain queries are parsed without dnspython's general reader and answers
are written by :class:`_Wire`, not dnspython's renderer; zone nodes are parsed
once per version and kept in a bounded cache (:class:`_Index`).  On one core,
about 7,000 answers/s for never-seen names of a 100k-record zone and 10,000/s
for a warm set of names, before the server's reply cache.
"""

from __future__ import annotations

import bisect
import dataclasses
import struct
import time
from collections.abc import Iterable

import dns.dnssec
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

from secdns.server.zone import Node, ServedZone, ZoneTable, ZoneVersion, name_key, parse_node

EDNS_PAYLOAD = 1232
"""Our EDNS UDP payload size, and the largest UDP answer we send (BIND's max-udp-size)."""

MAX_RESTARTS = 11
"""CNAME/DNAME restarts before giving up with SERVFAIL (BIND 9.18's max-query-restarts)."""

MAX_ADDITIONAL = 13
"""An RRset with more records than this gets no additional-section processing
(BIND's DNS_RDATASET_MAXADDITIONAL, against CPU exhaustion by huge MX/SRV/NS sets)."""

_NODE_CACHE_LIMIT = 16384

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

_KIND_NS = 1
_KIND_DNAME = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """What :func:`handle` made of one query packet."""

    wire: bytes | None
    """The response to send, or None: drop silently (or the server handles ``kind`` itself)."""
    cacheable: bool
    """True if the same query bytes (ID aside) always get this reply for this zone generation."""
    zone: ServedZone | None
    """The zone that answered, for cache invalidation by generation."""
    kind: str
    """"query", "notify", "xfr", "update" or "error"."""


# --- handle(): bytes in, bytes out -------------------------------------------------------------


def handle(
    wire: bytes,
    table: ZoneTable,
    *,
    tcp: bool,
    keyring: dict[dns.name.Name, dns.tsig.Key] | None = None,
) -> Reply:
    """Answer one query packet; never raises.

    NOTIFY, UPDATE and AXFR/IXFR come back as ``kind`` "notify", "update" and
    "xfr" with ``wire=None`` once the header says what they are: the server
    deals with those.  Packets too short for a header, and responses (QR=1),
    are dropped (``wire=None``, kind "error").
    """
    try:
        return _handle(wire, table, tcp, keyring)
    except Exception:  # noqa: BLE001 - a query must never crash the listener
        return _header_error(wire, dns.rcode.SERVFAIL)


def _handle(
    wire: bytes, table: ZoneTable, tcp: bool, keyring: dict[dns.name.Name, dns.tsig.Key] | None
) -> Reply:
    if len(wire) < 12:
        return Reply(None, False, None, "error")
    flags = (wire[2] << 8) | wire[3]
    if flags & dns.flags.QR:
        return Reply(None, False, None, "error")
    opcode = (flags >> 11) & 0xF
    if opcode == dns.opcode.NOTIFY:
        return Reply(None, False, None, "notify")
    if opcode == dns.opcode.UPDATE:
        return Reply(None, False, None, "update")
    if opcode != dns.opcode.QUERY:
        return _header_error(wire, dns.rcode.NOTIMP, keep_rd=False)
    try:
        query = _plain_query(wire) or dns.message.from_wire(
            wire, keyring=keyring if keyring is not None else {}
        )
    except dns.message.UnknownTSIGKey:
        return _tsig_error(wire, dns.rcode.BADKEY, None)
    except dns.tsig.BadSignature:
        return _tsig_error(wire, dns.rcode.BADSIG, None)
    except dns.tsig.BadTime:
        key = _tsig_key(wire, keyring)
        return _tsig_error(wire, dns.rcode.BADTIME, key)
    except dns.message.BadEDNS:
        return _question_error(wire, dns.rcode.FORMERR)
    except (dns.exception.DNSException, ValueError, IndexError, KeyError, UnicodeError):
        return _header_error(wire, dns.rcode.FORMERR)
    if len(query.question) != 1:
        return _header_error(wire, dns.rcode.FORMERR)
    if query.question[0].rdtype in (_AXFR, _IXFR):
        return Reply(None, False, None, "xfr")
    result = _Answerer(query, table, tcp).run()
    if tcp:
        limit = 65535
    elif query.edns >= 0:
        limit = max(512, min(query.payload, EDNS_PAYLOAD))
    else:
        limit = 512
    out = _render(result, limit)
    cacheable = result.cacheable and not query.had_tsig and not query.options
    return Reply(out, cacheable, result.zone, "query")


def _plain_query(wire: bytes) -> dns.message.Message | None:
    """The common query (one question, no compression, at most an OPT without options,
    nothing after it) parsed without dnspython's general reader; None for anything else."""
    message_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    labels = []
    position = 12
    end = len(wire)
    while True:
        if position >= end:
            return None
        length = wire[position]
        if length == 0:
            position += 1
            break
        if length > 63 or position + 1 + length > end:
            return None
        labels.append(wire[position + 1 : position + 1 + length])
        position += 1 + length
    labels.append(b"")
    if position + 4 > end:
        return None
    try:
        qname = dns.name.Name(labels)
    except dns.name.NameTooLong:
        return None
    qtype, qclass = struct.unpack_from("!HH", wire, position)
    position += 4
    query = dns.message.Message(id=message_id)
    query.flags = dns.flags.Flag(flags)
    query.question = [
        dns.rrset.RRset(
            qname, dns.rdataclass.RdataClass.make(qclass), dns.rdatatype.RdataType.make(qtype)
        )
    ]
    if arcount:
        if position + 11 != end or wire[position] != 0:
            return None
        rdtype, payload, ttl, rdlength = _RR_HEADER.unpack_from(wire, position + 1)
        if rdtype != dns.rdatatype.OPT or rdlength:
            return None
        query.use_edns((ttl >> 16) & 0xFF, ttl & 0xFFFF, payload)
    elif position != end:
        return None
    return query


def _header_error(wire: bytes, rcode: int, keep_rd: bool = True) -> Reply:
    """A header-only error response (BIND's answer to packets it cannot read; it echoes RD
    except for an unknown opcode)."""
    if len(wire) < 12:
        return Reply(None, False, None, "error")
    flags = (wire[2] << 8) | wire[3]
    flags = (
        (flags & 0x7800) | dns.flags.QR | (flags & dns.flags.RD if keep_rd else 0) | (rcode & 0xF)
    )
    return Reply(wire[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0), False, None, "error")


def _question_error(wire: bytes, rcode: int) -> Reply:
    """An error response echoing the question (if it reads) and no OPT (bad OPT records)."""
    question = _read_question(wire)
    if question is None:
        return _header_error(wire, rcode)
    flags = (wire[2] << 8) | wire[3]
    flags = (flags & 0x7800) | dns.flags.QR | (flags & (dns.flags.RD | dns.flags.CD)) | rcode
    head = wire[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0)
    return Reply(head + question, False, None, "error")


def _read_question(wire: bytes) -> bytes | None:
    """The wire bytes of the first question if QDCOUNT is 1 and it is well formed."""
    if len(wire) < 12 or struct.unpack_from("!H", wire, 4)[0] != 1:
        return None
    try:
        _name, used = dns.name.from_wire(wire, 12)
    except dns.exception.DNSException:
        return None
    end = 12 + used
    if end + 4 > len(wire):
        return None
    return wire[12 : end + 4]


def _tsig_key(
    wire: bytes, keyring: dict[dns.name.Name, dns.tsig.Key] | None
) -> dns.tsig.Key | None:
    try:
        query = dns.message.from_wire(wire, keyring=False)
    except dns.exception.DNSException:
        return None
    if keyring is None or query.keyname is None:
        return None
    return keyring.get(query.keyname)


def _tsig_error(wire: bytes, error: int, key: dns.tsig.Key | None) -> Reply:
    """NOTAUTH with a TSIG error (RFC 8945 5.3.2): unsigned, but for BADTIME with a known key."""
    try:
        query = dns.message.from_wire(wire, keyring=False)
    except dns.exception.DNSException:
        return _header_error(wire, dns.rcode.NOTAUTH)
    if query.tsig is None or len(query.question) != 1:
        return _header_error(wire, dns.rcode.NOTAUTH)
    response = dns.message.Message(id=query.id)
    response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    response.question = list(query.question)
    response.set_rcode(dns.rcode.NOTAUTH)
    request = query.tsig[0]
    now = int(time.time())
    if key is not None:
        response.use_tsig(
            key,
            fudge=300,
            original_id=query.id,
            tsig_error=error,
            other_data=struct.pack("!Q", now)[2:],
        )
        response.request_mac = request.mac
    else:
        rdata = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY,
            dns.rdatatype.TSIG,
            request.algorithm,
            now,
            300,
            b"",
            query.id,
            error,
            b"",
        )
        response.tsig = dns.rrset.from_rdata(query.tsig.name, 0, rdata)
        response.want_tsig_sign = False
    return Reply(response.to_wire(max_size=65535), False, None, "error")


# --- answer(): the RFC 1034 algorithm over dnspython objects -----------------------------------


def answer(query: dns.message.Message, table: ZoneTable, *, tcp: bool) -> dns.message.Message:
    """The response to ``query`` (one question) from the zones in ``table``.

    ``tcp`` matters for ANY (minimal over UDP) and for the EDNS-512 minimal
    rule; the message is not size-limited: :func:`handle` truncates on render.
    A query signed with TSIG is answered by a message set up to be signed with
    the same key (``query.keyring``), as :func:`dns.message.make_response` does.
    """
    if len(query.question) != 1:
        response = dns.message.Message(id=query.id)
        response.flags = dns.flags.QR | (query.flags & dns.flags.RD)
        response.set_rcode(dns.rcode.FORMERR)
        return response
    return _Answerer(query, table, tcp).run().message()


@dataclasses.dataclass(slots=True)
class _Result:
    """A response in parts: :func:`answer` makes a dnspython message of it, :func:`handle`
    writes it straight to wire."""

    query: dns.message.Message
    flags: int  # QR, AA, RD, CD and the opcode (no rcode)
    rcode: int
    answer: list[dns.rrset.RRset]
    authority: list[dns.rrset.RRset]
    additional: list[dns.rrset.RRset]
    ede: dns.edns.EDEOption | None
    zone: ServedZone | None
    required_glue: dns.rrset.RRset | None
    cacheable: bool

    @property
    def tsig_key(self) -> dns.tsig.Key | None:
        """The key to sign with: the query's, if it was signed and verified."""
        key = self.query.keyring
        return key if self.query.had_tsig and isinstance(key, dns.tsig.Key) else None

    def message(self) -> dns.message.Message:
        query = self.query
        response = dns.message.Message(id=query.id)
        response.flags = self.flags
        response.question = list(query.question)
        if query.edns >= 0:
            options: list[dns.edns.Option] = [self.ede] if self.ede is not None else []
            response.use_edns(0, query.ednsflags & dns.flags.DO, EDNS_PAYLOAD, options=options)
        response.set_rcode(dns.rcode.Rcode.make(self.rcode))
        response.answer = self.answer
        response.authority = self.authority
        response.additional = self.additional
        key = self.tsig_key
        if key is not None:
            response.use_tsig(key, fudge=300)
            response.request_mac = query.mac or b""
        return response


class _Index:
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
        self._nsec: tuple[list[tuple[bytes, ...]], list[str]] | None = None
        self._nsec3: tuple[list[str], dict[str, str], int, int, bytes] | None = None

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
        """Whether the node at ``key`` has NS and/or DNAME records (bits), without parsing it."""
        kinds = self._kinds.get(key)
        if kinds is None:
            kinds = 0
            for line in lines:
                mnemonic = _line_type(line)
                if mnemonic == "NS":
                    kinds |= _KIND_NS
                elif mnemonic == "DNAME":
                    kinds |= _KIND_DNAME
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
                _with_ttl(soa, minimum),
                _with_ttl(sig, minimum) if sig is not None else None,
            )
        return self._negative_soa

    @property
    def secure(self) -> bool:
        """Signed, as BIND's ``dns_db_issecure``: a DNSKEY and NSEC or NSEC3PARAM at the apex."""
        if self._secure is None:
            apex = self.apex.rrsets
            self._secure = _DNSKEY in apex and (_NSEC in apex or _NSEC3PARAM in apex)
        return self._secure

    @property
    def uses_nsec3(self) -> bool:
        return _NSEC3PARAM in self.apex.rrsets and _NSEC not in self.apex.rrsets

    # NSEC: the owner at or before a name in canonical order (RFC 4034 6.1).
    def nsec_at_or_before(self, name: dns.name.Name) -> Node | None:
        if self._nsec is None:
            owners: list[tuple[tuple[bytes, ...], str]] = []
            labels: dict[bytes, bytes] = {}  # one copy of each label (the origin's above all)
            for key, (lines, _below) in self.version.iter_entries():
                if any(_line_type(line) == "NSEC" for line in lines):
                    owners.append(
                        (tuple(labels.setdefault(label, label) for label in _key_canon(key)), key)
                    )
            owners.sort()
            self._nsec = ([o[0] for o in owners], [o[1] for o in owners])
        order, keys = self._nsec
        if not keys:
            return None
        index = bisect.bisect_right(order, _canon(name)) - 1
        return self.node(keys[index])  # index -1 wraps to the last owner

    # NSEC3: hashed owners (RFC 5155).
    def _nsec3_index(self) -> tuple[list[str], dict[str, str], int, int, bytes] | None:
        if self._nsec3 is None:
            param = self.apex.rrsets.get(_NSEC3PARAM)
            if param is None:
                return None
            rd = next(iter(param))
            hashes: dict[str, str] = {}
            for key, (lines, _below) in self.version.iter_entries():
                if any(_line_type(line) == "NSEC3" for line in lines):
                    hashes[key.split(".", 1)[0]] = key
            self._nsec3 = (sorted(hashes), hashes, rd.algorithm, rd.iterations, rd.salt)
        return self._nsec3

    def _hash(self, name: dns.name.Name) -> str | None:
        index = self._nsec3_index()
        if index is None:
            return None
        _sorted, _keys, algorithm, iterations, salt = index
        try:
            return dns.dnssec.nsec3_hash(name, salt, iterations, algorithm).lower()
        except (ValueError, dns.exception.DNSException):
            return None

    def nsec3_match(self, name: dns.name.Name) -> Node | None:
        digest = self._hash(name)
        index = self._nsec3_index()
        if digest is None or index is None:
            return None
        key = index[1].get(digest)
        return self.node(key) if key else None

    def nsec3_cover(self, name: dns.name.Name) -> Node | None:
        """The NSEC3 matching or covering ``name`` (the one at or before its hash, wrapping)."""
        digest = self._hash(name)
        index = self._nsec3_index()
        if digest is None or index is None or not index[0]:
            return None
        hashes, keys = index[0], index[1]
        position = bisect.bisect_right(hashes, digest) - 1
        return self.node(keys[hashes[position]])


def _index(version: ZoneVersion) -> _Index:
    return version.answer_index(_Index)


def _find_zone(table: ZoneTable, name: dns.name.Name, key: str | None = None) -> ServedZone | None:
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


def _line_type(line: str) -> str:
    return line.split(" ", 4)[3]


def _canon(name: dns.name.Name) -> tuple[bytes, ...]:
    """Canonical sort key of a name: lowercased labels, most significant first, root left out."""
    return tuple(label.lower() for label in reversed(name.labels) if label)


def _key_canon(key: str) -> tuple[bytes, ...]:
    if "\\" in key:
        return _canon(dns.name.from_text(key))
    if key == ".":
        return ()
    return tuple(part.encode() for part in reversed(key[:-1].split(".")))


def _common_labels(a: dns.name.Name, b: dns.name.Name) -> int:
    """Labels two names share at the end, the root included (``dns_name_fullcompare``)."""
    count = 0
    for x, y in zip(reversed(a.labels), reversed(b.labels), strict=False):
        if x.lower() != y.lower():
            break
        count += 1
    return count


def _suffix(name: dns.name.Name, labels: int) -> dns.name.Name:
    return dns.name.Name(name.labels[len(name.labels) - labels :])


def _renamed(rrset: dns.rrset.RRset, name: dns.name.Name) -> dns.rrset.RRset:
    out = dns.rrset.RRset(name, rrset.rdclass, rrset.rdtype, rrset.covers)
    out.update(rrset)
    out.ttl = rrset.ttl
    return out


def _wildcard_owner(name: dns.name.Name, wildcard: dns.name.Name) -> dns.name.Name:
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


def _with_ttl(rrset: dns.rrset.RRset, ttl: int) -> dns.rrset.RRset:
    if rrset.ttl <= ttl:
        return rrset
    out = _renamed(rrset, rrset.name)
    out.ttl = ttl
    return out


def _ancestor_keys(
    qname: dns.name.Name, origin: dns.name.Name, key: str | None = None
) -> list[str]:
    """Keys of the origin and every name between it and ``qname`` (inclusive), top down."""
    extra = len(qname.labels) - len(origin.labels)
    if key is None:
        key = name_key(qname)
    if "\\" not in key:
        parts = key.split(".")
        return [".".join(parts[extra - depth :]) for depth in range(extra + 1)]
    return [name_key(_suffix(qname, len(origin.labels) + depth)) for depth in range(extra + 1)]


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


class _Answerer:
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
        self.index: _Index | None = None
        self.dnssec = False
        self.no_authority = False
        self.no_additional = False
        self.ede: dns.edns.EDEOption | None = None
        self.cacheable = True

    # -- the response skeleton
    def _finish(self, rcode: int, aa: bool = False) -> _Result:
        query = self.query
        flags = (
            dns.flags.QR
            | (query.flags & (dns.flags.RD | dns.flags.CD | 0x7800))
            | (dns.flags.AA if aa else 0)
        )
        return _Result(
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

    def run(self) -> _Result:
        query = self.query
        if query.edns > 0:
            self.answer, self.authority, self.additional = [], [], []
            return self._finish(dns.rcode.BADVERS)
        question = query.question[0]
        qname, qtype, qclass = question.name, question.rdtype, question.rdclass
        if qclass != _IN:
            if qclass == _ANY_CLASS:
                return self._finish(dns.rcode.FORMERR)
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
        zone = _find_zone(self.table, qname, qkey)
        if qtype == _DS and zone is not None and zone.origin == qname and qname.labels != (b"",):
            parent = _find_zone(self.table, qname.parent())
            if parent is not None and not parent.servfail:
                zone = parent  # DS is answered from the parent side of the cut
        if zone is None:
            return self._finish(dns.rcode.REFUSED)
        self.zone = zone
        version = zone.version
        if zone.servfail or version is None:
            self.cacheable = False
            return self._finish(dns.rcode.SERVFAIL)
        self.index = _index(version)
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
            rrset = _renamed(rrset, owner)
        if not self._add(section, rrset):
            return False
        if self.dnssec and node is not None:
            sig = node.sigs.get(rrset.rdtype)
            if sig is not None:
                if sig.name.labels != rrset.name.labels:
                    sig = _renamed(sig, rrset.name)
                self._add(section, sig)
        return True

    def _in_any_section(self, name: dns.name.Name, rdtype: int) -> bool:
        for section in (self.answer, self.authority, self.additional):
            for have in section:
                if have.rdtype == rdtype and have.name == name:
                    return True
        return False

    # -- lookup in the zone (BIND's zone_find for the authoritative data)
    def _lookup(self, qname: dns.name.Name, qtype: int, key: str | None = None) -> _Lookup:
        index = self.index
        assert index is not None
        version = index.version
        keys = _ancestor_keys(qname, index.origin, key)
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
            if depth > 0 and kinds & _KIND_NS and not (at_qname and qtype == _DS):
                return _Lookup(_DELEGATION, index.node(key), key)
            if not at_qname and kinds & _KIND_DNAME:
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
        if _CNAME in node.rrsets:
            return _Lookup(_CNAME_FOUND, node, key, wild)
        return _Lookup(_NXRRSET, node, key, wild)

    # -- the restart loop
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
                self._nodata(name, qtype, found)
                return dns.rcode.NOERROR, aa
            if status in (_NXDOMAIN, _EMPTYWILD):
                self._nxdomain(name)
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
            if _find_zone(self.table, target, key) is not self.zone:
                return dns.rcode.NOERROR, aa  # another zone (or none): the chain stops here
            name = target

    def _respond(self, name: dns.name.Name, qtype: int, found: _Lookup) -> None:
        node = found.node
        assert node is not None
        owner = _wildcard_owner(name, node.name) if found.wild else node.name
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
        """ANY, or RRSIG (which BIND answers like ANY over the RRSIG sets)."""
        node = found.node
        index = self.index
        assert node is not None and index is not None
        owner = _wildcard_owner(name, node.name) if found.wild else node.name
        minimal = not self.tcp
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
                self.answer, _renamed(rrset, owner) if owner.labels != rrset.name.labels else rrset
            )
            added = True
        if not added:
            self._nodata(name, qtype, found)
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
        owner = _wildcard_owner(name, node.name) if found.wild else node.name
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
        keys = _ancestor_keys(target, index.origin)
        below_cut = False
        for depth, key in enumerate(keys):
            entry = index.version.entry(key)
            if entry is None:
                return None
            if depth > 0 and any(_line_type(line) == "NS" for line in entry[0]):
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
        if not target.is_subdomain(index.origin) or _find_zone(self.table, target) is not self.zone:
            return
        found = self._lookup(target, _A)
        if found.status not in (_FOUND, _CNAME_FOUND, _NXRRSET) or found.node is None:
            return
        node = found.node
        owner = _wildcard_owner(target, node.name) if found.wild else node.name
        for rdtype in (_A, _AAAA):
            rrset = node.rrsets.get(rdtype)
            if rrset is not None and not self._in_any_section(owner, rdtype):
                self._add_signed(self.additional, rrset, node, owner)

    # -- negative answers
    def _add_soa(self) -> None:
        index = self.index
        assert index is not None
        soa, sig = index.negative_soa
        self._add(self.authority, soa)
        if self.dnssec and sig is not None:
            self._add(self.authority, sig)

    def _nodata(self, name: dns.name.Name, qtype: int, found: _Lookup) -> None:
        """NOERROR with no answer: SOA, and with DO the NSEC/NSEC3 proving the type absent."""
        index = self.index
        assert index is not None
        if not self.dnssec:
            self._add_soa()
            return
        node = found.node
        if not index.uses_nsec3:
            if found.wild and node is not None:
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
        if found.wild:
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
            closer = _suffix(name, len(encloser.labels) + 1)
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

    def _nxdomain(self, name: dns.name.Name) -> None:
        """NXDOMAIN (or an empty wildcard): SOA, and with DO the proofs of no name/no wildcard."""
        self._add_soa()
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
        common = max(_common_labels(name, node.name), _common_labels(name, nxt))
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
            closer = _suffix(name, len(encloser.labels) + 1)
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


def _is_dnssec_type(rdtype: int) -> bool:
    return rdtype in (_RRSIG, _NSEC, _NSEC3, _DNSKEY, _NSEC3PARAM)


def _iteration_order(node: Node, lines: Iterable[str]) -> list[dns.rrset.RRset]:
    """A node's RRsets (RRSIGs per covered type) in BIND's rdataset-iterator order: the
    priority types in the order they first appear in the zone file, then the others."""
    first: list[dns.rrset.RRset] = []
    rest: list[dns.rrset.RRset] = []
    seen: set[tuple[int, int]] = set()
    for line in lines:
        mnemonic = _line_type(line)
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


# --- rendering ----------------------------------------------------------------------------------


class _TooBig(Exception):
    """The RR does not fit in the size the client allows."""


# Where the uncompressed name starts in the rdata of types that carry one: BIND still adds
# such names to its compression table, so later names may point into them.
_RDATA_NAME_AT = {
    _RRSIG: 18,
    _NSEC: 0,
    _DNAME: 0,
    dns.rdatatype.SRV: 6,
    dns.rdatatype.KX: 2,
    dns.rdatatype.AFSDB: 2,
    dns.rdatatype.RT: 2,
    dns.rdatatype.SVCB: 2,
    dns.rdatatype.HTTPS: 2,
}
_NAME_RDATA = frozenset({_NS, _CNAME, dns.rdatatype.PTR})
_HEADER = struct.Struct("!HHHHHH")
_RR_HEADER = struct.Struct("!HHIH")


class _Wire:
    """A response written the way BIND's renderer writes it (lib/dns/message.c, compress.c).

    Compression: a name is looked up whole and without its first label only, matching
    case-sensitively; writing a name remembers it and its parent (at most two entries),
    rdata names that may not be compressed (RRSIG signer, NSEC next, DNAME, SRV target)
    included.  So sizes, and where truncation falls, are BIND's byte for byte.
    """

    __slots__ = ("out", "limit", "table", "counts")

    def __init__(self, limit: int) -> None:
        self.out = bytearray(12)
        self.limit = limit
        self.table: dict[tuple[bytes, ...], int] = {}
        self.counts = [0, 0, 0, 0]

    def name(self, name: dns.name.Name) -> None:
        labels = name.labels
        table = self.table
        out = self.out
        count = len(labels)
        pointer = None
        depth = count - 1  # labels written before the root (or a pointer)
        for candidate in range(min(count - 1, 2)):
            pointer = table.get(labels[candidate:])
            if pointer is not None:
                depth = candidate
                break
        offset = len(out)
        for position in range(depth):
            label = labels[position]
            if position < 2 and offset < 0x4000:
                table[labels[position:]] = offset
            out.append(len(label))
            out += label
            offset += 1 + len(label)
        if pointer is not None:
            out += struct.pack("!H", 0xC000 | pointer)
        else:
            out.append(0)

    def remember(self, position: int) -> None:
        """Add the name written in full at ``position`` (and its parent) to the table."""
        name, _used = dns.name.from_wire(bytes(self.out), position)
        labels = name.labels
        for depth in range(min(len(labels) - 1, 2)):
            if position >= 0x4000:
                return
            self.table[labels[depth:]] = position
            position += 1 + len(labels[depth])

    def rdata(self, rd: dns.rdata.Rdata) -> None:
        rdtype = rd.rdtype
        out = self.out
        if rdtype in _NAME_RDATA:
            self.name(rd.target)  # type: ignore[attr-defined]
        elif rdtype == dns.rdatatype.MX:
            out += struct.pack("!H", rd.preference)  # type: ignore[attr-defined]
            self.name(rd.exchange)  # type: ignore[attr-defined]
        elif rdtype == _SOA:
            self.name(rd.mname)  # type: ignore[attr-defined]
            self.name(rd.rname)  # type: ignore[attr-defined]
            out += struct.pack(
                "!IIIII",
                rd.serial,
                rd.refresh,
                rd.retry,  # type: ignore[attr-defined]
                rd.expire,
                rd.minimum,
            )  # type: ignore[attr-defined]
        else:
            start = len(out)
            out += rd.to_wire() or b""
            at = _RDATA_NAME_AT.get(rdtype)
            if rdtype == dns.rdatatype.NAPTR:
                at = 4
                for _ in range(3):  # flags, services, regexp
                    at += 1 + out[start + at]
            if at is not None:
                self.remember(start + at)

    def record(
        self, name: dns.name.Name, rdtype: int, rdclass: int, ttl: int, rd: dns.rdata.Rdata | None
    ) -> None:
        self.name(name)
        out = self.out
        out += _RR_HEADER.pack(rdtype, rdclass, ttl, 0)
        start = len(out)
        if rd is not None:
            self.rdata(rd)
        struct.pack_into("!H", out, start - 2, len(out) - start)

    def rrset(self, section: int, rrset: dns.rrset.RRset, partial: bool = False) -> None:
        """Write a whole RRset, or raise _TooBig with nothing written; with ``partial``,
        write the records that fit and then raise."""
        start = len(self.out)
        written = 0
        for rd in rrset:
            mark = len(self.out)
            self.record(rrset.name, rrset.rdtype, rrset.rdclass, rrset.ttl, rd)
            if len(self.out) > self.limit:
                self.rollback(mark if partial else start)
                self.counts[section] += written if partial else 0
                raise _TooBig
            written += 1
        self.counts[section] += written

    def rollback(self, position: int) -> None:
        del self.out[position:]
        stale = [labels for labels, offset in self.table.items() if offset >= position]
        for labels in stale:
            del self.table[labels]

    def header(self, message_id: int, flags: int) -> None:
        _HEADER.pack_into(self.out, 0, message_id, flags, *self.counts)


def _pass_needed(rrset: dns.rrset.RRset) -> int:
    """wrong_priority() in BIND's message.c, for an IPv4 client (A is the preferred glue)."""
    if rrset.rdclass != _IN:
        return 1
    if rrset.rdtype == _A:
        return 4
    if rrset.rdtype == _AAAA:
        return 3
    if rrset.rdtype in (_RRSIG, _DNSKEY):
        return 2
    return 1


def _render(result: _Result, max_size: int) -> bytes:
    """Render like BIND's ns_client_send: whole RRsets (records one by one when no OPT or
    TSIG space is reserved), TC when the answer or authority section does not fit; a
    truncated message with an OPT or TSIG keeps only its question (renderend)."""
    query = result.query
    opt = b""
    if query.edns >= 0:
        options = b""
        if result.ede is not None:
            data = result.ede.to_wire() or b""
            options = struct.pack("!HH", result.ede.otype, len(data)) + data
        ttl = (result.rcode >> 4) << 24 | (query.ednsflags & dns.flags.DO)
        opt = (
            b"\x00" + _RR_HEADER.pack(dns.rdatatype.OPT, EDNS_PAYLOAD, ttl, len(options)) + options
        )
    key = result.tsig_key
    tsig = None
    reserved = len(opt)
    if key is not None:
        tsig = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY,
            dns.rdatatype.TSIG,
            key.algorithm,
            0,
            300,
            b"\x00" * dns.tsig.mac_sizes[key.algorithm],
            query.id,
            0,
            b"",
        )
        reserved += len(key.name.to_wire() or b"") + 10 + len(tsig.to_wire() or b"")
    wire = _Wire(max_size - reserved)
    for question in query.question:
        wire.name(question.name)
        wire.out += struct.pack("!HH", question.rdtype, question.rdclass)
        wire.counts[0] += 1
    truncated = False
    try:
        for section, rrsets in ((1, result.answer), (2, result.authority)):
            for rrset in rrsets:
                wire.rrset(section, rrset, partial=not reserved)
        truncated = _render_additional(wire, result.additional, result.required_glue)
    except _TooBig:
        truncated = True
    flags = result.flags | (result.rcode & 0xF)
    if truncated:
        flags |= dns.flags.TC
        if reserved:
            wire.rollback(_question_end(wire.out) if wire.counts[0] else 12)
            wire.counts[1:] = [0, 0, 0]
    if opt:
        wire.out += opt
        wire.counts[3] += 1
    wire.header(query.id, flags)
    if key is not None and tsig is not None:
        signed, _ctx = dns.tsig.sign(bytes(wire.out), key, tsig, int(time.time()), query.mac)
        wire.limit = 65535
        wire.record(key.name, dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, signed)
        wire.counts[3] += 1
        wire.header(query.id, flags)
    return bytes(wire.out)


def _question_end(out: bytearray) -> int:
    position = 12
    while True:
        length = out[position]
        if length >= 0xC0:
            return position + 2 + 4
        position += 1 + length
        if length == 0:
            return position + 4


def _render_additional(
    wire: _Wire, additional: list[dns.rrset.RRset], required_glue: dns.rrset.RRset | None
) -> bool:
    """The additional section in BIND's passes (A, then AAAA, then RRSIG and DNSKEY, then
    the rest), stopping at the first RRset that does not fit; True if required glue (the
    glue that answers the question) did not fit: TC."""
    done = [False] * len(additional)
    if required_glue is not None and additional and additional[0] is required_glue:
        try:
            wire.rrset(3, additional[0])
        except _TooBig:
            return True
        done[0] = True
    for pass_ in (4, 3, 2, 1):
        for position, rrset in enumerate(additional):
            if done[position] or _pass_needed(rrset) < pass_:
                continue
            try:
                wire.rrset(3, rrset)
            except _TooBig:
                return False
            done[position] = True
    return False
