"""The queries of a refresh check (RFC 1034 4.3.5): SOA, AXFR and IXFR, built and read
without dnspython objects.

A server with 10,000 secondary zones asks 10,000 SOA queries at start and again
at every refresh.  ``dns.message.from_wire`` builds a name, rdata and rdataset
object graph for every record of the answer (BIND adds the apex NS in the
authority section and their addresses as glue), about a millisecond of CPU per
answer; this reads only what the check uses: the header, the question (to match
the answer to the query, as ``dns.message.Message.is_response`` does), the SOA
of the zone in the answer section, and the EDNS EXPIRE option (RFC 7314) of the
OPT record.  Other records are skipped by their RDLENGTH.

:func:`transfer_query` builds an unsigned AXFR or IXFR (RFC 1995 3) request the same
way, so that a small zone's transfer does not build a dnspython message to send.

Pure: no sockets (the engine sends and receives).  Malformed answers raise
:class:`secdns.wire.WireError`, naming the offset, as strictly as the transfer
decoder: names must end inside the message, compression pointers must point
backwards, and nothing may follow the last record.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import threading
from typing import TYPE_CHECKING

import dns.name

from secdns.wire import WireError, expire_option

if TYPE_CHECKING:
    import dns.message

SOA = 6
OPT = 41
IXFR = 251
AXFR = 252
IN = 1
EDNS_EXPIRE = 9
PAYLOAD = 1232
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_TIMERS = struct.Struct("!IIIII")
_QR, _AA, _TC = 0x8000, 0x0400, 0x0200
# OPT: root owner, type OPT, class = payload, TTL 0 (version 0, DO clear), one empty EXPIRE option
_OPT_RR = b"\x00" + struct.pack("!HHIH", OPT, PAYLOAD, 0, 4) + struct.pack("!HH", EDNS_EXPIRE, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class SoaAnswer:
    """What a SOA answer says, for the refresh check (RFC 1034 4.3.5, RFC 7314)."""

    rcode: int  # with the OPT record's extended bits (RFC 6891 6.1.3)
    authoritative: bool  # AA
    truncated: bool  # TC: ask again over TCP
    soa: tuple[int, int, int, int, int, int] | None  # serial, refresh, retry, expire, minimum, TTL
    edns_expire: int | None


_ids = bytearray()
_ids_lock = threading.Lock()
_ID_BYTES = 4096
os.register_at_fork(after_in_child=_ids.clear)  # a child never repeats its parent's IDs


def query_id() -> int:
    """A random message ID (RFC 5452 9.2) from the operating system's CSPRNG, as
    ``secrets.randbelow(65536)`` gives, but read 2,048 IDs at a time: ``randbelow``
    asks the kernel once or twice per ID (a system call each, and a hand-over of the
    interpreter to other threads), and serve asks one per zone at a cold start.
    Each ID is used once; a forked child reads its own."""
    with _ids_lock:
        if not _ids:
            _ids.extend(os.urandom(_ID_BYTES))
        found = _ids[-1] << 8 | _ids[-2]
        del _ids[-2:]
    return found


def question(origin: dns.name.Name) -> bytes:
    """The question section of a SOA query for ``origin`` (its wire name, SOA, IN)."""
    name = origin.to_wire()
    assert name is not None  # no file given: the wire form is returned
    return name + struct.pack("!HH", SOA, IN)


def make_query(query_id: int, asked: bytes) -> bytes:
    """A SOA query (RD clear, EDNS0 with a 1232-octet payload and an empty EXPIRE
    option, as dnspython's ``make_query`` in :func:`secdns.engine.probe_soa` builds it)."""
    return _HEADER.pack(query_id, 0, 1, 0, 0, 1) + asked + _OPT_RR


def transfer_query(
    query_id: int,
    origin: dns.name.Name,
    ixfr_serial: int | None = None,
    soa_names: tuple[dns.name.Name, dns.name.Name] | None = None,
    *,
    expire: bool = False,
) -> bytes:
    """An unsigned AXFR query, or with ``ixfr_serial`` an IXFR query whose authority
    section holds our SOA (RFC 1995 3: MNAME and RNAME from ``soa_names``, else the
    root; the timers 0), RD clear: what :func:`secdns.engine.transfer` asks.  With
    ``expire``, EDNS0 with an empty EXPIRE option as the SOA query has (RFC 7314 4:
    the primary answers it in the transfer, so a transfer asked without a SOA probe
    first still learns it)."""
    name = origin.to_wire()
    assert name is not None  # no file given: the wire form is returned
    opt, arcount = (_OPT_RR, 1) if expire else (b"", 0)
    if ixfr_serial is None:
        return (
            _HEADER.pack(query_id, 0, 1, 0, 0, arcount) + name + struct.pack("!HH", AXFR, IN) + opt
        )
    mname, rname = soa_names or (dns.name.root, dns.name.root)
    mwire, rwire = mname.to_wire(), rname.to_wire()
    assert mwire is not None and rwire is not None
    rdata = mwire + rwire + _TIMERS.pack(ixfr_serial, 0, 0, 0, 0)
    return (
        _HEADER.pack(query_id, 0, 1, 0, 1, arcount)
        + name
        + struct.pack("!HH", IXFR, IN)
        + b"\xc0\x0c"  # the owner: a pointer to the question's name
        + _RR.pack(SOA, IN, 0, len(rdata))
        + rdata
        + opt
    )


def question_left_out(qdcount: int, rcode: int) -> bool:
    """Whether an answer without the question may still be the answer: an error may
    leave it out (RFC 1035 4.1.2 has it copied, but NSD answers a NOTIFY or query whose
    TSIG fails NOTAUTH with QDCOUNT 0; dnspython's ``is_response`` takes only FORMERR,
    SERVFAIL, NOTIMP and REFUSED so).  The one rule for :func:`read_answer` and
    :func:`answers`."""
    return qdcount == 0 and rcode != 0


def answers(query: dns.message.Message, response: dns.message.Message) -> bool:
    """Whether ``response`` is the answer to ``query`` (NOTIFY, XoT): dnspython's
    ``is_response``, and an error answer without the question (:func:`question_left_out`)
    with the query's ID and opcode."""
    if query.is_response(response):
        return True
    return (
        bool(response.flags & _QR)
        and response.id == query.id
        and response.opcode() == query.opcode()
        and question_left_out(len(response.question), response.rcode())
    )


def read_answer(wire: bytes, query_id: int, asked: bytes) -> SoaAnswer | None:
    """Read a SOA answer; None when it is not the answer to this query (another ID,
    no QR, another question: dnspython's ``ignore_unexpected`` drops those too)."""
    end = len(wire)
    if end < 12:
        return None
    answer_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire, 0)
    if answer_id != query_id or not flags & _QR or flags & 0x7800:  # opcode QUERY only
        return None
    if qdcount != 1:
        if question_left_out(qdcount, flags & 0xF):
            return SoaAnswer(flags & 0xF, bool(flags & _AA), bool(flags & _TC), None, None)
        return None
    pos = 12 + len(asked)
    if pos > end or wire[12:pos].lower() != asked.lower():
        return None
    if flags & _TC:  # asked again over TCP: the rest may be cut short, and is not read
        return SoaAnswer(flags & 0xF, bool(flags & _AA), True, None, None)
    soa: tuple[int, int, int, int, int, int] | None = None
    rcode = flags & 0xF
    edns_expire: int | None = None
    total = ancount + nscount + arcount
    for index in range(total):
        owner = pos
        pos = _skip_name(wire, pos)
        if pos + 10 > end:
            raise WireError(f"record header at offset {pos} is truncated")
        rtype, rclass, ttl, rdlength = _RR.unpack_from(wire, pos)
        pos += 10
        rend = pos + rdlength
        if rend > end:
            raise WireError(f"rdata at offset {pos} runs past the end of the message")
        if index < ancount and rtype == SOA and rclass == IN and soa is None:
            if _same_name(wire, owner, asked):
                timers_at = _skip_name(wire, _skip_name(wire, pos))
                if timers_at + 20 != rend:
                    raise WireError(f"SOA rdata ending at offset {rend} has the wrong length")
                ttl = 0 if ttl > 0x7FFFFFFF else ttl  # RFC 2181 8, as dnspython reads it
                soa = (*_TIMERS.unpack_from(wire, timers_at), ttl)
        elif rtype == OPT and index >= ancount + nscount:
            rcode |= (ttl >> 24) << 4
            edns_expire = expire_option(wire, pos, rend)
        pos = rend
    if pos != end:
        raise WireError(f"{end - pos} octets of trailing garbage at offset {pos}")
    return SoaAnswer(rcode, bool(flags & _AA), bool(flags & _TC), soa, edns_expire)


def _skip_name(wire: bytes, pos: int) -> int:
    """The offset after the (possibly compressed) name at ``pos``."""
    end = len(wire)
    start = pos
    while True:
        if pos >= end:
            raise WireError(f"name at offset {start} runs past the end of the message")
        length = wire[pos]
        if length >= 0xC0:
            if pos + 2 > end:
                raise WireError(f"compression pointer at offset {pos} is truncated")
            if ((length & 0x3F) << 8 | wire[pos + 1]) >= start:
                raise WireError(f"compression pointer at offset {pos} does not point back")
            return pos + 2
        if length > 63:
            raise WireError(f"bad label length {length} at offset {pos}")
        pos += 1 + length
        if length == 0:
            return pos


def _same_name(wire: bytes, pos: int, asked: bytes) -> bool:
    """Whether the name at ``pos`` is the question's name (case-insensitive), following
    pointers (at most 16 hops, each strictly backwards)."""
    name = asked[:-4].lower()
    done = 0
    for _hop in range(17):
        while True:
            if pos >= len(wire):
                raise WireError(f"name at offset {pos} runs past the end of the message")
            length = wire[pos]
            if length >= 0xC0:
                if pos + 1 >= len(wire):
                    raise WireError(f"compression pointer at offset {pos} is truncated")
                target = (length & 0x3F) << 8 | wire[pos + 1]
                if target >= pos:
                    raise WireError(f"compression pointer at offset {pos} does not point back")
                pos = target
                break
            label = wire[pos : pos + 1 + length].lower()
            if name[done : done + len(label)] != label:
                return False
            done += len(label)
            pos += 1 + length
            if length == 0:
                return done == len(name)
    raise WireError("a name's compression pointers make more than 16 hops")
