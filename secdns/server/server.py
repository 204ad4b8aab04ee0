"""The foreground server: startup -> serve until a stop event -> shutdown.

Shaped like uvicorn's server: :meth:`Server.serve` is awaitable, so tests run the
real server as a task in-process.  Listeners are asyncio protocols whose
callbacks never await; the hot path is a dict lookup from the query bytes
(minus the ID) to a prebuilt answer, valid while the zone's generation is
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import socket
import struct
import sys
from collections.abc import Coroutine, Iterable, Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsig

from secdns import notify
from secdns.addresses import resolve
from secdns.config import Config, ZoneConfig, load_config
from secdns.control import Operations
from secdns.endpoints import Endpoint
from secdns.errors import ConfigError, LocalIOError, SecdnsError, os_reason
from secdns.explain import log_step
from secdns.pull import PullOptions
from secdns.server import front, xfrout
from secdns.server.catalogs import CatalogZones
from secdns.server.fastpath import NegativeAnswers, split_cookie
from secdns.server.persist import StoreQueue
from secdns.server.prepared import PreparedAnswers
from secdns.server.tcp import TcpClients
from secdns.server.udp import AnswerCache, UdpWorker
from secdns.server.xot_listen import TlsListeners
from secdns.server.zone import ZoneTable
from secdns.server.zones import Stored, ZoneRuntime, read_stored
from secdns.store import Store

log = logging.getLogger(__name__)
query_log = logging.getLogger("secdns.query")

TCP_WRITE_TIMEOUT = 30.0
LOAD_BATCH = 200
SWITCH_INTERVAL = 0.0005
"""The GIL hand-over interval while serving (Python's default is 5 ms): the UDP
threads answer while the loop refreshes thousands of zones, and a query must not
wait 5 ms for the interpreter behind it (10,000 zones: median answer 3 ms -> 0.3 ms)."""


class Server:
    """An authoritative secondary for the zones of a config."""

    def __init__(self, config: Config, *, log_queries: bool = False) -> None:
        self.config = config
        self.log_queries = log_queries
        self.table = ZoneTable()
        self.runtimes: dict[dns.name.Name, ZoneRuntime] = {}
        self.cache = AnswerCache()
        self.negative = NegativeAnswers(self.table)
        self.prepared = PreparedAnswers(self.table)
        self.keyring: dict[dns.name.Name, dns.tsig.Key] = {}
        self._key_names: dict[str, dns.name.Name] = {}
        self.store: Store | None = None
        self.commits = StoreQueue()  # every zone's store writes, group-committed
        self._switch_interval: float | None = None
        self.gate = asyncio.Semaphore(config.server.concurrency)
        self.stop_event = asyncio.Event()
        self.started = asyncio.Event()
        self._udp: list[UdpWorker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tcp: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[object]] = set()
        self.tcp_clients = TcpClients(
            config.server.tcp_clients, config.server.tcp_clients_per_source
        )
        self._transfer_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
        self._background: set[asyncio.Task[object]] = set()
        self.addresses: list[tuple[str, int]] = []
        self.notify_refusals = notify.RefusalLog(log)
        self.tcp_rcodes = [0] * 16
        self.operations = Operations(self)  # control socket, metrics, statuses
        self.catalogs = CatalogZones(self)  # [[catalog]] members, [server] catalog
        self.tls = TlsListeners(self)  # [server] tls_listen: DoT and XoT

    # --- lifecycle -----------------------------------------------------------------------------
    async def serve(self, *, install_signals: bool = False) -> None:
        await self.startup()
        if install_signals:
            self._install_signals()
        try:
            await self.stop_event.wait()
        finally:
            if install_signals:
                self._restore_signals()
            await self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    async def startup(self) -> None:
        self._apply_keys(self.config)
        if self.config.server.directory is not None:
            self.store = Store(self.config.server.directory)
            self.store.ensure()
        # loading makes a few hundred long-lived objects per zone: the cyclic collector
        # would scan them all again and again (a third of the load time of 10,000
        # zones); it waits until they are loaded, then leaves them out (gc.freeze)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        gc.disable()
        try:
            stored = await self._read_stored(self.config.zones)
            for zone_config in self.config.zones:
                await self._add_zone(zone_config, stored=stored.get(zone_config.name))
            del stored
        finally:
            gc.freeze()
            gc.enable()
        await self.operations.start()  # first: a control socket in use fails before listening
        await self.catalogs.startup()
        await self._listen()
        await self.tls.listen()
        for runtime in self.runtimes.values():
            self._start_zone(runtime)
        self.started.set()
        log.info(
            "serve: listening on %s, %d zones",
            ", ".join(f"{a}:{p}" for a, p in self.addresses),
            len(self.runtimes),
        )

    async def shutdown(self) -> None:
        log.info("serve: stopping")
        await self.operations.close()
        for worker in self._udp:
            worker.stop()
        for server in self._tcp:
            server.close()
        self.tls.close()
        for runtime in self.runtimes.values():
            runtime.stopping = True
            runtime.wake.set()
        tasks = [r.task for r in self.runtimes.values() if r.task is not None]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for other in list(self._connections) + list(self._background):
            other.cancel()
        await asyncio.gather(*self._connections, *self._background, return_exceptions=True)
        for runtime in self.runtimes.values():
            await runtime.flush()
        self.commits.close()
        for server in self._tcp:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        for worker in self._udp:
            await asyncio.to_thread(worker.thread.join, 2.0)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        log.info("serve: stopped")

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._reload_on_signal()))

    def _restore_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- zones ---------------------------------------------------------------------------------
    def _apply_keys(self, config: Config) -> None:
        self.keyring = {dns.name.from_text(k.name): k.to_dnspython() for k in config.keys.values()}
        self._key_names = {table: dns.name.from_text(k.name) for table, k in config.keys.items()}
        networks = []
        acls = [z.allow_transfer for z in config.zones]
        acls += [g.allow_transfer for g in config.groups.values()]
        acls.append(config.server.catalog_allow_transfer)
        for acl in acls:
            for item in acl:
                if not item.startswith("key:"):
                    with contextlib.suppress(ValueError):
                        networks.append(ipaddress.ip_network(item, strict=False))
        self._transfer_networks = tuple(networks)
        chaos = {}
        if config.server.version is not None:
            chaos["version.bind."] = config.server.version
        if config.server.identity is not None:
            chaos["hostname.bind."] = chaos["id.server."] = config.server.identity
        self.table.chaos = chaos

    def _may_transfer(self, source: str) -> bool:
        """Whether ``source`` is in some zone's allow_transfer (it gets the reserved TCP room)."""
        if not self._transfer_networks:
            return False
        try:
            address = ipaddress.ip_address(source.split("%")[0])
        except ValueError:
            return False
        return any(address in network for network in self._transfer_networks)

    async def _read_stored(self, zones: Iterable[ZoneConfig]) -> dict[dns.name.Name, Stored]:
        """The store copies of secondary zones, read in batches (one thread hand-off
        per ``LOAD_BATCH`` zones: 10,000 small zones load in seconds)."""
        store = self.store
        names = [z.name for z in zones if z.file is None and z.primaries]
        found: dict[dns.name.Name, Stored] = {}
        if store is None:
            return found

        def read(batch: list[dns.name.Name]) -> None:
            for name in batch:
                try:
                    found[name] = read_stored(store, name)
                except SecdnsError as err:  # _add_zone reads it again and logs it
                    log.debug("load: zone=%s %s", name, err.one_line())

        for start in range(0, len(names), LOAD_BATCH):
            await asyncio.to_thread(read, names[start : start + LOAD_BATCH])
        return found

    async def _add_zone(
        self,
        zone_config: ZoneConfig,
        keep: ZoneRuntime | None = None,
        stored: Stored | None = None,
    ) -> ZoneRuntime:
        runtime = ZoneRuntime(zone_config, self.config, self.store, self._zone_changed)
        runtime.commits = self.commits
        self.operations.attach(runtime)
        if keep is not None and keep.zone.version is not None:
            runtime.zone = keep.zone  # keep answering the loaded version
            runtime.journal = keep.journal
            runtime.last_success = keep.last_success
            runtime.store_copy = keep.store_copy
        elif zone_config.file is not None:
            await runtime.load_file()
        elif stored is not None:
            runtime.install_stored(stored)
        else:
            try:
                await runtime.load_from_store()
            except SecdnsError as err:
                log.error(
                    "load: zone=%s cannot use the stored copy: %s", zone_config.text, err.one_line()
                )
        self.runtimes[zone_config.name] = runtime
        self.table.add(runtime.zone)
        return runtime

    def _start_zone(self, runtime: ZoneRuntime) -> None:
        if not runtime.is_secondary:
            return
        options = PullOptions(
            key=self.config.key_for(runtime.config),
            request_ixfr=runtime.config.request_ixfr,
            timeout=self.config.server.timeout,
            lifetime=self.config.server.lifetime,
            limits=self.config.server.limits,
            tls=runtime.config.tls,  # transport = "tls": XoT from the primaries
            explain=log_step if self.log_queries else None,  # serve -v: explain each refresh
        )
        runtime.task = asyncio.get_running_loop().create_task(runtime.run(self.gate, options))

    async def _remove_zone(self, name: dns.name.Name) -> None:
        runtime = self.runtimes.pop(name)
        self.table.remove(runtime.zone.key)
        runtime.zone.generation += 1  # cached answers of a removed zone are stale
        runtime.stopping = True
        runtime.wake.set()
        if runtime.task is not None:
            try:
                await asyncio.wait_for(runtime.task, 5.0)
            except (TimeoutError, asyncio.CancelledError):
                runtime.task.cancel()
        await runtime.flush()

    def _zone_changed(self, runtime: ZoneRuntime) -> None:
        version = runtime.zone.version
        if version is None:
            return
        self.catalogs.changed(runtime)
        for endpoint in runtime.config.notify:
            self._spawn(self._notify(runtime, endpoint))

    async def _notify(self, runtime: ZoneRuntime, endpoint: Endpoint) -> None:
        version = runtime.zone.version
        if version is None:
            return
        try:
            addresses = await resolve(endpoint)
        except SecdnsError as err:
            log.warning("notify: zone=%s %s", runtime.name, err.one_line())
            return
        soa = version.soa_rrset()
        await asyncio.gather(
            *(
                notify.send_notify(runtime.zone.origin, soa, address, port, stop=self.stop_event)
                for address, port in addresses
            )
        )

    async def _reload_on_signal(self) -> None:
        try:
            await self.reload()
        except SecdnsError:
            pass  # reload() logged it

    async def reload(self) -> list[str]:
        """SIGHUP and ``ctl reload``: re-read the config; add, remove and change zones
        without dropping others.  Returns the warnings it logged (settings that need a
        restart, a zone file that did not load) for ``ctl reload`` to show; raises the
        :class:`SecdnsError` of a config that does not load, after logging it."""
        path = self.config.path
        if path is None:
            return []
        warnings: list[str] = []
        try:
            config = load_config(path)
        except SecdnsError as err:
            log.error("reload: %s; keeping the running configuration", err.one_line())
            raise
        if config.server.listen != self.config.server.listen:
            warnings.append("listen addresses changed; restart secdns serve to apply")
            log.warning("reload: %s", warnings[-1])
        old = self.config
        self.config = config
        self._apply_keys(config)
        wanted = {z.name: z for z in config.zones}
        for name in list(self.runtimes):
            if name not in wanted and not self.catalogs.owns(name):
                log.info("reload: zone=%s removed", name)
                await self._remove_zone(name)
        for name, zone_config in wanted.items():
            current = self.runtimes.get(name)
            if current is None:
                log.info("reload: zone=%s added", name)
                self._start_zone(await self._add_zone(zone_config))
            elif current.config != zone_config or old.key_for(current.config) != config.key_for(
                zone_config
            ):
                log.info("reload: zone=%s changed", name)
                await self._remove_zone(name)
                self._start_zone(await self._add_zone(zone_config, keep=current))
            elif zone_config.file is not None:
                try:
                    await current.load_file()
                except SecdnsError as err:
                    warnings.append(f"zone={name} {err.one_line()}; keeping the loaded version")
                    log.error("reload: %s", warnings[-1])
        await self.catalogs.reload()
        warnings += await self.tls.reload()
        log.info("reload: done, %d zones", len(self.runtimes))
        return warnings

    # --- listeners -----------------------------------------------------------------------------
    async def _listen(self) -> None:
        self._loop = asyncio.get_running_loop()
        for endpoint in self.config.server.listen:
            host, port = endpoint.host, endpoint.port
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                tcp = await asyncio.start_server(
                    self._handle_tcp, host, port, family=family, reuse_address=True, backlog=256
                )
                bound_port = tcp.sockets[0].getsockname()[1]
                udp = socket.socket(family, socket.SOCK_DGRAM)
                with contextlib.suppress(OSError):
                    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                udp.bind((host, bound_port))
                udp.settimeout(0.25)
            except OSError as err:
                for server in self._tcp:
                    server.close()
                raise LocalIOError(
                    f"cannot listen on {endpoint}: {os_reason(err)}",
                    hint="is another server using the port?",
                ) from err
            worker = UdpWorker(self, udp)
            worker.start()
            self._tcp.append(tcp)
            self._udp.append(worker)
            self.addresses.append((host, bound_port))

    async def _handle_tcp(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: TlsListeners | None = None,
    ) -> None:
        """One TCP connection: admitted by the connection table (secdns.server.tcp), idle
        (reclaimable) only while it waits for the next message, closed on a response.
        With ``tls`` (a tls_listen connection) admitted first, then the TLS handshake."""
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = self.tcp_clients.admit(
            peer[0], self._may_transfer(peer[0]), writer.transport.abort
        )
        if client is None:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        idle_timeout = self.config.server.tcp_idle_timeout
        xot = False  # a TLS 1.3 session: transfer_transport = "tls" zones may go out
        try:
            if tls is not None:
                self.tcp_clients.idle(client)  # reclaimable while it shakes hands
                xot = await tls.handshake(writer)
            while not self.stop_event.is_set():
                self.tcp_clients.idle(client)
                prefix = await asyncio.wait_for(reader.readexactly(2), idle_timeout)
                self.tcp_clients.busy(client)
                (length,) = struct.unpack("!H", prefix)
                if length < 12:
                    break
                data = await asyncio.wait_for(reader.readexactly(length), idle_timeout)
                if data[2] & 0x80:
                    break  # a response (QR=1) on a query stream: close, as BIND does
                for reply in self.answer_tcp(data, peer[0], tls=xot):
                    self.tcp_rcodes[reply[3] & 15] += 1
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await asyncio.wait_for(writer.drain(), TCP_WRITE_TIMEOUT)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            pass
        except Exception:
            log.exception("tcp: internal error with %s", peer[0])
        finally:
            self.tcp_clients.release(client)
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    # --- answering -----------------------------------------------------------------------------
    def answer_udp(self, data: bytes, source: str, looked_up: bool = False) -> bytes | None:
        """Answer a UDP query; ``looked_up``: the caller already missed the answer cache.

        A query whose only EDNS option is a COOKIE gets the answer cached for its shape
        (under "C" and the query without the option) with a fresh server cookie added."""
        key = b"U" + data[2:]
        cached = None if looked_up else self.cache.get(key)
        if cached is not None:
            if self.log_queries:
                self._log_query(data, source, "udp", cached=True)
            return data[:2] + cached
        prepared = self.prepared.answer(data)  # the first ask of a name: prepared owner forms
        if prepared is not None:
            self.cache.put(key, prepared[1], prepared[0][2:])
            if self.log_queries:
                self._log_query(data, source, "udp")
            return prepared[0]
        split = split_cookie(data)
        if split is not None:
            stripped, client_cookie = split
            cached = self.cache.get(b"C" + stripped[2:])
            answer = data[:2] + cached if cached is not None else self.negative.answer(stripped)
            if answer is not None:
                out = front.add_cookie(answer, front.cookie_option(client_cookie, source))
                if out is not None:
                    if self.log_queries:
                        self._log_query(data, source, "udp", cached=True)
                    return out
        else:
            fast = self.negative.answer(data)
            if fast is not None:
                return fast
        reply = front.handle(
            data,
            self.table,
            tcp=False,
            keyring=self.keyring,
            client=source,
            idle_timeout=self.config.server.tcp_idle_timeout,
        )
        if reply.kind == "query":
            if reply.wire is not None and reply.cacheable and reply.zone is not None:
                if not reply.cookie:
                    self.cache.put(key, reply.zone, reply.wire[2:])
                    self.negative.learn(data, reply.wire, reply.zone)
                elif split is not None:
                    bare = reply.wire[2 : -(reply.cookie + 2)] + b"\x00\x00"
                    self.cache.put(b"C" + split[0][2:], reply.zone, bare)
            if self.log_queries:
                self._log_query(data, source, "udp")
            return reply.wire
        if reply.kind == "notify":
            return self._notify_in(data, source)
        if reply.kind == "xfr" and reply.query is not None:
            return self._xfr_over_udp(reply.query)
        return reply.wire

    def answer_tcp(self, data: bytes, source: str, tls: bool = False) -> Iterable[bytes]:
        key = b"T" + data[2:]
        cached = self.cache.get(key)
        if cached is not None:
            return (data[:2] + cached,)
        fast = self.negative.answer(data)
        if fast is not None:
            return (fast,)
        reply = front.handle(
            data,
            self.table,
            tcp=True,
            keyring=self.keyring,
            client=source,
            idle_timeout=self.config.server.tcp_idle_timeout,
        )
        if reply.kind == "query":
            cacheable = reply.cacheable and not reply.cookie
            if reply.wire is not None and cacheable and reply.zone is not None:
                self.cache.put(key, reply.zone, reply.wire[2:])
            if self.log_queries:
                self._log_query(data, source, "tcp")
            return (reply.wire,) if reply.wire is not None else ()
        if reply.kind == "notify":
            out = self._notify_in(data, source)
            return (out,) if out else ()
        if reply.kind == "xfr" and reply.query is not None:
            return self._xfr(reply.query, source, tls)
        return (reply.wire,) if reply.wire is not None else ()

    def _notify_in(self, data: bytes, source: str) -> bytes | None:
        def lookup(zone: dns.name.Name) -> notify.NotifyAcl | None:
            runtime = self.runtimes.get(zone)
            return runtime.notify_acl if runtime is not None and runtime.is_secondary else None

        decision = notify.answer_notify(data, source, lookup, self.keyring)
        self.operations.notify_received(decision)
        if decision.zone is not None:
            runtime = self.runtimes[decision.zone]
            log.info("notify: zone=%s from %s: checking the primary now", runtime.name, source)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(runtime.wake.set)
            else:
                runtime.wake.set()
        else:
            self.notify_refusals.refused(source, str(decision.qname or "?"), decision.reason)
        return decision.response

    def _xfr_over_udp(self, parsed: dns.message.Message) -> bytes | None:
        """IXFR over UDP: answer with the SOA only, so the client uses TCP (RFC 1995)."""
        response = dns.message.make_response(parsed)
        question = parsed.question[0]
        runtime = self.runtimes.get(question.name)
        if question.rdtype == dns.rdatatype.AXFR or runtime is None:
            response.set_rcode(dns.rcode.FORMERR if runtime else dns.rcode.NOTAUTH)
            return response.to_wire()
        if runtime.zone.servfail or runtime.zone.version is None:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        response.flags |= dns.flags.AA
        response.answer.append(runtime.zone.version.soa_rrset())
        return response.to_wire()

    def _xfr(self, parsed: dns.message.Message, source: str, tls: bool = False) -> Iterator[bytes]:
        question = parsed.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        runtime = self.runtimes.get(question.name)
        if runtime is None:
            log.info(
                "xfr: %s of %s from %s: not a zone of ours (NOTAUTH)", kind, question.name, source
            )
            yield xfrout.error_response(parsed, dns.rcode.NOTAUTH)
            return
        key_name = parsed.keyname if parsed.had_tsig else None
        if not xfrout.transfer_allowed(
            runtime.config.allow_transfer, source, key_name, self._key_names
        ):
            log.warning(
                "xfr: zone=%s %s from %s%s refused by allow_transfer",
                runtime.name,
                kind,
                source,
                f" (key {key_name})" if key_name else "",
            )
            yield xfrout.error_response(parsed, dns.rcode.REFUSED)
            return
        if runtime.config.transfer_transport == "tls" and not tls:
            log.warning(
                'xfr: zone=%s %s from %s refused: transfer_transport = "tls", and this is '
                "not a TLS 1.3 session on tls_listen",
                runtime.name,
                kind,
                source,
            )
            yield xfrout.error_response(parsed, dns.rcode.REFUSED)
            return
        version = runtime.zone.version
        if version is None or runtime.zone.servfail:
            yield xfrout.error_response(parsed, dns.rcode.SERVFAIL)
            return
        log.info("xfr: zone=%s %s to %s at serial %d", runtime.name, kind, source, version.serial)
        expire = None
        if any(option.otype == front.EXPIRE for option in parsed.options):
            expire = front.expire_seconds(runtime.zone)
        if question.rdtype == dns.rdatatype.IXFR:
            yield from xfrout.ixfr_messages(parsed, version, list(runtime.journal), expire)
        else:
            yield from xfrout.axfr_messages(parsed, version, expire)

    def _log_query(self, data: bytes, source: str, transport: str, cached: bool = False) -> None:
        try:
            query = dns.message.from_wire(data, keyring=False, ignore_trailing=True)
            question = query.question[0]
            query_log.info(
                "query: %s %s %s from %s/%s%s",
                question.name,
                dns.rdatatype.to_text(question.rdtype),
                dns.rdataclass.to_text(question.rdclass),
                source,
                transport,
                " (cached)" if cached else "",
            )
        except Exception:
            query_log.info("query: unparsable from %s/%s", source, transport)


def check_config_for_serve(config: Config) -> None:
    """Problems that only matter for serve, reported before anything starts."""
    problems = []
    if not config.zones and not config.catalogs:
        problems.append("no [[zone]] or [[catalog]] to serve")
    for endpoint in config.server.listen:
        if not endpoint.is_address:
            problems.append(f"server.listen: {endpoint.host!r} is not an IP address")
    for endpoint in config.server.tls_listen:
        if not endpoint.is_address:
            problems.append(f"server.tls_listen: {endpoint.host!r} is not an IP address")
    for zone in config.zones:
        if zone.file is not None and not Path(zone.file).exists():
            problems.append(f"zone {zone.text}: file {zone.file} does not exist")
    if (
        any(z.primaries for z in config.zones) or config.catalogs
    ) and config.server.directory is None:
        problems.append("server.directory is required for secondary zones (the store)")
    if problems:
        raise ConfigError(f"{config.path}: " + "; ".join(problems))
