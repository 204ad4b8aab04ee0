"""serve's sockets: one UDP socket and one TCP listener per ``[server] listen`` address.

The UDP socket is answered by a :class:`~secdns.server.udp.UdpWorker` thread; each
TCP connection is a task reading length-prefixed messages (RFC 7766 8), admitted
by the connection table (:mod:`secdns.server.tcp`) and closed when idle past
``tcp_idle_timeout``.  What a message gets back is the server's business
(:mod:`secdns.server.dispatch`); ``tls_listen`` connections come here after
:mod:`secdns.server.xot_listen` accepted them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from typing import TYPE_CHECKING

from secdns.errors import LocalIOError, os_reason
from secdns.notify import RefusalLog
from secdns.server.tcp import TcpClients
from secdns.server.udp import UdpWorker

if TYPE_CHECKING:
    from secdns.config import Config
    from secdns.server.server import Server
    from secdns.server.xot_listen import TlsListeners

log = logging.getLogger("secdns.server.server")

MAX_TRANSFER_SOURCES = 4096
"""Sources remembered as secondaries of ours by a transfer their key allowed."""

TCP_WRITE_TIMEOUT = 30.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def transfer_networks(config: Config) -> tuple[Network, ...]:
    """The address ranges named in any allow_transfer (they get the reserved TCP room)."""
    networks = []
    acls = [z.allow_transfer for z in config.zones]
    acls += [g.allow_transfer for g in config.groups.values()]
    acls.append(config.server.catalog_allow_transfer)
    for acl in acls:
        for item in acl:
            if not item.startswith("key:"):  # (a CIDR, alone or with a key)
                with contextlib.suppress(ValueError):
                    networks.append(ipaddress.ip_network(item.split()[0], strict=False))
    return tuple(networks)


class Listeners:
    """The server's UDP workers, TCP listeners and open TCP connections."""

    def __init__(self, server: Server) -> None:
        self.server = server
        settings = server.config.server
        self.udp: list[UdpWorker] = []
        self.tcp: list[asyncio.Server] = []
        self.connections: set[asyncio.Task[object]] = set()
        self.tcp_clients = TcpClients(
            settings.tcp_clients, settings.tcp_clients_per_source, on_limit=self._at_limit
        )
        # sources that made a transfer their TSIG key allowed (a secondary named by key
        # alone): the reserved room and a secondary's share of connections, as an
        # allow_transfer address (bounded: the oldest forgotten first)
        self.transfer_sources: dict[str, None] = {}
        self.limit_log = RefusalLog(log, prefix="tcp")
        self.tcp_rcodes = [0] * 16  # TCP answers sent, by rcode (read by secdns.metrics)
        self.tls_rcodes = [0] * 16  # the same over TLS (tls_listen: XoT)
        self.addresses: list[tuple[str, int]] = []
        self.transfer_networks: tuple[Network, ...] = ()

    async def listen(self) -> None:
        """Bind every ``[server] listen`` address, TCP first (port 0 picks the port for both)."""
        for endpoint in self.server.config.server.listen:
            host, port = endpoint.host, endpoint.port
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                tcp = await asyncio.start_server(
                    self.handle_tcp, host, port, family=family, reuse_address=True, backlog=256
                )
                bound_port = tcp.sockets[0].getsockname()[1]
                udp = socket.socket(family, socket.SOCK_DGRAM)
                with contextlib.suppress(OSError):
                    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                udp.bind((host, bound_port))
                udp.settimeout(0.25)
            except OSError as err:
                for server in self.tcp:
                    server.close()
                raise LocalIOError(
                    f"cannot listen on {endpoint}: {os_reason(err)}",
                    hint="is another server using the port?",
                ) from err
            worker = UdpWorker(self.server, udp)
            worker.start()
            self.tcp.append(tcp)
            self.udp.append(worker)
            self.addresses.append((host, bound_port))

    def stop_accepting(self) -> None:
        """Stop the UDP workers and close the TCP listeners (open connections go on)."""
        for worker in self.udp:
            worker.stop()
        for server in self.tcp:
            server.close()

    async def wait_closed(self) -> None:
        """Wait (bounded) for the TCP listeners to close and the UDP threads to end."""
        for server in self.tcp:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        for worker in self.udp:
            await asyncio.to_thread(worker.thread.join, 2.0)

    def may_transfer(self, source: str) -> bool:
        """Whether ``source`` is in some zone's allow_transfer, or has made a transfer its
        key allowed (it gets the reserved TCP room and a secondary's connections)."""
        if source in self.transfer_sources:
            return True
        if not self.transfer_networks:
            return False
        try:
            address = ipaddress.ip_address(source.split("%")[0])
        except ValueError:
            return False
        return any(address in network for network in self.transfer_networks)

    def transferred(self, source: str) -> None:
        """``source`` made a transfer a zone allowed (by its address or its key)."""
        if source in self.transfer_sources:
            return
        if len(self.transfer_sources) >= MAX_TRANSFER_SOURCES:
            del self.transfer_sources[next(iter(self.transfer_sources))]
        self.transfer_sources[source] = None

    def _at_limit(self, source: str, refused: bool, limit: int) -> None:
        """A source at its connection limit: said once a minute per source."""
        done = "the new one refused (all busy)" if refused else "its oldest idle one closed"
        secondary = self.tcp_clients.transfer_per_source
        self.limit_log.said(
            source,
            "per-source",
            f"{source} holds {limit} TCP connections, its limit (tcp_clients_per_source; "
            f"an address allowed to transfer may hold {secondary}): {done}",
        )

    async def handle_tcp(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: TlsListeners | None = None,
    ) -> None:
        """One TCP connection: admitted by the connection table (secdns.server.tcp), idle
        (reclaimable) only while it waits for the next message, closed on a response.
        With ``tls`` (a tls_listen connection) admitted first, then the TLS handshake."""
        server = self.server
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = self.tcp_clients.admit(peer[0], self.may_transfer(peer[0]), writer.transport.abort)
        if client is None:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        idle_timeout = server.config.server.tcp_idle_timeout
        xot = False  # a TLS 1.3 session: transfer_transport = "tls" zones may go out
        counts = self.tcp_rcodes if tls is None else self.tls_rcodes  # answers sent, by rcode
        try:
            if tls is not None:
                self.tcp_clients.idle(client)  # reclaimable while it shakes hands
                xot = await tls.handshake(writer)
            while not server.stop_event.is_set():
                self.tcp_clients.idle(client)
                prefix = await asyncio.wait_for(reader.readexactly(2), idle_timeout)
                self.tcp_clients.busy(client)
                (length,) = struct.unpack("!H", prefix)
                if length < 12:
                    break
                data = await asyncio.wait_for(reader.readexactly(length), idle_timeout)
                if data[2] & 0x80:
                    break  # a response (QR=1) on a query stream: close, as BIND does
                for reply in server.answer_tcp(data, peer[0], tls=xot, port=peer[1]):
                    counts[reply[3] & 15] += 1
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await asyncio.wait_for(writer.drain(), TCP_WRITE_TIMEOUT)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # serve stopping with the client's connection open (a secondary keeps it
            # for its next transfer): the handler ends as a closed connection would, for
            # asyncio's streams (3.11) log a cancelled handler as "Exception in callback"
            pass
        except Exception:
            log.exception("tcp: internal error with %s", peer[0])
        finally:
            self.tcp_clients.release(client)
            self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
