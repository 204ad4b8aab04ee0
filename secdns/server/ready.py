"""Ready answers: the reply to a question, built before it is asked, behind one dict lookup.

The prepared owner forms (:mod:`secdns.server.prepared`) make a first ask cheap,
but it still reads the question, walks the name and assembles the sections: 10-40
us of interpreted work against the ~5 us of an answer-cache hit.  A ready answer
is the part of a reply after the question, kept under the question's own bytes
(the name in the zone's case, QTYPE, QCLASS IN), with compression pointers
relative to the question (which always starts at offset 12).  A query then costs
what a cache hit costs: header checks on bytes, one dict lookup, and ``ID + flags +
the client's question + tail``, an OPT appended for an EDNS query.

One tail serves every query of the shape it was made for: RD set (no authority
section, as :meth:`~secdns.server.prepared.PreparedAnswers.answer` answers it) or
RD clear with the zone's authority block (below), no OPT or a bare EDNS 0 OPT
(payload above 512, or any payload when the answer has no additional section; DO
only on an unsigned zone), the name in the zone's case.  A signed zone's positive
answers also get the reply a validating resolver asks for (RD clear, DO, a payload
above 512: :data:`Signed`, signatures and all, up to :data:`SIGNED_LIMIT` of them).
Any other shape, or a question asked in another case, misses and takes the
prepared path as before.

Made two ways, both giving the prepared path's bytes (tests/test_ready.py holds
them to it and to the general path):

* :func:`~secdns.server.readyfill.fill` builds every owner's positive answers of a zone version (the
  simple types straight from the owner forms or, for an owner of addresses only,
  from its lines; MX/SRV with the prepared path's additional-section logic; the
  apex and DNAME owners through the prepared path itself), run by
  :class:`~secdns.server.readyfill.ReadyFiller` in the background right after a
  version is served from a file or a full transfer;
* :meth:`ReadyAnswers.learn` keeps a prepared answer of that shape when one is
  made (a name asked before the filler reached it, or again after a change).

An entry is valid while its zone's generation is the one it was made in (as the
answer cache's).  A version made by an IXFR (which shares the buckets it did not
touch with its predecessor) is not filled again: its answers are learnt on
their first ask, so nothing after a NOTIFY costs in proportion to the zone.

Why in the background after the zone is served, and not before its first answer
(measured on genzone's 1M-record zone, bench/first_ask_bench.py): filling makes
~674,000 answers for ~10-15 s CPU and ~210 MiB, more than the whole load of the
file (~9 s CPU), so doing it first would more than double the time to the first
answer, while a first pass over 300,000 distinct questions asked after the fill
costs ~7-10 us CPU a query instead of ~50.  Queries come first meanwhile: a zone of
:data:`FORK_MIN_NAMES` or more is filled in a forked child at nice 10
(:mod:`secdns.server.readyfork`: off the answering core, the parent only keeps what
it sends), and under load the filler keeps to a bounded share of the time
(:data:`~secdns.server.readyfill.BUSY_SHARE`), so it finishes under steady traffic too.

RD clear (a resolver's query) gets the apex NS and its glue after the answer
(BIND's ``minimal-responses no-auth-recursive``): for answers without an additional
section that block is shared by every question of the same lengths
(:class:`ReadyAnswers`), so one tail per question serves both: A/AAAA/TXT always, and
in the filler also answers with names in their rdata (CNAME, MX without additional
addresses, through a CNAME) when none of those names is one the block writes or looks
up; every other positive answer (an additional section, a question or a name in the
rdata naming what the block writes) keeps its own RD-clear reply (:data:`Form`), made
by the filler from the same sections or learnt from the first RD-clear ask (learning
keeps a form for any answer with names in its rdata: it does not read them).

Referrals are kept per delegation point and per name below one that the zone holds
(its glue, in zones of up to :data:`~secdns.server.readyfill.GLUE_NAMES_MAX` such names)
(:data:`Cut`): one reply serves every question of that name but DS and the glue's own
types, which have one each, RD set or clear alike.

Not covered (they take the prepared path and the answer cache as before): NXDOMAIN
and NODATA (names that do not exist cannot be listed, and a table of every owner's
missing types would cost ~100 B a name; the prepared path answers both in ~6-10 us
from the owner forms), names below a delegation point that the zone does not hold
(or of a zone with more glue names than that), other letter cases, wildcards, CNAME
chains longer than one step or leaving the zone, DO on a signed zone but as above
(NXDOMAIN and NODATA with their proofs, referrals, RD set), and answers over
501 bytes without the authority block (an RD-set reply has to fit 512 bytes without
EDNS).

About 660 lines, kept whole: the table and every lookup the UDP thread runs on it
(plain, EDNS, RD clear with its shared blocks, referrals, signed DO), and what learns
into it, share the entries' layout, the counts' bytes and the limits; the makers are
apart already (:mod:`~secdns.server.readymake`, :mod:`~secdns.server.readyfill`).
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from secdns.server.denial import index_of
from secdns.server.ownerwire import RR, Labels, prepare_owner
from secdns.server.prepared import _QTYPES as _PREPARED_QTYPES
from secdns.server.render import EDNS_PAYLOAD

if TYPE_CHECKING:
    from secdns.server.zone import ServedZone

log = logging.getLogger(__name__)

READY_LIMIT = 2_000_000
"""Ready answers kept at most, over all zones (~300 B each: a 1M-record zone makes
~670,000); the table is cleared when full.  Only questions in a zone's own case are
kept, so a client cannot grow it past the zones' owners and types by varying case."""

_SIMPLE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_TARGET_TYPES = frozenset({2, 15, 33})  # NS, MX, SRV: additional-section processing
_OPT_PLAIN = b"\x00" + RR.pack(41, EDNS_PAYLOAD, 0, 0)
_OPT_DO = b"\x00" + RR.pack(41, EDNS_PAYLOAD, 0x8000, 0)
_COUNTS = struct.Struct("!HHHH")
_QUESTION_TAIL = {1: b"\x00\x01\x00\x01", 28: b"\x00\x1c\x00\x01"}  # A, AAAA; class IN
_QUERY_HEAD = b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # RD, one question
_CLEAR_HEAD = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # RD clear, one question

Form = tuple[bytes, bytes]
"""A question's own RD-clear reply: (ANCOUNT..ARCOUNT without an OPT, the bytes after the
question without an OPT), for answers whose authority block cannot be shared (names in
their rdata, an additional section, a question naming what the block writes)."""

Entry = tuple["ServedZone", int, bytes, bytes, "int | Form"]
"""(zone, its generation, the header after the ID for a query with RD only (flags,
QDCOUNT..ARCOUNT without an OPT), the tail after the question, and for RD clear: the key
of its shared authority block, see :meth:`ReadyAnswers.clear_key`, or its own
:data:`Form`, or 0 (none: the prepared path), or -1 until it is computed)."""

Signed = tuple["ServedZone", int, bytes, bytes]
"""A signed zone's answer to an RD-clear DO query, as a validating resolver asks: (zone,
its generation, ANCOUNT..ARCOUNT without the OPT, the bytes after the question without
the OPT: the answer with its RRSIGs, the apex NS with theirs, the glue).  Made by the
filler from the prepared path's reply (:meth:`ReadyAnswers.signed_form`)."""

Block = tuple[int, bytes, bytes, bytes]
"""An RD-clear reply's authority and additional sections (the apex NS and its glue):
(the zone generation it was made in, NSCOUNT and ARCOUNT without an OPT, the bytes,
NSCOUNT and ARCOUNT with an OPT)."""

Cut = tuple["ServedZone", int, bytes, bytes, frozenset[int]]
"""A referral made ready at a delegation point or a name below it (glue), for every
question of its name but those that differ: (zone, its generation, QDCOUNT..ARCOUNT
without an OPT, the bytes after the question without an OPT, the QTYPEs it does not
serve: DS (the parent's own answer) and A/AAAA when the name owns glue of that type
(BIND's ``query_glueanswer`` moves it first)).  Each such A/AAAA question has a cut of
its own, kept under the whole question (name, QTYPE, QCLASS: no name's wire ends so),
serving that question alone.
The sections do not depend on RD (no apex NS for a referral), on the QTYPE (which is not
written again), nor on an EDNS payload of 512 or less (glue is added regardless)."""

REFERRAL_QTYPES = _PREPARED_QTYPES - {43}
"""The QTYPEs a ready referral serves: those the prepared path answers (the tests compare
its referrals with the general path's for each), DS left out."""

PLAIN_RD = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
"""Flags and counts of the commonest query: RD alone, one question, nothing else (the
reply is then ID + the entry's head + the question + its tail)."""

SIGNED_LIMIT = 200_000
"""DO answers of signed zones kept at most (:attr:`ReadyAnswers.signed`; ~600 B each with
their signatures: ~120 MiB full), over all zones; the filler stops making them when full."""

BLOCK_LIMIT = 100_000
"""RD-clear blocks kept at most (one per zone, apex position and start offset: a 1M-record
zone needs a few hundred); the table is cleared when full."""

_CLEAR_TYPES = frozenset({b"\x00\x01", b"\x00\x1c", b"\x00\x10"})  # A, AAAA, TXT: no names
_BARE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00"  # QDCOUNT 1, AN/NS 0, AR high byte 0


class ReadyAnswers:
    """Question bytes -> :data:`Entry`, and the RD-clear blocks (:data:`Block`).

    RD clear (a resolver's query) adds the apex NS to the authority section and its
    glue to the additional one (:meth:`~secdns.server.prepared.PreparedAnswers.answer`).
    When the RD-set answer has neither and names nothing in its rdata (A, AAAA, TXT),
    or only names the block neither writes nor looks up (``clear_key``'s ``names``),
    the compression table at the end of its answer section holds, of what the block
    reads, only the question's name and its parent, so the block after it depends on
    the zone version, on where the block starts (the question's and the answer's
    lengths) and, when the question's parent is the apex, on where the apex sits in the
    question -- unless the question's name or its parent is a name the block writes
    (the apex, an NS target or a target's parent: :meth:`clear_key` then says 0 and such
    questions take the prepared path).  A block is kept under (zone, that key, its
    start), taken from the first RD-clear answer the prepared path makes for it
    (:meth:`learn_block`) or, in the filler, from an answer's own RD-clear reply; the
    filler makes one for each new key as it fills."""

    def __init__(self, limit: int = READY_LIMIT) -> None:
        self.limit = limit
        self.entries: dict[bytes, Entry] = {}
        self.blocks: dict[tuple[ServedZone, int, int], Block] = {}
        self._heads: dict[bytes, bytes] = {}  # counts -> one shared head per pattern
        self._special: dict[ServedZone, tuple[int, tuple[frozenset[bytes], bytes] | None]] = {}
        """Each zone's names an RD-clear block writes (:func:`_special_names`), with the
        generation they were found in."""
        self.filling: dict[ServedZone, int] = {}
        """Zones whose current generation the filler builds (``ReadyFiller.schedule``):
        their first asks are not learnt (the fill makes the same entries; the answer
        cache keeps the reply meanwhile), which saves learning's cost on every first ask
        while a zone is filled; a version made by IXFR (not filled) is learnt."""
        self.cuts: dict[bytes, Cut] = {}
        """A delegation point's name (its wire form in the zone's case) -> its referral."""
        self.cuts_by_zone: dict[ServedZone, set[bytes]] = {}
        self.unsigned: dict[ServedZone, int] = {}
        """Zones known unsigned, with the generation (DO answered from the ready tails)."""
        self.by_zone: dict[ServedZone, set[bytes]] = {}
        """Each zone's questions, so that dropping a zone's stale answers costs its own
        entries, not the whole table's (10,000 zones filled at a start)."""
        self.signed: dict[bytes, Signed] = {}
        """A signed zone's positive answers to RD-clear DO queries (a validating
        resolver's), made by the filler, under the question's bytes as :attr:`entries`:
        each question here has an entry there (:meth:`signed_reply`)."""
        self.signed_limit = SIGNED_LIMIT

    def reply(self, data: bytes) -> bytes | None:
        """The ready reply to ``data``, or None.  :meth:`secdns.server.udp.UdpWorker.run`
        does the commonest case inline (tests hold the two together)."""
        if data[2] & 0xF8 or data[4:11] != _BARE_QUESTION:
            return None  # not a QUERY with one bare question (and maybe an OPT)
        if data[11]:
            return self.reply_edns(data)
        found = self.entries.get(data[12:])
        if found is None:
            return self.referral(data, data[12:], 0) if self.cuts else None
        if found[0].generation != found[1]:
            return None
        cd = data[3] & 0x10
        if data[2] & 1:
            head = found[2] if not cd else b"\x85\x10" + found[2][2:]
            return data[:2] + head + data[12:] + found[3]
        form = self._clear(data[12:], found, len(data) + len(found[3]))
        if form is None:
            return None
        reply = (
            data[:2]
            + (b"\x84\x10" if cd else b"\x84\x00")
            + b"\x00\x01"
            + form[0]
            + data[12:]
            + form[1]
        )
        return reply if len(reply) <= 512 else None

    def _clear(self, question: bytes, found: Entry, start: int) -> Form | None:
        """The RD-clear :data:`Form` of ``found`` (its own, or its RD-set tail and the
        shared block that starts at ``start``), or None."""
        key = found[4]
        if isinstance(key, tuple):
            return key
        if key < 0:
            key = self._settled(question, found)[4]
            if isinstance(key, tuple):
                return key
        if not key:
            return None
        block = self.blocks.get((found[0], key, start))
        if block is None or block[0] != found[1]:
            return None
        return found[2][4:6] + block[1], found[3] + block[2]

    def reply_edns(self, data: bytes) -> bytes | None:
        """:meth:`reply` for a query whose one additional record may be a bare OPT."""
        if (
            data[11] != 1
            or data[-11:-8] != b"\x00\x00\x29"
            or data[-2:] != b"\x00\x00"
            or data[-5]  # EDNS version: BADVERS on the general path
        ):
            return None
        question = data[12:-11]
        found = self.entries.get(question)
        if found is None:
            return self.referral(data, question, 1) if self.cuts else None
        zone = found[0]
        if zone.generation != found[1]:
            return None
        head = found[2]
        payload = data[-8] << 8 | data[-7]
        small = payload <= 512  # no authority or additional section (the prepared path's rule)
        if small and head[9]:
            return None
        if data[-4] & 0x80:
            if self.unsigned.get(zone) != found[1] and not self._unsigned(zone, found[1]):
                return self.signed_reply(data, question, payload)  # its signatures too
            opt = _OPT_DO
        else:
            opt = _OPT_PLAIN
        cd = data[3] & 0x10
        if data[2] & 1 or small:
            flags = (b"\x85" if data[2] & 1 else b"\x84") + (b"\x10" if cd else b"\x00")
            return data[:2] + flags + head[2:9] + bytes((head[9] + 1,)) + question + found[3] + opt
        key = found[4]
        if isinstance(key, tuple):  # its own form
            counts = key[0]
            reply = (
                data[:2]
                + (b"\x84\x10\x00\x01" if cd else b"\x84\x00\x00\x01")
                + counts[:5]
                + bytes((counts[5] + 1,))
                + question
                + key[1]
                + opt
            )
        else:  # the RD-set tail and the shared block after it
            tail = found[3]
            if key > 0:
                block = self.blocks.get((zone, key, 12 + len(question) + len(tail)))
            else:
                form = self._clear(question, found, 12 + len(question) + len(tail))
                return None if form is None else self.reply_edns(data)  # (settled now)
            if block is None or block[0] != found[1]:
                return None
            reply = (
                data[:2]
                + (b"\x84\x10\x00\x01" if cd else b"\x84\x00\x00\x01")
                + head[4:6]
                + block[3]
                + question
                + tail
                + block[2]
                + opt
            )
        return reply if len(reply) <= max(512, min(payload, EDNS_PAYLOAD)) else None

    def signed_reply(self, data: bytes, question: bytes, payload: int) -> bytes | None:
        """The ready reply to an RD-clear DO query (checked by :meth:`reply_edns`) for a
        question of a signed zone (:data:`Signed`), or None: RD set and payloads of 512 or
        less take the prepared path, as does a reply larger than the payload."""
        found = self.signed.get(question)
        if found is None or data[2] & 1 or payload <= 512 or found[0].generation != found[1]:
            return None
        counts = found[2]
        reply = (
            data[:2]
            + (b"\x84\x10\x00\x01" if data[3] & 0x10 else b"\x84\x00\x00\x01")
            + counts[:5]
            + bytes((counts[5] + 1,))
            + question
            + found[3]
            + _OPT_DO
        )
        return reply if len(reply) <= min(payload, EDNS_PAYLOAD) else None

    def signed_form(self, query: bytes, reply: bytes) -> tuple[bytes, bytes] | None:
        """(ANCOUNT..ARCOUNT without the OPT, the bytes after the question without the
        OPT) of the prepared path's ``reply`` to the filler's RD-clear DO ``query``, if it
        is a positive answer :meth:`signed_reply` can give again byte for byte; or None."""
        question = query[12:-11]
        end = 12 + len(question)
        if (
            reply[2] != 0x84  # QR and AA: no TC, RD clear as asked
            or reply[3]  # NOERROR, no AD, CD clear as asked
            or reply[4:6] != b"\x00\x01"
            or reply[6:8] == b"\x00\x00"  # a positive answer
            or reply[10]  # ARCOUNT 1 to 255 (the OPT among them): a byte in signed_reply
            or not reply[11]
            or reply[12:end] != question
            or reply[-11:] != _OPT_DO
            or len(reply) > EDNS_PAYLOAD
        ):
            return None
        return reply[6:11] + bytes((reply[11] - 1,)), reply[end:-11]

    def put_signed(
        self, question: bytes, zone: ServedZone, generation: int, counts: bytes, tail: bytes
    ) -> None:
        """Keep a signed zone's DO answer to ``question`` (see :data:`Signed`)."""
        if len(self.signed) >= self.signed_limit:
            self.signed.clear()
        self.signed[question] = (zone, generation, counts, tail)

    def signed_room(self) -> bool:
        """Whether the filler may make more DO answers (:data:`SIGNED_LIMIT`)."""
        return len(self.signed) < self.signed_limit

    def referral(self, data: bytes, question: bytes, arcount: int) -> bytes | None:
        """The ready referral for a question at a delegation (:data:`Cut`), RD set or clear
        (the same sections), or None; ``arcount``: 1 if the query has a bare OPT (checked
        by the caller), else 0."""
        cuts = self.cuts
        cut = cuts.get(question[:-4])
        qtype = question[-4] << 8 | question[-3]
        if cut is None or qtype in cut[4]:
            cut = cuts.get(question)  # a glue name's own address question
            if cut is None:
                return None
        if question[-2:] != b"\x00\x01":
            return None
        zone = cut[0]
        if zone.generation != cut[1] or qtype not in REFERRAL_QTYPES:
            return None
        flags = b"\x81" if data[2] & 1 else b"\x80"
        flags += b"\x10" if data[3] & 0x10 else b"\x00"
        if not arcount:
            reply = data[:2] + flags + cut[2] + question + cut[3]
            return reply if len(reply) <= 512 else None
        if data[-4] & 0x80:
            if self.unsigned.get(zone) != cut[1] and not self._unsigned(zone, cut[1]):
                return None  # DO on a signed zone: DS or its denial
            opt = _OPT_DO
        else:
            opt = _OPT_PLAIN
        counts = cut[2]
        reply = data[:2] + flags + counts[:7] + bytes((counts[7] + 1,)) + question + cut[3] + opt
        payload = data[-8] << 8 | data[-7]
        return reply if len(reply) <= max(512, min(payload, EDNS_PAYLOAD)) else None

    def put_cut(
        self,
        qname: bytes,
        zone: ServedZone,
        generation: int,
        counts: bytes,
        tail: bytes,
        excluded: frozenset[int],
    ) -> None:
        """Keep the referral at a delegation point (see :data:`Cut`)."""
        cuts = self.cuts
        if len(cuts) >= self.limit:
            cuts.clear()
            self.cuts_by_zone.clear()
        names = self.cuts_by_zone.get(zone)
        if names is None:
            names = self.cuts_by_zone[zone] = set()
        names.add(qname)
        cuts[qname] = (zone, generation, counts, tail, excluded)

    def _unsigned(self, zone: ServedZone, generation: int) -> bool:
        """Whether ``zone`` is unsigned in ``generation`` (kept in :attr:`unsigned`)."""
        version = zone.version
        if version is None or zone.generation != generation or index_of(version).secure:
            return False
        if len(self.unsigned) >= BLOCK_LIMIT:
            self.unsigned.clear()
        self.unsigned[zone] = generation
        return True

    def put_block(
        self, zone: ServedZone, key: int, start: int, generation: int, counts: bytes, block: bytes
    ) -> None:
        """Keep an RD-clear block (``counts``: NSCOUNT and ARCOUNT without an OPT)."""
        if len(self.blocks) >= BLOCK_LIMIT:
            self.blocks.clear()
        with_opt = counts[:3] + bytes((counts[3] + 1,))
        self.blocks[(zone, key, start)] = (generation, counts, block, with_opt)

    def learn(self, data: bytes, reply: bytes, zone: ServedZone) -> bool:
        """Keep the prepared path's ``reply`` to ``data`` if the query has the ready shape
        (RD, no OPT) and the reply is a positive answer that fits every shape, or its
        authority block if ``data`` is an RD-clear query (:meth:`learn_block`); whether it
        was kept.  Called on every first ask: the checks are bytes comparisons."""
        if data[2:12] != PLAIN_RD:
            return self.learn_block(data, reply, zone)
        return self.learn_plain(data, reply, zone)

    def learn_plain(self, data: bytes, reply: bytes, zone: ServedZone) -> bool:
        """:meth:`learn` for a query known to be :data:`PLAIN_RD` (the UDP worker checked)."""
        if self.filling.get(zone) == zone.generation:
            return False  # the filler makes it
        end = len(data)
        if (
            reply[3]  # not NOERROR (a plain RD query's reply has no other flag here)
            or reply[8:11] != b"\x00\x00\x00"
            or reply[6:8] == b"\x00\x00"
            or len(reply) > 501  # the EDNS forms add 11 bytes
            or reply[11] > 254
            or reply[end : end + 2] != b"\xc0\x0c"  # the name not in the zone's case
        ):
            return False
        # the block key (-1: not yet) is settled on the first RD-clear ask of the
        # question (_settled), not on every first ask
        self.put(data[12:], zone, zone.generation, reply[4:12], reply[end:], -1)
        return True

    def _settled(self, question: bytes, found: Entry) -> Entry:
        """``found`` with its block key computed (a learnt entry leaves it -1)."""
        if isinstance(found[4], tuple) or found[4] >= 0:
            return found
        settled = (*found[:4], self.clear_key(found[0], found[1], question, found[2][2:]))
        self.entries[question] = settled
        return settled

    def learn_block(
        self, data: bytes, reply: bytes, zone: ServedZone, *, filler: bool = False
    ) -> bool:
        """Keep the authority block of the prepared path's ``reply`` to an RD-clear query
        ``data`` (no OPT, or a bare OPT with a payload above 512) whose question has a
        ready entry with a block key (kept from this reply if there is none yet); whether
        it is kept now.  ``filler``: the filler's own call (it makes a block so), which
        the zone's fill under way does not turn away."""
        if data[2] & 0xF9 or data[4:11] != _BARE_QUESTION or reply[3] & 0x0F or reply[2] & 0x02:
            return False
        if not filler and self.filling.get(zone) == zone.generation:
            return False  # the filler makes it
        if data[11]:
            if (
                data[11] != 1
                or data[-11:-8] != b"\x00\x00\x29"
                or (data[-8] << 8 | data[-7]) <= 512
            ):
                return False
            question = data[12:-11]
            opt = 11
            if reply[-11:-8] != b"\x00\x00\x29" or not reply[11]:
                return False
            if data[-4] & 0x80 and zone.version is not None and index_of(zone.version).secure:
                return False  # DO on a signed zone: its RRSIGs, kept by the answer cache
        else:
            question = data[12:]
            opt = 0
        found = self.entries.get(question)
        if found is None or found[0] is not zone or found[1] != zone.generation:
            found = self._entry_of_clear(question, reply, zone)
            if found is None:
                return False
        found = self._settled(question, found)
        generation = found[1]
        if zone.generation != generation or reply[6:8] != found[2][4:6]:
            return False
        if isinstance(found[4], tuple):
            return True  # its own form, kept already
        arcount = (reply[10] << 8 | reply[11]) - (1 if opt else 0)
        if not found[4]:  # its own form (see Form)
            if arcount > 254 or not reply[2] & 0x04:
                return False
            form = (
                reply[6:10] + arcount.to_bytes(2, "big"),
                reply[12 + len(question) : len(reply) - opt],
            )
            self.entries[question] = (*found[:4], form)
            return True
        tail = found[3]
        start = 12 + len(question) + len(tail)
        if reply[12:start] != question + tail:
            return False  # not the ready answer's answer section
        key = (zone, found[4], start)
        if key in self.blocks and self.blocks[key][0] == generation:
            return True
        if arcount > 254:
            return False
        counts = reply[8:10] + arcount.to_bytes(2, "big")
        self.put_block(zone, found[4], start, generation, counts, reply[start : len(reply) - opt])
        return True

    def _entry_of_clear(self, question: bytes, reply: bytes, zone: ServedZone) -> Entry | None:
        """Keep the ready entry an RD-clear ``reply`` holds (its answer section is the RD-set
        reply's tail when every answer record is the question's A, AAAA or TXT, its owner
        a pointer to the question), so that a version only resolvers ask (one made by an
        IXFR is not filled) gets its answers back; the entry, or None."""
        qtype = question[-4:-2]
        count = reply[6] << 8 | reply[7]
        if not count or qtype not in _CLEAR_TYPES or reply[4:6] != b"\x00\x01":
            return None
        start = position = 12 + len(question)
        end = len(reply)
        for _record in range(count):
            if reply[position : position + 4] != b"\xc0\x0c" + qtype or position + 12 > end:
                return None
            position += 12 + (reply[position + 10] << 8 | reply[position + 11])
        if position > end or position - start + len(question) + 12 > 501:
            return None
        generation = zone.generation
        self.put(
            question,
            zone,
            generation,
            b"\x00\x01" + reply[6:8] + b"\x00\x00\x00\x00",
            reply[start:position],
        )
        return self.entries.get(question)

    def clear_key(
        self,
        zone: ServedZone,
        generation: int,
        question: bytes,
        counts: bytes,
        names: tuple[bytes, ...] | None = None,
    ) -> int:
        """The key of the RD-clear block that follows the answer to ``question`` (see the
        class docstring): 1 when the apex is not the question's parent, the apex's offset
        when it is, 0 when no block can serve it (an answer with an authority or
        additional section, or a question naming what the block writes).  ``names``: the
        lowercased wire forms of the names the answer's rdata and owners put into the
        compression table (each compressed name and its parent), when the filler knows
        them; without them only A, AAAA and TXT (no names) get a key.  With them, none
        may be a name the block writes nor the apex's parent (which the block looks up
        when it writes the apex in full): the table then holds nothing the block reads
        but the question's name and parent, as for an A answer."""
        if counts[4:8] != b"\x00\x00\x00\x00":
            return 0
        if names is None and question[-4:-2] not in _CLEAR_TYPES:
            return 0
        cached = self._special.get(zone)
        if cached is None or cached[0] != generation:
            cached = self._special[zone] = (generation, _special_names(zone, generation))
        special = cached[1]
        if special is None:
            return 0
        special_names, apex = special
        qname = question[:-4].lower()
        if qname in special_names:
            return 0
        if names is not None:
            if len(apex) < 2:
                return 0  # the root zone
            apex_parent = apex[apex[0] + 1 :]
            for name in names:
                if name in special_names or name == apex_parent:
                    return 0
        parent = qname[qname[0] + 1 :]
        if parent == apex:
            return 13 + qname[0]
        return 0 if parent in special_names else 1

    def put(
        self,
        question: bytes,
        zone: ServedZone,
        generation: int,
        counts: bytes,
        tail: bytes,
        clear: int | Form | None = None,
    ) -> int | Form:
        """Keep one ready answer (``counts``: QDCOUNT to ARCOUNT without the OPT); its
        RD-clear block key or :data:`Form` (``clear``: a key computed here if not given)."""
        entries = self.entries
        if len(entries) >= self.limit:
            entries.clear()
            self.by_zone.clear()
        questions = self.by_zone.get(zone)
        if questions is None:
            questions = self.by_zone[zone] = set()
        questions.add(question)
        shared = self._heads.get(counts)
        if shared is None:
            shared = self._heads[counts] = b"\x85\x00" + counts
        if clear is None:
            clear = self.clear_key(zone, generation, question, counts)
        elif isinstance(clear, tuple):  # its own form: its counts shared, as heads are
            clear = (self._heads.setdefault(clear[0], clear[0]), clear[1])
        entries[question] = (zone, generation, shared, tail, clear)
        return clear


def _special_names(zone: ServedZone, generation: int) -> tuple[frozenset[bytes], bytes] | None:
    """(the lowercased wire forms of the apex, its NS targets and their parents; the
    apex's) for :meth:`ReadyAnswers.clear_key`; None when the zone has no apex NS the
    prepared path writes (or ``generation`` is no longer the zone's)."""
    version = zone.version
    if version is None or zone.generation != generation:
        return None
    origin: Labels = tuple(version.origin.labels)
    owner = prepare_owner(version.lines(version.origin_key), origin)
    if owner is None or 2 in owner.unsupported:
        return None
    ns = owner.types.get(2)
    if ns is None:
        return None
    apex = _wire(origin)
    names = {apex}
    for piece in ns[1]:
        if type(piece) is bytes:
            return None
        target: Labels = piece[2]
        names.add(_wire(target))
        names.add(_wire(target[1:]))
    return frozenset(names), apex


def _wire(labels: Labels) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in labels).lower()
