"""In-memory zone versions: fast rdata building and copy-on-write changes."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from xfrwire import records

from secdns import zonefile
from secdns.errors import IxfrNotApplicable
from secdns.masterfile import read_master
from secdns.server.zone import ZoneVersion, fast_rdata, line_fields, parse_node

ZONES = Path(__file__).parent / "zones"
EXTRA = """
$ORIGIN example.com.
@ 3600 IN SOA ns1 host 1 7200 900 1209600 300
t1 60 IN TXT "plain words" "two" ""
t2 60 IN TXT "with \\"quote\\""
t3 60 IN TXT "back\\\\slash" "semi;colon"
t4 60 IN TXT "caf\\195\\169"
m1 60 IN MX 0 .
m2 60 IN MX 10 Mail.Example.NET.
c1 60 IN CNAME *.wild
p1 60 IN PTR host\\.dotted.example.com.
a6 60 IN AAAA ::ffff:192.0.2.1
"""


def canonical(text: str, origin: str) -> list[str]:
    return zonefile.canonical_lines(read_master(text, dns.name.from_text(origin)).records)


@pytest.mark.parametrize(
    "path", sorted(ZONES.glob("*.zone")) + sorted((ZONES / "answer").glob("*.zone"))
)
def test_fast_rdata_equals_dnspython(path):
    zone = read_master(path.read_text(), None, filename=str(path))  # each file names its origin
    origin = zone.origin
    lines = zonefile.canonical_lines(zone.records)
    lines += canonical(EXTRA, "example.com.") if origin.to_text() == "example.com." else []
    checked = 0
    for line in lines:
        _owner, _ttl, rtype, text = line_fields(line)
        rdtype = dns.rdatatype.from_text(rtype)
        fast = fast_rdata(rdtype, text, origin)
        if fast is None:
            continue
        slow = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=origin, relativize=False)
        assert fast == slow and hash(fast) == hash(slow), line
        assert fast.to_wire() == slow.to_wire(), line
        assert fast.to_text() == slow.to_text(), line
        checked += 1
    assert checked


def test_node_case_and_ttls():
    origin = dns.name.from_text("example.com.")
    node = parse_node(("UPPER 60 IN A 192.0.2.1", "UPPER 30 IN A 192.0.2.2"), origin)
    rrset = node.get(dns.rdatatype.A)
    assert node.name.to_text() == "UPPER.example.com." and rrset.ttl == 30 and len(rrset) == 2


def test_versions_are_independent_and_cheap():
    origin = dns.name.from_text("example.com.")
    text = "@ 3600 IN SOA ns1 host 1 7200 900 1209600 300\n@ 3600 IN NS ns1\n" + "".join(
        f"h{i} 60 IN A 192.0.2.{i % 250}\n" for i in range(5000)
    )
    base = ZoneVersion.from_lines(origin, zonefile.canonical_lines(records(text, "example.com.")))
    new = base.apply([(["h1 60 IN A 192.0.2.1"], ["x.y.z 60 IN A 192.0.2.7"])], 2)
    shared = sum(a is b for a, b in zip(base.buckets, new.buckets, strict=True))
    # only the buckets of h1, x.y.z, y.z, z and the apex (its count of names below) copied
    assert shared >= len(base.buckets) - 5
    assert base.exists("h1.example.com.") and not new.exists("h1.example.com.")
    assert new.exists("y.z.example.com.") and not base.exists("y.z.example.com.")
    assert new.records == base.records and new.names == base.names
    with pytest.raises(IxfrNotApplicable, match="does not have"):
        new.apply([(["h1 60 IN A 192.0.2.1"], [])], 3)


@pytest.mark.parametrize("nsec3", ["", "nsec3"])
def test_fast_dnssec_equals_dnspython(tmp_path, nsec3):
    """RRSIG and NSEC built from a signed zone's canonical lines without dnspython's
    tokenizer (a DO answer's first ask parses several: ~550 us, now ~330) equal
    dnspython's record by record: equality, hash (an RRset dedupes by it), wire,
    canonical wire and text, in a zone spelt in mixed case."""
    from test_answer import _sign

    from secdns.server.zone import fast_dnssec

    text = (ZONES / "answer" / "answer.example.zone").read_text()
    signed = _sign(tmp_path, "Answer.Example.", text, nsec3)
    origin = dns.name.from_text("Answer.Example.")
    lines = zonefile.canonical_lines(read_master(signed, origin).records)
    checked = 0
    for line in lines:
        _owner, _ttl, rtype, rdata = line_fields(line)
        rdtype = dns.rdatatype.from_text(rtype)
        fast = fast_dnssec(rdtype, rdata, origin)
        if fast is None:
            continue
        slow = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, rdata, origin=origin, relativize=False
        )
        assert fast == slow and hash(fast) == hash(slow), line
        assert fast.to_wire() == slow.to_wire(), line
        assert fast.to_digestable(origin) == slow.to_digestable(origin), line
        assert fast.to_text() == slow.to_text(), line
        checked += 1
    assert checked > 20
    assert (
        fast_dnssec(dns.rdatatype.RRSIG, "A 13 2 60 1700000000 1600000000 1 @ AAEC", origin) is None
    )
