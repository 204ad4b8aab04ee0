"""Filling the ready answers (:mod:`secdns.server.ready`): every owner's positive
answers of a zone version built before they are asked.

:func:`fill` walks a version and puts each owner's answers into a
:class:`~secdns.server.ready.ReadyAnswers` table (the simple types straight from the
owner forms or, for an owner of addresses only, from its lines; MX/SRV with the
prepared path's additional-section logic; answers through a CNAME to a name of the
zone; the apex and DNAME owners through the prepared path itself; each one's RD-clear
form when it needs its own, and the shared RD-clear block of its key otherwise, also
for answers naming names the block does not write: :func:`_named`; the referral at
each delegation point last).
:class:`ReadyFiller` runs it after a version is served from
a file or a full transfer: in its own thread for small zones, in a forked child
(:mod:`secdns.server.readyfork`) for large ones, keeping to a share of the CPU while
queries arrive.  Split from :mod:`secdns.server.ready` (the table and its lookups,
which the UDP thread runs).  Past the house size again (~680 lines) since it makes
RD-clear forms, answers through CNAMEs and referrals too: the next split moves the
answer makers (:class:`_OwnerAnswers`, :func:`_referral`) into a module of their own,
leaving the walk and the filler thread here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
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
from secdns.server.prepared import PreparedAnswers, Section, _add, _holds
from secdns.server.prepared import _render as render
from secdns.server.ready import (
    _CLEAR_HEAD,
    _CLEAR_TYPES,
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
    from secdns.server.zone import ServedZone, ZoneTable, ZoneVersion

log = logging.getLogger(__name__)


def _cuts(version: ZoneVersion, delegations: set[str], dnames: set[str]) -> Iterator[None]:
    """Collect the keys of the delegations (NS below the apex) and DNAME owners of
    ``version``, yielding every few thousand owners (the filler's turns)."""
    apex = version.origin_key
    count = 0
    for key, (lines, _below) in version.iter_entries():
        count += 1
        if count >= 4096:
            count = 0
            yield
        for line in lines:
            if " NS " not in line and " DNAME " not in line:
                continue  # canonical lines: "owner ttl class type rdata"
            rdtype = line.split(" ", 4)[3]
            if rdtype == "NS" and key != apex:
                delegations.add(key)
            elif rdtype == "DNAME":
                dnames.add(key)


def fill(
    ready: ReadyAnswers, prepared: PreparedAnswers, table: ZoneTable, zone: ServedZone
) -> Iterator[int]:
    """Make every positive answer of ``zone``'s current version ready (see the module
    docstring), with its RD-clear form where the shared authority block cannot serve
    it, then the referral at each delegation point; yields the number made after each
    batch of owners and stops early when the zone changes or the table is full.  Names
    below a delegation or a DNAME, and names of a child zone served here, are left out
    (referrals below the point, synthesis)."""
    version = zone.version
    if version is None or zone.expired:
        return
    generation = zone.generation
    apex = version.origin_key
    delegations: set[str] = set()
    dnames: set[str] = set()
    for _turn in _cuts(version, delegations, dnames):
        yield 0  # a turn for the filler's checks (queries first, the zone changed)
        if zone.generation != generation:
            return
    if apex in dnames:
        return  # every name below is a DNAME's
    children = table.served_below(apex)
    entries = ready.entries
    _forget_stale(ready, zone)
    put = ready.put
    tried: set[tuple[int, int]] = set()
    blocks = ready.blocks
    answers_of = _OwnerAnswers(prepared, zone, version)
    answers_of.cuts = delegations | dnames
    answers_of.children = children
    owner_answers = answers_of.answers
    clear_form = answers_of.clear
    clear_key = ready.clear_key
    made = 0
    batch = 0
    for key, (lines, _below) in version.iter_entries():
        if not lines or key in delegations:
            continue
        batch += 1
        if batch >= 256:
            batch = 0
            yield made
            if zone.generation != generation or len(entries) >= ready.limit:
                return
        walk = key
        occluded = False
        while walk != apex:
            walk = walk[walk.find(".") + 1 :]
            if walk in delegations or walk in dnames:
                occluded = True
                break
        if occluded:
            continue
        if children and any(key == c or key.endswith("." + c) for c in children):
            continue
        for question, counts, tail, item in owner_answers(key, lines):
            block_key = 0
            if item is None or (len(item[0]) == 1 and question[-4:-2] in _CLEAR_TYPES):
                block_key = clear_key(zone, generation, question, counts)  # no names in rdata
            elif counts[4:8] == b"\x00\x00\x00\x00":  # names: a block if none is special
                names = _named(item[0])
                if names is not None:
                    block_key = clear_key(zone, generation, question, counts, names)
            if block_key:  # the block: made by the first plain answer that has its key
                start = 12 + len(question) + len(tail)
                block = blocks.get((zone, block_key, start))
                if block is not None and block[0] == generation:
                    put(question, zone, generation, counts, tail, block_key)
                    made += 1
                    continue
                if item is None and (block_key, start) not in tried:
                    tried.add((block_key, start))
                    put(question, zone, generation, counts, tail, block_key)
                    query = _CLEAR_HEAD_EDNS + question + _OPT_QUERY  # (fits 1232)
                    got = prepared.answer(query)
                    if got is not None and got[1] is zone:
                        ready.learn_block(query, got[0], zone)
                    made += 1
                    continue
            form = clear_form(question, item)  # its own RD-clear reply, or None
            if block_key and form is not None and form[1].startswith(tail):
                put_block = ready.put_block  # the block from this form, for the next ones too
                put_block(zone, block_key, start, generation, form[0][2:6], form[1][len(tail) :])
                put(question, zone, generation, counts, tail, block_key)
            else:
                put(question, zone, generation, counts, tail, form or 0)
            made += 1
    for key in delegations:
        batch += 1
        if batch >= 256:
            batch = 0
            yield made
            if zone.generation != generation or len(ready.cuts) >= ready.limit:
                return
        if _occluded(key, apex, delegations, dnames, children):
            continue
        if _referral(ready, prepared, zone, generation, version, key):
            made += 1
    yield made


def _occluded(
    key: str, apex: str, delegations: set[str], dnames: set[str], children: list[str]
) -> bool:
    """Whether a delegation point is below another delegation or a DNAME, or in a child
    zone served here (its referral is then not this zone's to give)."""
    walk = key
    while walk != apex:
        walk = walk[walk.find(".") + 1 :] or "."
        if walk in delegations or walk in dnames:
            return True
    return bool(children) and any(key == c or key.endswith("." + c) for c in children)


def _referral(
    ready: ReadyAnswers,
    prepared: PreparedAnswers,
    zone: ServedZone,
    generation: int,
    version: ZoneVersion,
    key: str,
) -> bool:
    """Make the referral at delegation point ``key`` ready (:data:`~secdns.server.ready.Cut`)
    from the prepared path's answer to an NS question with a 1232-byte EDNS payload (less
    its OPT); whether it was made."""
    lines = version.lines(key)
    owner = prepared.owner(version, key, lines) if lines else None
    if owner is None:
        return False
    qname = _qname(owner.labels)
    if qname is None:
        return False
    question = qname + b"\x00\x02\x00\x01"
    wire = _CLEAR_HEAD_EDNS + question + _OPT_QUERY
    labels = list(owner.labels[:-1])
    query = PlainQuery(0, 0, labels, 12 + len(qname), 2, 1, 0, EDNS_PAYLOAD)
    got = prepared._referral(wire, query, key, zone, version, EDNS_PAYLOAD)  # noqa: SLF001
    if got is None:
        return False
    reply = got[0]
    if (
        reply[2] & 0x06  # AA (not a referral) or TC
        or reply[3] & 0x0F
        or reply[6:8] != b"\x00\x00"
        or reply[-11:-8] != b"\x00\x00\x29"
        or reply[10]
        or not 0 < reply[11] <= 255
    ):
        return False
    excluded = {43}  # DS: the parent's own answer
    for rdtype in (TYPE_A, TYPE_AAAA):  # addresses at the delegation point: glue answers
        if rdtype in owner.types or rdtype in owner.unsupported:
            excluded.add(rdtype)
    counts = reply[4:11] + bytes((reply[11] - 1,))
    shared = _EXCLUDED.setdefault(frozenset(excluded), frozenset(excluded))  # a few sets
    ready.put_cut(qname, zone, generation, counts, reply[12 + len(question) : -11], shared)
    return True


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


BUSY_QUERIES = 50
"""Queries answered during one batch of the filler (~5 ms) above which the server counts
as busy (~2,500 queries a second or more)."""
BUSY_SHARE = 0.25
"""While busy, the filler sleeps after each batch for three times the CPU the batch took,
so it takes about a quarter of the time the queries leave it and still finishes under
sustained load (a server restarted into steady traffic gets its ready answers in a few
times the idle fill time, instead of never); idle, it fills at full speed."""
BUSY_PAUSE_MAX = 0.1

FILL_OWNERS = 4096
"""Prepared owners the filler keeps (its :class:`PreparedAnswers`' limit): the owners it
prepares through it (CNAME and MX targets, delegation points and their glue) are each
used about once, while the ones used again (the apex, a department's parent) are few;
at the prepared path's own 65,536 they held ~30 MiB of a 100k-record zone's fill (of
~56 MiB it grew by in-process; in the forked child, unshared pages) for no CPU saved."""

FORK_MIN_NAMES = 20_000
"""Zones with at least this many names are filled in a forked child
(:mod:`secdns.server.readyfork`); smaller ones in the filler thread."""

FILL_MIN_NAMES = 1000
"""Zones with fewer names are not filled: a fill costs ~2 ms per zone before its first
answer (the zone's cuts and denial index), which at 10,000 small zones loading at once
added ~75% to a cold start's CPU and ~15 KiB a zone (bench/manyzones_bench.py), while
a small zone's few names are learnt on their first ask anyway."""


def _forget_stale(ready: ReadyAnswers, zone: ServedZone) -> None:
    """Drop ``zone``'s answers of earlier generations (names a new full version may no
    longer have), so the table holds about one version of each zone; a removed zone's
    (its generation has moved on) all go."""
    generation = zone.generation
    questions = ready.by_zone.get(zone, set())
    entries = ready.entries
    for question in list(questions):  # one C call: a UDP thread may learn meanwhile
        entry = entries.get(question)
        if entry is not None and entry[0] is zone and entry[1] == generation:
            continue
        if entry is not None and entry[0] is zone:
            entries.pop(question, None)
        questions.discard(question)  # stale, gone, or another zone's now
    if not questions:
        ready.by_zone.pop(zone, None)
    names = ready.cuts_by_zone.get(zone)
    if names:
        cuts = ready.cuts
        for qname in list(names):
            cut = cuts.get(qname)
            if cut is not None and cut[0] is zone and cut[1] == generation:
                continue
            if cut is not None and cut[0] is zone:
                cuts.pop(qname, None)
            names.discard(qname)
        if not names:
            ready.cuts_by_zone.pop(zone, None)


class ReadyFiller:
    """Runs :func:`fill` in a thread of its own for each zone version made from a file or
    a full transfer (:meth:`schedule`); an IXFR's version (sharing buckets with the one
    filled) is left to :meth:`ReadyAnswers.learn`.  Queries come first: while they
    arrive (:attr:`answered` grows) the filler keeps to :data:`BUSY_SHARE` of the time."""

    def __init__(self, ready: ReadyAnswers, table: ZoneTable) -> None:
        self.ready = ready
        self.prepared = PreparedAnswers(table, FILL_OWNERS)  # its own: the UDP threads' apart
        self.table = table
        self.pending: dict[str, ServedZone] = {}
        self.forgotten: list[ServedZone] = []  # removed zones whose answers to drop
        self.filled: dict[str, ZoneVersion] = {}
        self.wake = threading.Event()
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.seconds = 0.0  # CPU seconds spent filling (thread time), for the bench and metrics
        self.paused = 0.0  # seconds slept to leave busy queries their share (BUSY_SHARE)
        self.answered: Callable[[], int] = lambda: 0  # queries answered so far (server sets)
        self.min_names = FILL_MIN_NAMES
        self.fork_min_names = FORK_MIN_NAMES
        self.child: int | None = None  # the pid of a forked fill under way
        self.mode = "fork"  # [server] ready_answers: "fork", "thread" or "off"

    def schedule(self, zone: ServedZone) -> None:
        """Fill ``zone``'s current version unless it is an incremental change of the last
        one filled."""
        version = zone.version
        if version is None or version.names < self.min_names or self.mode == "off":
            return
        last = self.filled.get(zone.key)
        if last is not None and _incremental(last, version):
            return
        self.filled[zone.key] = version
        self.ready.filling[zone] = zone.generation  # its first asks: not learnt meanwhile
        self.pending[zone.key] = zone
        self._start()
        self.wake.set()

    def forget(self, zone: ServedZone) -> None:
        """Drop a removed zone's answers (in the filler's thread: it walks the table), so
        they do not keep its versions alive; its generation must have moved on."""
        self.pending.pop(zone.key, None)
        self.filled.pop(zone.key, None)
        self.ready.filling.pop(zone, None)
        self.forgotten.append(zone)
        self._start()
        self.wake.set()

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.run, name="ready-filler", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        child = self.child
        if child is not None:  # a forked fill: gone with the server, not after it
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def _forked(self, pid: int | None) -> None:
        self.child = pid

    def run(self) -> None:
        while not self.stopping:
            self.wake.wait()
            self.wake.clear()
            while self.forgotten:
                _forget_stale(self.ready, self.forgotten.pop())
            while self.pending and not self.stopping:
                _key, zone = self.pending.popitem()
                self._fill(zone)

    def _fill(self, zone: ServedZone) -> None:
        """Fill one zone, a batch at a time; while queries arrive, sleep after each batch
        so the filler keeps to :data:`BUSY_SHARE` of the time."""
        start = time.thread_time()
        made = 0
        answered = self.answered()
        batch = start
        version = zone.version
        steps: Iterator[int]
        if (
            version is not None
            and self.mode == "fork"
            and version.names >= self.fork_min_names
            and hasattr(os, "fork")
        ):
            from secdns.server.readyfork import fill_forked  # (it imports this module)

            steps = fill_forked(self.ready, self.table, zone, self._forked)  # off this core
        else:
            steps = fill(self.ready, self.prepared, self.table, zone)
        try:
            for made in steps:  # noqa: B007
                if self.stopping:
                    break
                now = time.thread_time()
                if self.answered() - answered > BUSY_QUERIES:  # busy: a bounded share
                    pause = min((now - batch) * (1 - BUSY_SHARE) / BUSY_SHARE, BUSY_PAUSE_MAX)
                    self.paused += pause
                    time.sleep(pause)
                answered = self.answered()
                batch = time.thread_time()
        except Exception:  # never let one zone stop the filler
            self.ready.filling.pop(zone, None)  # learnt on first ask instead
            log.exception("ready: filling zone=%s failed", zone.key)
        finally:
            steps.close()  # type: ignore[attr-defined]  # generators: a forked child stops
        spent = time.thread_time() - start
        self.seconds += spent
        log.info("ready: zone=%s %d answers made in %.2f s CPU", zone.key, made, spent)


def _incremental(last: ZoneVersion, version: ZoneVersion) -> bool:
    """Whether ``version`` was made from ``last`` by applying changes (IXFR, UPDATE): it
    then shares the buckets the change did not touch."""
    if version is last:
        return True
    if len(version.buckets) != len(last.buckets):
        return False
    old, new = last.buckets, version.buckets
    step = max(1, len(new) // 16)
    return any(new[index] is old[index] for index in range(0, len(new), step))
