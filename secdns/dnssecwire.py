"""The parts of DNSSEC rdata text that three readers turn into wire alike.

RRSIG times (``YYYYMMDDHHMMSS``, as dnspython renders them) and NSEC/NSEC3 type
bitmaps (RFC 4034 section 4.1.2) are read from canonical master-file text by the
AXFR writer (:func:`secdns.server.linewire.dnssec_rdata`), the answer path's node
parser (:func:`secdns.server.zone.fast_dnssec`) and verify's canonical wire
(:class:`secdns.checks.canonical.CanonicalWire`): one reading of each, here.
"""

from __future__ import annotations

import calendar

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
