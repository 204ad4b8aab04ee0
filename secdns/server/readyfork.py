"""Ready answers built in a forked child: the builder's work off the answering core.

:func:`~secdns.server.readyfill.fill` costs ~22 us of interpreted work per answer (~15 s
CPU on a 1M-record zone).  In the server's own process it shares the interpreter
(and its lock) with the UDP threads, so under load it either stalls (the answers
never come) or slows every query down while it runs.  Here the same ``fill`` runs in
a child forked from the filler thread (it sees the zone version as it is: forked
memory), at nice 10 so that queries keep their core, and hands its answers back
through a pipe in :mod:`marshal` chunks; the parent only keeps them (~1-2 us an
answer).  The answers are the same bytes (tests/test_ready.py compares both ways).

A chunk is kept only while the zone's generation is the one the child was forked
from; when it moves on (a new version) the child is killed.  A child that dies or
sends nothing for :data:`STALL_SECONDS` is killed too, and the answers it did not
send are learnt on their first ask as before.  As in :mod:`secdns.server.loadsplit`,
the child closes the descriptors it inherited (the server's sockets), resets its
signals and leaves through ``os._exit``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from secdns.server import forkpipe
from secdns.server.prepared import PreparedAnswers
from secdns.server.ready import Form, ReadyAnswers
from secdns.server.readyfill import FILL_OWNERS, _forget_stale, fill
from secdns.server.readymake import _EXCLUDED

if TYPE_CHECKING:
    from secdns.server.zone import ServedZone, ZoneTable

STALL_SECONDS = 60.0
_Cut = tuple[bytes, bytes, bytes, frozenset[int]]  # qname, counts, tail, QTYPEs left out
_Answer = tuple[bytes, bytes, bytes, "int | Form"]  # question, counts, tail, RD-clear key/form
_Signed = tuple[bytes, bytes, bytes]  # question, counts, tail of a signed zone's DO answer
_Chunk = tuple[list[_Answer], list[tuple[int, int, bytes, bytes]], list[_Cut], list[_Signed]]


class _Shipping(ReadyAnswers):
    """The child's table: what :func:`fill` puts is kept until shipped, then dropped."""

    def __init__(self, signed_kept: int = 0) -> None:
        super().__init__()
        self.out: list[_Answer] = []
        self.cuts_out: list[_Cut] = []
        self.signed_out: list[_Signed] = []
        self.signed_kept = signed_kept  # the parent's at the fork, and those shipped since
        self.shipped_blocks: set[tuple[int, int]] = set()

    def put(
        self,
        question: bytes,
        zone: ServedZone,
        generation: int,
        counts: bytes,
        tail: bytes,
        clear: int | Form | None = None,
    ) -> int | Form:
        clear = super().put(question, zone, generation, counts, tail, clear)
        self.out.append((question, counts, tail, clear))
        return clear

    def put_cut(
        self,
        qname: bytes,
        zone: ServedZone,
        generation: int,
        counts: bytes,
        tail: bytes,
        excluded: frozenset[int],
    ) -> None:
        self.cuts_out.append((qname, counts, tail, excluded))

    def put_signed(
        self, question: bytes, zone: ServedZone, generation: int, counts: bytes, tail: bytes
    ) -> None:
        self.signed_out.append((question, counts, tail))

    def signed_room(self) -> bool:
        return self.signed_kept + len(self.signed_out) < self.signed_limit

    def chunk(self) -> _Chunk:
        """The answers and blocks made since the last chunk (one message to the parent)."""
        blocks = [
            (key[1], key[2], block[1], block[2])
            for key, block in self.blocks.items()
            if (key[1], key[2]) not in self.shipped_blocks
        ]
        self.shipped_blocks.update((clear, start) for clear, start, _c, _b in blocks)
        payload = (self.out, blocks, self.cuts_out, self.signed_out)
        self.signed_kept += len(self.signed_out)
        self.out = []
        self.cuts_out = []
        self.signed_out = []
        self.entries.clear()  # shipped (fill's learn_block reads only the latest entry)
        self.by_zone.clear()
        return payload


def fill_forked(
    ready: ReadyAnswers,
    table: ZoneTable,
    zone: ServedZone,
    forked: Callable[[int | None], None] | None = None,
) -> Iterator[int]:
    """:func:`~secdns.server.readyfill.fill` of ``zone`` run in a forked child; yields the
    number of answers kept after each chunk (the filler's turns).  ``forked`` is told
    the child's pid, then None once it is gone (so that a stopping server can kill it)."""
    generation = zone.generation
    read_end, write_end = os.pipe()
    signed_kept = len(ready.signed)
    pid = os.fork()
    if not pid:
        _child(table, zone, write_end, read_end, signed_kept)
    os.close(write_end)
    if forked is not None:
        forked(pid)
    made = 0
    _forget_stale(ready, zone)  # (fill does it in the child's table: here, in ours)
    poller = forkpipe.poller_of(read_end)
    try:
        while True:  # until the child's end (the pipe closed), a stall or a new version
            chunk = forkpipe.receive(read_end, poller, time.monotonic() + STALL_SECONDS)
            if chunk is None or zone.generation != generation:
                return
            answers, blocks, cuts, signed = chunk
            put = ready.put
            for question, counts, tail, clear in answers:
                put(question, zone, generation, counts, tail, clear)
            for clear, start, counts, block in blocks:
                ready.put_block(zone, clear, start, generation, counts, block)
            for qname, counts, tail, excluded in cuts:
                shared = _EXCLUDED.setdefault(excluded, excluded)  # one object per set
                ready.put_cut(qname, zone, generation, counts, tail, shared)
            for question, counts, tail in signed:
                ready.put_signed(question, zone, generation, counts, tail)
            made += len(answers) + len(cuts)
            yield made
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        if forked is not None:
            forked(None)


def _child(
    table: ZoneTable, zone: ServedZone, write_end: int, read_end: int, signed_kept: int
) -> None:
    """The child: fill a table of its own, shipping each turn's answers; never returns."""
    status = 1
    try:
        os.close(read_end)
        forkpipe.enter_child(keep=write_end)
        os.nice(10)
        # No collector in the child: it makes no cycles worth finding and exits soon, while
        # each full pass walks the whole inherited heap (the zone): with it on, a 1M-record
        # zone's fill cost ~27.5 s CPU instead of ~21.5 (bench/first_ask_bench.py's zone)
        gc.disable()
        shipping = _Shipping(signed_kept)
        for _made in fill(shipping, PreparedAnswers(table, FILL_OWNERS), table, zone):
            if len(shipping.out) + len(shipping.cuts_out) + len(shipping.signed_out) >= 2048:
                forkpipe.send(write_end, shipping.chunk())
        forkpipe.send(write_end, shipping.chunk())
        status = 0
    finally:
        os._exit(status)
