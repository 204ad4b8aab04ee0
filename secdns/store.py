"""The zone store: master files, per-zone state and IXFR journals in one directory.

No network here.  Every file is replaced atomically (:mod:`secdns.atomicfile`: temp file in
the same directory, fsync, rename, fsync of the directory), so a crash at any point leaves
the previous version intact.  Zone names map to file names that never escape the
directory.

Past the house size (~850 lines) as one room on purpose: the file names, the state
format (a state file, or a zone file's first line), the journal and
:class:`ZoneWriter`'s commit order (journal, zone file, state) are one
crash-consistency argument, read together.  The next split, if it grows, is the
journal (its line format, chain and trimming) into a module of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import os
import re
import time
import tomllib
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path
from typing import Any

import dns.name
import tomli_w

from secdns import zonefile
from secdns.atomicfile import (  # atomic_write: the store's API too
    AtomicFile,
    atomic_write,
    read_chunks,
    syncing,
)
from secdns.errors import IxfrNotApplicable, LocalIOError

_DIGITS = re.compile(r"\d+")
log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
_HEAD_READ = 4096  # a zone file's first read, for its state line (a small zone's whole)
_STATE = ".state.toml"  # a zone's files: its stem (zone_filename) and these suffixes
_ZONE = ".zone"
_JOURNAL = ".journal"
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_FILENAME = 200
DEFAULT_JOURNAL_BYTES = 64 * 1024 * 1024
WHOLE_LINES = 4096
"""A full version of at most this many lines is written from its whole text (a
zone's first version then holds its state: :data:`STATE_LINE`); a longer one a
chunk at a time, never held whole."""


def zone_filename(origin: dns.name.Name) -> str:
    """A file name stem for a zone that can never escape its directory.

    Labels are lowercased; every byte outside ``[a-z0-9_-]`` (dots inside labels,
    ``/``, NUL, ``%``...) becomes ``%XX``; labels are joined with ``.``.  No label
    is empty, so ``.`` and ``..`` cannot occur.  The root zone is ``@root``
    (``@`` is always escaped elsewhere).  Over-long names are shortened with a hash.
    """
    labels = [label.lower() for label in origin.labels if label]
    if not labels:
        return "@root"
    parts = []
    for label in labels:
        parts.append("".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in label))
    stem = ".".join(parts)
    if len(stem) > MAX_FILENAME:
        digest = hashlib.sha256(stem.encode()).hexdigest()[:16]
        stem = f"{stem[: MAX_FILENAME - 18]}~{digest}"
    assert "/" not in stem and "\x00" not in stem and stem not in (".", "..")
    return stem


def read_bytes(path: str | Path) -> bytes:
    """A whole file's bytes read on its descriptor: ``Path.read_bytes`` and ``read_text``
    build a buffered file object (an fstat, an ioctl and an lseek more) for each of
    the files 10,000 zones read at a restart.  OSError as ``open`` raises it."""
    fd = os.open(path, _READ_FLAGS)
    try:
        first = os.read(fd, READ_CHUNK)
        if not first:
            return first
        parts = [first]
        while chunk := os.read(fd, READ_CHUNK):  # (to the empty read: a short one may be
            parts.append(chunk)  # a signal's, not the end)
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


@functools.lru_cache(maxsize=1)  # (10,000 zones stamp their state in a few seconds)
def _second_text(second: int) -> str:
    return datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_time(at: float | None = None, *, whole_seconds: bool = False) -> str:
    """The one timestamp format: a wall-clock time (epoch seconds; now if None) as
    ISO 8601 UTC with milliseconds (events), or in whole seconds (state files)."""
    now = time.time() if at is None else at
    if whole_seconds:
        return _second_text(int(now))
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(text: str | None) -> float | None:
    """Epoch seconds of an :func:`iso_time` text; None if absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


_FLAT_LINE = re.compile(r'([a-z_0-9]+) = (-?[0-9]+|"(?:[^"\\\x00-\x1f]|\\["\\bfnrt])*")')
_FLAT_LINES = re.compile(rf"^{_FLAT_LINE.pattern}$", re.MULTILINE)


def _flat_toml(text: str) -> dict[str, Any] | None:
    """The flat ``key = int`` / ``key = "string"`` TOML our state files are written
    as, parsed in a fraction of tomllib's time (10,000 zones load at start); None for
    anything else, which tomllib then reads."""
    # one pass of the pattern over the text (not a match per line): every line must be
    # one of the pattern's, or blank, which the count of its matches tells
    found = _FLAT_LINES.findall(text)
    lines = text.split("\n")
    if len(found) != len(lines) - lines.count(""):
        return None
    doc: dict[str, Any] = {}
    for key, value in found:
        if value[0] != '"':
            doc[key] = int(value)
        else:  # (a string without escapes is its text: no JSON decoder for it)
            doc[key] = value[1:-1] if "\\" not in value else json.loads(value)
    if len(doc) != len(found):  # a key given twice: tomllib says what is wrong
        return None
    return doc


@dataclasses.dataclass(slots=True)
class ZoneState:
    """What the store remembers of a zone between runs."""

    zone: str
    serial: int | None = None
    primary: str | None = None
    last_attempt: str | None = None
    last_success: str | None = None
    last_change: str | None = None  # when a version of another serial was written
    last_kind: str | None = None
    last_error: str | None = None
    refresh: int | None = None
    retry: int | None = None
    expire: int | None = None
    minimum: int | None = None
    records: int | None = None
    file_sha256: str | None = None
    file_size: int | None = None

    def to_toml(self) -> str:
        # flat ``key = value`` lines, as tomli_w writes them, without its generic walk
        # (10,000 zones write their state at a cold start); tomli_w for the rare string
        # that needs an escape the flat reader does not take
        lines = []
        for name in _STATE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            text = _flat_value(value)
            if text is None:
                doc = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
                return tomli_w.dumps(doc)
            lines.append(f"{name} = {text}\n")
        return "".join(lines)

    @classmethod
    def from_toml(cls, text: str, zone: str) -> ZoneState:
        doc = _flat_toml(text)
        if doc is None:
            doc = tomllib.loads(text)
        values: dict[str, Any] = {k: v for k, v in doc.items() if k in _STATE_FIELD_SET}
        values["zone"] = zone
        return cls(**values)

    def to_line(self) -> bytes:
        """The state as a zone file's first line (:data:`STATE_LINE`), JSON in ASCII."""
        doc = {name: getattr(self, name) for name in _LINE_FIELDS}
        text = json.dumps({k: v for k, v in doc.items() if v is not None}, separators=(",", ":"))
        return STATE_LINE + text.encode() + b"\n"

    @classmethod
    def from_line(cls, text: bytes, zone: str) -> ZoneState:
        """The state of a :meth:`to_line` (its JSON, without the prefix and newline);
        ValueError or TypeError when it is not one."""
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        values: dict[str, Any] = {k: v for k, v in doc.items() if k in _STATE_FIELD_SET}
        values["zone"] = zone
        return cls(**values)


STATE_LINE = b"; secdns-state "
"""How a zone file whose state it holds begins (a comment to every master-file reader).

A zone's first version in the store is one new file, not a zone file and a state
file (a cold start of 10,000 zones: about a tenth of its time): its state goes in
the file's first line, with the SHA-256 and size of the text after that line.  The
first state-only write (a check, a failure) makes the state file, which from then on
is the zone's state (the line in the zone file, if any, is then ignored), and later
versions are written without the line.  ``file_sha256`` and ``file_size`` always
describe the master file's text after a state line, if there is one."""
_STATE_LINE_MAX = 1 << 16  # a state line is ~300 bytes; a longer one is not ours

_STATE_FIELDS = tuple(field.name for field in dataclasses.fields(ZoneState))
_LINE_FIELDS = tuple(name for name in _STATE_FIELDS if name != "zone")
_STATE_FIELD_SET = frozenset(_STATE_FIELDS)


def state_line_end(head: bytes) -> int:
    """Where the master file's own text starts in a zone file beginning with ``head``:
    past its state line (:data:`STATE_LINE`), or 0 if it has none."""
    if not head.startswith(STATE_LINE):
        return 0
    end = head.find(b"\n", 0, _STATE_LINE_MAX)
    return 0 if end < 0 else end + 1


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
}  # (no tab: tomli_w writes it as it is, and so the flat reader leaves it to tomllib)


def _flat_value(value: int | str) -> str | None:
    """A state value as TOML that :func:`_flat_toml` reads back, or None."""
    if isinstance(value, int):
        return str(value)
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    if any((c < " " or c == "\x7f") and c not in _ESCAPES for c in value):
        return None
    return '"' + "".join(_ESCAPES.get(c, c) for c in value) + '"'


@dataclasses.dataclass(frozen=True, slots=True)
class JournalEntry:
    serial_from: int
    serial_to: int
    deleted: tuple[str, ...]  # master-file lines, the old SOA first
    added: tuple[str, ...]  # master-file lines, the new SOA first


def _journal_line(entry: JournalEntry) -> str:
    """One journal entry as the JSON line ``Store.read_journal`` reads back."""
    doc = {
        "from": entry.serial_from,
        "to": entry.serial_to,
        "deleted": list(entry.deleted),
        "added": list(entry.added),
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


class Store:
    """One directory holding ``<zone>.zone``, ``<zone>.state.toml``, ``<zone>.journal``."""

    def __init__(self, directory: str | Path, journal_bytes: int = DEFAULT_JOURNAL_BYTES) -> None:
        self.directory = Path(directory)
        self.journal_bytes = journal_bytes
        self._stems: dict[tuple[bytes, ...], str] = {}

    def ensure(self) -> None:
        if os.path.isdir(self.directory):  # (one stat: every zone's writer asks)
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LocalIOError(
                f"cannot create store directory {self.directory}: {err.strerror}"
            ) from err

    def zone_path(self, origin: dns.name.Name) -> Path:
        return Path(self._stem(origin) + _ZONE)

    def state_path(self, origin: dns.name.Name) -> Path:
        return Path(self._stem(origin) + _STATE)

    def journal_path(self, origin: dns.name.Name) -> Path:
        return Path(self._stem(origin) + _JOURNAL)

    def unlisted(self, origin: dns.name.Name, suffix: str, present: Container[str] | None) -> bool:
        """Whether the listing ``present`` (:meth:`listing`; None: not listed) lacks the
        zone's file ending in ``suffix`` (``_STATE``, ``_JOURNAL``)."""
        return present is not None and os.path.basename(self._stem(origin)) + suffix not in present

    def _stem(self, origin: dns.name.Name) -> str:
        """The directory and file name stem of a zone (computed once: 10,000 zones)."""
        # keyed by the labels (hashed in C), not the Name (its hash is a Python loop
        # over every byte: ~4 us, and a zone's write asks for its stem four times)
        stem = self._stems.get(origin.labels)
        if stem is None:
            stem = os.path.join(self.directory, zone_filename(origin))
            if len(self._stems) < 1_000_000:
                self._stems[origin.labels] = stem
        return stem

    # --- state ---
    def listing(self) -> frozenset[str] | None:
        """The names of the store's files, listed once (a restart reads 10,000 zones'
        files: none is then asked for that is not there), or None if unreadable."""
        try:
            with os.scandir(self.directory) as scan:
                return frozenset(entry.name for entry in scan)
        except OSError:
            return None

    def load_state(self, origin: dns.name.Name, present: Container[str] | None = None) -> ZoneState:
        """The zone's state; ``present``: the store's file names (:meth:`listing`),
        when the caller listed them, so that an absent file is not opened."""
        return self.load_state_from(origin, present)[0]

    def load_state_from(
        self, origin: dns.name.Name, present: Container[str] | None = None
    ) -> tuple[ZoneState, bool]:
        """The zone's state, and whether it has a state file: without one, the state
        is its zone file's state line (:data:`STATE_LINE`), if the file has one."""
        state, has_file, _whole = self.load_state_and_file(origin, present)
        return state, has_file

    def load_state_and_file(
        self, origin: dns.name.Name, present: Container[str] | None = None
    ) -> tuple[ZoneState, bool, bytes | None]:
        """:meth:`load_state_from`, and the zone file's bytes when reading its state
        line read it whole (a small zone: serve's restart of 10,000 of them reads each
        file once, not twice; :meth:`read_zone` takes them)."""
        if not self.unlisted(origin, _STATE, present):
            path = self._stem(origin) + _STATE
            try:
                text = read_bytes(path).decode()
            except FileNotFoundError:
                pass
            except OSError as err:
                raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
            else:
                try:
                    return ZoneState.from_toml(text, origin.to_text()), True, None
                except (tomllib.TOMLDecodeError, TypeError) as err:
                    log.warning(
                        "store: zone=%s state file %s is damaged (%s); starting afresh",
                        origin,
                        path,
                        err,
                    )
                    return ZoneState(zone=origin.to_text()), True, None
        state, whole = self._line_state(origin, present)
        return state, False, whole

    def _line_state(
        self, origin: dns.name.Name, present: Container[str] | None
    ) -> tuple[ZoneState, bytes | None]:
        """The state in the zone file's first line, or an empty one; and the file's
        bytes when the read of its head took it whole."""
        if self.unlisted(origin, _ZONE, present):
            return ZoneState(zone=origin.to_text()), None
        path = self._stem(origin) + _ZONE
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return ZoneState(zone=origin.to_text()), None
        except OSError as err:
            raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
        try:
            head = os.read(fd, _HEAD_READ)
            whole = head if len(head) < _HEAD_READ else None  # (a short read: at its end)
            if head.startswith(STATE_LINE) and b"\n" not in head:
                head += os.read(fd, _STATE_LINE_MAX)
        except OSError as err:
            raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
        finally:
            os.close(fd)
        end = state_line_end(head)
        if not end:
            return ZoneState(zone=origin.to_text()), whole
        try:
            return ZoneState.from_line(head[len(STATE_LINE) : end], origin.to_text()), whole
        except (ValueError, TypeError) as err:
            log.warning(
                "store: zone=%s state line of %s is damaged (%s); starting afresh",
                origin,
                path,
                err,
            )
            return ZoneState(zone=origin.to_text()), whole

    def save_state(self, origin: dns.name.Name, state: ZoneState) -> None:
        atomic_write(self.state_path(origin), state.to_toml())

    def record_check(self, origin: dns.name.Name, serial: int) -> None:
        """Remember a successful SOA check that found ``serial`` still current."""
        writer = ZoneWriter(self, origin)
        if writer.state.serial == serial:
            writer.checked()

    # --- zone file ---
    def read_zone(
        self, origin: dns.name.Name, state: ZoneState, whole: bytes | None = None
    ) -> tuple[str | None, str]:
        """The stored master file text if it is intact (after its state line, if it has
        one), else None and the reason; ``whole``: the file's bytes, read already
        (:meth:`load_state_and_file`)."""
        path = self.zone_path(origin)
        if state.serial is None or state.file_sha256 is None:
            return None, "no stored copy"
        try:
            raw = read_bytes(path) if whole is None else whole
        except FileNotFoundError:
            return None, f"{path.name} is missing"
        except OSError as err:
            raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
        start = state_line_end(raw)
        body = raw[start:] if start else raw
        if hashlib.sha256(body).hexdigest() != state.file_sha256:
            return None, f"{path.name} was changed outside secdns"
        return body.decode(), "ok"

    def zone_problem(
        self, origin: dns.name.Name, state: ZoneState, whole: bytes | None = None
    ) -> str | None:
        """Why the stored master file cannot be used, or None if it is intact
        (checked against the state's SHA-256 a chunk at a time); ``whole``: the file's
        bytes, read already (:meth:`load_state_and_file`)."""
        if state.serial is None or state.file_sha256 is None:
            return "no stored copy"
        path = self.zone_path(origin)
        digest = hashlib.sha256()
        try:
            if whole is not None:
                digest.update(whole[state_line_end(whole) :])
            else:
                with open(path, "rb") as handle:
                    chunk = handle.read(1 << 20)
                    digest.update(chunk[state_line_end(chunk) :])
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
        except FileNotFoundError:
            return f"{path.name} is missing"
        except OSError as err:
            raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
        if digest.hexdigest() != state.file_sha256:
            return f"{path.name} was changed outside secdns"
        return None

    def master_text(self, origin: dns.name.Name) -> str:
        """The zone file as a master file: its text after its state line, if any
        (unchecked: :meth:`read_zone` checks it against the state)."""
        raw = read_bytes(self.zone_path(origin))
        return raw[state_line_end(raw) :].decode()

    def master_chunks(self, origin: dns.name.Name) -> Iterator[bytes]:
        """:meth:`master_text` a chunk at a time (``-d DIR -o FILE`` copies it to FILE)."""
        chunks = read_chunks(self.zone_path(origin))
        first = next(chunks, b"")
        yield first[state_line_end(first) :]  # (a chunk is 1 MiB: the line is in the first)
        yield from chunks

    def write_zone(self, origin: dns.name.Name, text: str | Iterable[bytes]) -> tuple[str, int]:
        """Replace the zone file (text, or byte chunks); its SHA-256 and size."""
        return atomic_write(self.zone_path(origin), text)

    # --- journal ---
    def read_journal(
        self, origin: dns.name.Name, serial: int | None, present: Container[str] | None = None
    ) -> list[JournalEntry]:
        """Journal entries forming an unbroken chain that ends at ``serial``;
        ``present``: as :meth:`load_state` takes it (most zones have no journal)."""
        if self.unlisted(origin, _JOURNAL, present):
            return []
        path = self._stem(origin) + _JOURNAL
        try:
            text = read_bytes(path).decode()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
        entries = []
        for line in text.splitlines():
            try:
                doc = json.loads(line)
                entries.append(
                    JournalEntry(
                        int(doc["from"]), int(doc["to"]), tuple(doc["deleted"]), tuple(doc["added"])
                    )
                )
            except (ValueError, KeyError, TypeError):
                break  # a torn last line after a crash: ignore it and what follows
        # keep the chain that ends at the stored serial
        chain: list[JournalEntry] = []
        want = serial
        for entry in reversed(entries):
            if entry.serial_to != want:
                if chain:
                    break
                continue
            chain.append(entry)
            want = entry.serial_from
        chain.reverse()
        return chain

    def append_journal(
        self, origin: dns.name.Name, entries: list[JournalEntry], current_serial: int | None
    ) -> None:
        """Append deltas; rewrite the journal dropping old entries when it grows too big."""
        if not entries:
            return
        path = self.journal_path(origin)
        payload = "".join(_journal_line(e) for e in entries)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size + len(payload) > self.journal_bytes:
            kept = self.read_journal(origin, current_serial)
            lines = [_journal_line(e) for e in kept]
            lines.append(payload)
            while lines and sum(map(len, lines)) > self.journal_bytes:
                lines.pop(0)
            atomic_write(path, "".join(lines))
            return
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                if syncing():  # (not in serve's group commits with store_sync = "none")
                    os.fsync(handle.fileno())
        except OSError as err:
            raise LocalIOError(f"cannot write {path}: {err.strerror}") from err

    def reset_journal(self, origin: dns.name.Name) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.journal_path(origin).unlink()


@dataclasses.dataclass(frozen=True, slots=True)
class StoredSoa:
    """What the store keeps of a version's SOA: its serial, TTL ($TTL) and timers."""

    serial: int
    ttl: int
    refresh: int
    retry: int
    expire: int
    minimum: int

    @classmethod
    def from_line(cls, line: str) -> StoredSoa:
        """From a written SOA line (``@ TTL IN SOA mname rname serial ...``)."""
        try:
            _owner, ttl, _class, _type, rdata = line.split(" ", 4)
            serial, refresh, retry, expire, minimum = (int(f) for f in rdata.rsplit(" ", 5)[1:])
            return cls(serial, int(ttl), refresh, retry, expire, minimum)
        except ValueError as err:
            raise IxfrNotApplicable(f"not an SOA line: {line[:80]!r}") from err


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """What a commit wrote."""

    text: str | None  # None when written from an iterable of lines, never held whole
    records: int
    removed: int = 0  # an applied delta: records removed and added, SOA swaps included
    added: int = 0


class ZoneWriter:
    """The one way a zone is written into the store (``pull``, ``watch`` and ``serve``).

    In the spirit of dnspython's transactions, a version is committed whole:
    :meth:`replace` (a full version, e.g. an AXFR) or :meth:`apply` (journal
    entries applied to the stored version, e.g. an IXFR).  Each commit writes the
    journal first, then the zone file, then the state, each step atomic, so a
    crash leaves the previous version or the new one.  Blocking: run it in a thread.
    """

    def __init__(
        self, store: Store, origin: dns.name.Name, present: Container[str] | None = None
    ) -> None:
        """``present``: the store's file names, when the caller listed them
        (:meth:`Store.listing`)."""
        self.store = store
        self.origin = origin
        store.ensure()
        self.state, self._state_file, whole = store.load_state_and_file(origin, present)
        # the zone file's bytes when reading its state line took it whole: read_stored
        # hands them to read_zone (take_whole), so a small zone's file is read once
        self._whole = whole
        # a journal known absent (listed, or reset since) is not unlinked again at each
        # full version: a cold start of 10,000 zones asked to remove 10,000 missing files
        self._no_journal = store.unlisted(origin, _JOURNAL, present)
        # no file of the zone was listed: its first write makes new files (no mode to
        # keep, no state file to remove; a cold start of 10,000 zones)
        self._fresh = store.unlisted(origin, _ZONE, present) and store.unlisted(
            origin, _STATE, present
        )

    def take_whole(self) -> bytes | None:
        """The zone file's bytes read with its state (once: then dropped), or None."""
        whole, self._whole = self._whole, None
        return whole

    def read_lines(self) -> list[str]:
        """The stored version's record lines; :class:`IxfrNotApplicable` when the file
        is missing or was changed outside secdns."""
        text, why = self.store.read_zone(self.origin, self.state)
        if text is None:
            raise IxfrNotApplicable(why)
        return zonefile.split_header(text)[1]

    def replace(
        self,
        lines: Iterable[str],
        soa: StoredSoa,
        *,
        primary: str | None = None,
        journal: list[JournalEntry] | None = None,
        kind: str = "AXFR",
    ) -> Written:
        """Commit a full version (canonical lines); ``journal``: how it differs from
        the stored one (None: the journal starts afresh).

        A list of up to :data:`WHOLE_LINES` lines is rendered as text (returned in
        :class:`Written`; a first version's state goes in its first line); any other
        iterable, or a longer list, is written as it comes and never held whole.
        """
        if isinstance(lines, list) and len(lines) <= WHOLE_LINES:
            text = zonefile.render(self.origin, soa.serial, soa.ttl, lines)
            self._commit(text, soa, len(lines), kind, primary, journal)
            return Written(text, len(lines))
        counted = zonefile.Counted(lines)
        chunks = zonefile.render_chunks(self.origin, soa.serial, soa.ttl, counted)
        self._commit(chunks, soa, counted, kind, primary, journal)
        return Written(None, counted.count)

    def replace_merged(
        self, lines: Iterable[str], soa: StoredSoa, *, primary: str | None = None
    ) -> tuple[Written, int, int]:
        """Commit a full version (canonical lines, written as they come) with a
        journal entry found by merging it with the stored version as it is written;
        the records added and removed (SOA swap not counted), or all added when no
        intact stored version exists."""
        state = self.state
        old_serial = state.serial
        if old_serial is None or self.store.zone_problem(self.origin, state) is not None:
            written = self.replace(lines, soa, primary=primary)
            return written, written.records, 0
        path = self.store.zone_path(self.origin)
        with zonefile.diffed_against(self.origin, path, lines) as (merged, diff):
            counted = zonefile.Counted(merged)
            chunks = zonefile.render_chunks(self.origin, soa.serial, soa.ttl, counted)

            counts: list[int] = []

            def journal() -> list[JournalEntry] | None:
                entry, added, removed = axfr_entry(diff.deleted, diff.added, old_serial, soa.serial)
                counts[:] = added, removed
                return [entry] if entry else None

            self._commit(chunks, soa, counted, "AXFR", primary, journal)
        return Written(None, counted.count), counts[0], counts[1]

    def apply(
        self,
        entries: list[JournalEntry],
        soa: StoredSoa,
        *,
        primary: str | None = None,
        lines: list[str] | None = None,
    ) -> Written:
        """Commit the stored version (or ``lines``, when the caller holds them) with
        ``entries`` applied; :class:`IxfrNotApplicable` when they do not apply."""
        current = self.read_lines() if lines is None else lines
        keyer = zonefile.LineKeyer(self.origin)
        removed = added = 0
        for entry in entries:
            current, gone, new = zonefile.apply_line_delta(
                current, keyer, entry.deleted, entry.added
            )
            removed, added = removed + gone, added + new
        text = zonefile.render(self.origin, soa.serial, soa.ttl, current)
        self._commit(text, soa, len(current), "IXFR", primary, entries)
        return Written(text, len(current), removed, added)

    def checked(self, min_age: float = 0.0) -> bool:
        """A successful check found the stored version current; written only when the
        stored success is older than ``min_age`` seconds (or the state has an error),
        so 10,000 zones checked at start do not rewrite 10,000 state files.  The
        stored time only dates expiry after a restart: ``min_age`` is a small
        fraction of the SOA expire, erring early.  True when written."""
        last = epoch(self.state.last_success)
        if (
            min_age > 0
            and self.state.last_error is None
            and last is not None
            and 0 <= time.time() - last < min_age
        ):
            return False
        self.state.last_attempt = self.state.last_success = iso_time(whole_seconds=True)
        self.state.last_error = None
        self._save_state()
        return True

    def failed(self, error: str, min_age: float = 0.0) -> bool:
        """Note a failed refresh in the state file; a zone we never held gets none
        (a failed first pull of a mistyped zone leaves nothing behind).  With
        ``min_age``, the same error (but for its numbers: times, serials) noted less
        than that many seconds ago is not written again (serve's retries of a zone whose
        primary is down).  True when written."""
        if self.state.serial is None and not self.store.state_path(self.origin).exists():
            return False
        last = epoch(self.state.last_attempt)
        if (
            min_age > 0
            and self.state.last_error is not None
            and _DIGITS.sub("", self.state.last_error) == _DIGITS.sub("", error)
            and last is not None
            and 0 <= time.time() - last < min_age
        ):
            return False
        self.state.last_attempt = iso_time(whole_seconds=True)
        self.state.last_error = error
        self._save_state()
        return True

    def _save_state(self) -> None:
        self.store.save_state(self.origin, self.state)
        self._state_file = True

    def _commit(
        self,
        text: str | Iterable[bytes],
        soa: StoredSoa,
        records: int | zonefile.Counted,
        kind: str,
        primary: str | None,
        journal: list[JournalEntry] | Callable[[], list[JournalEntry] | None] | None,
    ) -> None:
        """Journal, zone file, state.  When ``text`` is an iterable the zone file's
        temporary copy is written first, and ``journal`` may be a callable (its
        entries are known once the lines have gone by); the renames keep the order.
        A zone without a state file (its first version) and a text given whole gets
        its state in the zone file's first line instead: one file, one rename."""
        self._whole = None  # (the bytes read with the state are of the old file)
        fresh, self._fresh = self._fresh, False
        if not self._state_file and isinstance(text, str) and not callable(journal):
            body = text.encode()
            self._journal(journal)
            self._stamp(soa, records, kind, primary, hashlib.sha256(body).hexdigest(), len(body))
            path = self.store.zone_path(self.origin)
            # one write (the line and a small zone's text joined: a system call less)
            atomic_write(path, (self.state.to_line() + body,), digest=False, new=fresh)
            if fresh:  # (no state file was listed)
                return
            # a state file another writer of the store made since (a pull sharing it)
            # would rule over this line, and be older: gone, the line is the state
            # (a crash before the rename leaves the old file and its own line: whole)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.store.state_path(self.origin))
            return
        if callable(journal) or not isinstance(text, str):
            path = self.store.zone_path(self.origin)
            with AtomicFile(path) as temp:
                temp.write_all(text if not isinstance(text, str) else (text.encode(),))
                self._journal(journal() if callable(journal) else journal)
            digest, size = temp.sha256, temp.size
        else:
            self._journal(journal)
            digest, size = self.store.write_zone(self.origin, text)
        self._stamp(soa, records, kind, primary, digest, size)
        self._save_state()

    def _stamp(
        self,
        soa: StoredSoa,
        records: int | zonefile.Counted,
        kind: str,
        primary: str | None,
        digest: str,
        size: int,
    ) -> None:
        """The state of a version just written."""
        state = self.state
        now = iso_time(whole_seconds=True)
        if state.serial != soa.serial:  # (a rewrite of the same serial changes nothing)
            state.last_change = now
        state.serial = soa.serial
        state.primary = primary
        state.last_attempt = state.last_success = now
        state.last_kind = kind
        state.last_error = None
        state.refresh, state.retry, state.expire = soa.refresh, soa.retry, soa.expire
        state.minimum = soa.minimum
        state.records = records if isinstance(records, int) else records.count
        state.file_sha256 = digest
        state.file_size = size

    def _journal(self, journal: list[JournalEntry] | None) -> None:
        if journal is None:
            if not self._no_journal:
                self.store.reset_journal(self.origin)
                self._no_journal = True
        else:
            self._no_journal = False  # (before: a failed append may have left a part)
            self.store.append_journal(self.origin, journal, self.state.serial)


def axfr_entry(
    deleted: list[str], added: list[str], serial_from: int, serial_to: int
) -> tuple[JournalEntry | None, int, int]:
    """The journal entry for a full version that deleted and added these lines (each
    list in canonical order), and the (+, -) counts.

    The counts leave the SOA out, as an IXFR's do (its SOA swap is not a change of
    data), so a full zone answering an IXFR counts as the true IXFR would.  There is
    an entry only when the SOA changed serial, as an IXFR delta has.
    """
    old_soa = [line for line in deleted if is_soa_line(line)]
    new_soa = [line for line in added if is_soa_line(line)]
    entry = None
    if len(old_soa) == 1 and len(new_soa) == 1 and serial_from != serial_to:
        entry = JournalEntry(
            serial_from,
            serial_to,
            tuple(old_soa + [d for d in deleted if d not in old_soa]),
            tuple(new_soa + [a for a in added if a not in new_soa]),
        )
    return entry, len(added) - len(new_soa), len(deleted) - len(old_soa)


def is_soa_line(line: str) -> bool:
    """Whether a canonical line (``owner ttl class type rdata``) is an SOA record."""
    parts = line.split(" ", 4)
    return len(parts) == 5 and parts[3] == "SOA"
