"""An embedded primary for ``secdns demo``: serves a bundled zone on loopback.

Small on purpose: SOA and AXFR/IXFR over TCP, SOA over UDP, from an in-memory
zone whose changes it keeps as IXFR deltas.  It lets the demo (and a newcomer)
see pull, a change and an incremental transfer with no network at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.resources
import struct

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

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
        self.deltas: list[_Delta] = []
        self.notify_targets: list[tuple[str, int]] = []
        self.port = 0
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    @property
    def serial(self) -> int:
        return self.zone.get_soa().serial

    def _soa_rrset(self) -> dns.rrset.RRset:
        node = self.zone.find_rdataset(self.zone.origin, dns.rdatatype.SOA)
        return dns.rrset.from_rdata_list(self.zone.origin, node.ttl, list(node))

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
        self.zone.replace_rdataset(self.zone.origin, dns.rdataset.from_rdata(old_soa.ttl, soa))
        new_soa = self._soa_rrset()
        self.deltas.append(
            _Delta(old_soa[0].serial, soa.serial, deleted_rrsets, [new_soa, *added_rrsets])
        )
        return soa.serial

    async def notify(self) -> None:
        """NOTIFY every target of the current serial (RFC 1996), as a primary does."""
        from secdns.notify import send_notify

        await asyncio.gather(
            *(
                send_notify(self.zone.origin, self._soa_rrset(), address, port, attempts=3)
                for address, port in self.notify_targets
            )
        )

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._handle_tcp, "127.0.0.1", 0)
        self.port = self._tcp.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=("127.0.0.1", self.port)
        )
        self._udp = transport  # type: ignore[assignment]
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
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for reply in self.primary.answer(data):
            if len(reply) <= 512 and self.transport is not None:
                self.transport.sendto(reply, addr)
