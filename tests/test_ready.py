"""Ready answers (secdns.server.ready) are the general path's bytes, or step aside.

The property: after :func:`fill`, every question the test zones could be asked (each
owner and empty non-terminal, every type a zone uses and a few it does not, names
that do not exist), in the query shapes and letter cases of tests/test_prepared.py
plus RD with EDNS, gets from :meth:`ReadyAnswers.reply` exactly the bytes
:func:`secdns.server.front.handle` returns, or None.  RD clear (a resolver's query:
the apex NS and glue after the answer) is asked in every shape and case too, and must
be ready for some.  After an IXFR the stale answers step aside, and what is learnt
(from RD-set or RD-clear asks) equals a fresh fill of the new version.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import dns.message
import dns.name
import pytest
from test_answer import EXAMPLE, _sign
from test_prepared import ANSWER_ZONES, MIX, SHAPES, TYPES, _cases, _query, _table, _zone_sets

from secdns.server import front
from secdns.server.prepared import PreparedAnswers
from secdns.server.ready import ReadyAnswers
from secdns.server.readyfill import ReadyFiller, fill
from secdns.server.zone import ZoneTable, ZoneVersion

READY_SHAPES = [
    *SHAPES,
    {"rd": True, "cd": True},
    {"rd": True, "edns": 1232},
    {"rd": True, "edns": 512},
    {"rd": True, "edns": 512, "do": True},
    {"rd": True, "edns": 4096, "do": True, "cd": True},
]


def _filled(table: ZoneTable) -> ReadyAnswers:
    ready = ReadyAnswers()
    prepared = PreparedAnswers(table)
    for zone in list(table.zones.values()):
        for _made in fill(ready, prepared, table, zone):
            pass
    return ready


def _same_as_general(
    table: ZoneTable,
    ready: ReadyAnswers,
    clear_hits: list[int] | None = None,
    shapes: list[dict[str, object]] = READY_SHAPES,
) -> int:
    """Ask every question in every shape; returns how many the ready answers gave (and
    adds those to queries with RD clear to ``clear_hits[0]``)."""
    rng = random.Random(7)
    hits = 0
    clear_hits = clear_hits if clear_hits is not None else [0]
    for zone in list(table.zones.values()):
        assert zone.version is not None
        for key, _entry in zone.version.iter_entries():
            for name in (key, "nx." + key if key != "." else "nx."):
                for rdtype in TYPES:
                    for shape in shapes:
                        for case in _cases(name, rng)[:2]:
                            try:
                                wire = _query(case, rdtype, **shape)
                            except dns.name.NameTooLong:
                                continue
                            mine = ready.reply(wire)
                            if mine is None:
                                continue
                            hits += 1
                            clear_hits[0] += not wire[2] & 1
                            assert mine == front.handle(wire, table, tcp=False).wire, (
                                case,
                                rdtype,
                                shape,
                            )
    return hits


@pytest.mark.parametrize("zones", sorted(_zone_sets()))
def test_ready_answers_are_the_general_paths_bytes(zones: str) -> None:
    table = _table(_zone_sets()[zones])
    ready = _filled(table)
    assert ready.entries
    clear_hits = [0]
    assert _same_as_general(table, ready, clear_hits) >= len(ready.entries)
    assert ready.blocks and clear_hits[0] > 0  # RD clear (a resolver's queries) ready too


SIGNED_SHAPES = [
    *READY_SHAPES,
    {"edns": 1232, "do": True},  # a validating resolver's
    {"edns": 4096, "do": True, "cd": True},
    {"edns": 700, "do": True},  # (larger answers do not fit: the prepared path's)
    {"edns": 512, "do": True},
]


@pytest.mark.parametrize("nsec3", ["", "nsec3"])
def test_signed_zones_are_ready_with_do_as_resolvers_ask(tmp_path: Path, nsec3: str) -> None:
    """A signed zone's positive answers are ready for DO as a validating resolver asks
    (RD clear, EDNS above 512), signatures and all: the general path's bytes in every
    shape; DO with RD set, or a payload of 512, takes the prepared path."""
    text = (ANSWER_ZONES / "answer.example.zone").read_text().replace("answer.example", "s.test")
    table = _table({"s.test.": _sign(tmp_path, "s.test.", text, nsec3)})
    ready = _filled(table)
    assert ready.signed and set(ready.signed) <= set(ready.entries)
    clear_hits = [0]
    assert _same_as_general(table, ready, clear_hits, SIGNED_SHAPES) > len(ready.signed)
    assert clear_hits[0] > 0
    assert ready.reply(_query("www.s.test.", "A", rd=True, edns=1232, do=True)) is None
    assert ready.reply(_query("www.s.test.", "A", edns=512, do=True)) is None
    wire = _query("www.s.test.", "A", edns=1232, do=True)
    mine = ready.reply(wire)
    assert mine is not None and mine == front.handle(wire, table, tcp=False).wire
    assert any(rrset.rdtype == 46 for rrset in dns.message.from_wire(mine).answer)  # RRSIG
    assert ready.reply(_query("www.s.test.", "A", rd=True, edns=1232)) is not None
    # a new version: the signed answers step aside, and a fill drops them
    zone = table.zones["s.test."]
    assert zone.version is not None
    zone.swap(ZoneVersion.from_lines(zone.origin, list(zone.version.iter_lines())))
    assert ready.reply(wire) is None
    for _made in fill(ready, PreparedAnswers(table), table, zone):
        pass
    assert all(found[1] == zone.generation for found in ready.signed.values())
    assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire


def test_signed_answers_are_bounded_and_a_forked_fill_makes_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked fill keeps the signed zone's DO answers a fill in the thread keeps, and
    neither makes more than the table's limit (SIGNED_LIMIT)."""
    from secdns.server import ready as ready_module
    from secdns.server.readyfork import fill_forked

    text = (ANSWER_ZONES / "answer.example.zone").read_text().replace("answer.example", "s.test")
    table = _table({"s.test.": _sign(tmp_path, "s.test.", text, "")})
    zone = table.zones["s.test."]
    here = _filled(table)
    forked = ReadyAnswers()
    list(fill_forked(forked, table, zone))
    assert forked.signed == here.signed and len(here.signed) > 10
    monkeypatch.setattr(ready_module, "SIGNED_LIMIT", 5)
    small = _filled(table)
    assert len(small.signed) == 5
    forked = ReadyAnswers()
    forked.signed[b"another zone's"] = here.signed[next(iter(here.signed))]
    list(fill_forked(forked, table, zone))
    assert len(forked.signed) == 5  # the one kept before the fork counts


def test_what_is_not_ready_steps_aside() -> None:
    table = _table({"mix.test.": MIX})
    ready = _filled(table)
    for name, rdtype, shape in [
        ("x.ns1.mix.test.", "A", {}),  # (nothing there: NXDOMAIN anyway)
        ("CI000004.cdn.mix.test.", "A", {"rd": True}),  # another case
        ("www000011.web.mix.test.", "TXT", {"rd": True}),  # a CNAME chain to NODATA
        ("NS1.cust000003.mix.test.", "A", {"rd": True}),  # glue, in another case
        ("cust000003.mix.test.", "DS", {"rd": True}),  # DS at a delegation: the parent's
        ("www.cust000003.mix.test.", "A", {"rd": True}),  # below a delegation point
        ("nx.mix.test.", "A", {"rd": True}),  # NXDOMAIN
        ("ci000004.cdn.mix.test.", "TXT", {"rd": True}),  # NODATA
    ]:
        assert ready.reply(_query(name, rdtype, **shape)) is None, (name, rdtype)
    ready.blocks.clear()  # as if the filler had made none yet
    for name, rdtype, shape in [
        ("_dmarc.corp000010.mix.test.", "TXT", {"edns": 1232}),  # no block made for it
        ("ci000004.cdn.mix.test.", "A", {}),
    ]:
        assert ready.reply(_query(name, rdtype, **shape)) is None, (name, rdtype)
    wire = bytearray(_query("ci000004.cdn.mix.test.", "A", rd=True, edns=1232))
    assert ready.reply(bytes(wire)) is not None
    wire[-5] = 1  # EDNS version 1: BADVERS on the general path
    assert ready.reply(bytes(wire)) is None


def test_rd_clear_answers_of_every_positive_kind_are_ready() -> None:
    """RD clear (a resolver's query) with names in the rdata, an additional section, or a
    question naming what the authority block writes: each answer's own RD-clear reply,
    the general path's bytes with and without EDNS, DO (unsigned) and CD."""
    table = _table({"mix.test.": MIX})
    ready = _filled(table)
    for name, rdtype in [
        ("ns1.mix.test.", "A"),  # a name the authority block writes
        ("corp000010.mix.test.", "MX"),  # an additional section already
        ("_submission._tcp.svc000007.mix.test.", "SRV"),
        ("www000011.web.mix.test.", "CNAME"),
        ("mix.test.", "MX"),  # the apex (the prepared path's own reply)
        ("www000011.web.mix.test.", "A"),  # through a CNAME to a name of the zone
    ]:
        for shape in READY_SHAPES:  # (EDNS 512: no additional section, not kept)
            wire = _query(name, rdtype, **shape)
            mine = ready.reply(wire)
            assert mine is not None or shape.get("edns") == 512, (name, rdtype, shape)
            assert mine is None or mine == front.handle(wire, table, tcp=False).wire, shape


def _ixfr(version: ZoneVersion) -> ZoneVersion:
    return version.apply(
        [
            (
                ["mx1 3600 IN A 192.0.2.25", "ci000004.cdn 3600 IN A 10.38.189.67"],
                ["mx1 3600 IN A 192.0.2.26", "ci000004.cdn 3600 IN A 10.38.189.68"],
            )
        ],
        2024060102,
    )


def test_after_an_ixfr_learnt_answers_equal_a_fresh_fill() -> None:
    table = _table({"mix.test.": MIX})
    zone = table.zones["mix.test."]
    ready = _filled(table)
    assert zone.version is not None
    zone.swap(_ixfr(zone.version))
    prepared = PreparedAnswers(table)
    fresh = _filled(table)
    asked = chained = 0
    for question in list(fresh.entries):
        wire = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + question
        assert ready.reply(wire) is None  # stale: the zone's generation moved on
        made = prepared.answer(wire)
        if made is None:  # through a CNAME: only the fill makes it (the general path else)
            assert fresh.entries[question][3][2:4] == b"\x00\x05", question
            chained += 1
            continue
        assert ready.learn(wire, made[0], made[1])
        clear = b"\x12\x34\x00\x00" + wire[4:]  # a resolver's ask: its own form learnt
        made = prepared.answer(clear)
        if made is not None:
            ready.learn(clear, made[0], made[1])
            assert ready.reply(clear) == front.handle(clear, table, tcp=False).wire
        settled = ready._settled(question, ready.entries[question])  # noqa: SLF001
        filled = fresh.entries[question]
        assert settled[2:4] == filled[2:4]
        if isinstance(settled[4], tuple) and isinstance(filled[4], int) and filled[4]:
            # names in the rdata: learning keeps the answer's own form, the fill (which
            # knows the names are none the block writes) a block key; the same reply
            assert fresh.reply(clear) == ready.reply(clear)
            assert question[-4:-2] not in (b"\x00\x01", b"\x00\x1c", b"\x00\x10")
        else:
            assert settled[4] == filled[4]  # the block key or form too
        assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire
        asked += 1
    assert asked + chained == len(fresh.entries) and chained
    changed = ready.reply(_query("corp000010.mix.test.", "MX", rd=True))
    assert changed is not None and bytes([10, 38, 189, 68]) in changed


BIG_MIX = MIX + "".join(f"host{n:05d}.big IN A 10.9.{n // 256}.{n % 256}\n" for n in range(4000))


def test_the_filler_fills_full_versions_and_leaves_an_ixfr_to_learning() -> None:
    table = _table({"mix.test.": BIG_MIX})  # buckets enough that an IXFR shares most
    zone = table.zones["mix.test."]
    ready = ReadyAnswers()
    filler = ReadyFiller(ready, table)
    filler.min_names = 0  # the test zones are small
    try:
        filler.schedule(zone)
        wire = _query("ci000004.cdn.mix.test.", "A", rd=True)
        _wait(lambda: ready.reply(wire) is not None)
        assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire
        assert zone.version is not None
        version = zone.version
        zone.swap(_ixfr(version))
        filler.schedule(zone)  # an incremental version: not filled again
        time.sleep(0.2)
        assert ready.reply(wire) is None
        removed = [line for line in version.iter_lines() if not line.startswith("host00")]
        zone.swap(ZoneVersion.from_lines(zone.origin, removed))
        filler.schedule(zone)  # a full version (AXFR, a file): filled
        _wait(lambda: ready.reply(wire) is not None)
        assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire
        last = _query("host03999.big.mix.test.", "A", rd=True)
        _wait(lambda: ready.reply(last) is not None)
        gone = _query("host00001.big.mix.test.", "A", rd=True)[12:]
        assert gone not in ready.entries  # the earlier version's answers are dropped
    finally:
        filler.stop()
    assert filler.thread is not None
    filler.thread.join(2.0)
    assert not filler.thread.is_alive()


def test_small_zones_wait_for_release_and_their_rd_clear_answers_come_ready() -> None:
    """A small zone is held while serve loads (a start, a cold start), filled once
    released, and its RD-clear answers come ready with the authority block the filler
    made itself: its own fill under way turned that block away, so every RD-clear ask
    of an A, AAAA or TXT of a zone filled in the thread took the prepared path."""
    table = _table({"mix.test.": MIX})
    zone = table.zones["mix.test."]
    assert zone.version is not None and zone.version.names < 1000  # small
    ready = ReadyAnswers()
    filler = ReadyFiller(ready, table)
    filler.mode = "thread"
    serving = PreparedAnswers(table)  # the UDP threads': given the apex's forms once filled
    filler.serving = serving
    plain = _query("ci000004.cdn.mix.test.", "A", rd=True)
    clear = _query("ci000004.cdn.mix.test.", "A")
    clear_edns = _query("metrics000002.dc1.mix.test.", "AAAA", edns=1232)
    try:
        filler.hold()
        filler.schedule(zone)
        time.sleep(0.2)
        assert filler.thread is None and ready.reply(plain) is None  # held
        filler.release()
        _wait(lambda: ready.reply(clear) is not None)
        for wire in (plain, clear):
            assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire
        assert ready.reply_edns(clear_edns) == front.handle(clear_edns, table, tcp=False).wire
        _wait(lambda: "mix.test." in serving.owners)
        assert serving.owners["mix.test."][0] is zone.version.lines("mix.test.")
        nx = _query("nx.mix.test.", "A", rd=True)  # a zone's NXDOMAIN: from the apex forms
        got = serving.answer(nx)
        assert got is not None and got[0] == front.handle(nx, table, tcp=False).wire
    finally:
        filler.stop()
    # [server] ready_small_zones = false: learnt on their first ask, not filled
    ready = ReadyAnswers()
    filler = ReadyFiller(ready, table)
    filler.mode, filler.small_zones = "thread", False
    filler.schedule(zone)
    assert filler.thread is None and not ready.entries and not ready.filling


def _wait(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_only_the_zones_case_is_learnt() -> None:
    """A client varying the case of its questions cannot grow the table past the zone's
    owners and types: a reply whose name is not a pointer to the question is not kept."""
    table = _table({"mix.test.": MIX})
    ready = ReadyAnswers()
    prepared = PreparedAnswers(table)
    for name in ("ci000004.cdn.mix.test.", "CI000004.cdn.mix.test.", "cI000004.CDN.mix.test."):
        wire = _query(name, "A", rd=True)
        made = prepared.answer(wire)
        assert made is not None
        ready.learn(wire, made[0], made[1])
    assert list(ready.entries) == [_query("ci000004.cdn.mix.test.", "A", rd=True)[12:]]


def test_a_ready_reply_is_the_same_message_dnspython_reads() -> None:
    table = _table({"mix.test.": MIX})
    ready = _filled(table)
    reply = ready.reply(_query("corp000010.mix.test.", "MX", rd=True, edns=1232, cd=True))
    assert reply is not None
    message = dns.message.from_wire(reply)
    assert len(message.answer[0]) == 3 and message.edns == 0


def test_the_filler_keeps_to_its_share_under_sustained_load_and_finishes() -> None:
    """A server restarted into steady traffic still gets its ready answers: while queries
    arrive the filler sleeps after each batch for (1 - share) / share of its CPU, never
    stops for good."""
    import itertools

    from secdns.server import readyfill as ready_module

    table = _table({"mix.test.": BIG_MIX})
    ready = ReadyAnswers()
    filler = ReadyFiller(ready, table)
    filler.min_names = 0  # the test zones are small
    looks = itertools.count()
    filler.answered = lambda: next(looks) * 100  # a hundred queries between any two looks
    try:
        filler.schedule(table.zones["mix.test."])
        last = _query("host03999.big.mix.test.", "A", rd=True)
        _wait(lambda: ready.reply(last) is not None, timeout=20.0)
        _wait(lambda: filler.seconds > 0)
    finally:
        filler.stop()
    ratio = (1 - ready_module.BUSY_SHARE) / ready_module.BUSY_SHARE
    assert filler.paused > 0.5 * ratio * filler.seconds  # it did leave the queries their share


def test_a_removed_zones_answers_are_dropped() -> None:
    table = _table({"mix.test.": MIX, "example.": EXAMPLE})
    ready = _filled(table)
    mix = table.zones["mix.test."]
    before = len(ready.entries)
    assert any(entry[0] is mix for entry in ready.entries.values())
    filler = ReadyFiller(ready, table)
    filler.min_names = 0  # the test zones are small
    try:
        table.remove("mix.test.")
        filler.forget(mix)
        _wait(lambda: not any(entry[0] is mix for entry in ready.entries.values()))
        assert 0 < len(ready.entries) < before  # example.'s stay
    finally:
        filler.stop()


def test_rd_clear_blocks_are_learnt_and_serve_other_names() -> None:
    """Without a fill: the first RD-clear ask of a block key is the prepared path's and its
    authority block is kept; another name with the same key is then ready, byte-equal to
    the general path, in every shape that key serves (EDNS, DO on an unsigned zone, CD),
    and a later version's blocks step aside until learnt again."""
    table = _table({"mix.test.": BIG_MIX})
    zone = table.zones["mix.test."]
    ready = ReadyAnswers()
    prepared = PreparedAnswers(table)

    def ask(wire: bytes) -> bytes:
        mine = ready.reply(wire)
        general = front.handle(wire, table, tcp=False).wire
        if mine is not None:
            assert mine == general
            return mine
        made = prepared.answer(wire)
        assert made is not None and made[0] == general
        ready.learn(wire, made[0], made[1])
        return made[0]

    first, second = "host00001.big.mix.test.", "host00002.big.mix.test."  # same lengths
    for name in (first, second):
        ask(_query(name, "A", rd=True))  # RD set: learnt as a ready entry
    assert ready.reply(_query(first, "A")) is None  # no block yet
    ask(_query(first, "A"))  # the prepared path's answer; its block kept
    assert len(ready.blocks) == 1
    for shape in ({}, {"cd": True}, {"edns": 1232}, {"edns": 4096, "do": True}, {"edns": 512}):
        wire = _query(second, "A", **shape)
        assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire, shape
    reply = dns.message.from_wire(ready.reply(_query(second, "A")) or b"")
    assert [len(reply.answer), len(reply.authority), len(reply.additional)] == [1, 1, 2]
    assert zone.version is not None
    zone.swap(_ixfr(zone.version))
    assert ready.reply(_query(second, "A")) is None  # the zone moved on
    ask(_query(second, "A", rd=True))
    assert ready.reply(_query(second, "A")) is None  # the block is the old version's
    ask(_query(first, "A", rd=True))
    ask(_query(first, "A"))
    wire = _query(second, "A")
    assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire


def test_rd_clear_below_the_apex_and_deeper_are_byte_equal() -> None:
    """The block key: the apex's offset when it is the question's parent (compressed
    against the question), 1 when deeper; questions that are the apex, an NS target or
    below one are not keyed."""
    table = _table({"mix.test.": MIX})
    ready = _filled(table)
    zone = table.zones["mix.test."]
    keys = {}
    for name, rdtype in [
        ("mix.test.", "TXT"),
        ("ns1.mix.test.", "A"),
        ("mx1.mix.test.", "A"),
        ("ci000004.cdn.mix.test.", "A"),
        ("_dmarc.corp000010.mix.test.", "TXT"),
    ]:
        question = _query(name, rdtype, rd=True)[12:]
        entry = ready.entries[question]
        keys[name] = entry[4]
        wire = _query(name, rdtype)
        mine = ready.reply(wire)
        assert mine is None or mine == front.handle(wire, table, tcp=False).wire
    # not keyed: each has its own RD-clear form
    assert isinstance(keys["mix.test."], tuple) and isinstance(keys["ns1.mix.test."], tuple)
    assert keys["mx1.mix.test."] == 13 + len("mx1")
    assert keys["ci000004.cdn.mix.test."] == 1 == keys["_dmarc.corp000010.mix.test."]
    assert all(key[0] is zone for key in ready.blocks)


def test_after_an_ixfr_a_resolvers_asks_alone_bring_the_answers_back() -> None:
    """A version made by an IXFR is not filled: RD-clear asks alone (a resolver's traffic)
    relearn the entry and the block, and the next asks of that shape are ready."""
    table = _table({"mix.test.": BIG_MIX})
    zone = table.zones["mix.test."]
    ready = _filled(table)
    assert zone.version is not None
    zone.swap(_ixfr(zone.version))
    prepared = PreparedAnswers(table)
    names = ["host00007.big.mix.test.", "host00008.big.mix.test.", "ci000004.cdn.mix.test."]
    for name in names:
        wire = _query(name, "A", edns=1232, do=True)
        assert ready.reply(wire) is None  # stale
        made = prepared.answer(wire)
        assert made is not None
        assert ready.learn(wire, made[0], made[1])
    for name in names:
        for shape in ({}, {"edns": 1232, "do": True}, {"rd": True}):
            wire = _query(name, "A", **shape)
            assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire, (name, shape)
    mx = _query("corp000010.mix.test.", "MX", edns=1232)  # not an A/AAAA/TXT answer
    made = prepared.answer(mx)
    assert made is not None and not ready.learn(mx, made[0], made[1])


def test_a_forked_fill_keeps_the_same_answers_and_blocks() -> None:
    """Large zones are filled in a forked child (secdns.server.readyfork): the same
    entries and RD-clear blocks as a fill in the filler thread; a zone that changes
    meanwhile stops it."""
    from secdns.server.readyfork import fill_forked

    table = _table({"mix.test.": BIG_MIX})
    zone = table.zones["mix.test."]
    here = _filled(table)
    forked = ReadyAnswers()
    steps = list(fill_forked(forked, table, zone))
    assert steps and steps[-1] == len(here.entries) + len(here.cuts)
    assert forked.cuts == here.cuts and here.cuts
    assert forked.entries == here.entries
    assert forked.blocks == here.blocks
    for name in ("host00001.big.mix.test.", "ci000004.cdn.mix.test.", "mx1.mix.test."):
        wire = _query(name, "A", edns=1232)
        assert forked.reply(wire) == front.handle(wire, table, tcp=False).wire
    assert zone.version is not None
    removed = [line for line in zone.version.iter_lines() if not line.startswith("host00")]
    zone.swap(ZoneVersion.from_lines(zone.origin, removed))  # a full version: filled again
    steps = list(fill_forked(forked, table, zone))
    assert _query("host00001.big.mix.test.", "A", rd=True)[12:] not in forked.entries  # dropped
    assert len(forked.entries) + len(forked.cuts) == steps[-1]
    # a new version while the child works: what it sends is not kept
    stopped = ReadyAnswers()
    running = fill_forked(stopped, table, zone)
    first = next(running)  # forked, one chunk kept
    assert zone.version is not None
    zone.swap(_ixfr(zone.version))
    assert list(running) == [] and len(stopped.entries) == first


def test_a_zone_of_more_names_than_a_quarter_of_the_table_is_filled(monkeypatch) -> None:
    """A zone whose names times four pass the table's limit is filled, in the thread and
    forked: the check before a fill asked room for 4 entries a name of the whole zone,
    so genzone's 1M-record zone (690,000 names against a 2,000,000-entry table) was
    never filled, and its first asks all took the prepared path (a bench found it)."""
    from secdns.server.readyfork import fill_forked

    table = _table({"mix.test.": BIG_MIX})  # ~4,000 names
    zone = table.zones["mix.test."]
    assert zone.version is not None and 4 * zone.version.names > 12_000
    # the table's limit, the forked fill's own table's too
    monkeypatch.setattr(ReadyAnswers.__init__, "__defaults__", (12_000,))
    here = ReadyAnswers()
    for _made in fill(here, PreparedAnswers(table), table, zone):
        pass
    forked = ReadyAnswers()
    list(fill_forked(forked, table, zone))
    wire = _query("host03999.big.mix.test.", "A", edns=1232)
    for filled in (here, forked):
        assert filled.limit == 12_000 and len(filled.entries) > 4_000
        assert filled.reply(wire) == front.handle(wire, table, tcp=False).wire


def test_the_filler_forks_for_a_large_zone() -> None:
    table = _table({"mix.test.": BIG_MIX})
    ready = ReadyAnswers()
    filler = ReadyFiller(ready, table)
    filler.min_names = 0
    filler.fork_min_names = 1000  # BIG_MIX has ~4,000 names
    try:
        filler.schedule(table.zones["mix.test."])
        last = _query("host03999.big.mix.test.", "A", edns=1232)
        _wait(lambda: ready.reply(last) is not None, timeout=20.0)
        assert ready.reply(last) == front.handle(last, table, tcp=False).wire
        _wait(lambda: filler.child is None)  # reaped
        zone = table.zones["mix.test."]
        assert zone.version is not None
        zone.swap(ZoneVersion.from_lines(zone.origin, list(zone.version.iter_lines())))
        filler.schedule(zone)  # a full version: forked again, and stopped at once
    finally:
        filler.stop()  # kills a child still filling
    assert filler.thread is not None
    filler.thread.join(5.0)
    assert not filler.thread.is_alive() and filler.child is None


def test_a_zone_being_filled_is_not_learnt_and_its_ixfr_version_is() -> None:
    table = _table({"mix.test.": MIX})
    zone = table.zones["mix.test."]
    ready = ReadyAnswers()
    prepared = PreparedAnswers(table)
    ready.filling[zone] = zone.generation  # as ReadyFiller.schedule marks a full version
    for shape in ({"rd": True}, {}):
        wire = _query("ci000004.cdn.mix.test.", "A", **shape)
        made = prepared.answer(wire)
        assert made is not None and not ready.learn(wire, made[0], made[1])
    assert not ready.entries
    assert zone.version is not None
    zone.swap(_ixfr(zone.version))  # an IXFR's version: not filled, learnt
    wire = _query("ci000004.cdn.mix.test.", "A", rd=True)
    made = prepared.answer(wire)
    assert made is not None and ready.learn(wire, made[0], made[1])
    assert ready.reply(wire) == front.handle(wire, table, tcp=False).wire


def test_ready_answers_mode_thread_never_forks_and_off_builds_nothing(monkeypatch) -> None:
    """[server] ready_answers: "thread" fills a large zone in the filler thread (no copied
    pages), "off" builds nothing (answers are made on their first ask)."""
    import os

    table = _table({"mix.test.": BIG_MIX})
    zone = table.zones["mix.test."]
    last = _query("host03999.big.mix.test.", "A", rd=True)

    def no_fork() -> int:
        raise AssertionError("forked in thread mode")

    monkeypatch.setattr(os, "fork", no_fork)
    ready = ReadyAnswers()
    filler = ReadyFiller(ready, table)
    filler.min_names, filler.fork_min_names, filler.mode = 0, 1000, "thread"
    try:
        filler.schedule(zone)
        _wait(lambda: ready.reply(last) is not None, timeout=20.0)
        assert ready.reply(last) == front.handle(last, table, tcp=False).wire
    finally:
        filler.stop()
    ready = ReadyAnswers()
    filler = ReadyFiller(ready, table)
    filler.min_names, filler.mode = 0, "off"
    filler.schedule(zone)
    assert filler.thread is None and not ready.entries and not ready.filling


def test_ready_answers_is_read_from_the_config() -> None:
    from secdns.config import parse_config
    from secdns.errors import ConfigError

    assert parse_config({"server": {}}).server.ready_answers == "fork"
    for mode in ("fork", "thread", "off"):
        assert parse_config({"server": {"ready_answers": mode}}).server.ready_answers == mode
    with pytest.raises(ConfigError, match=r"server\.ready_answers.*\"fork\", \"thread\""):
        parse_config({"server": {"ready_answers": "eager"}})
    assert parse_config({"server": {}}).server.ready_small_zones is True
    assert parse_config({"server": {"ready_small_zones": False}}).server.ready_small_zones is False
    with pytest.raises(ConfigError, match=r"server\.ready_small_zones.*true or false"):
        parse_config({"server": {"ready_small_zones": "no"}})


TRUNCATED = (
    """\
$ORIGIN big.test.
$TTL 3600
@ IN SOA ns1.big.test. hostmaster.big.test. 1 7200 3600 1209600 3600
@ IN NS ns1.big.test.
@ IN NS ns2.big.test.
ns1 IN A 192.0.2.1
ns1 IN AAAA 2001:db8::1
ns2 IN A 192.0.2.2
ns2 IN AAAA 2001:db8::2
"""
    + "".join(
        f"mail IN MX {n} mx{n:02d}.big.test.\nmx{n:02d} IN A 198.51.100.{n}\n"
        f"mx{n:02d} IN AAAA 2001:db8::{n:x}\n"
        for n in range(1, 7)
    )
    + "".join(f'long IN TXT "{"x" * 200}{n}"\n' for n in range(2))
)


def test_rd_clear_replies_past_512_bytes_step_aside_without_edns() -> None:
    """An RD-clear reply that fits 1232 bytes but not 512: with EDNS the ready bytes, without
    it the general path (which truncates); DO on an unsigned zone and CD as asked."""
    table = _table({"big.test.": TRUNCATED})
    ready = _filled(table)
    for name, rdtype in [("mail.big.test.", "MX"), ("long.big.test.", "TXT")]:
        plain = _query(name, rdtype)
        general = front.handle(plain, table, tcp=False).wire
        assert general is not None
        mine = ready.reply(plain)
        assert mine is None or mine == general, (name, rdtype)
        if len(general) > 500 or general[2] & 0x02:
            assert mine is None  # truncated on the general path
        for shape in ({"edns": 1232}, {"edns": 1232, "do": True, "cd": True}, {"edns": 512}):
            wire = _query(name, rdtype, **shape)
            mine = ready.reply(wire)
            assert mine is None or mine == front.handle(wire, table, tcp=False).wire, shape
        wire = _query(name, rdtype, edns=1232, do=True)
        assert ready.reply(wire) is not None, name  # a resolver's query: ready
    assert _same_as_general(table, ready) > 0


def test_referrals_at_delegation_points_are_ready() -> None:
    """The referral at a delegation point serves every question of its name (RD set or
    clear, EDNS or not, DO on an unsigned zone, CD) but DS and the glue's own types, and
    steps aside once the zone changes."""
    table = _table({"mix.test.": MIX + "cust000012 IN NS ns.elsewhere.net.\n"})
    ready = _filled(table)
    for name in ("cust000003.mix.test.", "cust000012.mix.test."):
        for rdtype in ("NS", "A", "AAAA", "MX", "TXT", "SOA"):
            for shape in READY_SHAPES:
                wire = _query(name, rdtype, **shape)
                mine = ready.reply(wire)
                assert mine is not None, (name, rdtype, shape)
                assert mine == front.handle(wire, table, tcp=False).wire, (name, rdtype, shape)
                assert not mine[2] & 0x04  # AA clear
        assert ready.reply(_query(name, "DS")) is None
    zone = table.zones["mix.test."]
    assert zone.version is not None
    zone.swap(_ixfr(zone.version))
    assert ready.reply(_query("cust000003.mix.test.", "NS")) is None


def test_referrals_at_the_glue_below_a_delegation_are_ready() -> None:
    """A name below a delegation that the zone holds (its glue) has its referrals ready:
    its own address types each with the glue that answers it first (BIND's
    query_glueanswer), every other type sharing one; a name at the delegation point that
    owns glue too; a name below it the zone does not hold, or below a DNAME, is not.
    Across 10,000 small zones these were 3 of a zone's 19 questions left to the prepared
    path (~30 us each)."""
    extra = "cust000012 IN NS cust000012\ncust000012 IN A 192.0.2.12\n"
    extra += "dn IN DNAME elsewhere.net.\nns.dn IN A 192.0.2.99\n"
    table = _table({"mix.test.": MIX + extra})
    ready = _filled(table)
    for name in ("ns1.cust000003.mix.test.", "ns2.cust000003.mix.test.", "cust000012.mix.test."):
        for rdtype in ("A", "AAAA", "NS", "MX", "TXT"):
            for shape in READY_SHAPES:
                wire = _query(name, rdtype, **shape)
                mine = ready.reply(wire)
                general = front.handle(wire, table, tcp=False).wire
                if rdtype == "AAAA" and name.startswith("cust000012"):
                    assert mine is None or mine == general  # (no AAAA glue there)
                    continue
                assert mine is not None, (name, rdtype, shape)
                assert mine == general, (name, rdtype, shape)
                assert not mine[2] & 0x04  # AA clear
    for name in ("nx.cust000003.mix.test.", "ns.dn.mix.test."):
        assert ready.reply(_query(name, "A")) is None, name
    zone = table.zones["mix.test."]
    assert zone.version is not None
    zone.swap(_ixfr(zone.version))
    assert ready.reply(_query("ns1.cust000003.mix.test.", "A")) is None
    assert _same_as_general(table, _filled(table)) > 0


def test_a_zone_of_many_glue_names_leaves_them_to_the_prepared_path(monkeypatch) -> None:
    from secdns.server import readyfill

    monkeypatch.setattr(readyfill, "GLUE_NAMES_MAX", 2)
    table = _table({"mix.test.": MIX + "ns3.cust000003 IN A 198.51.100.3\n"})
    ready = _filled(table)
    assert ready.reply(_query("ns1.cust000003.mix.test.", "A")) is None
    assert ready.reply(_query("cust000003.mix.test.", "NS")) is not None  # the cut's own


def test_answers_naming_names_share_blocks_unless_the_block_writes_them() -> None:
    """A CNAME or MX answer (names in its rdata) shares the RD-clear block of its key
    unless a name it writes is one the block writes or looks up (an NS target, its
    parent, the apex, the apex's parent): byte-equal either way, through a CNAME too."""
    extra = (
        "a.web IN CNAME host.dc1\n"  # an ordinary target: a block
        "b.web IN CNAME ns1\n"  # an NS target
        "c.web IN CNAME other.test.\n"  # under the apex's parent
        "d.web IN CNAME mix.test.\n"  # the apex
        "e.web IN CNAME x.y.ns2\n"  # below an NS target
        "f.web IN MX 10 mail.elsewhere.net.\n"  # no additional section: a block
        "g.web IN CNAME host.dc1\n"  # through a CNAME to the target's A
        "host.dc1 IN A 10.1.2.3\n"
        "x.y.ns2 IN A 10.1.2.4\n"
    )
    table = _table({"mix.test.": MIX + extra})
    ready = _filled(table)
    for name, rdtype, shared in [
        ("a.web.mix.test.", "CNAME", True),
        ("b.web.mix.test.", "CNAME", False),
        ("c.web.mix.test.", "CNAME", False),
        ("d.web.mix.test.", "CNAME", False),
        ("e.web.mix.test.", "CNAME", True),
        ("f.web.mix.test.", "MX", True),
        ("g.web.mix.test.", "A", True),
        ("b.web.mix.test.", "A", False),
    ]:
        question = _query(name, rdtype)[12:]
        found = ready.entries.get(question)
        assert found is not None, name
        assert (isinstance(found[4], int) and found[4] > 0) == shared, name
        for shape in READY_SHAPES:
            wire = _query(name, rdtype, **shape)
            mine = ready.reply(wire)
            assert mine is not None or shape.get("edns") == 512, (name, rdtype, shape)
            assert mine is None or mine == front.handle(wire, table, tcp=False).wire, shape
