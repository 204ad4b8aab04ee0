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
