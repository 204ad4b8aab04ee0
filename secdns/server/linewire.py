"""Wire pieces of canonical master-file lines, for zone transfers out.

The lines are :mod:`secdns.zonefile`'s (``owner TTL IN TYPE rdata``, names relative
to the origin, text as dnspython writes it).  These helpers turn the parts of a line
that :func:`secdns.server.xfrout.axfr_messages` writes itself (A, AAAA, NS, CNAME, PTR,
MX, TXT, SRV, DNAME) into wire bytes, never through dnspython's parser; what they
decline (escapes, other types) the caller sends through dnspython.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable

from secdns.dnssecwire import RRSIG_HEAD, rrsig_fields, type_bitmap

LENGTH = [bytes((n,)) for n in range(256)]
U16 = [n.to_bytes(2, "big") for n in range(1024)]
TYPES: dict[str, tuple[int, bytes | None]] = {  # code, and the rdata length if fixed
    "A": (1, b"\x00\x04"),
    "NS": (2, None),
    "CNAME": (5, None),
    "PTR": (12, None),
    "MX": (15, None),
    "TXT": (16, None),
    "AAAA": (28, b"\x00\x10"),
    "SRV": (33, None),
    "DNAME": (39, None),
}
COMPRESSED = frozenset({"NS", "CNAME", "PTR", "MX"})
"""Types whose rdata ends in one name, compressed."""
POINTER = [(0xC000 | offset).to_bytes(2, "big") for offset in range(0x4000)]
NAME_CACHE = 65536
"""Parent names remembered per transfer, then forgotten (a bound on a transfer's memory)."""
ROOM = 1100
"""Bytes a record of a name (owner and target, at most 255 bytes each) and fixed rdata
can take beyond its rdata's fixed part: below ``limit - ROOM`` it fits unchecked."""


def heads(ttl_text: str) -> dict[str, bytes]:
    """Per type written here: type, class IN, TTL, and the rdata length when fixed."""
    ttl = int(ttl_text).to_bytes(4, "big")
    out = {
        mnemonic: code.to_bytes(2, "big") + b"\x00\x01" + ttl + (size or b"")
        for mnemonic, (code, size) in TYPES.items()
    }
    out.update((m, code.to_bytes(2, "big") + b"\x00\x01" + ttl) for m, code in DNSSEC_TYPES.items())
    return out


def relative_wire(text: str, parents: dict[str, bytes]) -> bytes:
    """The labels of a relative name in canonical text (no escapes), the origin left out;
    ``parents`` remembers the wire of parent names (the owners' departments, delegations;
    ``""``: the origin), so that a name costs about its first label."""
    label, _dot, parent = text.partition(".")
    tail = parents.get(parent)
    if tail is None:
        if len(parents) >= NAME_CACHE:
            parents.clear()
            parents[""] = b""
        tail = parents[parent] = relative_wire(parent, parents)
    return LENGTH[len(label)] + label.encode() + tail


def absolute_wire(text: str) -> bytes:
    return b"\x00" if text == "." else relative_wire(text[:-1], {"": b""}) + b"\x00"


def txt_rdata(text: str) -> bytes | None:
    """TXT rdata, with its length, from canonical text: quoted strings without escapes;
    else None."""
    if "\\" in text or text[0] != '"' or text[-1] != '"':
        return None
    out = []
    for part in text[1:-1].split('" "'):
        data = part.encode()
        if b'"' in data or len(data) > 255:
            return None
        out.append(LENGTH[len(data)] + data)
    rdata = b"".join(out)
    return len(rdata).to_bytes(2, "big") + rdata


def named_rdata(
    mnemonic: str, text: str, names: dict[str, bytes], origin: bytes
) -> tuple[bytes, bytes | None] | None:
    """The rdata of NS, CNAME, PTR, MX, SRV, DNAME: (its fixed part, and the target's
    relative labels still to be ended by the apex), or (the whole rdata with its length,
    None) when the target goes in full; None when it is not written here."""
    if mnemonic == "MX":
        preference, text = text.split(" ")
        fixed = int(preference).to_bytes(2, "big")
    elif mnemonic == "SRV":
        priority, weight, port, text = text.split(" ")
        fixed = struct.pack("!HHH", int(priority), int(weight), int(port))
    else:
        fixed = b""
    if "\\" in text:
        return None
    if text[-1] == ".":
        name = absolute_wire(text)
    else:
        name = b"" if text == "@" else relative_wire(text, names)
        if mnemonic != "SRV" and mnemonic != "DNAME":
            return fixed, name  # compressed (RFC 2782, RFC 6672: SRV, DNAME targets not)
        name += origin
    rdata = fixed + name
    return len(rdata).to_bytes(2, "big") + rdata, None


def mixed_ttls(lines: Iterable[str]) -> bool:
    """True when records of one type differ in TTL (the RRset then goes through dnspython,
    with the smallest, as dnspython and BIND keep an RRset); RRSIGs by the type they
    cover (each covered type's signatures are an RRset of their own, with its TTL)."""
    seen: dict[str, str] = {}
    for line in lines:
        _owner, ttl, _class, mnemonic, rdata = line.split(" ", 4)
        if mnemonic == "RRSIG":
            mnemonic = "RRSIG " + rdata[: rdata.find(" ")]
        if seen.setdefault(mnemonic, ttl) != ttl:
            return True
    return False


DNSSEC_TYPES: dict[str, int] = {
    "DS": 43,
    "RRSIG": 46,
    "NSEC": 47,
    "DNSKEY": 48,
    "NSEC3": 50,
    "NSEC3PARAM": 51,
    "CDS": 59,
    "CDNSKEY": 60,
}
"""A signed zone's types, written by :func:`dnssec_rdata` (no name in them is compressed:
RFC 4034 sections 3.1.7 and 4.1.1, RFC 5155)."""
_KEY_HEAD = struct.Struct("!HBB")  # DNSKEY flags, protocol, algorithm; DS tag, algorithm, type
_NSEC3_HEAD = struct.Struct("!BBH")
_B32HEX_TO_B32 = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUV", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)


def dnssec_rdata(mnemonic: str, text: str, names: dict[str, bytes], origin: bytes) -> bytes | None:
    """The rdata, with its length, of a DNSSEC record from canonical text (dnspython's
    rendering: RRSIG times as YYYYMMDDHHMMSS, base64 and hex perhaps in chunks, names
    relative to the origin, whose wire is ``origin``); None when the text is not that
    plain rendering (escapes, another time form: dnspython then writes it)."""
    try:
        if mnemonic == "RRSIG":
            fields, signer, signature = rrsig_fields(text)
            name = _rdata_name(signer, names, origin)
            if name is None:
                return None
            rdata = RRSIG_HEAD.pack(*fields) + name + signature
        elif mnemonic == "NSEC":
            following, _space, types = text.partition(" ")
            name = _rdata_name(following, names, origin)
            if name is None:
                return None
            rdata = name + type_bitmap(types)
        elif mnemonic in ("DNSKEY", "CDNSKEY"):
            flags, protocol, algorithm, *key = text.split(" ")
            head = _KEY_HEAD.pack(int(flags), int(protocol), int(algorithm))
            rdata = head + base64.b64decode("".join(key), validate=True)
        elif mnemonic in ("DS", "CDS"):
            tag, algorithm, digest_type, *digest = text.split(" ")
            head = _KEY_HEAD.pack(int(tag), int(algorithm), int(digest_type))
            rdata = head + bytes.fromhex("".join(digest))
        elif mnemonic == "NSEC3":
            algorithm, flags, iterations, salt, following, *bitmap = text.split(" ")
            salted = b"" if salt == "-" else bytes.fromhex(salt)
            padded = following.upper().translate(_B32HEX_TO_B32) + "=" * (-len(following) % 8)
            hashed = base64.b32decode(padded)
            rdata = (
                _NSEC3_HEAD.pack(int(algorithm), int(flags), int(iterations))
                + LENGTH[len(salted)]
                + salted
                + LENGTH[len(hashed)]
                + hashed
                + type_bitmap(" ".join(bitmap))
            )
        elif mnemonic == "NSEC3PARAM":
            algorithm, flags, iterations, salt = text.split(" ")
            salted = b"" if salt == "-" else bytes.fromhex(salt)
            head = _NSEC3_HEAD.pack(int(algorithm), int(flags), int(iterations))
            rdata = head + LENGTH[len(salted)] + salted
        else:
            return None
    except (ValueError, KeyError, IndexError, struct.error, binascii.Error, OverflowError):
        return None
    if len(rdata) > 0xFFFF:
        return None
    return len(rdata).to_bytes(2, "big") + rdata


def _rdata_name(text: str, names: dict[str, bytes], origin: bytes) -> bytes | None:
    """A name in rdata, uncompressed and in the case written; None with escapes."""
    if "\\" in text:
        return None
    if text[-1] == ".":
        return absolute_wire(text)
    return (b"" if text == "@" else relative_wire(text, names)) + origin
