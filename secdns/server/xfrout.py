"""Zone transfers out: AXFR (RFC 5936) and IXFR from the journal (RFC 1995).

Pure message building: given the query and a zone version (and the journal),
yield the wire messages of the answer, name-compressed, each TSIG-signed when
the query was.  Access control is decided here too, from the zone's
``allow_transfer`` list.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

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
from secdns.server.ownerwire import (
    _COMPRESS,
    _REMEMBER,
    RR,
    TYPE_CODES,
    TYPE_SOA,
    Labels,
    Piece,
    prepare_owner,
)
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
        self.origin_labels: Labels = ()
        self.origin_wire = b""
        self.names: dict[Labels, tuple[bytes | None, bytes]] = {}
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
        self.last_owner: bytes | None = None  # the previous prepared record's owner...
        self.last_pointer = b""  # ...and a pointer to it
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

    # --- records from prepared pieces (Knot-style compression) --------------------------------

    def write_prepared(
        self, rel: bytes, rdtype: int, ttl: int, pieces: list[Piece], done: list[bytes]
    ) -> None:
        """Write an RRset from :mod:`~secdns.server.ownerwire` pieces, record by record
        (an AXFR may split an RRset across messages), appending full messages to ``done``.

        ``rel`` is the owner's wire form relative to the zone apex (b"" at the apex).
        Compression is Knot's, not BIND's: a name in the zone points to the apex (written
        in full once per message), the owner of the previous record is pointed to whole,
        and nothing else is looked up; names outside the zone, SRV targets and DNAME
        targets are written in full.
        """
        for piece in pieces:
            for _attempt in range(2):
                wire = self.wire
                out = wire.out
                mark = len(out)
                if self.last_owner is rel:
                    out += self.last_pointer
                else:
                    at = len(out)
                    out += rel
                    self._apex(out)
                    self.last_owner = rel
                    self.last_pointer = (0xC000 | at).to_bytes(2, "big") if at < 0x4000 else b""
                    if at >= 0x4000:
                        self.last_owner = None
                rdata = piece if type(piece) is bytes else self._rdata(piece)
                out += RR.pack(rdtype, 1, ttl, len(rdata))
                out += rdata
                if len(out) <= wire.limit:
                    wire.counts[1] += 1
                    self.count += 1
                    break
                del out[mark:]
                if not self.count:
                    raise render.TooBig
                done.append(self.flush())

    def _apex(self, out: bytearray) -> None:
        if self.apex:
            out += self.apex
            return
        at = len(out)
        out += self.origin_wire
        if at < 0x4000:
            self.apex = (0xC000 | at).to_bytes(2, "big")

    def _name(self, labels: Labels) -> bytes:
        names = self.names
        found = names.get(labels)
        if found is None:
            if len(names) >= 65536:
                names.clear()
            count = len(labels) - len(self.origin_labels)
            full = b"".join(bytes((len(x),)) + x for x in labels)
            inside = count >= 0 and labels[count:] == self.origin_labels
            rel = full[: len(full) - len(self.origin_wire)] if inside else None
            found = names[labels] = (rel, full)
        if found[0] is not None and self.apex:
            return found[0] + self.apex
        return found[1]

    def _rdata(self, piece: Piece) -> bytes:
        kind = piece[0]
        if kind == _COMPRESS:
            return piece[1] + self._name(piece[2])  # type: ignore[no-any-return]  # Piece: a loose tuple
        if kind == _REMEMBER:
            return piece[1] + self._name_full(piece[2])  # type: ignore[no-any-return]  # Piece: a loose tuple
        tail: bytes = piece[1]  # Piece is a loose tuple: item 1 holds the fixed bytes
        return self._name(piece[2]) + self._name(piece[3]) + tail

    def _name_full(self, labels: Labels) -> bytes:
        self._name(labels)
        return self.names[labels][1]

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


def _zone_messages(writer: _Writer, version: ZoneVersion) -> Iterator[bytes]:
    """Every RRset but the apex SOA, written from the owners' prepared wire pieces (no
    dnspython objects) where :mod:`~secdns.server.ownerwire` has a builder (see
    :meth:`_Writer.write_prepared`); the rest through dnspython."""
    origin = version.origin
    origin_labels = tuple(origin.labels)
    origin_key = version.origin_key
    writer.origin_labels = origin_labels
    writer.origin_wire = origin.to_wire() or b""
    depth = len(origin_labels)
    done: list[bytes] = []
    for key, (lines, _below) in version.iter_entries():
        if not lines:
            continue
        apex = key == origin_key
        owner = prepare_owner(lines, origin_labels)
        if owner is None:
            for parsed in _parsed_rrsets(lines, origin, apex):
                yield from writer.add(parsed)
            continue
        labels = owner.labels
        types = owner.types
        rel = b"".join(bytes((len(x),)) + x for x in labels[: len(labels) - depth])
        for rdtype, (ttl, pieces) in types.items():
            if apex and rdtype == TYPE_SOA:
                continue
            writer.write_prepared(rel, rdtype, ttl, pieces, done)
            if done:
                yield from done
                done.clear()
        if owner.unsupported or any("RRSIG" in line for line in lines):
            rest = tuple(
                line for line in lines if TYPE_CODES.get(line.split(" ", 4)[3]) not in types
            )
            if rest:
                for parsed in _parsed_rrsets(rest, origin, apex):
                    yield from writer.add(parsed)


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
