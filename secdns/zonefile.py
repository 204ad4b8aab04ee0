"""Canonical RFC 1035 master files: one record per line, relative names, stable order.

The file is ``$ORIGIN``/``$TTL`` directives then one ``owner TTL IN TYPE rdata``
line per record, with every owner written out, sorted in DNSSEC canonical name
order (RFC 4034 6.1), the SOA first at the apex, then by type number and rdata
text.  Because the order is a pure function of each line, a stored file can be
searched by bisection and an IXFR delta applied without parsing the whole zone.

A transferred zone is written as it is sorted (:meth:`FullZone.lines`,
:func:`render_chunks`), and two versions are compared by one merge
(:class:`SortedDiff`): a million-record zone never has its whole list of lines or
its whole text in memory (issue 10: 576 -> 342 MiB peak for ``pull -o``).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import operator
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype

from secdns import wire, wirescan
from secdns.errors import IxfrNotApplicable

SOA = 6
HEADER_PREFIXES = (";", "$")

SortKey = tuple[tuple[bytes, ...], int, str]


def record_key(rec: wire.Record) -> SortKey:
    """Sort key of a record: canonical owner, type (SOA first), rdata text."""
    return (rec.key, 0 if rec.rdtype == SOA else rec.rdtype, rec.rdata)


class LineKeyer:
    """Computes the same sort key as :func:`record_key` from a written line."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.origin_key = tuple(label.lower() for label in reversed(origin.labels[:-1]))
        self._types: dict[str, int] = {}

    def owner_key(self, owner: str) -> tuple[bytes, ...]:
        if owner == "@":
            return self.origin_key
        name = dns.name.from_text(owner, self.origin)
        return tuple(label.lower() for label in reversed(name.labels[:-1]))

    def __call__(self, line: str) -> SortKey:
        try:
            owner, _ttl, _cls, rtype, rdata = line.split(" ", 4)
            rdtype = self._types.get(rtype)
            if rdtype is None:
                rdtype = self._types[rtype] = dns.rdatatype.from_text(rtype)
            return (self.owner_key(owner), 0 if rdtype == SOA else rdtype, rdata)
        except (ValueError, dns.exception.DNSException) as err:
            raise IxfrNotApplicable(f"stored zone has an unparsable line: {line[:80]!r}") from err


def header(origin: dns.name.Name, serial: int | None, default_ttl: int) -> list[str]:
    return [
        f"; zone {origin.to_text()} serial {serial} (written by secdns; one record per line,"
        " canonical order)",
        f"$ORIGIN {origin.to_text()}",
        f"$TTL {default_ttl}",
    ]


def sorted_lines(records: list[wire.Record]) -> Iterator[str]:
    """Sort records canonically (in place), drop exact duplicates, yield one line each.

    The order is :func:`record_key`'s, reached without a key tuple a record: one
    stable sort by owner (a reference to the owner key each record already
    holds), then a sort of each owner's few records by type and rdata as the
    lines are yielded.  Of records equal but for their TTL the first received is
    kept, as a stable sort on the whole key would.
    """
    records.sort(key=operator.attrgetter("key"))
    line_of = _line
    count = len(records)
    start = 0
    while start < count:
        rec = records[start]
        owner = rec.key
        stop = start + 1
        while stop < count and records[stop].key == owner:
            stop += 1
        if stop - start == 1:
            yield line_of(rec)
        else:
            group = records[start:stop]
            group.sort(key=_type_rdata)
            previous: tuple[int, str] | None = None
            for rec in group:
                key = (rec.rdtype, rec.rdata)
                if key != previous:
                    previous = key
                    yield line_of(rec)
        start = stop


_IN = 1
_TYPE_TEXT: dict[int, str] = {}


def _line(rec: wire.Record) -> str:
    """:func:`wire.record_line`, with the class IN and the type text looked up here."""
    type_text = _TYPE_TEXT.get(rec.rdtype)
    if type_text is None or rec.rdclass != _IN:
        if rec.rdclass != _IN:
            return wire.record_line(rec)
        type_text = _TYPE_TEXT[rec.rdtype] = wire.type_text(rec.rdtype)
    return f"{rec.owner} {rec.ttl} IN {type_text} {rec.rdata}"


def _type_rdata(rec: wire.Record) -> tuple[int, str]:
    return (0 if rec.rdtype == SOA else rec.rdtype, rec.rdata)


def canonical_lines(records: list[wire.Record] | FullZone) -> list[str]:
    """Sort records canonically, drop exact duplicates, render one line each."""
    if isinstance(records, FullZone):
        return list(records.lines())
    return list(sorted_lines(records))


class FullZone:
    """A zone received whole (AXFR, or an IXFR answered AXFR-style): its SOA and
    its other records as :data:`wirescan.Row` tuples in the order received.

    No record objects: :meth:`lines` sorts the rows in place and renders each line
    as it is written; :meth:`records` builds :class:`wire.Record` objects for the
    readers that want them (verify, catalogs).
    """

    __slots__ = ("soa", "rows", "dropped", "rendered", "rendered_rows")

    def __init__(self, soa: wire.Record, rows: list[wirescan.Row]) -> None:
        self.soa = soa
        self.rows = rows
        self.dropped = 0  # duplicates :meth:`lines` left out (so far)
        # the lines after the SOA's, already in order (:mod:`secdns.decodepool`), and
        # the rows they came from (duplicates included); the rows are then empty
        self.rendered: list[bytes] | None = None
        self.rendered_rows = 0

    def __len__(self) -> int:
        return len(self.rows) + self.rendered_rows + 1

    def records(self) -> list[wire.Record]:
        """The SOA, then every record in the order received."""
        assert self.rendered is None, "a zone decoded by a pool is only written"
        record = wire.Record
        return [self.soa] + [
            record(key, owner, ttl, _IN, rdtype, rdata, None)
            for key, owner, ttl, rdtype, rdata in self.rows
        ]

    def lines(self) -> Iterator[str]:
        """:func:`sorted_lines` of :meth:`records`, from the rows: the SOA first (its
        owner key, the apex, sorts before every other owner in the zone and its type
        before every other type), then one stable sort by owner and each owner's rows
        by type and rdata; of rows equal but for their TTL the first received is kept."""
        yield _line(self.soa)
        if self.rendered is not None:
            for blob in self.rendered:
                lines = blob.decode().split("\n")
                lines.pop()  # each blob ends with a newline
                yield from lines
            return
        rows = self.rows
        rows.sort(key=operator.itemgetter(0))
        types = _TYPE_TEXT
        count = len(rows)
        start = 0
        while start < count:
            row = rows[start]
            owner = row[0]
            stop = start + 1
            while stop < count and rows[stop][0] == owner:
                stop += 1
            if stop - start == 1:
                rdtype = row[3]
                text = types.get(rdtype) or _type_text(rdtype)
                yield f"{row[1]} {row[2]} IN {text} {row[4]}"
            else:
                group = rows[start:stop]
                group.sort(key=_row_type_rdata)
                previous: tuple[int, str] | None = None
                for row in group:
                    key = (row[3], row[4])
                    if key != previous:
                        previous = key
                        rdtype = row[3]
                        text = types.get(rdtype) or _type_text(rdtype)
                        yield f"{row[1]} {row[2]} IN {text} {row[4]}"
                    else:
                        self.dropped += 1
            start = stop


def _row_type_rdata(row: wirescan.Row) -> tuple[int, str]:
    return (row[3], row[4])  # no SOA among the rows: it is FullZone.soa


def _type_text(rdtype: int) -> str:
    text = _TYPE_TEXT[rdtype] = wire.type_text(rdtype)
    return text


def render(
    origin: dns.name.Name, serial: int | None, default_ttl: int, lines: Iterable[str]
) -> str:
    body = "\n".join(lines)
    return "\n".join(header(origin, serial, default_ttl)) + "\n" + body + ("\n" if body else "")


CHUNK_LINES = 4096


class Counted:
    """Passes lines through, counting them (the records of a version written as it
    is sorted, whose number is known only at the end)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.count += 1
            yield line


def render_chunks(
    origin: dns.name.Name, serial: int | None, default_ttl: int, lines: Iterable[str]
) -> Iterator[bytes]:
    """:func:`render`'s text, encoded, in chunks of a few thousand lines: a zone of
    any size is written without holding its whole text."""
    yield ("\n".join(header(origin, serial, default_ttl)) + "\n").encode()
    source = iter(lines)
    while batch := list(itertools.islice(source, CHUNK_LINES)):  # no Python loop a line
        batch.append("")
        yield "\n".join(batch).encode()


def zone_chunks(
    origin: dns.name.Name, serial: int | None, default_ttl: int, zone: FullZone
) -> Iterator[bytes]:
    """:func:`render_chunks` of ``zone.lines()``; a zone already rendered
    (:attr:`FullZone.rendered`) is written as its parts are, not split into lines."""
    if zone.rendered is None:
        yield from render_chunks(origin, serial, default_ttl, zone.lines())
        return
    yield ("\n".join(header(origin, serial, default_ttl)) + "\n" + _line(zone.soa) + "\n").encode()
    yield from zone.rendered


def split_header(text: str) -> tuple[list[str], list[str]]:
    """Split a file written by :func:`render` into header lines and record lines."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    start = 0
    while start < len(lines) and lines[start].startswith(HEADER_PREFIXES):
        start += 1
    return lines[:start], lines[start:]


def apply_delta(
    lines: list[str], keyer: LineKeyer, deleted: list[wire.Record], added: list[wire.Record]
) -> tuple[list[str], int, int]:
    """Apply one IXFR delta to sorted record lines; O(k log n) searches plus one copy.

    Every deleted record must be present (ignoring its TTL, RFC 1995), or the delta
    does not apply and :class:`IxfrNotApplicable` is raised.  Returns the new
    lines and the numbers of records removed and added.
    """
    return apply_keyed_delta(
        lines,
        keyer,
        [(record_key(r), f"{r.owner} {wire.type_text(r.rdtype)} {r.rdata[:60]}") for r in deleted],
        [(record_key(r), wire.record_line(r)) for r in added],
    )


def apply_line_delta(
    lines: list[str], keyer: LineKeyer, deleted: Iterable[str], added: Iterable[str]
) -> tuple[list[str], int, int]:
    """:func:`apply_delta` for a delta given as written lines (a journal entry)."""
    return apply_keyed_delta(
        lines,
        keyer,
        [(keyer(line), line[:80]) for line in deleted],
        [(keyer(line), line) for line in added],
    )


def apply_keyed_delta(
    lines: list[str],
    keyer: LineKeyer,
    deleted: list[tuple[SortKey, str]],
    added: list[tuple[SortKey, str]],
) -> tuple[list[str], int, int]:
    """The delta as (sort key, text): a description of each deleted record, the line
    of each added one."""
    removals: set[int] = set()
    for key, what in deleted:
        index = bisect.bisect_left(lines, key, key=keyer)
        if index >= len(lines) or keyer(lines[index]) != key:
            raise IxfrNotApplicable(f"IXFR deletes {what}, which the stored zone does not have")
        removals.add(index)
    insertions: dict[int, list[tuple[SortKey, str]]] = {}
    added_keys: set[SortKey] = set()
    unchanged = 0
    for key, line in added:
        if key in added_keys:
            continue
        added_keys.add(key)
        index = bisect.bisect_left(lines, key, key=keyer)
        if index < len(lines) and index not in removals and keyer(lines[index]) == key:
            if lines[index] == line:  # added again as it is (NSD re-sends a node): no change
                unchanged += 1
                continue
            removals.add(index)  # re-added (e.g. a TTL change): replace the line
        insertions.setdefault(index, []).append((key, line))
    points = sorted(set(removals) | set(insertions))
    result: list[str] = []
    cursor = 0
    for point in points:
        result.extend(lines[cursor:point])
        for _key, text in sorted(insertions.get(point, ())):
            result.append(text)
        cursor = point + 1 if point in removals else point
    result.extend(lines[cursor:])
    return result, len(removals), len(added_keys) - unchanged


class SortedDiff:
    """The difference of two versions of a zone, both as lines in canonical order,
    found by one merge as the new lines go by (``feed``): no set of either version.

    The result is what the set differences would give (a line whose record only
    changed TTL is deleted and added), each list in canonical order.  Sort keys are
    computed only where the two versions differ, so a merge of two nearly equal
    million-line versions costs about one string comparison a line.
    """

    def __init__(self, keyer: LineKeyer, old: Iterable[str]) -> None:
        self.keyer = keyer
        self._old = iter(old)
        # an old version read from its file can be compared a run of lines at a time
        self._text = old if isinstance(old, OldText) else None
        self._current: str | None = next(self._old, None)
        self.deleted: list[str] = []
        self.added: list[str] = []

    def skip_same(self, text: str, count: int) -> bool:
        """Pass over ``text``, ``count`` whole lines each ending in a newline, when it
        is exactly the old version's text from the current old line on: what feeding
        its lines one by one would do (every one unchanged), in one comparison.
        False, and nothing done, otherwise (or when the old version is not an
        :class:`OldText`, or a line of ``text`` starts as a header line does, which
        the old version's reading leaves out)."""
        old = self._text
        if (
            old is None
            or self._current is None
            or not text.endswith("\n")
            or text.count("\n") != count
            or text.startswith(HEADER_PREFIXES)
            or "\n;" in text
            or "\n$" in text
            or not old.skip(text)
        ):
            return False
        self._current = next(self._old, None)
        return True

    def feed(self, line: str) -> None:
        current = self._current
        if current == line:
            self._current = next(self._old, None)
            return
        if current is None:
            self.added.append(line)
            return
        key = self.keyer(line)
        while current is not None:
            old_key = self.keyer(current)
            if old_key < key:
                self.deleted.append(current)
                current = next(self._old, None)
                continue
            if old_key == key:
                if current == line:  # unchanged, after old lines it passed
                    self._current = next(self._old, None)
                    return
                self.deleted.append(current)  # same record, another TTL or spelling
                current = next(self._old, None)
            break
        self._current = current
        self.added.append(line)

    def lines(self, new: Iterable[str]) -> Iterator[str]:
        """Pass ``new`` through, feeding each line (a batch of lines equal to the old
        version's at once: :meth:`skip_same`); the rest of the old version is deleted
        once ``new`` ends."""
        feed = self.feed
        source = iter(new)
        while batch := list(itertools.islice(source, CHUNK_LINES)):
            if not self.skip_same("\n".join(batch) + "\n", len(batch)):
                for line in batch:
                    feed(line)
            yield from batch
        self.finish()

    def chunks(self, new: Iterable[bytes]) -> Iterator[bytes]:
        """:meth:`lines` for a version already rendered as text (each chunk whole
        lines, each ending in a newline): a chunk equal to the old version's text is
        passed over in one comparison, any other fed a line at a time."""
        feed = self.feed
        for chunk in new:
            text = chunk.decode()
            if not self.skip_same(text, text.count("\n")):
                lines = text.split("\n")
                lines.pop()  # empty: the chunk ends with a newline
                for line in lines:
                    feed(line)
            yield chunk
        self.finish()

    def finish(self) -> None:
        if self._current is not None:
            self.deleted.append(self._current)
            self.deleted.extend(self._old)
            self._current = None


@contextlib.contextmanager
def diffed_against(
    origin: dns.name.Name, old_path: Path, new: Iterable[str]
) -> Iterator[tuple[Iterator[str], SortedDiff]]:
    """The one way a full version replacing a master file secdns wrote learns what
    changed (``pull -d``'s store, ``pull -o`` and ``watch -o``'s file): ``new``
    passed through a :class:`SortedDiff` against the old file, read a line at a
    time as the new version is written, never held whole.  The caller decides the
    old file is intact and this zone's; its lists are complete once the lines are
    consumed.
    """
    with open(old_path, encoding="utf-8", errors="replace") as old:
        diff = SortedDiff(LineKeyer(origin), OldText(old))
        yield diff.lines(new), diff


@contextlib.contextmanager
def diffed_zone(
    origin: dns.name.Name, old_path: Path, serial: int | None, default_ttl: int, zone: FullZone
) -> Iterator[tuple[Iterator[bytes], SortedDiff]]:
    """:func:`diffed_against` for a zone written whole (``pull -o``): its file's
    chunks (:func:`zone_chunks`), the lines merged with the old file as they go by;
    a zone already rendered (:attr:`FullZone.rendered`) is compared a part at a time
    (:meth:`SortedDiff.chunks`), never split into lines where it equals the old."""
    if zone.rendered is None:
        with diffed_against(origin, old_path, zone.lines()) as (lines, diff):
            yield render_chunks(origin, serial, default_ttl, lines), diff
        return
    with open(old_path, encoding="utf-8", errors="replace") as old:
        diff = SortedDiff(LineKeyer(origin), OldText(old))
        soa_line = _line(zone.soa)

        def chunks() -> Iterator[bytes]:
            diff.feed(soa_line)
            yield ("\n".join(header(origin, serial, default_ttl)) + "\n" + soa_line + "\n").encode()
            yield from diff.chunks(zone.rendered or ())

        yield chunks(), diff


class OldText:
    """The record lines of a version's file (header lines left out), read in large
    pieces from a text-mode file, so with the newline handling and decoding of
    reading it a line at a time; :meth:`skip` compares a run of new text with the
    old text from the start of the line last read, in one comparison."""

    PIECE = 1 << 20  # characters read at a time

    def __init__(self, handle: typing.TextIO) -> None:
        self._handle = handle
        self._text = ""
        self._pos = 0  # where the next line starts in _text
        self._start = -1  # where the line last read starts (-1: none to skip from)
        self._eof = False

    def __iter__(self) -> Iterator[str]:
        return self

    def _more(self) -> None:
        """Read the next piece, keeping the text from the line last read on."""
        keep = self._start if self._start >= 0 else self._pos
        piece = self._handle.read(self.PIECE)
        if not piece:
            self._eof = True
        self._text = self._text[keep:] + piece
        self._pos -= keep
        if self._start >= 0:
            self._start -= keep

    def __next__(self) -> str:
        while True:
            end = self._text.find("\n", self._pos)
            while end < 0 and not self._eof:
                self._more()
                end = self._text.find("\n", self._pos)
            start = self._pos
            if end < 0:  # the last line has no newline, or there is no line left
                end = len(self._text)
                if start >= end:
                    self._start = -1
                    raise StopIteration
                self._pos = end
            else:
                self._pos = end + 1
            line = self._text[start:end]
            if not line.startswith(HEADER_PREFIXES):
                self._start = start
                return line

    def skip(self, text: str) -> bool:
        """Whether ``text`` is the old text from the start of the line last read;
        if so, the next line read is the one after it."""
        if self._start < 0:
            return False
        while len(self._text) - self._start < len(text) and not self._eof:
            self._more()
        if not self._text.startswith(text, self._start):
            return False
        self._pos = self._start + len(text)
        self._start = -1
        return True
