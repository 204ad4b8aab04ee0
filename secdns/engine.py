"""The transfer engine: SOA probe, AXFR and IXFR over the network, with TSIG.

No files, no printing: results are returned as data.  Sockets live here and only
here; the protocol checks are in :mod:`secdns.xfr` and the decoding in
:mod:`secdns.wire`.  About 700 lines, kept whole: the SOA probe (with its UDP tries)
and the transfers share the sockets' handling, their timeouts and the words a
network failure is said in, which would otherwise be split over two modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import socket
import struct
import time
from collections.abc import Callable

import dns.asyncbackend
import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

from secdns import decodepool, soaquery, tcpstream, wire, xot
from secdns.config import Limits
from secdns.endpoints import format_addr
from secdns.errors import (
    BadDataError,
    NetworkError,
    RefusedError,
    SecdnsError,
    TimeoutError_,
    TsigError,
    os_reason,
)
from secdns.gcpause import gc_paused
from secdns.keys import TsigKey
from secdns.xfr import (
    SOA_RCODE_HINTS,
    TsigVerifier,
    XfrKind,
    XfrReader,
    rcode_error,
    tsig_error,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

LIFETIME_HINT = "raise it with --lifetime, or lifetime in [server]"

STREAM_LIMIT = 1 << 20
"""Bytes a transfer's stream buffers before it stops reading the socket: a bound on
memory, and large enough that a primary sending faster than we decode does not make
the stream pause and resume reading (two system calls and callbacks each time) every
couple of messages, as 70,000 did."""


class _Expired(Exception):
    """The transfer's lifetime ran out before a read (said by ``read_failure``)."""


class _LifetimeOver(Exception):
    """The transfer's lifetime ran out while connecting (a lifetime shorter than the
    timeout: said as the lifetime, as the whole transfer's bound says it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SoaInfo:
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    ttl: int
    transport: str = "UDP"  # how the answer came: "UDP", or "TCP (why: truncated, refused)"
    edns_expire: int | None = None  # the primary's EDNS EXPIRE (RFC 7314), when it sent one


@dataclasses.dataclass(slots=True)
class Transfer:
    """What one AXFR/IXFR brought, checked but not yet stored."""

    kind: XfrKind
    server: str
    reader: XfrReader
    duration: float
    edns_expire: int | None = None  # the primary's EDNS EXPIRE (RFC 7314), when asked and sent


async def probe_soa(
    origin: dns.name.Name,
    address: str,
    port: int,
    *,
    key: TsigKey | None,
    timeout: float,
    tls: xot.TlsSettings | None = None,
) -> SoaInfo:
    """Ask a server for the zone's SOA over UDP, falling back to TCP on truncation
    (over TLS only, with ``tls``).  An answer over UDP that is not a NOERROR from an
    authoritative server is asked again over TCP, as BIND's ``try-tcp-refresh``
    (on by default) does: Knot refuses UDP queries for a catalog zone it generates and
    answers them over TCP (a stranger's Knot catalog was never refreshed after its
    first transfer).  If TCP fails too, the UDP answer's error is raised."""
    try:
        return await _probe_soa(origin, address, port, key=key, timeout=timeout, tls=tls)
    except RefusedError as refused:
        if tls is not None:
            raise
        try:
            info = await _probe_soa(
                origin, address, port, key=key, timeout=timeout, tls=None, tcp=True
            )
        except SecdnsError:
            raise refused from None
        return dataclasses.replace(info, transport=f"TCP (over UDP: {refused.message})")


async def _probe_soa(
    origin: dns.name.Name,
    address: str,
    port: int,
    *,
    key: TsigKey | None,
    timeout: float,
    tls: xot.TlsSettings | None,
    tcp: bool = False,
) -> SoaInfo:
    """:func:`probe_soa`'s one query: over UDP (TCP if truncated), TLS, or ``tcp``."""
    server = format_addr(address, port)
    if key is None and tls is None and not tcp:  # the common case, no dnspython objects
        answer = await _plain_soa(origin, address, port, timeout, server)
        if answer is not None:
            return answer
    query = dns.message.make_query(
        origin,
        dns.rdatatype.SOA,
        use_edns=0,
        payload=1232,
        options=[dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")],  # RFC 7314
    )
    query.flags &= ~dns.flags.RD
    if key is not None:
        query.use_tsig(key.to_dnspython())
    try:
        transport = "TLS (XoT)" if tls is not None else "UDP"
        if tls is not None:
            response = await xot.exchange(query, address, port, tls, timeout=timeout)
        elif tcp:
            async with asyncio.timeout(timeout):
                response = await dns.asyncquery.tcp(query, address, port=port)
        else:
            response = await _udp_tries(query, address, port, timeout)
        if response.flags & dns.flags.TC and tls is None:
            async with asyncio.timeout(timeout):
                response = await dns.asyncquery.tcp(query, address, port=port)
            transport = "TCP (the UDP answer was truncated: TC)"
    except (TimeoutError, dns.exception.Timeout) as err:
        raise _soa_timeout(timeout, server) from err
    except (
        dns.tsig.PeerError,
        dns.tsig.BadSignature,
        dns.tsig.BadKey,
        dns.tsig.BadTime,
        dns.tsig.BadAlgorithm,
        dns.message.UnknownTSIGKey,
        dns.message.BadTSIG,
    ) as err:
        raise tsig_error(err).with_context(server=server) from err
    except dns.exception.FormError as err:
        if "TSIG" in str(err):
            raise tsig_error(err).with_context(server=server) from err
        raise BadDataError(f"malformed SOA answer: {err}", server=server) from err
    except dns.exception.DNSException as err:
        raise BadDataError(f"bad SOA answer: {err}", server=server) from err
    except OSError as err:
        raise _soa_os_error(err, server) from err
    except EOFError as err:  # (dnspython over TCP: the stream ended before an answer)
        raise NetworkError(
            "the server closed the connection without answering the SOA query", server=server
        ) from err
    _check_soa_header(response.rcode(), bool(response.flags & dns.flags.AA), origin, server)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == origin:
            soa = rrset[0]
            return SoaInfo(
                soa.serial,
                soa.refresh,
                soa.retry,
                soa.expire,
                soa.minimum,
                rrset.ttl,
                transport,
                edns_expire(response),
            )
    raise BadDataError("the SOA answer has no SOA record for the zone", server=server)


SOA_UDP_TRIES = 3
"""An SOA query over UDP is sent this many times within its timeout (at 0, 1/3 and 2/3
of it), as BIND's refresh and dig (``+tries=3``) send it again: one lost datagram then
costs a third of the timeout, not a failed refresh (nor a count towards holding the
primary as unreachable, :mod:`secdns.unreachable`)."""


def _try_deadlines(timeout: float) -> list[float]:
    """The loop times by which each UDP try of a query is given up."""
    now = asyncio.get_running_loop().time()
    step = timeout / SOA_UDP_TRIES
    return [now + step * number for number in range(1, SOA_UDP_TRIES)] + [now + timeout]


async def _udp_tries(
    query: dns.message.Message, address: str, port: int, timeout: float
) -> dns.message.Message:
    """:func:`_udp_query`, sent again on a new socket when a try has no answer
    (:data:`SOA_UDP_TRIES` in ``timeout``); TimeoutError after the last."""
    for until in _try_deadlines(timeout):
        try:
            async with asyncio.timeout_at(until):
                return await _udp_query(query, address, port)
        except TimeoutError:
            continue
    raise TimeoutError


def _soa_timeout(timeout: float, server: str) -> TimeoutError_:
    return TimeoutError_(f"no answer to the SOA query within {timeout:g}s", server=server)


def _soa_os_error(err: OSError, server: str) -> NetworkError:
    """An SOA query's socket error, in words (a refusal is an ICMP port unreachable)."""
    if isinstance(err, ConnectionRefusedError):
        return NetworkError(
            "connection refused: nothing answers DNS there (ICMP port unreachable to the "
            "SOA query)",
            server=server,
        ).after(err)
    return NetworkError(f"SOA query failed: {err.strerror or err}", server=server).after(err)


def _check_soa_header(rcode: int, authoritative: bool, origin: dns.name.Name, server: str) -> None:
    """Raise for an SOA answer that is not a NOERROR from an authoritative server: one
    decision for both readers of SOA answers (dnspython's and :mod:`secdns.soaquery`'s)."""
    if rcode != dns.rcode.NOERROR:
        raise rcode_error(
            dns.rcode.Rcode.make(rcode), f"SOA query for {origin}", SOA_RCODE_HINTS
        ).with_context(server=server)
    if not authoritative:
        raise RefusedError(
            f"the answer to the SOA query for {origin} is not authoritative (no AA flag)",
            server=server,
            hint=SOA_RCODE_HINTS[dns.rcode.NOTAUTH],
        )


async def _plain_soa(
    origin: dns.name.Name, address: str, port: int, timeout: float, server: str
) -> SoaInfo | None:
    """An unsigned SOA query over UDP built and read by :mod:`secdns.soaquery` (no
    dnspython message objects: 10,000 zones make 10,000 of these at start); None when
    the answer was truncated (the caller asks again over TCP).  A new connected socket
    per query, as :func:`_udp_query`: a random source port, and an ICMP port
    unreachable surfaces as ConnectionRefusedError.  Sent :data:`SOA_UDP_TRIES` times
    on the same socket (an answer to an earlier try counts)."""
    loop = asyncio.get_running_loop()
    asked = soaquery.question(origin)
    query_id = soaquery.query_id()
    answer = None
    try:
        with socket.socket(dns.inet.af_for_address(address), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(dns.inet.low_level_address_tuple((address, port)))
            query = soaquery.make_query(query_id, asked)
            for until in _try_deadlines(timeout):
                await loop.sock_sendall(sock, query)
                try:
                    async with asyncio.timeout_at(until):
                        while answer is None:  # not ours (another ID or question): wait on
                            data = await loop.sock_recv(sock, 65535)
                            answer = soaquery.read_answer(data, query_id, asked)
                    break
                except TimeoutError:
                    continue
    except wire.WireError as err:
        raise BadDataError(f"malformed SOA answer: {err}", server=server) from err
    except OSError as err:
        raise _soa_os_error(err, server) from err
    if answer is None:
        raise _soa_timeout(timeout, server)
    if answer.truncated:
        return None
    _check_soa_header(answer.rcode, answer.authoritative, origin, server)
    if answer.soa is None:
        raise BadDataError("the SOA answer has no SOA record for the zone", server=server)
    serial, refresh, retry, expire, minimum, ttl = answer.soa
    return SoaInfo(serial, refresh, retry, expire, minimum, ttl, "UDP", answer.edns_expire)


EDNS_EXPIRE = 9
"""The EDNS EXPIRE option code (RFC 7314)."""


def edns_expire(response: dns.message.Message) -> int | None:
    """The seconds an EDNS EXPIRE option in ``response`` gives, or None (absent or malformed).

    RFC 7314: a secondary of a secondary must not outlive the original's expiry, so a
    refresh takes the smaller of this and the SOA EXPIRE field as its expire timer."""
    for option in response.options:
        if option.otype == EDNS_EXPIRE:
            data = option.to_wire()
            if len(data) == 4:
                return int.from_bytes(data, "big")
    return None


async def _udp_query(query: dns.message.Message, address: str, port: int) -> dns.message.Message:
    """One query over a *connected* UDP socket, so that an ICMP port unreachable
    surfaces at once as ConnectionRefusedError (as dig reports it) instead of the
    query waiting out its timeout.

    The caller bounds it with ``asyncio.timeout()``: dnspython's own timeout is
    ``asyncio.wait_for``, which on Python 3.11 can swallow a cancellation when the
    answer arrives at the same moment, and a cancelled watch or serve task would
    then keep running.  The same holds for every wait in :func:`transfer`.
    """
    backend = dns.asyncbackend.get_default_backend()
    family = dns.inet.af_for_address(address)
    sock = await backend.make_socket(family, socket.SOCK_DGRAM, 0, None, (address, port))
    async with sock:
        if not query.keyring:
            return await dns.asyncquery.udp(
                query, address, port=port, ignore_unexpected=True, sock=sock
            )
        await sock.sendto(query.to_wire(), (address, port), None)
        while True:  # (dnspython's udp() with ignore_unexpected, keeping the bytes)
            raw, _source = await sock.recvfrom(65535, None)
            try:
                response = dns.message.from_wire(raw, keyring=query.keyring, request_mac=query.mac)
            except dns.exception.FormError as err:
                unsigned = _unsigned_error(raw, query) if "requires a TSIG" in str(err) else None
                if unsigned is None:
                    raise
                return unsigned
            if soaquery.answers(query, response):
                return response


def _unsigned_error(raw: bytes, query: dns.message.Message) -> dns.message.Message | None:
    """An unsigned error answer to a signed query but NOTAUTH (a primary that does not
    serve the zone answers REFUSED without a TSIG, Knot does): its RCODE says what went wrong,
    where "no TSIG" sent a stranger to check the keys of a zone the primary had
    dropped; None if ``raw`` is not that."""
    try:
        response = dns.message.from_wire(raw, keyring=False)
    except dns.exception.DNSException:
        return None
    rcode = response.rcode()
    # (NOTAUTH is how a server rejects a TSIG, RFC 8945 5.3; PowerDNS leaves out the TSIG
    # record: that stays a TSIG failure, exit 5)
    if soaquery.answers(query, response) and rcode not in (dns.rcode.NOERROR, dns.rcode.NOTAUTH):
        return response
    return None


async def transfer(
    origin: dns.name.Name,
    address: str,
    port: int,
    kind: XfrKind,
    *,
    serial: int | None = None,
    key: TsigKey | None = None,
    timeout: float = 10.0,
    lifetime: float = 3600.0,
    limits: Limits | None = None,
    progress: Progress | None = None,
    soa_for_ixfr: tuple[dns.name.Name, dns.name.Name] | None = None,
    tls: xot.TlsSettings | None = None,
    pooled: bool = False,
    ask_expire: bool = False,
) -> Transfer:
    """Run one AXFR or IXFR over TCP (or TLS, with ``tls``) and return the checked result.

    ``pooled``: a full zone may be decoded and rendered in worker processes
    (:mod:`secdns.decodepool`); only for a caller that writes the zone as lines
    (``FullZone.lines``), never needs its records (``FullZone.records``).

    ``timeout`` bounds each wait for data; ``lifetime`` is a wall-clock deadline over
    the whole transfer, kept even while data keeps arriving.

    ``ask_expire`` (unsigned only): ask with EDNS EXPIRE (RFC 7314), answered in
    :attr:`Transfer.edns_expire`, for a transfer asked without a SOA probe first.

    Over plain TCP, where the command keeps connections
    (:class:`tcpstream.IdleConnections`: serve, ``pull -c``, watch), a connection a
    transfer from the same primary left open is used; if the primary closed it
    meanwhile (the query fails, or the stream ends before any answer), the transfer
    is made again on a new connection.
    """
    pool = tcpstream.IdleConnections.current() if tls is None else None
    run = functools.partial(
        _transfer,
        origin,
        address,
        port,
        kind,
        serial=serial,
        key=key,
        timeout=timeout,
        lifetime=lifetime,
        limits=limits,
        progress=progress,
        soa_for_ixfr=soa_for_ixfr,
        tls=tls,
        pooled=pooled,
        ask_expire=ask_expire,
        keep=pool,
    )
    if pool is not None:
        kept = pool.take(address, port)
        if kept is not None:
            try:
                return await run(kept=kept)
            except _StaleConnection:
                log.debug("transfer: %s closed a kept connection; a new one", address)
    return await run()


class _StaleConnection(Exception):
    """A kept connection failed before any answer: the primary had closed it."""


async def _transfer(
    origin: dns.name.Name,
    address: str,
    port: int,
    kind: XfrKind,
    *,
    serial: int | None,
    key: TsigKey | None,
    timeout: float,
    lifetime: float,
    limits: Limits | None,
    progress: Progress | None,
    soa_for_ixfr: tuple[dns.name.Name, dns.name.Name] | None,
    tls: xot.TlsSettings | None,
    pooled: bool,
    ask_expire: bool,
    kept: tcpstream.TcpStream | None = None,
    keep: tcpstream.IdleConnections | None = None,
) -> Transfer:
    """:func:`transfer` on one connection: ``kept`` (one a transfer left open) or a new
    one; the connection is given to ``keep`` when the transfer ended cleanly."""
    server = format_addr(address, port)
    limits = limits or Limits()
    started = time.monotonic()
    deadline = started + lifetime
    rdtype = dns.rdatatype.IXFR if kind is XfrKind.IXFR else dns.rdatatype.AXFR
    verifier: TsigVerifier | None = None
    if key is None:  # built without a dnspython message (10,000 small zones at start)
        query_id = soaquery.query_id()
        ixfr_serial = serial if kind is XfrKind.IXFR else None
        assert kind is not XfrKind.IXFR or ixfr_serial is not None
        request = soaquery.transfer_query(
            query_id, origin, ixfr_serial, soa_for_ixfr, expire=ask_expire
        )
    else:
        query = dns.message.make_query(origin, rdtype)
        query.flags &= ~dns.flags.RD
        if kind is XfrKind.IXFR:
            assert serial is not None
            mname, rname = soa_for_ixfr or (dns.name.root, dns.name.root)
            soa = dns.rdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.SOA, f"{mname} {rname} {serial} 0 0 0 0"
            )
            query.authority.append(dns.rrset.from_rdata(origin, 0, soa))
        query.use_tsig(key.to_dnspython())
        request = query.to_wire()
        query_id = query.id
        verifier = TsigVerifier(key.to_dnspython(), query.mac or b"")
    expire: list[int] = []  # the first EDNS EXPIRE the answer gave
    reader = XfrReader(
        origin,
        kind,
        query_id=query_id,
        serial=serial,
        max_records=limits.max_records,
        max_bytes=limits.max_bytes,
    )
    reader_stream: asyncio.StreamReader | tcpstream.TcpStream
    writer: asyncio.StreamWriter | tcpstream.TcpStream | None = None
    plain: tcpstream.TcpStream | None = None  # (the plain TCP stream, without TLS)
    clean = False  # the transfer ended as it should: its connection may carry another
    lifetime_at = asyncio.get_running_loop().time() + lifetime
    with gc_paused():
        try:
            # The lifetime bounds every wait: each wait for data (the connect, each read)
            # by itself, with the smaller of its timeout and the lifetime left; the rest
            # (TLS, a send that has to wait, the decoding pool) under this bound, which
            # is armed only for them (a timer per transfer less: 10,000 at a cold start).
            async with asyncio.timeout(None) as bound:
                try:
                    if tls is not None:
                        bound.reschedule(lifetime_at)
                        reader_stream, writer = await xot.open_stream(
                            address, port, tls, timeout=timeout, limit=STREAM_LIMIT
                        )
                    elif kept is not None:
                        plain = reader_stream = writer = kept
                    else:  # (plain sockets: no transport and protocol per connection)
                        plain = tcpstream.TcpStream.start(address, port)
                        reader_stream = writer = plain
                        if not plain.connected:  # (a primary further away than the host)
                            try:
                                async with asyncio.timeout(min(timeout, lifetime)):
                                    await plain.wait_connected()
                            except TimeoutError:
                                if lifetime <= timeout:  # the lifetime ran out: said below
                                    raise _LifetimeOver from None
                                raise
                except TimeoutError as err:  # (before OSError: TimeoutError is one)
                    raise TimeoutError_(f"cannot connect within {timeout:g}s") from err
                except OSError as err:
                    raise NetworkError(
                        f"cannot connect to {format_addr(address, port)}: {os_reason(err)}"
                    ).after(err) from err
                sock = writer.get_extra_info("socket") if tls is not None else None
                if sock is not None:  # (TcpStream.start has set it on a plain socket)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                writer.write(struct.pack("!H", len(request)) + request)
                if plain is None or not plain.flush():  # (sent whole at once, as a rule)
                    bound.reschedule(lifetime_at)
                    await writer.drain()
                    if plain is not None:
                        bound.reschedule(None)

                async def read_raw() -> bytes:
                    # the lifetime is a wall-clock deadline over the whole transfer, checked
                    # before each message: a primary that never stops sending (and so never
                    # lets a wait time out) is stopped too
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise _Expired
                    try:
                        async with asyncio.timeout(min(timeout, remaining)):
                            prefix = await reader_stream.readexactly(2)
                            (length,) = struct.unpack("!H", prefix)
                            return await reader_stream.readexactly(length)
                    except TimeoutError as err:
                        if time.monotonic() >= deadline:
                            raise _Expired from err
                        raise

                def read_failure(err: BaseException) -> BaseException:
                    """What a failed read means, said with the records settled so far."""
                    if isinstance(err, _Expired):
                        return TimeoutError_(
                            f"{kind.value} took longer than its lifetime of {lifetime:g}s "
                            f"({reader.count} records so far)",
                            hint=LIFETIME_HINT,
                        ).heard()
                    if isinstance(err, TimeoutError):
                        stalled = TimeoutError_(
                            f"no data for {timeout:g}s during {kind.value} "
                            f"({reader.count} records so far)"
                        )
                        return stalled.heard() if reader.messages else stalled
                    if isinstance(err, asyncio.IncompleteReadError):
                        if reader.messages == 0 and not err.partial:
                            return NetworkError(
                                "the server closed the connection without answering"
                            )
                        if not err.partial and err.expected == 2:
                            return BadDataError(
                                "the transfer ended before its final SOA "
                                f"({reader.count} records received)"
                            )
                        return BadDataError(
                            f"the transfer stream was cut short after {reader.count} records"
                        )
                    return err

                def settle(raw: bytes, decoded: wire.Message | wire.WireError) -> bool:
                    """Check one decoded message (or its decoding error) and feed it to
                    the reader, in message order; True when the transfer is complete."""
                    reader.admit(int.from_bytes(raw[6:8]) if len(raw) >= 12 else 0)
                    if isinstance(decoded, wire.WireError):
                        raise BadDataError(
                            f"malformed message in the transfer: {decoded}"
                        ) from decoded
                    message = decoded
                    if message.rcode != dns.rcode.NOERROR and (
                        message.tsig_rdata is None or message.tsig_rdata.error == 0
                    ):
                        raise rcode_error(message.rcode, f"{kind.value} of {origin}")
                    if verifier is not None:
                        verifier.verify(raw, message)
                    elif message.tsig_rdata is not None:
                        raise TsigError("the answer is TSIG-signed but we sent no key")
                    if message.edns_expire is not None and not expire:
                        expire.append(message.edns_expire)
                    return reader.feed(message, len(raw) + 2)

                def report(done: bool) -> None:
                    if progress is not None:  # at the end the zone's records, SOA once
                        zone = reader.zone
                        count = len(zone) if done and zone is not None else reader.count
                        progress(count, reader.bytes)

                while True:
                    try:
                        raw = await read_raw()
                    except (_Expired, TimeoutError, asyncio.IncompleteReadError) as err:
                        if (
                            kept is not None
                            and reader.messages == 0
                            and isinstance(err, asyncio.IncompleteReadError)
                            and not err.partial
                        ):
                            raise _StaleConnection from err
                        raise read_failure(err) from err
                    decoded: wire.Message | wire.WireError
                    try:
                        decoded = wire.parse_message(
                            raw, origin, limits.max_records + 2, reader.rows()
                        )
                    except wire.WireError as err:
                        decoded = err
                    done = settle(raw, decoded)
                    report(done)
                    if done:
                        break
                    pool_ok = pooled and decodepool.WORKERS and verifier is None
                    if pool_ok and reader.rows() is not None:
                        # the rest of a large full zone: decoded in worker processes
                        workers = decodepool.worker_count()
                        if workers and decodepool.Pool.claim():
                            bound.reschedule(lifetime_at)
                            try:
                                await decodepool.receive(
                                    reader,
                                    read_raw,
                                    read_failure,
                                    settle,
                                    report,
                                    limits.max_records + 2,
                                    workers,
                                )
                            finally:
                                decodepool.Pool.release()
                            break
                if verifier is not None:
                    verifier.finish()
                reader.finish()
                clean = True
        except (TimeoutError, _LifetimeOver) as err:
            raise TimeoutError_(
                f"{kind.value} took longer than its lifetime of {lifetime:g}s",
                server=server,
                hint=LIFETIME_HINT,
            ).heard() from err
        except SecdnsError as err:
            err.with_context(server=server)
            raise
        except OSError as err:
            if kept is not None and reader.messages == 0 and isinstance(err, ConnectionError):
                raise _StaleConnection from err
            raise NetworkError(
                f"{kind.value} failed: {err.strerror or err}", server=server
            ) from err
        finally:
            if clean and keep is not None and plain is not None:
                keep.give(address, port, plain)
            elif isinstance(writer, asyncio.StreamWriter):  # TLS: its shutdown not awaited
                xot.close_soon(writer)
            elif writer is not None:
                writer.close()
                try:
                    await writer.wait_closed()
                except (OSError, ConnectionError):
                    pass
    return Transfer(
        kind=kind,
        server=server,
        reader=reader,
        duration=time.monotonic() - started,
        edns_expire=expire[0] if expire else None,
    )
