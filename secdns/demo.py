"""``secdns demo`` without the command line: an embedded primary serving a bundled
zone on loopback, and the guided scenario that runs ``serve``, pull, a change by
NOTIFY + IXFR, diff and verify against it.

The primary is small on purpose: SOA and AXFR/IXFR over TCP, SOA over UDP, from an
in-memory zone whose changes it keeps as IXFR deltas.  It lets the demo (and a
newcomer) see pull, a change and an incremental transfer with no network at all.
The scenario reports through a :class:`DemoReport` (the CLI renders it), so no
printing happens here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import importlib.resources
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

if TYPE_CHECKING:
    from secdns.pull import PullResult
    from secdns.server.server import Server

ORIGIN = dns.name.from_text("example.test.")


def bundled_zone() -> dns.zone.Zone:
    text = importlib.resources.files("secdns.data").joinpath("example.zone").read_text()
    return dns.zone.from_text(text, origin=ORIGIN, relativize=False)


@dataclasses.dataclass
class _Delta:
    serial_from: int
    serial_to: int
    deleted: list[dns.rrset.RRset]
    added: list[dns.rrset.RRset]


class DemoPrimary:
    """A tiny primary on 127.0.0.1: SOA over UDP and TCP, AXFR and IXFR over TCP."""

    def __init__(self, zone: dns.zone.Zone) -> None:
        self.zone = zone
        assert zone.origin is not None  # a zone read from a master file always has one
        self.origin: dns.name.Name = zone.origin
        self.deltas: list[_Delta] = []
        self.notify_targets: list[tuple[str, int]] = []
        self.port = 0
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    @property
    def serial(self) -> int:
        return self.zone.get_soa().serial

    def _soa_rrset(self) -> dns.rrset.RRset:
        node = self.zone.find_rdataset(self.origin, dns.rdatatype.SOA)
        return dns.rrset.from_rdata_list(self.origin, node.ttl, list(node))

    def change(
        self, added: dict[str, tuple[int, str, str]], removed: list[tuple[str, str, str]]
    ) -> int:
        """Apply a change (name -> (ttl, type, rdata) added; (name, type, rdata) removed)."""
        old_soa = self._soa_rrset()
        deleted_rrsets = [old_soa]
        added_rrsets = []
        for name, rdtype, rdata in removed:
            owner = dns.name.from_text(name, ORIGIN)
            rds = self.zone.find_rdataset(owner, rdtype)
            rd = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, rdata, origin=ORIGIN, relativize=False
            )
            deleted_rrsets.append(dns.rrset.from_rdata(owner, rds.ttl, rd))
            rds.discard(rd)
            if not rds:
                self.zone.delete_rdataset(owner, rdtype)
        for name, (ttl, rdtype, rdata) in added.items():
            owner = dns.name.from_text(name, ORIGIN)
            rd = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, rdata, origin=ORIGIN, relativize=False
            )
            rds = self.zone.find_rdataset(owner, rdtype, create=True)
            rds.add(rd, ttl)
            added_rrsets.append(dns.rrset.from_rdata(owner, ttl, rd))
        soa = old_soa[0].replace(serial=old_soa[0].serial + 1)
        self.zone.replace_rdataset(self.origin, dns.rdataset.from_rdata(old_soa.ttl, soa))
        new_soa = self._soa_rrset()
        self.deltas.append(
            _Delta(old_soa[0].serial, soa.serial, deleted_rrsets, [new_soa, *added_rrsets])
        )
        return soa.serial

    async def notify(self) -> None:
        """NOTIFY every target of the current serial (RFC 1996), as a primary does."""
        from secdns.notifysend import send_notify

        await asyncio.gather(
            *(
                send_notify(self.origin, self._soa_rrset(), address, port, attempts=3)
                for address, port in self.notify_targets
            )
        )

    async def start(self, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._handle_tcp, "127.0.0.1", port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=("127.0.0.1", self.port)
        )
        self._udp = transport
        return self.port

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    def answer(self, wire: bytes) -> list[bytes]:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return []
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question or query.question[0].name != self.zone.origin:
            response.set_rcode(dns.rcode.REFUSED)
            return [response.to_wire()]
        rdtype = query.question[0].rdtype
        soa = self._soa_rrset()
        if rdtype == dns.rdatatype.SOA:
            response.answer.append(soa)
        elif rdtype == dns.rdatatype.AXFR:
            response.answer.append(soa)
            for name, node in self.zone.nodes.items():
                for rds in node:
                    if rds.rdtype != dns.rdatatype.SOA:
                        response.answer.append(dns.rrset.from_rdata_list(name, rds.ttl, list(rds)))
            response.answer.append(soa)
        elif rdtype == dns.rdatatype.IXFR:
            serial = query.authority[0][0].serial if query.authority else None
            chain = [d for d in self.deltas if serial is not None]
            start = next((i for i, d in enumerate(chain) if d.serial_from == serial), None)
            if serial == self.serial or start is None:
                response.answer.append(soa)
                if start is None and serial != self.serial:
                    return self.answer(_as_axfr(query))
            else:
                response.answer.append(soa)
                for delta in chain[start:]:
                    response.answer.extend(delta.deleted)
                    response.answer.extend(delta.added)
                response.answer.append(soa)
        else:
            response.set_rcode(dns.rcode.NOTIMP)
        return [response.to_wire(max_size=65535)]

    async def _handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                for reply in self.answer(await reader.readexactly(length)):
                    writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        writer.close()


def _as_axfr(query: dns.message.Message) -> bytes:
    axfr = dns.message.make_query(query.question[0].name, dns.rdatatype.AXFR)
    axfr.id = query.id
    return axfr.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, primary: DemoPrimary) -> None:
        self.primary = primary
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a datagram endpoint's protocol is always given a DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for reply in self.primary.answer(data):
            if len(reply) <= 512 and self.transport is not None:
                self.transport.sendto(reply, addr)


# --- loopback helpers ----------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free for both UDP and TCP (a DNS server needs both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


async def soa_serial(port: int, origin: dns.name.Name = ORIGIN) -> int | None:
    """The serial 127.0.0.1:``port`` answers for ``origin`` over UDP, or None."""
    import dns.asyncquery

    query = dns.message.make_query(origin, "SOA")
    try:
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except Exception:  # no answer yet: the caller polls again
        return None
    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        return None
    return int(reply.answer[0][0].serial)


async def wait_serial(port: int, serial: int, timeout: float = 10.0) -> float:
    """Seconds until 127.0.0.1:``port`` answers ``serial`` (polled every 2 ms)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if await soa_serial(port) == serial:
            return time.perf_counter() - start
        await asyncio.sleep(0.002)
    raise RuntimeError(f"the secondary never answered serial {serial}")


# --- the scenario --------------------------------------------------------------------------------


class DemoReport(Protocol):
    """What the scenario tells its renderer."""

    def step(self, text: str) -> None: ...  # a numbered step's title

    def detail(self, text: str) -> None: ...  # a line under it

    def pull(self, result: PullResult) -> None: ...  # a pull's outcome


@dataclasses.dataclass
class DemoSetup:
    """The running pair: the embedded primary and a ``serve`` secondary of it."""

    work: Path
    primary: DemoPrimary
    server: Server
    secondary_port: int

    @property
    def primary_address(self) -> str:
        return f"127.0.0.1:{self.primary.port}"

    @property
    def secondary_address(self) -> str:
        return f"127.0.0.1:{self.secondary_port}"


@contextlib.asynccontextmanager
async def demo_servers(
    work: Path, primary_port: int = 0, secondary_port: int = 0
) -> AsyncIterator[DemoSetup]:
    """Start the embedded primary and a ``serve`` secondary of it (NOTIFYed on each
    change) on 127.0.0.1; stop both on the way out.  Port 0 picks a free one."""
    from secdns.config import parse_config
    from secdns.errors import LocalIOError
    from secdns.server.server import Server

    primary = DemoPrimary(bundled_zone())
    try:
        await primary.start(primary_port)
    except OSError as err:
        raise LocalIOError(
            f"the demo primary cannot listen on 127.0.0.1:{primary_port}: {err.strerror}"
        ) from err
    secondary_port = secondary_port or free_port()
    primary.notify_targets.append(("127.0.0.1", secondary_port))
    config = parse_config(
        {
            "server": {"directory": str(work / "serve"), "listen": [f"127.0.0.1:{secondary_port}"]},
            "zone": [
                {
                    "name": ORIGIN.to_text(),
                    "primaries": [f"127.0.0.1:{primary.port}"],
                    "allow_transfer": ["127.0.0.1/32"],
                }
            ],
        },
        "<demo>",
    )
    server = Server(config)
    try:
        await server.startup()
        yield DemoSetup(work, primary, server, secondary_port)
    finally:
        await server.shutdown()
        await primary.stop()


CHANGES: tuple[tuple[dict[str, tuple[int, str, str]], list[tuple[str, str, str]]], ...] = (
    ({"api": (300, "A", "192.0.2.99")}, [("www", "CNAME", "@")]),
    ({"www": (3600, "A", "192.0.2.10")}, []),
)
"""The demo's change: +api A, and www turned from a CNAME into an A record."""


async def run_scenario(setup: DemoSetup, report: DemoReport) -> bool:
    """The guided tour; True when every step did what it shows."""
    from secdns.copies import StoreCopy
    from secdns.diff import diff_zones
    from secdns.endpoints import Endpoint
    from secdns.pull import pull_zone
    from secdns.sources import load_zone, parse_source
    from secdns.store import Store
    from secdns.verify import verify_zone
    from secdns.verify_report import VerifyOptions

    primary, work = setup.primary, setup.work
    secondary = setup.secondary_address
    ok = True
    report.step(
        f"1. primary (embedded) for {ORIGIN} on {setup.primary_address}, serial {primary.serial}"
    )
    report.step(f"2. secdns serve: a secondary on {secondary}, store {work / 'serve'}")
    took = await wait_serial(setup.secondary_port, primary.serial)
    report.detail(
        f"loaded by AXFR and answering serial {primary.serial} after {took * 1000:.0f} ms"
    )
    report.step(
        f"3. secdns pull {ORIGIN} @{secondary} -d {work / 'pulled'}   (AXFR out of our secondary)"
    )
    store = Store(work / "pulled")
    endpoint = Endpoint("127.0.0.1", setup.secondary_port)
    first = await pull_zone(ORIGIN, [endpoint], StoreCopy(store, ORIGIN))
    report.pull(first)
    before = store.master_text(ORIGIN).splitlines()
    old_serial = primary.serial
    for added, removed in CHANGES:
        primary.change(added, removed)
    report.step(
        f"4. the primary changes (+api A, www CNAME -> A; serial {old_serial} -> "
        f"{primary.serial}) and sends NOTIFY"
    )
    started = time.perf_counter()
    await primary.notify()
    await wait_serial(setup.secondary_port, primary.serial)
    result = setup.server.runtimes[ORIGIN].last_result
    kind = result.kind.value if result else "?"
    report.detail(
        f"the secondary answered serial {primary.serial} "
        f"{(time.perf_counter() - started) * 1000:.1f} ms after the NOTIFY "
        f"({kind}, +{result.added if result else 0} -{result.removed if result else 0})"
    )
    ok = ok and kind == "IXFR"
    report.step("5. pull again: IXFR from the secondary's journal")
    second = await pull_zone(ORIGIN, [endpoint], StoreCopy(store, ORIGIN))
    report.pull(second)
    after = store.master_text(ORIGIN).splitlines()
    for line in difflib.unified_diff(before, after, "before", "after", lineterm="", n=0):
        report.detail(line)
    ok = ok and second.kind.value == "IXFR"
    report.step(f"6. secdns diff {ORIGIN} @primary @secondary")
    zone_p = await load_zone(parse_source(f"@{setup.primary_address}"), ORIGIN)
    zone_s = await load_zone(parse_source(f"@{secondary}"), ORIGIN)
    delta = diff_zones(ORIGIN, zone_p.records, zone_s.records)
    report.detail("identical" if delta.same else f"DIFFERENT: {delta.stats()}")
    ok = ok and delta.same
    report.step(f"7. secdns verify {ORIGIN} {work / 'pulled'} @primary @secondary")
    verified = await verify_zone(
        ORIGIN,
        [str(work / "pulled"), f"@{setup.primary_address}", f"@{secondary}"],
        VerifyOptions(timeout=2.0),
    )
    for answer in verified.servers:
        serial = "none" if answer.serial is None else answer.serial
        report.detail(f"{answer.address}: serial {serial} ({answer.status.value})")
    report.detail(f"{len(verified.errors)} errors, {len(verified.warnings)} warnings")
    return ok and not verified.failed()


async def keep_changing(primary: DemoPrimary, every: float, stop: asyncio.Event) -> None:
    """While the demo is kept running: every ``every`` seconds the primary adds one
    TXT record, bumps its serial and NOTIFYs, so pulls and watches have news."""
    count = 0
    while every > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        count += 1
        primary.change({f"tick{count}": (60, "TXT", f'"change {count}"')}, [])
        with contextlib.suppress(Exception):  # a secondary that went away is no reason to stop
            await primary.notify()
