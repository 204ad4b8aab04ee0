"""The UDP side of serve: the answer cache and the per-socket worker threads.

The hot path is a dict lookup from the query bytes (minus the ID) to a prebuilt
answer, valid while the zone's generation is unchanged; everything else goes to
:meth:`secdns.server.server.Server.answer_udp`.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secdns.server.server import Server
    from secdns.server.zone import ServedZone

log = logging.getLogger("secdns.server.server")

CACHE_ENTRIES = 500_000


class AnswerCache:
    """Query bytes (without the ID) -> answer bytes (without the ID), per zone generation."""

    def __init__(self, limit: int = CACHE_ENTRIES) -> None:
        self.limit = limit
        self.entries: dict[bytes, tuple[ServedZone, int, bytes]] = {}

    def get(self, key: bytes) -> bytes | None:
        found = self.entries.get(key)
        if found is not None:
            zone, generation, reply = found
            if zone.generation == generation:
                return reply
            self.entries.pop(key, None)
        return None

    def put(self, key: bytes, zone: ServedZone, reply: bytes) -> None:
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[key] = (zone, zone.generation, reply)


class UdpWorker:
    """Answers one UDP socket in a thread of its own, in a tight blocking loop.

    The event loop's per-datagram overhead (selector, callbacks) is larger than
    a cached answer: a dedicated thread doing recvfrom -> dict lookup -> sendto
    answers several times more queries per second.  Everything it reads is
    immutable (zone versions) or a dict operation atomic under the GIL; what it
    must tell the loop (a NOTIFY) goes through ``call_soon_threadsafe``.
    """

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.stopping = False
        self.rcodes = [0] * 16  # answers sent, by rcode: read by secdns.metrics at scrape time
        self.thread = threading.Thread(
            target=self.run, name=f"udp-{sock.getsockname()}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True

    def run(self) -> None:
        sock = self.sock
        recv = sock.recvfrom
        send = sock.sendto
        entries = self.server.cache.entries
        answer = self.server.answer_udp
        rcodes = self.rcodes
        while not self.stopping:
            try:
                data, addr = recv(65535)
            except TimeoutError:
                continue
            except OSError:
                if self.stopping:
                    break
                continue
            if len(data) < 12:
                continue
            try:
                if not self.server.log_queries:  # -v logs every query: take the full path
                    found = entries.get(b"U" + data[2:])
                    if found is not None and found[0].generation == found[1]:
                        send(data[:2] + found[2], addr)
                        rcodes[found[2][1] & 15] += 1
                        continue
                reply = answer(data, addr[0], looked_up=not self.server.log_queries)
                if reply is not None:
                    send(reply, addr)
                    rcodes[reply[3] & 15] += 1
            except OSError as err:
                log.debug("udp: send to %s failed: %s", addr[0], err)
            except Exception:  # never let one packet stop the listener
                log.exception("query: internal error answering %s", addr[0])
        sock.close()
