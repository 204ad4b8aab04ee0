"""stdout for the events of a long-running command (``watch``): each line flushed
as it is written, and a reader gone from the pipe (``| head``) stops the command
quietly instead of failing at the next write, which may be hours away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from typing import IO

from rich.console import Console


class EventStream:
    """stdout for events: flushed per line; a closed pipe stops the watch quietly."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.stop: asyncio.Event | None = None
        self.broken = False

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self._gone()

    def write_json(self, doc: Mapping[str, object]) -> None:
        """One event as a compact JSON line."""
        self.write(json.dumps(doc, separators=(",", ":")) + "\n")

    def console(self) -> Console:
        """A rich console on this stream, for a terminal."""
        return Console(file=self.stream, highlight=False)

    def _gone(self) -> None:
        self.broken = True
        if self.stop is not None:
            self.stop.set()
        try:  # so that the interpreter's final flush does not fail again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass

    @contextlib.contextmanager
    def watching(self, stop: asyncio.Event) -> Iterator[None]:
        """Stop when the reader of a stdout pipe goes away (``| head``), not at the
        next event, which may be hours away: epoll flags the write end then."""
        self.stop = stop
        loop = asyncio.get_running_loop()
        try:
            fd = self.stream.fileno()
            is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except (OSError, ValueError, AttributeError):  # not a real file (tests)
            is_pipe = False
        if is_pipe:
            loop.add_reader(fd, self._reader_gone, fd)
        try:
            yield
        finally:
            if is_pipe:
                loop.remove_reader(fd)

    def _reader_gone(self, fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        self._gone()


class EventPrinter:
    """What every ``watch`` renderer shares: where it prints (``out``) and how
    (JSON lines, quiet, rich on a terminal)."""

    def __init__(self, out: EventStream, *, as_json: bool, quiet: bool, rich: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.quiet = quiet
        self.rich = rich and not as_json
