"""Build zone-transfer answers as wire bytes with dnspython, for unit tests and the fake primary."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from secdns import wire


def zone_rrsets(text: str, origin: str) -> list[dns.rrset.RRset]:
    """Every record of a zone as single-record RRsets, SOA first."""
    zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    soa: list[dns.rrset.RRset] = []
    rest: list[dns.rrset.RRset] = []
    for name, node in zone.nodes.items():
        for rds in node:
            for rd in rds:
                rrset = dns.rrset.from_rdata(name, rds.ttl, rd)
                (soa if rds.rdtype == dns.rdatatype.SOA else rest).append(rrset)
    return soa + rest


def rrset(text: str) -> dns.rrset.RRset:
    """``name ttl TYPE rdata`` (absolute names) as an RRset."""
    name, ttl, rdtype, rdata = text.split(None, 3)
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, rdata)


def answer_messages(
    query_id: int,
    qname: str,
    qtype: str,
    rrsets: list[dns.rrset.RRset],
    per_message: int = 50,
    rcode: int = 0,
) -> list[bytes]:
    """The answer stream: ``rrsets`` split over messages of ``per_message`` records."""
    messages = []
    chunks = [rrsets[i : i + per_message] for i in range(0, len(rrsets), per_message)] or [[]]
    for index, chunk in enumerate(chunks):
        msg = dns.message.Message(id=query_id)
        msg.flags = dns.flags.QR | dns.flags.AA
        msg.set_rcode(rcode)
        if index == 0:
            msg.question.append(
                dns.rrset.RRset(
                    dns.name.from_text(qname), dns.rdataclass.IN, dns.rdatatype.from_text(qtype)
                )
            )
        for item in chunk:
            msg.answer.append(item)
        messages.append(msg.to_wire(max_size=65535))
    return messages


def records(text: str, origin: str) -> list[wire.Record]:
    """Decode a zone's records the way a transfer would (through secdns.wire)."""
    origin_name = dns.name.from_text(origin)
    out: list[wire.Record] = []
    for raw in answer_messages(1, origin, "AXFR", zone_rrsets(text, origin)):
        out.extend(wire.parse_message(raw, origin_name).records)
    return out
