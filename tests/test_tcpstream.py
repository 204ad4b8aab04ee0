"""secdns.tcpstream.TcpStream reads as asyncio's streams do: the same octets for the
same reads, and the same IncompleteReadError (partial, expected) when the peer
closes early, whatever the peer's write sizes."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from secdns.tcpstream import TcpStream


def _peer(script: list[bytes]) -> tuple[int, threading.Thread]:
    """A TCP listener that, for each of two connections, reads the request and writes
    ``script`` (a chunk at a time), then closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            for _ in range(2):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(100)
                    for chunk in script:
                        conn.sendall(chunk)
                        threading.Event().wait(0.002)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


async def _reads(port: int, sizes: list[int], ours: bool) -> list[object]:
    if ours:
        reader = writer = await TcpStream.connect("127.0.0.1", port)
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # type: ignore[assignment]
    writer.write(b"hello")
    await writer.drain()
    found: list[object] = []
    try:
        for size in sizes:
            try:
                found.append(await reader.readexactly(size))
            except asyncio.IncompleteReadError as err:
                found.append(("incomplete", err.partial, err.expected))
                break
    finally:
        writer.close()
        await writer.wait_closed()
    return found


@pytest.mark.parametrize(
    "script, sizes",
    [
        ([b"\x00\x05abcde"], [2, 5, 2]),  # one message, then the end of the stream
        ([b"\x00", b"\x05ab", b"cde\x00\x02", b"xy"], [2, 5, 2, 2, 2]),  # split anywhere
        ([b"\x00\x09abc"], [2, 9]),  # cut short inside a message
        ([b"x" * 300_000, b"y" * 70_000], [65_535] * 6 + [10]),  # more than a chunk
        ([], [2]),  # closed without a word
    ],
)
def test_reads_match_asyncio_streams(script, sizes):
    port, thread = _peer(script)
    theirs = asyncio.run(_reads(port, sizes, ours=False))
    ours = asyncio.run(_reads(port, sizes, ours=True))
    thread.join(5)
    assert ours == theirs


def test_a_refused_connection_raises_as_connect_does():
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(TcpStream.connect("127.0.0.1", port))
