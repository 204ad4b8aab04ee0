"""Replacing a file atomically, alone or with many others (no DNS here).

A write goes to a temporary file beside its target (named ``.NAME.PID.XXXXXXXX.tmp``),
is fsynced, renamed over the target and the directory fsynced, so a crash at any
point leaves the previous version.  :class:`AtomicFile` streams chunks (a large
zone never needs its whole text in memory) and hashes them as they pass;
:func:`group_commit` makes many writes durable with one round of fsyncs (serve
with 10,000 zones); the first write of a target in a process sweeps temporary
files that a killed writer left.  :mod:`secdns.store` builds on this.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import functools
import hashlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from secdns.errors import LocalIOError

log = logging.getLogger("secdns.store")


_TEMP_RANDOM = r"[a-z0-9_]{8}"  # what tempfile.mkstemp puts between prefix and suffix
_OUR_TEMP = re.compile(rf"(?P<pid>\d+)\.{_TEMP_RANDOM}")
_OLD_TEMP = re.compile(_TEMP_RANDOM)  # before the writer's pid was in the name
OLD_TEMP_AGE = 3600.0
"""A temporary file without a pid is removed once it is this old (seconds)."""
_swept: set[str] = set()
_temp_listing: dict[Path, list[os.DirEntry[str]]] = {}


def _temp_entries(directory: Path) -> list[os.DirEntry[str]]:
    """The temporary files (``.*.tmp``) in ``directory``, listed once per process: a
    store of 10,000 zones is not scanned again for each of its 30,000 files."""
    listing = _temp_listing.get(directory)
    if listing is None:
        try:
            with os.scandir(directory) as scan:
                listing = [e for e in scan if e.name[:1] == "." and e.name.endswith(".tmp")]
        except OSError:
            return []
        if len(_temp_listing) < 10_000:
            _temp_listing[directory] = listing
    return listing


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def sweep_temp_files(path: Path) -> list[str]:
    """Remove our stale temporary files for ``path`` (``.NAME.PID.XXXXXXXX.tmp`` of a
    writer that is gone, e.g. killed during the final write); the names removed.

    A file is ours only if its name is exactly what :func:`atomic_write` makes for
    ``path``; one whose writer is alive (or is this process) is left alone.
    """
    prefix = f".{path.name}."
    removed: list[str] = []
    entries = _temp_entries(path.parent)
    for entry in list(entries):
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix) : -len(".tmp")]
        ours = _OUR_TEMP.fullmatch(middle)
        if ours is not None:
            pid = int(ours.group("pid"))
            if pid == os.getpid() or _alive(pid):
                continue
        elif _OLD_TEMP.fullmatch(middle) is not None:
            try:
                if time.time() - entry.stat().st_mtime < OLD_TEMP_AGE:
                    continue
            except OSError:
                continue
        else:
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        entries.remove(entry)
        removed.append(name)
        _said_removed(entry.path)
    return removed


SWEEP_WARNINGS = 5
"""Stale temporary files named one warning each per process; the rest at debug (a
serve of 10,000 zones killed mid-commit leaves hundreds: a stranger saw 63 lines)."""
_removed_said = [0]


def _said_removed(path: str) -> None:
    _removed_said[0] += 1
    if _removed_said[0] <= SWEEP_WARNINGS:
        log.warning("store: removed %s, left by a writer that was stopped mid-write", path)
        if _removed_said[0] == SWEEP_WARNINGS:
            log.warning("store: further stale temporary files are removed without a warning")
    else:
        log.debug("store: removed %s, left by a writer that was stopped mid-write", path)


class GroupCommit:
    """Atomic writes made durable together: one round of fsyncs for many files.

    Inside ``with group_commit():`` this thread's :func:`atomic_write` calls write
    their temporary files without waiting; at the end of the block every file is
    fsynced (concurrently, so the file system commits them together), renamed
    into place in the order written, and each directory fsynced once.  A crash
    before the end leaves every target's previous version.  Serve with 10,000
    zones commits its store writes this way instead of four fsyncs per zone.
    A path written inside the block is read back only after it ends.

    ``sync=False`` (serve's ``store_sync = "none"``): the files are renamed into place
    in the same order without any fsync, as Knot writes its zone files
    (``zonefile-sync``): readers still never see a partly written file, but a crash
    of the system (not of the process) may leave a target empty, cut short or older,
    which the store's SHA-256 in the state file catches at the next load.
    """

    def __init__(self, sync: bool = True) -> None:
        self.pending: list[tuple[str, Path]] = []
        self.sync = sync
        # descriptors of pending files left open for their fsync (by temporary name):
        # an open and a close less a file, each a hand-off of the interpreter lock
        self.open_fds: dict[str, int] = {}

    def keep(self, tmp_name: str, fd: int) -> bool:
        """Hold ``fd`` (of a pending file) open until its fsync; False when the group
        holds :data:`KEPT_FDS` already, or does not fsync (the caller closes it)."""
        if not self.sync or len(self.open_fds) >= KEPT_FDS:
            return False
        self.open_fds[tmp_name] = fd
        return True

    def commit(self) -> None:
        pending, self.pending = self.pending, []
        kept, self.open_fds = self.open_fds, {}
        if not pending:
            return
        errors: list[LocalIOError] = []

        def sync(item: tuple[str, Path]) -> None:
            tmp_name, path = item
            try:
                fd = kept.get(tmp_name, -1)
                if fd >= 0:
                    os.fsync(fd)
                    return
                fd = os.open(tmp_name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as err:
                errors.append(LocalIOError(f"cannot write {path}: {err.strerror}"))

        def sync_each(items: list[tuple[str, Path]]) -> None:
            for item in items:
                sync(item)

        # a share of the files per thread, not a task per file: a task each cost two
        # futex system calls per file (10,000 zones write 20,000 files at a cold start)
        shares = [pending[i::SYNC_THREADS] for i in range(min(SYNC_THREADS, len(pending)))]
        try:
            if self.sync:
                list(_sync_pool().map(sync_each, shares))
        finally:
            for fd in kept.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
        renamed = 0
        try:
            if errors:
                raise errors[0]
            for tmp_name, path in pending:
                try:
                    os.replace(tmp_name, path)
                except OSError as err:
                    raise LocalIOError(f"cannot write {path}: {err.strerror}") from err
                renamed += 1
        finally:
            for tmp_name, _path in pending[renamed:]:  # those not renamed
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        if not self.sync:
            return
        for directory in {path.parent for _tmp, path in pending}:
            fsync_directory(directory)


_group = threading.local()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
SYNC_THREADS = 16
"""fsyncs a group commit runs at once (the file system commits them together)."""
KEPT_FDS = 256
"""Pending files a group commit holds open for their fsync at most (the rest are
opened again for it): well inside the usual 1,024 descriptors a process."""


def _sync_pool() -> concurrent.futures.ThreadPoolExecutor:
    """One pool for every group commit of the process (not 16 new threads per commit:
    serve commits 10,000 zones' first writes in 40 groups at a cold start)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fsync")
        return _pool


_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
_temp_random = random.Random()


def _create_temp(directory: Path, name: str, mode: int = 0o600) -> tuple[int, str]:
    """A new file ``.NAME.PID.XXXXXXXX.tmp`` in ``directory`` (``mode`` less the
    umask), opened for writing: what ``tempfile.mkstemp`` makes with that prefix and
    suffix, without its generic work (two files per zone at a 10,000-zone cold start)."""
    prefix = os.path.join(directory, f".{name}.{os.getpid()}.")
    for _ in range(100):  # (tempfile's TMP_MAX)
        tmp_name = prefix + "".join(_temp_random.choices(_TEMP_CHARS, k=8)) + ".tmp"
        try:
            return os.open(tmp_name, _TEMP_FLAGS, mode), tmp_name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no usable temporary name found")


@contextlib.contextmanager
def group_commit(sync: bool = True) -> Iterator[GroupCommit]:
    """Make this thread's atomic writes in the block durable together at its end
    (``sync=False``: only renamed into place together, see :class:`GroupCommit`)."""
    group = GroupCommit(sync)
    _group.current = group
    try:
        yield group
    finally:  # what was written is whole: it is committed even if the block failed
        _group.current = None
        group.commit()


def syncing() -> bool:
    """Whether this thread's writes are fsynced (False inside ``group_commit(sync=False)``)."""
    group: GroupCommit | None = getattr(_group, "current", None)
    return group is None or group.sync


def atomic_write(
    path: Path,
    data: bytes | str | Iterable[bytes],
    *,
    digest: bool = True,
    new: bool = False,
    private: bool = False,
) -> tuple[str, int]:
    """Replace ``path`` with ``data`` atomically, or leave it untouched.

    ``data`` may be an iterable of byte chunks, written as they come, so a large
    zone never needs its whole text in memory.  Returns the SHA-256 (hex) and
    size of what was written; the SHA-256 is "" without ``digest`` (a caller that
    keeps no digest: ~40 ms of CPU for a 40 MB zone here, with SHA-NI).  ``new``:
    the caller knows ``path`` absent (listed), so no mode is kept from it.
    ``private``: the file is 0600 whatever it was (it holds a secret).
    """
    chunks: Iterable[bytes]
    if isinstance(data, str):
        chunks = (data.encode(),)
    elif isinstance(data, bytes | bytearray | memoryview):
        chunks = (bytes(data),)
    else:
        chunks = data
    with AtomicFile(path, digest=digest, new=new, private=private) as temp:
        temp.write_all(chunks)
    return temp.sha256, temp.size


class AtomicFile:
    """A temporary file beside ``path`` that replaces it when the ``with`` block
    ends normally (fsync, rename, fsync of the directory), and is removed when it
    raises.  The first write of a target in a process sweeps its stale temporary
    files.  Between the last write and the rename the caller may do more (the
    store appends its journal there, so the journal is never behind the file).
    """

    def __init__(
        self, path: Path, *, digest: bool = True, new: bool = False, private: bool = False
    ) -> None:
        self.path = path
        self._private = private  # 0600, the target's mode not kept (a TSIG secret)
        # a new file's temporary copy is made 0644 at once when the umask keeps that
        # (no stat of the target, no chmod: two hand-offs of the interpreter lock less)
        self._new = new and not private and _umask_keeps_0644()
        self.sha256 = ""  # of what was written (left "" without ``digest``)
        self.size = 0
        self._digest = hashlib.sha256() if digest else None
        self._tmp_name = ""
        self._fd = -1
        self._group: GroupCommit | None = getattr(_group, "current", None)

    def __enter__(self) -> AtomicFile:
        path, directory = self.path, self.path.parent
        text = str(path)  # (kept as text: a Path held per file costs ~350 bytes)
        if text not in _swept:
            sweep_temp_files(path)
            if len(_swept) < 1_000_000:
                _swept.add(text)
        try:
            fd, self._tmp_name = _create_temp(directory, path.name, 0o644 if self._new else 0o600)
        except OSError as err:
            raise LocalIOError(f"cannot create a file in {directory}: {err.strerror}") from err
        # written with os.write on the descriptor: the chunks are large already, and a
        # file object costs an fstat (and, buffered, an isatty ioctl and an lseek) for
        # each of the two files a zone's write makes
        self._fd = fd
        return self

    def write_all(self, chunks: Iterable[bytes]) -> None:
        fd, digest = self._fd, self._digest
        try:
            for chunk in chunks:
                if digest is not None:
                    digest.update(chunk)
                self.size += len(chunk)
                written = os.write(fd, chunk)  # (a write may take part of it)
                if written != len(chunk):
                    view = memoryview(chunk)[written:]
                    while view:
                        view = view[os.write(fd, view) :]
            if self._group is None:  # in a group_commit() block: fsynced with the others
                os.fsync(fd)
        except OSError as err:
            raise LocalIOError(f"cannot write {self.path}: {err.strerror}") from err
        if digest is not None:
            self.sha256 = digest.hexdigest()

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        path, tmp_name = self.path, self._tmp_name
        try:
            fd, self._fd = self._fd, -1
            try:
                if kind is not None:
                    raise _Abandon
                if not self._new and not self._private:
                    self._keep_mode(fd)
            except BaseException:
                os.close(fd)
                raise
            if self._group is None or not self._group.keep(tmp_name, fd):
                os.close(fd)  # (else the group's fsync uses it, then closes it)
            if self._group is not None:  # renamed (after one fsync round) at the block's end
                self._group.pending.append((tmp_name, path))
                return
            os.replace(tmp_name, path)
        except _Abandon:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            return
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise LocalIOError(f"cannot write {path}: {err.strerror}") from err
        fsync_directory(path.parent)

    def _keep_mode(self, fd: int) -> None:
        """The target's mode, or 0644 for a new file (one stat, no chmod by path)."""
        try:
            mode = os.stat(self.path).st_mode & 0o7777
        except (FileNotFoundError, NotADirectoryError):
            os.fchmod(fd, 0o644)
        except OSError:
            pass
        else:
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode)


@functools.cache
def _umask_keeps_0644() -> bool:
    """Whether this process's umask leaves a file created 0644 at 0644 (read once, from
    /proc: setting it to read it would race with other threads)."""
    value = 0o777
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                value = int(line.split()[1], 8)
    return value & 0o644 == 0


class _Abandon(Exception):
    """The ``with`` block of an :class:`AtomicFile` raised: remove the temporary copy."""


def read_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    """A file's bytes a chunk at a time (to copy or hash a zone without holding it)."""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(size):
                yield chunk
    except OSError as err:
        raise LocalIOError(f"cannot read {path}: {err.strerror}") from err


def fsync_directory(directory: Path) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
