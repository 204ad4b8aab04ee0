"""Where a pulled zone goes: the :class:`ZoneCopy` targets of :func:`secdns.pull.pull_zone`.

A copy applies what ``pull_zone`` decided (probe, IXFR or AXFR, fallbacks,
failover, checks): :class:`FileCopy` writes a master file (``pull -o``, AXFR
only), :class:`StoreCopy` a zone in the store with its journal and state
(``pull -d``, ``watch -d``); ``serve`` keeps its own copy in memory
(:class:`secdns.server.zones.MemoryCopy`).  Also here: the helpers that turn a
transfer into master-file lines and journal entries, and the check that a
master file secdns wrote is whole.  No network.

Just past the house size (~610 lines), kept whole: the three copies share the
abstract contract and the checks of an ``-o`` file (``output_file``) that both
file-writing copies apply; the seam for a split is those checks, into a module
of their own.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dns.name
import dns.rdatatype

from secdns import wire, zonefile
from secdns.atomicfile import atomic_write
from secdns.errors import (
    BadDataError,
    IxfrNotApplicable,
    LocalIOError,
    SecdnsError,
    other_zone_words,
)
from secdns.gcpause import gc_paused
from secdns.seal import seal_problem, sealed
from secdns.store import (
    WHOLE_LINES,
    JournalEntry,
    Store,
    StoredSoa,
    Written,
    ZoneState,
    ZoneWriter,
    axfr_entry,
)
from secdns.xfr import Delta

if TYPE_CHECKING:  # pull.py imports this module; a copy only fills in a result
    from secdns.pull import PullResult
    from secdns.server.persist import StoreQueue
    from secdns.server.xferproc import TransferProcess

log = logging.getLogger(__name__)

_HEADER_SERIAL = re.compile(r"^; zone (\S+) serial (\d+) ")


def _not_whole(path: Path, origin: dns.name.Name, serial: int) -> str | None:
    """Why the file secdns wrote at ``path`` is not a whole copy of ``origin`` at
    ``serial``, or None.

    The header's $ORIGIN, the apex SOA first with that serial, the final newline
    that a copy cut short lacks, then its checksum line (:mod:`secdns.seal`: the
    whole file is read, ~0.1 s for a million records; an edit inside it shows).
    """
    with open(path, "rb") as handle:
        head = [handle.readline().decode("utf-8", "replace").rstrip("\n") for _ in range(8)]
        handle.seek(0, 2)
        if handle.tell() == 0:
            return "is empty"
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            return "is cut short (no final newline)"
    header = [line for line in head if line.startswith(zonefile.HEADER_PREFIXES)]
    if f"$ORIGIN {origin.to_text()}".lower() not in (line.lower() for line in header):
        return f"has no $ORIGIN {origin.to_text()} line"
    records = head[len(header) :]
    first = records[0].split(" ", 4) if records else []
    if (
        len(first) != 5
        or first[0] != "@"
        or first[3] != "SOA"
        or first[4].split()[2:3] != [str(serial)]
    ):
        return f"does not start with the apex SOA of serial {serial}"
    return seal_problem(path)


def file_serial(path: Path, origin: dns.name.Name | None = None) -> int | None:
    """The serial recorded in the header of a master file secdns wrote, if any.

    With ``origin`` (``pull -o`` deciding whether the file is current) the header is
    trusted only when it names that zone and the file is whole (:func:`_not_whole`).
    Otherwise ``None``: fetch the zone again.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return None
    match = _HEADER_SERIAL.match(first)
    if match is None:
        return None
    serial = int(match.group(2))
    if origin is None:
        return serial
    if match.group(1).lower() != origin.to_text().lower():
        return None  # (refused before: output_file)
    try:
        problem = _not_whole(path, origin, serial)
    except OSError as err:
        problem = f"cannot be read ({err.strerror})"
    if problem is not None:
        log.warning("pull: zone=%s %s %s: fetching it by AXFR", origin, path, problem)
        return None
    return serial


HEAD_OCTETS = 1 << 16
"""How much of an existing ``-o`` file is read to tell which zone it holds."""

_HEAD_LINES = 64
"""Lines of an ``-o`` file read again when its first :data:`HEAD_OCTETS` end inside a
record (a multi-line one cut short): a zone file's SOA comes first."""


def output_file(path: Path, origin: dns.name.Name, force: bool) -> tuple[Path, int | None]:
    """Where ``pull -o FILE`` writes the zone, and the SOA serial of the file of the
    zone already there (:attr:`ZoneCopy.floor`); the one check of FILE for every copy that writes it
    (:class:`FileCopy`, :class:`StoreCopy` with ``-d DIR -o FILE``, watch's ``output``).

    - A symbolic link is followed: the file it points to is replaced, the link kept
      (a zone file linked into a server's directory).
    - Anything but a regular file (a device such as ``/dev/null``, a FIFO, a
      directory) is refused, ``--force`` or not: :class:`LocalIOError`.  The new
      version is renamed over FILE, which would replace the device itself.
    - A non-empty file that is not this zone's (another zone's copy, by its secdns
      header or its SOA; a file with no SOA of the zone near its start; one that does
      not read as a master file) is left as it is, unless ``force``:
      :class:`BadDataError`, before any transfer.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target, None
    except OSError as err:
        raise LocalIOError(f"cannot write {path}: {err.strerror}") from err
    if not stat.S_ISREG(info.st_mode):
        raise LocalIOError(
            f"{path} is {_file_kind(info.st_mode)}, not a regular file: -o writes a zone "
            "file by renaming a new file over FILE",
            hint="give -o a file's path, or -o - for stdout",
        )
    if info.st_size == 0:
        return target, None
    problem, serial = _held_zone(target, origin)  # (with --force: its serial, reported)
    if problem is not None and not force:
        raise BadDataError(
            f"{path} {problem}: left as it is; wrong file or wrong zone name?",
            hint="remove it, give -o another file, or --force to write over it",
        )
    return target, serial


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "a special file"


def _held_zone(path: Path, origin: dns.name.Name) -> tuple[str | None, int | None]:
    """Why the file at ``path`` is not a copy of ``origin`` (None when it is), and the
    serial of its SOA when it is (a secdns copy's header says it too, trusted only
    while the file is as secdns wrote it: :func:`file_serial`)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_OCTETS)
    except OSError as err:
        raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
    text = head.decode("utf-8", errors="replace")
    if not text.strip():  # blank lines only: as an empty file, nothing to keep
        return None, None
    match = _HEADER_SERIAL.match(text)
    if match is not None and match.group(1).lower() != origin.to_text().lower():
        return other_zone_words(match.group(1), origin.to_text()), None
    # (a secdns copy is read too: its first line may have been edited, its SOA not; one
    # damaged beyond reading is this zone's all the same, transferred again)
    ours = match is not None
    from secdns.masterfile import read_master  # (a large module: only when a file is there)

    cut = len(head) == HEAD_OCTETS
    if cut:  # (the last line may be cut: left out)
        text = text[: text.rfind("\n") + 1]
    try:
        try:
            records = read_master(text, origin, filename=str(path)).records
        except SecdnsError:
            if not cut:
                raise
            first = "".join(text.splitlines(keepends=True)[:_HEAD_LINES])
            records = read_master(first, origin, filename=str(path)).records
    except (SecdnsError, ValueError) as err:
        if ours:
            return None, None
        reason = err.message if isinstance(err, SecdnsError) else str(err)
        reason = reason.replace(f"{path}:", "line ", 1)  # (the path is said once)
        if len(reason) > 120:  # (binary junk: a few of its octets say enough)
            reason = reason[:117] + "..."
        return f"does not read as a master file ({reason})", None
    soa = next((r for r in records if r.rdtype == dns.rdatatype.SOA), None)
    if soa is None:
        if ours:
            return None, None
        return f"has no SOA record of {origin.to_text()} at its start: not its zone file", None
    if soa.owner != "@":
        return other_zone_words(soa.owner, origin.to_text()), None
    return None, wire.soa_fields(soa)[0]


class ZoneCopy(abc.ABC):
    """Where a pulled zone goes, and what we already hold of it.

    :func:`secdns.pull.pull_zone` decides (probe, IXFR or AXFR, fallbacks, failover, checks);
    a copy only applies what was decided: to a store, a file, or (``serve``) a
    zone in memory.
    """

    origin: dns.name.Name
    serial: int | None = None  # the serial we hold, None when we hold nothing
    lost_serial: int | None = None  # what we held before the copy was lost or hand-edited
    # the SOA serial of a file at -o that is written over (by hand, or edited since
    # secdns wrote it): no older serial replaces it without --force (pull._pull_from)
    floor: int | None = None
    floor_file: str | None = None
    can_ixfr: bool = False  # an IXFR delta can be applied to what we hold
    # apply_axfr only writes the zone's lines: a large one may be decoded in worker
    # processes (secdns.decodepool)
    pooled: bool = False
    records: int | None = None
    # holding nothing, ask AXFR straight away, without a SOA probe first (the transfer
    # brings the SOA): serve's cold start of 10,000 zones (secdns.pull._without_probe)
    axfr_unprobed: bool = False
    # where that AXFR may be made instead of here: serve's transfer process at a cold
    # start (secdns.server.xferproc.TransferProcess)
    elsewhere: TransferProcess | None = None

    async def prepare(self) -> None:
        """Load what we hold (before the SOA probe)."""
        return None

    @property
    def serial_before(self) -> int | None:
        """The serial a result reports as held (``serial_from``): ours, else the one
        we held before the copy was lost or edited."""
        return self.serial if self.serial is not None else self.lost_serial

    async def settled(self) -> None:
        """Wait for a write the copy left to finish in a group commit (``pull`` of many
        zones into a store: :class:`StoreCopy` with ``commits``); raises what it raised."""
        return None

    @abc.abstractmethod
    async def apply_axfr(
        self, zone: zonefile.FullZone, soa: wire.Record, result: PullResult
    ) -> None: ...

    async def apply_ixfr(self, deltas: list[Delta], soa: wire.Record, result: PullResult) -> None:
        raise IxfrNotApplicable("this copy cannot take an IXFR")

    async def checked(self, result: PullResult) -> None:
        """Called after a successful check that found the zone up to date."""
        return None

    async def failed(self, error: SecdnsError) -> None:
        """Called when every primary failed."""
        return None


def axfr_journal(
    origin: dns.name.Name,
    old_lines: list[str],
    new_lines: list[str],
    serial_from: int,
    serial_to: int,
) -> tuple[JournalEntry | None, int, int]:
    """The difference of two full versions as one journal entry, and (+, -) counts
    (see :func:`secdns.store.axfr_entry`); for versions not in canonical order
    (a stored version is diffed by :meth:`ZoneWriter.replace_merged` instead)."""
    old_set = set(old_lines)
    new_set = set(new_lines)
    keyer = zonefile.LineKeyer(origin)
    return axfr_entry(
        sorted(old_set - new_set, key=keyer),
        sorted(new_set - old_set, key=keyer),
        serial_from,
        serial_to,
    )


def delta_entries(deltas: list[Delta]) -> list[JournalEntry]:
    return [
        JournalEntry(
            d.serial_from,
            d.serial_to,
            tuple(wire.record_line(r) for r in d.deleted),
            tuple(wire.record_line(r) for r in d.added),
        )
        for d in deltas
    ]


class FileCopy(ZoneCopy):
    """A master file (``pull -o FILE``, or ``-o -`` for stdout): AXFR only.

    A new version replacing a whole copy of this zone (:func:`file_serial`) counts
    added/removed against it as the store does (:func:`zonefile.diffed_against`);
    replacing anything else, against nothing, as a first pull.
    """

    pooled = True

    def __init__(
        self,
        origin: dns.name.Name,
        output: Path | None,
        to_stdout: bool = False,
        *,
        force: bool = False,
    ):
        self.origin = origin
        self.output = output
        self.to_stdout = to_stdout
        self.force = force  # --force: write over a file of another zone too

    async def prepare(self) -> None:
        output = self.output
        if output is None:
            return

        def load() -> tuple[Path, int | None, int | None, int | None]:
            target, found = output_file(output, self.origin, self.force)
            serial = file_serial(target, self.origin) if target.exists() else None
            records = _count_records(target) if serial is not None else None
            return target, found, serial, records

        self.output, found, self.serial, self.records = await asyncio.to_thread(load)
        if self.serial is None and found is not None:
            # a file of the zone written by hand or edited since: replaced whole, but not
            # by an older serial unless --force (reported as serial_from, as a store's
            # lost copy is)
            self.lost_serial = self.floor = found
            self.floor_file = str(output)

    async def apply_axfr(
        self, zone: zonefile.FullZone, soa: wire.Record, result: PullResult
    ) -> None:
        @gc_paused()
        def work() -> None:
            with contextlib.ExitStack() as stack:
                chunks: Iterator[bytes] | None = None
                diff = None
                if self.output is not None and self.serial is not None:
                    try:
                        chunks, diff = stack.enter_context(
                            zonefile.diffed_zone(
                                self.origin, self.output, soa.serial, soa.ttl, zone
                            )
                        )
                    except OSError as err:
                        log.warning(
                            "pull: zone=%s cannot read %s (%s): counting against nothing",
                            self.origin,
                            self.output,
                            err.strerror,
                        )
                if chunks is None:
                    chunks = zonefile.zone_chunks(self.origin, soa.serial, soa.ttl, zone)
                self._write(chunks, result)
            result.records = len(zone) - zone.dropped
            result.added, result.removed = result.records, 0
            if diff is not None:
                assert self.serial is not None
                _, result.added, result.removed = axfr_entry(
                    diff.deleted, diff.added, self.serial, wire.soa_fields(soa)[0]
                )

        await asyncio.to_thread(work)

    def _write(self, chunks: Iterator[bytes], result: PullResult) -> None:
        chunks = sealed(chunks)  # (its checksum line: an edit shows at the next pull)
        if self.to_stdout:  # the text is printed whole: hold it
            result.text = b"".join(chunks).decode()
            chunks = iter((result.text.encode(),))
        if self.output is not None:
            atomic_write(self.output, chunks, digest=False)  # written as it is sorted
            result.output = str(self.output)
        else:
            for _ in chunks:
                pass


INLINE_OCTETS = 1 << 16
"""A stored zone file up to this size is read by the event loop's thread when a pull
of many zones prepares it (:class:`StoreCopy`): 10,000 zones of ~20 records each
handed to a thread and back cost more in the interpreter lock than the reads."""


def _small(path: Path) -> bool:
    try:
        return path.stat().st_size <= INLINE_OCTETS
    except OSError:  # no file: only its state (if any) is read
        return True


def _count_records(path: Path) -> int | None:
    """The records of a whole master file secdns wrote (one a line, after its
    header, before its checksum line), counted a chunk at a time."""
    try:
        with open(path, "rb") as handle:
            header = 0
            for line in handle:
                if not line.startswith((b";", b"$")):
                    break
                header += 1
            handle.seek(0)
            newlines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None
    return newlines - header - 1  # (its checksum line: file_serial checked it)


class StoreCopy(ZoneCopy):
    """A zone in the store (``pull -d DIR``), written through :class:`ZoneWriter`."""

    pooled = True

    def __init__(
        self,
        store: Store,
        origin: dns.name.Name,
        output: Path | None = None,
        to_stdout: bool = False,
        *,
        force: bool = False,
        commits: StoreQueue | None = None,
    ) -> None:
        self.store = store
        self.origin = origin
        self.output = output
        self.to_stdout = to_stdout
        self.force = force  # --force: write over a file of another zone too
        self.writer: ZoneWriter | None = None
        self.text: str | None = None
        # pull of many zones into the store: writes committed in groups, and a small
        # zone's left behind while the next zone is pulled (settled())
        self.commits = commits if output is None and not to_stdout else None
        self._behind: asyncio.Future[object] | None = None

    @property
    def state(self) -> ZoneState:
        assert self.writer is not None, "prepare() first"
        return self.writer.state

    async def prepare(self) -> None:
        def load() -> tuple[ZoneWriter, str | None]:  # (one hand-off to a thread)
            if self.output is not None:  # (its serial: none older replaces it, as for -o)
                given = self.output
                self.output, self.floor = output_file(given, self.origin, self.force)
                self.floor_file = str(given)
            writer = ZoneWriter(self.store, self.origin)
            # (a small zone's file, read whole with its state line, is not read again)
            return writer, self.store.zone_problem(self.origin, writer.state, writer.take_whole())

        if self.commits is not None and _small(self.store.zone_path(self.origin)):
            writer, why = load()  # (a thread's hand-off would cost more than the reads)
        else:
            writer, why = await asyncio.to_thread(load)
        self.writer, state = writer, writer.state
        if why is None:
            self.serial = state.serial
            self.can_ixfr = True
            self.records = state.records
        elif state.serial is not None:
            self.lost_serial = state.serial  # reported as serial_from: none->N would forget it
            log.warning("pull: zone=%s %s: fetching it again by AXFR", self.origin, why)

    def _written(self, written: Written, soa: wire.Record, result: PullResult) -> None:
        # self.text: the version just written when it was rendered whole (an IXFR);
        # an AXFR is written as it is sorted and read back only when needed
        self.text, self.serial, self.can_ixfr = written.text, soa.serial, True
        self.records = result.records = written.records
        self._copy_out(written.text, result)

    def _copy_out(self, text: str | None, result: PullResult) -> None:
        """``-o FILE`` / ``-o -`` beside the store: the master text just written
        (``text``, when it was rendered whole) or stored, without its state line."""
        result.output = str(self.output or self.store.zone_path(self.origin))

        def chunks() -> Iterator[bytes]:  # (with its checksum line, as pull -o writes it)
            return sealed((text.encode(),) if text else self.store.master_chunks(self.origin))

        if self.output is not None:
            atomic_write(self.output, chunks(), digest=False)
        if self.to_stdout:
            result.text = b"".join(chunks()).decode()

    async def apply_axfr(
        self, zone: zonefile.FullZone, soa: wire.Record, result: PullResult
    ) -> None:
        @gc_paused()
        def work() -> None:
            assert self.writer is not None
            lines: Iterable[str] = zone.lines()
            if len(zone) <= WHOLE_LINES:  # a first version: one file (its state line)
                lines = list(lines)
            written, result.added, result.removed = self.writer.replace_merged(
                lines, stored_soa(soa), primary=result.primary
            )
            self._written(written, soa, result)

        await self._write(work, behind=len(zone) <= WHOLE_LINES)

    async def apply_ixfr(self, deltas: list[Delta], soa: wire.Record, result: PullResult) -> None:
        def work() -> None:
            assert self.writer is not None
            if self.text is None:
                lines = self.writer.read_lines()  # IxfrNotApplicable when not intact
            else:
                _, lines = zonefile.split_header(self.text)
            entries = delta_entries(deltas)
            written = self.writer.apply(
                entries, stored_soa(soa), primary=result.primary, lines=lines
            )
            result.removed += written.removed - len(entries)  # not counting the SOA swaps
            result.added += written.added - len(entries)
            self._written(written, soa, result)

        await self._write(work, behind=False)  # (a delta that does not apply says so now)

    async def checked(self, result: PullResult) -> None:
        assert self.writer is not None
        writer = self.writer

        def work() -> None:
            writer.checked()
            if self.output is not None or self.to_stdout:  # FILE holds the current version
                self._copy_out(self.text, result)

        await self._write(work, behind=True)

    async def failed(self, error: SecdnsError) -> None:
        if self.writer is None:
            return
        writer, line = self.writer, error.one_line()

        def work() -> None:
            try:
                writer.failed(line)
            except LocalIOError as err:
                log.error("pull: zone=%s cannot save state: %s", self.origin, err.message)

        await self._write(work, behind=True)

    async def _write(self, work: Callable[[], object], *, behind: bool) -> None:
        """Run a store write in a thread; with :attr:`commits`, in its next group
        commit, and (``behind``) without waiting for it: :meth:`settled` does."""
        if self.commits is None:
            await asyncio.to_thread(work)
            return
        await self.settled()  # (one write of a zone at a time, in order)
        future = asyncio.ensure_future(self.commits.run(work))
        if behind:
            self._behind = future
        else:
            await future

    async def settled(self) -> None:
        behind, self._behind = self._behind, None
        if behind is not None:
            await behind


def stored_soa(soa: wire.Record) -> StoredSoa:
    """What the store keeps of a transferred SOA record."""
    serial, refresh, retry, expire, minimum = wire.soa_fields(soa)
    return StoredSoa(serial, soa.ttl, refresh, retry, expire, minimum)


def make_copy(
    origin: dns.name.Name,
    *,
    store: Store | None = None,
    output: Path | None = None,
    to_stdout: bool = False,
    force: bool = False,
    commits: StoreQueue | None = None,
) -> ZoneCopy:
    if store is not None:
        return StoreCopy(store, origin, output, to_stdout, force=force, commits=commits)
    return FileCopy(origin, output, to_stdout, force=force)
