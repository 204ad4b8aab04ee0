"""A small zone's AXFR through the rows path from its first record on (secdns.xfr).

An AXFR is a full zone from its opening SOA, so :meth:`XfrReader.rows` offers the
sink before the first message: :func:`wire.parse_message` decodes that SOA as a
record (``Rows.lead``), scans the records after it into rows, and decodes the rest
(the closing SOA, whatever the scan stops at) as records, and :meth:`XfrReader.feed`
takes them in wire order.  Each test runs the same octets through the reader both
ways, the first message without the sink (the path every record of a one-message
zone took before) and with it, and compares the zone (its records in wire order,
canonical lines, counts, text size) or the error.
"""

from __future__ import annotations

import random
import struct

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset
import pytest
from xfrwire import zone_rrsets

from secdns import wire
from secdns.errors import SecdnsError
from secdns.xfr import XfrKind, XfrReader

QUERY_ID = 4242

# genzone.py's mix at 20 records (tests/manyzones' zones are this, renamed)
GENZONE = """\
$TTL 3600
@ IN SOA ns1.{o} hostmaster.{o} 2024060101 7200 3600 1209600 3600
@ IN NS ns1.{o}
@ IN NS ns2.{o}
ns1 IN A 192.0.2.1
ns2 IN A 192.0.2.2
@ IN MX 10 mx1
@ IN TXT "v=spf1 mx -all"
storage000001.dc1 IN A 10.132.121.109
metrics000002.dc1 IN A 10.193.39.92
cust000003 IN NS ns1.cust000003
cust000003 IN NS ns2.cust000003
ns1.cust000003 IN A 198.51.172.13
ns2.cust000003 IN A 203.0.65.166
ns1.cust000003 IN AAAA 2001:db8:ffff:8019::53
ci000004.cdn IN A 10.38.189.67
proxy000005.corp IN A 10.25.243.68
git000006.ops IN A 10.70.115.164
_submission._tcp.svc000007 IN SRV 1 53 587 ci000004.cdn
cache000008.staging IN A 10.128.160.111
_acme-challenge.host000009.ops IN TXT "780b86486a2a18129b19cdec60c9e347780b86486a2"
"""

Outcome = tuple[object, ...]


def _transfer(
    messages: list[bytes],
    origin: dns.name.Name,
    *,
    sink_first: bool,
    max_records: int | None = None,
    max_bytes: int | None = None,
) -> Outcome:
    """Feed ``messages`` as the engine does; the zone, or the error, as comparable data.

    Without ``sink_first`` the first message is decoded with no rows (as before the
    reader offered them from the start); the later ones get ``reader.rows()`` either way.
    """
    reader = XfrReader(
        origin, XfrKind.AXFR, query_id=QUERY_ID, max_records=max_records, max_bytes=max_bytes
    )
    limit = (max_records if max_records is not None else 1_000_000) + 2
    try:
        done = False
        for raw in messages:
            reader.admit(int.from_bytes(raw[6:8]) if len(raw) >= 12 else 0)
            rows = reader.rows() if sink_first or reader.messages else None
            try:
                message = wire.parse_message(raw, origin, limit, rows)
            except wire.WireError as err:
                return ("malformed", str(err))
            done = reader.feed(message, len(raw) + 2)
            if done:
                break
        reader.finish()
    except SecdnsError as err:
        return (type(err).__name__, str(err))
    zone = reader.zone
    assert zone is not None and reader.sink is not None
    return (
        "zone",
        [wire.record_line(rec) for rec in zone.records()],
        list(zone.lines()),
        len(zone),
        zone.dropped,
        reader.count,
        reader.bytes,
        reader.text_bytes,
        reader.sink.text,  # how much went through the rows (compared only for equal zones)
    )


def _same(messages: list[bytes], origin: dns.name.Name, **limits: int) -> Outcome:
    """Both ways agree (but for how much text went through the rows); return the outcome."""
    old = _transfer(messages, origin, sink_first=False, **limits)
    new = _transfer(messages, origin, sink_first=True, **limits)
    if old[0] == "zone":
        assert new[:-1] == old[:-1]
    else:
        assert new == old
    return new


def _render(
    origin: dns.name.Name,
    rrsets: list[dns.rrset.RRset],
    *,
    compress: bool = True,
    question: bool = True,
) -> bytes:
    """One answer message holding ``rrsets``; without ``compress`` every owner and rdata
    name is written out whole (what BIND 9.18 sends for a small zone's new owners)."""
    renderer = dns.renderer.Renderer(id=QUERY_ID, flags=0x8400, max_size=65535)
    if question:
        renderer.add_question(origin, dns.rdatatype.AXFR)
    for rrset in rrsets:
        if compress:
            renderer.add_rrset(dns.renderer.ANSWER, rrset)
        else:
            renderer.output.seek(0, 2)
            renderer.counts[dns.renderer.ANSWER] += rrset.to_wire(renderer.output, None, origin)
    renderer.write_header()
    return renderer.get_wire()


def _messages(
    origin: dns.name.Name, rrsets: list[dns.rrset.RRset], per_message: int, compress: bool = True
) -> list[bytes]:
    chunks = [rrsets[i : i + per_message] for i in range(0, len(rrsets), per_message)]
    return [
        _render(origin, chunk, compress=compress, question=index == 0)
        for index, chunk in enumerate(chunks)
    ]


def _zone(text: str, name: str) -> tuple[dns.name.Name, list[dns.rrset.RRset]]:
    """A zone's AXFR records: the SOA, the rest, the SOA again."""
    rrsets = zone_rrsets(text.format(o=name), name)
    return dns.name.from_text(name), rrsets + [rrsets[0]]


def _record(text: str) -> dns.rrset.RRset:
    """``name ttl [class] TYPE rdata`` with absolute names."""
    fields = text.split(None, 4)
    if fields[2] in ("IN", "CH", "HS"):
        name, ttl, rdclass, rdtype, rdata = fields
    else:
        name, ttl, rdtype, rdata = text.split(None, 3)
        rdclass = "IN"
    return dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata)


# --- zones -----------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False], ids=["compressed", "uncompressed"])
@pytest.mark.parametrize("per_message", [1, 2, 7, 100])
def test_genzone_small_zone_both_ways(per_message: int, compress: bool) -> None:
    origin, rrsets = _zone(GENZONE, "z1.many.test.")
    messages = _messages(origin, rrsets, per_message, compress)
    outcome = _same(messages, origin)
    assert outcome[0] == "zone"
    assert outcome[3] == 20  # the SOA once and 19 records
    assert outcome[1][0].startswith("@ 3600 IN SOA ns1 hostmaster 2024060101 ")


def test_one_message_zone_goes_through_the_rows() -> None:
    origin, rrsets = _zone(GENZONE, "z1.many.test.")
    (raw,) = _messages(origin, rrsets, 100)
    reader = XfrReader(origin, XfrKind.AXFR, query_id=QUERY_ID)
    sink = reader.rows()
    assert sink is not None and sink.lead == 1
    message = wire.parse_message(raw, origin, None, sink)
    assert (message.lead, message.kept, len(message.records)) == (1, 19, 2)
    assert [rec.rdtype for rec in message.records] == [dns.rdatatype.SOA] * 2
    assert reader.feed(message, len(raw) + 2)
    assert sink.lead == 0 and reader.rows() is None  # done
    assert reader.zone is not None and len(reader.zone) == 20


def test_later_messages_start_without_a_lead() -> None:
    origin, rrsets = _zone(GENZONE, "z1.many.test.")
    first, second, *_ = _messages(origin, rrsets, 7)
    reader = XfrReader(origin, XfrKind.AXFR, query_id=QUERY_ID)
    assert not reader.feed(wire.parse_message(first, origin, None, reader.rows()), len(first))
    sink = reader.rows()
    assert sink is not None and sink.lead == 0
    message = wire.parse_message(second, origin, None, sink)
    assert (message.lead, message.kept, message.records) == (0, 7, [])


def test_ixfr_offers_no_rows_before_its_answer_is_known() -> None:
    origin = dns.name.from_text("z1.many.test.")
    assert XfrReader(origin, XfrKind.IXFR, query_id=1, serial=1).rows() is None


@pytest.mark.parametrize("seed", range(8))
def test_random_small_zones(seed: int) -> None:
    """Zones of 0-40 records of random owners (some in other case, some deep), types and
    TTLs, in 1-3 messages, compressed or not: the same zone both ways."""
    rng = random.Random(seed)
    name = f"r{seed}.Example.test."
    origin = dns.name.from_text(name)
    soa = _record(f"{name} 300 SOA ns1.{name} host.{name} {seed + 1} 7200 3600 1209600 300")
    rrsets = [soa]
    for index in range(rng.randrange(0, 41)):
        owner = rng.choice(["@", "www", "WWW", "a.b", "deep.er.name", "x" * 30, f"h{index}"])
        owner = name if owner == "@" else f"{owner}.{name}"
        ttl = rng.choice([60, 300, 3600, 0x80000001])
        rdtype, rdata = rng.choice(
            [
                ("A", f"10.0.{index}.{rng.randrange(256)}"),
                ("AAAA", f"2001:db8::{index:x}"),
                ("NS", f"ns{rng.randrange(3)}.{name}"),
                ("NS", "ns.other.net."),
                ("MX", f"10 mx.{name}"),
                ("CNAME", f"target.{name.upper()}"),
                ("TXT", f'"v=spf1 -all {index}"'),
                ("TXT", '"a" "b\\255"'),
                ("SRV", f"0 5 5060 sip.{name}"),
                ("CAA", '0 issue "ca.example"'),
            ]
        )
        rrsets.append(_record(f"{owner} {ttl} {rdtype} {rdata}"))
    rrsets.append(soa)
    per_message = rng.choice([1, 3, 100])
    outcome = _same(_messages(origin, rrsets, per_message, rng.random() < 0.5), origin)
    assert outcome[0] == "zone"


# --- edge cases ------------------------------------------------------------------

ORIGIN = "small.test."
SOA = f"{ORIGIN} 300 SOA ns1.{ORIGIN} host.{ORIGIN} 7 7200 3600 1209600 300"
SOA_NEWER = f"{ORIGIN} 300 SOA ns1.{ORIGIN} host.{ORIGIN} 8 7200 3600 1209600 300"
A = f"www.{ORIGIN} 60 A 192.0.2.1"
AAAA = f"www.{ORIGIN} 60 AAAA 2001:db8::1"

EDGES: dict[str, tuple[list[list[str]], str]] = {
    # name: (messages of records, the outcome's first field)
    "one-record": ([[SOA, A, SOA]], "zone"),
    "only-soa-twice": ([[SOA, SOA]], "zone"),
    "only-soa-twice-in-two-messages": ([[SOA], [SOA]], "zone"),
    "soa-alone-then-the-rest": ([[SOA], [A, AAAA], [SOA]], "zone"),
    "closing-soa-in-its-own-message": ([[SOA, A, AAAA], [SOA]], "zone"),
    "record-twice-other-ttl": ([[SOA, A, AAAA, f"www.{ORIGIN} 5 A 192.0.2.1", SOA]], "zone"),
    "only-the-soa": ([[SOA]], "BadDataError"),  # no closing SOA
    "no-closing-soa": ([[SOA, A, AAAA]], "BadDataError"),
    "empty-first-message": ([[]], "BadDataError"),
    "starts-without-soa": ([[A, SOA, AAAA, SOA]], "BadDataError"),
    "starts-with-a-sub-soa": ([[f"sub.{SOA}", A, SOA]], "BadDataError"),
    "starts-with-soa-of-class-ch": (
        [[SOA.replace(" 300 SOA", " 300 CH SOA"), A, SOA]],
        "BadDataError",
    ),
    "out-of-zone-record": ([[SOA, A, "www.other.test. 60 A 192.0.2.9", AAAA, SOA]], "BadDataError"),
    "out-of-zone-first-after-soa": ([[SOA, "other.test. 60 A 192.0.2.9", A, SOA]], "BadDataError"),
    "parent-of-the-zone": ([[SOA, A, "test. 60 A 192.0.2.9", SOA]], "BadDataError"),
    "class-ch-record": ([[SOA, A, f'www.{ORIGIN} 60 CH TXT "x"', AAAA, SOA]], "BadDataError"),
    "class-hs-record-later": (
        [[SOA, A], [AAAA, f'www.{ORIGIN} 60 HS TXT "x"', SOA]],
        "BadDataError",
    ),
    "record-after-final-soa": ([[SOA, A, SOA, AAAA]], "BadDataError"),
    "soa-after-final-soa": ([[SOA, A, SOA, SOA]], "BadDataError"),
    "sub-soa-in-the-middle": ([[SOA, A, f"sub.{SOA}", AAAA, SOA]], "BadDataError"),
    "closing-soa-differs": ([[SOA, A, AAAA, SOA_NEWER]], "BadDataError"),
    "closing-soa-other-case": (
        [
            [SOA, A, SOA.replace(ORIGIN, ORIGIN.upper(), 1)],
        ],
        "zone",
    ),
}


def _edge_messages(name: str) -> list[bytes]:
    origin = dns.name.from_text(ORIGIN)
    return [_render(origin, [_record(r) for r in chunk]) for chunk in EDGES[name][0]]


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_cases_both_ways(name: str) -> None:
    outcome = _same(_edge_messages(name), dns.name.from_text(ORIGIN))
    assert outcome[0] == EDGES[name][1], outcome


def test_errors_say_what_they_said() -> None:
    origin = dns.name.from_text(ORIGIN)
    said = {name: _same(_edge_messages(name), origin) for name in EDGES}
    assert said["starts-without-soa"][1] == (
        "transfer does not start with the zone's SOA (got www A)"
    )
    assert said["out-of-zone-record"][1] == (
        "out-of-zone record www.other.test. A in the transfer (refusing it, not dropping it)"
    )
    assert said["class-ch-record"][1] == "record www TXT has class CH, the zone's class is IN"
    assert said["record-after-final-soa"][1] == "records after the final SOA"
    assert said["sub-soa-in-the-middle"][1] == "SOA record at sub, not at the zone apex"
    assert said["closing-soa-differs"][1] == "last SOA (serial 8) differs from the first (serial 7)"


def _rr(owner: bytes, rdtype: int, rdata: bytes, rdclass: int = 1, ttl: int = 60) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata


def _handmade(answers: list[bytes]) -> bytes:
    question = b"\x05small\x04test\x00\x00\xfc\x00\x01"  # the zone's name at offset 12
    header = struct.pack("!HHHHHH", QUERY_ID, 0x8400, 1, len(answers), 0, 0)
    return header + question + b"".join(answers)


SOA_RDATA = b"\x03ns1\xc0\x0c\x04host\xc0\x0c" + struct.pack("!IIIII", 7, 7200, 3600, 1209600, 300)
QNAME = b"\xc0\x0c"  # a pointer to the question's name
TEST = b"\xc0\x12"  # a pointer into the question's name: "test.", outside the zone


@pytest.mark.parametrize(
    "answers, expected",
    [
        # owners and rdata names compressed against the question
        (
            [
                _rr(QNAME, 6, SOA_RDATA),
                _rr(b"\x03www" + QNAME, 1, bytes(4)),
                _rr(QNAME, 2, b"\x03ns1" + QNAME),
                _rr(QNAME, 15, b"\x00\x0a" + QNAME),
                _rr(b"\x01a\x01b" + QNAME, 5, b"\x03www" + QNAME),
                _rr(QNAME, 6, SOA_RDATA),
            ],
            "zone",
        ),
        # an NS target outside the zone, by a pointer into the question ("test.")
        ([_rr(QNAME, 6, SOA_RDATA), _rr(QNAME, 2, TEST), _rr(QNAME, 6, SOA_RDATA)], "zone"),
        # an owner outside the zone by a pointer into the question
        (
            [_rr(QNAME, 6, SOA_RDATA), _rr(TEST, 1, bytes(4)), _rr(QNAME, 6, SOA_RDATA)],
            "BadDataError",
        ),
        # the root as an owner
        (
            [_rr(QNAME, 6, SOA_RDATA), _rr(b"\x00", 1, bytes(4)), _rr(QNAME, 6, SOA_RDATA)],
            "BadDataError",
        ),
        # a TSIG record in the answer section, after the opening SOA
        (
            [_rr(QNAME, 6, SOA_RDATA), _rr(QNAME, 250, bytes(8), 255), _rr(QNAME, 6, SOA_RDATA)],
            "malformed",
        ),
        # an A record of the wrong length among the rows
        (
            [_rr(QNAME, 6, SOA_RDATA), _rr(QNAME, 1, bytes(5)), _rr(QNAME, 6, SOA_RDATA)],
            "malformed",
        ),
        # a TTL with its top bit set among the rows: read as 0
        (
            [
                _rr(QNAME, 6, SOA_RDATA),
                _rr(QNAME, 1, bytes(4), ttl=0x80000000),
                _rr(QNAME, 6, SOA_RDATA),
            ],
            "zone",
        ),
    ],
    ids=[
        "compressed-against-question",
        "ns-into-question",
        "owner-into-question",
        "root-owner",
        "tsig-in-answers",
        "bad-a-length",
        "ttl-top-bit",
    ],
)
def test_handmade_messages_both_ways(answers: list[bytes], expected: str) -> None:
    outcome = _same([_handmade(answers)], dns.name.from_text(ORIGIN))
    assert outcome[0] == expected, outcome


# --- limits and malformed input --------------------------------------------------


@pytest.mark.parametrize("max_records", [17, 18, 19, 20, 21])
def test_max_records_both_ways(max_records: int) -> None:
    origin, rrsets = _zone(GENZONE, "z1.many.test.")
    for per_message in (1, 7, 100):
        _same(_messages(origin, rrsets, per_message), origin, max_records=max_records)


def test_max_bytes_both_ways() -> None:
    """Every limit from far too small to enough: the same error (wire size, then text
    size) or the same zone."""
    origin, rrsets = _zone(GENZONE, "z1.many.test.")
    seen = set()
    for compress in (True, False):
        messages = _messages(origin, rrsets, 100, compress)
        for max_bytes in range(0, 1200, 7):
            seen.add(_same(messages, origin, max_bytes=max_bytes)[0])
    assert seen == {"LimitExceeded", "zone"}


def test_truncated_at_every_offset_both_ways() -> None:
    origin, rrsets = _zone(GENZONE, "z1.many.test.")
    for compress in (True, False):
        (raw,) = _messages(origin, rrsets, 100, compress)
        for size in range(len(raw)):
            assert _same([raw[:size]], origin)[0] != "zone"


def test_random_corruption_both_ways() -> None:
    """Damaged octets anywhere in a one-message zone: the same zone, wire error or
    transfer error either way (the first message is where the paths differ)."""
    origin, rrsets = _zone(GENZONE, "z1.many.test.")
    rng = random.Random(1995)
    kinds = set()
    for compress in (True, False):
        (raw,) = _messages(origin, rrsets, 100, compress)
        for _ in range(700):
            damaged = bytearray(raw)
            for _ in range(rng.randrange(1, 3)):
                damaged[rng.randrange(12, len(raw))] = rng.randrange(256)
            kinds.add(_same([bytes(damaged)], origin)[0])
    assert {"zone", "malformed", "BadDataError"} <= kinds


# --- names written out whole -----------------------------------------------------


def test_uncompressed_random_names_match_dnspython() -> None:
    """Owner and rdata names written whole (as BIND 9.18 writes a small zone's new
    owners), in and outside the zone, for origins above, at, below and beside them:
    the text of every suffix is built label by label (wire._read_name) and must be
    dnspython's."""
    from test_wire import ORIGIN as EXAMPLE
    from test_wire import _decoded, _random_name, _reference

    rng = random.Random(1035)
    origins = [
        EXAMPLE,
        dns.name.from_text("EXAMPLE.Com."),
        dns.name.from_text("a.B.example.com."),
        dns.name.from_text("com."),
        dns.name.from_text("other.net."),
        dns.name.root,
    ]
    for _ in range(30):
        rrsets = []
        for ttl in range(40):
            rdtype, rdata = rng.choice([("A", "192.0.2.1"), ("NS", None), ("CNAME", None)])
            if rdata is None:
                rdata = _random_name(rng).to_text()
            rrsets.append(
                dns.rrset.from_text(_random_name(rng), ttl, dns.rdataclass.IN, rdtype, rdata)
            )
        raw = _render(EXAMPLE, rrsets, compress=rng.random() < 0.3)
        origin = rng.choice(origins)
        assert _decoded(raw, origin) == _reference(raw, origin)
