"""AXFR out written straight from canonical lines (secdns.server.xfrout): the edge cases of
that writer, without sockets.  Every record received (one per RRset entry, so each TTL is
seen) equals the zone as dnspython reads it, RRsets with records of differing TTLs
included (sent with the smallest, as dnspython and BIND keep them)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from secdns import zonefile
from secdns.server import xfrout
from secdns.server.zone import ZoneVersion
from secdns.sources import read_file_records
from secdns.store import JournalEntry

ORIGIN = dns.name.from_text("Example.COM.")
HEAD = """$TTL 300
@ 3600 IN SOA ns1 hostmaster 7 7200 3600 1209600 300
@ 3600 IN NS ns1
@ 3600 IN NS ns.outside.example.
ns1 IN A 192.0.2.1
"""
EDGES = """
mixed 300 IN A 192.0.2.10
mixed 600 IN A 192.0.2.11
mixed 900 IN AAAA 2001:db8::1
Case 300 IN A 192.0.2.12
case 300 IN AAAA ::1
self 300 IN CNAME @
mx 300 IN MX 10 @
mx 300 IN MX 20 mail
mx 300 IN MX 30 mail.example.com.
mx 300 IN MX 40 mail.elsewhere.example.
nullmx 300 IN MX 0 .
srv 300 IN SRV 1 2 3 @
srv 300 IN SRV 1 2 4 .
srv 300 IN SRV 1 2 5 a.b.c
escaped 300 IN CNAME a\\.b
e\\.scaped 300 IN A 192.0.2.13
e\\.scaped 300 IN TXT "x"
txt 300 IN TXT ""
txt 300 IN TXT "a" "b c" "d"
txt 300 IN TXT "quote \\" in"
txt 300 IN TXT "{long}"
ptr 300 IN PTR host.example.net.
dn 300 IN DNAME target
deep.a.b.c.d.e.f 300 IN NS ns.deep.a.b.c.d.e.f
ns.deep.a.b.c.d.e.f 300 IN A 192.0.2.14
rare 300 IN TYPE65400 \\# 3 010203
rare 300 IN HINFO "cpu" "os"
rare 300 IN A 192.0.2.15
""".replace("{long}", "y" * 255)


def _bulk(count: int) -> str:
    """Owners of several records, enough of them for several messages."""
    return "".join(
        f"h{i}.dept{i % 7} 300 IN A 10.{i // 65536}.{i // 256 % 256}.{i % 256}\n"
        f"h{i}.dept{i % 7} 300 IN AAAA 2001:db8::{i:x}\n"
        f"h{i}.dept{i % 7} 300 IN MX 10 h{(i + 1) % count}.dept{(i + 1) % count % 7}\n"
        for i in range(count)
    )


def _version(text: str) -> ZoneVersion:
    records = read_file_records(None, ORIGIN, text=text)
    return ZoneVersion.from_lines(ORIGIN, zonefile.canonical_lines(records))


def _received(version: ZoneVersion) -> tuple[list[tuple[object, ...]], list[bytes]]:
    query = dns.message.make_query(ORIGIN, dns.rdatatype.AXFR)
    messages = list(xfrout.axfr_messages(query, version))
    records = []
    for raw in messages:
        assert len(raw) <= 65535
        message = dns.message.from_wire(raw, one_rr_per_rrset=True)
        for rrset in message.answer:
            for rdata in rrset:
                records.append((rrset.name, rrset.rdtype, rrset.ttl, rdata))
    return records, messages


def _want(text: str) -> list[tuple[object, ...]]:
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    return [
        (name, rdataset.rdtype, rdataset.ttl, rdata)
        for name, rdataset in zone.iterate_rdatasets()
        for rdata in rdataset
    ]


def _check(version: ZoneVersion, text: str) -> list[bytes]:
    records, messages = _received(version)
    assert records[0][1] == records[-1][1] == dns.rdatatype.SOA
    want = _want(text)
    assert len(records) == len(want) + 1  # the SOA twice
    assert sorted(records[1:], key=repr) == sorted(want, key=repr)
    # names keep their case: the apex as the zone spells it, owners as the file does
    names = {record[0].to_text() for record in records}
    assert "Example.COM." in names
    return messages


def test_edge_records_equal_the_zone():
    text = HEAD + EDGES
    messages = _check(_version(text), text)
    assert len(messages) == 1


def test_records_across_messages_keep_their_names():
    text = HEAD + EDGES + _bulk(4000)
    messages = _check(_version(text), text)
    assert len(messages) >= 4


def test_an_rrset_larger_than_a_message_goes_record_by_record():
    text = HEAD + "".join(f'big 60 IN TXT "{i:05d} {"x" * 200}"\n' for i in range(700))
    messages = _check(_version(text), text)
    assert len(messages) >= 3


def test_a_version_changed_by_ixfr():
    """Lines an IXFR added go after the owner's others, with their own TTL."""
    text = HEAD + EDGES + _bulk(300)
    version = _version(text)
    deleted = ["h5.dept5 300 IN A 10.0.0.5", "rare 300 IN A 192.0.2.15"]
    added = [
        "h5.dept5 60 IN A 10.9.9.9",
        "h6.dept6 30 IN A 10.9.9.10",
        'h6.dept6 300 IN TXT "new"',
        "new.dept1 300 IN CNAME h7.dept0",
        'rare 300 IN TXT "z"',
    ]
    changed = version.apply([(deleted, added)], 8)
    final = text.replace("h5.dept5 300 IN A 10.0.0.5\n", "").replace(
        "rare 300 IN A 192.0.2.15\n", ""
    ) + "".join(line + "\n" for line in added)
    _check(changed, final)


def test_tsig_is_unchanged_over_many_messages():
    import dns.tsigkeyring

    text = HEAD + _bulk(3000)
    keyring = dns.tsigkeyring.from_text({"xfr.": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"})
    query = dns.message.make_query(ORIGIN, dns.rdatatype.AXFR)
    query.use_tsig(keyring, "xfr.")
    query = dns.message.from_wire(query.to_wire(), keyring=keyring)
    messages = list(xfrout.axfr_messages(query, _version(text)))
    assert len(messages) >= 3
    ctx = None
    for raw in messages:
        message = dns.message.from_wire(
            raw,
            keyring=keyring,
            request_mac=query.mac,
            xfr=True,
            origin=ORIGIN,
            tsig_ctx=ctx,
            multi=True,
        )
        assert message.had_tsig
        ctx = message.tsig_ctx


def _ixfr_query(serial: int) -> dns.message.Message:
    query = dns.message.make_query(ORIGIN, dns.rdatatype.IXFR)
    soa = dns.rrset.from_text(
        ORIGIN, 0, "IN", "SOA", f"ns1.example.com. hostmaster.example.com. {serial} 1 1 1 1"
    )
    query.authority.append(soa)
    return dns.message.from_wire(query.to_wire())


def test_ixfr_from_the_journal_and_its_axfr_fallback():
    text = HEAD + _bulk(200)
    old = _version(text)
    deleted = ("@ 3600 IN SOA ns1 hostmaster 7 7200 3600 1209600 300", "h5.dept5 300 IN A 10.0.0.5")
    added = ("@ 3600 IN SOA ns1 hostmaster 8 7200 3600 1209600 300", "h5.dept5 300 IN A 10.9.9.9")
    new = old.apply([(deleted, added)], 8)
    journal = [JournalEntry(7, 8, deleted, added)]
    incremental = [
        dns.message.from_wire(raw, one_rr_per_rrset=True)
        for raw in xfrout.ixfr_messages(_ixfr_query(7), new, journal)
    ]
    rrsets = [rrset for message in incremental for rrset in message.answer]
    soa, a = dns.rdatatype.SOA, dns.rdatatype.A
    assert [r.rdtype for r in rrsets] == [soa, soa, a, soa, a, soa]
    assert [str(r[0]) for r in rrsets if r.rdtype == a] == ["10.0.0.5", "10.9.9.9"]
    assert [r[0].serial for r in rrsets if r.rdtype == dns.rdatatype.SOA] == [8, 7, 8, 8]
    # a serial the journal does not reach: the whole zone, as AXFR sends it
    final = text.replace(" 7 7200 ", " 8 7200 ").replace(
        "h5.dept5 300 IN A 10.0.0.5", "h5.dept5 300 IN A 10.9.9.9"
    )
    records = []
    for raw in xfrout.ixfr_messages(_ixfr_query(3), new, journal):
        for rrset in dns.message.from_wire(raw, one_rr_per_rrset=True).answer:
            records += [(rrset.name, rrset.rdtype, rrset.ttl, rdata) for rdata in rrset]
    assert sorted(records[1:], key=repr) == sorted(_want(final), key=repr)


def _lines(text: str) -> tuple[str, ...]:
    return tuple(zonefile.canonical_lines(read_file_records(None, ORIGIN, text=text)))


def _sections(messages: list[bytes]) -> list[list[tuple[object, ...]]]:
    """An IXFR's records (one per RRset entry, so each TTL is seen) cut at each SOA."""
    sections: list[list[tuple[object, ...]]] = []
    for raw in messages:
        assert len(raw) <= 65535
        for rrset in dns.message.from_wire(raw, one_rr_per_rrset=True).answer:
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.SOA:
                    sections.append([])
                sections[-1].append((rrset.name, rrset.rdtype, rrset.ttl, rdata))
    return sections


def _read_each(lines: tuple[str, ...]) -> list[tuple[object, ...]]:
    """Each line as dnspython reads it alone, with its own TTL (an IXFR section is a set
    of records, not of RRsets: a deletion may take one record of several)."""
    want = []
    for line in lines:
        name, ttl, _class, rdtype, text = line.split(" ", 4)
        rdata = dns.rdata.from_text("IN", rdtype, text, origin=ORIGIN, relativize=False)
        want.append((dns.name.from_text(name, ORIGIN), rdata.rdtype, int(ttl), rdata))
    return want


def test_ixfr_sections_are_written_from_their_lines():
    """An IXFR's records are written from the journal's lines as an AXFR's are (a 20,000
    record IXFR took 0.5 s through dnspython, one RRset a line), each section its SOA
    first: every record as dnspython reads its line, with its own TTL, the mixed-TTL
    owner, escaped names, rare types and an RRset larger than a message included."""
    old_text = HEAD + EDGES + _bulk(2000)
    big = "".join(f'big 60 IN TXT "{i:05d} {"x" * 200}"\n' for i in range(700))
    new_text = (HEAD + _bulk(2000) + big).replace(" 7 7200 ", " 8 7200 ")
    old_lines, new_lines = _lines(old_text), _lines(new_text)
    deleted = tuple(line for line in old_lines if line not in set(new_lines))
    added = tuple(line for line in new_lines if line not in set(old_lines))
    assert deleted[0].split()[3] == added[0].split()[3] == "SOA"
    version = _version(new_text)
    journal = [JournalEntry(7, 8, deleted, added)]
    sent: dict[str, str] = {}
    messages = list(xfrout.ixfr_messages(_ixfr_query(7), version, journal, None, sent))
    assert sent["as"] == "ixfr" and len(messages) >= 3
    first, gone, came, last = _sections(messages)
    assert len(first) == len(last) == 1 and first == last
    assert [s[0][1] for s in (gone, came)] == [dns.rdatatype.SOA] * 2
    assert [gone[0][3].serial, came[0][3].serial] == [7, 8]
    assert sorted(gone, key=repr) == sorted(_read_each(deleted), key=repr)
    assert sorted(came, key=repr) == sorted(_read_each(added), key=repr)
    assert {"Example.COM.", "e\\.scaped.Example.COM."} <= {r[0].to_text() for r in gone}


def test_an_ixfr_section_with_its_soa_elsewhere():
    """A journal entry's SOA is its first line (the store writes it so); one that is not
    still opens its section."""
    text = HEAD + _bulk(50)
    version = _version(text.replace(" 7 7200 ", " 8 7200 "))
    soa7 = "@ 3600 IN SOA ns1 hostmaster 7 7200 3600 1209600 300"
    soa8 = soa7.replace(" 7 ", " 8 ")
    gone_a = ("h1.dept1 300 IN A 10.0.0.1", "h2.dept2 300 IN A 10.0.0.2")
    journal = [JournalEntry(7, 8, (gone_a[0], soa7, gone_a[1]), (soa8,))]
    messages = list(xfrout.ixfr_messages(_ixfr_query(7), version, journal))
    first, gone, came, last = _sections(messages)
    assert gone[0][3].serial == 7 and len(gone) == 3 and came[0][3].serial == 8
    assert sorted(gone[1:], key=repr) == sorted(_read_each(gone_a), key=repr)


@pytest.mark.parametrize("nsec3", ["", "nsec3", "optout"])
def test_a_signed_zone_is_written_from_its_lines_apex_first(tmp_path, nsec3):
    """A signed zone's RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY and DS are written from
    their lines (a stranger's 20,000 signed records took ~2 s through dnspython, BIND
    0.05 s), every record as dnspython reads the file; the apex right after the SOA, as
    BIND sends it (dnssec-verify warned of an NSEC node twice when it came later)."""
    from test_answer import _sign

    origin = "Example.COM."
    text = HEAD + _bulk(300) + "sub 300 IN NS ns.sub\nns.sub 300 IN A 192.0.2.9\n"
    text += "sub 300 IN DS 12345 13 2 " + "ab" * 32 + "\n"
    signed = _sign(tmp_path, origin, text, nsec3)
    version = _version(signed)
    messages = _check(version, signed)
    records, _ = _received(version)
    apex_types = {r[1] for r in records if r[0] == ORIGIN}
    assert dns.rdatatype.DNSKEY in apex_types and dns.rdatatype.RRSIG in apex_types
    first_other = next(i for i, r in enumerate(records[1:], 1) if r[0] != ORIGIN)
    assert all(r[0] != ORIGIN for r in records[first_other:-1])  # the apex in one run
    assert len(messages) >= 1
    written = {dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY, dns.rdatatype.DS}
    written.add(dns.rdatatype.NSEC3 if nsec3 else dns.rdatatype.NSEC)
    assert written <= {r[1] for r in records}


def test_dnssec_rdata_is_dnspythons():
    """linewire.dnssec_rdata gives dnspython's wire for each DNSSEC type it writes, and
    declines text that is not the plain rendering."""
    from secdns.server import linewire

    origin = dns.name.from_text("example.com.")
    origin_wire = origin.to_wire()
    cases = [
        (
            "RRSIG",
            "A 13 3 300 20500101000000 20240101000000 12345 example.com. "
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
        ),
        ("RRSIG", "NSEC 13 2 3600 20500101000000 20240101000000 1 @ AAEC AwQF"),
        ("RRSIG", "TYPE65280 8 2 60 20500101000000 20240101000000 7 sub AAEC"),
        ("NSEC", "next.Example A NS SOA RRSIG NSEC DNSKEY TYPE65280"),
        ("NSEC", "@ A"),
        ("DNSKEY", "257 3 13 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g ISIjJCUmJygpKg=="),
        ("DS", "12345 13 2 " + "AB" * 16 + " " + "cd" * 16),
        ("CDS", "0 0 0 00"),
        ("NSEC3", "1 1 0 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM A RRSIG"),
        ("NSEC3", "1 0 10 ABCDEF 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM"),
        ("NSEC3PARAM", "1 0 0 -"),
        ("NSEC3PARAM", "1 0 5 aabb"),
    ]
    for mnemonic, text in cases:
        want = dns.rdata.from_text("IN", mnemonic, text, origin=origin).to_wire(origin=origin)
        got = linewire.dnssec_rdata(mnemonic, text, {"": b""}, origin_wire)
        assert got == len(want).to_bytes(2, "big") + want, (mnemonic, text)
    for mnemonic, text in [
        ("RRSIG", "A 13 3 300 1700000000 1600000000 12345 example.com. AAEC"),  # epoch times
        ("NSEC", "a\\.b A"),
        ("DNSKEY", "257 3 13 not-base64!"),
    ]:
        assert linewire.dnssec_rdata(mnemonic, text, {"": b""}, origin_wire) is None
