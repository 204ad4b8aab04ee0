"""The bulk of an AXFR, from the wire straight to compact rows (issue 12, ``pull -o``).

:func:`secdns.wire.parse_message` given a :class:`Rows` hands it the message's
ANSWER records; :func:`scan_rows` keeps the leading ones that need no decision of
the transfer's state machine (:class:`secdns.xfr.XfrReader`: class IN, not an
SOA, owner inside the zone) as :data:`Row` tuples, and stops at the first that
does, which ``parse_message`` then decodes as a :class:`secdns.wire.Record`
(as it does the :attr:`Rows.lead` records before the scan: an AXFR's opening SOA).  One
pass a record: the names, rdata checks and error messages of
:func:`secdns.wire._read_answers`, what the reader would check and share done in
the same loop, and no record object.  The rows are sorted and rendered only as
the zone is written (:class:`secdns.zonefile.FullZone`).

It reads :mod:`secdns.wire`'s name cache entries by index (0 labels, 1 key,
2 text, 3 under the origin, 4 end of the in-place octets, 5 pointer hops,
6 wire length): a constant is cheaper than a global look-up a million times over.
"""

from __future__ import annotations

import dataclasses
import socket
import typing

import dns.name

from secdns.wire import (
    _A,
    _AAAA,
    _CNAME,
    _IN,
    _MAX_POINTER_HOPS,
    _MX,
    _NS,
    _NTOP_AGREES,
    _OPT,
    _PTR,
    _RR_HEADER,
    _SOA,
    _STRING_PLAIN,
    _TSIG,
    _TXT,
    _ZERO10,
    WireError,
    _Cache,
    _fast_text,
    _read_name,
    ipv6_text,
    label_text,
    string_text,
    type_text,
)

Row = tuple[tuple[bytes, ...], str, int, int, str]
"""One record of a full zone, compactly: (owner key, owner text, TTL, type, rdata text);
class IN.  A million of these are what an AXFR holds until it is written."""


@dataclasses.dataclass(slots=True)
class Rows:
    """Where :func:`secdns.wire.parse_message` puts the records of a full zone.

    ``shared`` makes equal TTLs and repeated rdata (NS and MX targets, common
    addresses) one object each; it is emptied when it reaches ``SHARED_LIMIT``
    entries, so unique rdata costs at most that much.  ``text`` counts the owner
    and rdata text held, the size of the rendered zone.  ``lead`` is how many
    ANSWER records of the next message ``parse_message`` decodes as records before
    it scans: 1 for the first message of an AXFR, whose opening SOA the state
    machine takes before any row (:meth:`secdns.xfr.XfrReader.rows`), else 0.
    """

    rows: list[Row] = dataclasses.field(default_factory=list)
    shared: dict[int | str, typing.Any] = dataclasses.field(default_factory=dict)
    text: int = 0
    lead: int = 0

    SHARED_LIMIT: typing.ClassVar[int] = 50_000

    def scan(
        self,
        wire: bytes,
        pos: int,
        count: int,
        cache: _Cache,
        okey: tuple[bytes, ...],
        origin: dns.name.Name,
    ) -> tuple[int, int]:
        return scan_rows(wire, pos, count, cache, okey, origin, self)


def scan_rows(
    wire: bytes,
    pos: int,
    count: int,
    cache: _Cache,
    okey: tuple[bytes, ...],
    origin: dns.name.Name,
    sink: Rows,
) -> tuple[int, int]:
    """Decode up to *count* ANSWER RRs at *pos* into ``sink.rows`` while each is an
    ordinary record of the zone (class IN, not an SOA, owner under the origin);
    return how many were kept and the offset of the first one not kept.

    :func:`_read_answers` for the bulk of an AXFR, with what :class:`secdns.xfr.XfrReader`
    would check and share done in the same pass and no record object: the same
    names, rdata checks and error messages, about half the time a record.
    """
    end = len(wire)
    rows = sink.rows
    append = rows.append
    shared = sink.shared
    if len(shared) > sink.SHARED_LIMIT:
        shared.clear()
    share = shared.setdefault
    cache_get = cache.get
    unpack_rr = _RR_HEADER.unpack_from
    inet_ntoa = socket.inet_ntoa
    inet_ntop = socket.inet_ntop
    inet6 = socket.AF_INET6
    ntop_agrees = _NTOP_AGREES
    zero10 = _ZERO10
    string_plain = _STRING_PLAIN
    txt = int(_TXT)
    olabels = origin.labels[:-1]
    text_bytes = 0
    before = len(rows)
    a, aaaa, soa, opt, tsig, in_ = int(_A), int(_AAAA), int(_SOA), int(_OPT), int(_TSIG), int(_IN)
    mx = int(_MX)
    names = {int(_NS), int(_CNAME), int(_PTR), mx}
    depth = len(olabels)
    max_hops = _MAX_POINTER_HOPS
    for _ in range(count):
        if pos + 11 > end:
            raise WireError(f"RR at offset {pos} is truncated")
        start = pos
        first = wire[pos]
        if first >= 192:
            entry = cache_get(((first & 0x3F) << 8) | wire[pos + 1])
            if entry is None or entry[4] > pos or entry[5] >= max_hops:
                entry = _read_name(wire, pos, cache, okey)
            pos += 2
        else:
            # a new owner is mostly one label and a pointer to a name under the
            # origin: _read_name's fast path, inline (pos + 11 <= end: in bounds)
            nxt = pos + 1 + first
            pointer = wire[nxt] if 0 < first < 64 and nxt + 1 < end else 0
            suffix = cache_get(((pointer & 0x3F) << 8) | wire[nxt + 1]) if pointer >= 192 else None
            if (
                suffix is not None
                and suffix[3]
                and suffix[4] <= pos
                and suffix[5] < max_hops
                and suffix[6] + first < 255
            ):
                label = wire[pos + 1 : nxt]
                owner = label.decode("ascii") if label.isalnum() else label_text(label)
                if suffix[2] != "@":
                    owner = owner + "." + suffix[2]
                pos = nxt + 2
                entry = cache[start] = (
                    (label,) + suffix[0],
                    suffix[1] + (label if label.islower() else label.lower(),),
                    owner,
                    True,
                    pos,
                    suffix[5] + 1,
                    suffix[6] + first + 1,
                )
            else:
                entry = _read_name(wire, pos, cache, okey)
                pos = entry[4]
        if pos + 10 > end:
            raise WireError(f"RR header at offset {pos} is truncated")
        rdtype, rdclass, ttl, rdlen = unpack_rr(wire, pos)
        if rdclass != in_ or rdtype == soa or not entry[3]:
            break  # the state machine decides: _read_answers reads it again
        pos += 10
        rend = pos + rdlen
        if rend > end:
            raise WireError(f"rdata at offset {pos} runs past the end of the message")
        if ttl > 0x7FFFFFFF:
            ttl = 0
        if rdtype == a:
            if rdlen != 4:
                raise WireError(f"A rdata at offset {pos} has length {rdlen}")
            text = inet_ntoa(wire[pos:rend])
        elif rdtype == aaaa:
            if rdlen != 16:
                raise WireError(f"AAAA rdata at offset {pos} has length {rdlen}")
            address = wire[pos:rend]
            if ntop_agrees and address[:10] != zero10:  # ipv6_text, inline
                text = inet_ntop(inet6, address)
            else:
                text = ipv6_text(address)
        elif rdtype == txt and rdlen > 1 and wire[pos] == rdlen - 1:
            # one character-string (_txt_text, inline), quoted as string_text does
            data = wire[pos + 1 : rend]
            if data.translate(None, string_plain):
                text = string_text(data)
            else:
                text = '"' + data.decode("ascii") + '"'
            text = share(text, text)
        elif rdtype == opt or rdtype == tsig:
            raise WireError(f"{type_text(rdtype)} RR at offset {pos - 10} in the answer section")
        elif rdtype in names:
            # NS, CNAME, PTR, MX: the target is mostly a pointer to a name read
            # before, or one new label and such a pointer (_rdata_name, inline);
            # any other shape, and every error, is left to _fast_text
            npos = pos + 2 if rdtype == mx else pos
            first = wire[npos] if npos + 1 < rend else 0
            target = None
            if first >= 192:
                target = cache_get(((first & 0x3F) << 8) | wire[npos + 1])
                if target is not None and (target[4] > npos or target[5] >= max_hops):
                    target = None
                tend = npos + 2
            elif 0 < first < 64 and npos + 2 + first < end:
                nxt = npos + 1 + first
                pointer = wire[nxt]
                suffix = None
                if pointer >= 192:
                    suffix = cache_get(((pointer & 0x3F) << 8) | wire[nxt + 1])
                if (
                    suffix is not None
                    and suffix[3]
                    and suffix[4] <= npos
                    and suffix[5] < max_hops
                    and suffix[6] + first < 255
                ):
                    label = wire[npos + 1 : nxt]
                    name = label.decode("ascii") if label.isalnum() else label_text(label)
                    if suffix[2] != "@":
                        name = name + "." + suffix[2]
                    tend = nxt + 2
                    target = cache[npos] = (
                        (label,) + suffix[0],
                        suffix[1] + (label if label.islower() else label.lower(),),
                        name,
                        True,
                        tend,
                        suffix[5] + 1,
                        suffix[6] + first + 1,
                    )
            if target is not None and tend == rend:
                text = target[2]
                if depth and target[3]:
                    labels = target[0]
                    if labels[len(labels) - depth :] != olabels:  # see _exact_text
                        text = ".".join([label_text(label) for label in labels]) + "."
                if rdtype == mx:
                    text = f"{(wire[pos] << 8) | wire[pos + 1]} {text}"
            else:
                text = _fast_text(wire, pos, rend, in_, rdtype, cache, okey, origin, olabels)[0]
            text = share(text, text)
        else:
            text = _fast_text(wire, pos, rend, in_, rdtype, cache, okey, origin, olabels)[0]
            text = share(text, text)
        owner = entry[2]
        append((entry[1], owner, share(ttl, ttl), rdtype, text))
        text_bytes += len(owner) + len(text)
        pos = rend
    else:
        start = pos
    sink.text += text_bytes
    return len(rows) - before, start
