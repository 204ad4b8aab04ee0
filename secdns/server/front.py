"""The front of the answer path: query bytes in, a :class:`Reply` out; never raises.

:func:`handle` reads the header once and says what the packet is: responses
(QR=1) and runts are dropped, NOTIFY goes back to the server, UPDATE is
refused and other opcodes get NOTIMP here.  A QUERY is parsed (the common
shape by :func:`scan_plain`, shared with the NXDOMAIN fast path; anything else
by dnspython, which checks TSIG), FORMERR/BADVERS/TSIG errors are answered,
zone transfers go back to the server with the parsed query, and everything
else is looked up (:mod:`secdns.server.lookup`) and rendered
(:mod:`secdns.server.render`) into the size the client allows.

EDNS options answered here: COOKIE (RFC 7873, server cookies in RFC 9018's
layout, a fresh one in every reply; a bad length is FORMERR with the question
and an OPT, as BIND; like BIND without ``require-server-cookie`` we never send
BADCOOKIE), EXPIRE (RFC 7314, on SOA answers at the apex; transfers in
:mod:`secdns.server.xfrout`) and TCP keepalive (RFC 7828, over TCP only).
UPDATE and unknown opcodes that came signed get a signed refusal (RFC 8945).

Every header-only error reply is built by :func:`error_reply`: the question
echoed where it parses, and an OPT record whenever the query had a valid one
(RFC 6891 6.1.1), as BIND does.  Where secdns differs from BIND on purpose:
queries with trailing bytes after the question get FORMERR (BIND ignores the
junk).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import struct
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

from secdns import tsigerror
from secdns.replies import make_response
from secdns.server.lookup import Answerer
from secdns.server.render import EDNS_PAYLOAD, HEADER, RR_HEADER, Result, render
from secdns.server.zone import ServedZone, ZoneTable

_AXFR = dns.rdatatype.AXFR
_IXFR = dns.rdatatype.IXFR
_OPT = dns.rdatatype.OPT
_SOA = dns.rdatatype.SOA

COOKIE = 10
EXPIRE = 9
KEEPALIVE = 11
COOKIE_OPTION_SIZE = 4 + 8 + 16
"""A COOKIE option as we send it: code, length, client cookie, RFC 9018 server cookie."""
TCP_IDLE_TIMEOUT = 10.0
_COOKIE_HASH = hashlib.blake2b(key=os.urandom(16), digest_size=8)  # a secret per process
_COOKIE_PAST = 3600  # RFC 9018 4.3: a server cookie is good for an hour
_COOKIE_FUTURE = 300


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
    """"query", "notify", "xfr", "update", "tsig" (a TSIG that does not verify) or "error"."""
    query: dns.message.Message | None = None
    """For "xfr": the parsed query (TSIG verified), so the server does not parse it again."""
    cookie: int = 0
    """Bytes at the end of ``wire`` that are the COOKIE option, when it is the OPT's only
    option (the server caches the reply without it and adds a fresh one per query)."""
    detail: str = ""
    """For "tsig" (a TSIG that does not verify, answered NOTAUTH): what was asked with
    which key, and the TSIG error, for the server's log."""
    signer: str = ""
    """For "tsig": the name of the key the query was signed with (its log's bound)."""


_DROP = Reply(None, False, None, "error")
_NOTIFY = Reply(None, False, None, "notify")


def handle(
    wire: bytes,
    table: ZoneTable,
    *,
    tcp: bool,
    keyring: dict[dns.name.Name, dns.tsig.Key] | None = None,
    client: str = "",
    idle_timeout: float = TCP_IDLE_TIMEOUT,
) -> Reply:
    """Answer one query packet from address ``client``; never raises.

    NOTIFY comes back as ``kind`` "notify" and AXFR/IXFR as "xfr" (with the
    parsed query), both with ``wire=None``: the server deals with those.
    UPDATE is answered REFUSED (kind "update"), other opcodes NOTIMP.  Packets
    too short for a header, and responses (QR=1), are dropped (``wire=None``,
    kind "error").
    """
    try:
        return _handle(wire, table, tcp, keyring, client, idle_timeout)
    except Exception:  # noqa: BLE001 - a query must never crash the listener
        return _error(wire, dns.rcode.SERVFAIL)


def _handle(
    wire: bytes,
    table: ZoneTable,
    tcp: bool,
    keyring: dict[dns.name.Name, dns.tsig.Key] | None,
    client: str,
    idle_timeout: float,
) -> Reply:
    if len(wire) < 12:
        return _DROP
    flags = (wire[2] << 8) | wire[3]
    if flags & dns.flags.QR:
        return _DROP
    opcode = (flags >> 11) & 0xF
    if opcode == dns.opcode.NOTIFY:
        return _NOTIFY
    if opcode != dns.opcode.QUERY:
        return _refuse_opcode(wire, opcode, keyring)
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
        # a bad OPT record: the question, no OPT (as BIND)
        return _error(wire, dns.rcode.FORMERR, edns=False, keep_cd=True)
    except (dns.exception.DNSException, ValueError, IndexError, KeyError, UnicodeError):
        problem = _bad_options(wire)
        if problem == "cookie":  # the question and an OPT, as BIND
            return _error(wire, dns.rcode.FORMERR, keep_cd=True)
        if problem == "options":  # the OPT does not read: the question only
            return _error(wire, dns.rcode.FORMERR, edns=False, keep_cd=True)
        return _error(wire, dns.rcode.FORMERR, question=False)
    if len(query.question) != 1:
        cookie_only = _cookie_only(query, client)
        if cookie_only is not None:
            return Reply(cookie_only, False, None, "query")
        return _error(wire, dns.rcode.FORMERR, question=False)
    if query.question[0].rdtype in (_AXFR, _IXFR):
        return Reply(None, False, None, "xfr", query)
    result = Answerer(query, table, tcp).run()
    if tcp:
        limit = 65535
    elif query.edns >= 0:
        limit = max(512, min(query.payload, EDNS_PAYLOAD))
    else:
        limit = 512
    cookie = 0
    if query.options:
        cookie = _add_options(query, result, tcp, client, idle_timeout)
    out = render(result, limit)
    cacheable = result.cacheable and not query.had_tsig and (not query.options or cookie > 0)
    return Reply(out, cacheable, result.zone, "query", cookie=cookie)


# --- EDNS options: COOKIE (RFC 7873, 9018), EXPIRE (RFC 7314), TCP keepalive (RFC 7828) --------


def _add_options(
    query: dns.message.Message, result: Result, tcp: bool, client: str, idle_timeout: float
) -> int:
    """Put the options answering the query's into ``result``; the length of the COOKIE
    option if it is the only one (then last), else 0."""
    options = b""
    cookie = b""
    for option in query.options:
        code = option.otype
        if code == COOKIE:
            assert isinstance(option, dns.edns.CookieOption)  # dnspython parses every COOKIE so
            cookie = cookie_option(option.client, client)
        elif code == KEEPALIVE and tcp:  # never over UDP (RFC 7828 3.3.2)
            options += struct.pack("!HHH", KEEPALIVE, 2, min(int(idle_timeout * 10), 0xFFFF))
        elif code == EXPIRE:
            seconds = _expire_seconds(query, result)
            if seconds is not None:
                options += struct.pack("!HHI", EXPIRE, 4, seconds)
    result.options = options + cookie
    only_cookie = cookie and not options and result.ede is None and len(query.options) == 1
    return len(cookie) if only_cookie else 0


def _cookie_only(query: dns.message.Message, client: str) -> bytes | None:
    """The reply to a query for a server cookie alone (RFC 7873 5.4: no question, an OPT
    with a COOKIE): NOERROR, no records, the client's cookie and a fresh server cookie,
    as BIND answers it; None for any other question-less query (FORMERR)."""
    if query.question or query.answer or query.authority or query.edns != 0:
        return None
    cookies = [option for option in query.options if option.otype == COOKIE]
    if len(cookies) != 1:
        return None
    option = cookies[0]
    assert isinstance(option, dns.edns.CookieOption)  # dnspython parses every COOKIE so
    answered = cookie_option(option.client, client)
    flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    head = struct.pack("!HHHHHH", query.id, flags, 0, 0, 0, 1)
    do = query.ednsflags & dns.flags.DO  # (echoed: RFC 3225 3)
    return head + struct.pack("!BHHIH", 0, _OPT, EDNS_PAYLOAD, do, len(answered)) + answered


def _expire_seconds(query: dns.message.Message, result: Result) -> int | None:
    """RFC 7314 on an SOA answer at a zone's apex: the seconds before our copy expires."""
    zone = result.zone
    question = query.question[0]
    if zone is None or zone.version is None or question.rdtype != _SOA:
        return None
    if result.rcode != dns.rcode.NOERROR or question.name != zone.origin:
        return None
    return expire_seconds(zone)


def expire_seconds(zone: ServedZone) -> int:
    """The EDNS EXPIRE value of ``zone``: seconds left before our copy expires, or the
    SOA EXPIRE field when the zone does not expire here (a primary zone)."""
    if zone.expires_at is None:
        assert zone.version is not None
        return int(zone.version.soa_rrset()[0].expire)
    return max(0, min(int(zone.expires_at - time.time()), 0xFFFFFFFF))


def _address_bytes(client: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in client else socket.AF_INET, client)
    except OSError:
        return client.encode()


def server_cookie(client_cookie: bytes, client: str, now: int | None = None) -> bytes:
    """A server cookie in RFC 9018's layout (version 1, reserved, timestamp, 8-byte hash)
    for ``client_cookie`` from address ``client``.  The hash is keyed BLAKE2b with a
    secret made at start, not SipHash-2-4: the secret is never shared with other servers,
    so only this process ever checks the cookies it issued."""
    stamp = struct.pack("!BBBBI", 1, 0, 0, 0, int(time.time() if now is None else now) & 0xFFFFFFFF)
    hasher = _COOKIE_HASH.copy()
    hasher.update(client_cookie + stamp + _address_bytes(client))
    return stamp + hasher.digest()


def cookie_valid(client_cookie: bytes, cookie: bytes, client: str) -> bool:
    """Whether ``cookie`` is a server cookie we issued to ``client`` within the hour."""
    if len(cookie) != 16 or cookie[0] != 1:
        return False
    stamp = struct.unpack_from("!I", cookie, 4)[0]
    now = int(time.time())
    age = (now - stamp) & 0xFFFFFFFF
    if age > _COOKIE_PAST and (stamp - now) & 0xFFFFFFFF > _COOKIE_FUTURE:
        return False
    return server_cookie(client_cookie, client, stamp) == cookie


def cookie_option(client_cookie: bytes, client: str) -> bytes:
    """The COOKIE option of a reply: the client's cookie and a fresh server cookie.

    A fresh one every time, whether the query brought a valid server cookie, an old
    one or none: BIND (without ``require-server-cookie``) answers all three normally,
    as RFC 7873 5.2 allows, and so never sends BADCOOKIE."""
    data = client_cookie + server_cookie(client_cookie, client)
    return struct.pack("!HH", COOKIE, len(data)) + data


def add_cookie(reply: bytes, option: bytes) -> bytes | None:
    """``reply``, whose last record is an OPT without options, with ``option`` in it; None
    if the reply does not end so."""
    if len(reply) < 23 or reply[-11:-8] != b"\x00\x00\x29" or reply[-2:] != b"\x00\x00":
        return None
    return reply[:-2] + struct.pack("!H", len(option)) + option


def _bad_options(wire: bytes) -> str | None:
    """What is wrong with the options of the query's OPT: "options" when they do not read,
    "cookie" for a COOKIE of a bad length (RFC 7873 5.2.2), None if neither."""
    span = _find_opt(wire)
    if span is None:
        return None
    position, end = span
    while position < end:
        if position + 4 > end:
            return "options"
        code, size = struct.unpack_from("!HH", wire, position)
        position += 4
        if position + size > end:
            return "options"
        if code == COOKIE and not (size == 8 or 16 <= size <= 40):
            return "cookie"
        position += size
    return None


# --- the common query, parsed fast ---------------------------------------------------------------


class PlainQuery:
    """The fields of a query of the common shape (see :func:`scan_plain`)."""

    __slots__ = ("id", "flags", "labels", "qname_end", "qtype", "qclass", "opt_ttl", "payload")

    def __init__(
        self,
        message_id: int,
        flags: int,
        labels: list[bytes],
        qname_end: int,
        qtype: int,
        qclass: int,
        opt_ttl: int | None,
        payload: int,
    ) -> None:
        self.id = message_id
        self.flags = flags
        self.labels = labels  # the question name's labels, without the root
        self.qname_end = qname_end  # offset just past the name's root label
        self.qtype = qtype
        self.qclass = qclass
        self.opt_ttl = opt_ttl  # the OPT's TTL field (extended rcode, version, DO), or None
        self.payload = payload


def scan_plain(wire: bytes) -> PlainQuery | None:
    """The common query: one question without compression, at most one OPT (root owner,
    no options) and nothing after it; None for anything else.  Both :func:`handle` and
    the NXDOMAIN fast path (:mod:`secdns.server.fastpath`) read queries with this."""
    if len(wire) < 17:
        return None
    message_id, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(wire)
    if qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    labels: list[bytes] = []
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
    qname_end = position
    if position + 4 > end:
        return None
    qtype, qclass = struct.unpack_from("!HH", wire, position)
    position += 4
    if arcount:
        if position + 11 != end or wire[position] != 0:
            return None
        rdtype, payload, ttl, rdlength = RR_HEADER.unpack_from(wire, position + 1)
        if rdtype != _OPT or rdlength:
            return None
        return PlainQuery(message_id, flags, labels, qname_end, qtype, qclass, ttl, payload)
    if position != end:
        return None
    return PlainQuery(message_id, flags, labels, qname_end, qtype, qclass, None, 0)


def _plain_query(wire: bytes) -> dns.message.Message | None:
    """:func:`scan_plain` as a dnspython message (without dnspython's general reader)."""
    plain = scan_plain(wire)
    if plain is None:
        return None
    try:
        qname = dns.name.Name([*plain.labels, b""])
    except dns.name.NameTooLong:
        return None
    query = dns.message.Message(id=plain.id)
    query.flags = dns.flags.Flag(plain.flags)
    query.question = [
        dns.rrset.RRset(
            qname,
            dns.rdataclass.RdataClass.make(plain.qclass),
            dns.rdatatype.RdataType.make(plain.qtype),
        )
    ]
    ttl = plain.opt_ttl
    if ttl is not None:
        query.use_edns((ttl >> 16) & 0xFF, ttl & 0xFFFF, plain.payload)
    return query


# --- error replies --------------------------------------------------------------------------------


def error_reply(
    wire: bytes,
    rcode: int,
    *,
    question: bool = True,
    edns: bool = True,
    keep_rd: bool = True,
    keep_cd: bool = False,
) -> bytes | None:
    """The one builder of header-only error replies (None for a packet without a header).

    The ID and opcode are the query's; RD (and CD) echoed when asked; the question
    echoed if ``question`` and the query has exactly one that reads; an OPT with our
    payload (and the extended rcode bits, and the query's DO: RFC 3225 3) if ``edns`` and
    the query had exactly one valid OPT: RFC 6891 6.1.1, an OPT in the query requires one
    in the reply.  Never larger than the query.
    """
    if len(wire) < 12:
        return None
    flags = (wire[2] << 8) | wire[3]
    flags = (
        (flags & 0x7800)
        | dns.flags.QR
        | (flags & dns.flags.RD if keep_rd else 0)
        | (flags & dns.flags.CD if keep_cd else 0)
        | (rcode & 0xF)
    )
    echoed = _read_question(wire) if question else None
    opt = b""
    found = _find_opt(wire) if edns else None
    if found is not None:  # (the query's DO echoed: RFC 3225 3, as BIND does)
        do = struct.unpack_from("!I", wire, found[0] - 6)[0] & dns.flags.DO
        opt = b"\x00" + RR_HEADER.pack(_OPT, EDNS_PAYLOAD, (rcode >> 4) << 24 | do, 0)
    head = wire[:2] + struct.pack("!HHHHH", flags, 1 if echoed else 0, 0, 0, 1 if opt else 0)
    return head + (echoed or b"") + opt


def _error(wire: bytes, rcode: int, **how: bool) -> Reply:
    return Reply(error_reply(wire, rcode, **how), False, None, "error")


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


def _skip_name(wire: bytes, position: int) -> int:
    while True:
        length = wire[position]
        if length >= 0xC0:
            return position + 2
        if length > 63:
            raise ValueError("bad label")
        position += 1 + length
        if length == 0:
            return position


def _has_opt(wire: bytes) -> bool:
    return _find_opt(wire) is not None


def _find_opt(wire: bytes) -> tuple[int, int] | None:
    """Where the options of the message's OPT record start and end, if it has exactly one,
    with the root owner, in its additional section, and every record reads."""
    try:
        qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHH", wire, 4)
        position = 12
        for _ in range(qdcount):
            position = _skip_name(wire, position) + 4
        found = None
        count = 0
        for number in range(ancount + nscount + arcount):
            start = position
            position = _skip_name(wire, position)
            rdtype, _class, _ttl, rdlength = RR_HEADER.unpack_from(wire, position)
            position += 10 + rdlength
            if rdtype == _OPT:
                if number < ancount + nscount or wire[start] != 0:
                    return None
                found = (position - rdlength, position)
                count += 1
        return found if count == 1 and position <= len(wire) else None
    except (struct.error, IndexError, ValueError):
        return None


def _refuse_opcode(
    wire: bytes, opcode: int, keyring: dict[dns.name.Name, dns.tsig.Key] | None
) -> Reply:
    """UPDATE: REFUSED with the zone section; another opcode: NOTIMP, no question and RD
    clear (as BIND).  Signed with the request's key when it verified (RFC 8945 5.3)."""
    update = opcode == dns.opcode.UPDATE
    rcode = dns.rcode.REFUSED if update else dns.rcode.NOTIMP
    kind = "update" if update else "error"
    plain = Reply(error_reply(wire, rcode, question=update, keep_rd=update), False, None, kind)
    if struct.unpack_from("!H", wire, 10)[0] == 0:  # no additional records: no TSIG
        return plain
    try:
        query = dns.message.from_wire(wire, keyring=keyring if keyring is not None else {})
    except dns.message.UnknownTSIGKey:
        return _tsig_error(wire, dns.rcode.BADKEY, None)
    except dns.tsig.BadSignature:
        return _tsig_error(wire, dns.rcode.BADSIG, None)
    except dns.tsig.BadTime:
        return _tsig_error(wire, dns.rcode.BADTIME, _tsig_key(wire, keyring))
    except Exception:  # noqa: BLE001 - what dnspython cannot read gets the plain refusal
        return plain
    if not query.had_tsig:
        return plain
    response = make_response(query, our_payload=EDNS_PAYLOAD, fudge=300)
    response.set_rcode(rcode)
    if not update:
        response.question = []
        response.flags &= ~dns.flags.RD
    return Reply(response.to_wire(max_size=65535), False, None, kind)


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
        return _error(wire, dns.rcode.NOTAUTH, question=False)
    if query.tsig is None or len(query.question) != 1:
        return _error(wire, dns.rcode.NOTAUTH, question=False)
    response = dns.message.Message(id=query.id)
    response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    response.question = list(query.question)
    response.set_rcode(dns.rcode.NOTAUTH)
    question = query.question[0]
    detail = (
        f"{question.name} {dns.rdatatype.to_text(question.rdtype)} signed with key "
        f"{query.keyname}: {tsigerror.NAMES.get(error, str(error))}"
    )
    tsigerror.add_error(response, query, error, key)
    return Reply(
        response.to_wire(max_size=65535),
        False,
        None,
        "tsig",
        detail=detail,
        signer=str(query.keyname),
    )
