"""Zone transfers out: AXFR (RFC 5936) and IXFR from the journal (RFC 1995).

Pure message building: given the query and a zone version (and the journal),
yield the wire messages of the answer, name-compressed, each TSIG-signed when
the query was.  An AXFR writes each record once from its canonical line
(:func:`_owners_messages`, with :mod:`secdns.server.linewire`'s pieces), and so does
an IXFR from its journal's lines (each section's SOA first); what that writer
declines goes through dnspython.  Access control is decided here too, from the
zone's ``allow_transfer`` list.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
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

from secdns.replies import make_response
from secdns.server import linewire, render
from secdns.server.zone import ZoneVersion, parse_node
from secdns.store import JournalEntry, is_soa_line
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
    """``acl`` items are CIDRs/addresses, ``key:NAME``, and ``CIDR key:NAME`` (that
    address range *and* that key, as a Knot ``acl`` with both an ``address`` and a
    ``key``); any one item allows; empty means nobody.

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
        network, _, key = item.partition(" ") if not item.startswith("key:") else ("", "", item)
        if key:
            if key_name is None or not key.startswith("key:"):
                continue
            wire_name = (keys or {}).get(key[4:])
            if key_name != (wire_name or dns.name.from_text(key[4:])):
                continue
            if not network:
                return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(network, strict=False):
                    return True
            except ValueError:
                continue
    return False


def refusal_reason(
    acl: Sequence[str],
    source: str,
    key_name: dns.name.Name | None,
    keys: Mapping[str, dns.name.Name] | None = None,
) -> str:
    """Why :func:`transfer_allowed` refused, when ``CIDR key:NAME`` entries half matched:
    the key from elsewhere (every network it is allowed from), or the address without
    its key (every key its networks allow), "" otherwise."""
    try:
        address = ipaddress.ip_address(source.split("%")[0])
    except ValueError:
        return ""
    elsewhere: list[str] = []  # the networks the client's key is allowed from
    needed: dict[str, list[str]] = {}  # a network the client is in -> its keys
    for item in acl:
        network, _, key = item.partition(" ")
        if not key or item.startswith("key:"):
            continue
        wire_name = (keys or {}).get(key[4:]) or dns.name.from_text(key[4:])
        try:
            inside = address in ipaddress.ip_network(network, strict=False)
        except ValueError:
            continue
        if key_name == wire_name and not inside:
            elsewhere.append(network)
        if inside and key_name != wire_name:
            needed.setdefault(network, []).append(str(wire_name))
    if elsewhere:
        return f"key {key_name} is allowed from {_either(elsewhere, 'or')} only"
    if needed:
        network, names = next(iter(needed.items()))
        return f"{network} needs key {_either(names, 'or')}"
    return ""


def _either(items: list[str], word: str) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


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


def _zone_messages(writer: _Writer, version: ZoneVersion) -> Iterator[bytes]:
    """Every record but the apex SOA, each written once from its canonical line
    (:func:`_owners_messages`): the apex first, right after its SOA (the other owners in
    bucket order), as BIND sends it: dnssec-verify warned of an NSEC node twice when it
    came later."""
    owners = itertools.chain.from_iterable(map(dict.values, version.buckets))  # (no frame)
    yield from _owners_messages(writer, version.origin, owners, version.entry(version.origin_key))


def _owners_messages(
    writer: _Writer,
    origin: dns.name.Name,
    owners: Iterable[tuple[Sequence[str], int]],
    apex_entry: tuple[Sequence[str], int] | None = None,
    exact: bool = False,
) -> Iterator[bytes]:
    """The records of *owners*, each a zone version's entry (one owner's canonical lines,
    its count of names below), each record written once; *apex_entry* (the apex's, which
    *owners* may hold too) first, its SOA left out.

    Compression is Knot's, not BIND's: the apex is written in full once per message and
    every in-zone name points to it; the second and later records of an owner point to
    its first; SRV and DNAME targets and names outside the zone go in full.  A, AAAA,
    NS, CNAME, PTR, MX, TXT, SRV and DNAME are written here; other types, RRSIGs, names
    with escapes and RRsets whose records differ in TTL go through dnspython
    (:meth:`_Writer.add`), which sends an RRset with its smallest TTL.  TTLs are compared
    only when an owner's records differ in TTL or span two messages; a mixed RRset found
    then takes the owner's records out of the message again.

    With *exact* (an IXFR's lines, where an RRset may be partly deleted), what goes
    through dnspython goes record by record, each with its own TTL.

    One loop, with the message state in locals: it runs once per record of the zone,
    which is why it is long (a call per record costs about as much as the record).
    """
    origin_wire = origin.to_wire() or b"\x00"
    apex_size = len(origin_wire)
    inet_aton = socket.inet_aton
    inet_pton = socket.inet_pton
    af_inet6 = socket.AF_INET6
    u16 = linewire.U16
    length = linewire.LENGTH
    pointer = linewire.POINTER
    compressed = linewire.COMPRESSED
    dnssec = linewire.DNSSEC_TYPES
    by_ttl: dict[str, dict[str, bytes]] = {}
    names: dict[str, bytes] = {"": b""}  # parent names' text -> their labels' wire
    wire = writer.wire
    out = wire.out
    limit = wire.limit
    room = limit - linewire.ROOM
    count = 0  # records written here into this message (writer.count: by writer.add)
    apex = writer.apex  # a pointer to the apex in this message, once written...
    apex_at = -1  # ...and where
    heads: dict[str, bytes] = {}
    apex_done = False
    if apex_entry is not None:
        owners = itertools.chain((apex_entry,), owners)
    for entry in owners:
        lines = entry[0]
        if not lines:
            continue  # (an empty non-terminal)
        at_apex = entry is apex_entry
        if at_apex:
            if apex_done:
                continue
            apex_done = True
        rest: list[str] | None = None
        owner_pointer = b""  # what the owner's next records write: a pointer to it
        slow = False  # the owner goes through dnspython
        ttl0 = None
        verified = False  # the RRsets' TTLs compared
        for line in lines:
            _owner, ttl_text, _class, mnemonic, text = line.split(" ", 4)
            if ttl_text != ttl0:
                heads = by_ttl.get(ttl_text)  # type: ignore[assignment]
                if heads is None:
                    heads = by_ttl[ttl_text] = linewire.heads(ttl_text)
                if ttl0 is not None and not verified:
                    verified = True
                    if linewire.mixed_ttls(lines):
                        slow = True
                        break
                ttl0 = ttl_text
            name = None  # the target's labels, to be ended by the apex
            if mnemonic == "A":
                try:
                    rdata = inet_aton(text)
                except OSError:
                    rdata = b""
            elif mnemonic == "AAAA":
                try:
                    rdata = inet_pton(af_inet6, text)
                except OSError:
                    rdata = b""
            elif mnemonic in compressed and text[-1] != "." and "\\" not in text:
                # a relative target (NS, CNAME, PTR, MX): the common case, inline
                if mnemonic == "MX":
                    preference, _space, text = text.partition(" ")
                    rdata = int(preference).to_bytes(2, "big")
                else:
                    rdata = b""
                if text == "@":
                    name = b""
                else:
                    label, _dot, parent = text.partition(".")
                    tail = names.get(parent)
                    if tail is None:
                        tail = linewire.relative_wire(parent, names)
                    name = length[len(label)] + label.encode() + tail
            elif mnemonic == "TXT":
                if text.count('"') == 2 and text[0] == '"' == text[-1] and "\\" not in text:
                    data = text[1:-1].encode()  # one string: the common case, inline
                    size = len(data)
                    rdata = u16[size + 1] + length[size] + data if size < 256 else b""
                else:
                    rdata = linewire.txt_rdata(text) or b""
            elif mnemonic in dnssec:  # a signed zone's: none of its names compressed
                rdata = linewire.dnssec_rdata(mnemonic, text, names, origin_wire) or b""
            elif mnemonic in heads:
                named = linewire.named_rdata(mnemonic, text, names, origin_wire)
                rdata, name = named or (b"", None)
            else:
                rdata = b""
            if not rdata and name is None:  # not written here: dnspython
                if not (mnemonic == "SOA" and at_apex):
                    if rest is None:
                        rest = []
                    rest.append(line)
                continue
            if len(out) + len(rdata) > room:
                size = len(rdata) + 10  # at most, without the owner
                if name is not None:
                    size += 2 + len(name) + apex_size
                full = (len(_owner) + 1 if _owner != "@" else 0) + apex_size  # the owner
                if len(out) + size + (len(owner_pointer) or full) > limit:
                    if not (count or writer.count) or 12 + size + full > limit:
                        raise render.TooBig  # larger than an empty message
                    if owner_pointer and not verified:  # before the RRsets split
                        verified = True
                        if linewire.mixed_ttls(lines):
                            slow = True
                            break
                    wire.counts[1] += count
                    count = 0
                    yield writer.flush()
                    wire = writer.wire
                    out = wire.out
                    limit = wire.limit
                    room = limit - linewire.ROOM
                    apex = b""
                    owner_pointer = b""
            if owner_pointer:
                out += owner_pointer
            else:
                if _owner == "@":
                    rel = b""
                elif "\\" in _owner or _owner[-1] == ".":
                    slow = True  # (an absolute owner: an IXFR's line, not the zone's)
                    break
                else:
                    label, _dot, parent = _owner.partition(".")
                    tail = names.get(parent)
                    if tail is None:
                        tail = linewire.relative_wire(parent, names)
                    rel = length[len(label)] + label.encode() + tail
                owner_at = len(out)
                owner_count = count
                out += rel
                if apex:
                    out += apex
                else:
                    apex_at = owner_at + len(rel)
                    out += origin_wire
                    if apex_at < 0x4000:
                        apex = pointer[apex_at]
                if owner_at < 0x4000:
                    owner_pointer = pointer[owner_at]
                else:
                    owner_pointer = bytes(out[owner_at:])
            out += heads[mnemonic]
            if name is not None:
                rdata += name
                rdata += apex or origin_wire
                size = len(rdata)
                out += u16[size] if size < 1024 else size.to_bytes(2, "big")
            out += rdata
            count += 1
        if slow and owner_pointer:  # take this owner's records out of the message
            del out[owner_at:]
            count = owner_count
            if apex_at >= owner_at:
                apex = b""
        if slow or rest:
            wire.counts[1] += count
            writer.count += count
            count = 0
            writer.apex = apex
            source = lines if slow else tuple(rest or ())
            parsed_rrsets = (
                _line_rrsets(source, origin)
                if exact
                else _parsed_rrsets(tuple(source), origin, at_apex)
            )
            for parsed in parsed_rrsets:
                yield from writer.add(parsed)
            if writer.wire is not wire:
                wire = writer.wire
                out = wire.out
                limit = wire.limit
                room = limit - linewire.ROOM
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


def client_serial(query: dns.message.Message) -> int | None:
    """The serial an IXFR query says the client has (its authority SOA), or None."""
    serial = None
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            serial = rrset[0].serial
    return serial


def ixfr_messages(
    query: dns.message.Message,
    version: ZoneVersion,
    journal: Sequence[JournalEntry],
    expire: int | None = None,
    sent: dict[str, str] | None = None,
) -> Iterator[bytes]:
    """An IXFR answer from ``journal``; AXFR-style when it does not reach the asked serial.
    ``sent["as"]`` says which it was: ``current`` (the client is up to date), ``ixfr`` or
    ``axfr`` (the whole zone)."""
    sent = {} if sent is None else sent
    client = client_serial(query)
    writer = _Writer(query, expire)
    soa = version.soa_rrset()
    if client is not None and serial_compare(client, version.serial) in (0, 1):
        sent["as"] = "current"
        yield from writer.add(soa)  # up to date (RFC 1995 section 2)
        yield writer.flush()
        return
    chain: list[JournalEntry] = []
    if client is not None:
        for index, entry in enumerate(journal):
            if entry.serial_from == client:
                chain = list(journal[index:])
                break
    if not chain or chain[-1].serial_to != version.serial:
        sent["as"] = "axfr"
        yield from axfr_messages(query, version, expire)
        return
    sent["as"] = "ixfr"
    origin = version.origin
    yield from writer.add(soa)
    for entry in chain:
        for lines in (entry.deleted, entry.added):
            # the section's SOA first (it marks where the section starts), then the
            # rest written from their lines as an AXFR writes them
            soas: list[str] = []
            rest: list[str] = []
            for line in lines:
                (soas if is_soa_line(line) else rest).append(line)
            for rrset in _line_rrsets(soas, origin):
                yield from writer.add(rrset)
            yield from _owners_messages(writer, origin, _line_owners(rest), exact=True)
    yield from writer.add(soa)
    yield writer.flush()


def _line_owners(lines: Sequence[str]) -> Iterator[tuple[Sequence[str], int]]:
    """*lines* as :func:`_owners_messages` takes them: each run of lines with the same
    owner text (a journal's lines are in canonical order, an owner's together)."""
    start = 0
    owner = ""
    for at, line in enumerate(lines):
        this = line[: line.find(" ")]
        if this != owner:
            if at > start:
                yield lines[start:at], 0
            start = at
            owner = this
    if len(lines) > start:
        yield lines[start:], 0


def error_response(query: dns.message.Message, rcode: int) -> bytes:
    response = make_response(query, our_payload=render.EDNS_PAYLOAD)
    response.set_rcode(dns.rcode.Rcode.make(rcode))
    return response.to_wire()
