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
shared so that neither process waits for the other while it has work left: the
buckets' count is guessed from the head before forking, and every process puts each
owner into its bucket as it reads it (:class:`OwnerGroups` with buckets).  Each child
sends, through a pipe in :mod:`marshal` form, first how many of its owners each name
is the parent of (and its owners' order), then its buckets (the same hash seed:
forked), :data:`CHUNKS` messages of them.  The parent adds the children's counts up
in file order and from them the counts of names below (while the children send their
buckets), then merges each message of buckets as it comes (an owner in two pieces
gets its lines merged and sorted again, and is taken off its ancestors' counts once),
writing the counts below and the empty non-terminals into each bucket as the last
child's come.  Within each bucket the owners are in the order they came, then the
empty non-terminals, as in one pass; a wrong guess of the count (or owners in two
pieces that change it) is put right at the end by putting every owner into new
buckets in file order and writing the counts again.

Measured on the 1M-record genzone zone (issue 12; per-process CPU clocks, the
machine shared): each process reads about half; before the hand-back was streamed,
the parent waited ~0.8-1.1 s for the child's whole payload and then spent ~0.9 s on
it alone (unmarshal, merge, counts below); now the parent never waits for a message,
the child's messages are merged while it makes the next ones, and the counts below
are added up while it sends them.  Putting the owners into buckets after reading
cost each process ~0.3 s more on its critical path than doing it while reading.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import re
import select
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import dns.name

from secdns.errors import ZoneFileError
from secdns.masterfile import STDIN
from secdns.masterfile.lexer import KIND_CLASS, KIND_TTL, Kinds
from secdns.masterfile.reader import Reader
from secdns.server import forkpipe, zone
from secdns.server.load import OwnerGroups, canonical_group
from secdns.server.zone import Entry, ZoneVersion

log = logging.getLogger(__name__)

MIN_SPLIT_CHARS = 2 << 20
"""Files shorter than this are read in one process (a fork costs more than it saves)."""
MAX_PROCESSES = 8
HEAD_CHARS = 1 << 16
"""The head read before forking ends at the first owner line after this many characters."""
PARENT_SHARE = 1.0
"""The parent's piece against a child's.  A child also sends its buckets; the parent
adds the counts below up and merges the children's messages: at 1.0 on the 1M-record
genzone zone the parent waits 0-0.2 s for the child's first message, at 0.9 0.3-0.4 s,
and 1.05-1.1 gave the same time within the runs' spread (per-process CPU clocks,
machine shared)."""
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
    previous TTL does not matter to it, nor to the lines after it.  Only the line's
    words before a parenthesis or a comment are read (a record ``dnssec-signzone``
    writes over several lines, as every NSEC3 record, states its TTL before its
    ``(``); a quote or a backslash before them, and the answer is no."""
    end = text.find("\n", at)
    line = text[at : end if end >= 0 else len(text)]
    cut = _WORDS_END.search(line)
    if cut is not None:
        if cut.group() in _NOT_PLAIN:
            return False  # (the reader tokenizes such a word otherwise)
        line = line[: cut.start()]
    for token in line.split()[1:3]:
        kind, _ = kinds.kind_of(token)
        if kind == KIND_TTL:
            return True
        if kind != KIND_CLASS:
            return False
    return False


_WORDS_END = re.compile(r'[()";\\]')
"""Where a line stops being words split by white space alone: a parenthesis or a
comment ends the words before it (the tokenizer splits there too), a quote or a
backslash changes them (:data:`_NOT_PLAIN`)."""
_NOT_PLAIN = frozenset('"\\')


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
                why = "no line to cut it at that names its owner"
                if kinds is not None:  # (the previous TTL would carry over a cut)
                    why += " and states its TTL (it sets no $TTL)"
                _one_pass(filename, why)
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
        head_groups, groups = groups, OwnerGroups(origin, size)  # (owners now into buckets)
        groups.take(head_groups)
        reader.emit = groups.emit
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
    payload_fd: int  # its messages, from the child
    poller: select.poll


Counts = tuple[dict[str, int], dict[str, int], int, int, str]
"""A child's first message: how many of its owners each name is the parent of (in the
order the parents came), its types' positions, its records, its owners, and their
keys in file order joined by newlines (needed only if the buckets' count was guessed
wrong).  Then come its owners in buckets, :data:`CHUNKS` messages of them."""

CHUNKS = 16
"""The messages a child's buckets are sent in: the parent merges one while the child
makes the next, instead of waiting for all of them."""
PIPE_SIZE = 1 << 20
"""Bytes a child's pipe holds (Linux's default is 64 KiB; a message is ~2 MiB)."""


def _chunk_buckets(size: int) -> int:
    """Buckets a message holds (of *size*, a power of two)."""
    return max(1, size // CHUNKS)


def _fork_piece(
    reader: Reader,
    text: str,
    piece: tuple[int, int],
    filename: str,
    expect: Expect,
    size: int,
) -> _Child:
    """Fork a child that reads ``text[start:end]`` (*piece*) on from *reader*'s state
    and, if that ends as *expect* says (:func:`_ends_in`), sends its :data:`Counts` and
    then its owners in *size* buckets through a pipe (:func:`_hand_back`); otherwise
    nothing."""
    payload_read, payload_write = os.pipe()
    with contextlib.suppress(AttributeError, OSError):  # (Linux: fewer, larger writes)
        fcntl.fcntl(payload_write, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    pid = os.fork()
    if pid:
        os.close(payload_write)
        return _Child(pid, payload_read, forkpipe.poller_of(payload_read))
    # the child: never returns into the parent's code
    status = 1
    try:
        os.close(payload_read)
        forkpipe.enter_child()
        groups = OwnerGroups(reader.zone_origin, size)
        reader.emit = groups.emit
        try:
            reader.read(text[piece[0] : piece[1]], filename, None)
            ok = _ends_in(reader, expect)
        except ZoneFileError:
            ok = False
        if ok:
            reader.names.cache.clear()  # (its keys: see _hand_back)
            _hand_back(groups, size, payload_write)
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


def _hand_back(groups: OwnerGroups, size: int, fd: int) -> None:
    """A child's piece to the parent: its :data:`Counts` first (the parent adds the
    counts below up while the child sends its buckets), then its buckets (made as it
    read: the same hash seed as the parent's, forked) in :data:`CHUNKS` messages."""
    buckets = groups.finish_buckets()
    keys = groups.order
    parents = dict(zone._parents_counted(keys, zone.name_key(groups.origin)))
    counts: Counts = (parents, groups.type_orders, groups.records, len(keys), "\n".join(keys))
    _send(fd, counts)
    step = _chunk_buckets(size)
    for first in range(0, size, step):
        _send(fd, buckets[first : first + step])


_send = forkpipe.send  # (a module name of its own: tests make a child die while sending)


def _assemble(
    origin: dns.name.Name,
    filename: str,
    groups: OwnerGroups,
    size: int,
    children: list[_Child],
    deadline: float,
) -> ZoneVersion | None:
    """The version :meth:`ZoneVersion.from_groups` builds from the whole file's groups,
    built from the parent's groups and the children's messages (None if a child fails;
    *children* keeps those not yet reaped).

    In the order the work comes: the parent's owners into buckets; the children's
    counts of parents, added up in file order (the parents in the order they came)
    while the children put their owners in buckets; then each child's buckets,
    merged one message at a time (an owner in two pieces gets its lines merged and
    sorted again, and is taken off the counts of its ancestors once); as the last
    child's come, each bucket gets its counts below and its empty non-terminals."""
    origin_key = zone.name_key(origin)
    buckets = groups.finish_buckets()
    order = [groups.order]  # every owner, in the order they came (if size was wrong)
    parents = zone._parents_counted(order[0], origin_key)
    orders = groups.type_orders
    names = len(order[0])
    records = groups.records
    joined: list[str] = []
    for child in children:
        counts = _receive(child, deadline)
        if counts is None:
            return _declined(filename)
        later_parents, type_orders, later_records, later_names, keys = counts
        orders.update(type_orders)
        records += later_records
        names += later_names
        joined.append(keys)
        get = parents.get
        for parent, count in later_parents.items():  # (new parents in the order they came)
            parents[parent] = get(parent, 0) + count
    below = zone._add_below(parents, origin_key)
    step = _chunk_buckets(size)
    counted = zone.bucket_count(names + len(below)) == size  # (unless owners are shared)
    later_below = _by_chunk(below, size, step) if counted else []
    shared: list[str] = []  # owners in two pieces
    while children:
        child = children[0]
        last = len(children) == 1
        for first in range(0, size, step):
            later = _receive(child, deadline)
            if later is None:
                return _declined(filename)
            records += _merged(buckets[first : first + step], later, orders, shared)
            if counted and last:
                _write_counts(buckets, below, later_below[first // step])
        _let_go(children.pop(0))
    names -= len(shared)
    fixed = {name for key in shared for name in _ancestors(key, origin_key)}
    for key in shared:
        for name in _ancestors(key, origin_key):
            below[name] -= 1  # counted once for each piece it is in
    right = zone.bucket_count(names + len(below))
    if right != size:
        keys_in_order = _keys_in_order(order[0], joined, names + len(shared))
        if keys_in_order is None:
            return _declined(filename)
        buckets = _rebucketed(buckets, keys_in_order, right)
        _write_counts(buckets, below, below)
    elif not counted:
        _write_counts(buckets, below, below)
    elif fixed:
        _write_counts(buckets, below, fixed)  # (written before the last shared owner came)
    return ZoneVersion.from_buckets(origin, buckets, names, records)


def _declined(filename: str) -> ZoneVersion | None:
    _one_pass(
        filename,
        "a piece changes $ORIGIN, $TTL or the class, has an error, or its process failed",
    )
    return None


def _merged(
    buckets: list[dict[str, Entry]],
    later: list[dict[str, Entry]],
    orders: dict[str, int],
    shared: list[str],
) -> int:
    """*later* (a later piece's owners in the same buckets) added to *buckets*: an owner
    in both gets its lines merged (and is added to *shared*).  Returns the records that
    merging dropped (duplicates) as a negative number."""
    dropped = 0
    for bucket, more in zip(buckets, later, strict=True):
        if not more:
            continue
        if not bucket.keys().isdisjoint(more):
            for key in bucket.keys() & more.keys():  # an owner in both pieces
                earlier = bucket[key][0]
                added = more.pop(key)[0]
                merged = canonical_group(earlier + added, orders)
                bucket[key] = (tuple(merged), 0)
                dropped += len(merged) - len(earlier) - len(added)
                shared.append(key)
        bucket.update(more)  # the piece's new owners, in the order they came
    return dropped


def _ancestors(key: str, origin_key: str) -> Iterator[str]:
    """The keys of *key*'s ancestors up to the origin (none for the origin), as
    :func:`zone._add_below` walks them."""
    while key != origin_key and key != ".":
        key = zone.parent_key(key)
        yield key


def _by_chunk(below: dict[str, int], size: int, step: int) -> list[list[str]]:
    """*below*'s keys in the order they are in, split by the message (of *step* of
    *size* buckets) their bucket comes in."""
    mask = size - 1
    shift = step.bit_length() - 1
    chunks: list[list[str]] = [[] for _ in range(size // step)]
    for key in below:
        chunks[(hash(key) & mask) >> shift].append(key)
    return chunks


def _write_counts(
    buckets: list[dict[str, Entry]], below: dict[str, int], keys: Iterable[str]
) -> None:
    """Each of *keys* with its count of names below (:func:`zone._add_below`): an
    owner's in place, an empty non-terminal's added after the bucket's owners."""
    mask = len(buckets) - 1
    for key in keys:
        bucket = buckets[hash(key) & mask]
        entry = bucket.get(key)
        bucket[key] = ((), below[key]) if entry is None else (entry[0], below[key])


def _keys_in_order(first: list[str], joined: list[str], names: int) -> list[list[str]] | None:
    """Every piece's owners in file order (the children's from their newline-joined
    keys), or None if they do not add up to *names* (a key with a newline in it)."""
    order = [first] + [keys.split("\n") if keys else [] for keys in joined]
    return order if sum(map(len, order)) == names else None


def _rebucketed(
    buckets: list[dict[str, Entry]], order: list[list[str]], size: int
) -> list[dict[str, Entry]]:
    """*buckets*' owners in *size* buckets, each owner where it comes first in *order*
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


def _receive(child: _Child, deadline: float) -> Any:
    """A child's next message, or None if it sent none (its piece was unreadable), it
    failed, or it missed *deadline* (:func:`read_split` then stops and reaps it)."""
    return forkpipe.receive(child.payload_fd, child.poller, deadline)


def _let_go(child: _Child) -> None:
    """Reap a child that sent all its messages, in the background if it has not exited
    yet: the kernel takes a while to tear down a large process, and what it sent is
    complete (every message is length-prefixed), so its exit status adds nothing."""
    _close(child)
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(child.pid, os.WNOHANG)[0] == 0:
            threading.Thread(target=_reap, args=(child.pid,), daemon=True).start()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


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
