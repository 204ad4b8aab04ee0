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
parenthesis still open; the previous record's TTL too, unless a default TTL is known
or the next piece starts with a record stating its TTL, where the cuts of a file
without ``$TTL`` are made), and every piece must read without an error.  Then each
piece started where the file read in one pass would have been, and its records are
the ones the one-pass reader emits there.  If anything does not hold (an error
anywhere, a state change, a child that fails or does not answer in time),
:func:`read_split` returns None and the caller reads the whole file in one pass:
errors are therefore always the one-pass reader's, word for word and line for line.

The served version is built as :meth:`ZoneVersion.from_groups` builds it, the work
shared: the buckets' count is guessed from the head before forking; each child sorts
its owners' lines, puts its owners in buckets (the same hash seed: forked), counts
the parents of its owners, and hands all that back through a pipe in :mod:`marshal`
form with its owners' order; the parent does the same for its own piece, then adds
each child's buckets in file order (an owner in two pieces gets its lines merged
and sorted again, and counts once for its parent), adds the counts of names below
up, and writes them in.  Within each bucket the owners are in the order they came,
then the empty non-terminals, as in one pass; a wrong guess of the count is put
right by putting every owner into new buckets in that order.

Measured on the 1M-record genzone zone (issue 12): one pass 6.4 s reading + 2.0 s
building; in two processes each reads about half, and the parent's share after the
child is done is ~0.6 s (rebuilding the child's half from marshal ~0.25 s, merging,
counts below).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import marshal
import os
import select
import signal
import time
from pathlib import Path

import dns.name

from secdns.errors import ZoneFileError
from secdns.masterfile import STDIN
from secdns.masterfile.lexer import KIND_CLASS, KIND_TTL, Kinds
from secdns.masterfile.reader import Reader
from secdns.server import zone
from secdns.server.load import OwnerGroups, canonical_group
from secdns.server.zone import Entry, ZoneVersion

log = logging.getLogger(__name__)

MIN_SPLIT_CHARS = 2 << 20
"""Files shorter than this are read in one process (a fork costs more than it saves)."""
MAX_PROCESSES = 8
HEAD_CHARS = 1 << 16
"""The head read before forking ends at the first owner line after this many characters."""
PARENT_SHARE = 1.0
"""The parent's piece against a child's.  A child also buckets its owners and sends
them; the parent buckets its own and, once the children are done, merges theirs:
on the 1M-record genzone zone at 1.2 the parent still finished its own piece last
(cachegrind: 19.2 G instructions against the child's 14.3-14.8 G)."""
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


def states_its_ttl(kinds: Kinds, text: str, at: int) -> bool:
    """Whether the line starting at *at* is a record that states its TTL (``owner
    [class] ttl ...``, as the reader's *kinds* tell a TTL from a class): the reader's
    previous TTL does not matter to it, nor to the lines after it."""
    end = text.find("\n", at)
    line = text[at : end if end >= 0 else len(text)]
    if '"' in line or "(" in line or ")" in line or "\\" in line:
        return False  # (the reader tokenizes such a line otherwise)
    for token in line.split(";", 1)[0].split()[1:3]:
        kind, _ = kinds.kind_of(token)
        if kind == KIND_TTL:
            return True
        if kind != KIND_CLASS:
            return False
    return False


def split_points(
    text: str,
    processes: int,
    head_chars: int | None = None,
    share: float | None = None,
    ttl_kinds: Kinds | None = None,
) -> list[int] | None:
    """``[head end, end of the parent's piece, end of child 1's, ..., len(text)]``, or
    None if the text cannot be cut so (too few owner lines).  With *ttl_kinds* (the
    head leaves no default TTL), only at lines that state their TTL.  Defaults:
    :data:`HEAD_CHARS`, :data:`PARENT_SHARE`."""
    head = owner_line_at(text, HEAD_CHARS if head_chars is None else head_chars)
    share = PARENT_SHARE if share is None else share
    if head is None or processes < 2:
        return None
    rest = len(text) - head
    child = rest / (processes - 1 + share)
    points = [head]
    at = head + share * child
    for _ in range(processes - 1):
        start = owner_line_at(text, int(at))
        while start is not None and ttl_kinds and not states_its_ttl(ttl_kinds, text, start):
            start = owner_line_at(text, start + 1)
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
) -> ZoneVersion | None:
    """The served version of master-file *text* read in *processes* processes, or None
    if it cannot be read so (then read it in one pass: see the module docstring).  The
    caller pauses the cyclic garbage collector (the children inherit that).  *points*:
    where to cut instead of :func:`split_points`' cuts (tests cut everywhere)."""
    if points is None and owner_line_at(text, HEAD_CHARS) is None:
        _one_pass(filename, "no owner line after its head")
        return None
    groups = OwnerGroups(origin)
    base = Path(filename).parent if filename != STDIN else None
    reader = Reader(origin, origin, None, base, None, groups.emit)
    if filename != STDIN:
        reader.stack.append(os.path.realpath(filename))
    children: list[_Child] = []
    try:
        if points is None:
            head = owner_line_at(text, HEAD_CHARS)
            reader.read(text[:head], filename, None)
            kinds = None if reader.default_known else reader.kinds
            points = split_points(text, processes, ttl_kinds=kinds)
            if points is None or points[0] != head:
                _one_pass(filename, "too few lines to cut at")
                return None
        else:
            reader.read(text[: points[0]], filename, None)
        state = reader.state()
        # what each piece must end in for the next one to read on: None for the last
        ends = [
            (state, not states_its_ttl(reader.kinds, text, end)) if end < len(text) else None
            for end in points[1:]
        ]
        # the buckets' count, guessed from the head (if wrong, the parent rebuilds them)
        head_names = len(groups.groups)
        head_names += len(zone._parents_counted(groups.groups, zone.name_key(origin)))
        size = estimate_buckets(head_names * len(text) / max(points[0], 1))
        for start, end, expect in zip(points[1:-1], points[2:], ends[1:], strict=True):
            children.append(_fork_piece(reader, text, (start, end), filename, expect, size))
        started = time.monotonic()
        reader.read(text[points[0] : points[1]], filename, None)
        if not _ends_in(reader, ends[0]):
            _one_pass(filename, "its first piece changes $ORIGIN, $TTL or the class")
            return None
        deadline = time.monotonic() + max(MIN_WAIT, 4 * (time.monotonic() - started))
        return _assemble(origin, filename, groups, size, children, deadline)
    except ZoneFileError:
        _one_pass(filename, "an error (its line is the one pass's)")
        return None
    finally:
        for child in children:
            _abandon(child)
        reader.rdata.fast.clear()  # (a cycle: see read_master)


def _one_pass(what: str, why: str) -> None:
    log.info("load: %s is read in one process: %s", what, why)


def estimate_buckets(names: float) -> int:
    """:func:`secdns.server.zone.bucket_count` for about *names* names."""
    return zone.bucket_count(int(names))


@dataclasses.dataclass(slots=True)
class _Child:
    pid: int
    payload_fd: int  # its buckets, from the child


Buckets = tuple[list[dict[str, Entry]], list[str], dict[str, int], dict[str, int], int]
"""A child's owners in buckets (no counts below yet), its owners in file order, how
many each name is the parent of, its types' positions, its records."""


def _fork_piece(
    reader: Reader,
    text: str,
    piece: tuple[int, int],
    filename: str,
    expect: Expect,
    size: int,
) -> _Child:
    """Fork a child that reads ``text[start:end]`` (*piece*) on from *reader*'s state
    and, if that ends as *expect* says (:func:`_ends_in`), writes its :data:`Buckets`
    (*size* of them) to a pipe."""
    payload_read, payload_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(payload_write)
        return _Child(pid, payload_read)
    # the child: never returns into the parent's code
    status = 1
    try:
        os.close(payload_read)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)  # the parent's event loop's, not ours
        groups = OwnerGroups(reader.zone_origin)
        reader.emit = groups.emit
        try:
            reader.read(text[piece[0] : piece[1]], filename, None)
            ok = _ends_in(reader, expect)
        except ZoneFileError:
            ok = False
        payload = _child_payload(groups, size) if ok else b""
        view = memoryview(payload)
        while view:
            view = view[os.write(payload_write, view) :]
        status = 0
    finally:
        os._exit(status)


Expect = tuple[tuple[object, ...], bool] | None
"""What a piece must end in: the head's state, and whether the previous TTL counts
(the next piece's first line does not state its TTL); None: anything (the last)."""


def _ends_in(reader: Reader, expect: Expect) -> bool:
    """Whether *reader* ended a piece in a state the next piece can read on from."""
    if expect is None:
        return True
    state, ttl_counts = expect
    now = reader.state()
    return now[:-1] == state[:-1] and (not ttl_counts or now[-1] == state[-1])


def _child_payload(groups: OwnerGroups, size: int) -> bytes:
    own = groups.finish()
    parents = dict(zone._parents_counted(own, zone.name_key(groups.origin)))
    records = sum(map(len, own.values()))
    buckets = _bucketed(own, size)  # (the same hash seed as the parent's: forked)
    return marshal.dumps((buckets, list(own), parents, groups.type_orders, records))


def _bucketed(groups: dict[str, list[str]], size: int) -> list[dict[str, Entry]]:
    """The owners in *size* buckets as :meth:`ZoneVersion.from_groups` puts them (no
    counts below yet)."""
    mask = size - 1
    buckets: list[dict[str, Entry]] = [{} for _ in range(size)]
    for key, lines in groups.items():
        buckets[hash(key) & mask][key] = (tuple(lines), 0)
    return buckets


def _assemble(
    origin: dns.name.Name,
    filename: str,
    groups: OwnerGroups,
    size: int,
    children: list[_Child],
    deadline: float,
) -> ZoneVersion | None:
    """The version :meth:`ZoneVersion.from_groups` builds from the whole file's groups,
    built from the parent's groups and the children's buckets (None if a child fails)."""
    origin_key = zone.name_key(origin)
    own = groups.finish()
    parents = zone._parents_counted(own, origin_key)
    orders = groups.type_orders
    buckets = _bucketed(own, size)
    order = [list(own)]  # every owner, in the order they came (if size was wrong)
    names = len(own)
    records = sum(map(len, own.values()))
    own.clear()
    while children:
        payload = _collect(children.pop(0), deadline)
        if payload is None:
            _one_pass(
                filename,
                "a piece changes $ORIGIN, $TTL or the class, has an error, or its process failed",
            )
            return None
        later, keys, later_parents, type_orders, later_records = payload
        order.append(keys)
        orders.update(type_orders)
        records += later_records
        get = parents.get
        for parent, count in later_parents.items():  # (new parents in the order they came)
            parents[parent] = get(parent, 0) + count
        for bucket, more in zip(buckets, later, strict=True):
            if not more:
                continue
            for key in bucket.keys() & more.keys():  # an owner in both pieces
                earlier = bucket[key][0]
                added = more.pop(key)[0]
                merged = canonical_group(earlier + added, orders)
                bucket[key] = (tuple(merged), 0)
                records += len(merged) - len(earlier) - len(added)
                if key != origin_key:
                    parents[zone.parent_key(key)] -= 1  # counted once per piece
            bucket.update(more)  # the piece's new owners, in the order they came
            names += len(more)
    below = zone._add_below(parents, origin_key)
    right = zone.bucket_count(names + len(below))
    if right != size:
        buckets = _rebucketed(buckets, order, right)
    mask = right - 1
    for key, count in below.items():  # owners' counts in place, then the empty names
        bucket = buckets[hash(key) & mask]
        entry = bucket.get(key)
        bucket[key] = ((), count) if entry is None else (entry[0], count)
    return ZoneVersion.from_buckets(origin, buckets, names, records)


def _rebucketed(
    buckets: list[dict[str, Entry]], order: list[list[str]], size: int
) -> list[dict[str, Entry]]:
    """*buckets*' entries in *size* buckets, each owner where it comes first in *order*
    (the head's guess of the count was wrong: a zone denser or sparser after it)."""
    mask = len(buckets) - 1
    again: list[dict[str, Entry]] = [{} for _ in range(size)]
    new_mask = size - 1
    for keys in order:
        for key in keys:
            bucket = again[hash(key) & new_mask]
            if key not in bucket:
                bucket[key] = buckets[hash(key) & mask][key]
    return again


def _collect(child: _Child, deadline: float) -> Buckets | None:
    """A child's payload (None if it found its piece unreadable, failed, or missed
    *deadline*); the child is reaped either way."""
    parts: list[bytes] = []
    poller = select.poll()
    poller.register(child.payload_fd, select.POLLIN)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                _abandon(child)
                return None
            part = os.read(child.payload_fd, 1 << 20)
            if not part:
                break
            parts.append(part)
    except OSError:
        _abandon(child)
        return None
    _close(child)
    _, status = os.waitpid(child.pid, 0)
    if status != 0 or not parts:
        return None
    data = b"".join(parts)
    del parts
    return marshal.loads(data)  # type: ignore[no-any-return]  # what the child wrote


def _close(child: _Child) -> None:
    with contextlib.suppress(OSError):
        os.close(child.payload_fd)


def _abandon(child: _Child) -> None:
    """Stop a child whose work is no longer wanted, and reap it."""
    _close(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(child.pid, 0)
