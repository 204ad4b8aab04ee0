"""Zone transfer over TLS (XoT, RFC 9103): TLS settings and the one place a TLS stream opens.

The engine asks :func:`open_stream` for a connection instead of a plain TCP one,
and :func:`exchange` for the SOA probe (over TLS there is no UDP), so the probe,
AXFR, IXFR and TSIG work the same with or without TLS.

What is verified, as kdig does it:

* by default the certificate chain against ``ca_file`` (a PEM bundle) or the
  system store, and the name ``hostname`` (default: the host as the user wrote
  it, an address or a name) in the certificate;
* with ``pin`` (kdig ``+tls-pin``: base64 SHA-256 of the certificate's
  SubjectPublicKeyInfo) the pin replaces CA and name verification, unless a CA
  bundle is given too, when both must hold;
* nothing, only with ``insecure`` (opportunistic TLS, RFC 9103 9): it is never
  the silent fallback of a failed verification.

TLS 1.3 and ALPN ``dot`` (RFC 9103 7.1, 9).  Each failure says what failed:
the certificate is not trusted, its name does not match, the pin does not match,
the server refused the handshake, or it does not speak TLS.  All are
:class:`TlsError`, a :class:`~secdns.errors.NetworkError` (exit 3).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import hashlib
import logging
import socket
import ssl
import struct
from pathlib import Path

import dns.message

from secdns.endpoints import Endpoint, format_addr
from secdns.errors import LocalIOError, NetworkError, TimeoutError_, UsageError, os_reason
from secdns.soaquery import answers

log = logging.getLogger(__name__)

DEFAULT_PORT = 853
ALPN = "dot"
SHUTDOWN_WAIT = 0.1  # seconds to wait for the peer's close_notify
_HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_IP_MISMATCH = 64  # X509_V_ERR_IP_ADDRESS_MISMATCH
# OpenSSL reasons seen when the peer answers a ClientHello with something that is not TLS.
_NOT_TLS_REASONS = (
    "WRONG_VERSION_NUMBER",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "UNEXPECTED_RECORD",
    "HTTP_REQUEST",
    "UNKNOWN_PROTOCOL",
)


class TlsError(NetworkError):
    """the TLS connection failed"""


class TlsHandshakeTimeout(TlsError, TimeoutError_):
    """no TLS handshake within the timeout

    A silent timeout, as one with no answer: it counts toward holding the primary as
    unreachable (:mod:`secdns.unreachable`; a stranger's plain-TCP port given as TLS
    held every transfer slot for the whole timeout, zone after zone, never held)."""

    @classmethod
    def kind(cls) -> str:
        return TlsError.__name__  # (the JSON's error, as every TLS failure's)


@dataclasses.dataclass(frozen=True, slots=True)
class TlsSettings:
    """How to set up and verify one XoT connection (``--tls*`` options, ``tls_*`` keys)."""

    ca_file: Path | None = None
    hostname: str | None = None
    pin: bytes | None = None  # SHA-256 of the SubjectPublicKeyInfo (DER)
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.insecure and (self.pin is not None or self.ca_file is not None):
            raise UsageError("--tls-insecure verifies nothing: drop --tls-ca / --tls-pin")

    def for_host(self, host: str) -> TlsSettings:
        """These settings with ``host`` (as the user wrote it) as the default name to verify."""
        if self.hostname is not None:
            return self
        return dataclasses.replace(self, hostname=host)

    @property
    def verifies_chain(self) -> bool:
        return not self.insecure and (self.pin is None or self.ca_file is not None)

    @property
    def mode(self) -> str:
        if self.insecure:
            return "insecure"
        return "pin" if self.pin is not None and self.ca_file is None else "ca"


def parse_pin(text: str) -> bytes:
    """A ``--tls-pin`` value: base64 of a SHA-256 digest (32 bytes)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"--tls-pin {text!r}: not base64") from None
    if len(raw) != hashlib.sha256().digest_size:
        raise UsageError(f"--tls-pin {text!r}: a SHA-256 pin is 32 bytes, this is {len(raw)}")
    return raw


def make_settings(
    tls: bool,
    ca_file: str | Path | None = None,
    hostname: str | None = None,
    pin: str | None = None,
    insecure: bool = False,
) -> TlsSettings | None:
    """Settings from the options; any ``--tls-*`` option implies ``--tls`` (as in kdig)."""
    if not (tls or ca_file or hostname or pin or insecure):
        return None
    return TlsSettings(
        ca_file=Path(ca_file) if ca_file else None,
        hostname=hostname or None,
        pin=parse_pin(pin) if pin else None,
        insecure=insecure,
    )


def default_port(tls: TlsSettings | None) -> int:
    return DEFAULT_PORT if tls is not None else 53


def for_endpoint(tls: TlsSettings | None, endpoint: Endpoint) -> TlsSettings | None:
    """``tls`` verifying ``endpoint``'s host (as written) unless a hostname was given."""
    return tls.for_host(endpoint.host) if tls is not None else None


def spki_pin(der_certificate: bytes) -> bytes:
    """SHA-256 of a certificate's SubjectPublicKeyInfo, as kdig ``+tls-pin`` and RFC 7469."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_der_x509_certificate(der_certificate)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


@functools.lru_cache(maxsize=32)
def _context(ca_file: Path | None, verify: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3  # RFC 9103 9
    context.set_alpn_protocols([ALPN])
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    try:
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except FileNotFoundError:
        raise UsageError(f"--tls-ca {ca_file}: no such file") from None
    except ssl.SSLError as err:
        raise UsageError(f"--tls-ca {ca_file}: not a PEM CA bundle ({err.reason})") from None
    except OSError as err:
        raise LocalIOError(f"cannot read --tls-ca {ca_file}: {err.strerror}") from err
    return context


def context(tls: TlsSettings) -> ssl.SSLContext:
    """The client context for ``tls`` (cached: a CA bundle is read once)."""
    return _context(tls.ca_file, tls.verifies_chain)


def _handshake_error(err: BaseException, tls: TlsSettings, name: str, timeout: float) -> TlsError:
    """Say which part of the TLS setup failed."""
    if isinstance(err, ssl.SSLCertVerificationError):
        if err.verify_code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
            return TlsError(
                f"TLS hostname mismatch: the certificate is not for {name!r}",
                hint="--tls-hostname NAME, or tls_hostname in the config, names what to verify",
            )
        where = f"by {tls.ca_file}" if tls.ca_file else "by the system store"
        return TlsError(f"TLS certificate not trusted {where}: {err.verify_message}")
    if isinstance(err, ConnectionAbortedError | TimeoutError):
        return TlsHandshakeTimeout(
            f"no TLS handshake within {timeout:g}s: the server is not speaking TLS on this port?"
        )
    if isinstance(err, ssl.SSLError):
        reason = err.reason or str(err)
        if any(r in reason for r in _NOT_TLS_REASONS):
            return TlsError(f"the server is not speaking TLS ({reason})")
        return TlsError(f"TLS handshake refused: {reason}")
    if isinstance(err, ConnectionError | EOFError | asyncio.IncompleteReadError):
        # a DNS server on a plain port reads the ClientHello as a message length and
        # closes when the rest never comes (secdns serve) or waits (BIND): one cause
        return TlsError(
            "no TLS handshake (the server closed the connection): "
            "the server is not speaking TLS on this port?"
        )
    return TlsError(f"TLS handshake failed: {err}")


async def open_stream(
    address: str, port: int, tls: TlsSettings, *, timeout: float, limit: int = 70000
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A verified TLS stream to ``address``:``port``; ``timeout`` bounds the connect and,
    separately, the handshake.

    Closing it sends close_notify without waiting long for the peer's: BIND never
    answers one, and a transfer's end is already known from its framing.
    """
    server = format_addr(address, port)
    ssl_context = context(tls)  # a bad CA bundle is a usage error, before any network
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException as err:
        sock.close()
        if isinstance(err, TimeoutError):
            raise TimeoutError_(f"cannot connect within {timeout:g}s", server=server) from err
        if isinstance(err, OSError):
            raise NetworkError(
                f"cannot connect to {format_addr(address, port)}: {os_reason(err)}", server=server
            ).after(err) from err
        raise
    name = tls.hostname or address
    try:
        async with asyncio.timeout(timeout + 1):
            reader, writer = await asyncio.open_connection(
                sock=sock,
                limit=limit,
                ssl=ssl_context,
                server_hostname=name,
                ssl_handshake_timeout=timeout,
                ssl_shutdown_timeout=SHUTDOWN_WAIT,
            )
    except Exception as err:
        sock.close()
        raise _handshake_error(err, tls, name, timeout).with_context(server=server) from err
    try:
        _check_pin(writer, tls)
    except TlsError as err:
        writer.transport.abort()
        raise err.with_context(server=server) from None
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None:
        log.debug(
            "xot: %s %s, ALPN %s, verified by %s",
            server,
            ssl_object.version(),
            ssl_object.selected_alpn_protocol(),
            tls.mode,
        )
    return reader, writer


def close_soon(writer: asyncio.StreamWriter) -> None:
    """Close a TLS stream whose exchange is over without waiting for the peer's
    close_notify: ours is written, and the connection dropped on the loop's next turn
    (a DNS message's framing already said where the exchange ends; BIND never answers
    a close_notify, and awaiting its :data:`SHUTDOWN_WAIT` cost every SOA probe and
    every transfer over TLS 100 ms: a stranger's 5-record AXFR took 0.25 s against
    kdig's 11 ms)."""
    writer.close()  # (the close_notify goes out now)
    asyncio.get_running_loop().call_soon(writer.transport.abort)


def _check_pin(writer: asyncio.StreamWriter, tls: TlsSettings) -> None:
    if tls.pin is None:
        return
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise TlsError("TLS pin mismatch: the server sent no certificate")
    got = spki_pin(der)
    if got != tls.pin:
        raise TlsError(
            "TLS pin mismatch: the certificate's key has pin "
            f"{base64.b64encode(got).decode()}, expected {base64.b64encode(tls.pin).decode()}"
        )


async def exchange(
    query: dns.message.Message, address: str, port: int, tls: TlsSettings, *, timeout: float
) -> dns.message.Message:
    """Send one query over a new TLS connection and return the answer (TSIG checked).

    dnspython's own TLS query cannot check a pin before the query is sent; this
    can.  TSIG and parse errors are dnspython's, for the caller to classify.
    """
    server = format_addr(address, port)
    reader, writer = await open_stream(address, port, tls, timeout=timeout)
    try:
        request = query.to_wire()
        writer.write(struct.pack("!H", len(request)) + request)
        async with asyncio.timeout(timeout):
            await writer.drain()
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                raw = await reader.readexactly(length)
                response = dns.message.from_wire(raw, keyring=query.keyring, request_mac=query.mac)
                if answers(query, response):
                    return response
    except TimeoutError as err:
        raise TimeoutError_(f"no answer over TLS within {timeout:g}s", server=server) from err
    except asyncio.IncompleteReadError as err:
        raise NetworkError(
            "the server closed the TLS connection without answering", server=server
        ) from err
    except (ssl.SSLError, OSError) as err:
        raise NetworkError(f"TLS query failed: {err}", server=server) from err
    finally:
        close_soon(writer)
