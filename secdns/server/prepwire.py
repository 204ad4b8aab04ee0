"""The sections of a prepared answer in wire form (:mod:`secdns.server.prepared`).

:func:`_render` writes a reply's sections the way :class:`~secdns.server.render.Wire`
(BIND) compresses them; :func:`_answer_only` and :func:`_answer_and_block` are its
shortcuts for the commonest answers.  The authority block every positive answer of a
zone version shares (the apex NS, its targets' addresses, their RRSIGs: a
:class:`_Block`) is kept as a template per pattern of the names it compresses against
(:func:`_relocatable`), each reply setting its pointers, and the blocks, negative
answers' SOA bytes and referral sections made of a version are kept with the version
(:func:`_kept`).  Split from :mod:`secdns.server.prepared`, which decides what goes into
each section; this module only writes them.
"""

from __future__ import annotations

import struct

from secdns.server.denial import index_of
from secdns.server.front import PlainQuery
from secdns.server.ownerwire import (
    RR,
    TYPE_A,
    TYPE_AAAA,
    TYPE_NS,
    TYPE_SOA,
    Labels,
    Owner,
    Rrset,
    signatures,
    write_rrset,
)
from secdns.server.render import EDNS_PAYLOAD
from secdns.server.zone import ZoneVersion

_HEADER = struct.Struct("!HHHHH")
_OPT_PLAIN = b"\x00" + RR.pack(41, EDNS_PAYLOAD, 0, 0)
_OPT_DO = b"\x00" + RR.pack(41, EDNS_PAYLOAD, 0x8000, 0)
_FLAG_BITS = 0x0100 | 0x0010 | 0x7800  # RD, CD, opcode: copied from the query
_QR_AA = 0x8000 | 0x0400
TYPE_RRSIG = 46

Section = list[tuple[str, Labels, int, Rrset]]  # (owner key, owner labels, type, RRset)


class _Block(list[tuple[str, Labels, int, Rrset]]):
    """An authority section shared by the positive answers of a zone version
    (:meth:`PreparedAnswers._apex_block`), with its additional section; :func:`_render`
    keeps its bytes by where they start and what they would compress against."""

    # (no __dict__: every zone version asked keeps one or more, 10,000 zones)
    __slots__ = ("additional", "targets", "names", "counts", "templates")

    def __init__(self) -> None:
        super().__init__()
        self.additional: Section = []
        self.targets: frozenset[str] = frozenset()  # keys of the addresses it holds
        self.names: tuple[Labels, ...] = ()  # every name its writing looks up
        self.counts = (0, 0)  # its records: authority, additional
        # its bytes by which names it looks up are written before it (see _render)
        self.templates: dict[int, Template | None] = {}

    def placed(self, offsets: list[int | None], start: int) -> bytearray | None:
        """Its bytes in a reply where they start at ``start`` and the names it looks up
        (:attr:`names`) are at ``offsets`` (None: not written before it), from the
        template of that pattern with its pointers set; None when there is none (not
        made yet, or not relocatable) or the reply would pass the pointers' reach."""
        made = self.templates.get(_pattern(offsets))
        if made is None or start + len(made[0]) >= 0x4000:
            return None
        template, patches = made
        tail = bytearray(template)
        pack = _POINTER.pack_into
        for at, external, value in patches:
            target = offsets[value] if external else start + value
            pack(tail, at, 0xC000 | target)  # type: ignore[operator]  # (written: the pattern)
        return tail

    def remember(self, out: bytearray, start: int, offsets: list[int | None]) -> None:
        """Keep the template of the block just written at ``out[start:]`` (once a
        pattern: None too, for a block that is not relocatable)."""
        pattern = _pattern(offsets)
        if pattern not in self.templates:
            self.templates[pattern] = _relocatable(out, start, offsets, self.counts)

    def seal(self) -> None:
        names: dict[Labels, None] = {}
        for _key, labels, _rdtype, (_ttl, pieces) in (*self, *self.additional):
            looked = [labels]
            for piece in pieces:
                if type(piece) is not bytes:
                    looked.extend(part for part in piece[2:4] if type(part) is tuple)
            for name in looked:  # write_name looks up a name and its parent
                names[name] = None
                names[name[1:]] = None
        self.names = tuple(names)
        self.targets = frozenset(item[0] for item in self.additional)
        self.counts = (_records(self), _records(self.additional))


def _pattern(offsets: list[int | None]) -> int:
    """Which of a block's names are written before it, as bits (its templates' key)."""
    pattern = 0
    for found in offsets:
        pattern = pattern << 1 | (found is not None)
    return pattern


Template = tuple[bytes, list[tuple[int, bool, int]]]
"""A block's bytes written once, and where each of its compression pointers is: (its
place in the bytes, whether it points before the block, and then the index of the name
in ``_Block.names`` it points to, else its target's distance from the block's start)."""
_UNSEEN = object()  # (nothing kept yet for a key, where None is kept too)
_POINTER = struct.Struct("!H")
_NAMED_RDATA = frozenset({TYPE_NS})  # the block's types whose rdata is a (compressed) name
_PLAIN_RDATA = frozenset({TYPE_A, TYPE_AAAA, TYPE_RRSIG})  # (an RRSIG's signer: uncompressed)


def _relocatable(
    out: bytearray, start: int, offsets: list[int | None], counts: tuple[int, int]
) -> Template | None:
    """The template of a block just written at ``out[start:]`` (its ``counts`` of records)
    with ``offsets`` the places of the names it looks up; None if it holds a record of
    another type or a pointer to anything else (then it is written in full each time).

    The same bytes follow wherever the block starts, with its pointers set anew: a
    name is looked up whole and then its parent (:func:`write_name`) and every offset
    in a UDP reply is below 0x4000, so what is written as a pointer and what in full
    depends only on which of the names are there, not on where."""
    data = bytes(out[start:])
    patches: list[tuple[int, bool, int]] = []
    position = 0

    def name() -> bool:
        nonlocal position
        while True:
            length = data[position]
            if length >= 0xC0:
                target = ((length & 0x3F) << 8) | data[position + 1]
                if target >= start:
                    patches.append((position, False, target - start))
                elif target in offsets:
                    patches.append((position, True, offsets.index(target)))
                else:
                    return False
                position += 2
                return True
            position += 1 + length
            if length == 0:
                return True

    for _record in range(counts[0] + counts[1]):
        if not name():
            return None
        rdtype, rdlength = struct.unpack_from("!H6xH", data, position)
        position += 10
        end = position + rdlength
        if rdtype in _NAMED_RDATA:
            if not name() or position != end:
                return None
        elif rdtype not in _PLAIN_RDATA:
            return None
        position = end
    if position != len(data):
        return None
    return data, patches


KEPT_PER_VERSION = 1024
"""What :func:`_kept` holds for a version at most (blocks, negative answers' SOA bytes)."""
CUTS_KEPT = 4096
"""Delegations whose referral sections a version keeps at most (cleared when full)."""
_BLOCK_KEY = "block"
_CUTS_KEY = ("cuts",)
_SOA_KEY = "soa"


def _kept(version: ZoneVersion) -> dict[tuple[object, ...], object]:
    """What this path keeps of *version* (its apex blocks, by DO and table generation;
    its negative answers' SOA bytes, by offset and question): with the version, so that
    at 10,000 zones each zone's stay theirs while the version is served (a table of
    every zone's, bounded and cleared when full, was rebuilt on every ask there)."""
    kept = version.kept
    if kept is None or len(kept) >= KEPT_PER_VERSION:
        kept = version.kept = {}
    return kept


class _Recording(dict[Labels, int]):
    """A compression table that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: set[Labels] = set()

    def get(  # type: ignore[override]  # dict.get's overloads; this one covers our uses
        self, labels: Labels, default: int | None = None
    ) -> int | None:
        self.looked_up.add(labels)
        return super().get(labels, default)


def _conflict(qname: Labels, below: int, looked_up: set[Labels]) -> bool:
    """Whether a tail rendered without the question's table entries looked up one of them."""
    if below <= 0:
        return False  # rendered with the question's own entries
    return qname in looked_up or (below >= 2 and qname[1:] in looked_up)


def _soa_exact(qname: Labels, offset: int, soa: tuple[str, Labels, int, Rrset]) -> bytes:
    """The SOA tail rendered against this very question (the uncommon case)."""
    table: dict[Labels, int] = {}
    position = 12
    for depth in range(min(len(qname) - 1, 2)):
        table[qname[depth:]] = position
        position += 1 + len(qname[depth])
    out = bytearray(offset)
    write_rrset(out, table, soa[1], TYPE_SOA, soa[3])
    return bytes(out[offset:])


def _answer_only(
    wire: bytes, query: PlainQuery, owner: Owner, version: ZoneVersion, limit: int
) -> bytes | None:
    """The commonest answer: one RRset and no authority or additional section, asked in
    the zone's case (the owner is then a pointer to the question).  An RRset without
    names in its rdata is bytes kept on the owner; others are compressed against the
    question.  None if it does not apply (another case, DO on a signed zone) or does not
    fit."""
    labels = owner.labels
    if labels[:-1] != tuple(query.labels):
        return None
    opt_ttl = query.opt_ttl
    if opt_ttl is None:
        opt, arcount = b"", 0
    elif opt_ttl & 0x8000:
        if index_of(version).secure:
            return None
        opt, arcount = _OPT_DO, 1
    else:
        opt, arcount = _OPT_PLAIN, 1
    qtype = query.qtype
    fixed = owner.fixed.get(qtype)
    if fixed is not None:
        count, rrs = fixed
    else:
        rrset = owner.types[qtype]
        count = len(rrset[1])
        table = {labels: 12}
        if len(labels) > 2:
            table[labels[1:]] = 13 + len(labels[0])
        start = query.qname_end + 4
        out = bytearray(start)
        write_rrset(out, table, labels, qtype, rrset)
        rrs = bytes(out[start:])
    head = _HEADER.pack(_QR_AA | (query.flags & _FLAG_BITS), 1, count, 0, arcount)
    reply = wire[:2] + head + wire[12 : query.qname_end + 4] + rrs + opt
    return reply if len(reply) <= limit else None


def _answer_and_block(
    wire: bytes,
    qname_end: int,
    qtype: int,
    opt: bytes,
    arcount: int,
    owner: Owner,
    block: _Block,
    limit: int,
) -> bytes | None:
    """An RRset asked in the zone's case (the owner a pointer to the question) followed by
    the version's apex block (:class:`_Block`): the authority and additional sections of
    a positive answer to an RD-clear question, from the block's template
    (:func:`_relocatable`) with its pointers set; None where that does not apply: an
    RRset with names in its rdata, no template yet, or a reply past ``limit``."""
    fixed = owner.fixed.get(qtype)
    if fixed is None:
        return None  # (names in its rdata: what the block compresses against differs)
    count, rrs = fixed
    # what the question puts in the compression table: the name, and its parent
    labels = owner.labels
    parent = labels[1:] if len(labels) > 2 else None
    parent_at = 13 + len(labels[0])
    offsets: list[int | None] = [
        12 if name == labels else parent_at if name == parent else None for name in block.names
    ]
    start = qname_end + 4 + len(rrs)
    tail = block.placed(offsets, start)
    if tail is None or start + len(tail) + len(opt) > limit:
        return None
    head = _HEADER.pack(
        _QR_AA | (((wire[2] << 8) | wire[3]) & _FLAG_BITS),
        1,
        count,
        block.counts[0],
        block.counts[1] + arcount,
    )
    return wire[:2] + head + wire[12 : qname_end + 4] + rrs + tail + opt


_NOTHING_KEPT: dict[tuple[object, ...], object] = {}


def _limit(payload: int) -> int:
    """The largest UDP reply to a query with EDNS and this payload size (as ``front``)."""
    return max(512, min(payload, EDNS_PAYLOAD))


def _records(section: Section) -> int:
    count = 0
    for item in section:
        count += len(item[3][1])
    return count


def _holds(section: Section, key: str, rdtype: int) -> bool:
    """Whether ``section`` has ``key``'s RRset of ``rdtype`` (a loop: no generator)."""
    for have in section:
        if have[2] == rdtype and have[0] == key:
            return True
    return False


def _add_sigs(
    section: Section, key: str, owner: Owner, rdtype: int, *, grouped: bool = False
) -> bool:
    """The RRSIGs of ``owner``'s ``rdtype`` after its RRset in ``section`` (``grouped``:
    with the owner's other RRsets, as ``Proofs._add``); False when they could not be
    prepared (the general path then answers)."""
    found = signatures(owner, rdtype)
    if found is False:
        return False
    if found is not None:
        item = (key, owner.labels, TYPE_RRSIG, found)
        if grouped:
            _add(section, item)
        else:
            section.append(item)
    return True


def _common(a: Labels, b: Labels) -> int:
    """Labels two names share at the end, the root included (``denial.common_labels``)."""
    count = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x.lower() != y.lower():
            break
        count += 1
    return count


def _add(section: Section, item: tuple[str, Labels, int, Rrset]) -> None:
    """Proofs._add: keep RRsets grouped by owner."""
    last = -1
    for position, have in enumerate(section):
        if have[0] == item[0]:
            last = position
    if last < 0:
        section.append(item)
    else:
        section.insert(last + 1, item)


def _render(
    wire: bytes,
    qlabels: list[bytes],
    flags: int,
    opt_ttl: int | None,
    rcode: int,
    answer: Section,
    authority: Section,
    additional: Section,
    *,
    aa: bool = True,
    required: bool = False,
) -> bytes:
    """The reply's bytes (a shared :class:`_Block`'s kept in it by where they start);
    ``required``: the first additional RRset is written before the others' passes (glue
    that answers the question)."""
    qname: Labels = (*qlabels, b"")
    question_end = 12 + sum(len(label) + 1 for label in qname) + 4
    out = bytearray(wire[:question_end])
    table: dict[Labels, int] = {}
    offset = 12
    for position in range(min(len(qname) - 1, 2)):
        table[qname[position:]] = offset
        offset += 1 + len(qname[position])
    for _key, labels, rdtype, rrset in answer:
        write_rrset(out, table, labels, rdtype, rrset)
    if type(authority) is _Block:
        # a shared block: its bytes depend only on which of the names it looks up are
        # already written (each is written in full, or as a pointer), on where those are
        # and on where it starts; kept once for each such pattern as a template whose
        # pointers are set for each reply (see _relocatable)
        get = table.get
        offsets = [get(name) for name in authority.names]
        start = len(out)
        placed = authority.placed(offsets, start)
        if placed is None:
            _write_sections(out, table, authority, additional)
            authority.remember(out, start, offsets)
        else:
            out += placed
        arcount = authority.counts[1]
    else:
        arcount = _write_sections(out, table, authority, additional, required)
    if opt_ttl is not None:
        out += b"\x00" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, opt_ttl & 0x8000, 0)
        arcount += 1
    struct.pack_into(
        "!HHHHH",
        out,
        2,
        (_QR_AA if aa else 0x8000) | (flags & _FLAG_BITS) | rcode,
        1,
        _records(answer),
        _records(authority),
        arcount,
    )
    return bytes(out)


def _write_sections(
    out: bytearray,
    table: dict[Labels, int],
    authority: Section,
    additional: Section,
    required: bool = False,
) -> int:
    """Write the authority section, then the additional one in render.py's passes (A,
    then AAAA, then RRSIG: nothing else comes here), its first RRset before them if
    ``required``; the additional records written."""
    for _key, labels, rdtype, rrset in authority:
        write_rrset(out, table, labels, rdtype, rrset)
    count = 0
    if required:
        _key, labels, rdtype, rrset = additional[0]
        write_rrset(out, table, labels, rdtype, rrset)
        count += len(rrset[1])
        additional = additional[1:]
    for wanted in (TYPE_A, TYPE_AAAA, TYPE_RRSIG):
        for _key, labels, rdtype, rrset in additional:
            if rdtype == wanted:
                write_rrset(out, table, labels, rdtype, rrset)
                count += len(rrset[1])
    return count
