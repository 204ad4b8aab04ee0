"""A TCP connection read and written with the event loop's socket calls.

:func:`secdns.engine.transfer` needs four things of a connection: connect, send the
request, ``readexactly(n)`` (with :class:`asyncio.IncompleteReadError` at the end of
the stream, as :class:`asyncio.StreamReader` raises it) and close.  asyncio's streams
build a transport, a protocol, a reader and a writer per connection and call back
through them for every chunk; serve's cold start of 10,000 small zones opens 10,000
connections that each carry one message.  :class:`TcpStream` keeps a socket and a
buffer.  Connecting and sending the query wait on nothing when they complete at once
(:meth:`TcpStream.start`, :meth:`TcpStream.flush`: a primary on this host or next
to it), so that a small transfer's one wait is for its answer.  Each read first
tries ``recv`` on the non-blocking socket
(``loop.sock_recv`` waits on the selector only when nothing is there yet), in
chunks of up to :data:`CHUNK` octets, and reads only when asked, so the bytes held
are bounded by what the caller asks for plus one chunk (a primary faster than the
decoder waits in the kernel's buffers, as a paused stream would make it).
"""

from __future__ import annotations

import asyncio
import socket
import weakref

CHUNK = 1 << 18
"""Octets asked of the socket per read (asyncio's streams read 256 KiB too)."""
_STREAM_NONBLOCK = hasattr(socket, "SOCK_NONBLOCK")
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK if _STREAM_NONBLOCK else socket.SOCK_STREAM
"""A TCP socket made non-blocking as it is made (Linux): no system call to set it so."""


class TcpStream:
    """One connected TCP socket: ``readexactly``, ``write`` + ``drain``, ``close``
    (the parts of :class:`asyncio.StreamReader` and :class:`asyncio.StreamWriter` a
    transfer uses)."""

    __slots__ = ("_buffer", "_connecting", "_eof", "_loop", "_pending", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._eof = False
        self._pending = b""
        # (start: the address still being connected to)
        self._connecting: tuple[str, int] | tuple[str, int, int, int] | None = None

    @classmethod
    def start(cls, address: str, port: int) -> TcpStream:
        """Start connecting to ``address`` (an IP address) and ``port``, without waiting:
        :attr:`connected` says whether the connection is made already, else
        :meth:`wait_connected` waits for it.  OSError as ``connect`` raises.

        The non-blocking ``connect`` says "in progress" even when the handshake is
        already done as it returns (a primary on this host or next to it): a
        ``getpeername`` then finds the socket connected, and no wait on the selector
        (a registration, a loop pass and a future; nor the caller's timer) is made.
        """
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, _STREAM)
        connecting: tuple[str, int] | tuple[str, int, int, int] | None = None
        try:
            if not _STREAM_NONBLOCK:
                sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = _sockaddr(address, port, family)
            try:
                sock.connect(target)
            except (BlockingIOError, InterruptedError):
                try:
                    sock.getpeername()
                except OSError:  # not connected yet (or refused: the wait says which)
                    connecting = target
            stream = cls(sock)
        except BaseException:
            sock.close()
            raise
        stream._connecting = connecting
        return stream

    @property
    def connected(self) -> bool:
        return self._connecting is None

    async def wait_connected(self) -> None:
        """Wait until the connection :meth:`start` began is made: the socket turns
        writable and its error is read, as ``loop.sock_connect`` does (OSError when it
        failed; the caller closes the stream)."""
        if self._connecting is not None:
            await _connected(self._sock, self._connecting)
            self._connecting = None

    @classmethod
    async def connect(cls, address: str, port: int) -> TcpStream:
        """:meth:`start`, then :meth:`wait_connected` (closed again when that fails)."""
        stream = cls.start(address, port)
        try:
            await stream.wait_connected()
        except BaseException:
            stream.close()
            raise
        return stream

    def get_extra_info(self, name: str) -> socket.socket | None:
        return self._sock if name == "socket" else None

    def write(self, data: bytes) -> None:
        self._pending += data

    def flush(self) -> bool:
        """Send what :meth:`write` holds as far as the socket takes it now, without
        waiting; True when all of it went (else :meth:`drain` sends the rest)."""
        data = self._pending
        if data:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            self._pending = data[sent:]
        return not self._pending

    async def drain(self) -> None:
        data, self._pending = self._pending, b""
        if data:
            await self._loop.sock_sendall(self._sock, data)

    async def readexactly(self, count: int) -> bytes:
        """``count`` octets; :class:`asyncio.IncompleteReadError` (with what there was)
        when the stream ends first."""
        buffer = self._buffer
        while len(buffer) < count:
            if self._eof:
                partial = bytes(buffer)
                buffer.clear()
                raise asyncio.IncompleteReadError(partial, count)
            data = await self._loop.sock_recv(self._sock, CHUNK)
            if data:
                buffer += data
            else:
                self._eof = True
        if len(buffer) == count:
            data = bytes(buffer)
            buffer.clear()
            return data
        data = bytes(memoryview(buffer)[:count])  # (one copy; the view is gone at once)
        del buffer[:count]  # (from the front of a bytearray: no move of the rest)
        return data

    def close(self) -> None:
        self._sock.close()

    async def wait_closed(self) -> None:
        return None

    def reusable(self) -> bool:
        """Whether the stream may carry another exchange: connected, nothing unsent,
        nothing read and left over, no end of stream seen."""
        return not (self._buffer or self._eof or self._pending or self._connecting)

    def still_open(self) -> bool:
        """Whether the peer has neither closed the connection nor sent anything since
        (a peek that does not wait: one system call)."""
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        return False  # its end (b""), or octets nobody asked for


IDLE_SECONDS = 2.0
"""How long a connection to a primary is kept open after a transfer, for the next."""
IDLE_PER_PEER = 8
"""Idle connections kept per primary at most (serve's shared transfer bound is 8)."""


class IdleConnections:
    """Plain TCP connections to primaries kept open between transfers, for the next
    transfer from the same primary (RFC 5936 4.1: a client may send several AXFR
    queries on one connection; BIND, Knot, NSD and PowerDNS answer them).

    A cold start of 10,000 zones from one primary otherwise opens and closes 10,000
    connections: each costs both sides a handshake and a teardown in the kernel.  A
    connection is kept only after a transfer that ended cleanly (nothing left over),
    for :data:`IDLE_SECONDS`, at most :data:`IDLE_PER_PEER` per primary; one the
    primary closed meanwhile is found closed when taken (or fails before any answer,
    and the transfer is made again on a new connection: :func:`secdns.engine.transfer`).
    Kept only where a command of many transfers asks for it (:meth:`install`: serve,
    ``pull -c``, ``watch``; not with ``[server] keep_connections = false``), and only
    for the event loop that installed it."""

    def __init__(self, idle: float = IDLE_SECONDS, per_peer: int = IDLE_PER_PEER) -> None:
        self.idle = idle
        self.per_peer = per_peer
        self._loop = asyncio.get_running_loop()
        self._streams: dict[tuple[str, int], list[tuple[TcpStream, float]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.reused = 0  # transfers that found a connection open (counted for tests, bench)

    @classmethod
    def install(cls, idle: float = IDLE_SECONDS, per_peer: int = IDLE_PER_PEER) -> IdleConnections:
        """Keep connections for the running event loop, from now until :meth:`close`."""
        pool = cls(idle, per_peer)
        _KEPT[pool._loop] = pool
        return pool

    @classmethod
    def current(cls) -> IdleConnections | None:
        """The connections kept for the running loop, or None (none are kept)."""
        return _KEPT.get(asyncio.get_running_loop())

    def take(self, address: str, port: int) -> TcpStream | None:
        """An open connection to ``address``:``port`` left by a transfer, or None."""
        streams = self._streams.get((address, port))
        now = self._loop.time()
        while streams:
            stream, since = streams.pop()
            if now - since < self.idle and stream.still_open():
                self.reused += 1
                return stream
            stream.close()
        return None

    def give(self, address: str, port: int, stream: TcpStream) -> None:
        """Keep ``stream`` (a transfer on it ended cleanly) for the next, or close it."""
        if _KEPT.get(self._loop) is not self or not stream.reusable():
            stream.close()
            return
        streams = self._streams.setdefault((address, port), [])
        if len(streams) >= self.per_peer:
            stream.close()
            return
        streams.append((stream, self._loop.time()))
        if self._timer is None:
            self._timer = self._loop.call_later(self.idle, self._sweep)

    def idle_count(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    def _sweep(self) -> None:
        """Close the connections idle for longer than :attr:`idle`."""
        self._timer = None
        oldest_kept = self._loop.time() - self.idle
        for key, streams in list(self._streams.items()):
            kept = [(stream, since) for stream, since in streams if since > oldest_kept]
            for stream, since in streams:
                if since <= oldest_kept:
                    stream.close()
            if kept:
                self._streams[key] = kept
            else:
                del self._streams[key]
        if self._streams:
            self._timer = self._loop.call_later(self.idle / 2, self._sweep)

    def close(self) -> None:
        """Close every kept connection and keep no more."""
        if _KEPT.get(self._loop) is self:
            del _KEPT[self._loop]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for streams in self._streams.values():
            for stream, _since in streams:
                stream.close()
        self._streams.clear()


_KEPT: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IdleConnections] = (
    weakref.WeakKeyDictionary()
)
"""The connections kept for each event loop that keeps them (serve in a thread of a
test, beside another: each its own)."""


def _sockaddr(address: str, port: int, family: int) -> tuple[str, int] | tuple[str, int, int, int]:
    """The socket address to connect to: ``(address, port)``, or for an IPv6 address
    with a zone (``fe80::1%eth0``) the 4-tuple that carries its scope, as
    ``loop.sock_connect`` resolves it (``connect`` with a pair would set scope 0)."""
    if "%" not in address:
        return (address, port)
    info = socket.getaddrinfo(address, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    return info[0][4]  # type: ignore[return-value]


async def _connected(
    sock: socket.socket, address: tuple[str, int] | tuple[str, int, int, int]
) -> None:
    """Wait until the connection ``sock`` started to ``address`` is made; OSError (as
    ``loop.sock_connect`` raises it: ``Connect call failed ...``) when it failed."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, _wake, done)
    try:
        await done
    finally:
        loop.remove_writer(fd)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, f"Connect call failed {address}")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # (cancelled meanwhile)
        waiter.set_result(None)
