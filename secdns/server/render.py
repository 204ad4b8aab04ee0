"""Writing an answer to the wire the way BIND's renderer does (lib/dns/message.c, compress.c).

:class:`Result` is a response in parts (flags, rcode, sections, EDE), made by
the lookup (:mod:`secdns.server.lookup`); :func:`render` writes it into the
size the client allows, truncating as BIND does:

* Without EDNS an answer or authority section that does not fit is cut record
  by record (a partial RRset), with TC; with EDNS (whose OPT is reserved
  first) whole RRsets only.  The additional section is filled A first, then
  AAAA, then RRSIGs, then the rest, and stops silently at the first RRset that
  does not fit (``dns_message_rendersection``).
* Names are compressed case-sensitively, and only against a name or its
  parent, as BIND does, so sizes and truncation points are BIND's too.

:class:`Wire` is also the writer of zone transfers out (:mod:`secdns.server.xfrout`).
"""

from __future__ import annotations

import dataclasses
import struct
import time
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

from secdns.server.zone import ServedZone

EDNS_PAYLOAD = 1232
"""Our EDNS UDP payload size, and the largest UDP answer we send (BIND's max-udp-size)."""

_IN = dns.rdataclass.IN
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
_RRSIG = dns.rdatatype.RRSIG
_NSEC = dns.rdatatype.NSEC
_DNSKEY = dns.rdatatype.DNSKEY


@dataclasses.dataclass(slots=True)
class Result:
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
    options: bytes = b""
    """More EDNS options for the OPT, wire-encoded (the front's COOKIE, EXPIRE, keepalive)."""

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


# --- rendering ----------------------------------------------------------------------------------


class TooBig(Exception):
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
HEADER = struct.Struct("!HHHHHH")
RR_HEADER = struct.Struct("!HHIH")


class Wire:
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
        fields: Any = rd  # the per-type fields (target, exchange, ...) are not in Rdata's stubs
        if rdtype in _NAME_RDATA:
            self.name(fields.target)
        elif rdtype == dns.rdatatype.MX:
            out += struct.pack("!H", fields.preference)
            self.name(fields.exchange)
        elif rdtype == _SOA:
            self.name(fields.mname)
            self.name(fields.rname)
            out += struct.pack(
                "!IIIII", fields.serial, fields.refresh, fields.retry, fields.expire, fields.minimum
            )
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
        out += RR_HEADER.pack(rdtype, rdclass, ttl, 0)
        start = len(out)
        if rd is not None:
            self.rdata(rd)
        struct.pack_into("!H", out, start - 2, len(out) - start)

    def rrset(self, section: int, rrset: dns.rrset.RRset, partial: bool = False) -> None:
        """Write a whole RRset, or raise TooBig with nothing written; with ``partial``,
        write the records that fit and then raise."""
        start = len(self.out)
        written = 0
        for rd in rrset:
            mark = len(self.out)
            self.record(rrset.name, rrset.rdtype, rrset.rdclass, rrset.ttl, rd)
            if len(self.out) > self.limit:
                self.rollback(mark if partial else start)
                self.counts[section] += written if partial else 0
                raise TooBig
            written += 1
        self.counts[section] += written

    def rollback(self, position: int) -> None:
        del self.out[position:]
        stale = [labels for labels, offset in self.table.items() if offset >= position]
        for labels in stale:
            del self.table[labels]

    def header(self, message_id: int, flags: int) -> None:
        HEADER.pack_into(self.out, 0, message_id, flags, *self.counts)


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


def render(result: Result, max_size: int) -> bytes:
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
        options += result.options
        ttl = (result.rcode >> 4) << 24 | (query.ednsflags & dns.flags.DO)
        opt = b"\x00" + RR_HEADER.pack(dns.rdatatype.OPT, EDNS_PAYLOAD, ttl, len(options)) + options
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
    wire = Wire(max_size - reserved)
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
    except TooBig:
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
    wire: Wire, additional: list[dns.rrset.RRset], required_glue: dns.rrset.RRset | None
) -> bool:
    """The additional section in BIND's passes (A, then AAAA, then RRSIG and DNSKEY, then
    the rest), stopping at the first RRset that does not fit; True if required glue (the
    glue that answers the question) did not fit: TC."""
    done = [False] * len(additional)
    if required_glue is not None and additional and additional[0] is required_glue:
        try:
            wire.rrset(3, additional[0])
        except TooBig:
            return True
        done[0] = True
    for pass_ in (4, 3, 2, 1):
        for position, rrset in enumerate(additional):
            if done[position] or _pass_needed(rrset) < pass_:
                continue
            try:
                wire.rrset(3, rrset)
            except TooBig:
                return False
            done[position] = True
    return False
