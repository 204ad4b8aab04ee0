"""The AXFR scan (``wire.parse_message(..., rows)``) against the record path it replaces
(issue 12, ``pull -o``): the same records, the same text, the same errors.

The scan keeps the leading ANSWER records that need no decision of the state machine
(class IN, not an SOA, owner in the zone) as :data:`wirescan.Row` tuples, and
:class:`zonefile.FullZone` writes them; everything else goes through the records of
:class:`wire.Message` as before.  Each test decodes the same octets both ways.
"""

from __future__ import annotations

import random

import dns.name
import dns.rdatatype
import pytest
from test_wire import (
    ORIGIN,
    RECORDS,
    _axfr_messages,
    _message,
    _response,
    _rr,
    _rrsets,
)

from secdns import wire, wirescan, zonefile
from secdns.xfr import XfrKind, XfrReader

SOA = dns.rdatatype.SOA


def _both(raw: bytes, origin: dns.name.Name) -> tuple[object, object]:
    """(records path, scan path) of one message: lists of row tuples, or the error text."""
    try:
        plain = wire.parse_message(raw, origin)
    except wire.WireError as err:
        expected: object = f"error: {err}"
    else:
        expected = [(r.key, r.owner, r.ttl, r.rdclass, r.rdtype, r.rdata) for r in plain.records]
    sink = wirescan.Rows()
    try:
        scanned = wire.parse_message(raw, origin, None, sink)
    except wire.WireError as err:
        return expected, f"error: {err}"
    assert scanned.kept == len(sink.rows)
    rest = [(r.key, r.owner, r.ttl, r.rdclass, r.rdtype, r.rdata) for r in scanned.records]
    got = [(key, owner, ttl, 1, rdtype, rdata) for key, owner, ttl, rdtype, rdata in sink.rows]
    okey = tuple(label.lower() for label in reversed(origin.labels[:-1]))
    if isinstance(expected, list) and len(expected) > len(got):
        _, _, _, rdclass, rdtype, _ = expected[len(got)]
        key = expected[len(got)][0]
        # the scan stops only at a record the state machine must see
        assert rdclass != 1 or rdtype == SOA or key[: len(okey)] != okey
    assert sink.text == sum(len(row[1]) + len(row[4]) for row in sink.rows)
    return expected, got + rest


def _in_zone(records: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [
        (owner, rdtype, text)
        for owner, rdtype, text in records
        if rdtype != "SOA" and (not owner.endswith(".") or owner.lower().endswith("example.com."))
    ]


@pytest.mark.parametrize(
    "origin",
    [ORIGIN, dns.name.from_text("EXAMPLE.Com."), dns.name.root],
    ids=["origin", "origin-other-case", "root"],
)
def test_every_type_as_the_record_path(origin: dns.name.Name) -> None:
    for records in (RECORDS, RECORDS[1:], _in_zone(RECORDS)):
        raw = _response(ORIGIN, _rrsets(ORIGIN, records)).to_wire(max_size=65535)
        expected, got = _both(raw, origin)
        assert got == expected


def test_large_messages_as_the_record_path() -> None:
    rrsets = []
    for index in range(3000):
        name = dns.name.from_text(f"h{index:05d}.dept{index % 7}", ORIGIN)
        rrsets.append(
            dns.rrset.from_text(name, 3600, "IN", "A", f"10.0.{index // 256}.{index % 256}")
        )
        rrsets.append(dns.rrset.from_text(name, 300, "IN", "AAAA", f"2001:db8::{index:x}"))
        rrsets.append(dns.rrset.from_text(name, 3600, "IN", "MX", "10 mx.dept1.example.com."))
        rrsets.append(dns.rrset.from_text(name, 3600, "IN", "NS", f"ns.h{index:05d}.example.com."))
        rrsets.append(dns.rrset.from_text(name, 3600, "IN", "CNAME", "Mail.Example.COM."))
    messages = _axfr_messages(rrsets)
    assert len(messages) > 1
    for raw in messages:
        expected, got = _both(raw, ORIGIN)
        assert got == expected


def test_damaged_messages_fail_as_the_record_path() -> None:
    raw = _response(ORIGIN, _rrsets(ORIGIN, _in_zone(RECORDS))).to_wire(max_size=65535)
    for size in range(0, len(raw), 7):
        expected, got = _both(raw[:size], ORIGIN)
        assert got == expected
    rng = random.Random(12)
    for _ in range(1500):
        damaged = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(12, len(raw))] = rng.randrange(256)
        expected, got = _both(bytes(damaged), ORIGIN)
        assert got == expected


@pytest.mark.parametrize(
    "owner",
    [b"\xc0\x1d", b"\xc0\x0c\xc0\x0c", b"\x03www\xc0\xff", b"\x03www\xc0\x1d", b"\x03www\xc0\x0e"],
    ids=["itself", "two-pointers", "outside", "forward", "inside-question"],
)
def test_bad_pointers_fail_as_the_record_path(owner: bytes) -> None:
    ok = _rr(b"\x01a\xc0\x0c", 1, bytes(4))
    for answers in ([_rr(owner, 1, bytes(4))], [ok, _rr(owner, 1, bytes(4))]):
        expected, got = _both(_message(answers), ORIGIN)
        assert got == expected


def test_bad_rdata_fails_as_the_record_path() -> None:
    ok = _rr(b"\x01a\xc0\x0c", 1, bytes(4))
    bad = [
        _rr(b"\xc0\x0c", 1, bytes(5)),  # A of 5 octets
        _rr(b"\xc0\x0c", 28, bytes(4)),  # AAAA of 4
        _rr(b"\xc0\x0c", 2, b"\x01x\xc0\x0c\x00"),  # NS with a trailing octet
        _rr(b"\xc0\x0c", 5, b"\x01x"),  # CNAME cut short
        _rr(b"\xc0\x0c", 15, b"\x00"),  # MX too short
        _rr(b"\xc0\x0c", 15, b"\x00\x0a\xc0\x30"),  # MX target pointing forward
        _rr(b"\xc0\x0c", 16, b""),  # empty TXT
        _rr(b"\xc0\x0c", 16, b"\x05ab"),  # TXT string overrunning
        _rr(b"\xc0\x0c", 41, b""),  # OPT in the answer
    ]
    for record in bad:
        for answers in ([record], [ok, record], [ok, record, ok]):
            expected, got = _both(_message(answers), ORIGIN)
            assert got == expected
            assert isinstance(got, str), answers
    cut = _rr(b"\xc0\x0c", 1, bytes(4))[:-2]  # rdata past the end of the message
    for answers in ([cut], [ok, cut]):
        expected, got = _both(_message(answers), ORIGIN)
        assert got == expected
        assert isinstance(got, str), answers


ZONE = r"""$ORIGIN rows.test.
$TTL 300
@           SOA ns1 hostmaster 7 7200 900 1209600 300
            NS  ns1
            NS  ns2.elsewhere.example.
            MX  10 mail
            TXT "v=spf1 -all"
ns1         A   192.0.2.1
ns1         AAAA 2001:db8::1
mail        A   192.0.2.25
mail        A   192.0.2.3
mail        A   192.0.2.100
www         CNAME mail
Sub.Dept    A   10.0.0.1
sub.dept    TXT "lower"
_sip._tcp   SRV 0 5 5060 mail
"""


def _zone_messages(per_message: int) -> tuple[dns.name.Name, list[bytes]]:
    from xfrwire import answer_messages, zone_rrsets

    rrsets = zone_rrsets(ZONE, "rows.test.")
    # a record twice with another TTL, and once more as sent: the first received is kept
    rrsets.append(dns.rrset.from_text("mail.rows.test.", 60, "IN", "A", "192.0.2.3"))
    rrsets.append(dns.rrset.from_text("mail.rows.test.", 300, "IN", "A", "192.0.2.25"))
    rrsets.append(rrsets[0])  # the closing SOA
    return dns.name.from_text("rows.test."), answer_messages(
        1, "rows.test.", "AXFR", rrsets, per_message
    )


@pytest.mark.parametrize("per_message", [1, 2, 5, 100])
def test_full_zone_lines_as_sorted_lines(per_message: int) -> None:
    origin, messages = _zone_messages(per_message)
    reader = XfrReader(origin, XfrKind.AXFR, query_id=1)
    plain: list[wire.Record] = []
    for raw in messages:
        plain.extend(wire.parse_message(raw, origin).records)
        done = reader.feed(wire.parse_message(raw, origin, None, reader.rows()), len(raw))
    assert done
    assert reader.zone is not None and len(reader.zone) == len(plain) - 1
    expected = zonefile.canonical_lines(plain[:-1])
    assert [wire.record_line(r) for r in reader.zone.records()] == [
        wire.record_line(r) for r in plain[:-1]
    ]
    assert list(reader.zone.lines()) == expected
    assert "mail 300 IN A 192.0.2.3" in expected and "mail 60 IN A 192.0.2.3" not in expected
    assert reader.count == len(plain)
    assert reader.text_bytes == sum(len(r.owner) + len(r.rdata) for r in plain)
