"""Tests for secdns.wire: equivalence with dnspython, malformed input, TSIG."""

from __future__ import annotations

import random
import struct
import time

import dns.exception
import dns.ipv6
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.renderer
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import pytest
from faithful import faithful_text

from secdns import wire

ORIGIN = dns.name.from_text("example.com.")

HEX32 = "0123456789abcdef" * 4
HEX48 = "0123456789abcdef" * 6
B64 = (
    "AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjFFVQUTf6v"
    "58fLjwBd0YI0EzrAcQqBGCzh/RStIoO8g0NfnfL2MTJRkxoXbfDaUeVPQuYEhg37"
    "NZWAJQ9VnMVDxP/VHL496M/QZxkjf5/Efucp2gaDX6RS6CXpoY68LsvPVjR0ZSwz"
    "z1apAzvN9dlzEheX7ICJBBtuA6G3LQpzW5hOA2hzCTMjJPJ8LbqF6dsV6DoBQzgu"
    "l0sGIcGOYl7OyQdXfZ57relSQageu+ipAdTTJ25AsRTAoub8ONGcLmqrAmRLKBP1"
    "dfwhYB4N7knNnulqQxA+Uk1ihz0="
)
NSEC3_HASH = "2vptu5timamqttgl4luu9kg21e0aor3s"
SIG = "dGVzdHNpZ25hdHVyZXRlc3RzaWduYXR1cmV0ZXN0c2lnbmF0dXJldGVzdHNpZ25hdHVyZQ=="

# (owner, type, rdata text) -- names relative to ORIGIN unless absolute.
RECORDS: list[tuple[str, str, str]] = [
    ("@", "SOA", "ns1 hostmaster 2024010101 7200 3600 1209600 300"),
    ("@", "NS", "ns1"),
    ("@", "NS", "ns.other.net."),
    ("@", "A", "192.0.2.1"),
    ("host1", "A", "0.0.0.0"),
    ("host1", "A", "255.255.255.255"),
    ("host1", "AAAA", "::"),
    ("host1", "AAAA", "::1"),
    ("host1", "AAAA", "::ffff:1.2.3.4"),
    ("host1", "AAAA", "::1.2.3.4"),
    ("host1", "AAAA", "2001:db8::1"),
    ("host1", "AAAA", "2001:db8::"),
    ("host1", "AAAA", "1:0:0:2:0:0:0:3"),
    ("host1", "AAAA", "1:0:2:3:4:5:6:7"),
    ("host1", "AAAA", "fe80::1:0:0:1"),
    ("host1", "AAAA", "::ffff:0:0"),
    ("host1", "AAAA", "0:0:0:0:0:1:0:0"),
    ("WWW.Host2", "CNAME", "host1"),
    ("alias", "CNAME", "elsewhere.org."),
    ("sub", "DNAME", "other.net."),
    ("sub2", "DNAME", "deep.sub.example.com."),
    ("1.2", "PTR", "host1.example.com."),
    ("@", "MX", "10 mail"),
    ("@", "MX", "20 mx.other.net."),
    ("@", "MX", "30 MAIL.Example.COM."),
    ("@", "NS", "NS2.EXAMPLE.COM."),
    ("Upper", "CNAME", "EXAMPLE.com."),
    ("nomail", "MX", "0 ."),
    ("_sip._tcp", "SRV", "0 5 5060 sip"),
    ("_sip._udp", "SRV", "10 60 5060 ."),
    ("txt", "TXT", '"hello world"'),
    ("txt", "TXT", r'"with \"quote\" and \\ backslash" "" "semi;colon"'),
    ("txt", "TXT", r'"\000\001\031\127\128\255" "tab\009" "~ok!"'),
    ("txt", "TXT", '"' + "x" * 255 + '" "second"'),
    ("txt", "TXT", '"(parens) @at $dollar"'),
    ("txt", "SPF", '"v=spf1 -all"'),
    ("naptr", "NAPTR", r'100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .'),
    ("@", "CAA", '0 issue "letsencrypt.org"'),
    ("_443._tcp", "TLSA", "3 1 1 " + HEX32),
    ("host1", "SSHFP", "1 1 " + HEX32[:40]),
    ("@", "HTTPS", '1 . alpn="h2,h3" ipv4hint=192.0.2.1'),
    ("svc", "SVCB", "1 svc.example.com. port=8443"),
    ("svc", "HTTPS", "0 other.net."),
    ("loc", "LOC", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"),
    ("hinfo", "HINFO", '"PC" "Linux"'),
    ("sub", "DS", "12345 13 2 " + HEX32),
    ("@", "DNSKEY", "257 3 13 " + B64),
    ("@", "RRSIG", "A 13 2 3600 20300101000000 20200101000000 12345 example.com. " + SIG),
    ("@", "NSEC", "host1.example.com. A NS SOA MX TXT AAAA RRSIG NSEC DNSKEY"),
    (NSEC3_HASH, "NSEC3", f"1 0 10 AABBCCDD {NSEC3_HASH.upper()} A RRSIG"),
    ("@", "NSEC3PARAM", "1 0 10 AABBCCDD"),
    ("@", "ZONEMD", "2024010101 1 1 " + HEX48),
    ("_http", "URI", '10 1 "https://example.com/"'),
    ("cert", "CERT", "1 12345 8 " + B64[:64]),
    ("key", "OPENPGPKEY", B64[:80]),
    ("unknown", "TYPE65280", r"\# 4 0a0b0c0d"),
    ("unknown", "TYPE65280", r"\# 0"),
    ("rp", "RP", "admin.example.com. txt.other.net."),
    ("kx", "KX", "10 kx"),
    ("afs", "AFSDB", "1 afs"),
    (r"a\.b", "A", "192.0.2.2"),
    (r"sp\ ace", "A", "192.0.2.3"),
    (r"\@at", "A", "192.0.2.4"),
    (r"\$dollar", "TXT", '"x"'),
    (r"\"quote", "A", "192.0.2.5"),
    (r"\(paren\)", "A", "192.0.2.6"),
    (r"semi\;colon", "A", "192.0.2.7"),
    (r"back\\slash", "A", "192.0.2.8"),
    (r"\000\255\127bin", "A", "192.0.2.9"),
    ("*", "A", "192.0.2.10"),
    ("UPPER.Case", "A", "192.0.2.11"),
    ("Example.COM.", "TXT", '"origin, other case"'),
    ("outside.org.", "A", "192.0.2.12"),
    ("com.", "A", "192.0.2.13"),
    ("mx-names", "MX", r"5 we\.ird\ name"),
    ("ns-names", "NS", r"\@.\$.other."),
    ("@", "SOA", r"ns\.1.other. host\.master 1 2 3 4 5"),
    ("@", "SOA", "ns1 hostmaster 4294967295 4294967295 0 0 0"),
]


def _rrsets(origin: dns.name.Name, records: list[tuple[str, str, str]]) -> list[dns.rrset.RRset]:
    """One RRset per record, so wire order equals list order."""
    rrsets = []
    for index, (owner, rdtype, text) in enumerate(records):
        name = dns.name.from_text(owner, origin)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin, relativize=False)
        rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdata.rdtype)
        rrset.add(rdata, 300 + index)
        rrsets.append(rrset)
    return rrsets


def _response(origin: dns.name.Name, rrsets: list[dns.rrset.RRset]) -> dns.message.Message:
    query = dns.message.make_query(origin, dns.rdatatype.AXFR)
    response = dns.message.make_response(query)
    response.answer.extend(rrsets)
    return response


def _reference(raw: bytes, origin: dns.name.Name) -> list[tuple]:
    """What dnspython makes of the ANSWER section, one tuple per RR (see faithful.py)."""
    message = dns.message.from_wire(raw, one_rr_per_rrset=True)
    out = []
    for rrset in message.answer:
        (rdata,) = list(rrset)
        out.append(
            (
                tuple(label.lower() for label in reversed(rrset.name.labels[:-1])),
                rrset.name.relativize(origin).to_text(),
                rrset.ttl,
                rrset.rdclass,
                rrset.rdtype,
                faithful_text(rdata, origin),
            )
        )
    return out


def _decoded(raw: bytes, origin: dns.name.Name) -> list[tuple]:
    message = wire.parse_message(raw, origin)
    return [
        (rec.key, rec.owner, rec.ttl, rec.rdclass, rec.rdtype, rec.rdata) for rec in message.records
    ]


def _rr(owner: bytes, rdtype: int, rdata: bytes, rdclass: int = 1, ttl: int = 60) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata


def _message(
    answers: list[bytes], question: bytes | None = b"\x07example\x03com\x00\x00\xfc\x00\x01"
) -> bytes:
    """An AXFR response for example.com with *answers* as its ANSWER section."""
    qdcount = 0 if question is None else 1
    header = struct.pack("!HHHHHH", 0x1234, 0x8400, qdcount, len(answers), 0, 0)
    return header + (question or b"") + b"".join(answers)


EXAMPLE = b"\x07example\x03com\x00"
PTR_QNAME = b"\xc0\x0c"  # pointer to the question name


# --- equivalence -----------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [ORIGIN, dns.name.from_text("EXAMPLE.Com."), dns.name.root],
    ids=["origin", "origin-other-case", "root"],
)
def test_every_type_matches_dnspython(origin: dns.name.Name) -> None:
    raw = _response(ORIGIN, _rrsets(ORIGIN, RECORDS)).to_wire(max_size=65535)
    assert _decoded(raw, origin) == _reference(raw, origin)
    assert len(wire.parse_message(raw, origin).records) == len(RECORDS)


def test_uncompressed_message_matches_dnspython() -> None:
    renderer = dns.renderer.Renderer(id=7, flags=0x8400, max_size=65535)
    renderer.add_question(ORIGIN, dns.rdatatype.AXFR)
    for rrset in _rrsets(ORIGIN, RECORDS):
        # An empty compression table per RR: names are written out in full.
        renderer.output.seek(0, 2)
        renderer.counts[dns.renderer.ANSWER] += rrset.to_wire(renderer.output, None, ORIGIN)
    renderer.write_header()
    raw = renderer.get_wire()
    assert _decoded(raw, ORIGIN) == _reference(raw, ORIGIN)


def test_fields_of_a_record() -> None:
    records = [
        ("@", "SOA", "ns1 hostmaster 42 7200 3600 1209600 300"),
        ("WWW", "A", "192.0.2.1"),
        ("outside.org.", "A", "192.0.2.2"),
    ]
    raw = _response(ORIGIN, _rrsets(ORIGIN, records)).to_wire()
    message = wire.parse_message(raw, ORIGIN)
    soa, www, outside = message.records
    assert soa.key == (b"com", b"example")
    assert soa.owner == "@"
    assert soa.serial == 42
    assert wire.soa_fields(soa) == (42, 7200, 3600, 1209600, 300)
    assert www.key == (b"com", b"example", b"www")
    assert www.owner == "WWW"
    assert www.serial is None
    assert (www.ttl, www.rdclass, www.rdtype) == (301, 1, 1)
    assert outside.key == (b"org", b"outside")
    assert outside.owner == "outside.org."
    assert wire.record_line(www) == "WWW 301 IN A 192.0.2.1"
    assert message.qname == (b"example", b"com")
    assert message.qtype == dns.rdatatype.AXFR
    assert message.rcode == 0
    assert message.flags & 0x8000
    assert message.tsig_start is None and message.tsig_owner is None


def test_header_fields() -> None:
    raw = _message([], question=None)
    raw = raw[:2] + struct.pack("!H", 0x8405) + raw[4:]
    message = wire.parse_message(raw, ORIGIN)
    assert (message.id, message.flags, message.rcode) == (0x1234, 0x8405, 5)
    assert message.qname is None and message.qtype is None
    assert message.records == []


def test_root_owner_and_other_class() -> None:
    ch_a = b"\x05chaos" + EXAMPLE + struct.pack("!H", 0o1234)  # CH A: domain, octal address
    raw = _message(
        [
            _rr(b"\x00", 1, bytes([192, 0, 2, 1])),
            _rr(PTR_QNAME, 1, ch_a, rdclass=3),
            _rr(PTR_QNAME, 28, bytes(16), rdclass=3),
            _rr(PTR_QNAME, 16, b"\x02hi", rdclass=4),
            _rr(PTR_QNAME, 33, b"\x00\x01\x00\x02\x00\x03\x00", rdclass=254),
        ]
    )
    assert _decoded(raw, ORIGIN) == _reference(raw, ORIGIN)
    assert _decoded(raw, dns.name.root) == _reference(raw, dns.name.root)
    root, chaos, *_ = wire.parse_message(raw, ORIGIN).records
    assert (root.key, root.owner) == ((), ".")
    assert chaos.rdata == "chaos 1234"
    assert wire.record_line(chaos) == "@ 60 CH A chaos 1234"


def test_ttl_with_top_bit_reads_as_zero() -> None:
    raw = _message([_rr(PTR_QNAME, 1, bytes(4), ttl=0x80000000)])
    assert wire.parse_message(raw, ORIGIN).records[0].ttl == 0
    assert _decoded(raw, ORIGIN) == _reference(raw, ORIGIN)


def _random_name(rng: random.Random) -> dns.name.Name:
    suffix = rng.choice([ORIGIN, dns.name.from_text("a.b.EXAMPLE.com."), dns.name.root])
    room = 255 - sum(len(label) + 1 for label in suffix.labels)
    labels: list[bytes] = []
    for _ in range(rng.randrange(0, 6)):
        if room < 2:
            break
        size = rng.randrange(1, min(63, room - 1) + 1)
        alphabet = rng.choice([b"aB-_*", bytes(range(256)), b'"().;\\@$ \x00\x7f'])
        labels.append(bytes(rng.choice(alphabet) for _ in range(size)))
        room -= size + 1
    return dns.name.Name(labels + list(suffix.labels))


def test_random_owner_names_match_dnspython() -> None:
    rng = random.Random(20240101)
    origins = [ORIGIN, dns.name.from_text("a.B.example.com."), dns.name.root]
    for _ in range(40):
        rrsets = []
        for ttl in range(50):
            name = _random_name(rng)
            rdata = rng.choice(
                [
                    dns.rdata.from_text("IN", "A", "192.0.2.1"),
                    dns.rdtypes.ANY.NS.NS(dns.rdataclass.IN, dns.rdatatype.NS, _random_name(rng)),
                    dns.rdtypes.ANY.MX.MX(
                        dns.rdataclass.IN, dns.rdatatype.MX, 1, _random_name(rng)
                    ),
                ]
            )
            rrsets.append(dns.rrset.from_rdata(name, ttl, rdata))
        raw = _response(ORIGIN, rrsets).to_wire(max_size=65535)
        origin = rng.choice(origins)
        assert _decoded(raw, origin) == _reference(raw, origin)


def test_random_ipv6_addresses_match_dnspython() -> None:
    rng = random.Random(6)
    for _ in range(5000):
        words = [rng.choice([0, 0, 0, 1, 0xFFFF, rng.randrange(65536)]) for _ in range(8)]
        address = struct.pack("!8H", *words)
        assert wire.ipv6_text(address) == dns.ipv6.inet_ntoa(address)
        assert wire._ipv6_text_python(address) == dns.ipv6.inet_ntoa(address)


def test_random_txt_strings_match_dnspython() -> None:
    rng = random.Random(16)
    rdatas = []
    for _ in range(300):
        strings = [
            bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
            for _ in range(rng.randrange(1, 4))
        ]
        rdatas.append(b"".join(bytes([len(s)]) + s for s in strings))
    raw = _message([_rr(PTR_QNAME, rng.choice([16, 99]), rdata) for rdata in rdatas])
    assert _decoded(raw, ORIGIN) == _reference(raw, ORIGIN)


def _axfr_messages(rrsets: list[dns.rrset.RRset]) -> list[bytes]:
    """Pack RRsets into as few 64 KiB messages as fit, as an AXFR server does."""
    messages = []
    index = 0
    while index < len(rrsets):
        renderer = dns.renderer.Renderer(id=1, flags=0x8400, max_size=65535)
        renderer.add_question(ORIGIN, dns.rdatatype.AXFR)
        while index < len(rrsets):
            try:
                renderer.add_rrset(dns.renderer.ANSWER, rrsets[index])
            except dns.exception.TooBig:
                break
            index += 1
        renderer.write_header()
        messages.append(renderer.get_wire())
    return messages


def test_large_transfer_messages_match_dnspython() -> None:
    rrsets = []
    for index in range(4000):
        name = dns.name.from_text(f"host{index:05d}", ORIGIN)
        address = f"10.0.{index // 256}.{index % 256}"
        exchange = f"10 mx.host{index:05d}.example.com."
        rrsets.append(dns.rrset.from_text(name, 3600, "IN", "A", address))
        rrsets.append(dns.rrset.from_text(name, 3600, "IN", "AAAA", f"2001:db8::{index:x}"))
        rrsets.append(dns.rrset.from_text(name, 3600, "IN", "MX", exchange, "20 mx.other.net."))
        rrsets.append(dns.rrset.from_text(name, 3600, "IN", "TXT", f'"record {index}"'))
    messages = _axfr_messages(rrsets)
    assert len(messages) > 1
    assert len(messages[0]) > 60000
    count = 0
    for raw in messages:
        decoded = _decoded(raw, ORIGIN)
        assert decoded == _reference(raw, ORIGIN)
        count += len(decoded)
    assert count == 5 * 4000


def test_type_text() -> None:
    assert wire.type_text(1) == "A"
    assert wire.type_text(28) == "AAAA"
    assert wire.type_text(65280) == "TYPE65280"
    assert wire.type_text(65) == dns.rdatatype.to_text(dns.rdatatype.HTTPS) == "HTTPS"


def test_soa_fields_rejects_other_types() -> None:
    rec = wire.Record((), "@", 1, 1, 1, "192.0.2.1", None)
    with pytest.raises(ValueError):
        wire.soa_fields(rec)


def test_max_records() -> None:
    raw = _message([_rr(PTR_QNAME, 1, bytes(4))] * 3)
    assert len(wire.parse_message(raw, ORIGIN, max_records=3).records) == 3
    with pytest.raises(wire.WireError, match="limit"):
        wire.parse_message(raw, ORIGIN, max_records=2)


# --- malformed input -------------------------------------------------------


def _valid_message() -> bytes:
    records = RECORDS + [("outside.org.", "TXT", '"x"')]
    response = _response(ORIGIN, _rrsets(ORIGIN, records))
    response.authority.append(dns.rrset.from_text(ORIGIN, 60, "IN", "NS", "ns1.example.com."))
    response.additional.append(dns.rrset.from_text("ns1.example.com.", 60, "IN", "A", "192.0.2.1"))
    response.use_edns(0)
    return response.to_wire(max_size=65535)


def test_truncated_at_every_offset() -> None:
    raw = _valid_message()
    wire.parse_message(raw, ORIGIN)
    for size in range(len(raw)):
        with pytest.raises(wire.WireError):
            wire.parse_message(raw[:size], ORIGIN)


def test_random_corruption_raises_only_wire_error() -> None:
    raw = _valid_message()
    rng = random.Random(99)
    for _ in range(600):
        damaged = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(raw))] = rng.randrange(256)
        try:
            got = _decoded(bytes(damaged), ORIGIN)
        except wire.WireError:
            continue
        try:
            expected = _reference(bytes(damaged), ORIGIN)
        except dns.exception.DNSException:
            continue  # dnspython also checks authority/additional rdata; we skip it
        assert got == expected


def test_pointer_to_itself() -> None:
    raw = _message([_rr(b"\xc0\x1d", 1, bytes(4))])
    assert raw[0x1D:0x1F] == b"\xc0\x1d"
    with pytest.raises(wire.WireError, match="backwards"):
        wire.parse_message(raw, ORIGIN)


def test_pointer_loop() -> None:
    # A name at offset 12 that points to 14, which points back to 12.
    raw = struct.pack("!HHHHHH", 1, 0x8400, 1, 0, 0, 0) + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01"
    with pytest.raises(wire.WireError):
        wire.parse_message(raw, ORIGIN)


def test_forward_pointer() -> None:
    raw = _message([_rr(b"\xc0\x40", 1, bytes(4)), _rr(PTR_QNAME, 1, bytes(4))])
    with pytest.raises(wire.WireError, match="backwards"):
        wire.parse_message(raw, ORIGIN)


def test_pointer_outside_message() -> None:
    raw = _message([_rr(b"\xff\xff", 1, bytes(4))])
    with pytest.raises(wire.WireError):
        wire.parse_message(raw, ORIGIN)


def test_pointer_into_the_same_name() -> None:
    # "a" then a pointer back to its own first label: overlaps the name itself.
    owner = b"\x01a\xc0\x1d"
    raw = _message([_rr(owner, 1, bytes(4))])
    assert raw[0x1D] == 1
    with pytest.raises(wire.WireError):
        wire.parse_message(raw, ORIGIN)


def test_long_pointer_chain() -> None:
    # RR 0 owns "a."; RR i is owned by a pointer to RR i-1's owner, so its
    # owner takes i hops. 16 hops are allowed and 17 are not, as in dnspython.
    rrs: list[bytes] = []
    offsets: list[int] = []
    pos = 12
    for index in range(18):
        owner = b"\x01a\x00" if index == 0 else struct.pack("!H", 0xC000 | offsets[-1])
        offsets.append(pos)
        rrs.append(_rr(owner, 1, bytes(4)))
        pos += len(rrs[-1])
    for count in (17, 18):
        raw = struct.pack("!HHHHHH", 1, 0x8400, 0, count, 0, 0) + b"".join(rrs[:count])
        if count == 17:
            assert len(wire.parse_message(raw, dns.name.root).records) == count
            dns.message.from_wire(raw)
        else:
            with pytest.raises(wire.WireError, match="too many"):
                wire.parse_message(raw, dns.name.root)
            with pytest.raises(dns.exception.DNSException):
                dns.message.from_wire(raw)


def test_label_type_and_length() -> None:
    raw = _message([_rr(b"\x40" + b"a" * 64 + b"\x00", 1, bytes(4))])
    with pytest.raises(wire.WireError, match="label type"):
        wire.parse_message(raw, ORIGIN)
    raw = _message([_rr(b"\x80\x00", 1, bytes(4))])
    with pytest.raises(wire.WireError, match="label type"):
        wire.parse_message(raw, ORIGIN)


def test_name_too_long() -> None:
    label = b"\x3f" + b"a" * 63
    ok = label * 3 + b"\x3d" + b"a" * 61 + b"\x00"  # 255 octets with the root
    assert len(ok) == 255
    wire.parse_message(_message([_rr(ok, 1, bytes(4))]), dns.name.root)
    too_long = label * 3 + b"\x3e" + b"a" * 62 + b"\x00"
    with pytest.raises(wire.WireError, match="255"):
        wire.parse_message(_message([_rr(too_long, 1, bytes(4))]), dns.name.root)
    # Too long only once the compressed suffix is added.
    compressed = label * 3 + b"\x36" + b"a" * 54 + PTR_QNAME
    with pytest.raises(wire.WireError, match="255"):
        wire.parse_message(_message([_rr(compressed, 1, bytes(4))]), dns.name.root)


def test_bad_rdlength() -> None:
    good = _message([_rr(PTR_QNAME, 1, bytes(4))])
    bad = good[:-6] + struct.pack("!H", 9) + good[-4:]
    with pytest.raises(wire.WireError, match="past the end"):
        wire.parse_message(bad, ORIGIN)


@pytest.mark.parametrize(
    ("rdtype", "rdata", "rdclass"),
    [
        (1, bytes(5), 1),  # A with 5 octets
        (1, bytes(3), 1),
        (28, bytes(15), 1),
        (2, EXAMPLE + b"\x00", 1),  # NS with a trailing octet
        (2, EXAMPLE[:-1], 1),  # NS name running out of rdata
        (15, b"\x00", 1),  # MX without exchange
        (15, b"\x00\x01" + EXAMPLE + b"x", 1),
        (33, b"\x00\x01\x00\x02", 1),  # SRV too short
        (16, b"", 1),  # TXT without strings
        (16, b"\x05abc", 1),  # TXT string longer than rdata
        (6, EXAMPLE + EXAMPLE + bytes(19), 1),  # SOA one octet short
        (6, EXAMPLE + EXAMPLE + bytes(21), 1),
        (39, PTR_QNAME, 1),  # DNAME target must not be compressed
        (39, EXAMPLE[:-1], 1),
        (43, b"\x00\x01", 1),  # DS far too short
        (41, b"", 1),  # OPT in the answer section
        (250, b"", 255),  # TSIG in the answer section
    ],
)
def test_bad_rdata(rdtype: int, rdata: bytes, rdclass: int) -> None:
    raw = _message([_rr(PTR_QNAME, rdtype, rdata, rdclass=rdclass)])
    with pytest.raises(wire.WireError):
        wire.parse_message(raw, ORIGIN)
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(raw, keyring=False)


def test_bad_slow_rdata_names_the_type() -> None:
    raw = _message([_rr(PTR_QNAME, 43, b"\x00\x01")])
    with pytest.raises(wire.WireError, match="DS"):
        wire.parse_message(raw, ORIGIN)


def test_trailing_garbage() -> None:
    raw = _message([_rr(PTR_QNAME, 1, bytes(4))])
    wire.parse_message(raw, ORIGIN)
    with pytest.raises(wire.WireError, match="trailing"):
        wire.parse_message(raw + b"\x00", ORIGIN)


def test_short_header_and_garbage() -> None:
    for raw in (b"", b"\x00" * 11, b"\xff" * 12, b"\xff" * 100):
        with pytest.raises(wire.WireError):
            wire.parse_message(raw, ORIGIN)


def test_hostile_counts_do_not_hang() -> None:
    raw = struct.pack("!HHHHHH", 1, 0x8400, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF) + PTR_QNAME * 100
    with pytest.raises(wire.WireError):
        wire.parse_message(raw, ORIGIN)


# --- TSIG ------------------------------------------------------------------

KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0")})
KEY_NAME = dns.name.from_text("xfr-key.")


def _signed(additional: bool = False) -> tuple[bytes, dns.message.Message]:
    query = dns.message.make_query(ORIGIN, dns.rdatatype.AXFR)
    query.use_tsig(KEYRING, KEY_NAME)
    query.to_wire()
    response = _response(ORIGIN, _rrsets(ORIGIN, RECORDS[:10]))
    response.use_tsig(KEYRING, KEY_NAME)
    response.request_mac = query.mac or b""
    if additional:
        response.additional.append(
            dns.rrset.from_text("ns1.example.com.", 60, "IN", "A", "192.0.2.1")
        )
    return response.to_wire(), query


@pytest.mark.parametrize("additional", [False, True])
def test_tsig_found_and_validates(additional: bool) -> None:
    raw, query = _signed(additional)
    message = wire.parse_message(raw, ORIGIN)
    assert message.tsig_owner == KEY_NAME
    assert message.tsig_rdata is not None and message.tsig_start is not None
    assert raw[message.tsig_start :].startswith(b"\x07xfr-key\x00\x00\xfa\x00\xff")
    assert len(message.records) == 10
    key = KEYRING[KEY_NAME]
    dns.tsig.validate(
        raw,
        key,
        message.tsig_owner,
        message.tsig_rdata,
        int(time.time()),
        query.mac,
        message.tsig_start,
    )
    with pytest.raises(dns.tsig.BadSignature):
        tampered = raw[:-20] + bytes([raw[-20] ^ 1]) + raw[-19:]  # inside the MAC
        bad = wire.parse_message(tampered, ORIGIN)
        assert bad.tsig_rdata is not None and bad.tsig_start is not None
        dns.tsig.validate(
            tampered, key, KEY_NAME, bad.tsig_rdata, int(time.time()), query.mac, bad.tsig_start
        )


def test_tsig_not_last_is_rejected() -> None:
    raw, _ = _signed()
    extra = _rr(PTR_QNAME, 1, bytes(4))
    arcount = struct.unpack("!H", raw[10:12])[0]
    moved = raw[:10] + struct.pack("!H", arcount + 1) + raw[12:] + extra
    with pytest.raises(wire.WireError, match="TSIG"):
        wire.parse_message(moved, ORIGIN)


def test_tsig_in_authority_is_rejected() -> None:
    raw, _ = _signed()
    counts = list(struct.unpack("!HHHH", raw[4:12]))
    counts[2], counts[3] = counts[3], counts[2]  # the TSIG now counts as authority
    moved = raw[:4] + struct.pack("!HHHH", *counts) + raw[12:]
    with pytest.raises(wire.WireError, match="TSIG"):
        wire.parse_message(moved, ORIGIN)


def test_tsig_bad_class_is_rejected() -> None:
    raw, _ = _signed()
    message = wire.parse_message(raw, ORIGIN)
    assert message.tsig_start is not None
    at = message.tsig_start + len(b"\x07xfr-key\x00") + 2
    bad = raw[:at] + b"\x00\x01" + raw[at + 2 :]
    with pytest.raises(wire.WireError, match="class"):
        wire.parse_message(bad, ORIGIN)


DNSSEC_RECORDS = [
    ("@", "NSEC", "a.example.com. A TYPE65534 NSEC"),
    ("a", "NSEC", "Other.NET. TYPE1234 CAA"),
    ("b", "NSEC", "example.com."),
    ("c", "NSEC3", "1 1 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR"),
    ("d", "NSEC3", "1 0 65535 ff 00 NS SOA RRSIG DNSKEY NSEC3PARAM TYPE65535"),
    ("e", "RRSIG", "TYPE65534 8 1 0 19700101000000 21060207062815 65535 other.NET. " + SIG),
    ("f", "RRSIG", "NSEC3 13 3 86400 20300101000000 20200101000000 1 EXAMPLE.com. " + SIG),
]


@pytest.mark.parametrize("origin", [ORIGIN, dns.name.from_text("EXAMPLE.Com.")])
def test_signed_zone_types_match_dnspython(origin: dns.name.Name) -> None:
    raw = _response(ORIGIN, _rrsets(ORIGIN, DNSSEC_RECORDS)).to_wire(max_size=65535)
    assert _decoded(raw, origin) == _reference(raw, origin)


@pytest.mark.parametrize(
    "rdtype, rdata",
    [
        (47, EXAMPLE + b"\x00\x00"),  # a window of no octets
        (47, EXAMPLE + b"\x01\x01\x40\x00\x01\x40"),  # windows out of order
        (47, EXAMPLE + b"\x00\x21" + bytes(33)),  # a window of 33 octets
        (47, EXAMPLE + b"\x00\x02\x40"),  # cut short
        (50, b"\x01\x00\x00\x00\x00\x00"),  # no next hashed owner
        (50, b"\x01\x00\x00\x00\x05\x01"),  # its length past the rdata
        (46, struct.pack("!HBBIIIH", 1, 13, 2, 0, 0, 0, 1) + EXAMPLE),  # no signature
    ],
)
def test_signed_zone_types_dnspython_refuses_are_refused(rdtype: int, rdata: bytes) -> None:
    raw = _message([_rr(EXAMPLE, rdtype, rdata)])
    try:
        dns.message.from_wire(raw)
    except Exception:
        with pytest.raises(wire.WireError):
            wire.parse_message(raw, ORIGIN)
    else:  # (dnspython takes it: so does the decoder, as dnspython renders it)
        assert _decoded(raw, ORIGIN) == _reference(raw, ORIGIN)
