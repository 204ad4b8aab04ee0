"""The prepared wire form of one owner name, and BIND's name compression over label tuples.

:func:`prepare_owner` turns an owner's canonical master-file lines (as
:class:`~secdns.server.zone.ZoneVersion` keeps them) into an :class:`Owner`:
its labels in the zone's case and, per type, the TTL (the smallest of the
records, as dnspython's RRsets keep it) and each rdata as a *piece*: bytes, or
the fixed bytes and the name(s) still to be compressed.  Only A, AAAA, NS,
CNAME, PTR, MX, TXT, SRV, DNAME and SOA have builders (the same fast parsing as
:func:`~secdns.server.zone.fast_rdata`, never dnspython's text parser); an owner
with other types marks them unsupported and queries for them take the general
path.  :func:`write_name` and :func:`write_rrset` compress exactly as
:class:`~secdns.server.render.Wire` does (a name and its parent only,
case-sensitively; SRV and DNAME targets uncompressed but remembered), so the
bytes are the general path's.
"""

from __future__ import annotations

import binascii
import socket
import struct
from socket import inet_aton
from typing import Any, Literal

from secdns.dnssecwire import RRSIG_HEAD, rrsig_fields, type_bitmap, type_code
from secdns.server.denial import KIND_DNAME, KIND_HASHED, KIND_NS
from secdns.server.linewire import dnssec_rdata

(
    TYPE_A,
    TYPE_NS,
    TYPE_CNAME,
    TYPE_SOA,
    TYPE_PTR,
    TYPE_MX,
    TYPE_TXT,
    TYPE_AAAA,
    TYPE_SRV,
    TYPE_DNAME,
) = 1, 2, 5, 6, 12, 15, 16, 28, 33, 39
TYPE_NSEC3 = 50  # (no fast builder: an owner's NSEC3 is kept apart, Owner.nsec3)
TYPE_CODES = {
    "A": TYPE_A,
    "NS": TYPE_NS,
    "CNAME": TYPE_CNAME,
    "SOA": TYPE_SOA,
    "PTR": TYPE_PTR,
    "MX": TYPE_MX,
    "TXT": TYPE_TXT,
    "AAAA": TYPE_AAAA,
    "SRV": TYPE_SRV,
    "DNAME": TYPE_DNAME,
}
_BYTES_TYPES = frozenset({TYPE_A, TYPE_AAAA, TYPE_TXT})
_NONE: frozenset[int] = frozenset()
_SINGLETON = frozenset({TYPE_CNAME, TYPE_SOA, TYPE_DNAME})
_NAME_TYPES = frozenset({TYPE_NS, TYPE_CNAME, TYPE_PTR})

# rdata pieces: bytes, or (kind, fixed bytes, labels...) for the names to compress/remember
_COMPRESS = 0  # (0, prefix, labels): prefix, then the name compressed (NS/CNAME/PTR/MX)
_REMEMBER = 1  # (1, prefix, labels): prefix, the name in full, remembered (SRV, DNAME)
_SOA_PIECE = 2  # (2, tail, mname, rname)

Labels = tuple[bytes, ...]
Piece = Any  # bytes | tuple[int, bytes, Labels] | tuple[int, bytes, Labels, Labels]
Rrset = tuple[int, list[Piece]]  # TTL, rdata pieces (None-free)


class Owner:
    """One owner name's records as wire pieces (see the module docstring)."""

    __slots__ = (
        "labels",
        "origin",
        "types",
        "unsupported",
        "kinds",
        "fixed",
        "sigs",
        "sig_lines",
        "nsec",
        "nsec3",
    )

    def __init__(self, labels: Labels, origin: Labels = ()) -> None:
        self.labels = labels  # the owner's labels in the zone's case, root included
        self.origin = origin  # the zone's (its RRSIGs' signers are written relative to it)
        self.types: dict[int, Rrset] = {}
        # per type without names in its rdata: (records, the answer section's bytes when the
        # owner is written as a pointer to the question, i.e. the client used the zone's case)
        self.fixed: dict[int, tuple[int, bytes]] = {}
        self.unsupported: set[int] | frozenset[int] = (
            _NONE  # types present without a fast builder (or singleton
        )
        # types with several records): a query for them takes the general path
        self.kinds = 0
        # RRSIGs by the type they cover, read when first asked (:func:`signatures`) from
        # their lines (TTL, rdata text) kept by type covered: None for an owner whose
        # NSEC could not be prepared (a DO answer then takes the general path)
        self.sigs: dict[int, Rrset | Literal[False]] | None = _NO_SIGS
        self.sig_lines: dict[int, list[tuple[str, str]]] = _NO_LINES
        # its NSEC, for a signed NODATA's proof (queries of type NSEC: the general path)
        self.nsec: Rrset | None = None
        # its NSEC3 (an owner of the hashed chain), for an NSEC3 zone's proofs
        self.nsec3: Rrset | None = None


def _name_labels(text: str, origin: Labels) -> Labels | None:
    """Labels of a name in canonical text (absolute, or relative to the origin); None for
    a name with escapes (canonical text escapes every byte that is not plain)."""
    if text == "@":
        return origin
    if "\\" in text:
        return None
    if text[-1] == ".":
        return (b"",) if text == "." else tuple(text.encode().split(b"."))
    return (*text.encode().split(b"."), *origin)


def _piece(rdtype: int, text: str, origin: Labels) -> Piece | None:
    """The wire piece of one rdata in canonical text, or None (no fast builder)."""
    try:
        if rdtype == TYPE_A:
            return socket.inet_aton(text)
        if rdtype == TYPE_AAAA:
            return socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        return None
    if "\\" in text:
        return None
    if rdtype in _NAME_TYPES:
        labels = _name_labels(text, origin)
        return None if labels is None else (_COMPRESS, b"", labels)
    if rdtype == TYPE_MX:
        preference, exchange = text.split(" ")
        labels = _name_labels(exchange, origin)
        return None if labels is None else (_COMPRESS, struct.pack("!H", int(preference)), labels)
    if rdtype == TYPE_SRV:
        priority, weight, port, target = text.split(" ")
        labels = _name_labels(target, origin)
        fixed = struct.pack("!HHH", int(priority), int(weight), int(port))
        return None if labels is None else (_REMEMBER, fixed, labels)
    if rdtype == TYPE_DNAME:
        labels = _name_labels(text, origin)
        return None if labels is None else (_REMEMBER, b"", labels)
    if rdtype == TYPE_TXT:
        if not (text.startswith('"') and text.endswith('"')):
            return None
        out = bytearray()
        for part in text[1:-1].split('" "'):
            data = part.encode()
            if b'"' in data or len(data) > 255:
                return None
            out.append(len(data))
            out += data
        return bytes(out)
    if rdtype == TYPE_SOA:
        mname, rname, *numbers = text.split(" ")
        m, r = _name_labels(mname, origin), _name_labels(rname, origin)
        if m is None or r is None or len(numbers) != 5:
            return None
        return (_SOA_PIECE, struct.pack("!IIIII", *map(int, numbers)), m, r)
    return None


def prepare_owner(lines: tuple[str, ...], origin: Labels) -> Owner | None:
    """The prepared form of an owner's canonical lines (None: an owner we cannot name)."""
    first = lines[0]
    owner_text = first[: first.find(" ")]
    if owner_text == "@":
        labels = origin
    elif "\\" in owner_text or owner_text.endswith("."):
        return None
    else:
        labels = (*owner_text.encode().split(b"."), *origin)
    owner = Owner(labels, origin)
    types = owner.types
    unsupported: set[int] = set()
    for line in lines:
        _owner, ttl_text, _cls, mnemonic, rdata = line.split(" ", 4)
        rdtype = TYPE_CODES.get(mnemonic)
        if rdtype is None:
            if mnemonic == "RRSIG":  # for DO answers of a signed zone, read when asked
                covered = type_code(rdata[: rdata.find(" ")])
                if owner.sig_lines is _NO_LINES:
                    owner.sig_lines = {covered: [(ttl_text, rdata)]}
                else:
                    owner.sig_lines.setdefault(covered, []).append((ttl_text, rdata))
            else:
                unsupported.add(type_code(mnemonic))
                if mnemonic == "NSEC":
                    _add_nsec(owner, ttl_text, rdata, origin)
                elif mnemonic == "NSEC3":
                    _add_nsec3(owner, ttl_text, rdata)
            continue
        if rdtype == TYPE_A:
            try:
                piece: Piece | None = inet_aton(rdata)
            except OSError:
                piece = None
        else:
            if rdtype == TYPE_NS:
                owner.kinds |= KIND_NS
            elif rdtype == TYPE_DNAME:
                owner.kinds |= KIND_DNAME
            piece = _piece(rdtype, rdata, origin)
        if piece is None:
            unsupported.add(rdtype)
            continue
        ttl = int(ttl_text)
        found = types.get(rdtype)
        if found is None:
            types[rdtype] = (ttl, [piece])
            continue
        if rdtype in _SINGLETON:
            unsupported.add(rdtype)  # dnspython keeps the last; be strict
        elif piece not in found[1]:  # a duplicate record: dnspython keeps one (min TTL)
            found[1].append(piece)
        if ttl < found[0]:
            types[rdtype] = (ttl, found[1])
    if unsupported:
        owner.unsupported = unsupported
        for rdtype in unsupported:
            types.pop(rdtype, None)
        if owner.nsec3 is not None and not types and unsupported == {TYPE_NSEC3}:
            owner.kinds |= KIND_HASHED  # not a name to a query (RFC 5155 7.2.9)
    fixed = owner.fixed
    for rdtype, (ttl, pieces) in types.items():
        if rdtype in _BYTES_TYPES:  # rdata without names: the pieces are bytes
            if len(pieces) == 1:
                piece = pieces[0]
                fixed[rdtype] = (1, b"\xc0\x0c" + RR.pack(rdtype, 1, ttl, len(piece)) + piece)
            else:
                fixed[rdtype] = (
                    len(pieces),
                    b"".join(b"\xc0\x0c" + RR.pack(rdtype, 1, ttl, len(p)) + p for p in pieces),
                )
    return owner


_NO_SIGS: dict[int, Rrset | Literal[False]] = {}  # (shared, never written: no RRSIG read yet)
_NO_LINES: dict[int, list[tuple[str, str]]] = {}  # (shared, never written: no RRSIG)


def signatures(owner: Owner, covered: int) -> Rrset | None | Literal[False]:
    """The RRSIGs of ``owner``'s RRset of type ``covered`` (the smallest TTL): None when
    it has none, False when they cannot be prepared (an escaped signer, another time
    form: a DO answer then takes the general path).  Read from their lines on first ask,
    then kept: a first ask without DO, or for another type, reads no signature."""
    sigs = owner.sigs
    if sigs is None:
        return False
    found = sigs.get(covered, False)
    if found is not False:
        return found
    lines = owner.sig_lines.get(covered)
    if lines is None:
        return None
    if sigs is _NO_SIGS:
        sigs = owner.sigs = {}
    rrset = _read_sigs(lines, owner.origin)
    found = sigs[covered] = False if rrset is None else rrset
    return found


def _read_sigs(lines: list[tuple[str, str]], origin: Labels) -> Rrset | None:
    """The RRSIG lines of one covered type as an RRset (None: one cannot be prepared).
    Each piece is written as render.Wire writes an RRSIG (_RDATA_NAME_AT): the 18
    octets before the signer, the signer in full and remembered as a compression
    target, then the signature."""
    ttl = -1
    pieces: list[Piece] = []
    for ttl_text, text in lines:
        try:
            fields, signer, signature = rrsig_fields(text)
            head = RRSIG_HEAD.pack(*fields)
        except (ValueError, struct.error, binascii.Error, OverflowError):
            return None
        labels = _name_labels(signer, origin) if signer else None
        if labels is None or not signature:
            return None
        if 18 + sum(map(len, labels)) + len(labels) + len(signature) > 0xFFFF:
            return None
        piece = (_REMEMBER, head, labels, signature)
        if piece not in pieces:
            pieces.append(piece)
        value = int(ttl_text)
        if ttl < 0 or value < ttl:
            ttl = value
    return (ttl, pieces)


def _add_nsec3(owner: Owner, ttl_text: str, text: str) -> None:
    """An NSEC3 line as ``owner.nsec3`` (no name in its rdata: bytes); one record."""
    rdata = dnssec_rdata("NSEC3", text, {}, b"")
    if rdata is None or owner.nsec3 is not None:  # (another form; a second NSEC3)
        owner.sigs = None  # not prepared: a DO answer of it takes the general path
        return
    owner.nsec3 = (int(ttl_text), [rdata[2:]])


def _add_nsec(owner: Owner, ttl_text: str, text: str, origin: Labels) -> None:
    """An NSEC line as ``owner.nsec``: the next name in full and remembered as a
    compression target (as render.Wire writes it), then the type bitmap; one record."""
    following, _space, types = text.partition(" ")
    labels = _name_labels(following, origin)
    if labels is None or owner.nsec is not None:  # (an escaped name; a second NSEC)
        owner.sigs = None  # not prepared: a DO answer of it takes the general path
        return
    owner.nsec = (int(ttl_text), [(_REMEMBER, b"", labels, type_bitmap(types))])


RR = struct.Struct("!HHIH")


# --- writing (render.Wire's compression, on label tuples) -----------------------------------------


_NAME_WIRE: dict[Labels, bytes] = {}
_NAME_WIRE_LIMIT = 65536


def write_name(out: bytearray, table: dict[Labels, int], labels: Labels) -> None:
    """Write ``labels`` as :meth:`~secdns.server.render.Wire.name` does: the whole name or
    its parent from ``table`` (case-sensitive), remembering the name and its parent."""
    count = len(labels)
    if count == 1:
        out.append(0)
        return
    pointer = table.get(labels)
    if pointer is not None:
        out += (0xC000 | pointer).to_bytes(2, "big")
        return
    offset = len(out)
    wire = _NAME_WIRE.get(labels)
    if wire is None:
        if len(_NAME_WIRE) >= _NAME_WIRE_LIMIT:
            _NAME_WIRE.clear()
        wire = _NAME_WIRE[labels] = b"".join(bytes((len(x),)) + x for x in labels)
    if count == 2:
        if offset < 0x4000:
            table[labels] = offset
        out += wire
        return
    parent = labels[1:]
    pointer = table.get(parent)
    if offset < 0x4000:
        table[labels] = offset
    first = 1 + len(labels[0])
    if pointer is not None:
        out += wire[:first]
        out += (0xC000 | pointer).to_bytes(2, "big")
        return
    if offset + first < 0x4000:
        table[parent] = offset + first
    out += wire


def write_rrset(
    out: bytearray, table: dict[Labels, int], labels: Labels, rdtype: int, rrset: Rrset
) -> None:
    ttl, pieces = rrset
    for piece in pieces:
        write_name(out, table, labels)
        out += struct.pack("!HHIH", rdtype, 1, ttl, 0)
        start = len(out)
        if type(piece) is bytes:
            out += piece
        elif piece[0] == _COMPRESS:
            out += piece[1]
            write_name(out, table, piece[2])
        elif piece[0] == _REMEMBER:
            out += piece[1]
            position = len(out)
            name: Labels = piece[2]
            for label in name:
                out.append(len(label))
                out += label
            if len(piece) > 3:  # an RRSIG: its signature after the signer
                out += piece[3]
            for depth in range(min(len(name) - 1, 2)):
                if position >= 0x4000:
                    break
                table[name[depth:]] = position
                position += 1 + len(name[depth])
        else:
            write_name(out, table, piece[2])
            write_name(out, table, piece[3])
            out += piece[1]
        struct.pack_into("!H", out, start - 2, len(out) - start)
