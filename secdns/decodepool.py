"""The bulk of a large AXFR decoded and rendered in forked worker processes (issue 12).

Decoding is most of what ``pull -o`` costs (about 5 µs of Python a record), and a
message is decoded on its own (DNS name compression never points into another
message), so :func:`secdns.engine.transfer` can hand raw messages to forked worker
processes (:class:`Pool`, one per CPU it may use, at most ``WORKERS``) while it
goes on reading the socket.  A worker runs the very
:func:`secdns.wire.parse_message` the in-process path runs, with a
:class:`secdns.wirescan.Rows` sink, and sends back the
:class:`secdns.wire.Message` (whose ``records`` are only the records the state
machine must decide on: the final SOA, or the one that fails the transfer), its
error text, and the message's rows already rendered as master-file lines
(:func:`render_part`).  The engine settles the results strictly in message order
through the same :class:`secdns.xfr.XfrReader`, so every error, limit and its
wording is the one the in-process path gives, for the same message.

On a 2-core machine with the primary (BIND) on it, the primary and two workers
share the cores while it sends; the workers have both to themselves once it is
done.  A message goes to the worker with the fewest still to answer, so one slowed
by other work on its core is given less.  The engine process itself only moves
bytes.

Order: a primary that sends owners in DNSSEC canonical order (BIND, Knot, NSD
walk their trees in it) lets the rendered parts be written as they are: each
part is checked sorted, and the owner at a message boundary (split across two
messages) is merged by :class:`Assembler`.  Owners in a few runs each in that order
(BIND sends an NSEC3 zone's hashed owners after the rest, from a tree of their own)
are merged run by run, owner by owner (:meth:`Assembler.merged`).  Anything else (an
owner in two runs, or one message's owners in more than :data:`MAX_RUNS` runs) and
the engine decodes the raw messages it kept again in-process into rows, sorted and
rendered as before (:class:`secdns.zonefile.FullZone`): the same bytes either way.

About 675 lines, kept whole: the parts, their assembly and the workers that make them
are one protocol (what a worker sends is what the assembler takes), tested as one
against the in-process path.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import itertools
import marshal
import operator
import os
import pickle
import signal
import struct
import typing
from collections.abc import Iterator

import dns.name

from secdns import wire, wirescan

if typing.TYPE_CHECKING:
    from secdns.xfr import XfrReader

WORKERS = 2
"""Worker processes at most (0: every transfer decoded in-process, as before the
pool); :func:`worker_count` takes fewer on a process allowed fewer CPUs."""
WINDOW = 16
"""Messages handed to the workers and not yet settled, at most (memory, and how
far the socket reader may run ahead of the state machine)."""

_LENGTH = struct.Struct("!I")
_IN_USE = False  # one pooled transfer per process at a time; the others decode in-process

Item = tuple[int, str, str]
"""A record of an owner split across parts: (type, rdata text, line)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Part:
    """The rendered rows of one message (or of the records decoded in-process).

    ``head`` holds the first owner's records and ``tail`` the last owner's, as
    items in the order received, since either may continue in the neighbouring
    part; ``body`` the lines of the owners in between, one ``\\n`` after each,
    already sorted within each owner and without exact duplicates.  A part of a
    single owner has only ``head`` (``tail`` is None).
    """

    first_key: tuple[bytes, ...]
    head: list[Item]
    body: bytes
    last_key: tuple[bytes, ...]
    tail: list[Item] | None
    rows: int  # rows in body, duplicates included
    dropped: int  # duplicates left out of body
    owners: bytes = b""
    """The keys of body's owners, in order, in :mod:`marshal` form: read only when runs
    are merged (:meth:`Assembler.merged`); as a tuple of tuples, a million-record
    zone's 690,000 keys were pickled, unpickled and kept by the engine process, ~0.25 s
    and ~95 MiB of a ``pull -o``."""


_TYPE_TEXT: dict[int, str] = {}


def _type_text(rdtype: int) -> str:
    text = _TYPE_TEXT.get(rdtype)
    if text is None:
        text = _TYPE_TEXT[rdtype] = wire.type_text(rdtype)
    return text


def _item(row: wirescan.Row) -> Item:
    return (row[3], row[4], f"{row[1]} {row[2]} IN {_type_text(row[3])} {row[4]}")


def render_part(rows: list[wirescan.Row]) -> Part | None:
    """The rows of one message as a :class:`Part`, or None when their owners are
    not in canonical order (then the zone is sorted whole, as before).

    Lines as :meth:`secdns.zonefile.FullZone.lines` renders them: each owner's
    rows sorted by type and rdata text, exact duplicates after the first left out.
    """
    keys = [row[0] for row in rows]
    if sorted(keys) != keys:  # linear for sorted input
        return None
    count = len(rows)
    first_key, last_key = keys[0], keys[-1]
    start = 1
    while start < count and keys[start] == first_key:
        start += 1
    head = [_item(row) for row in rows[:start]]
    if start == count:
        return Part(first_key, head, b"", last_key, None, 0, 0)
    stop = count - 1
    while keys[stop - 1] == last_key:
        stop -= 1
    tail = [_item(row) for row in rows[stop:]]
    body = rows[start:stop]
    types = _TYPE_TEXT
    try:  # one line a row, in C loops; then only owners of several rows are sorted
        lines = [f"{row[1]} {row[2]} IN {types[row[3]]} {row[4]}" for row in body]
    except KeyError:
        for row in body:
            _type_text(row[3])
        lines = [f"{row[1]} {row[2]} IN {types[row[3]]} {row[4]}" for row in body]
    body_keys = keys[start:stop]
    same = list(map(operator.eq, body_keys[1:], body_keys[:-1]))  # row i + 1 is row i's owner's
    dropped = 0
    if True in same:
        # rows i and i + 1 of one owner not in (type, rdata) order (or equal): only
        # the owners holding such a pair are sorted (found in C loops; ~1 in 5)
        order = [(row[3], row[4]) for row in body]
        unsorted = list(map(operator.and_, same, map(operator.ge, order, order[1:])))
        if True in unsorted:
            lines, dropped = _sort_owners(body, lines, same, unsorted)
    lines.append("")
    owners = marshal.dumps(tuple(itertools.compress(body_keys, [True, *map(operator.not_, same)])))
    body_text = "\n".join(lines).encode()
    return Part(first_key, head, body_text, last_key, tail, stop - start, dropped, owners)


MAX_RUNS = 4
"""Runs of owners in canonical order one message may hold and still be rendered (BIND
sends an NSEC3 zone's hashed owners after the others: one message holds both ends)."""


def render_parts(rows: list[wirescan.Row]) -> Part | list[Part] | None:
    """:func:`render_part`, or for a message whose owners are in a few runs each in
    canonical order (at most :data:`MAX_RUNS`), a part of each run; None otherwise."""
    part = render_part(rows)
    if part is not None:
        return part
    keys = [row[0] for row in rows]
    cuts = [index for index in range(1, len(keys)) if keys[index] < keys[index - 1]]
    if len(cuts) >= MAX_RUNS:
        return None
    parts = [render_part(rows[a:b]) for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    return None if None in parts else typing.cast(list[Part], parts)


def _sort_owners(
    body: list[wirescan.Row], lines: list[str], same: list[bool], unsorted: list[bool]
) -> tuple[list[str], int]:
    """``lines`` with the rows of each owner holding an ``unsorted`` pair sorted by
    type and rdata, exact duplicates after the first left out; and how many were
    left out.  Every other owner's rows came in that order already (most: A before
    AAAA) and are left as they are."""
    out: list[str] = []
    cursor = 0
    dropped = 0
    last = -1  # the last row of the owner sorted last
    count = len(same)
    for index in itertools.compress(range(count), unsorted):
        if index < last:
            continue  # within the owner just sorted
        first = index  # the owner's rows first..last (inclusive) around the pair
        while first and same[first - 1]:
            first -= 1
        last = index + 1
        while last < count and same[last]:
            last += 1
        cursor, dropped = _owner_lines(body, lines, first, last, out, cursor, dropped)
    out.extend(lines[cursor:])
    return out, dropped


def _owner_lines(
    body: list[wirescan.Row],
    lines: list[str],
    first: int,
    last: int,
    out: list[str],
    cursor: int,
    dropped: int,
) -> tuple[int, int]:
    """Put the lines before ``first`` and the owner's sorted lines into ``out`` unless
    they are in order already; the new cursor and the count of duplicates."""
    keys = [(row[3], row[4]) for row in body[first : last + 1]]
    if all(map(operator.lt, keys, keys[1:])):
        return cursor, dropped
    out.extend(lines[cursor:first])
    order = sorted(range(len(keys)), key=keys.__getitem__)
    previous: tuple[int, str] | None = None
    for index in order:
        key = keys[index]
        if key != previous:
            previous = key
            out.append(lines[first + index])
        else:
            dropped += 1
    return last + 1, dropped


Segment = tuple[bytes, bytes]
"""Lines of whole owners in canonical order (each line ending in a newline), and the
keys of those owners (a tuple, :mod:`marshal` form: :attr:`Part.owners`)."""


class Assembler:
    """Joins parts received in order into the zone's text: owners split across two
    parts are merged (sorted, duplicates dropped) at the boundary.

    ``in_order`` turns False at the first part whose owners come before the last
    one's: a new run of parts in order starts there (BIND sends an NSEC3 zone's hashed
    owners after all the others, from a tree of their own), and :meth:`merged` merges
    the runs owner by owner.  ``mergeable`` turns False for good at a part that is not
    in runs in order itself (``render_parts`` gave None)."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.rows = 0
        self.dropped = 0
        self.in_order = True
        self.mergeable = True
        self.runs: list[list[Segment]] = [[]]  # (kept only for merged())
        self._key: tuple[bytes, ...] | None = None
        self._items: list[Item] = []

    def add(self, part: Part | list[Part] | None) -> None:
        if isinstance(part, list):  # (runs of one message: render_parts)
            for each in part:
                self.add(each)
            return
        if part is None:
            self.in_order = self.mergeable = False
        if not self.mergeable:
            return
        assert part is not None
        if self._key is not None and part.first_key < self._key:
            self._flush()  # the run ends: the next starts with this part
            self.in_order = False
            self.runs.append([])
            self._key = None
        if part.first_key == self._key:
            self._items.extend(part.head)
        else:
            self._flush()
            self._key, self._items = part.first_key, list(part.head)
        if part.tail is not None:
            self._flush()
            self.blobs.append(part.body)
            self.runs[-1].append((part.body, part.owners))
            self.rows += part.rows
            self.dropped += part.dropped
            self._key, self._items = part.last_key, list(part.tail)

    def _flush(self) -> None:
        items = self._items
        if not items:
            return
        items.sort(key=operator.itemgetter(0, 1))  # stable: the first received is kept
        lines = []
        previous: tuple[int, str] | None = None
        for rdtype, rdata, line in items:
            if (rdtype, rdata) != previous:
                previous = (rdtype, rdata)
                lines.append(line)
        self.rows += len(items)
        self.dropped += len(items) - len(lines)
        lines.append("")
        blob = "\n".join(lines).encode()
        self.blobs.append(blob)
        assert self._key is not None
        self.runs[-1].append((blob, marshal.dumps((self._key,))))
        self._items = []

    def finish(self) -> list[bytes]:
        """The zone's text after its SOA line, the parts being in order (``in_order``)."""
        self._flush()
        return self.blobs

    def merged(self) -> list[bytes] | None:
        """The zone's text after its SOA line from runs of parts each in order, merged
        owner by owner; None when an owner is in two runs (its records would have to be
        merged: the caller sorts the whole zone instead) or a segment's lines do not
        group into its owners."""
        self._flush()
        blobs: list[bytes] = []
        chunk: list[bytes] = []
        previous: tuple[bytes, ...] | None = None
        try:
            for key, text in heapq.merge(*map(_owners_of, self.runs), key=_FIRST):
                if key == previous:
                    return None
                previous = key
                chunk.append(text)
                if len(chunk) >= 4096:
                    blobs.append(b"".join(chunk))
                    chunk = []
        except _Ungrouped:
            return None
        blobs.append(b"".join(chunk))
        return blobs


_FIRST = operator.itemgetter(0)


class _Ungrouped(Exception):
    """A segment's lines did not group into as many owners as it has keys."""


def _owners_of(run: list[Segment]) -> Iterator[tuple[tuple[bytes, ...], bytes]]:
    """Each owner of a run (its key, its lines), in the run's order: a segment's lines
    grouped by their owner's text, letter case aside (a key is its owner's lowercased
    labels), one group to each of its keys in turn."""
    for blob, owners in run:
        keys = marshal.loads(owners)
        if len(keys) == 1:
            yield keys[0], blob
            continue
        lines = blob.split(b"\n")
        lines.pop()  # (the blob ends with a newline)
        groups = itertools.groupby(lines, _owner_text)
        for key, (_owner, group) in itertools.zip_longest(keys, groups):
            if key is None or _owner is None:
                raise _Ungrouped
            yield key, b"\n".join(group) + b"\n"


def _owner_text(line: bytes) -> bytes:
    return line[: line.find(b" ")].lower()


# --- the worker processes ----------------------------------------------------------------------


def worker_count() -> int:
    """The workers a pooled transfer starts: one per CPU this process may run on
    (``os.sched_getaffinity``), at most :data:`WORKERS`.

    One CPU still gets one worker, not none: the transfer then costs about the CPU
    time of decoding in-process (measured on one core beside the in-process path:
    the same within noise, both sharing it with the primary), and the engine holds
    rendered text instead of a million rows (116 against 338 MiB for the 1M zone).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(WORKERS, cpus))


Outcome = tuple[str | None, wire.Message | None, int, Part | list[Part] | None]
"""What a worker sends back for one message: (error text of a malformed message,
the decoded message, owner and rdata text held by its rows, its rendered rows)."""


def decode(raw: bytes, origin: dns.name.Name, max_records: int) -> Outcome:
    """One message, as the worker decodes it (and the tests compare)."""
    sink = wirescan.Rows()
    try:
        message = wire.parse_message(raw, origin, max_records, sink)
    except wire.WireError as err:
        return (str(err), None, 0, None)
    # no rows (message.kept == 0): no part; rows out of order: None as well
    part = render_parts(sink.rows) if sink.rows else None
    return (None, message, sink.text, part)


BATCH = 4
"""Outcomes a worker sends in one write at most: those of the messages it already
holds, so the engine wakes once for several (not once for each message)."""


def _serve(inbox: int, outbox: int, origin: dns.name.Name, max_records: int) -> None:
    """A worker's loop: length-prefixed raw messages in, pickled outcomes out, until
    the engine closes the inbox.  An unexpected exception goes back pickled.

    The inbox is read in large pieces, and the messages a piece holds whole are
    decoded and answered in writes of up to :data:`BATCH` outcomes."""
    buffer = b""
    while True:
        piece = os.read(inbox, 1 << 20)
        if not piece:
            return
        buffer += piece
        pos, end = 0, len(buffer)
        out: list[bytes] = []
        while end - pos >= 4:
            stop = pos + 4 + _LENGTH.unpack_from(buffer, pos)[0]
            if stop > end:
                break
            raw = buffer[pos + 4 : stop]
            pos = stop
            try:
                outcome: typing.Any = decode(raw, origin, max_records)
            except Exception as err:  # noqa: BLE001  # re-raised by the engine, in order
                outcome = err
            data = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
            out += (_LENGTH.pack(len(data)), data)
            if len(out) >= 2 * BATCH:
                _write_all(outbox, out)
        _write_all(outbox, out)
        buffer = buffer[pos:]


def _write_all(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` whole, then empty the list."""
    if not parts:
        return
    view = memoryview(b"".join(parts))
    while view:
        view = view[os.write(fd, view) :]
    parts.clear()


class Pool:
    """``count`` forked decoders; a message goes to the worker with the fewest
    messages not yet answered (the first of them on a tie), and its outcome is that
    worker's next answer after those: each worker answers in the order it was sent.
    :meth:`close` ends them (by their process ids) and is always called."""

    def __init__(self, origin: dns.name.Name, max_records: int, count: int = WORKERS) -> None:
        self.origin = origin
        self.max_records = max_records
        self.count = count
        self.pids: list[int] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.readers: list[asyncio.StreamReader] = []
        self.transports: list[asyncio.BaseTransport] = []
        self.pending = [0] * count  # messages each worker has not answered yet
        self.order: collections.deque[int] = collections.deque()  # the worker of each, in order

    @staticmethod
    def claim() -> bool:
        """Whether this transfer may use a pool (one at a time per process)."""
        global _IN_USE
        if _IN_USE:
            return False
        _IN_USE = True
        return True

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.count):
            to_child, from_parent = os.pipe()
            to_parent, from_child = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: nothing of the parent's event loop is touched
                code = 0
                try:
                    # nothing of the parent's stays open here: above all not its TCP
                    # connection to the primary, whose close the primary must see
                    low, high = sorted((to_child, from_child))
                    os.closerange(3, low)
                    os.closerange(low + 1, high)
                    os.closerange(high + 1, max(high + 1, os.sysconf("SC_OPEN_MAX")))
                    _serve(to_child, from_child, self.origin, self.max_records)
                except BaseException:  # noqa: BLE001  # the engine sees the pipe close
                    code = 1
                finally:
                    os._exit(code)
            os.close(to_child)
            os.close(from_child)
            self.pids.append(pid)
            reader = asyncio.StreamReader(limit=1 << 20)
            read_transport, _ = await loop.connect_read_pipe(
                lambda reader=reader: asyncio.StreamReaderProtocol(reader),  # type: ignore[misc]
                os.fdopen(to_parent, "rb", buffering=0),
            )
            transport, protocol = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, os.fdopen(from_parent, "wb", buffering=0)
            )
            self.readers.append(reader)
            self.transports.append(read_transport)
            self.writers.append(asyncio.StreamWriter(transport, protocol, None, loop))

    async def submit(self, raw: bytes) -> None:
        pending = self.pending
        worker = pending.index(min(pending))
        pending[worker] += 1
        self.order.append(worker)
        writer = self.writers[worker]
        writer.write(_LENGTH.pack(len(raw)) + raw)
        await writer.drain()

    async def outcome(self) -> Outcome:
        """The next message's outcome (in the order submitted)."""
        worker = self.order.popleft()
        reader = self.readers[worker]
        try:
            prefix = await reader.readexactly(4)
            data = await reader.readexactly(_LENGTH.unpack(prefix)[0])
        except asyncio.IncompleteReadError as err:
            raise RuntimeError("a transfer decoding worker ended unexpectedly") from err
        self.pending[worker] -= 1
        outcome = pickle.loads(data)
        if isinstance(outcome, Exception):
            raise outcome
        return typing.cast(Outcome, outcome)

    @staticmethod
    def release() -> None:
        global _IN_USE
        _IN_USE = False

    def close(self) -> None:
        """End the workers (SIGKILL by process id, then reaped) and the pipes;
        synchronous, so that it runs whole even when the transfer is cancelled."""
        for writer in self.writers:
            writer.close()
        for transport in self.transports:
            transport.close()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.pids:
            os.waitpid(pid, 0)
        self.pids.clear()


# --- the engine's side -------------------------------------------------------------------------


async def receive(
    reader: XfrReader,
    read_raw: typing.Callable[[], typing.Awaitable[bytes]],
    read_failure: typing.Callable[[BaseException], BaseException],
    settle: typing.Callable[[bytes, wire.Message | wire.WireError], bool],
    report: typing.Callable[[bool], None],
    max_records: int,
    workers: int = WORKERS,
) -> None:
    """Read the rest of a full zone whose first messages the engine decoded itself
    (their rows are in ``reader.sink``), the messages decoded by a :class:`Pool` of
    ``workers``.

    The socket is read on while workers decode; outcomes are settled in message
    order with the engine's ``settle`` (the checks and state machine of the
    in-process path), and a failed read is raised only after the messages read
    before it are settled, as the in-process path would have.  At the end the
    zone holds its rendered text (``FullZone.rendered``), or, when the primary's
    order was not canonical, its rows decoded again in-process from the raw
    messages kept.
    """
    sink, zone = reader.sink, reader.zone
    assert sink is not None and zone is not None
    assembler = Assembler()
    if sink.rows:
        assembler.add(render_parts(sink.rows))
    kept: list[bytes] = []  # every raw message handed out, for the out-of-order case
    inflight: collections.deque[bytes] = collections.deque()
    settled = 0
    pool = Pool(reader.origin, max_records, workers)
    room = asyncio.Event()  # fewer than WINDOW messages in flight
    arrived = asyncio.Event()  # a message was handed out, or the reading stopped
    failures: list[tuple[BaseException, bool]] = []  # (error, whether handing out failed)

    def take(raw: bytes, outcome: Outcome) -> bool:
        nonlocal settled
        error, message, text, part = outcome
        decoded = wire.WireError(error) if error is not None else message
        assert decoded is not None
        if error is None:
            sink.text += text
            if message is not None and message.kept:
                assembler.add(part)
        if settle(raw, decoded):
            settled += 1
            _finish(reader, assembler, kept[:settled], max_records)
            report(True)
            return True
        settled += 1
        report(False)
        return False

    async def read_all() -> None:
        """Read messages and hand them out while the window has room, until a read
        (or handing one out) fails; one task for the whole transfer, not one a message."""
        try:
            while True:
                while len(inflight) >= WINDOW:
                    room.clear()
                    await room.wait()
                try:
                    raw = await read_raw()
                except Exception as err:  # noqa: BLE001  # raised after what came before
                    failures.append((err, False))
                    return
                kept.append(raw)
                inflight.append(raw)
                try:
                    await pool.submit(raw)
                except Exception as err:  # noqa: BLE001  # raised at once, as before
                    failures.append((err, True))
                    return
                arrived.set()
        finally:
            arrived.set()

    reading: asyncio.Task[None] | None = None
    try:
        await pool.start()
        reading = asyncio.ensure_future(read_all())
        while True:
            if failures and failures[0][1]:  # a worker's pipe failed
                raise failures[0][0]
            if inflight:  # settled in order; a failed read only after what came before
                outcome = await pool.outcome()
                if take(inflight.popleft(), outcome):
                    return
                if len(inflight) < WINDOW:
                    room.set()
                continue
            if failures:
                failed = failures[0][0]
                raise read_failure(failed) from failed
            arrived.clear()
            await arrived.wait()
    finally:
        if reading is not None:
            reading.cancel()
        pool.close()


def _finish(
    reader: XfrReader, assembler: Assembler, settled: list[bytes], max_records: int
) -> None:
    """Put the zone's text (canonical order) or, failing that, its rows into the zone."""
    sink, zone = reader.sink, reader.zone
    assert sink is not None and zone is not None
    rendered = assembler.finish() if assembler.in_order else None
    if rendered is None and assembler.mergeable:
        rendered = assembler.merged()  # (runs of parts in order: an NSEC3 zone from BIND)
    if rendered is not None:
        zone.rendered = rendered
        zone.rendered_rows = assembler.rows
        zone.dropped = assembler.dropped
        sink.rows.clear()
        return
    text = sink.text
    for raw in settled:  # the same decoder, in-process, into rows sorted as they are written
        wire.parse_message(raw, reader.origin, max_records, sink)
    sink.text = text
