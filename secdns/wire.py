"""Fast decoding of zone-transfer responses into master-file text.

``dns.message.from_wire`` builds a full object graph for every record, which is
too slow for million-record AXFRs. :func:`parse_message` walks the wire format
directly and renders each ANSWER record as the text dnspython would produce
(``rdata.to_text(origin=origin, relativize=True)``), formatting the common
types itself (a signed zone's RRSIG, NSEC and NSEC3 through
:mod:`secdns.dnssecwire`) and handing every other type to dnspython.  Two departures from
dnspython keep the text faithful to what the primary sent, as dig's is: a
name in the rdata of a type rendered here (NS, CNAME, PTR, MX, SOA, SRV,
DNAME) is written relative to the origin only when its zone part has the
origin's exact case, else absolute (``WWW.D-UPPER.TEST.`` in zone
``d-upper.test.`` would otherwise become ``WWW`` and reload as
``WWW.d-upper.test.``); and empty unknown-type rdata is ``\\# 0``, without
dnspython's trailing space (:func:`rdata_text`).  Owner names stay relative
(every reader of the written files expects that).

Speed comes from three things: one ``struct`` unpack per RR header, a
per-message cache of decoded names keyed by wire offset (so a compressed owner
costs a dictionary lookup), and a module-level cache of escaped label text.

The decoder is as strict as dnspython's message parser: compression pointers
must point strictly backwards without overlapping the name being read (which
also rules out loops), chains are limited to 16 hops, labels to 63 octets and
names to 255 octets, every rdata must consume exactly its rdlength, and nothing
may follow the last RR. Any violation raises :class:`WireError` naming the
offset.

About 750 lines, kept whole: the name reader, the per-type renderers and the
record loop are one hot path (a million records per AXFR) that shares
module-level tables and caches; split across modules, every call would pay for
the extra attribute look-ups.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import typing

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG

from secdns import dnssecwire

if typing.TYPE_CHECKING:  # wirescan imports this module
    from secdns import wirescan


class WireError(Exception):
    """The DNS message is malformed."""


@dataclasses.dataclass(slots=True)
class Record:
    """One ANSWER record, rendered as master-file text relative to the origin.

    ``key`` is the owner's canonical sort key: lowercased labels, most
    significant first, root excluded. ``ttl`` follows RFC 2181 section 8 as
    dnspython does: a wire TTL with the top bit set is read as 0.
    """

    key: tuple[bytes, ...]
    owner: str
    ttl: int
    rdclass: int
    rdtype: int
    rdata: str
    serial: int | None


@dataclasses.dataclass(slots=True)
class Message:
    """The parts of a response message a zone transfer needs."""

    id: int
    flags: int
    rcode: int
    qname: tuple[bytes, ...] | None
    qtype: int | None
    records: list[Record]
    kept: int  # ANSWER records that went to the ``rows`` given to parse_message
    tsig_start: int | None
    tsig_owner: dns.name.Name | None
    tsig_rdata: dns.rdtypes.ANY.TSIG.TSIG | None
    edns_expire: int | None = None  # an OPT record's EXPIRE option (RFC 7314), if any
    # the answer's order: ``records[:lead]``, then the ``kept`` rows, then ``records[lead:]``
    lead: int = 0


# --- constants -------------------------------------------------------------

_HEADER = struct.Struct("!HHHHHH")
_RR_HEADER = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
_U16X2 = struct.Struct("!HH")
_U16X3 = struct.Struct("!HHH")
_U32X5 = struct.Struct("!IIIII")
_WORDS = struct.Struct("!8H")

_MAX_POINTER_HOPS = 16  # dns.name.MAX_COMPRESSION_POINTER_CHAIN
_LABEL_CACHE_LIMIT = 1 << 16

_IN = dns.rdataclass.IN
_ANY = dns.rdataclass.ANY
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_NS = dns.rdatatype.NS
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
_RRSIG = dns.rdatatype.RRSIG
_NSEC = dns.rdatatype.NSEC
_NSEC3 = dns.rdatatype.NSEC3
_PTR = dns.rdatatype.PTR
_MX = dns.rdatatype.MX
_SRV = dns.rdatatype.SRV
_TXT = dns.rdatatype.TXT
_SPF = dns.rdatatype.SPF
_SOA = dns.rdatatype.SOA
_OPT = dns.rdatatype.OPT
_TSIG = dns.rdatatype.TSIG

# Name cache entries are plain tuples for speed; these index them.
_LABELS: typing.Final = 0  # labels as received, root excluded
_KEY: typing.Final = 1  # lowercased labels, reversed
_TEXT: typing.Final = 2  # text relative to the origin ('@', 'www', or absolute 'other.')
_UNDER: typing.Final = 3  # is the name at or below the origin?
_SEG_END: typing.Final = 4  # offset just past the name's in-place octets
_HOPS: typing.Final = 5  # compression pointers followed to read the whole name
_WIRELEN: typing.Final = 6  # uncompressed wire length, root octet included

_Entry = tuple[tuple[bytes, ...], tuple[bytes, ...], str, bool, int, int, int]
_Cache = dict[int, _Entry]

# Label escaping, exactly as dns.name._escapify does for bytes labels.
_LABEL_SPECIAL = b'"().;\\@$'
_LABEL_ESCAPES: tuple[str, ...] = tuple(
    "\\" + chr(c) if c in _LABEL_SPECIAL else chr(c) if 0x20 < c < 0x7F else f"\\{c:03d}"
    for c in range(256)
)
_LABEL_PLAIN = bytes(c for c in range(256) if len(_LABEL_ESCAPES[c]) == 1)

# Character-string escaping, exactly as dns.rdata._escapify does.
_STRING_SPECIAL = b'"\\'
_STRING_ESCAPES: tuple[str, ...] = tuple(
    "\\" + chr(c) if c in _STRING_SPECIAL else chr(c) if 0x20 <= c < 0x7F else f"\\{c:03d}"
    for c in range(256)
)
_STRING_PLAIN = bytes(c for c in range(256) if len(_STRING_ESCAPES[c]) == 1)

_label_text_cache: dict[bytes, str] = {}
_type_text_cache: dict[int, str] = {}
_ZERO10 = bytes(10)


# --- small pure helpers ----------------------------------------------------


def type_text(rdtype: int) -> str:
    """Return the mnemonic of *rdtype* as ``dns.rdatatype.to_text`` does."""
    text = _type_text_cache.get(rdtype)
    if text is None:
        text = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))
        _type_text_cache[rdtype] = text
    return text


def record_line(rec: Record) -> str:
    """Render *rec* as one master-file line: ``owner ttl class type rdata``."""
    rdclass = (
        "IN"
        if rec.rdclass == _IN
        else dns.rdataclass.to_text(dns.rdataclass.RdataClass.make(rec.rdclass))
    )
    return f"{rec.owner} {rec.ttl} {rdclass} {type_text(rec.rdtype)} {rec.rdata}"


def soa_fields(rec: Record) -> tuple[int, int, int, int, int]:
    """Return ``(serial, refresh, retry, expire, minimum)`` of an SOA record.

    Names in text never contain an unescaped space, so the five numbers are
    the last five space-separated fields.
    """
    if rec.rdtype != _SOA:
        raise ValueError(f"not an SOA record: {type_text(rec.rdtype)}")
    fields = rec.rdata.rsplit(" ", 5)
    if len(fields) != 6:
        raise ValueError(f"malformed SOA rdata: {rec.rdata!r}")
    serial, refresh, retry, expire, minimum = (int(f) for f in fields[1:])
    return serial, refresh, retry, expire, minimum


def label_text(label: bytes) -> str:
    """Escape one label as ``dns.name.Name.to_text`` does (cached)."""
    text = _label_text_cache.get(label)
    if text is None:
        if label.translate(None, _LABEL_PLAIN):
            text = "".join([_LABEL_ESCAPES[c] for c in label])
        else:
            text = label.decode("ascii")
        if len(_label_text_cache) >= _LABEL_CACHE_LIMIT:
            _label_text_cache.clear()
        _label_text_cache[label] = text
    return text


def string_text(data: bytes) -> str:
    """Quote one character-string as dnspython's TXT rendering does."""
    if data.translate(None, _STRING_PLAIN):
        return '"' + "".join([_STRING_ESCAPES[c] for c in data]) + '"'
    return '"' + data.decode("ascii") + '"'


def _ipv6_text_python(address: bytes) -> str:
    """Render 16 octets exactly as ``dns.ipv6.inet_ntoa`` does (first longest
    run of two or more zero words becomes ``::``; ``::a.b.c.d`` and
    ``::ffff:a.b.c.d`` forms for embedded IPv4)."""
    words = _WORDS.unpack(address)
    best_start = best_len = 0
    i = 0
    while i < 8:
        if words[i] == 0:
            j = i + 1
            while j < 8 and words[j] == 0:
                j += 1
            if j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_len < 2:
        return ":".join([f"{w:x}" for w in words])
    if best_start == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
        prefix = "::" if best_len == 6 else "::ffff:"
        return prefix + socket.inet_ntoa(address[12:])
    head = ":".join([f"{w:x}" for w in words[:best_start]])
    tail = ":".join([f"{w:x}" for w in words[best_start + best_len :]])
    return head + "::" + tail


def _ntop_agrees() -> bool:
    """Does the C library's inet_ntop match dnspython away from the IPv4 forms?"""
    probes = (
        "2001:db8::1",
        "2001:db8::",
        "1:0:0:2:0:0:0:3",
        "1:0:0:2:0:0:3:4",
        "1:0:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:0",
        "fe80::1:0:0:1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    )
    try:
        for text in probes:
            address = socket.inet_pton(socket.AF_INET6, text)
            if socket.inet_ntop(socket.AF_INET6, address) != _ipv6_text_python(address):
                return False
    except (OSError, ValueError, AttributeError):
        return False
    return True


_NTOP_AGREES = _ntop_agrees()


def ipv6_text(address: bytes) -> str:
    """Render 16 octets exactly as ``dns.ipv6.inet_ntoa`` does.

    C ``inet_ntop`` implementations agree with dnspython except where the
    first five words are zero (the embedded IPv4 forms), so those, and any
    platform whose ``inet_ntop`` fails the probe at import, take the Python path.
    """
    if _NTOP_AGREES and address[:10] != _ZERO10:
        return socket.inet_ntop(socket.AF_INET6, address)
    return _ipv6_text_python(address)


def _origin_key(origin: dns.name.Name) -> tuple[bytes, ...]:
    if not origin.is_absolute():
        raise ValueError(f"origin must be absolute: {origin}")
    return tuple(label.lower() for label in reversed(origin.labels[:-1]))


# --- names -----------------------------------------------------------------

_origin_wires: dict[tuple[bytes, ...], bytes] = {}


def _origin_wire(okey: tuple[bytes, ...]) -> bytes:
    """The origin's uncompressed wire form, lowercased, from its key (cached)."""
    octets = _origin_wires.get(okey)
    if octets is None:
        octets = b"".join([bytes((len(label),)) + label for label in reversed(okey)]) + b"\0"
        if len(_origin_wires) >= _LABEL_CACHE_LIMIT:
            _origin_wires.clear()
        _origin_wires[okey] = octets
    return octets


def _read_name(
    wire: bytes, start: int, cache: _Cache, okey: tuple[bytes, ...], budget: int = _MAX_POINTER_HOPS
) -> _Entry:
    """Decode the (possibly compressed) name at *start*, caching by offset.

    The returned entry's ``_SEG_END`` is where the data after the name starts.
    """
    entry = cache.get(start)
    if entry is not None:
        return entry
    # Fast path for the usual shape: one label, then a pointer to a known name
    # under the origin (every new owner in a zone transfer looks like this).
    # Reading past the end falls through to the careful loop, which reports it.
    try:
        length = wire[start]
        nxt = start + 1 + length
        pointer = wire[nxt] if 0 < length < 64 else 0
        if pointer >= 192:
            suffix = cache.get(((pointer & 0x3F) << 8) | wire[nxt + 1])
            if (
                suffix is not None
                and suffix[_UNDER]
                and suffix[_SEG_END] <= start
                and suffix[_HOPS] < _MAX_POINTER_HOPS
                and suffix[_WIRELEN] + length < 255
            ):
                label = wire[start + 1 : nxt]
                text = label.decode("ascii") if label.isalnum() else label_text(label)
                suffix_text = suffix[_TEXT]
                if suffix_text != "@":
                    text = text + "." + suffix_text
                entry = cache[start] = (
                    (label,) + suffix[_LABELS],
                    suffix[_KEY] + (label if label.islower() else label.lower(),),
                    text,
                    True,
                    nxt + 2,
                    suffix[_HOPS] + 1,
                    suffix[_WIRELEN] + length + 1,
                )
                return entry
    except IndexError:
        pass
    end = len(wire)
    labels: list[bytes] = []
    offsets: list[int] = []
    wirelen = 1
    pos = start
    while True:
        if pos >= end:
            raise WireError(f"name at offset {start} runs past the end of the message")
        length = wire[pos]
        if length == 0:
            pos += 1
            # the root: '@' when it is the origin, else '.'
            suffix = ((), (), "." if okey else "@", not okey, pos, 0, 1)
            hops = 0
            break
        if length < 64:
            nxt = pos + 1 + length
            if nxt > end:
                raise WireError(f"label at offset {pos} runs past the end of the message")
            wirelen += length + 1
            if wirelen > 255:
                raise WireError(f"name at offset {start} is longer than 255 octets")
            labels.append(wire[pos + 1 : nxt])
            offsets.append(pos)
            pos = nxt
            continue
        if length < 192:
            raise WireError(f"unsupported label type 0x{length:02x} at offset {pos}")
        if pos + 1 >= end:
            raise WireError(f"compression pointer at offset {pos} is truncated")
        target = ((length & 0x3F) << 8) | wire[pos + 1]
        if target >= start:
            raise WireError(
                f"compression pointer at offset {pos} does not point backwards (to {target})"
            )
        if budget <= 0:
            raise WireError(f"name at offset {start} has too many compression pointers")
        pos += 2
        suffix = cache.get(target) or _read_name(wire, target, cache, okey, budget - 1)
        if suffix[_SEG_END] > start:
            raise WireError(f"compression pointer at offset {pos - 2} points into the name it ends")
        hops = suffix[_HOPS] + 1
        if hops > _MAX_POINTER_HOPS:
            raise WireError(f"name at offset {start} has too many compression pointers")
        wirelen += suffix[_WIRELEN] - 1
        if wirelen > 255:
            raise WireError(f"name at offset {start} is longer than 255 octets")
        break
    if not labels:
        entry = (suffix[_LABELS], suffix[_KEY], suffix[_TEXT], suffix[_UNDER], pos, hops, wirelen)
        cache[start] = entry
        return entry
    # every suffix that starts at a label of this name gets its entry too, exactly
    # what reading it there would give: later names point into the middle of this
    # one, and find it in the cache.  Each entry's text grows from its suffix's:
    # relative below the origin, '@' at it, absolute outside it ('.' the root); a
    # suffix outside the origin that gains a label is under it only if it becomes
    # the origin.
    entry = suffix
    top = len(labels)
    depth = len(okey)
    if not hops and depth and top >= depth:
        # written whole and ending in the origin (BIND 9.18 writes most new owners of
        # a small zone so): the origin's entry at once, without the suffixes above it
        # (a name that points at one reads it then, as any name not in the cache)
        at = offsets[top - depth]
        if wire[at:pos].lower() == _origin_wire(okey):  # (length octets are < 64)
            top -= depth
            entry = cache[at] = (tuple(labels[top:]), okey, "@", True, pos, 0, pos - at)
    wirelen = entry[_WIRELEN]
    for index in range(top - 1, -1, -1):
        label = labels[index]
        wirelen += len(label) + 1
        full = (label,) + entry[_LABELS]
        key = entry[_KEY] + (label.lower(),)
        text = entry[_TEXT]
        if entry[_UNDER]:
            text = label_text(label) if text == "@" else label_text(label) + "." + text
            under = True
        elif key == okey:
            text = "@"
            under = True
        else:
            text = label_text(label) + "." if text == "." else label_text(label) + "." + text
            under = False
        entry = cache[offsets[index]] = (full, key, text, under, pos, hops, wirelen)
    return entry


def _exact_text(entry: _Entry, olabels: tuple[bytes, ...]) -> str:
    """The text of a name in rdata: relative to the origin only when its zone part is
    written with the origin's exact case (*olabels*), else absolute, so that no octet
    the primary sent is lost."""
    if entry[_UNDER] and olabels:
        labels = entry[_LABELS]
        if labels[len(labels) - len(olabels) :] != olabels:
            return ".".join([label_text(label) for label in labels]) + "."
    return entry[_TEXT]


def _rdata_name(
    wire: bytes,
    pos: int,
    rend: int,
    cache: _Cache,
    okey: tuple[bytes, ...],
    rdtype: int,
    olabels: tuple[bytes, ...],
) -> tuple[str, int]:
    """Text of the name at *pos* inside rdata ending at *rend*, and the offset after it."""
    first = wire[pos] if pos + 1 < rend else 0
    if first >= 192:
        # A bare pointer (e.g. NS targets): reuse the target's entry as is.
        entry = cache.get(((first & 0x3F) << 8) | wire[pos + 1])
        if entry is not None and entry[_SEG_END] <= pos and entry[_HOPS] < _MAX_POINTER_HOPS:
            return _exact_text(entry, olabels), pos + 2
    entry = _read_name(wire, pos, cache, okey)
    if entry[_SEG_END] > rend:
        raise WireError(f"name in {type_text(rdtype)} rdata at offset {pos} overruns rdlength")
    return _exact_text(entry, olabels), entry[_SEG_END]


# --- rdata -----------------------------------------------------------------


def _txt_text(wire: bytes, pos: int, rend: int) -> str:
    if pos >= rend:
        raise WireError(f"empty TXT rdata at offset {pos}")
    parts: list[str] = []
    while pos < rend:
        nxt = pos + 1 + wire[pos]
        if nxt > rend:
            raise WireError(f"character-string at offset {pos} overruns rdlength")
        parts.append(string_text(wire[pos + 1 : nxt]))
        pos = nxt
    return " ".join(parts)


def _generic_text(
    wire: bytes, pos: int, rdlen: int, rdclass: int, rdtype: int, origin: dns.name.Name
) -> str:
    try:
        rdata = dns.rdata.from_wire(
            dns.rdataclass.RdataClass.make(rdclass),
            dns.rdatatype.RdataType.make(rdtype),
            wire,
            pos,
            rdlen,
        )
    except Exception as err:  # dnspython raises many types for bad rdata
        raise WireError(f"bad {type_text(rdtype)} rdata at offset {pos}: {err}") from err
    return rdata_text(rdata, origin)


def rdata_text(rdata: dns.rdata.Rdata, origin: dns.name.Name) -> str:
    """dnspython's ``to_text(origin=origin, relativize=True)``, but ``\\# 0`` for empty
    unknown-type rdata (dnspython writes ``\\# 0 `` with a trailing space)."""
    if isinstance(rdata, dns.rdata.GenericRdata) and not rdata.data:
        return "\\# 0"
    return rdata.to_text(origin=origin, relativize=True)


def _fast_text(
    wire: bytes,
    pos: int,
    rend: int,
    rdclass: int,
    rdtype: int,
    cache: _Cache,
    okey: tuple[bytes, ...],
    origin: dns.name.Name,
    olabels: tuple[bytes, ...],
) -> tuple[str, int | None]:
    """Render rdata other than IN A/AAAA; returns ``(text, soa_serial)``.

    *olabels* are the origin's labels as given (root excluded), for :func:`_exact_text`.
    """
    if rdtype == _NS or rdtype == _CNAME or rdtype == _PTR:
        text, pos = _rdata_name(wire, pos, rend, cache, okey, rdtype, olabels)
    elif rdtype == _MX:
        if pos + 2 > rend:
            raise WireError(f"MX rdata at offset {pos} is too short")
        target, end = _rdata_name(wire, pos + 2, rend, cache, okey, rdtype, olabels)
        text = f"{_U16.unpack_from(wire, pos)[0]} {target}"
        pos = end
    elif rdtype == _TXT or rdtype == _SPF:
        return _txt_text(wire, pos, rend), None
    elif rdtype == _SOA:
        mname, pos = _rdata_name(wire, pos, rend, cache, okey, rdtype, olabels)
        rname, pos = _rdata_name(wire, pos, rend, cache, okey, rdtype, olabels)
        if pos + 20 != rend:
            raise WireError(f"SOA rdata ending at offset {rend} has the wrong length")
        serial, refresh, retry, expire, minimum = _U32X5.unpack_from(wire, pos)
        text = f"{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}"
        return text, serial
    elif rdtype == _SRV and rdclass == _IN:
        if pos + 6 > rend:
            raise WireError(f"SRV rdata at offset {pos} is too short")
        priority, weight, port = _U16X3.unpack_from(wire, pos)
        target, pos = _rdata_name(wire, pos + 6, rend, cache, okey, rdtype, olabels)
        text = f"{priority} {weight} {port} {target}"
    elif rdtype == _DNAME:
        # RFC 6672 forbids compressing the target, and dnspython rejects it.
        entry = _read_name(wire, pos, cache, okey)
        if entry[_SEG_END] > rend:
            raise WireError(f"name in DNAME rdata at offset {pos} overruns rdlength")
        if entry[_HOPS]:
            raise WireError(f"compressed DNAME target at offset {pos}")
        text = _exact_text(entry, olabels)
        pos = entry[_SEG_END]
    elif rdtype == _RRSIG or rdtype == _NSEC or rdtype == _NSEC3:  # a signed zone's bulk
        if rdtype == _NSEC3:
            dnssec = dnssecwire.nsec3_text(wire, pos, rend)
        else:
            origin_wire = _origin_wire(okey)

            def name_at(at: int) -> tuple[str, int]:  # (relative as dnspython makes it)
                after = at + len(origin_wire)
                if after <= rend and wire[at:after].lower() == origin_wire:
                    return "@", after  # (the usual signer, never compressed)
                return _rdata_name(wire, at, rend, cache, okey, rdtype, ())

            render = dnssecwire.rrsig_text if rdtype == _RRSIG else dnssecwire.nsec_text
            dnssec = render(wire, pos, rend, name_at)
        if dnssec is None:  # (what dnspython might read otherwise, or refuses)
            return _generic_text(wire, pos, rend - pos, rdclass, rdtype, origin), None
        return dnssec, None
    else:
        return _generic_text(wire, pos, rend - pos, rdclass, rdtype, origin), None
    if pos != rend:
        raise WireError(f"{type_text(rdtype)} rdata ending at offset {rend} has trailing octets")
    return text, None


# --- messages --------------------------------------------------------------


def parse_message(
    wire: bytes,
    origin: dns.name.Name,
    max_records: int | None = None,
    rows: wirescan.Rows | None = None,
) -> Message:
    """Decode one response message; render its ANSWER records relative to *origin*.

    With *rows* (the message belongs to a full zone: AXFR), the first
    ``rows.lead`` ANSWER records become records (an AXFR's opening SOA, for the
    state machine to take first), then the records that follow them and need no
    decision of the transfer's state machine (class IN, not an SOA, owner inside
    the zone) go straight to ``rows`` as compact tuples (:mod:`secdns.wirescan`),
    and the rest become records too: ``Message.records`` holds the records in
    order, ``Message.lead`` of them before the ``Message.kept`` rows.  Raises
    :class:`WireError` for any malformation, and when the answer count exceeds
    *max_records*.
    """
    wire = bytes(wire)
    end = len(wire)
    if end < 12:
        raise WireError(f"message of {end} octets is shorter than a header")
    msg_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire, 0)
    if max_records is not None and ancount > max_records:
        raise WireError(f"answer count {ancount} exceeds the limit of {max_records}")
    okey = _origin_key(origin)
    cache: _Cache = {}
    pos = 12

    qname: tuple[bytes, ...] | None = None
    qtype: int | None = None
    for index in range(qdcount):
        entry = _read_name(wire, pos, cache, okey)
        pos = entry[_SEG_END]
        if pos + 4 > end:
            raise WireError(f"question at offset {pos} is truncated")
        if index == 0:
            qname = entry[_LABELS]
            qtype = _U16.unpack_from(wire, pos)[0]
        pos += 4

    kept = lead = 0
    head: list[Record] = []
    if rows is not None:
        if rows.lead:
            lead = min(rows.lead, ancount)
            head, pos = _read_answers(wire, pos, lead, cache, okey, origin)
        kept, pos = rows.scan(wire, pos, ancount - lead, cache, okey, origin)
    answers, pos = _read_answers(wire, pos, ancount - lead - kept, cache, okey, origin)
    if head:
        answers = head + answers

    tsig_start: int | None = None
    tsig_owner: dns.name.Name | None = None
    tsig_rdata: dns.rdtypes.ANY.TSIG.TSIG | None = None
    rcode = flags & 0xF
    edns_expire: int | None = None
    last = nscount + arcount - 1
    for index in range(nscount + arcount):
        rr_start = pos
        entry = _read_name(wire, pos, cache, okey)
        pos = entry[_SEG_END]
        if pos + 10 > end:
            raise WireError(f"RR header at offset {pos} is truncated")
        rdtype, rdclass, ttl, rdlen = _RR_HEADER.unpack_from(wire, pos)
        pos += 10
        if pos + rdlen > end:
            raise WireError(f"rdata at offset {pos} runs past the end of the message")
        if rdtype == _TSIG:
            if index != last or index < nscount:
                raise WireError(f"TSIG RR at offset {rr_start} is not the last RR")
            if rdclass != _ANY:
                raise WireError(f"TSIG RR at offset {rr_start} is not class ANY")
            tsig_start = rr_start
            tsig_owner = dns.name.Name(entry[_LABELS] + (b"",))
            tsig_rdata = _tsig_rdata(wire, pos, rdlen)
        elif rdtype == _OPT and index >= nscount:  # (a transfer asked with EDNS: RFC 7314)
            rcode |= (ttl >> 24) << 4  # the extended RCODE (RFC 6891 6.1.3)
            edns_expire = expire_option(wire, pos, pos + rdlen)
        pos += rdlen
    if pos != end:
        raise WireError(f"{end - pos} octets of trailing garbage at offset {pos}")
    return Message(
        id=msg_id,
        flags=flags,
        rcode=rcode,
        qname=qname,
        qtype=qtype,
        records=answers,
        kept=kept,
        tsig_start=tsig_start,
        tsig_owner=tsig_owner,
        tsig_rdata=tsig_rdata,
        edns_expire=edns_expire,
        lead=lead,
    )


EDNS_EXPIRE = 9
"""The EDNS EXPIRE option code (RFC 7314)."""


def expire_option(wire: bytes, pos: int, end: int) -> int | None:
    """The EXPIRE option's seconds in an OPT record's rdata (``wire[pos:end]``), or None
    (absent or malformed); :class:`WireError` when the options overrun the record."""
    while pos + 4 <= end:
        code, length = _U16X2.unpack_from(wire, pos)
        pos += 4
        if pos + length > end:
            raise WireError(f"EDNS option at offset {pos - 4} overruns its record")
        if code == EDNS_EXPIRE and length == 4:
            return int.from_bytes(wire[pos : pos + 4], "big")
        pos += length
    if pos != end:
        raise WireError(f"EDNS options ending at offset {end} are cut short")
    return None


def _tsig_rdata(wire: bytes, pos: int, rdlen: int) -> dns.rdtypes.ANY.TSIG.TSIG:
    try:
        rdata = dns.rdata.from_wire(_ANY, _TSIG, wire, pos, rdlen)
    except Exception as err:  # dnspython raises many types for bad rdata
        raise WireError(f"bad TSIG rdata at offset {pos}: {err}") from err
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    return rdata


def _read_answers(
    wire: bytes,
    pos: int,
    count: int,
    cache: _Cache,
    okey: tuple[bytes, ...],
    origin: dns.name.Name,
) -> tuple[list[Record], int]:
    """Decode *count* ANSWER RRs at *pos*; return them and the offset after them."""
    end = len(wire)
    records: list[Record] = []
    append = records.append
    cache_get = cache.get
    unpack_rr = _RR_HEADER.unpack_from
    inet_ntoa = socket.inet_ntoa
    new_record = Record
    olabels = origin.labels[:-1]
    for _ in range(count):
        if pos + 11 > end:
            raise WireError(f"RR at offset {pos} is truncated")
        first = wire[pos]
        if first >= 192:
            # A bare compression pointer: the common case for repeated owners.
            entry = cache_get(((first & 0x3F) << 8) | wire[pos + 1])
            if entry is None or entry[_SEG_END] > pos or entry[_HOPS] >= _MAX_POINTER_HOPS:
                entry = _read_name(wire, pos, cache, okey)
            pos += 2
        else:
            entry = _read_name(wire, pos, cache, okey)
            pos = entry[_SEG_END]
        if pos + 10 > end:
            raise WireError(f"RR header at offset {pos} is truncated")
        rdtype, rdclass, ttl, rdlen = unpack_rr(wire, pos)
        pos += 10
        rend = pos + rdlen
        if rend > end:
            raise WireError(f"rdata at offset {pos} runs past the end of the message")
        if ttl > 0x7FFFFFFF:
            ttl = 0
        serial = None
        if rdclass == _IN and rdtype == _A:
            if rdlen != 4:
                raise WireError(f"A rdata at offset {pos} has length {rdlen}")
            text = inet_ntoa(wire[pos:rend])
        elif rdclass == _IN and rdtype == _AAAA:
            if rdlen != 16:
                raise WireError(f"AAAA rdata at offset {pos} has length {rdlen}")
            text = ipv6_text(wire[pos:rend])
        elif rdtype == _OPT or rdtype == _TSIG:
            raise WireError(f"{type_text(rdtype)} RR at offset {pos - 10} in the answer section")
        else:
            text, serial = _fast_text(
                wire, pos, rend, rdclass, rdtype, cache, okey, origin, olabels
            )
        append(new_record(entry[_KEY], entry[_TEXT], ttl, rdclass, rdtype, text, serial))
        pos = rend
    return records, pos
