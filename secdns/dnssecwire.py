"""The parts of DNSSEC rdata text that three readers turn into wire alike.

RRSIG times (``YYYYMMDDHHMMSS``, as dnspython renders them) and NSEC/NSEC3 type
bitmaps (RFC 4034 section 4.1.2) are read from canonical master-file text by the
AXFR writer (:func:`secdns.server.linewire.dnssec_rdata`), the answer path's node
parser (:func:`secdns.server.zone.fast_dnssec`) and verify's canonical wire
(:class:`secdns.checks.canonical.CanonicalWire`): one reading of each, here.  And
the other way, RRSIG, NSEC and NSEC3 rdata received in a transfer are written as the
text dnspython renders (:func:`rrsig_text`, :func:`nsec_text`, :func:`nsec3_text`, for
:mod:`secdns.wire`), or left to dnspython (None) wherever it might read them otherwise.
"""

from __future__ import annotations

import base64
import calendar
import struct
import time
from collections.abc import Callable

import dns.rdatatype

_CACHE_LIMIT = 1 << 16
_types: dict[str, int] = {}
_bitmaps: dict[str, bytes] = {}
_times: dict[str, int] = {}


def type_code(mnemonic: str) -> int:
    """A type's number from its mnemonic (``TYPE65280`` too), cached."""
    code = _types.get(mnemonic)
    if code is None:
        code = _types[mnemonic] = int(dns.rdatatype.from_text(mnemonic))
    return code


def sig_time(text: str) -> int:
    """An RRSIG inception/expiration written YYYYMMDDHHMMSS, as seconds since the epoch
    (ValueError for any other form: the caller then lets dnspython read it); cached (a
    signer gives most of a zone's signatures a few times)."""
    seconds = _times.get(text)
    if seconds is None:
        if len(text) != 14 or not text.isdigit():
            raise ValueError(f"not a YYYYMMDDHHMMSS time: {text}")
        fields = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
        seconds = calendar.timegm((*map(int, fields), 0, 0, 0))
        if len(_times) >= _CACHE_LIMIT:
            _times.clear()
        _times[text] = seconds
    return seconds


RRSIG_HEAD = struct.Struct("!HBBIIIH")
"""RRSIG rdata up to the signer: type covered, algorithm, labels, original TTL,
expiration, inception, key tag."""
RrsigFields = tuple[int, int, int, int, int, int, int]


def rrsig_fields(text: str) -> tuple[RrsigFields, str, bytes]:
    """An RRSIG's canonical text as its fields up to the signer (:data:`RRSIG_HEAD`'s
    order), its signer's text and its signature; ValueError (binascii.Error) for text
    not in that form (the caller then lets dnspython read it)."""
    covered, algorithm, labels, ttl, expiration, inception, tag, signer, *sig = text.split(" ")
    fields = (
        type_code(covered),
        int(algorithm),
        int(labels),
        int(ttl),
        sig_time(expiration),
        sig_time(inception),
        int(tag),
    )
    return fields, signer, base64.b64decode("".join(sig), validate=True)


def type_bitmap(types: str) -> bytes:
    """The type bitmap of space-separated mnemonics (RFC 4034 section 4.1.2), cached."""
    bitmap = _bitmaps.get(types)
    if bitmap is not None:
        return bitmap
    windows: dict[int, bytearray] = {}
    for mnemonic in types.split(" ") if types else ():
        window, bit = divmod(type_code(mnemonic), 256)
        octets = windows.setdefault(window, bytearray())
        index = bit // 8
        if len(octets) <= index:
            octets.extend(bytes(index + 1 - len(octets)))
        octets[index] |= 0x80 >> (bit % 8)
    bitmap = b"".join(
        bytes((window, len(windows[window]))) + bytes(windows[window]) for window in sorted(windows)
    )
    if len(_bitmaps) >= _CACHE_LIMIT:
        _bitmaps.clear()
    _bitmaps[types] = bitmap
    return bitmap


# --- from the wire to dnspython's text (a transfer in: secdns.wire) ----------------------------

_NSEC3_FIXED = struct.Struct("!BBH")
_sig_texts: dict[int, str] = {}
_type_texts: dict[int, str] = {}
NameAt = Callable[[int], tuple[str, int]]
"""The text of the name at an offset of the message (as the decoder writes rdata names),
and the offset after it."""


def _type_text(rdtype: int) -> str:
    text = _type_texts.get(rdtype)
    if text is None:
        text = _type_texts[rdtype] = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))
    return text


def _base64_text(data: bytes) -> str:
    """dnspython's ``_base64ify``: base64 in chunks of 32 characters."""
    encoded = base64.b64encode(data).decode()
    if len(encoded) <= 32:
        return encoded
    return " ".join([encoded[i : i + 32] for i in range(0, len(encoded), 32)])


def _time_text(seconds: int) -> str:
    """An RRSIG time as dnspython writes it (YYYYMMDDHHMMSS), cached."""
    text = _sig_texts.get(seconds)
    if text is None:
        text = time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds))
        if len(_sig_texts) >= _CACHE_LIMIT:
            _sig_texts.clear()
        _sig_texts[seconds] = text
    return text


_B32HEX = "0123456789abcdefghijklmnopqrstuv"
_B32HEX_PAIRS = [a + b for a in _B32HEX for b in _B32HEX]  # every 10 bits' two characters


def base32hex(data: bytes) -> str:
    """``data`` in lowercase base32hex without padding (RFC 4648 7), as NSEC3 hashes are
    written: ten bits at a time from one integer for whole groups of five octets (a
    SHA-1 hash: 20), ``base64`` otherwise (its base32 is pure Python, ~5x slower)."""
    if len(data) % 5:
        return base64.b32hexencode(data).decode().rstrip("=").lower()
    value = int.from_bytes(data, "big")
    pairs = _B32HEX_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(len(data) * 8 - 10, -1, -10)])


def bitmap_text(wire: bytes, pos: int, end: int) -> str | None:
    """The type bitmap ``wire[pos:end]`` as dnspython writes it (each type after a
    space), or None where dnspython would refuse it (windows out of order, a window of
    no or more than 32 octets, cut short)."""
    parts: list[str] = []
    last = -1
    while pos < end:
        if pos + 2 > end:
            return None
        window, length = wire[pos], wire[pos + 1]
        if window <= last or not 0 < length <= 32 or pos + 2 + length > end:
            return None
        last = window
        base = window * 256
        for index, octet in enumerate(wire[pos + 2 : pos + 2 + length]):
            if octet:
                for bit in range(8):
                    if octet & (0x80 >> bit):
                        parts.append(" " + _type_text(base + index * 8 + bit))
        pos += 2 + length
    return "".join(parts)


def rrsig_text(wire: bytes, pos: int, end: int, name_at: NameAt) -> str | None:
    """RRSIG rdata as dnspython writes it, or None (dnspython then reads it)."""
    if pos + 18 > end:
        return None
    covered, algorithm, labels, ttl, expiration, inception, tag = RRSIG_HEAD.unpack_from(wire, pos)
    signer, after = name_at(pos + 18)
    if after >= end:
        return None  # (no signature)
    return (
        f"{_type_text(covered)} {algorithm} {labels} {ttl} {_time_text(expiration)} "
        f"{_time_text(inception)} {tag} {signer} {_base64_text(wire[after:end])}"
    )


def nsec_text(wire: bytes, pos: int, end: int, name_at: NameAt) -> str | None:
    """NSEC rdata as dnspython writes it, or None."""
    following, after = name_at(pos)
    if after > end:
        return None
    types = bitmap_text(wire, after, end)
    return None if types is None else following + types


def nsec3_text(wire: bytes, pos: int, end: int) -> str | None:
    """NSEC3 rdata as dnspython writes it, or None."""
    if pos + 5 > end:
        return None
    algorithm, flags, iterations = _NSEC3_FIXED.unpack_from(wire, pos)
    at = pos + 4
    salt = wire[at + 1 : at + 1 + wire[at]]
    at += 1 + wire[at]
    if at >= end or not wire[at] or at + 1 + wire[at] > end:
        return None  # cut short, or no next hashed owner
    following = wire[at + 1 : at + 1 + wire[at]]
    at += 1 + wire[at]
    types = bitmap_text(wire, at, end)
    if types is None:
        return None
    hashed = base32hex(following)
    return f"{algorithm} {flags} {iterations} {salt.hex() if salt else '-'} {hashed}{types}"
