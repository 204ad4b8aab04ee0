"""Wire pieces of canonical master-file lines, for zone transfers out.

The lines are :mod:`secdns.zonefile`'s (``owner TTL IN TYPE rdata``, names relative
to the origin, text as dnspython writes it).  These helpers turn the parts of a line
that :func:`secdns.server.xfrout.axfr_messages` writes itself (A, AAAA, NS, CNAME, PTR,
MX, TXT, SRV, DNAME) into wire bytes, never through dnspython's parser; what they
decline (escapes, other types) the caller sends through dnspython.
"""

from __future__ import annotations

import struct

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
    return {
        mnemonic: code.to_bytes(2, "big") + b"\x00\x01" + ttl + (size or b"")
        for mnemonic, (code, size) in TYPES.items()
    }


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


def mixed_ttls(lines: tuple[str, ...]) -> bool:
    """True when records of one type differ in TTL (the RRset then goes through dnspython,
    with the smallest, as dnspython and BIND keep an RRset)."""
    seen: dict[str, str] = {}
    for line in lines:
        _owner, ttl, _class, mnemonic, _rdata = line.split(" ", 4)
        if seen.setdefault(mnemonic, ttl) != ttl:
            return True
    return False
