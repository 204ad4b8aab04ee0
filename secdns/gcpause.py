"""The cyclic garbage collector paused around the work that makes millions of objects
with no cycles (a zone's records as they arrive and as they are written, verify's
checks), shared by every task and thread of the process.

Kept apart from :mod:`secdns.engine`, which pauses it around each transfer: the
store writes (:mod:`secdns.copies`), verify and serve's cold start pause it too.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

GC_PAUSE_LIMIT = 60.0
"""Seconds the collector may stay paused by overlapping :func:`gc_paused` blocks before
one young-generation collection runs anyway, as a block ends."""
GC_PAUSE_FAILURES = 256
"""Blocks ended by an exception (a failed transfer: its traceback holds reference
cycles) after which such a collection runs sooner."""
_pause_lock = threading.Lock()
_pauses = 0  # gc_paused blocks open now, in every task and thread
_resume = False  # whether the collector was on when the first of them began
_paused_at = 0.0
_failures = 0  # blocks ended by an exception since the last collection


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (it is re-enabled after, if it was on).

    A zone's records form no cycles, and the collector's passes over a million of
    them cost a third of the decoding while they arrive, and again (a full pass over
    every row, as it untracks them) while the zone is sorted and written: both the
    receive (:func:`secdns.engine.transfer`) and the write (:mod:`secdns.copies`) run without it.

    Overlapping blocks (serve's concurrent transfers, a write in a thread) keep it
    paused until the last one ends (before, the first to end turned it on again
    while others ran).  A pause kept up by overlapping blocks for longer than
    :data:`GC_PAUSE_LIMIT`, or through :data:`GC_PAUSE_FAILURES` failed blocks, runs
    one young collection as a block ends, so cycles cannot pile up.
    """
    global _pauses, _resume, _paused_at, _failures
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            _paused_at = time.monotonic()
            _failures = 0
            gc.disable()
        _pauses += 1
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        collect = False
        with _pause_lock:
            _pauses -= 1
            _failures += failed
            if _pauses == 0:
                if _resume:
                    gc.enable()
            elif _resume and (
                _failures >= GC_PAUSE_FAILURES or time.monotonic() - _paused_at > GC_PAUSE_LIMIT
            ):
                _paused_at = time.monotonic()
                _failures = 0
                collect = True
        if collect:
            gc.collect(0)
