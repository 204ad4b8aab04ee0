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
which the UDP thread runs); the answer makers (:class:`_OwnerAnswers`,
:func:`_referral`, :func:`_named`) live in :mod:`secdns.server.readymake`, leaving the
walk and the filler thread here.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from secdns.server.denial import index_of
from secdns.server.prepared import PreparedAnswers
from secdns.server.ready import (
    _CLEAR_TYPES,
    _OPT_DO,
    ReadyAnswers,
)
from secdns.server.readymake import (
    _CLEAR_HEAD_EDNS,
    _OPT_QUERY,
    _named,
    _OwnerAnswers,
    _referral,
)

if TYPE_CHECKING:
    from secdns.config.values import ServerConfig
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


BATCH_OWNERS = 256
"""Owners :func:`fill` makes the answers of between two turns (the filler's checks)."""


def fill(
    ready: ReadyAnswers, prepared: PreparedAnswers, table: ZoneTable, zone: ServedZone
) -> Iterator[int]:
    """Make every positive answer of ``zone``'s current version ready (see the module
    docstring), with its RD-clear form where the shared authority block cannot serve
    it, then the referrals at each delegation point and at each name below one (glue,
    up to :data:`GLUE_NAMES_MAX` names);
    yields the number made after each batch of owners and stops early when the zone
    changes or the table is full.  Names below a DNAME, and names of a child zone served
    here, are left out (synthesis; the child's own answers)."""
    version = zone.version
    if version is None or zone.expired:
        return
    if len(ready.entries) + 4 * min(version.names, BATCH_OWNERS) >= ready.limit:
        # full: not even a batch fits (a small zone's fill checks no batch: it would
        # clear the table).  Not 4 a name of the whole zone: a zone of more than a
        # quarter of the table's limit (a 1M-record zone's 690,000 names; a forked
        # fill's table is its own and as large) was never filled, and it fits
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
    signed = index_of(version).secure  # DO answers too, with their signatures
    made = 0
    batch = 0
    below: list[str] = []  # names below a delegation that the zone holds
    for key, (lines, _below) in version.iter_entries():
        if not lines or key in delegations:
            continue
        batch += 1
        if batch >= BATCH_OWNERS:
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
        if children and any(key == c or key.endswith("." + c) for c in children):
            continue
        if occluded:
            if walk in delegations:
                below.append(key)  # glue: its referrals, after the delegations'
            continue
        for question, counts, tail, item in owner_answers(key, lines):
            if signed and ready.signed_room():
                _signed(ready, prepared, zone, generation, question)
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
                        # (before: turned away by the zone's own fill under way, so
                        # a zone filled in this thread had no block for these answers
                        # and their RD-clear asks took the prepared path)
                        ready.learn_block(query, got[0], zone, filler=True)
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
    if len(below) > GLUE_NAMES_MAX:
        below = []  # (left to the prepared path: see GLUE_NAMES_MAX)
    for key in itertools.chain(delegations, below):
        batch += 1
        if batch >= BATCH_OWNERS:
            batch = 0
            yield made
            if zone.generation != generation or len(ready.cuts) >= ready.limit:
                return
        if key in delegations and _occluded(key, apex, delegations, dnames, children):
            continue  # (for one below, the prepared path declines a DNAME on the way)
        made += _referral(ready, prepared, zone, generation, version, key)
    yield made


def _signed(
    ready: ReadyAnswers,
    prepared: PreparedAnswers,
    zone: ServedZone,
    generation: int,
    question: bytes,
) -> None:
    """Make a signed zone's answer to ``question`` asked as a validating resolver asks
    (RD clear, DO, EDNS payload 1232) ready, from the prepared path's reply."""
    query = _CLEAR_HEAD_EDNS + question + _OPT_DO  # (an OPT with DO: the query's as the reply's)
    got = prepared.answer(query)
    if got is None or got[1] is not zone:
        return
    form = ready.signed_form(query, got[0])
    if form is not None:
        ready.put_signed(question, zone, generation, form[0], form[1])


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

GLUE_NAMES_MAX = 1000
"""Names below delegations (glue) a zone version may hold for the fill to make their
referrals ready (~90 us of CPU and ~800 B a name, its address questions included): a
provider's small zones get them (their first asks ~2x faster across 10,000 zones), a
zone of tens of thousands of delegations leaves them to the prepared path (genzone's
1M-record zone holds 114,268 glue names under 57,134 delegations: +10 s of fill CPU
and +88 MiB, for questions a resolver seldom asks the parent)."""
FORK_MIN_NAMES = 20_000
"""Zones with at least this many names are filled in a forked child
(:mod:`secdns.server.readyfork`); smaller ones in the filler thread."""

FILL_MIN_NAMES = 1000
"""Zones with fewer names are small: they are filled too, but not while a start or a
cold start loads zones (:meth:`ReadyFiller.hold`), whose CPU they would share (a
fill costs ~1.2 ms a 20-record zone: ~12 s of CPU at 10,000 zones, which made a cold
start ~75% longer when it ran beside it), and their lines are logged at debug level,
with one line for all of them once the filler is idle.  Filled, a first ask across
10,000 such zones costs ~3 us in-process instead of ~40 (RD set; RD clear ~6 against
~67), for ~26 KiB of RSS a zone (10,000 file zones: 152 -> 408 MiB once idle, the glue
referrals 37 MiB of it; bench/zones_first_ask_bench.py).  ``[server] ready_small_zones
= false``: not filled (:attr:`ReadyFiller.small_zones`), learnt on their first ask."""

BATCH_SECONDS = 0.005
"""CPU seconds of small zones' fills between two looks at the queries answered (the
busy check a large zone's fill makes after each of its batches)."""
QUIET_WAIT_MAX = 30.0
"""Seconds at most that released small zones wait for a quiet server
(:meth:`ReadyFiller._quiet`)."""
OTHERS_BUSY = 0.1
"""Small zones' fills also count the server as busy while its other threads use more
than this share of a CPU (the event loop's SOA checks and store writes at a start: with
the fill beside them at full speed, a 10,000-zone restart took 4.2 s instead of 2.7 and
the cold start's zone files were all written after 20 s instead of 7.6; yielding, 3.1 s;
with the quiet wait before the first small zone too (:data:`QUIET_WAIT_MAX`), 2.6 s
against 2.64 s without any fill)."""


def _forget_stale(ready: ReadyAnswers, zone: ServedZone) -> None:
    """Drop ``zone``'s answers of earlier generations (names a new full version may no
    longer have), so the table holds about one version of each zone; a removed zone's
    (its generation has moved on) all go."""
    generation = zone.generation
    questions = ready.by_zone.get(zone, set())
    entries = ready.entries
    signed = ready.signed
    for question in list(questions):  # one C call: a UDP thread may learn meanwhile
        entry = entries.get(question)
        if entry is not None and entry[0] is zone and entry[1] == generation:
            continue
        if entry is not None and entry[0] is zone:
            entries.pop(question, None)
        found = signed.get(question)
        if found is not None and found[0] is zone and found[1] != generation:
            signed.pop(question, None)  # (each has an entry: see ReadyAnswers.signed)
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
        self.serving: PreparedAnswers | None = None  # the UDP threads' (adopt_apex)
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
        self.min_names = FILL_MIN_NAMES  # fewer names: a small zone (held while loading)
        self.fork_min_names = FORK_MIN_NAMES
        self.child: int | None = None  # the pid of a forked fill under way
        self.mode = "fork"  # [server] ready_answers: "fork", "thread" or "off"
        self.small_zones = True  # [server] ready_small_zones: fill zones under min_names
        self.held: dict[str, ServedZone] | None = None  # small zones waiting (hold())
        self.gate = False  # released: wait for a quiet server before the first (_quiet)
        self.small = [0, 0, 0.0]  # small zones filled since the last line: zones, answers, CPU
        self._answered = 0  # the busy check's marks: queries answered, thread CPU,
        self._batch = 0.0  # the process's CPU and the time
        self._process = 0.0
        self._wall = 0.0

    def schedule(self, zone: ServedZone) -> None:
        """Fill ``zone``'s current version unless it is an incremental change of the last
        one filled."""
        version = zone.version
        if version is None or self.mode == "off":
            return
        small = self._small(version)
        if small and not self.small_zones:
            return  # learnt on their first ask
        last = self.filled.get(zone.key)
        if last is not None and _incremental(last, version):
            return
        self.filled[zone.key] = version
        self.ready.filling[zone] = zone.generation  # its first asks: not learnt meanwhile
        if small and self.held is not None:
            self.held[zone.key] = zone
            return
        self.pending[zone.key] = zone
        self._start()
        self.wake.set()

    def configure(self, server: ServerConfig) -> None:
        """What the filler reads of ``[server]`` (at the start and on each reload: for the
        versions made from then on)."""
        self.mode = server.ready_answers
        self.small_zones = server.ready_small_zones

    def hold(self) -> None:
        """Keep small zones' fills back until :meth:`release` (a start, a cold start)."""
        if self.held is None:
            self.held = {}

    def release(self) -> None:
        """Fill the small zones held back (the loads they waited for are over), once
        the server is quiet (:meth:`_quiet`)."""
        held, self.held = self.held, None
        if held:
            self.gate = True
            self.pending.update(held)
            self._start()
            self.wake.set()

    def _quiet(self) -> None:
        """Wait until the server's other threads have used less than :data:`OTHERS_BUSY`
        of a CPU for a quarter of a second, :data:`QUIET_WAIT_MAX` at most: a restart's
        first checks and a cold start's store writes come first."""
        deadline = time.monotonic() + QUIET_WAIT_MAX
        while not self.stopping and time.monotonic() < deadline:
            self._mark()
            time.sleep(0.25)
            if not self._others_busy(time.thread_time()):
                break
        self._mark()

    def forget(self, zone: ServedZone) -> None:
        """Drop a removed zone's answers (in the filler's thread: it walks the table), so
        they do not keep its versions alive; its generation must have moved on."""
        self.pending.pop(zone.key, None)
        if self.held is not None:
            self.held.pop(zone.key, None)
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
            self._mark()  # (the busy check counts from here, not from the last fill)
            while self.pending and not self.stopping:
                _key, zone = self.pending.popitem()
                if self.gate and self._small(zone.version):
                    self.gate = False
                    self._quiet()
                self._fill(zone)
            zones, answers, spent = self.small
            if zones and not self.stopping:
                self.small = [0, 0, 0.0]
                log.info(
                    "ready: %d small zones, %d answers made in %.2f s CPU", zones, answers, spent
                )

    def _pace(self, every: bool) -> None:
        """Queries first: if more than :data:`BUSY_QUERIES` were answered since the last
        look, sleep so the filler keeps to :data:`BUSY_SHARE` of the time.  ``every``:
        look now (after a large zone's batch), else only once :data:`BATCH_SECONDS` of
        CPU have been spent since the last look (after a small zone)."""
        now = time.thread_time()
        if not every and now - self._batch < BATCH_SECONDS:
            return
        busy = self.answered() - self._answered > BUSY_QUERIES
        if not every:  # (small zones: the other threads' CPU too)
            busy = busy or self._others_busy(now)
        if busy:  # a bounded share
            pause = min((now - self._batch) * (1 - BUSY_SHARE) / BUSY_SHARE, BUSY_PAUSE_MAX)
            self.paused += pause
            time.sleep(pause)
        self._mark()

    def _others_busy(self, now: float) -> bool:
        """Whether the server's other threads used more than :data:`OTHERS_BUSY` of a CPU
        since the last :meth:`_mark` (``now``: this thread's CPU time)."""
        others = time.process_time() - self._process - (now - self._batch)
        return others > OTHERS_BUSY * (time.monotonic() - self._wall)

    def _small(self, version: ZoneVersion | None) -> bool:
        return version is not None and version.names < self.min_names

    def _mark(self) -> None:
        self._answered = self.answered()
        self._batch = time.thread_time()
        self._process = time.process_time()
        self._wall = time.monotonic()

    def _fill(self, zone: ServedZone) -> None:
        """Fill one zone, a batch at a time; while queries arrive, sleep after each batch
        so the filler keeps to :data:`BUSY_SHARE` of the time."""
        start = time.thread_time()
        made = 0
        version = zone.version
        small = self._small(version)
        if not small:
            self._mark()
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
                self._pace(not small)
        except Exception:  # never let one zone stop the filler
            self.ready.filling.pop(zone, None)  # learnt on first ask instead
            log.exception("ready: filling zone=%s failed", zone.key)
        finally:
            steps.close()  # type: ignore[attr-defined]  # generators: a forked child stops
        if version is not None and not self.stopping:
            _warm_denial(version)
            if small and self.serving is not None and zone.version is version:
                # the apex's forms, made here: a small zone's one question left to the
                # prepared path (its NXDOMAIN, with the apex SOA) would make them again
                self.serving.adopt(version, version.origin_key, self.prepared)
        spent = time.thread_time() - start
        self.seconds += spent
        if small:  # (one line for all of them once idle: run())
            self.small[0] += 1
            self.small[1] += made
            self.small[2] += spent
            log.debug("ready: zone=%s %d answers made in %.4f s CPU", zone.key, made, spent)
            self._pace(False)
        else:
            log.info("ready: zone=%s %d answers made in %.2f s CPU", zone.key, made, spent)


def _warm_denial(version: ZoneVersion) -> None:
    """Build a signed zone version's denial index (its NSEC owners in order, or its NSEC3
    chain) here, not on its first DO negative answer, which would wait for a walk of
    every owner (seconds at a million; an IXFR's version is handed it: ZoneVersion.carried)."""
    try:
        index = index_of(version)
        if not index.secure:
            return
        if index.uses_nsec3:
            index.nsec3_chain()
        else:
            index.nsec_key_at_or_before(())
    except Exception:  # never let one zone stop the filler (its first ask builds it)
        log.exception("ready: the denial index of zone=%s failed", version.origin_key)


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
