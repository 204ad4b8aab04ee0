"""The answer makers of the ready-answer fill (:func:`secdns.server.readyfill.fill`):
each owner's ready answers (:class:`_OwnerAnswers`: RD set, as the prepared path would
answer an RD query without OPT, and the RD-clear form when one is needed), the names an
answer writes into the compression table (:func:`_named`, for the shared RD-clear
blocks) and the referral at a delegation point (:func:`_referral`).  Split from
:mod:`secdns.server.readyfill` (the walk over a version and the filler thread) at the
house size; both run in the filler's thread or its forked child, never in the UDP
threads.
"""

from __future__ import annotations

import struct
from socket import AF_INET6, inet_aton, inet_pton
from typing import TYPE_CHECKING

from secdns.server.denial import KIND_DNAME, KIND_NS
from secdns.server.front import PlainQuery
from secdns.server.ownerwire import (
    _COMPRESS,
    RR,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_NS,
    Labels,
    Owner,
    Rrset,
    prepare_owner,
    write_rrset,
)
from secdns.server.prepared import PreparedAnswers
from secdns.server.prepwire import Section, _add, _holds
from secdns.server.prepwire import _render as render
from secdns.server.ready import (
    _CLEAR_HEAD,
    _COUNTS,
    _QUERY_HEAD,
    _SIMPLE,
    _TARGET_TYPES,
    REFERRAL_QTYPES,
    Form,
    ReadyAnswers,
)
from secdns.server.render import EDNS_PAYLOAD

if TYPE_CHECKING:
    from secdns.server.zone import ServedZone, ZoneVersion


def _referral(
    ready: ReadyAnswers,
    prepared: PreparedAnswers,
    zone: ServedZone,
    generation: int,
    version: ZoneVersion,
    key: str,
) -> int:
    """Make the referrals for owner ``key`` ready (:data:`~secdns.server.ready.Cut`), a
    delegation point or a name below one (its glue), from the prepared path's answers
    with a 1232-byte EDNS payload (less its OPT): one for every question of the name
    but DS and the address types it owns, made from an NS question, and one for each of
    those address questions (the glue that answers it goes first); how many were made."""
    lines = version.lines(key)
    owner = prepared.owner(version, key, lines) if lines else None
    if owner is None:
        return 0
    qname = _qname(owner.labels)
    if qname is None:
        return 0

    def cut(qtype: int, excluded: frozenset[int] | None = None) -> int:
        """One referral, made from a *qtype* question, kept for every question of the
        name but *excluded*, or with None for that question alone."""
        question = qname + struct.pack("!HH", qtype, 1)
        wire = _CLEAR_HEAD_EDNS + question + _OPT_QUERY
        labels = list(owner.labels[:-1])
        query = PlainQuery(0, 0, labels, 12 + len(qname), qtype, 1, 0, EDNS_PAYLOAD)
        got = prepared._referral(wire, query, key, zone, version, EDNS_PAYLOAD)  # noqa: SLF001
        if got is None:
            return 0
        reply = got[0]
        if (
            reply[2] & 0x06  # AA (not a referral) or TC
            or reply[3] & 0x0F
            or reply[6:8] != b"\x00\x00"
            or reply[-11:-8] != b"\x00\x00\x29"
            or reply[10]
            or not 0 < reply[11] <= 255
        ):
            return 0
        counts = reply[4:11] + bytes((reply[11] - 1,))
        tail = reply[12 + len(question) : -11]
        if excluded is None:  # (kept under the whole question: see ReadyAnswers.referral)
            ready.put_cut(question, zone, generation, counts, tail, _EXCLUDED_NONE)
        else:
            ready.put_cut(qname, zone, generation, counts, tail, excluded)
        return 1

    made = 0
    excluded = {43}  # DS: the parent's own answer
    for rdtype in (TYPE_A, TYPE_AAAA):  # addresses the name owns: glue answers
        if rdtype in owner.types or rdtype in owner.unsupported:
            excluded.add(rdtype)
            if rdtype in owner.types:
                made += cut(rdtype)
    shared = _EXCLUDED.setdefault(frozenset(excluded), frozenset(excluded))  # a few sets
    return made + cut(TYPE_NS, shared)


class _OwnerAnswers:
    """The ready answers of one owner of a zone version, each as the prepared path would
    answer an RD query for it without OPT: (question, QDCOUNT..ARCOUNT, tail)."""

    def __init__(self, prepared: PreparedAnswers, zone: ServedZone, version: ZoneVersion) -> None:
        self.prepared = prepared
        self.zone = zone
        self.version = version
        self.apex = version.origin_key
        self.origin: Labels = tuple(version.origin.labels)
        self._apex: object = _UNSET
        self.cuts: set[str] = set()  # delegation points and DNAME owners (fill sets them)
        self.children: list[str] = []  # child zones served here

    def answers(self, key: str, lines: tuple[str, ...]) -> list[Made]:
        """An owner with addresses only is written from its lines (:func:`_addresses`);
        other RRsets without additional-section processing from the owner form, as the
        prepared path's inline case writes them; MX/SRV with its additional-section
        logic; the apex and DNAME owners through the prepared path itself."""
        made: list[Made] = []
        if key != self.apex:
            addresses = _addresses(lines, self.origin)
            if addresses is not None:
                labels, forms = addresses
                qname = _qname(labels)
                if qname is not None:
                    for qtype, (count, rrs) in forms.items():
                        question = (
                            qname + (b"\x00\x01" if qtype == 1 else b"\x00\x1c") + b"\x00\x01"
                        )
                        if 12 + len(question) + len(rrs) + 11 <= 512:
                            made.append((question, _COUNTS.pack(1, count, 0, 0), rrs, None))
                return made
        owner = prepare_owner(lines, self.origin)
        if owner is None:
            return made
        labels = owner.labels
        qname = _qname(labels)
        if qname is None:
            return made
        direct = key != self.apex and not owner.kinds & (KIND_NS | KIND_DNAME)
        for qtype, rrset in owner.types.items():
            question = qname + struct.pack("!HH", qtype, 1)
            if direct and qtype not in _TARGET_TYPES:
                fixed = owner.fixed.get(qtype)
                if fixed is not None:
                    count, rrs = fixed
                else:
                    count = len(rrset[1])
                    table = {labels: 12}
                    if len(labels) > 2:
                        table[labels[1:]] = 13 + len(labels[0])
                    start = 12 + len(question)
                    out = bytearray(start)
                    write_rrset(out, table, labels, qtype, rrset)
                    rrs = bytes(out[start:])
                if 12 + len(question) + len(rrs) + 11 <= 512:
                    item = (((key, labels, qtype, rrset),), None)
                    made.append((question, _COUNTS.pack(1, count, 0, 0), rrs, item))
                continue
            additional: Section | None = [] if direct else None
            reply = self._reply(key, labels, qtype, rrset, question, direct, additional)
            if reply is None or reply[3] & 0x0F or reply[8:10] != b"\x00\x00":
                continue
            if reply[6:8] == b"\x00\x00" or len(reply) + 11 > 512 or reply[10] or reply[11] > 254:
                continue
            own = (((key, labels, qtype, rrset),), additional) if direct else None
            made.append((question, reply[4:12], reply[12 + len(question) :], own))
        if direct and not owner.unsupported and list(owner.types) == [TYPE_CNAME]:
            made += self._chain(key, owner, qname)
        return made

    def _chain(self, key: str, owner: Owner, qname: bytes) -> list[Made]:
        """The answers through a CNAME to an ordinary name of this zone (``Answerer``'s
        restart: the CNAME, then the target's RRset and its additional section), one per
        type the target has; nothing for a target elsewhere, below a cut or a DNAME, in a
        child zone, at the apex, itself a CNAME or anything unusual (the general path)."""
        rrset = owner.types[TYPE_CNAME]
        if len(rrset[1]) != 1:
            return []
        target: Labels = rrset[1][0][2]
        text = b".".join(target[:-1])
        if not _SIMPLE.issuperset(text):
            return []
        target_key = text.lower().decode() + "."
        apex = self.apex
        if not target_key.endswith("." + apex) or target_key in self.cuts:
            return []
        if any(target_key == c or target_key.endswith("." + c) for c in self.children):
            return []
        walk = target_key
        while walk != apex:
            walk = walk[walk.find(".") + 1 :]
            if walk in self.cuts:
                return []
        version = self.version
        entry = version.entry(target_key)
        if entry is None or not entry[0]:
            return []
        found = self.prepared.owner(version, target_key, entry[0])
        if found is None or found.kinds or found.unsupported or TYPE_CNAME in found.types:
            return []
        made: list[Made] = []
        head = (key, owner.labels, TYPE_CNAME, rrset)
        for qtype, answer in found.types.items():
            if qtype not in REFERRAL_QTYPES:
                continue
            question = qname + struct.pack("!HH", qtype, 1)
            items = (head, (target_key, found.labels, qtype, answer))
            additional: Section = []
            if qtype in _TARGET_TYPES and not self.prepared._additional_for(  # noqa: SLF001
                version, self.zone, answer, list(items), [], additional
            ):
                continue
            query = _QUERY_HEAD + question
            labels = list(owner.labels[:-1])
            reply = render(query, labels, 0x0100, None, 0, list(items), [], additional)
            if len(reply) + 11 > 512 or reply[10] or reply[11] > 254:
                continue
            made.append((question, reply[4:12], reply[12 + len(question) :], (items, additional)))
        return made

    def clear(
        self, question: bytes, item: tuple[tuple[Item, ...], Section | None] | None
    ) -> Form | None:
        """The RD-clear :data:`~secdns.server.ready.Form` of the answer to ``question``,
        as the prepared path answers an RD-clear query with a 1232-byte EDNS payload
        (less its OPT); None if it has none.  ``item``: the answer's RRset for an
        ordinary owner (its sections made here, as ``_resolve`` makes them: the RRset,
        the apex NS, the addresses of their targets), else the prepared path itself."""
        apex_ns = self._apex_ns()
        if item is not None and apex_ns is not None:
            answer = list(item[0])
            rrset = answer[-1][3]
            additional = item[1]
            if additional is None:
                additional = []
                if answer[-1][2] in _TARGET_TYPES and not self.prepared._additional_for(  # noqa: SLF001
                    self.version, self.zone, rrset, answer, [], additional
                ):
                    return None
            else:
                additional = list(additional)
            authority: Section = []
            ns, glue = apex_ns
            if ns[3] is not None:
                authority.append(ns)  # type: ignore[arg-type]  # (None: no apex NS)
                for address in glue:  # _additional_for(ns) as the prepared path runs it
                    if not _holds(answer, address[0], address[2]) and not _holds(
                        additional, address[0], address[2]
                    ):
                        _add(additional, address)
            query = _CLEAR_HEAD + question
            reply = render(
                query, list(answer[0][1][:-1]), 0, None, 0, answer, authority, additional
            )
        else:
            got = self.prepared.answer(_CLEAR_HEAD_EDNS + question + _OPT_QUERY)
            if got is None or got[1] is not self.zone or got[0][-11:-8] != b"\x00\x00\x29":
                return None
            reply = got[0][:-11]
            reply = reply[:10] + ((reply[10] << 8 | reply[11]) - 1).to_bytes(2, "big") + reply[12:]
        if reply[3] & 0x0F or reply[2] & 0x02 or not reply[2] & 0x04 or reply[6:8] == b"\x00\x00":
            return None  # not a positive answer
        if len(reply) + 11 > EDNS_PAYLOAD or reply[10] or reply[11] > 254:
            return None
        return reply[6:12], reply[12 + len(question) :]

    def _apex_ns(self) -> tuple[Item, Section] | None:
        """The apex NS as the authority section holds it ((..., None) if the apex has none)
        and the addresses of its targets as :meth:`PreparedAnswers._additional_for` finds
        them (the same for every answer: it skips those the answer already holds); None if
        either cannot be made here (the prepared path then decides)."""
        if self._apex is _UNSET:
            version = self.version
            apex = self.prepared.owner(version, self.apex, version.lines(self.apex))
            self._apex = None
            if apex is not None and TYPE_NS not in apex.unsupported:
                ns = apex.types.get(TYPE_NS)
                glue: Section = []
                if ns is None:
                    self._apex = ((self.apex, apex.labels, TYPE_NS, None), glue)
                else:
                    item = (self.apex, apex.labels, TYPE_NS, ns)
                    if self.prepared._additional_for(  # noqa: SLF001
                        version, self.zone, ns, [], [item], glue
                    ):
                        self._apex = (item, glue)
        return self._apex  # type: ignore[return-value]

    def _reply(
        self,
        key: str,
        labels: Labels,
        qtype: int,
        rrset: Rrset,
        question: bytes,
        direct: bool,
        additional: Section | None,
    ) -> bytes | None:
        """The prepared path's reply to an RD query for ``question``: for MX/SRV of an
        ordinary owner its sections without reading a query (``additional``: filled),
        else its whole answer."""
        if direct and additional is not None:
            answer = [(key, labels, qtype, rrset)]
            prepared = self.prepared
            if not prepared._additional_for(  # noqa: SLF001  (the same sections, one owner)
                self.version, self.zone, rrset, answer, [], additional
            ):
                return None
            query = _QUERY_HEAD + question
            return render(query, list(labels[:-1]), 0x0100, None, 0, answer, [], additional)
        got = self.prepared.answer(_QUERY_HEAD + question)
        if got is None or got[1] is not self.zone:
            return None
        return got[0]


_UNSET = object()
_EXCLUDED: dict[frozenset[int], frozenset[int]] = {}  # the QTYPE sets cuts leave out, shared
_EXCLUDED_NONE: frozenset[int] = frozenset()  # (a cut kept under its whole question)
_CLEAR_HEAD_EDNS = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01"  # RD clear, an OPT
_OPT_QUERY = b"\x00" + RR.pack(41, EDNS_PAYLOAD, 0, 0)

Item = tuple[str, Labels, int, Rrset]
"""One RRset of a section, as :mod:`secdns.server.prepared` writes them."""
Made = tuple[bytes, bytes, bytes, tuple[tuple[Item, ...], Section | None] | None]
"""One ready answer of an owner: (question, QDCOUNT..ARCOUNT, the tail after the
question, and when the owner is an ordinary one: the answer's RRset and the additional
section of its RD-set reply if one was made, for :meth:`_OwnerAnswers.clear`)."""


def _named(answer: tuple[Item, ...]) -> tuple[bytes, ...] | None:
    """The names an answer section's rdata puts into the compression table (each
    compressed name and its parent, lowercased wire forms; its owners are the question's
    name and those names), for :meth:`~secdns.server.ready.ReadyAnswers.clear_key`; None
    if a name is written otherwise (in full and remembered: SRV; two names: SOA)."""
    names: list[bytes] = []
    for _key, _labels, _rdtype, rrset in answer:
        for piece in rrset[1]:
            if type(piece) is bytes:
                continue
            if piece[0] != _COMPRESS:
                return None
            target: Labels = piece[2]
            wire = _NAMED.get(target)
            if wire is None:
                if len(_NAMED) >= 65536:
                    _NAMED.clear()
                whole = b"".join(bytes((len(label),)) + label for label in target).lower()
                wire = _NAMED[target] = (whole, whole[whole[0] + 1 :] if whole[0] else whole)
            names += wire
    return tuple(names)


_NAMED: dict[Labels, tuple[bytes, bytes]] = {}  # a name's wire form and its parent's


def _qname(labels: Labels) -> bytes | None:
    """The wire form of a name the prepared path answers (plain labels, 255 bytes)."""
    qname = b"".join(bytes((len(label),)) + label for label in labels)
    if len(qname) > 255 or not _SIMPLE.issuperset(b".".join(labels)):
        return None
    return qname


def _addresses(
    lines: tuple[str, ...], origin: Labels
) -> tuple[Labels, dict[int, tuple[int, bytes]]] | None:
    """An owner with only A and AAAA records, as :func:`prepare_owner` would make its
    :attr:`~secdns.server.ownerwire.Owner.fixed` forms (the smallest TTL per type,
    duplicates once, in line order), without making the Owner; None for any other
    owner or anything unusual (prepare_owner then decides)."""
    first = lines[0]
    owner_text = first[: first.find(" ")]
    if owner_text == "@" or "\\" in owner_text or owner_text.endswith("."):
        return None
    found: dict[int, tuple[int, list[bytes]]] = {}
    for line in lines:
        _owner, ttl_text, _cls, mnemonic, rdata = line.split(" ", 4)
        try:
            if mnemonic == "A":
                rdtype, piece = 1, inet_aton(rdata)
            elif mnemonic == "AAAA":
                rdtype, piece = 28, inet_pton(AF_INET6, rdata)
            else:
                return None
        except OSError:
            return None
        ttl = int(ttl_text)
        have = found.get(rdtype)
        if have is None:
            found[rdtype] = (ttl, [piece])
            continue
        if piece not in have[1]:
            have[1].append(piece)
        if ttl < have[0]:
            found[rdtype] = (ttl, have[1])
    forms = {}
    for rdtype, (ttl, pieces) in found.items():
        forms[rdtype] = (
            len(pieces),
            b"".join(b"\xc0\x0c" + RR.pack(rdtype, 1, ttl, len(p)) + p for p in pieces),
        )
    return (*owner_text.encode().split(b"."), *origin), forms
