"""A fast path for the commonest cache miss: NXDOMAIN for a name that does not exist.

Random names (typos, scanners, the NXDOMAIN share of any benchmark) never hit
the answer cache, and building each answer with dnspython costs ~50 us.  But an
NXDOMAIN answer without DNSSEC depends on the query only through its header
bits, its question and its EDNS shape: the authority section is the zone's SOA.
So the first time the full path answers NXDOMAIN for a given zone version and
query shape, :class:`NegativeAnswers` builds a template from it, checks that
the template reproduces that answer exactly (semantically), and from then on
answers such queries itself after a few dict lookups prove the name does not
exist, is not covered by a wildcard and is not below a delegation or DNAME.
Anything unusual (DO bit, EDNS options, compression in the question, odd
label bytes, signed zones) takes the full path.

The same holds, with no authority section at all, for the two answers that depend
on nothing but the query and whether a zone is there to answer: REFUSED for a name
of no zone served here, and SERVFAIL for a zone with nothing to serve yet (before its
first transfer) or expired.  Both cost ~70 us on the full path, and both are what a
server answers most while 10,000 zones come in at a cold start (or what a flood of
names it does not serve asks), so they are learnt the same way (:meth:`learn_refusal`)
and answered from their template while the condition holds (:meth:`refusal`).
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from secdns.server.front import PlainQuery, scan_plain
from secdns.server.zone import ServedZone, ZoneTable, ZoneVersion, line_fields

_SOA = int(dns.rdatatype.SOA)
_SIMPLE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_PLAIN_TYPES = frozenset(
    int(t)
    for t in (
        dns.rdatatype.A,
        dns.rdatatype.AAAA,
        dns.rdatatype.MX,
        dns.rdatatype.TXT,
        dns.rdatatype.NS,
        dns.rdatatype.CNAME,
        dns.rdatatype.SOA,
        dns.rdatatype.SRV,
        dns.rdatatype.PTR,
        dns.rdatatype.CAA,
        dns.rdatatype.HTTPS,
        dns.rdatatype.SVCB,
        dns.rdatatype.NAPTR,
        dns.rdatatype.DS,
        dns.rdatatype.DNAME,
        dns.rdatatype.TLSA,
        dns.rdatatype.SSHFP,
        dns.rdatatype.HINFO,
        dns.rdatatype.LOC,
        dns.rdatatype.URI,
    )
)
_SIGNED_TYPES = ("RRSIG", "NSEC", "NSEC3", "DNSKEY")
_RD_CD = int(dns.flags.RD | dns.flags.CD)  # (an int: each operation on the enum costs ~1 us)


def parse_plain(wire: bytes) -> PlainQuery | None:
    """A plain query (:func:`~secdns.server.front.scan_plain`) of the shape the templates
    answer: a QUERY with QR clear, one IN question of a common type with simple labels,
    and no OPT or an EDNS 0 OPT without DO."""
    query = scan_plain(wire)
    if query is None:
        return None
    if query.flags & 0xF800 or query.qclass != 1 or query.qtype not in _PLAIN_TYPES:
        return None  # QR, opcode
    if query.opt_ttl is not None and query.opt_ttl & 0x00FF8000:  # version, DO
        return None
    simple = _SIMPLE.issuperset
    for label in query.labels:
        if not simple(label):
            return None
    return query


class _Template:
    __slots__ = ("generation", "flags", "soa_tail", "opt_rr", "apex_len")

    def __init__(
        self, generation: int, flags: int, soa_tail: bytes, opt_rr: bytes, apex_len: int
    ) -> None:
        self.generation = generation
        self.flags = flags
        self.soa_tail = soa_tail  # type, class, TTL, rdlength, rdata (names uncompressed)
        self.opt_rr = opt_rr  # the OPT RR of the answer, or b""
        self.apex_len = apex_len


def _soa_tail(version: ZoneVersion) -> bytes:
    rrset = version.soa_rrset()
    soa = rrset[0]
    ttl = min(rrset.ttl, soa.minimum)
    rdata = (
        soa.mname.to_wire()
        + soa.rname.to_wire()
        + struct.pack("!IIIII", soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum)
    )
    return struct.pack("!HHIH", dns.rdatatype.SOA, 1, ttl, len(rdata)) + rdata


def _signed(version: ZoneVersion) -> bool:
    return any(line_fields(line)[2] in _SIGNED_TYPES for line in version.lines(version.origin_key))


_REFUSALS = {
    "refused": dns.rcode.REFUSED,
    "unready": dns.rcode.SERVFAIL,
    "expired": dns.rcode.SERVFAIL,
}
"""The states :meth:`NegativeAnswers.learn_refusal` learns the answer of, and its rcode:
no zone holds the name; its zone has no version yet; its zone expired."""


class NegativeAnswers:
    """NXDOMAIN templates per zone and query shape, learnt from (and checked against)
    the full answer path; and the templates of REFUSED (no zone) and SERVFAIL (a zone
    with nothing to serve) per query shape."""

    def __init__(self, table: ZoneTable) -> None:
        self.table = table
        self.templates: dict[tuple[str, int, bool], _Template | None] = {}
        # (state, RD|CD bits, EDNS): the answer's flags and its OPT RR, or None when the
        # full path's answer was not of that simple shape (it keeps answering then)
        self.refusals: dict[tuple[str, int, bool], tuple[int, bytes] | None] = {}
        self.used = 0

    def _state(self, query: PlainQuery) -> str | None:
        """ "refused" (no zone holds the name), "unready" (its zone has no version yet),
        "expired", or None (a zone answers: the other paths)."""
        found = self._zone(query.labels)
        if found is None:
            return "refused"
        zone = found[0]
        if zone.version is None:
            return "unready"
        return "expired" if zone.expired else None

    def refusal(self, wire: bytes) -> bytes | None:
        """The REFUSED or SERVFAIL answer to ``wire`` when no zone holds its name, or its
        zone has nothing to serve, and the template of its shape was learnt."""
        if not self.refusals:
            return None
        query = parse_plain(wire)
        if query is None:
            return None
        state = self._state(query)
        if state is None:
            return None
        rd_cd = query.flags & _RD_CD
        template = self.refusals.get((state, rd_cd, query.opt_ttl is not None))
        if template is None:
            return None
        flags, opt_rr = template
        self.used += 1
        header = wire[:2] + struct.pack("!HHHHH", flags | rd_cd, 1, 0, 0, 1 if opt_rr else 0)
        return header + wire[12 : query.qname_end + 4] + opt_rr

    def learn_refusal(self, wire: bytes, reply: bytes) -> None:
        """After the full path answered ``wire`` with ``reply``: when it is the REFUSED of
        a name no zone holds, or the SERVFAIL of a zone with nothing to serve, make the
        template of the query's shape, kept only if it reproduces ``reply`` byte for byte."""
        if len(reply) < 12 or reply[3] & 0xF not in (dns.rcode.REFUSED, dns.rcode.SERVFAIL):
            return
        query = parse_plain(wire)
        if query is None:
            return
        state = self._state(query)
        if state is None or _REFUSALS[state] != reply[3] & 0xF:
            return
        key = (state, query.flags & _RD_CD, query.opt_ttl is not None)
        if key in self.refusals:
            return
        question_end = query.qname_end + 4
        flags = struct.unpack_from("!H", reply, 2)[0] & ~_RD_CD
        self.refusals[key] = (flags, reply[question_end:])
        used = self.used
        mine = self.refusal(wire)
        self.used = used
        if mine != reply:  # another shape (an EDE, a section): the full path goes on
            self.refusals[key] = None

    def _zone(self, labels: list[bytes]) -> tuple[ServedZone, list[str]] | None:
        keys = []
        text = "."
        for label in reversed(labels):
            text = label.decode("ascii").lower() + ("." + text if text != "." else ".")
            keys.append(text)
        # keys: from the top-level label down to the qname; the deepest zone wins
        zones = self.table.zones
        for index in range(len(keys) - 1, -1, -1):
            zone = zones.get(keys[index])
            if zone is not None:
                return zone, keys[index:]
        zone = zones.get(".")
        return (zone, ["."] + keys) if zone is not None else None

    def answer(self, wire: bytes) -> bytes | None:
        """The NXDOMAIN answer for ``wire`` if it provably is one and a template exists."""
        query = parse_plain(wire)
        if query is None or query.qtype == _SOA:  # (type SOA: its TTL 0, zero-no-soa-ttl)
            return None
        found = self._zone(query.labels)
        if found is None:
            return None
        zone, chain = found  # chain: apex key, then each name down to the qname
        version = zone.version
        if version is None or zone.expired or len(chain) < 2:
            return None
        rd_cd = query.flags & _RD_CD
        template = self.templates.get((zone.key, rd_cd, query.opt_ttl is not None))
        if template is None or template.generation != zone.generation:
            return None
        # the qname must not exist; its closest encloser must exist with no wildcard below,
        # and nothing from there up to the apex may be a delegation or a DNAME
        if version.exists(chain[-1]):
            return None
        index = len(chain) - 2
        while index > 0 and not version.exists(chain[index]):
            index -= 1
        encloser = chain[index]
        if version.exists("*." + encloser if encloser != "." else "*."):
            return None
        for position in range(index, -1, -1):
            for line in version.lines(chain[position]):
                rtype = line_fields(line)[2]
                if rtype == "DNAME" or (rtype == "NS" and position != 0):
                    return None
        self.used += 1
        apex_offset = query.qname_end - template.apex_len
        question_end = query.qname_end + 4
        flags = template.flags | rd_cd
        header = wire[:2] + struct.pack("!HHHHH", flags, 1, 0, 1, 1 if template.opt_rr else 0)
        return (
            header
            + wire[12:question_end]
            + struct.pack("!H", 0xC000 | apex_offset)
            + template.soa_tail
            + template.opt_rr
        )

    def learn(self, wire: bytes, reply: bytes, zone: ServedZone | None) -> None:
        """After the full path answered ``wire`` with ``reply``: make a template if it is a
        plain NXDOMAIN, and keep it only if it reproduces ``reply``."""
        if zone is None or zone.version is None or len(reply) < 12:
            return
        if reply[3] & 0xF != dns.rcode.NXDOMAIN:
            return
        query = parse_plain(wire)
        if query is None or query.qtype == _SOA:
            return
        key = (zone.key, query.flags & _RD_CD, query.opt_ttl is not None)
        current = self.templates.get(key)
        if current is not None and current.generation == zone.generation:
            return
        version = zone.version
        if _signed(version):
            self.templates[key] = None  # DO-less answers are simple, but keep it strict
            return
        try:
            response = dns.message.from_wire(reply)
        except Exception:
            return
        opt_rr = b""
        if response.edns >= 0:
            opt = dns.message.make_query(
                "a.",
                "A",
                use_edns=response.edns,
                payload=response.payload,
                ednsflags=response.ednsflags,
            )
            opt_rr = opt.to_wire()[-11:]
        flags = (struct.unpack_from("!H", reply, 2)[0]) & ~_RD_CD
        origin_wire = zone.origin.to_wire()
        assert origin_wire is not None  # to_wire() returns None only when given a file
        template = _Template(zone.generation, flags, _soa_tail(version), opt_rr, len(origin_wire))
        self.templates[key] = template
        used = self.used
        mine = self.answer(wire)
        self.used = used
        if mine is None or not _same(mine, reply):
            self.templates[key] = None


def _same(a: bytes, b: bytes) -> bool:
    try:
        ma, mb = dns.message.from_wire(a), dns.message.from_wire(b)
    except Exception:
        return False
    if (ma.id, ma.flags, ma.rcode(), ma.edns, ma.payload, ma.ednsflags) != (
        mb.id,
        mb.flags,
        mb.rcode(),
        mb.edns,
        mb.payload,
        mb.ednsflags,
    ):
        return False
    if [q.to_text() for q in ma.question] != [q.to_text() for q in mb.question]:
        return False
    for left, right in (
        (ma.answer, mb.answer),
        (ma.authority, mb.authority),
        (ma.additional, mb.additional),
    ):
        if len(left) != len(right):
            return False
        for x, y in zip(left, right, strict=True):
            if x != y or x.ttl != y.ttl:
                return False
    return True


def split_cookie(wire: bytes) -> tuple[bytes, bytes] | None:
    """The query without its DNS COOKIE option (RFC 7873) and the client cookie, or None if
    it has none (or a malformed one: the full path answers FORMERR).

    The answer does not depend on the cookie, only the COOKIE option in it does, so the
    server caches answers under the query without it and adds a fresh server cookie.
    Only the common shape is handled: one question, and the OPT record last with a
    single COOKIE option.
    """
    if len(wire) < 17:
        return None
    qd, an, ns, ar = struct.unpack_from("!HHHH", wire, 4)
    if qd != 1 or an or ns or ar != 1:
        return None
    offset = 12
    end = len(wire)
    while offset < end:
        length = wire[offset]
        if length == 0:
            break
        if length > 63:
            return None
        offset += 1 + length
    offset += 5  # root label, QTYPE, QCLASS
    if offset + 11 > end or wire[offset] != 0:
        return None
    rtype, _payload, _ttl, rdlen = struct.unpack_from("!HHIH", wire, offset + 1)
    if rtype != 41 or offset + 11 + rdlen != end or rdlen < 12:
        return None
    code, option_len = struct.unpack_from("!HH", wire, offset + 11)
    if code != 10 or option_len + 4 != rdlen or not (option_len == 8 or 16 <= option_len <= 40):
        return None
    return wire[: offset + 9] + b"\x00\x00", wire[offset + 15 : offset + 23]
