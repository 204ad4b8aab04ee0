"""Reading a large master file in several processes at once (``serve``'s start-up).

Reading is most of the time from the start of ``serve`` to its first answer for a
large ``file`` zone (issue 12: ~6 µs a record in one process), and nothing in one
record's reading depends on another record except the reader's state: the origin,
the zone's class, BIND's TTL state (:meth:`secdns.masterfile.reader.Reader.state`)
and the current owner.  So the file is cut into pieces at lines that name their
owner (not blank, not a directive, not a comment or a parenthesis), and each piece
is read by its own process, forked after the head of the file (its directives and
SOA) has been read, with the reader in the state the head left it in.

This is a guess, and it is checked, not trusted: the parent reads the first piece
and every child reads its own; each piece but the last must end in the state it
started in (no ``$ORIGIN``, ``$TTL``, class or default-TTL change inside, no
parenthesis still open), and every piece must read without an error. Then each piece
started where the file read in one pass would have been, and its records are the
ones the one-pass reader emits there. If anything does not hold (an error anywhere,
a state change, a child that fails or does not answer in time), :func:`read_split`
returns None and the caller reads the whole file in one pass: errors are therefore
always the one-pass reader's, word for word and line for line.

A child hands back its :class:`~secdns.server.load.OwnerGroups` (each owner's
canonical lines, the owners it saw out of order, the types' canonical positions)
through a pipe in :mod:`marshal` form (the cheapest to rebuild: ~0.6 µs a record);
the parent merges them in file order, so the groups, their order and the owners to
sort afterwards are what one pass makes (an owner in two pieces is sorted; when its
lines were already in order, sorting leaves them as they are).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import time
from pathlib import Path

import dns.name

from secdns.errors import ZoneFileError
from secdns.masterfile import STDIN
from secdns.masterfile.reader import Reader
from secdns.server.load import OwnerGroups

MIN_SPLIT_CHARS = 2 << 20
"""Files shorter than this are read in one process (a fork costs more than it saves)."""
MAX_PROCESSES = 8
HEAD_CHARS = 1 << 16
"""The head read before forking ends at the first owner line after this many characters."""
PARENT_SHARE = 0.85
"""The parent's piece against a child's: it also rebuilds and merges what children send."""
MIN_WAIT = 60.0
"""Seconds a child may take beyond the parent's own piece (times 4) before it is given up."""
_NOT_OWNER_START = frozenset(' \t\r\n\f\v;$()"')


def processes_available() -> int:
    """The CPUs this process may run on, at most :data:`MAX_PROCESSES`."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    return max(1, min(count, MAX_PROCESSES))


def owner_line_at(text: str, at: int) -> int | None:
    """The start of the first line beginning at or after *at* (after a newline) whose
    first character starts an owner name, or None if there is none."""
    newline = text.find("\n", max(at - 1, 0))
    while newline >= 0:
        start = newline + 1
        if start >= len(text):
            return None
        if text[start] not in _NOT_OWNER_START:
            return start
        newline = text.find("\n", start)
    return None


def split_points(
    text: str, processes: int, head_chars: int = HEAD_CHARS, share: float = PARENT_SHARE
) -> list[int] | None:
    """``[head end, end of the parent's piece, end of child 1's, ..., len(text)]``, or
    None if the text cannot be cut so (too few owner lines)."""
    head = owner_line_at(text, head_chars)
    if head is None or processes < 2:
        return None
    rest = len(text) - head
    child = rest / (processes - 1 + share)
    points = [head]
    at = head + share * child
    for _ in range(processes - 1):
        start = owner_line_at(text, int(at))
        if start is None or start <= points[-1]:
            return None
        points.append(start)
        at += child
    points.append(len(text))
    return points


def read_split(
    text: str,
    origin: dns.name.Name,
    filename: str,
    processes: int,
    *,
    points: list[int] | None = None,
) -> OwnerGroups | None:
    """The owner groups of master-file *text* read in *processes* processes, or None if
    it cannot be read so (then read it in one pass: see the module docstring).  The
    caller pauses the cyclic garbage collector (the children inherit that).  *points*:
    where to cut instead of :func:`split_points`' cuts (tests cut everywhere)."""
    if points is None:
        points = split_points(text, processes)
    if points is None:
        return None
    groups = OwnerGroups(origin)
    base = Path(filename).parent if filename != STDIN else None
    reader = Reader(origin, origin, None, base, None, groups.emit)
    if filename != STDIN:
        reader.stack.append(os.path.realpath(filename))
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    try:
        reader.read(text[: points[0]], filename, None)
        state = reader.state()
        for start, end in zip(points[1:-1], points[2:], strict=True):
            last = end == points[-1]  # (what the last piece leaves, nothing reads)
            children.append(
                _fork_piece(reader, text, start, end, filename, None if last else state)
            )
        started = time.monotonic()
        reader.read(text[points[0] : points[1]], filename, None)
        if reader.state() != state:
            return None
        wait = max(MIN_WAIT, 4 * (time.monotonic() - started))
        while children:
            pid, fd = children.pop(0)
            payload = _collect(pid, fd, time.monotonic() + wait)
            if payload is None:
                return None
            _merge(groups, payload)
        return groups
    except ZoneFileError:
        return None
    finally:
        for pid, fd in children:
            _abandon(pid, fd)
        reader.rdata.fast.clear()  # (a cycle: see read_master)


Payload = tuple[dict[str, list[str]], list[str], dict[str, int]]


def _fork_piece(
    reader: Reader,
    text: str,
    start: int,
    end: int,
    filename: str,
    state: tuple[object, ...] | None,
) -> tuple[int, int]:
    """Fork a child that reads ``text[start:end]`` on from *reader*'s state and writes
    its groups to a pipe, if it ends in *state* (None: in any state); the child's pid
    and the pipe's read end."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    # the child: never returns into the parent's code
    status = 1
    try:
        os.close(read_end)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)  # the parent's event loop's, not ours
        groups = OwnerGroups(reader.zone_origin)
        reader.emit = groups.emit
        try:
            reader.read(text[start:end], filename, None)
            ok = state is None or reader.state() == state
        except ZoneFileError:
            ok = False
        if ok:
            payload = marshal.dumps((groups.groups, list(groups.unordered), groups.type_orders))
        else:
            payload = b""
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view) :]
        status = 0
    finally:
        os._exit(status)


def _collect(pid: int, fd: int, deadline: float) -> Payload | None:
    """A child's groups (None if it found the piece unreadable, failed, or missed
    *deadline*); the child is reaped either way."""
    parts: list[bytes] = []
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                _abandon(pid, fd)
                return None
            part = os.read(fd, 1 << 20)
            if not part:
                break
            parts.append(part)
    except OSError:
        _abandon(pid, fd)
        return None
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not parts:
        return None
    data = b"".join(parts)
    del parts
    return marshal.loads(data)  # type: ignore[no-any-return]  # the child's Payload


def _abandon(pid: int, fd: int) -> None:
    """Stop a child whose work is no longer wanted, and reap it."""
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _merge(groups: OwnerGroups, payload: Payload) -> None:
    """Add a later piece's groups to *groups*, as if one reader had read on."""
    later, unordered, type_orders = payload
    mine = groups.groups
    groups.type_orders.update(type_orders)
    both = mine.keys() & later.keys()
    for key in both:  # an owner in both pieces: its lines in file order, sorted later
        mine[key].extend(later.pop(key))
    groups.unordered.update(both)
    groups.unordered.update(unordered)
    mine.update(later)  # the new owners in the order they came
