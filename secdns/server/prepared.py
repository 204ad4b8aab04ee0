"""Answers built straight from prepared owner wire forms: the first ask of a name is cheap.

The general path (:mod:`~secdns.server.lookup` then :mod:`~secdns.server.render`)
parses an owner's lines into dnspython objects and walks them; ~60 us a query.
Here each owner's records are prepared on first use, from the stored text lines
(:mod:`~secdns.server.ownerwire`, never dnspython's text parser), into wire
pieces.  A query of the common shape (:func:`~secdns.server.front.scan_plain`)
is then a few dict lookups on lowercased keys and a copy of those pieces,
compressed the way :class:`~secdns.server.render.Wire` (BIND) compresses them.
Three shortcuts keep the commonest answers to a handful of steps:

* an RRset without names in its rdata, asked in the zone's case with no
  authority or additional section (RD set), is bytes kept on the owner
  (:attr:`Owner.fixed`) behind the client's header and question;
* ancestors found free of delegations and DNAMEs are remembered per zone
  version, so a name's walk stops at its parent;
* the SOA of NXDOMAIN/NODATA answers is kept per version and offset, and
  rendered afresh only when the question's name could be a compression target
  of it.

The answers themselves are also built before they are asked, in the background
after a zone version is loaded (:mod:`secdns.server.ready`, which uses this
path for the sections it does not write itself); this path answers what is not
ready yet, and every shape and case the ready answers do not cover.  Measured on a
1M-record zone: building every answer costs ~15 s CPU and ~210 MiB after the
load, so it is not done before the first answer (start-up would more than double).

What is answered here, exactly as the general path would (the property test in
tests/test_prepared.py compares every owner and type of the test zones, with and
without EDNS and DO, in several letter cases):

* positive answers for one RRset, with the apex NS in the authority section and
  addresses of NS/MX/SRV targets in the additional section, as ``Answerer`` adds
  them;
* NODATA (the negative SOA) and NXDOMAIN without a wildcard that could match;
* referrals: a name at or below a delegation, AA clear, the cut's NS and its glue
  in reverse NS order (``Answerer._referral``), unless glue answers the question;
* on a signed zone with DO, each RRset followed by its RRSIGs (``Answerer._add_signed``;
  the signer written in full and remembered as a compression target, as
  ``render.Wire`` writes an RRSIG; the signatures read from their lines when a DO
  answer first needs them), and the denial proofs of NXDOMAIN and NODATA as
  ``Proofs`` makes them: NSEC (the covering NSEC and the wildcard's), NSEC3 (the
  name's own, or the closest encloser proof: :mod:`~secdns.server.nsec3keys`).

The authority and additional sections that every positive answer of a type without
additional processing shares (the apex NS, its targets' addresses, their RRSIGs) are
built once a version (:meth:`PreparedAnswers._apex_block`) and kept as a template per
pattern of the names they compress against (:func:`~secdns.server.prepwire._render`).

Everything else returns None and takes the general path: wildcards, CNAME
chains, DNAME, DS/ANY/RRSIG/DNSSEC types, DO on a signed zone for a referral (DS
or its denial) or an opt-out name without an NSEC3, a reply larger than the client
allows (truncation), names with unusual bytes, and rdata types without a fast builder.

The sections are written by :mod:`~secdns.server.prepwire` (the renderers, and the
blocks kept per version as templates); this module decides what goes into them.  It
is past the house size (~1,100 lines) on purpose: :meth:`PreparedAnswers.answer`
repeats in one straight function (about 150 lines) what ``_walk``/``_resolve``
decide for the commonest asks, because on a first ask each function call costs
as much as several of its lines (tests/test_prepared.py holds both to the general
path's bytes), and the methods share one table of owner forms.  The next split is
the signed proofs (``_signed_nodata`` to ``_covering_nsec``, ~150 lines).

The prepared form of an owner is kept with the tuple of lines it was made from,
and is valid while the zone's current version holds that same tuple: an IXFR
(which copies only the buckets and entries it touches) leaves every other
owner's form valid, so nothing on the NOTIFY path costs in proportion to the
zone.  The table of forms is bounded (:data:`OWNER_LIMIT`).
"""

from __future__ import annotations

import struct

from secdns.server import nsec3keys
from secdns.server.denial import KIND_DNAME, KIND_HASHED, KIND_NS, Index, index_of
from secdns.server.front import PlainQuery, scan_plain
from secdns.server.ownerwire import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_CODES,
    TYPE_MX,
    TYPE_NS,
    TYPE_NSEC3,
    TYPE_SOA,
    TYPE_SRV,
    Labels,
    Owner,
    Rrset,
    prepare_owner,
    signatures,
    write_rrset,
)
from secdns.server.prepwire import (
    _BLOCK_KEY,
    _CUTS_KEY,
    _FLAG_BITS,
    _HEADER,
    _NOTHING_KEPT,
    _OPT_DO,
    _OPT_PLAIN,
    _QR_AA,
    _SOA_KEY,
    _UNSEEN,
    CUTS_KEPT,
    TYPE_RRSIG,
    Section,
    _add,
    _add_sigs,
    _answer_and_block,
    _answer_only,
    _Block,
    _common,
    _holds,
    _kept,
    _limit,
    _Recording,
    _render,
    _soa_exact,
)
from secdns.server.zone import ServedZone, ZoneTable, ZoneVersion, parent_key

OWNER_LIMIT = 65536
"""Prepared owner forms kept at most (the table is cleared when full; cheap to rebuild)."""

MAX_ADDITIONAL = 13  # as lookup.MAX_ADDITIONAL (BIND's DNS_RDATASET_MAXADDITIONAL)

_SIMPLE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_SIMPLE_DOT = _SIMPLE | {46}
_SIMPLE_DOT_BYTES = bytes(sorted(_SIMPLE_DOT))

# the types asked for here (positive answers need a fast builder for the type too)
_QTYPES = frozenset({*TYPE_CODES.values(), 257, 65, 64, 35, 52, 44, 13, 29, 256})
_TARGET_TYPES = frozenset(
    {TYPE_NS, TYPE_MX, TYPE_SRV}
)  # additional-section processing (no KX/AFSDB/RT)

# --- the answerer ---------------------------------------------------------------------------------


_OK, _NX, _CUT, _WILD = range(4)
_DS = 43
TYPE_NSEC = 47


class PreparedAnswers:
    """Answers from prepared owner forms, or None for the general path."""

    def __init__(self, table: ZoneTable, limit: int = OWNER_LIMIT) -> None:
        self.table = table
        self.limit = limit
        self.owners: dict[str, tuple[tuple[str, ...], Owner | None]] = {}
        self.used = 0
        self._clean: dict[str, int] = {}  # ancestor key -> version number it was found clean in
        self._parents: dict[str, tuple[int, ServedZone, int]] = {}  # see _parent_state

    def owner(self, version: ZoneVersion, key: str, lines: tuple[str, ...]) -> Owner | None:
        """The prepared form of ``key``'s ``lines`` (made now if not kept)."""
        found = self.owners.get(key)
        if found is not None and found[0] is lines:
            return found[1]
        # (a Name's labels are a tuple of bytes already: no table of origins, which
        # past 4,096 zones was cleared and made again)
        owner = prepare_owner(lines, version.origin.labels) if lines else None
        if len(self.owners) >= self.limit:
            self.owners.clear()
        self.owners[key] = (lines, owner)
        return owner

    def adopt(self, version: ZoneVersion, key: str, other: PreparedAnswers) -> None:
        """Keep *other*'s forms of owner *key* of *version* (the filler's, made in its
        thread: an owner's forms are not changed once made), unless this table is full
        or holds them already."""
        found = other.owners.get(key)
        if (
            found is not None
            and found[0] is version.lines(key)
            and key not in self.owners
            and len(self.owners) < self.limit
        ):
            self.owners[key] = found

    def answer(self, wire: bytes) -> tuple[bytes, ServedZone] | None:
        """The reply to ``wire`` and the zone that gave it, or None (take the general path).

        The commonest first ask (an existing name below the apex whose parent is known
        clean, asked in the zone's case for a type without additional processing, with
        RD or a 512-byte EDNS payload, so no authority or additional section) is
        answered inline, in as few interpreted steps as we could make it: the question
        read in place (no :class:`~secdns.server.front.PlainQuery`), the zone, depth
        and cleanliness of the parent from one dict (:attr:`_parents`), and the owner's
        prepared bytes behind the client's header and question.  Everything else, and
        anything this step is unsure of, goes to :meth:`_answer` (the same decisions,
        in full)."""
        end = len(wire)
        if end < 17 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00" or wire[2] & 0xF8 or wire[10]:
            return self._answer(wire)  # QR or an opcode, or not one bare question
        position = 12
        length = wire[12]
        labels = []
        while length:  # the question's name: plain labels, as scan_plain reads them
            if length > 63:
                return self._answer(wire)
            labels.append(wire[position + 1 : position + 1 + length])
            position += length + 1
            if position >= end:
                return self._answer(wire)
            length = wire[position]
        qname_end = position + 1
        if wire[11]:  # an OPT: the only additional record, bare
            if (
                wire[11] != 1
                or qname_end + 15 != end
                or wire[qname_end + 4 : qname_end + 7] != b"\x00\x00\x29"
                or wire[end - 2 :] != b"\x00\x00"
            ):
                return self._answer(wire)
            payload = (wire[qname_end + 7] << 8) | wire[qname_end + 8]
            opt_ttl: int | None = int.from_bytes(wire[qname_end + 9 : qname_end + 13], "big")
        elif qname_end + 4 != end:
            return self._answer(wire)
        else:
            payload = 0
            opt_ttl = None
        qtype = (wire[qname_end] << 8) | wire[qname_end + 1]
        query = (labels, qname_end, qtype, opt_ttl, payload)
        if (
            qtype not in _QTYPES
            or wire[qname_end + 2 : qname_end + 4] != b"\x00\x01"
            or qname_end - 12 > 255
            or qname_end == 13
        ):
            return self._answer(wire, query)
        if opt_ttl is None:
            opt = b""
            limit = 512
            arcount = 0
        elif opt_ttl & 0x00FF0000:
            return None  # EDNS version > 0: BADVERS
        else:
            opt = _OPT_DO if opt_ttl & 0x8000 else _OPT_PLAIN
            limit = _limit(payload)
            arcount = 1
        text = b".".join(labels)
        if text.translate(None, _SIMPLE_DOT_BYTES) or text.count(46) != len(labels) - 1:
            return self._answer(wire, query)  # unusual bytes, or a dot inside a label
        key = text.lower().decode() + "."
        parent = key[key.find(".") + 1 :]
        known = self._parents.get(parent)
        if known is None or known[0] != self.table.generation:
            known = self._parent_state(parent)
            if known is None:
                return self._answer(wire, query)
        if key in self.table.zones:
            return self._answer(wire, query)
        zone = known[1]
        version = zone.version
        if version is None or version.number != known[2] or zone.expired:
            return self._answer(wire, query)
        if opt is _OPT_DO and index_of(version).secure:
            return self._answer(wire, query)  # DO on a signed zone: with its RRSIGs
        entry = version.buckets[hash(key) & version.mask].get(key)
        if entry is None:  # NXDOMAIN, its closest encloser the (clean) parent
            if version.exists("*." + parent) or qtype == TYPE_SOA:
                # a wildcard could match: synthesis; type SOA: the SOA's TTL 0 (BIND's
                # zero-no-soa-ttl); both on the general path
                return None
            authority: Section = []
            self._negative_soa(version, authority)
            tail = self._soa_tail(version, (*labels, b""), qname_end + 4, authority[0])
            head = _HEADER.pack(
                _QR_AA | (((wire[2] << 8) | wire[3]) & _FLAG_BITS) | 3, 1, 0, 1, arcount
            )
            reply = wire[:2] + head + wire[12 : qname_end + 4] + tail + opt
            if len(reply) > limit:
                return None
            self.used += 1
            return reply, zone
        lines = entry[0]
        if not lines:  # an empty non-terminal: NODATA
            return self._reply(wire, labels, qname_end, qtype, key, zone, version, entry, limit)
        found = self.owners.get(key)
        owner = (
            found[1] if found is not None and found[0] is lines else self.owner(version, key, lines)
        )
        if owner is None:
            return None  # cannot be prepared
        if owner.kinds & KIND_NS:
            return self._answer(wire, query)  # a delegation: a referral (_referral)
        owned = owner.labels
        if (
            owner.kinds
            or qtype in _TARGET_TYPES
            or qtype not in owner.types
            or b".".join(owned) != text + b"."  # another case: names compress differently
        ):  # the sections as the general path fills them
            return self._reply(wire, labels, qname_end, qtype, key, zone, version, entry, limit)
        if not (wire[2] & 1 or (opt_ttl is not None and payload <= 512)):
            # RD clear (what resolvers send): the version's apex block follows the answer
            block = (version.kept or _NOTHING_KEPT).get((_BLOCK_KEY, False, self.table.generation))
            made = (
                None
                if block is None or key in block.targets  # type: ignore[attr-defined]
                else _answer_and_block(wire, qname_end, qtype, opt, arcount, owner, block, limit)  # type: ignore[arg-type]
            )
            if made is None:
                return self._reply(wire, labels, qname_end, qtype, key, zone, version, entry, limit)
            self.used += 1
            return made, zone
        fixed = owner.fixed.get(qtype)
        if fixed is not None:
            count, rrs = fixed
        else:
            rrset = owner.types[qtype]
            count = len(rrset[1])
            table = {owned: 12}
            if len(owned) > 2:
                table[owned[1:]] = 13 + len(owned[0])
            start = qname_end + 4
            out = bytearray(start)
            write_rrset(out, table, owned, qtype, rrset)
            rrs = bytes(out[start:])
        reply = (
            wire[:2]
            + _HEADER.pack(_QR_AA | (((wire[2] << 8) | wire[3]) & _FLAG_BITS), 1, count, 0, arcount)
            + wire[12 : qname_end + 4]
            + rrs
            + opt
        )
        if len(reply) > limit:
            return self._answer(wire, query)
        self.used += 1
        return reply, zone

    def _parent_state(self, parent: str) -> tuple[int, ServedZone, int] | None:
        """(table generation, zone, version number) for a name whose ancestors up to its
        zone's apex, ``parent`` included, are known free of delegations and DNAMEs in
        that version (:meth:`_cut` learns it); None if that is not known (yet)."""
        if not parent:
            return None
        zone, depth = self._zone(parent)
        if zone is None or zone.version is None:
            return None
        version = zone.version
        number = version.number
        if self._clean.get(parent) != number:
            if depth:
                return None
            # the apex: clean unless it owns a DNAME (its NS is no cut), learnt here so
            # that a zone's first NXDOMAIN is answered inline (across 10,000 small zones
            # whose other answers are ready, each zone's one was a walk of its own)
            entry = version.entry(parent)
            if entry is None or self._cut(version, parent, 0, entry[0], False) != _OK:
                return None
        if len(self._parents) >= self.limit:
            self._parents.clear()
        known = self._parents[parent] = (self.table.generation, zone, number)
        return known

    def _answer(
        self, wire: bytes, read: tuple[list[bytes], int, int, int | None, int] | None = None
    ) -> tuple[bytes, ServedZone] | None:
        """:meth:`answer` in full (see the module docstring); ``read``: the question as
        :meth:`answer` read it (labels, end of the name, type, OPT TTL, payload)."""
        if read is None:
            query = scan_plain(wire)
            if query is None:
                return None
        else:
            labels, qname_end, qtype, opt_ttl, payload = read
            query = PlainQuery(
                (wire[0] << 8) | wire[1],
                (wire[2] << 8) | wire[3],
                labels,
                qname_end,
                qtype,
                1 if wire[qname_end + 2 : qname_end + 4] == b"\x00\x01" else 0,
                opt_ttl,
                payload,
            )
        flags = query.flags
        if flags & 0xF800 or query.qclass != 1 or query.qtype not in _QTYPES:
            return None  # QR, opcode, class, type
        opt_ttl = query.opt_ttl
        if opt_ttl is not None and opt_ttl & 0x00FF0000:
            return None  # EDNS version > 0: BADVERS
        labels = query.labels
        if query.qname_end - 12 > 255:
            return None
        if labels:
            joined = b".".join(labels)
            if not _SIMPLE_DOT.issuperset(joined) or joined.count(46) != len(labels) - 1:
                return None  # unusual bytes, or a dot inside a label
            key = joined.lower().decode() + "."
        else:
            key = "."
        zone, depth = self._zone(key)
        if zone is None:
            return None
        version = zone.version
        if version is None or zone.expired:
            return None
        qtype = query.qtype
        limit = 512 if opt_ttl is None else _limit(query.payload)
        no_sections = bool(flags & 0x0100 or (opt_ttl is not None and query.payload <= 512))
        if depth and no_sections and qtype not in _TARGET_TYPES:
            # the commonest question, in the fewest steps: an existing name below the apex
            # whose ancestors are known clean, and no authority (RD) or additional section
            entry = version.buckets[hash(key) & version.mask].get(key)
            if entry is not None and entry[0]:
                lines = entry[0]
                found = self.owners.get(key)
                owner = (
                    found[1]
                    if found is not None and found[0] is lines
                    else self.owner(version, key, lines)
                )
                if (
                    owner is not None
                    and not owner.kinds
                    and qtype in owner.types
                    and self._clean.get(key.split(".", 1)[1] or ".") == version.number
                ):
                    reply = _answer_only(wire, query, owner, version, limit)
                    if reply is not None:
                        self.used += 1
                        return reply, zone
        # DO on a signed zone: positive answers here with their RRSIGs; referrals (DS or
        # its denial) and negative answers (NSEC/NSEC3 proofs) on the general path
        dnssec = opt_ttl is not None and bool(opt_ttl & 0x8000) and index_of(version).secure
        status, entry = self._walk(version, key, depth)
        if status == _CUT:
            if dnssec:
                return None
            return self._referral(wire, query, key, zone, version, limit)
        if status == _WILD:
            return None
        if entry is not None and entry[0] and no_sections and qtype not in _TARGET_TYPES:
            owner = self.owner(version, key, entry[0])
            if owner is not None and qtype in owner.types:
                reply = _answer_only(wire, query, owner, version, limit)
                if reply is not None:
                    self.used += 1
                    return reply, zone
        return self._reply(
            wire, labels, query.qname_end, qtype, key, zone, version, entry, limit, dnssec
        )

    def _referral(
        self,
        wire: bytes,
        query: PlainQuery,
        key: str,
        zone: ServedZone,
        version: ZoneVersion,
        limit: int,
    ) -> tuple[bytes, ServedZone] | None:
        """A referral, as ``Answerer._referral`` makes it (AA clear, the cut's NS in the
        authority section, glue in reverse NS order), for a name at or below a delegation;
        None for a DNAME on the way, DS at the cut, or a reply past ``limit`` (glue that
        answers the question goes first, as BIND's ``query_glueanswer`` puts it, and a
        reply where it does not fit gets TC on the general path).

        The cut is the highest delegation on the way down from the apex (``_lookup``), so
        the walk here is top-down, where :meth:`_walk` (which only had to find one) went up."""
        apex_key = version.origin_key
        keys = [key]
        walk = key
        while walk != apex_key:
            walk = walk[walk.find(".") + 1 :] or "."
            keys.append(walk)
        last = len(keys) - 1
        cut = None
        for depth in range(1, last + 1):
            walk = keys[last - depth]
            entry = version.entry(walk)
            if entry is None:
                return None  # a missing name above any cut: not a referral
            if not entry[0]:
                continue
            owner = self.owner(version, walk, entry[0])
            if owner is None:
                return None
            if owner.kinds & KIND_NS and not (depth == last and query.qtype == _DS):
                cut = walk, owner
                break
            if depth != last and owner.kinds & KIND_DNAME:
                return None
        if cut is None:
            return None
        block = self._cut_block(version, apex_key, *cut)
        if block is None:
            return None
        authority: Section = block
        additional = block.additional
        required = False
        if query.qtype in (TYPE_A, TYPE_AAAA) and _holds(additional, key, query.qtype):
            # glue that answers the question (BIND's query_glueanswer): its whole name
            # first, the type asked for first within it, and that RRset written first
            asked = [item for item in additional if item[0] == key and item[2] == query.qtype]
            same = [item for item in additional if item[0] == key and item[2] != query.qtype]
            rest = [item for item in additional if item[0] != key]
            authority, additional = list(block), [*asked, *same, *rest]
            required = True
        reply = _render(
            wire,
            query.labels,
            query.flags,
            query.opt_ttl,
            0,
            [],
            authority,
            additional,
            aa=False,
            required=required,
        )
        if len(reply) > limit:
            return None
        self.used += 1
        return reply, zone

    def _cut_block(
        self, version: ZoneVersion, apex_key: str, cut_key: str, cut: Owner
    ) -> _Block | None:
        """A referral's sections at the delegation ``cut_key`` (its NS, and its glue in
        reverse NS order), the same for every name at or below it: made once a version
        (with its templates, :func:`_relocatable`); None if they cannot be prepared."""
        kept = _kept(version)
        cuts: dict[str, _Block | None] | None = kept.get(_CUTS_KEY)  # type: ignore[assignment]
        if cuts is None or len(cuts) >= CUTS_KEPT:
            cuts = kept[_CUTS_KEY] = {}
        found = cuts.get(cut_key, _UNSEEN)
        if found is not _UNSEEN:
            return found  # type: ignore[return-value]  # (a block or None)
        block: _Block | None = None
        if TYPE_NS not in cut.unsupported and TYPE_NS in cut.types:
            ns = cut.types[TYPE_NS]
            block = _Block()
            block.append((cut_key, cut.labels, TYPE_NS, ns))
            glue: list[Section] = []
            for piece in ns[1]:
                addresses = self._glue(version, apex_key, piece[2])
                if addresses is None:
                    block = None
                    break
                if addresses:
                    glue.append(addresses)
            if block is not None:
                for rrsets in reversed(glue):
                    for item in rrsets:
                        if not _holds(block.additional, item[0], item[2]):
                            _add(block.additional, item)
                block.seal()
        cuts[cut_key] = block
        return block

    def _glue(self, version: ZoneVersion, apex_key: str, target: Labels) -> Section | None:
        """``Answerer._glue_node``'s addresses for an NS target: its A and AAAA when it is at
        or below a zone cut of this version (every name on the way there existing), else
        nothing; None when its owner cannot be prepared here."""
        text = b".".join(target[:-1]).lower()
        if not _SIMPLE_DOT.issuperset(text):
            return None
        key = text.decode() + "." if len(target) > 1 else "."
        if not (key == apex_key or key.endswith("." + apex_key) or apex_key == "."):
            return []
        keys = [key]
        walk = key
        while walk != apex_key:
            walk = walk[walk.find(".") + 1 :] or "."
            keys.append(walk)
        below_cut = False
        owner = None
        for depth in range(len(keys) - 1, -1, -1):
            walk = keys[depth]
            entry = version.entry(walk)
            if entry is None:
                return []
            if depth == len(keys) - 1 or not entry[0]:
                continue  # the apex, or an empty non-terminal
            owner = self.owner(version, walk, entry[0])
            if owner is None:
                return None
            if owner.kinds & KIND_NS:
                below_cut = True
        if not below_cut or owner is None or not version.entry(key)[0]:  # type: ignore[index]
            return []  # (the last owner read is the target's unless the target is empty)
        found: Section = []
        for rdtype in (TYPE_A, TYPE_AAAA):
            if rdtype in owner.unsupported:
                return None
            rrset = owner.types.get(rdtype)
            if rrset is not None:
                found.append((key, owner.labels, rdtype, rrset))
        return found

    def _reply(
        self,
        wire: bytes,
        labels: list[bytes],
        qname_end: int,
        qtype: int,
        key: str,
        zone: ServedZone,
        version: ZoneVersion,
        entry: tuple[tuple[str, ...], int] | None,
        limit: int,
        dnssec: bool = False,
    ) -> tuple[bytes, ServedZone] | None:
        """The reply for a name walked to (``entry``: None if it does not exist), with
        the sections :meth:`_resolve` fills, or None (``dnssec``: DO on a signed zone)."""
        flags = (wire[2] << 8) | wire[3]
        opt_ttl = None
        payload = 512
        if wire[11]:
            opt_ttl = int.from_bytes(wire[qname_end + 9 : qname_end + 13], "big")
            payload = (wire[qname_end + 7] << 8) | wire[qname_end + 8]
        sections = self._resolve(qtype, key, version, zone, flags, opt_ttl, payload, entry, dnssec)
        if sections is None:
            return None
        rcode, answer, authority, additional = sections
        if not answer and not additional and len(authority) == 1:
            # NXDOMAIN/NODATA: the SOA, whose bytes rarely depend on more than its offset
            tail = self._soa_tail(version, (*labels, b""), qname_end + 4, authority[0])
            head = _HEADER.pack(
                _QR_AA | (flags & _FLAG_BITS) | rcode, 1, 0, 1, 0 if opt_ttl is None else 1
            )
            opt = b"" if opt_ttl is None else (_OPT_DO if opt_ttl & 0x8000 else _OPT_PLAIN)
            reply = wire[:2] + head + wire[12 : qname_end + 4] + tail + opt
        else:
            reply = _render(wire, labels, flags, opt_ttl, *sections)
        if len(reply) > limit:
            return None
        self.used += 1
        return reply, zone

    def _zone(self, key: str) -> tuple[ServedZone | None, int]:
        """The deepest zone holding ``key``, and how many labels the name has below it."""
        zones = self.table.zones
        walk = key
        depth = 0
        while True:
            zone = zones.get(walk)
            if zone is not None:
                return zone, depth
            if walk == ".":
                return None, 0
            walk = walk.split(".", 1)[1] or "."
            depth += 1

    def _resolve(
        self,
        qtype: int,
        key: str,
        version: ZoneVersion,
        zone: ServedZone,
        flags: int,
        opt_ttl: int | None,
        payload: int,
        entry: tuple[tuple[str, ...], int] | None,
        dnssec: bool = False,
    ) -> tuple[int, Section, Section, Section] | None:
        """The rcode and sections of the answer, as ``Answerer`` fills them (``entry``: the
        name's, None if it does not exist); None: not here.  ``dnssec`` (DO on a signed
        zone): each RRset with its RRSIGs (``Answerer._add_signed``), positive answers
        only."""
        answer: Section = []
        authority: Section = []
        additional: Section = []
        rcode = 0
        apex_key = version.origin_key
        if entry is None:  # NXDOMAIN: no wildcard at the closest encloser
            if qtype == TYPE_SOA:
                return None  # the SOA with TTL 0 (BIND's zero-no-soa-ttl): general path
            rcode = 3
            if not dnssec:
                self._negative_soa(version, authority)
            elif not self._signed_nxdomain(version, key, authority):
                return None  # NSEC3 (hashed names), or what could not be prepared
        elif not entry[0]:  # an empty non-terminal: NODATA
            if not dnssec:
                self._negative_soa(version, authority)
            elif not self._signed_empty(version, key, authority):
                return None  # what was not prepared: the general path
        else:
            owner = self.owner(version, key, entry[0])
            if owner is None or qtype in owner.unsupported or owner.kinds & KIND_HASHED:
                return None
            rrset = owner.types.get(qtype)
            if rrset is None:
                if TYPE_CNAME in owner.types or TYPE_CNAME in owner.unsupported:
                    return None  # a CNAME chain: the general path
                if not dnssec:
                    self._negative_soa(version, authority)
                elif not self._signed_nodata(version, key, owner, authority):
                    return None  # NSEC3 (a hashed name), or what could not be prepared
            else:
                edns_small = opt_ttl is not None and payload <= 512
                no_authority = bool(flags & 0x0100) or edns_small
                answer.append((key, owner.labels, qtype, rrset))
                if dnssec and not _add_sigs(answer, key, owner, qtype):
                    return None
                if not edns_small and qtype in _TARGET_TYPES:
                    if not self._additional_for(
                        version, zone, rrset, answer, [], additional, dnssec
                    ):
                        return None
                answer_has_ns = qtype == TYPE_NS and key == apex_key
                if not no_authority and not answer_has_ns and qtype not in _TARGET_TYPES:
                    # the apex NS and its addresses, as every such answer of the zone has them
                    block = self._apex_block(version, zone, dnssec)
                    if block is None:
                        return None
                    if key not in block.targets:
                        return rcode, answer, block, block.additional
                if not no_authority and not answer_has_ns:
                    apex = self.owner(version, apex_key, version.lines(apex_key))
                    if apex is None:
                        return None
                    ns = apex.types.get(TYPE_NS)
                    if TYPE_NS in apex.unsupported:
                        return None
                    if ns is not None:
                        authority.append((apex_key, apex.labels, TYPE_NS, ns))
                        if dnssec and not _add_sigs(authority, apex_key, apex, TYPE_NS):
                            return None
                        if not edns_small and not self._additional_for(
                            version, zone, ns, answer, authority, additional, dnssec
                        ):
                            return None
        return rcode, answer, authority, additional

    def _apex_block(self, version: ZoneVersion, zone: ServedZone, dnssec: bool) -> _Block | None:
        """The authority and additional sections :meth:`_resolve` gives a positive answer
        of a type without additional processing: the apex NS (with its RRSIGs for
        ``dnssec``) and its targets' addresses, the same for every such answer of the
        version unless the answer is at one of those targets (``_Block.targets``).  Kept
        per version, DO and table generation; None when it cannot be prepared."""
        kept = _kept(version)
        key = (_BLOCK_KEY, dnssec, self.table.generation)
        if key in kept:
            return kept[key]  # type: ignore[return-value]  # (what was put there)
        block: _Block | None = None
        apex_key = version.origin_key
        apex = self.owner(version, apex_key, version.lines(apex_key))
        if apex is not None and TYPE_NS not in apex.unsupported:
            block = _Block()
            ns = apex.types.get(TYPE_NS)
            if ns is not None:
                block.append((apex_key, apex.labels, TYPE_NS, ns))
                if (dnssec and not _add_sigs(block, apex_key, apex, TYPE_NS)) or (
                    not self._additional_for(version, zone, ns, [], block, block.additional, dnssec)
                ):
                    block = None
        if block is not None:
            block.seal()
        kept[key] = block
        return block

    def _signed_nodata(
        self, version: ZoneVersion, key: str, owner: Owner, authority: Section
    ) -> bool:
        """A DO NODATA at an existing name (``Proofs._nodata``): the SOA and its RRSIG at
        the negative-caching TTL, then the name's NSEC, or the NSEC3 matching it, and its
        RRSIG; False for what was not prepared (an NSEC3 zone's name without an NSEC3 of
        its own: the closest encloser proof is the general path's)."""
        if owner.sigs is None:
            return False
        if index_of(version).uses_nsec3:
            return self._nsec3_nodata(version, key, authority)
        if not self._signed_soa(version, authority):
            return False
        if owner.nsec is not None:
            _add(authority, (key, owner.labels, TYPE_NSEC, owner.nsec))
            return _add_sigs(authority, key, owner, TYPE_NSEC, grouped=True)
        return True

    def _signed_empty(self, version: ZoneVersion, key: str, authority: Section) -> bool:
        """A DO NODATA at an empty non-terminal (a QNAME-minimising resolver asks them):
        in an NSEC3 zone its own NSEC3 (:meth:`_nsec3_nodata`); in an NSEC zone the SOA
        and its RRSIG, then the NSEC at or before the name and its RRSIG
        (``Proofs._nodata``); False when one was not prepared."""
        index = index_of(version)
        if index.uses_nsec3:
            return self._nsec3_nodata(version, key, authority)
        if not self._signed_soa(version, authority):
            return False
        name = tuple(label.encode() for label in key[:-1].split(".")) + (b"",)
        return self._covering_nsec(version, index, name, authority) is not None

    def _nsec3_nodata(self, version: ZoneVersion, key: str, authority: Section) -> bool:
        """A DO NODATA of an NSEC3 zone at a name with an NSEC3 of its own (an empty
        non-terminal has one too: RFC 5155 7.1): the SOA and its RRSIG, then that NSEC3
        and its RRSIG (``Proofs._nsec3_nodata``); False for a name without its NSEC3
        (opt-out: the closest encloser proof) or what was not prepared."""
        found = nsec3keys.matching(index_of(version), key)
        return (
            found is not None
            and self._signed_soa(version, authority)
            and self._add_nsec3(version, found, authority)
        )

    def _signed_soa(self, version: ZoneVersion, authority: Section) -> bool:
        """The negative SOA and its RRSIG, both at the negative-caching TTL, min(TTL,
        MINIMUM) (``Index.negative_soa``); False when the apex was not prepared."""
        apex_key = version.origin_key
        apex = self.owner(version, apex_key, version.lines(apex_key))
        if apex is None or TYPE_SOA not in apex.types:
            return False
        sig = signatures(apex, TYPE_SOA)
        if sig is False:
            return False
        self._negative_soa(version, authority)
        if sig is not None:
            minimum = struct.unpack_from("!I", apex.types[TYPE_SOA][1][0][1], 16)[0]
            _add(authority, (apex_key, apex.labels, TYPE_RRSIG, (min(sig[0], minimum), sig[1])))
        return True

    def _signed_nxdomain(self, version: ZoneVersion, key: str, authority: Section) -> bool:
        """A DO NXDOMAIN of an NSEC zone (``Proofs._nxdomain``, ``_wildcard_proof``): the
        SOA and its RRSIG, the NSEC covering the name and the one covering the wildcard
        of its closest encloser (once, if the same), each with its RRSIG; False for NSEC3
        or what was not prepared."""
        index = index_of(version)
        if not self._signed_soa(version, authority):
            return False
        if index.uses_nsec3:
            return self._nsec3_nxdomain(version, index, key, authority)
        name = tuple(label.encode() for label in key[:-1].split(".")) + (b"",)
        covering = self._covering_nsec(version, index, name, authority)
        if covering is None:
            return False
        if not covering:  # (no NSEC owner covers it: the SOA alone, as the general path)
            return True
        owner_labels, following = covering
        common = max(_common(name, owner_labels), _common(name, following))
        if common >= len(name):
            return True
        wild = (b"*", *name[len(name) - common :])
        if wild == name or version.exists(b".".join(wild).decode() or "."):
            return True
        return self._covering_nsec(version, index, wild, authority) is not None

    def _nsec3_nxdomain(
        self, version: ZoneVersion, index: Index, key: str, authority: Section
    ) -> bool:
        """The closest encloser proof of a DO NXDOMAIN of an NSEC3 zone (RFC 5155 7.2.2,
        ``Proofs._nsec3_wildcard_proof``), after the SOA: the NSEC3 matching the closest
        provable encloser, the one covering the next closer name, the one covering the
        wildcard at the encloser (each once, with its RRSIG); False when one was not
        prepared."""
        origin_key = version.origin_key
        encloser = key
        while not version.exists(encloser) and encloser != origin_key:
            encloser = parent_key(encloser)
        while True:  # the closest provable encloser: the nearest with an NSEC3
            found = nsec3keys.matching(index, encloser)
            if found is not None or encloser == origin_key or encloser == ".":
                break
            encloser = parent_key(encloser)
        if found is None:
            return True  # (no proof: the SOA alone, as the general path)
        if not self._add_nsec3(version, found, authority):
            return False
        if key != encloser:  # the next closer name: one label more than the encloser
            at = len(key) - len(encloser) - (1 if encloser != "." else 0)
            closer = key[key.rfind(".", 0, at) + 1 :]
            cover = nsec3keys.covering(index, closer)
            if cover is not None and not self._add_nsec3(version, cover, authority):
                return False
        cover = nsec3keys.covering(index, "*." + encloser if encloser != "." else "*.")
        return cover is None or self._add_nsec3(version, cover, authority)

    def _add_nsec3(self, version: ZoneVersion, key: str, authority: Section) -> bool:
        """The NSEC3 at ``key`` and its RRSIG into ``authority``, unless there already
        (``Proofs._add_signed``); False when it was not prepared."""
        if _holds(authority, key, TYPE_NSEC3):
            return True
        lines = version.lines(key)
        owner = self.owner(version, key, lines) if lines else None
        if owner is None or owner.sigs is None or owner.nsec3 is None:
            return False
        _add(authority, (key, owner.labels, TYPE_NSEC3, owner.nsec3))
        return _add_sigs(authority, key, owner, TYPE_NSEC3, grouped=True)

    def _covering_nsec(
        self, version: ZoneVersion, index: Index, name: Labels, authority: Section
    ) -> tuple[Labels, Labels] | tuple[()] | None:
        """Add the NSEC at or before ``name`` (lowercased labels, root included) and its
        RRSIG to ``authority`` (once: ``Proofs._add`` keeps a name and type once): (its
        owner's labels, its next name), () when no NSEC owner is there, None when it
        was not prepared."""
        found = index.nsec_key_at_or_before(tuple(reversed(name[:-1])))
        if found is None:
            return ()
        lines = version.lines(found)
        owner = self.owner(version, found, lines) if lines else None
        if owner is None or owner.sigs is None:
            return None
        if owner.nsec is None:
            return ()
        if not _holds(authority, found, TYPE_NSEC):
            _add(authority, (found, owner.labels, TYPE_NSEC, owner.nsec))
            if not _add_sigs(authority, found, owner, TYPE_NSEC, grouped=True):
                return None
        return owner.labels, owner.nsec[1][0][2]

    def _walk(
        self, version: ZoneVersion, key: str, depth: int
    ) -> tuple[int, tuple[tuple[str, ...], int] | None]:
        """``Answerer._lookup`` down to ``key`` (``depth`` labels below the apex): (_OK, its
        entry), (_NX, None) if it does not exist and no wildcard could match, (_CUT, None)
        for a delegation or DNAME on the way, (_WILD, None) if a wildcard could match.

        Bottom-up where the general path goes top-down: an existing name has every
        ancestor in the zone (empty non-terminals included), and every outcome that
        depends on the order (a cut above a missing name) is declined or the same.

        A name whose parent is known clean in this version (:meth:`_parent_state`)
        needs only its own owner checked, or for a missing name the wildcard below
        the parent (its closest encloser)."""
        entry = version.entry(key)
        if depth:
            parent = key[key.find(".") + 1 :]
            known = self._parents.get(parent)
            if known is None or known[0] != self.table.generation:
                known = self._parent_state(parent)
            if known is not None and known[2] == version.number:
                if entry is None:
                    return (_WILD if version.exists("*." + parent) else _NX), None
                if entry[0]:
                    owner = self.owner(version, key, entry[0])
                    if owner is None or owner.kinds & KIND_HASHED:
                        return _WILD, None  # (a hashed owner: the general path)
                    if owner.kinds & KIND_NS:
                        return _CUT, None
                return _OK, entry
        walk = key
        if entry is None:
            while True:  # up to the closest encloser (the apex always exists)
                walk = walk.split(".", 1)[1] or "."
                depth -= 1
                found = version.entry(walk)
                if found is not None:
                    break
            status = self._cut(version, walk, depth, found[0], False)
            if status != _OK:
                return status, None
            wild = "*." + walk if walk != "." else "*."
            return (_WILD if version.exists(wild) else _NX), None
        status = self._cut(version, walk, depth, entry[0], True)
        return status, (entry if status == _OK else None)

    def _cut(
        self, version: ZoneVersion, walk: str, depth: int, lines: tuple[str, ...], at_qname: bool
    ) -> int:
        """_CUT if ``walk`` (``depth`` labels below the apex) or a name above it is a
        delegation (not the apex) or a DNAME (not the name asked for); _WILD if an owner
        cannot be prepared; else _OK.  Ancestors found clean are remembered per version."""
        clean = self._clean
        number = version.number
        visited = []
        while True:
            if not at_qname:
                if clean.get(walk) == number:
                    break
                visited.append(walk)
            if lines:
                owner = self.owner(version, walk, lines)
                if owner is None or owner.kinds & KIND_HASHED:
                    return _WILD
                kinds = owner.kinds
                if kinds and ((depth and kinds & KIND_NS) or (not at_qname and kinds & KIND_DNAME)):
                    return _CUT
            if not depth:
                break
            walk = walk.split(".", 1)[1] or "."
            depth -= 1
            at_qname = False
            found = version.entry(walk)
            if found is None:
                return _WILD  # cannot happen: ancestors of a name exist
            lines = found[0]
        if len(clean) + len(visited) > self.limit:
            clean.clear()
        for walk in visited:
            clean[walk] = number
        return _OK

    def _soa_tail(
        self, version: ZoneVersion, qname: Labels, offset: int, soa: tuple[str, Labels, int, Rrset]
    ) -> bytes:
        """The authority SOA of a negative answer, written at ``offset`` after the question
        ``qname``.  Its bytes depend on the question only where a name of the SOA could be
        compressed against the question's name or its parent, so they are kept per
        (version, offset, and the question's parent when that is the apex) together with
        the names looked up; a question among those is rendered afresh."""
        apex = soa[1]
        below = len(qname) - len(apex)
        if below == 1:
            key: tuple[object, ...] = (_SOA_KEY, offset, qname[1:])
        else:
            key = (_SOA_KEY, offset, qname if below <= 0 else None)
        kept = _kept(version)
        found: tuple[bytes, set[Labels]] | None = kept.get(key)  # type: ignore[assignment]
        if found is not None:
            tail, looked_up = found
            if below <= 0 or (
                qname not in looked_up and (below == 1 or qname[1:] not in looked_up)
            ):
                return tail
        table = _Recording()
        out = bytearray(offset)
        if below <= 1 and len(qname) > 1:
            if below <= 0:
                table[qname] = 12
            if len(qname) > 2:
                table[qname[1:]] = 13 + len(qname[0])
        write_rrset(out, table, soa[1], TYPE_SOA, soa[3])
        tail = bytes(out[offset:])
        kept[key] = (tail, table.looked_up)
        if below >= 1 and (
            qname in table.looked_up or (below >= 2 and qname[1:] in table.looked_up)
        ):
            return _soa_exact(qname, offset, soa)
        return tail

    def _negative_soa(self, version: ZoneVersion, authority: Section) -> None:
        apex = self.owner(version, version.origin_key, version.lines(version.origin_key))
        assert apex is not None
        soa = apex.types[TYPE_SOA]
        piece = soa[1][0]
        minimum = struct.unpack_from("!I", piece[1], 16)[0]
        authority.append(
            (version.origin_key, apex.labels, TYPE_SOA, (min(soa[0], minimum), soa[1]))
        )

    def _additional_for(
        self,
        version: ZoneVersion,
        zone: ServedZone,
        rrset: Rrset,
        answer: Section,
        authority: Section,
        additional: Section,
        dnssec: bool = False,
    ) -> bool:
        """Addresses of the targets of an NS/MX/SRV RRset (``Answerer._additional_for``),
        each with its RRSIGs for ``dnssec``; False when one cannot be decided here."""
        pieces = rrset[1]
        if len(pieces) > MAX_ADDITIONAL:
            return True
        origin_key = version.origin_key
        for piece in pieces:
            target: Labels = piece[2]
            key = b".".join(target[:-1]).lower().decode() + "." if len(target) > 1 else "."
            if not (key == origin_key or key.endswith("." + origin_key) or origin_key == "."):
                continue
            known = self._parents.get(key[key.find(".") + 1 :])
            if (
                known is not None
                and known[2] == version.number
                and known[0] == self.table.generation
                and key not in self.table.zones
            ):
                depth = 1  # below the apex of this version's zone (only its depth > 0 matters)
            else:
                target_zone, depth = self._zone(key)
                if target_zone is not zone:
                    continue
            status, found = self._address_owner(version, key, depth)
            if status == _WILD:
                return False
            if found is None:
                continue
            for rdtype in (TYPE_A, TYPE_AAAA):
                if rdtype in found.unsupported:
                    return False
                addresses = found.types.get(rdtype)
                if addresses is None:
                    continue
                if _holds(answer, key, rdtype) or _holds(authority, key, rdtype):
                    continue
                if _holds(additional, key, rdtype):
                    continue
                _add(additional, (key, found.labels, rdtype, addresses))
                if dnssec and not _add_sigs(additional, key, found, rdtype, grouped=True):
                    return False
        return True

    def _address_owner(
        self, version: ZoneVersion, key: str, depth: int
    ) -> tuple[int, Owner | None]:
        """The owner whose addresses go in the additional section for target ``key`` (the
        general path's ``_lookup(target, A)``), or None; status _WILD: not decidable here."""
        status, entry = self._walk(version, key, depth)
        if status == _WILD:
            return _WILD, None
        if entry is None or not entry[0]:  # a delegation or DNAME on the way, no name, ENT
            return status, None
        owner = self.owner(version, key, entry[0])
        return (_WILD, None) if owner is None else (_OK, owner)
