"""The UDP side of serve: the answer cache and the per-socket worker threads.

The hot path is a dict lookup from the query bytes (minus the ID) to a prebuilt
answer, valid while the zone's generation is unchanged; everything else goes to
:meth:`secdns.server.server.Server.answer_udp`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING

from secdns.server.ready import PLAIN_RD

if TYPE_CHECKING:
    from secdns.server.server import Server
    from secdns.server.zone import ServedZone

log = logging.getLogger("secdns.server.server")

CACHE_ENTRIES = 500_000
CACHE_BYTES = 128 << 20
"""Bytes of questions and answers the answer cache holds at most (the DO answers of a
signed zone are ~1 KiB: 500,000 of them, asked by one client for random names, were
~540 MiB)."""

GC_THRESHOLDS = (10_000, 10, 1_000)
"""The cyclic collector's thresholds while serving (Python's default: 700, 10, 10).
Answering keeps few objects per query (answer cache entries, prepared owner forms),
but each full collection walks every one kept so far, and with the defaults one
ran every few thousand queries: a fifth of a first-ask query's CPU.  Full
collections now wait for a thousand middle ones; garbage cycles are rare here."""


class AnswerCache:
    """Query bytes (without the ID) -> answer bytes (without the ID), per zone generation."""

    def __init__(self, limit: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0  # of the questions and answers put since the last clear
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
        self.bytes += len(key) + len(reply)
        if len(self.entries) >= self.limit or self.bytes > self.max_bytes:
            self.entries.clear()
            self.bytes = len(key) + len(reply)
        self.entries[key] = (zone, zone.generation, reply)


class UdpWorker:
    """Answers one UDP socket in a thread of its own, in a tight blocking loop.

    The event loop's per-datagram overhead (selector, callbacks) is larger than
    a cached answer: a dedicated thread doing recvfrom -> dict lookup -> sendto
    answers several times more queries per second.  Everything it reads is
    immutable (zone versions) or a dict operation atomic under the GIL; what it
    must tell the loop (a NOTIFY) goes through ``call_soon_threadsafe``.

    The socket is blocking without a timeout: with one, CPython polls the socket
    before every ``recvfrom`` and every ``sendto`` (two more system calls and two
    more GIL hand-overs per query).  :meth:`stop` wakes the thread with
    ``shutdown``, which makes a blocked ``recvfrom`` return on Linux.

    A query of the ready shape (one question, no or a bare OPT) first tries the
    ready answers (:mod:`secdns.server.ready`, answers built before they are asked);
    then the answer cache; a miss goes to the prepared answers (the first ask of a
    name, :mod:`secdns.server.prepared`) and its reply into the ready answers if it
    has their shape, else into the cache, as
    :meth:`~secdns.server.server.Server.answer_udp` does, without building the cache
    key twice; everything else to ``answer_udp``.
    """

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        sock.settimeout(None)
        self.stopping = False
        self.rcodes = [0] * 16  # answers sent, by rcode: read by secdns.metrics at scrape time
        self.thread = threading.Thread(
            target=self.run, name=f"udp-{sock.getsockname()}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):  # ENOTCONN on a UDP socket, but it wakes recvfrom
            self.sock.shutdown(socket.SHUT_RD)

    def run(self) -> None:
        sock = self.sock
        recv = sock.recvfrom
        send = sock.sendto
        server = self.server
        cache = server.cache
        entries = cache.entries
        prepared = server.prepared.answer
        answer = server.answer_udp
        ready = server.ready.entries  # secdns.server.ready: ReadyAnswers.reply, inline
        ready_reply = server.ready.reply
        ready_edns = server.ready.reply_edns
        ready_referral = server.ready.referral
        cuts = server.ready.cuts
        learn_plain = server.ready.learn_plain
        learn_block = server.ready.learn_block
        rcodes = self.rcodes
        while not self.stopping:
            try:
                data, addr = recv(65535)
            except OSError:
                continue
            if len(data) < 12:
                continue
            try:
                if server.log_queries:  # -v logs every query: take the full path
                    reply = answer(data, addr[0])
                else:
                    plain = data[2:12] == PLAIN_RD
                    if plain:  # RD, one question, nothing else: ready?
                        question = data[12:]
                        got = ready.get(question)
                        if got is not None and got[0].generation == got[1]:
                            rcodes[0] += 1
                            send(data[:2] + got[2] + question + got[3], addr)
                            continue
                        if got is None and cuts:  # a delegation point: its referral?
                            reply = ready_referral(data, question, 0)
                            if reply is not None:
                                rcodes[0] += 1
                                send(reply, addr)
                                continue
                    elif not data[2] & 0xF8 and data[4:11] == b"\x00\x01\x00\x00\x00\x00\x00":
                        reply = (ready_edns if data[11] else ready_reply)(data)  # RD clear, CD
                        if reply is not None:
                            rcodes[0] += 1
                            send(reply, addr)
                            continue
                    key = b"U" + data[2:]
                    found = entries.get(key)
                    if found is not None and found[0].generation == found[1]:
                        # counted before the send: a client that scrapes the metrics as
                        # soon as it has its answer sees it counted
                        rcodes[found[2][1] & 15] += 1
                        send(data[:2] + found[2], addr)
                        continue
                    made = prepared(data)
                    if made is not None:
                        reply = made[0]
                        learnt = (learn_plain if plain else learn_block)(data, reply, made[1])
                        if not learnt:
                            cache.put(key, made[1], reply[2:])
                    else:
                        reply = answer(data, addr[0], looked_up=True)
                if reply is not None:
                    rcodes[reply[3] & 15] += 1
                    send(reply, addr)
            except OSError as err:
                log.debug("udp: send to %s failed: %s", addr[0], err)
            except Exception:  # never let one packet stop the listener
                log.exception("query: internal error answering %s", addr[0])
        sock.close()
