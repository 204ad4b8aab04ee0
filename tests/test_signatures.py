"""The signature checks of secdns.checks.signatures and the canonical octets they sign.

The octets written straight from record text must be dnspython's ``to_digestable``
for every type a zone holds, and the forked pool over chunks of RRsets must find
exactly what the in-process check finds, a tampered record and an expired
signature included.
"""

from __future__ import annotations

import multiprocessing

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from secdns import dnssectext, wire
from secdns.checks import Severity, signatures
from secdns.checks.canonical import CanonicalWire, owner_wire
from secdns.checks.dnssec import check_dnssec
from secdns.masterfile import read_master

ORIGIN = dns.name.from_text("Example.COM.")
NOW = 1_800_000_000.0
DAY = 86400

MIXED = r"""$ORIGIN Example.COM.
$TTL 3600
@ SOA NS1.Example.COM. Host\.Master 2024010101 7200 900 1209600 300
@ NS ns1
@ NS ns.Other.NET.
@ MX 10 Mail
@ MX 0 .
@ TXT "v=spf1 -all" "second string" ""
@ TXT "quote \" and \\ and \010 and é"
@ DNSKEY 257 3 13 ( mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+
    KkxLbxILfDLUT0rAK9iUzy1L53eKGQ== )
@ CAA 0 issue "ca.example.net"
ns1 A 192.0.2.53
ns1 AAAA 2001:DB8::53
Mail CNAME ns1
*.Wild A 192.0.2.9
_sip._tcp SRV 0 5 5060 SIP.Example.com.
4.2.0.192 PTR ns1.Example.COM.
sub NS ns.sub
sub DS 12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118EFE8AA6D8F7E7F6B 5A1B2C3D
ns.sub A 192.0.2.77
ns1 NSEC Mail.Example.COM. A AAAA RRSIG NSEC TYPE65534
weird\.label NSEC \@.Example.COM. A
escaped\032name CNAME Tar\.get
"""


def read(text: str) -> list[wire.Record]:
    return read_master(text, ORIGIN, filename="test.zone").records


def test_canonical_octets_are_dnspythons():
    canonical = CanonicalWire(ORIGIN)
    records = read(MIXED)
    assert len(records) > 20
    for rec in records:
        rdata = dns.rdata.from_text(rec.rdclass, rec.rdtype, rec.rdata, origin=ORIGIN)
        assert canonical.rdata(rec) == rdata.to_digestable(ORIGIN), wire.record_line(rec)


def test_owner_octets_are_lowercased():
    assert owner_wire((b"com", b"example", b"www")) == b"\x03www\x07example\x03com\x00"
    assert owner_wire(()) == b"\x00"


def test_rrsig_fields_from_text():
    canonical = CanonicalWire(ORIGIN)
    text = (
        "A 13 3 3600 20270115080000 20270101080000 21683 Example.COM. "
        "0KMpi4Ko1xiM8G5J1thl85onxQRAchE33MsV hpWFJ8OdLxnAh61PGR1Rr1+DiWKO7215g+yS yTdiJLGv1Ypckw=="
    )
    rec = wire.Record((), "www", 3600, dns.rdataclass.IN, dns.rdatatype.RRSIG, text, None)
    rrsig = canonical.rrsig(rec)
    reference = dns.rdata.from_text("IN", "RRSIG", text, origin=ORIGIN)
    assert rrsig is not None
    assert (rrsig.covered, rrsig.expiration, rrsig.inception, rrsig.key_tag) == (
        reference.type_covered,
        reference.expiration,
        reference.inception,
        reference.key_tag,
    )
    assert rrsig.header == reference.to_digestable(ORIGIN)[: len(rrsig.header)]
    assert rrsig.signature == reference.signature


# --- the forked pool ---------------------------------------------------------------------------


def big_signed_zone(hosts: int) -> dns.zone.Zone:
    lines = [
        "$TTL 300",
        "@ SOA ns1 hostmaster 1 7200 900 1209600 300",
        "@ NS ns1",
        "ns1 A 192.0.2.1",
        "*.wild A 192.0.2.9",
        "*.wild TXT wildcard",
    ]
    lines += [f"h{i} A 10.0.{i // 256}.{i % 256}" for i in range(hosts)]
    lines += [f"h{i} TXT host-{i}" for i in range(0, hosts, 3)]
    zone = dns.zone.from_text("\n".join(lines), ORIGIN, relativize=False)
    ksk, zsk = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    with zone.writer() as txn:
        dns.dnssec.sign_zone(
            zone,
            txn,
            keys=[
                (ksk, dns.dnssec.make_dnskey(ksk.public_key(), "ED25519", flags=257)),
                (zsk, dns.dnssec.make_dnskey(zsk.public_key(), "ED25519")),
            ],
            inception=NOW - DAY,
            expiration=NOW + 30 * DAY,
        )
        # A record changed after signing, and one signature re-made already expired.
        txn.replace(
            dns.name.from_text("h123", ORIGIN),
            dns.rdataset.from_text("IN", "A", 300, "192.0.2.66"),
        )
        name = dns.name.from_text("h321", ORIGIN)
        rrsig = dns.dnssec.sign(
            zone.find_rrset(name, "A"),
            zsk,
            ORIGIN,
            dns.dnssec.make_dnskey(zsk.public_key(), "ED25519"),
            inception=NOW - 20 * DAY,
            expiration=NOW - DAY,
            origin=ORIGIN,
        )
        txn.replace(name, dns.rdataset.from_rdata(300, rrsig))
    return zone


@pytest.fixture(scope="module")
def big_signed() -> list[wire.Record]:
    return read(big_signed_zone(1200).to_text(want_origin=True))


def test_the_pool_finds_what_one_process_finds(big_signed, monkeypatch):
    serial = check_dnssec(ORIGIN, big_signed, now=NOW, workers=1)
    monkeypatch.setattr(signatures, "PARALLEL_MIN_SIGNATURES", 0)
    monkeypatch.setattr(signatures, "CHUNK_SIGNATURES", 100)
    pools = []
    real_context = multiprocessing.get_context

    def spy(method: str):
        context = real_context(method)
        pools.append(method)
        return context

    monkeypatch.setattr(signatures.multiprocessing, "get_context", spy)
    parallel = check_dnssec(ORIGIN, big_signed, now=NOW, workers=2)
    assert pools == ["fork"]
    assert sorted(parallel, key=repr) == sorted(serial, key=repr)
    found = {(f.check, f.severity, f.owner, f.rdtype) for f in parallel}
    assert found == {
        ("dnssec.signature", Severity.ERROR, "h123.Example.COM.", "A"),
        ("dnssec.rrsig-validity", Severity.ERROR, "h321.Example.COM.", "RRSIG A"),
    }
    (tampered,) = [f for f in parallel if f.check == "dnssec.signature"]
    assert "the data or the signature was changed" in tampered.message


def test_chunks_are_whole_rrsets(monkeypatch):
    monkeypatch.setattr(signatures, "CHUNK_SIGNATURES", 3)
    signed = [((), [1, 2]), ((), [3]), ((), [4, 5, 6, 7]), ((), [8])]
    assert signatures._chunks(signed) == [(0, 2), (2, 3), (3, 4)]  # type: ignore[arg-type]


# --- reading signed master files ---------------------------------------------------------------

SIGNED_TEXT = r"""$ORIGIN Example.COM.
$TTL 3600
@ SOA ns1 hostmaster 1 7200 900 1209600 300
  RRSIG SOA 13 2 3600 ( 20261231223937 20261201223937 21683 Example.COM.
        0KMpi4Ko1xiM8G5J1thl85onxQRAchE33MsV
        hpWFJ8OdLxnAh61PGR1Rr1+DiWKO7215g+yS yTdiJLGv1Ypckw== )
  RRSIG A 13 3 3600 1798000000 1796000000 1 other.NET. AAECAwQF
  RRSIG NS 13 2 1h 20261231223937 20261201223937 21683 @ AAECAwQF
  RRSIG TYPE65534 ECDSAP256SHA256 2 3600 20261231223937 20261201223937 21683 @ AAECAwQF
  RRSIG MX 13 2 3600 20261231223937 20261201223937 21683 @ AAEC AwQF====
  DNSKEY 257 3 13 ( mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+
                    KkxLbxILfDLUT0rAK9iUzy1L53eKGQ== ) ; KSK
  DNSKEY 256 3 ECDSAP256SHA256 AAECAwQFBgcICQoLDA0ODw==
  NSEC a.Example.COM. SOA NS RRSIG NSEC DNSKEY A a TYPE65534
a NSEC @
b NSEC \065.b TXT
c NSEC c.other.net. MX
0p9mhaveqvm6t7vbl5lop2u3t2rp3tom NSEC3 1 1 12 AABBCCDD ( 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR
                                  NS SOA RRSIG DNSKEY NSEC3PARAM A )
2t7b4g4vsa5smi47k61mv5bv1a22bojr NSEC3 1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3s
35mthgpgcu1qg68fab165klnsnk3dpvl NSEC3 1 0 0 aB 35MTHGPGCU1QG68FAB165KLNSNK3DPVL A TYPE65534 A
"""


def test_dnssec_records_read_as_dnspython_renders_them():
    records = read(SIGNED_TEXT)
    assert len(records) == 15
    for rec in records:
        rdata = dns.rdata.from_text(rec.rdclass, rec.rdtype, rec.rdata, origin=ORIGIN)
        assert rec.rdata == rdata.to_text(origin=ORIGIN, relativize=True), rec.rdata
    for line in SIGNED_TEXT.splitlines():
        tokens = line.split()
        if tokens[:1] in (["RRSIG"], ["DNSKEY"], ["NSEC"]) and "(" not in line:
            rdtype = dns.rdatatype.from_text(tokens[0])
            text = " ".join(tokens[1:]).split(";")[0]
            reference = dns.rdata.from_text("IN", rdtype, text, origin=ORIGIN)
            expected = reference.to_text(origin=ORIGIN, relativize=True)
            assert expected in {rec.rdata for rec in records}, expected


@pytest.mark.parametrize(
    "text",
    [
        "1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG",
        "1 1 10 0A0B 2t7b4g4vsa5smi47k61mv5bv1a22bojr",
        "1 0 65535 ff 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR TYPE65534 A NS",
    ],
)
def test_nsec3_text_is_dnspythons(text):
    tokens = text.split()
    expected = dns.rdata.from_text("IN", "NSEC3", text).to_text()
    assert dnssectext.nsec3(tokens, 0, lambda token: token) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1 0 0 - 01",  # a last character with unused bits set (RFC 4648 3.5)
        "1 0 0 - 2T7B4G4V====",  # padding
        "1 0 0 ABC 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR",  # an odd salt
        "1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR TYPE0",
        "SHA1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR",
        "1 0 0 -",
    ],
)
def test_nsec3_text_it_is_unsure_of_goes_to_dnspython(text):
    assert dnssectext.nsec3(text.split(), 0, lambda token: token) is None
