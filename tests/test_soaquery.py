"""secdns.soaquery: the refresh check's SOA query and answer without dnspython objects.

Each reading is checked against dnspython's on the same octets: answers from real
BIND, Knot and NSD primaries, and hand-made ones for what no real server sends
(another ID or question, truncation, malformed names, trailing octets).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from servers import zone_text

from secdns import engine, soaquery
from secdns.errors import BadDataError, NetworkError, RefusedError, TimeoutError_
from secdns.wire import WireError

ORIGIN = dns.name.from_text("example.com.")
ASKED = soaquery.question(ORIGIN)


def dnspython_query() -> dns.message.Message:
    query = dns.message.make_query(
        ORIGIN,
        dns.rdatatype.SOA,
        use_edns=0,
        payload=1232,
        options=[dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")],
    )
    query.flags &= ~dns.flags.RD
    return query


def answer_of(query_wire: bytes, *, expire: bytes | None = b"\x00\x00\x0e\x10") -> bytes:
    query = dns.message.from_wire(query_wire)
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    reply.answer.append(
        dns.rrset.from_text(
            "EXAMPLE.com.", 300, "IN", "SOA", "ns1.example.com. h.example.com. 7 3600 600 86400 60"
        )
    )
    reply.authority.append(
        dns.rrset.from_text("example.com.", 300, "IN", "NS", "ns1.example.com.", "ns2.example.com.")
    )
    reply.additional.append(dns.rrset.from_text("ns1.example.com.", 300, "IN", "A", "192.0.2.1"))
    options = [dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, expire)] if expire else []
    reply.use_edns(0, payload=1232, options=options)
    return reply.to_wire()


def test_the_query_is_what_dnspython_builds():
    ours = dns.message.from_wire(soaquery.make_query(4242, ASKED))
    theirs = dnspython_query()
    assert ours.question == theirs.question
    assert ours.flags == theirs.flags and ours.id == 4242
    assert ours.edns == 0 and ours.payload == 1232
    assert [o.otype for o in ours.options] == [dns.edns.OptionType.EXPIRE]


def test_an_answer_reads_as_dnspython_reads_it():
    wire = answer_of(soaquery.make_query(7, ASKED))
    answer = soaquery.read_answer(wire, 7, ASKED)
    theirs = dns.message.from_wire(wire)
    soa = theirs.answer[0]
    assert answer == soaquery.SoaAnswer(
        rcode=0,
        authoritative=True,
        truncated=False,
        soa=(soa[0].serial, soa[0].refresh, soa[0].retry, soa[0].expire, soa[0].minimum, soa.ttl),
        edns_expire=engine.edns_expire(theirs),
    )
    assert answer.edns_expire == 3600
    no_expire = soaquery.read_answer(
        answer_of(soaquery.make_query(7, ASKED), expire=None), 7, ASKED
    )
    assert no_expire is not None and no_expire.edns_expire is None


def test_answers_to_other_queries_are_not_ours():
    wire = answer_of(soaquery.make_query(7, ASKED))
    assert soaquery.read_answer(wire, 8, ASKED) is None  # another ID
    assert soaquery.read_answer(wire, 7, soaquery.question(dns.name.from_text("a.test."))) is None
    assert soaquery.read_answer(soaquery.make_query(7, ASKED), 7, ASKED) is None  # no QR
    assert soaquery.read_answer(b"\x00\x07", 7, ASKED) is None
    # the question in another case is the same question
    upper = soaquery.question(dns.name.from_text("EXAMPLE.COM."))
    assert soaquery.read_answer(answer_of(soaquery.make_query(7, upper)), 7, ASKED) is not None


def test_flags_and_the_extended_rcode():
    query = dns.message.from_wire(soaquery.make_query(9, ASKED))
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.BADVERS)  # 16: the upper bits travel in the OPT record
    answer = soaquery.read_answer(reply.to_wire(), 9, ASKED)
    assert answer is not None
    assert (answer.rcode, answer.truncated, answer.authoritative, answer.soa) == (
        16,
        False,
        False,
        None,
    )


def test_a_truncated_answer_is_not_read_further():
    wire = answer_of(soaquery.make_query(4, ASKED))
    flags = int.from_bytes(wire[2:4], "big") | 0x0200
    cut = wire[:2] + flags.to_bytes(2, "big") + wire[4 : 12 + len(ASKED) + 5]
    answer = soaquery.read_answer(cut, 4, ASKED)
    assert answer is not None and answer.truncated and answer.soa is None


def test_a_soa_of_another_owner_is_not_the_zone_s():
    query = dns.message.from_wire(soaquery.make_query(3, ASKED))
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("other.com.", 300, "IN", "SOA", "a. b. 1 2 3 4 5"))
    answer = soaquery.read_answer(reply.to_wire(), 3, ASKED)
    assert answer is not None and answer.soa is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda w: w + b"\x00", "trailing garbage"),
        (lambda w: w[:-3], "past the end|cut short|truncated"),
        (lambda w: w[: len(ASKED) + 12] + b"\xc0\xff" + w[len(ASKED) + 14 :], "point back"),
    ],
)
def test_malformed_answers_are_refused(damage, message):
    wire = damage(answer_of(soaquery.make_query(5, ASKED)))
    with pytest.raises(WireError, match=message):
        soaquery.read_answer(wire, 5, ASKED)


def probe(port: int, timeout: float = 2.0) -> engine.SoaInfo:
    return asyncio.run(engine.probe_soa(ORIGIN, "127.0.0.1", port, key=None, timeout=timeout))


def test_probe_against_real_primaries(bind_primary, knot_primary, nsd_primary):
    """The fast probe reads what dnspython reads from BIND, Knot and NSD."""
    for server in (bind_primary(), knot_primary(), nsd_primary()):
        ours = probe(server.port)
        query = dnspython_query()
        theirs = dns.message.from_wire(_exchange(query.to_wire(), server.port), question_only=False)
        soa = theirs.answer[0]
        assert (ours.serial, ours.refresh, ours.retry, ours.expire, ours.minimum, ours.ttl) == (
            soa[0].serial,
            soa[0].refresh,
            soa[0].retry,
            soa[0].expire,
            soa[0].minimum,
            soa.ttl,
        ), server
        assert ours.edns_expire == engine.edns_expire(theirs), server
        assert ours.transport == "UDP"


def test_probe_errors(bind_primary):
    server = bind_primary({"example.com": zone_text("example.com")})
    with pytest.raises(RefusedError, match="REFUSED|NOTAUTH|not authoritative"):
        asyncio.run(
            engine.probe_soa(
                dns.name.from_text("not-here.test."), "127.0.0.1", server.port, key=None, timeout=2
            )
        )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(TimeoutError_, match="no answer to the SOA query within 0.2s"):
            probe(silent.getsockname()[1], timeout=0.2)
        port = silent.getsockname()[1]
    with pytest.raises(NetworkError, match="connection refused"):
        probe(port)


def test_probe_of_a_garbled_answer(tmp_path):
    """A server whose answer is malformed: the one-line error says so."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fake:
        fake.bind(("127.0.0.1", 0))
        port = fake.getsockname()[1]

        async def run() -> None:
            loop = asyncio.get_running_loop()
            task = loop.create_task(
                engine.probe_soa(ORIGIN, "127.0.0.1", port, key=None, timeout=2)
            )
            data, peer = await loop.run_in_executor(None, fake.recvfrom, 512)
            fake.sendto(answer_of(data) + b"junk", peer)
            await task

        with pytest.raises(BadDataError, match="malformed SOA answer: .*trailing garbage"):
            asyncio.run(run())


def _exchange(query: bytes, port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(query, ("127.0.0.1", port))
        return sock.recv(65535)


@pytest.mark.parametrize("ixfr", [False, True])
def test_the_transfer_query_is_what_dnspython_builds(ixfr):
    names = (dns.name.from_text("ns1.example.com."), dns.name.from_text("h.example.com."))
    ours = soaquery.transfer_query(99, ORIGIN, 41 if ixfr else None, names if ixfr else None)
    theirs = dns.message.make_query(ORIGIN, dns.rdatatype.IXFR if ixfr else dns.rdatatype.AXFR)
    theirs.flags &= ~dns.flags.RD
    theirs.id = 99
    if ixfr:
        soa = dns.rdata.from_text("IN", "SOA", f"{names[0]} {names[1]} 41 0 0 0 0")
        theirs.authority.append(dns.rrset.from_rdata(ORIGIN, 0, soa))
    # equal as messages (dnspython also compresses the SOA's MNAME and RNAME)
    assert dns.message.from_wire(ours) == dns.message.from_wire(theirs.to_wire())


def test_query_ids_are_uniform_and_a_forked_child_draws_its_own():
    ids = [soaquery.query_id() for _ in range(20_000)]
    assert 0 <= min(ids) and max(ids) <= 0xFFFF
    assert len(set(ids)) > 16_000  # ~17,200 expected of 65,536 equally likely values
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next IDs, to the parent
        os.write(write, struct.pack("!8H", *(soaquery.query_id() for _ in range(8))))
        os._exit(0)
    os.close(write)
    child = struct.unpack("!8H", os.read(read, 16))
    os.close(read)
    os.waitpid(pid, 0)
    assert list(child) != [soaquery.query_id() for _ in range(8)]
