"""One ``serve`` per store: an exclusive lock on ``DIR/.secdns-serve.lock``.

Two servers on one store (a second serve given another ``[server] control`` to get
past the socket in use) each rewrite the zone files the other changed ("changed
outside secdns: rewriting the file from memory"), over and over.  The lock is
``flock``: the kernel drops it when the process ends, however it ends, so a crash
leaves no stale lock to clear by hand.  The file holds the holder's PID, for the
error the next serve prints.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from secdns.errors import LocalIOError

LOCK_FILE = ".secdns-serve.lock"


def hold_store(directory: Path) -> int:
    """Lock ``directory`` for this process (the descriptor: held until closed or exit);
    :class:`LocalIOError` naming the other serve's PID when it is held already."""
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise LocalIOError(f"cannot create {path}: {err.strerror}") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise LocalIOError(
            f"store directory {directory} is in use by another secdns serve (pid {holder}): two "
            "servers writing one store would undo each other's writes",
            hint="stop the other, or give this one another [server] directory",
        ) from None
    except OSError as err:
        os.close(fd)
        raise LocalIOError(f"cannot lock {path}: {err.strerror}") from err
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def refuse_if_served(directory: Path) -> None:
    """``pull -d DIR`` (or watch's store) on a store a running serve holds:
    :class:`LocalIOError`.  serve keeps its zones in memory and rewrites a file changed
    under it ("changed outside secdns"), so a pull there races its writes for nothing:
    ``secdns ctl refresh`` asks serve itself.  A probe with a shared lock, let go at
    once: nothing is held while the pull runs."""
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # no lock file: no serve ever used the store
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        raise LocalIOError(
            f"store directory {directory} is served by secdns serve (pid {holder}): a pull into it "
            "would race serve's own writes",
            hint="ask serve: secdns ctl refresh ZONE (or retransfer); --force to pull anyway",
        ) from None
    except OSError:
        return
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """The PID the lock file's holder wrote in it."""
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
