"""Store writes of every served zone, committed in groups.

Each store commit of a zone (a transfer: journal, zone file, state) costs
several fsyncs, about 4 ms each here; 10,000 zones transferred at start would
wait ~150 s for their disk writes one after the other, and tie up the thread
pool the transfers' own work needs.  :class:`StoreQueue` runs the zones'
writes in one thread of its own, a batch at a time inside
:func:`secdns.atomicfile.group_commit`: one round of fsyncs per batch.  A zone has
at most one write in flight (its runtime waits for the last), so a batch never
holds two writes of one zone and never reads a file it has not yet renamed.
With ``[server] store_sync = "none"`` a batch is only renamed into place, unsynced.

At a cold start serve holds the small zones' writes (:meth:`StoreQueue.hold`) until
every zone has been tried once, as Knot queues its zone files' flushes behind its
transfers: 10,000 zones' writes made alongside the transfers slowed them by ~2 s,
each of the writer's system calls handing the interpreter lock to and from the
transfers.  A crash meanwhile loses only copies that the next start transfers again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

from secdns.atomicfile import group_commit

log = logging.getLogger(__name__)

BATCH = 256
"""Writes committed together at most (the rest wait for the next round)."""
HOLD_JOBS = 20_000
"""Writes held at most while :meth:`StoreQueue.hold` holds them (then they go)."""

Job = tuple[Callable[[], object], asyncio.Future[object]]


class StoreQueue:
    """Run blocking store writes in one thread, ``BATCH`` at a time, durable together."""

    def __init__(self, batch: int = BATCH, *, sync: bool = True) -> None:
        self.batch = batch
        self.sync = sync  # [server] store_sync: fsync each batch (True) or only rename it
        self.jobs: list[Job] = []
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store")
        self._worker: asyncio.Task[None] | None = None
        self.commits = 0  # rounds of fsyncs (a counter for tests and logs)
        self.written = 0
        self.held: list[Job] | None = None  # writes held back (hold() until release())

    def hold(self) -> None:
        """Keep the writes that may wait (``run(..., may_wait=True)``) queued without
        writing them, until :meth:`release` or until :data:`HOLD_JOBS` wait."""
        if self.held is None:
            self.held = []

    def release(self) -> None:
        """Write what :meth:`hold` held back, and the writes to come as they come."""
        held, self.held = self.held, None
        if held:
            self._queue(held)

    async def run(self, work: Callable[[], object], *, may_wait: bool = False) -> object:
        """Run ``work`` in the store thread; its result once it is durable.
        ``may_wait``: it may be held back while :meth:`hold` holds (a small write)."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if may_wait and self.held is not None:
            self.held.append((work, future))
            if len(self.held) >= HOLD_JOBS:
                held, self.held = self.held, []
                self._queue(held)
        else:
            self._queue([(work, future)])
        return await future

    def _queue(self, jobs: list[Job]) -> None:
        self.jobs.extend(jobs)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.jobs:
            batch, self.jobs = self.jobs[: self.batch], self.jobs[self.batch :]
            try:
                outcomes = await loop.run_in_executor(self.executor, _commit, batch, self.sync)
            except Exception as err:  # the commit itself failed: every write in it did
                outcomes = [err] * len(batch)
            self.commits += 1
            self.written += len(batch)
            for (_work, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def close(self) -> None:
        self.executor.shutdown(wait=False)


def _commit(batch: list[Job], sync: bool) -> list[object]:
    outcomes: list[object] = []
    with group_commit(sync):
        for work, _future in batch:
            try:
                outcomes.append(work())
            except Exception as err:  # handed to the zone that asked (it logs and rewrites)
                outcomes.append(err)
    return outcomes
