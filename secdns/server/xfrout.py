"""Zone transfers out: AXFR (RFC 5936) and IXFR from the journal (RFC 1995).

Pure message building: given the query and a zone version (and the journal),
yield the wire messages of the answer, name-compressed, each TSIG-signed when
the query was.  Access control is decided here too, from the zone's
``allow_transfer`` list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset
import dns.tsig

from secdns.server.zone import ZoneVersion, parse_node
from secdns.store import JournalEntry
from secdns.xfr import serial_compare

MESSAGE_SIZE = 16384


def transfer_allowed(acl: Sequence[str], source: str, key_name: dns.name.Name | None) -> bool:
    """``acl`` items are CIDRs/addresses and ``key:NAME``; empty means nobody."""
    try:
        address = ipaddress.ip_address(source.split("%")[0])
    except ValueError:
        address = None
    for item in acl:
        if item.startswith("key:"):
            if key_name is not None and key_name == dns.name.from_text(item[4:]):
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
    """Packs RRsets into messages of at most MESSAGE_SIZE, signing each when keyed."""

    def __init__(self, query: dns.message.Message) -> None:
        self.query = query
        self.key: dns.tsig.Key | None = None
        if query.had_tsig and query.keyring:
            keyring = query.keyring
            if isinstance(keyring, dns.tsig.Key):
                self.key = keyring
            elif isinstance(keyring, dict):
                key = keyring.get(query.keyname)
                self.key = key if isinstance(key, dns.tsig.Key) else None
        self.ctx = None
        self.first = True
        self.renderer = self._new()
        self.count = 0

    def _new(self) -> dns.renderer.Renderer:
        flags = dns.flags.QR | dns.flags.AA | (self.query.flags & dns.flags.RD)
        max_size = MESSAGE_SIZE - (300 if self.key else 0)
        renderer = dns.renderer.Renderer(self.query.id, flags, max_size)
        if self.first:
            question = self.query.question[0]
            renderer.add_question(question.name, question.rdtype, question.rdclass)
        return renderer

    def add(self, rrset: dns.rrset.RRset) -> Iterator[bytes]:
        try:
            self.renderer.add_rrset(dns.renderer.ANSWER, rrset)
            self.count += 1
            return
        except dns.exception.TooBig:
            pass
        if self.count:
            yield self.flush()
        try:
            self.renderer.add_rrset(dns.renderer.ANSWER, rrset)
            self.count += 1
        except dns.exception.TooBig:
            # one RRset too big for a message: send its records separately
            for rd in rrset:
                single = dns.rrset.from_rdata(rrset.name, rrset.ttl, rd)
                try:
                    self.renderer.add_rrset(dns.renderer.ANSWER, single)
                except dns.exception.TooBig:
                    yield self.flush()
                    self.renderer.add_rrset(dns.renderer.ANSWER, single)
                self.count += 1

    def flush(self) -> bytes:
        renderer = self.renderer
        renderer.write_header()
        if self.key is not None:
            self.ctx = renderer.add_multi_tsig(
                self.ctx, self.key.name, self.key, 300, self.query.id, 0, b"",
                self.query.mac, self.key.algorithm)
        wire = renderer.get_wire()
        self.first = False
        self.renderer = self._new()
        self.count = 0
        return wire


def _rrsets(version: ZoneVersion, skip_apex_soa: bool = True) -> Iterator[dns.rrset.RRset]:
    origin_key = version.origin_key
    for key, (lines, _below) in version.iter_entries():
        if not lines:
            continue
        node = parse_node(lines, version.origin)
        for rdtype, rrset in node.rrsets.items():
            if skip_apex_soa and rdtype == dns.rdatatype.SOA and key == origin_key:
                continue
            yield rrset
        yield from node.sigs.values()


def axfr_messages(query: dns.message.Message, version: ZoneVersion,
                  rdtype_answer: int | None = None) -> Iterator[bytes]:
    """The whole zone: SOA, every other RRset, SOA."""
    writer = _Writer(query)
    soa = version.soa_rrset()
    yield from writer.add(soa)
    for rrset in _rrsets(version):
        yield from writer.add(rrset)
    yield from writer.add(soa)
    yield writer.flush()


def _line_rrsets(lines: Iterable[str], origin: dns.name.Name) -> Iterator[dns.rrset.RRset]:
    for line in lines:
        node = parse_node((line,), origin)
        yield from node.rrsets.values()
        yield from node.sigs.values()


def ixfr_messages(query: dns.message.Message, version: ZoneVersion,
                  journal: Sequence[JournalEntry]) -> Iterator[bytes]:
    """An IXFR answer from ``journal``; AXFR-style when it does not reach the asked serial."""
    client_serial = None
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            client_serial = rrset[0].serial
    writer = _Writer(query)
    soa = version.soa_rrset()
    if client_serial is not None and serial_compare(client_serial, version.serial) in (0, 1):
        yield from writer.add(soa)      # up to date (RFC 1995 section 2)
        yield writer.flush()
        return
    chain: list[JournalEntry] = []
    if client_serial is not None:
        for index, entry in enumerate(journal):
            if entry.serial_from == client_serial:
                chain = list(journal[index:])
                break
    if not chain or chain[-1].serial_to != version.serial:
        yield from axfr_messages(query, version)
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
    response.set_rcode(rcode)
    return response.to_wire()
