"""A forked child's messages to its parent through a pipe, and the child's first steps.

serve forks helpers that hand back what they made as :mod:`marshal` data: the pieces
of a large master file (:mod:`secdns.server.loadsplit`) and the ready answers of a
large zone (:mod:`secdns.server.readyfork`).  Both use these: a message is an 8-byte
length and the marshal bytes; the parent reads one within a deadline and gets None
when the child sent nothing readable in time, closed the pipe, or died, so the
caller falls back to doing the work itself.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import time
from typing import Any


def enter_child(keep: int | None = None) -> None:
    """The first steps of a forked child: default SIGINT/SIGTERM/SIGHUP (the parent's
    handlers are its event loop's) and no wakeup fd; with ``keep``, every other
    inherited descriptor above stderr closed (the server's sockets: a port stays the
    parent's alone)."""
    if keep is not None:
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)  # the parent's event loop's, not ours


def send(fd: int, message: Any) -> None:
    """Write one message (marshal data) to ``fd``, whole."""
    payload = marshal.dumps(message)
    view = memoryview(len(payload).to_bytes(8, "little") + payload)
    while view:
        view = view[os.write(fd, view) :]


def poller_of(fd: int) -> select.poll:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return poller


def receive(fd: int, poller: select.poll, deadline: float) -> Any:
    """The next message on ``fd``, or None if none came whole by ``deadline`` (a
    monotonic time), the pipe was closed or failed, or it is not marshal data."""
    head = _read_exactly(fd, poller, 8, deadline)
    if head is None:
        return None
    body = _read_exactly(fd, poller, int.from_bytes(head, "little"), deadline)
    if body is None:
        return None
    try:
        return marshal.loads(body)
    except (EOFError, ValueError, TypeError):  # (not what a child writes: decline)
        return None


def _read_exactly(fd: int, poller: select.poll, size: int, deadline: float) -> bytearray | None:
    buffer = bytearray(size)
    got = 0
    with memoryview(buffer) as view:
        while got < size:
            left = deadline - time.monotonic()
            try:
                if left <= 0 or not poller.poll(left * 1000):
                    return None
                count = os.readv(fd, [view[got:]])
            except OSError:
                return None
            if not count:
                return None
            got += count
    return buffer
