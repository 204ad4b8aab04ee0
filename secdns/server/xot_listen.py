"""serve's TLS listeners: DNS over TLS (RFC 7858) and zone transfer over TLS (RFC 9103).

``[server] tls_listen = ["ADDR:PORT", ...]`` with ``tls_cert`` and ``tls_key``
(PEM).  A connection is a plain TCP connection first: it is admitted by the
same connection table as plain TCP (:mod:`secdns.server.tcp`: per-source and
total limits, idle reclaim) *before* the handshake, so a source cannot hold
more handshakes open than it may hold connections; the handshake then has
``tls_handshake_timeout`` seconds (default 10).  After it, the stream is served
by the plain-TCP loop of :class:`secdns.server.listeners.Listeners` (length-prefixed
messages, the idle timeout, bounded reads and writes) with ``tls=True``, so
queries, NOTIFY and AXFR/IXFR under ``allow_transfer`` work as over TCP, and a
zone with ``transfer_transport = "tls"`` is transferred only here, and only in a
TLS 1.3 session (RFC 9103 9; DNS over TLS alone may use TLS 1.2).

ALPN ``dot`` is offered (RFC 9103 7.1).  The certificate and key are read at
startup and again on SIGHUP; a new pair takes effect for new connections, and a
pair that cannot be read keeps the old one (logged).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from secdns.errors import ConfigError, LocalIOError, os_reason
from secdns.xot import ALPN

if TYPE_CHECKING:
    from secdns.server.server import Server

log = logging.getLogger(__name__)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for ``cert`` and ``key`` (PEM), ALPN ``dot``, TLS 1.2 or later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 7858; XoT clients use 1.3
    context.set_alpn_protocols([ALPN])
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as err:
        raise ConfigError(
            f"server.tls_cert {cert} / tls_key {key}: not a PEM certificate and its key "
            f"({err.reason or err})"
        ) from err
    except OSError as err:
        raise LocalIOError(f"cannot read server.tls_cert {cert} or tls_key {key}: {err}") from err
    return context


class TlsListeners:
    """The TLS listeners of one server, and the context new connections get."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.context: ssl.SSLContext | None = None
        self.listeners: list[asyncio.Server] = []
        self.addresses: list[tuple[str, int]] = []

    async def listen(self) -> None:
        settings = self.server.config.server
        if not settings.tls_listen:
            return
        assert settings.tls_cert is not None and settings.tls_key is not None
        self.context = await asyncio.to_thread(server_context, settings.tls_cert, settings.tls_key)
        for endpoint in settings.tls_listen:
            family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
            try:
                listener = await asyncio.start_server(
                    functools.partial(self.server.listeners.handle_tcp, tls=self),
                    endpoint.host,
                    endpoint.port,
                    family=family,
                    reuse_address=True,
                    backlog=256,
                    limit=70_000,  # one message of at most 65535 bytes and its prefix
                )
            except OSError as err:
                self.close()
                raise LocalIOError(
                    f"cannot listen on {endpoint} (tls_listen): {os_reason(err)}",
                    hint="is another server using the port?",
                ) from err
            self.listeners.append(listener)
            self.addresses.append((endpoint.host, listener.sockets[0].getsockname()[1]))
        log.info("serve: DNS over TLS on %s", ", ".join(f"{a}:{p}" for a, p in self.addresses))

    async def handshake(self, writer: asyncio.StreamWriter) -> bool:
        """Upgrade an admitted connection to TLS, within the handshake timeout.

        True when the session may carry zone transfers: XoT needs TLS 1.3 (RFC 9103 9);
        an older session still gets queries answered (RFC 7858).
        """
        assert self.context is not None
        raw = writer.transport
        try:
            await writer.start_tls(
                self.context, ssl_handshake_timeout=self.server.config.server.tls_handshake_timeout
            )
        except AttributeError:
            # Python 3.11: a peer that closes as the handshake ends leaves the writer
            # without a transport, and start_tls fails on it; close the socket instead
            if writer.transport is not None:
                raise
            writer._transport = raw  # private: put the socket back so close() reaches it
            raise ConnectionResetError("closed during the TLS handshake") from None
        session = writer.get_extra_info("ssl_object")
        return session is not None and session.version() == "TLSv1.3"

    async def reload(self) -> list[str]:
        """SIGHUP: read the certificate and key again (listen addresses need a restart).
        Returns the warnings it logged, for ``ctl reload`` to show."""
        settings = self.server.config.server
        warning = None
        if not self.listeners:
            if settings.tls_listen:
                warning = "tls_listen added; restart secdns serve to apply"
        elif settings.tls_cert is None or settings.tls_key is None:
            warning = "tls_cert/tls_key removed; keeping the loaded pair"
        else:
            try:
                self.context = await asyncio.to_thread(
                    server_context, settings.tls_cert, settings.tls_key
                )
            except (ConfigError, LocalIOError) as err:
                warning = f"{err.one_line()}; keeping the loaded certificate"
                log.error("reload: %s", warning)
                return [warning]
            log.info("reload: TLS certificate %s loaded", settings.tls_cert)
        if warning is None:
            return []
        log.warning("reload: %s", warning)
        return [warning]

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()
