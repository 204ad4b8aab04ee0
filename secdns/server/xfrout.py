"""Zone transfers out: AXFR (RFC 5936) and IXFR from the journal (RFC 1995).

Pure message building: given the query and a zone version (and the journal),
yield the wire messages of the answer, name-compressed, each TSIG-signed when
the query was.  Access control is decided here too, from the zone's
``allow_transfer`` list.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

from secdns.server import render
from secdns.server.zone import ZoneVersion, parse_node
from secdns.store import JournalEntry
from secdns.xfr import serial_compare

MESSAGE_SIZE = 65535
"""Messages of up to 64 KiB, as BIND and Knot send (names past 16 KiB are not compression
targets, but still point back to earlier ones)."""


def transfer_allowed(
    acl: Sequence[str],
    source: str,
    key_name: dns.name.Name | None,
    keys: Mapping[str, dns.name.Name] | None = None,
) -> bool:
    """``acl`` items are CIDRs/addresses and ``key:NAME``; empty means nobody.

    ``key:NAME`` names the ``[keys.NAME]`` table (secdns.toml(5)); ``keys`` maps table
    names to the keys' names on the wire (``[keys.xfr] name = "xfrkey"``: ``key:xfr``
    matches requests signed by ``xfrkey.``).  A NAME not in ``keys`` is taken as the wire
    name itself.
    """
    try:
        address = ipaddress.ip_address(source.split("%")[0])
    except ValueError:
        address = None
    for item in acl:
        if item.startswith("key:"):
            if key_name is None:
                continue
            wire_name = (keys or {}).get(item[4:])
            if key_name == (wire_name or dns.name.from_text(item[4:])):
                return True
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(item, strict=False):
                    return True
            except ValueError:
                continue
    return False


class _Writer:
    """Packs RRsets into messages of at most MESSAGE_SIZE with the answer path's wire
    writer (BIND-style compression), each TSIG-signed when the query was (RFC 8945
    multi-message rules: every message signed, the MAC chained)."""

    def __init__(self, query: dns.message.Message, expire: int | None = None) -> None:
        self.query = query
        self.opt = b""  # for the first message: an OPT with EDNS EXPIRE (RFC 7314), if asked
        if expire is not None and query.edns >= 0:
            option = struct.pack("!HHI", 9, 4, expire)
            self.opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(option)) + option
        self.key: dns.tsig.Key | None = None
        if query.had_tsig and query.keyring:
            keyring = query.keyring
            if isinstance(keyring, dns.tsig.Key):
                self.key = keyring
            elif isinstance(keyring, dict):
                key = keyring.get(query.keyname)
                self.key = key if isinstance(key, dns.tsig.Key) else None
        self.ctx: object | None = None
        self.first = True
        self.count = 0
        self.wire = self._new()

    def _new(self) -> render.Wire:
        reserve = 0
        if self.key is not None:
            reserve = (
                64
                + len(self.key.name.to_wire() or b"")
                + len(self.key.algorithm.to_wire() or b"")
                + dns.tsig.mac_sizes[self.key.algorithm]
            )
        if self.first:
            reserve += len(self.opt)
        wire = render.Wire(MESSAGE_SIZE - reserve)
        self.apex = b""  # a pointer to the zone apex in this message, once written
        if self.first:
            question = self.query.question[0]
            wire.name(question.name)
            wire.out += struct.pack("!HH", question.rdtype, question.rdclass)
            wire.counts[0] = 1
        return wire

    def add(self, rrset: dns.rrset.RRset) -> Iterator[bytes]:
        try:
            self.wire.rrset(1, rrset)
            self.count += 1
            return
        except render.TooBig:
            pass
        if self.count:
            yield self.flush()
        try:
            self.wire.rrset(1, rrset)
            self.count += 1
        except render.TooBig:
            # one RRset too big for a message: send its records separately
            for rd in rrset:
                single = dns.rrset.from_rdata(rrset.name, rrset.ttl, rd)
                try:
                    self.wire.rrset(1, single)
                except render.TooBig:
                    yield self.flush()
                    self.wire.rrset(1, single)
                self.count += 1

    def flush(self) -> bytes:
        wire = self.wire
        flags = dns.flags.QR | dns.flags.AA | (self.query.flags & dns.flags.RD)
        if self.first and self.opt:
            wire.limit = 65535
            wire.out += self.opt
            wire.counts[3] += 1
        wire.header(self.query.id, flags)
        key = self.key
        if key is not None:
            template = dns.rdtypes.ANY.TSIG.TSIG(
                dns.rdataclass.ANY,
                dns.rdatatype.TSIG,
                key.algorithm,
                0,
                300,
                b"\x00" * dns.tsig.mac_sizes[key.algorithm],
                self.query.id,
                0,
                b"",
            )
            signed, self.ctx = dns.tsig.sign(
                bytes(wire.out),
                key,
                template,
                int(time.time()),
                self.query.mac if self.first else None,
                self.ctx,
                True,
            )
            wire.limit = 65535
            wire.record(key.name, dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, signed)
            wire.counts[3] += 1
            wire.header(self.query.id, flags)
        out = bytes(wire.out)
        self.first = False
        self.count = 0
        self.wire = self._new()
        return out


def _parsed_rrsets(
    lines: tuple[str, ...], origin: dns.name.Name, apex: bool
) -> Iterator[dns.rrset.RRset]:
    """The RRsets of ``lines`` (one owner's) through dnspython: the rare types and names
    without a fast builder, and signatures.  The apex SOA is left out."""
    node = parse_node(lines, origin)
    for rdtype, rrset in node.rrsets.items():
        if not (apex and rdtype == dns.rdatatype.SOA):
            yield rrset
    yield from node.sigs.values()


# --- the zone's records, straight from their canonical lines ----------------------------------

_LENGTH = [bytes((n,)) for n in range(256)]
_U16 = [n.to_bytes(2, "big") for n in range(1024)]
_TYPES = {  # the types written here: code, and the rdata length if fixed
    "A": (1, 4),
    "NS": (2, None),
    "CNAME": (5, None),
    "PTR": (12, None),
    "MX": (15, None),
    "TXT": (16, None),
    "AAAA": (28, 16),
    "SRV": (33, None),
    "DNAME": (39, None),
}
_NAME_CACHE = 65536
"""Parent names remembered per transfer, then forgotten (a bound on a transfer's memory)."""


def _heads(ttl_text: str) -> dict[str, bytes]:
    """Per type written here: type, class IN, TTL (and rdata length, when fixed)."""
    ttl = int(ttl_text).to_bytes(4, "big")
    return {
        mnemonic: code.to_bytes(2, "big")
        + b"\x00\x01"
        + ttl
        + (size.to_bytes(2, "big") if size else b"")
        for mnemonic, (code, size) in _TYPES.items()
    }


def _relative_wire(text: str, parents: dict[str, bytes]) -> bytes:
    """The labels of a relative name in canonical text (no escapes), the origin left out;
    ``parents`` remembers the wire of parent names (the owners' departments, delegations),
    so that a name costs about its first label."""
    dot = text.find(".")
    if dot < 0:
        return _LENGTH[len(text)] + text.encode()
    parent = text[dot + 1 :]
    tail = parents.get(parent)
    if tail is None:
        if len(parents) >= _NAME_CACHE:
            parents.clear()
        tail = parents[parent] = _relative_wire(parent, parents)
    return _LENGTH[dot] + text[:dot].encode() + tail


def _absolute_wire(text: str) -> bytes:
    return b"\x00" if text == "." else _relative_wire(text[:-1], {}) + b"\x00"


def _txt_wire(text: str) -> bytes | None:
    """TXT rdata from canonical text: quoted strings without escapes; else None."""
    if "\\" in text or text[0] != '"' or text[-1] != '"':
        return None
    out = []
    for part in text[1:-1].split('" "'):
        data = part.encode()
        if b'"' in data or len(data) > 255:
            return None
        out.append(_LENGTH[len(data)] + data)
    return b"".join(out)


def _mixed_ttls(lines: tuple[str, ...]) -> bool:
    """True when records of one type differ in TTL (the RRset then goes through dnspython,
    with the smallest, as dnspython and BIND keep an RRset)."""
    seen: dict[str, str] = {}
    for line in lines:
        _owner, ttl, _class, mnemonic, _rdata = line.split(" ", 4)
        if seen.setdefault(mnemonic, ttl) != ttl:
            return True
    return False


def _zone_messages(writer: _Writer, version: ZoneVersion) -> Iterator[bytes]:
    """Every record but the apex SOA, each written once from its canonical line.

    Compression is Knot's, not BIND's: the apex is written in full once per message and
    every in-zone name points to it; the second and later records of an owner point to
    its first; SRV and DNAME targets (RFC 2782, RFC 6672) and names outside the zone go
    in full.  A, AAAA, NS, CNAME, PTR, MX, TXT, SRV and DNAME are written here; other
    types, RRSIGs, names with escapes and RRsets whose records differ in TTL go through
    dnspython (:meth:`_Writer.add`).  One loop, with the message state in locals: it
    runs once per record of the zone, which is why it is long (a helper call per record
    would cost about as much as the record's bytes).
    """
    origin = version.origin
    origin_wire = origin.to_wire() or b"\x00"
    apex_size = len(origin_wire)
    origin_key = version.origin_key
    inet_aton = socket.inet_aton
    inet_pton = socket.inet_pton
    af_inet6 = socket.AF_INET6
    u16 = _U16
    length = _LENGTH
    by_ttl: dict[str, dict[str, bytes]] = {}
    names: dict[str, bytes] = {}  # parent names' text -> their labels' wire, origin left out
    wire = writer.wire
    out = wire.out
    limit = wire.limit
    count = 0  # records written here into this message (writer.count: by writer.add)
    apex = writer.apex  # a pointer to the apex in this message, once written
    for bucket in version.buckets:
        for key, (lines, _below) in bucket.items():
            if not lines:
                continue
            first = lines[0]
            space = first.find(" ")
            owner_text = first[:space]
            if "\\" in owner_text:
                slow = True
            elif len(lines) > 1:
                prefix = first[: first.find(" ", space + 1) + 1]  # owner and TTL
                slow = not all(map(str.startswith, lines, repeat(prefix))) and _mixed_ttls(lines)
            else:
                slow = False
            at_apex = key == origin_key
            rest: list[str] | None = None
            if not slow:
                if owner_text == "@":
                    rel = b""
                else:
                    dot = owner_text.find(".")
                    if dot < 0:
                        rel = length[len(owner_text)] + owner_text.encode()
                    else:
                        tail = names.get(owner_text[dot + 1 :])
                        if tail is None:
                            tail = _relative_wire(owner_text[dot + 1 :], names)
                        rel = length[dot] + owner_text[:dot].encode() + tail
                owner_pointer = b""  # to this owner, once written in this message
                owner_bound = len(rel) + apex_size + 10
                for line in lines:
                    _owner, ttl_text, _class, mnemonic, text = line.split(" ", 4)
                    heads = by_ttl.get(ttl_text)
                    if heads is None:
                        heads = by_ttl[ttl_text] = _heads(ttl_text)
                    head = heads.get(mnemonic, b"")
                    name = None  # relative labels still to end in the apex (compressed)
                    rdata: bytes | None
                    if not head:
                        rdata = None
                    elif mnemonic == "A":
                        try:
                            rdata = inet_aton(text)
                        except OSError:
                            rdata = None
                    elif mnemonic == "AAAA":
                        try:
                            rdata = inet_pton(af_inet6, text)
                        except OSError:
                            rdata = None
                    elif mnemonic == "TXT":
                        rdata = _txt_wire(text)
                    else:
                        if mnemonic == "MX":
                            preference, text = text.split(" ")
                            rdata = int(preference).to_bytes(2, "big")
                        elif mnemonic == "SRV":
                            priority, weight, port, text = text.split(" ")
                            rdata = struct.pack("!HHH", int(priority), int(weight), int(port))
                        else:
                            rdata = b""
                        if "\\" in text:
                            rdata = None
                        elif text[-1] == ".":
                            rdata += _absolute_wire(text)
                        else:
                            if text == "@":
                                name = b""
                            else:
                                dot = text.find(".")
                                if dot < 0:
                                    name = length[len(text)] + text.encode()
                                else:
                                    tail = names.get(text[dot + 1 :])
                                    if tail is None:
                                        tail = _relative_wire(text[dot + 1 :], names)
                                    name = length[dot] + text[:dot].encode() + tail
                            if mnemonic == "SRV" or mnemonic == "DNAME":
                                rdata += name + origin_wire  # never compressed
                                name = None
                    if rdata is None:  # no writer here: dnspython's
                        if not (at_apex and mnemonic == "SOA"):
                            if rest is None:
                                rest = []
                            rest.append(line)
                        continue
                    size = len(rdata) if name is None else len(rdata) + len(name) + apex_size
                    if len(out) + size + (12 if owner_pointer else owner_bound) > limit:
                        if count or writer.count:
                            wire.counts[1] += count
                            count = 0
                            yield writer.flush()
                            wire = writer.wire
                            out = wire.out
                            limit = wire.limit
                            apex = b""
                            owner_pointer = b""
                    if owner_pointer:
                        out += owner_pointer
                    else:
                        at = len(out)
                        out += rel
                        if apex:
                            out += apex
                        else:
                            apex_at = at + len(rel)
                            out += origin_wire
                            if apex_at < 0x4000:
                                apex = (0xC000 | apex_at).to_bytes(2, "big")
                        if at < 0x4000:
                            owner_pointer = (0xC000 | at).to_bytes(2, "big")
                    out += head
                    if name is not None:
                        rdata += name
                        rdata += apex or origin_wire
                    if len(head) == 8:  # the rdata length is not part of the head
                        size = len(rdata)
                        out += u16[size] if size < 1024 else size.to_bytes(2, "big")
                    out += rdata
                    count += 1
                    if len(out) > limit:
                        raise render.TooBig  # one record larger than an empty message
            if slow or rest:
                wire.counts[1] += count
                writer.count += count
                count = 0
                writer.apex = apex
                for parsed in _parsed_rrsets(
                    tuple(rest) if rest else lines, version.origin, at_apex
                ):
                    yield from writer.add(parsed)
                if writer.wire is not wire:
                    wire = writer.wire
                    out = wire.out
                    limit = wire.limit
                apex = writer.apex
    wire.counts[1] += count
    writer.count += count
    writer.apex = apex


def axfr_messages(
    query: dns.message.Message, version: ZoneVersion, expire: int | None = None
) -> Iterator[bytes]:
    """The whole zone: SOA, every other RRset, SOA (``expire``: the EDNS EXPIRE to send)."""
    writer = _Writer(query, expire)
    soa = version.soa_rrset()
    yield from writer.add(soa)
    yield from _zone_messages(writer, version)
    yield from writer.add(soa)
    yield writer.flush()


def _line_rrsets(lines: Iterable[str], origin: dns.name.Name) -> Iterator[dns.rrset.RRset]:
    for line in lines:
        node = parse_node((line,), origin)
        yield from node.rrsets.values()
        yield from node.sigs.values()


def ixfr_messages(
    query: dns.message.Message,
    version: ZoneVersion,
    journal: Sequence[JournalEntry],
    expire: int | None = None,
) -> Iterator[bytes]:
    """An IXFR answer from ``journal``; AXFR-style when it does not reach the asked serial."""
    client_serial = None
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            client_serial = rrset[0].serial
    writer = _Writer(query, expire)
    soa = version.soa_rrset()
    if client_serial is not None and serial_compare(client_serial, version.serial) in (0, 1):
        yield from writer.add(soa)  # up to date (RFC 1995 section 2)
        yield writer.flush()
        return
    chain: list[JournalEntry] = []
    if client_serial is not None:
        for index, entry in enumerate(journal):
            if entry.serial_from == client_serial:
                chain = list(journal[index:])
                break
    if not chain or chain[-1].serial_to != version.serial:
        yield from axfr_messages(query, version, expire)
        return
    yield from writer.add(soa)
    for entry in chain:
        for rrset in _line_rrsets(entry.deleted, version.origin):
            yield from writer.add(rrset)
        for rrset in _line_rrsets(entry.added, version.origin):
            yield from writer.add(rrset)
    yield from writer.add(soa)
    yield writer.flush()


def error_response(query: dns.message.Message, rcode: int) -> bytes:
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.Rcode.make(rcode))
    return response.to_wire()
