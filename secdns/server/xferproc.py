"""serve's transfer process: a cold start's AXFRs made, decoded and rendered outside
serve's interpreter.

A cold start of 10,000 small zones is bound by the interpreter lock of serve's one
process: the event loop's thread decodes each AXFR (~80 us a zone) and builds the
served version while the UDP threads answer.  At a cold start of at least
:data:`MIN_ZONES` zones serve starts this process (``python -m
secdns.server.xferproc``), as NSD's xfrd makes transfers apart from the server that
answers: :func:`secdns.pull._without_probe` (an AXFR without a SOA probe, for a zone
holding nothing, unsigned, plain TCP) asks it instead of transferring in-process.
It runs the same engine (``engine.transfer``, its checks and limits, its kept
connections) and sends back the SOA and the zone's canonical lines, which serve
builds its version from as it would from its own transfer.  10,000 zones: served
after ~4.4 s against ~5.4 s (bench/manyzones_bench.py).

It is only an optimisation: until it has started, once the cold start is over (it
ends then), when it ends or cannot start, transfers are made in serve as before;
an AXFR that fails here is made again by serve's probing path, which reports the
failure as always.  A zone larger than :data:`MAX_BYTES` is left to serve (the
first part is transferred twice): its lines are not sent through a pipe.

Frames both ways: a 4-byte big-endian length and a pickle, over pipes only serve
holds.  Serve to here: a list of :class:`Request`; here to serve: a list of
``(id, outcome)``, the outcome ``("ok", (soa, lines, count, messages, bytes,
edns_expire))``, ``("timeout", message, hint, server, silent)`` or ``("failed", message)``.  No
secrets cross: a zone with a TSIG key or XoT is never asked for here.  It ends at
the end of its stdin (serve closes it, or ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import struct
import sys
from typing import TYPE_CHECKING, Any

import dns.name

from secdns import wire, zonefile
from secdns.config import Limits
from secdns.errors import SecdnsError, TimeoutError_

if TYPE_CHECKING:
    from secdns.pull import PullOptions

log = logging.getLogger(__name__)

MIN_ZONES = 200
"""Zones without a version at start from which serve starts the process (fewer: in
serve, where a first transfer does not wait for a process to start)."""
MAX_BYTES = 4 << 20
"""A zone whose AXFR brings more is stopped here and transferred by serve."""
HEADER = struct.Struct("!I")


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    ident: int
    origin: str
    address: str
    port: int
    timeout: float
    lifetime: float
    limits: Limits


Far = tuple[wire.Record, zonefile.FullZone, int, int, int | None]
"""An AXFR made in the process: its SOA, the zone (its lines rendered), messages,
bytes, and the primary's EDNS EXPIRE."""


class TransferProcess:
    """Serve's side: start the process, ask it for AXFRs, end it."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.running = False  # started and answering
        self.ended = False  # closed, or failed: never started again
        self._starting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self._out: list[Request] = []
        self._next = 0
        self.made = 0  # AXFRs it brought (for tests and the debug log)

    def start(self) -> None:
        """Start the process in the background (transfers are made in serve meanwhile)."""
        if self._starting is None and not self.ended:
            self._starting = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 24,
            )
        except OSError as err:
            log.warning("serve: cannot start the transfer process (%s): transfers in serve", err)
            self.ended = True
            return
        if self.ended:  # closed while it started
            self._kill()
            return
        self.running = True
        self._reader = asyncio.get_running_loop().create_task(self._read())
        log.debug("serve: transfer process %d started", self.process.pid)

    async def axfr(
        self, origin: dns.name.Name, address: str, port: int, options: PullOptions
    ) -> Far | str | None:
        """An AXFR made in the process: what it brought, a failure (its reason; a
        timeout is raised, as in serve), or None when the process is not running."""
        if not self.running:
            return None
        loop = asyncio.get_running_loop()
        self._next += 1
        future: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        self._waiting[self._next] = future
        if not self._out:
            loop.call_soon(self._send)  # the requests of one turn of the loop together
        limits = Limits(options.limits.max_records, min(options.limits.max_bytes, MAX_BYTES))
        text = origin.to_text()
        request = Request(
            self._next, text, address, port, options.timeout, options.lifetime, limits
        )
        self._out.append(request)
        outcome = await future
        if outcome[0] == "ok":
            self.made += 1
            soa, lines, count, messages, size, edns_expire = outcome[1]
            zone = zonefile.FullZone(soa, [])
            zone.rendered, zone.rendered_rows = ([lines] if lines else []), count
            return soa, zone, messages, size, edns_expire
        if outcome[0] == "timeout":
            timeout = TimeoutError_(outcome[1], hint=outcome[2], server=outcome[3])
            raise timeout if outcome[4] else timeout.heard()
        return str(outcome[1]) if outcome[0] == "failed" else None

    def _send(self) -> None:
        requests, self._out = self._out, []
        process = self.process
        if not self.running or process is None or process.stdin is None:
            self._fail_waiting()
            return
        payload = pickle.dumps(requests, pickle.HIGHEST_PROTOCOL)
        try:
            process.stdin.write(HEADER.pack(len(payload)) + payload)
        except (OSError, RuntimeError) as err:  # (it ended: the reader says so)
            log.debug("serve: transfer process: %s", err)

    async def _read(self) -> None:
        process = self.process
        assert process is not None and process.stdout is not None
        try:
            while True:
                head = await process.stdout.readexactly(HEADER.size)
                (size,) = HEADER.unpack(head)
                for ident, outcome in pickle.loads(await process.stdout.readexactly(size)):
                    future = self._waiting.pop(ident, None)
                    if future is not None and not future.done():
                        future.set_result(outcome)
        except (asyncio.IncompleteReadError, OSError, pickle.PickleError, ValueError) as err:
            if not self.ended:
                log.warning("serve: the transfer process ended (%s): transfers in serve", err)
        finally:
            self.running = False
            self.ended = True
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        """Transfers asked of a process that is gone are made in serve (None)."""
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_result(("gone",))

    async def close(self, timeout: float = 5.0) -> None:
        """End it: at the end of the cold start, and at shutdown."""
        if not self.ended and self.process is not None:
            log.debug("serve: transfer process %d ends (%d AXFRs)", self.process.pid, self.made)
        self.ended = True
        self.running = False
        if self._starting is not None and not self._starting.done():
            await asyncio.gather(self._starting, return_exceptions=True)
        process = self.process
        if process is None or process.returncode is not None:
            self._fail_waiting()
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            self._kill()
            await process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self._fail_waiting()

    def abandon(self) -> None:
        """End it at once, without waiting (a serve whose start failed)."""
        self.ended = True
        self.running = False
        if self._starting is not None:
            self._starting.cancel()
        self._kill()
        self._fail_waiting()

    def _kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


# --- the process ---------------------------------------------------------------------------


async def _transfer(request: Request) -> tuple[Any, ...]:
    from secdns import engine
    from secdns.xfr import XfrKind

    try:
        xfr = await engine.transfer(
            dns.name.from_text(request.origin),
            request.address,
            request.port,
            XfrKind.AXFR,
            timeout=request.timeout,
            lifetime=request.lifetime,
            limits=request.limits,
            ask_expire=True,
        )
        reader = xfr.reader
        zone = reader.zone
        assert zone is not None
        lines = zone.lines()
        next(lines)  # the SOA's: serve renders it from the SOA record
        body = "\n".join(lines)
        count = body.count("\n") + 1 if body else 0
        blob = (body + "\n").encode() if body else b""
        return ("ok", (zone.soa, blob, count, reader.messages, reader.bytes, xfr.edns_expire))
    except TimeoutError_ as err:
        return ("timeout", err.message, err.hint, err.server, err.silent)
    except SecdnsError as err:
        return ("failed", err.one_line())
    except Exception as err:  # (any other failure: serve transfers it itself)
        return ("failed", repr(err))


async def _serve() -> None:
    from secdns import tcpstream

    loop = asyncio.get_running_loop()
    requests = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(requests), os.fdopen(0, "rb", buffering=0)
    )
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # nothing printed by mistake can break a reply frame
    tcpstream.IdleConnections.install()  # the primary's connection kept for its next zone
    done: list[tuple[int, tuple[Any, ...]]] = []
    tasks: set[asyncio.Task[None]] = set()

    def flush() -> None:
        payload = pickle.dumps(done, pickle.HIGHEST_PROTOCOL)
        done.clear()
        replies.write(HEADER.pack(len(payload)) + payload)

    async def one(request: Request) -> None:
        outcome = await _transfer(request)
        if not done:
            loop.call_soon(flush)  # the answers of one turn of the loop together
        done.append((request.ident, outcome))

    while True:
        try:
            head = await requests.readexactly(HEADER.size)
            batch = pickle.loads(await requests.readexactly(HEADER.unpack(head)[0]))
        except asyncio.IncompleteReadError:
            break
        for request in batch:
            task = loop.create_task(one(request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    for task in tasks:
        task.cancel()


def main() -> None:
    # in serve's process group: a terminal's ^C or a TERM to the group reaches serve,
    # which closes this stdin at its shutdown
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    with contextlib.suppress(BrokenPipeError):
        asyncio.run(_serve())


if __name__ == "__main__":
    main()
