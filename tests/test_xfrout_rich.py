"""AXFR out of a zone with every record type the test zones use, from the prepared wire
pieces (secdns.server.xfrout): the records received equal the zone's, with and without
TSIG, read by dnspython and by kdig."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import pytest
from servers import TsigKey
from serving import ServerThread, write_config

ZONE = "example.com"
BASE = (Path(__file__).parent / "zones" / "example.com.zone").read_text()
EXTRA = """
rich 300 IN PTR host.example.net.
rich 300 IN RP hostmaster.example.com. info.example.com.
rich 300 IN SPF "v=spf1 -all"
rich 300 IN TXT "two" "strings here"
rich 300 IN TXT "quote \\" and \\\\ backslash"
rich 300 IN MX 10 mail.example.com.
rich 300 IN MX 20 MAIL.Example.COM.
rich 300 IN SRV 0 5 5060 sip.example.com.
rich 300 IN NSEC zz.example.com. A TXT RRSIG NSEC
rich 300 IN RRSIG A 13 3 300 20300101000000 20200101000000 12345 example.com. \
 dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgcGFyc2VzIGZpbmUgYXQgYWxsIQ==
rich 300 IN A 192.0.2.77
Mixed.Case 300 IN A 192.0.2.78
esc\\.aped 300 IN A 192.0.2.79
*.wild 300 IN A 192.0.2.80
alias2 300 IN CNAME elsewhere.example.net.
deep.a.b.c.d 300 IN NS ns.outside.example.
deep.a.b.c.d 300 IN NS ns.deep.a.b.c.d
ns.deep.a.b.c.d 300 IN A 192.0.2.81
@ 300 IN DNSKEY 257 3 13 \
 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
"""
BIG = "".join(f'big 60 IN TXT "{i:05d} {"x" * 90}"\n' for i in range(1200))  # > 64 KiB


def _zone_text() -> str:
    return BASE + EXTRA.replace("\\\n", "") + BIG


def _records(messages: list[dns.message.Message]) -> set[tuple[object, ...]]:
    records = set()
    for message in messages:
        for rrset in message.answer:
            for rdata in rrset:
                records.add((rrset.name, rrset.rdtype, rrset.ttl, rdata))
    return records


@pytest.fixture
def rich_server(tmp_path):
    key = TsigKey.generate("rich-xfr")
    zone_file = tmp_path / "rich.zone"
    zone_file.write_text(_zone_text())
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[
            {
                "name": ZONE,
                "file": str(zone_file),
                "allow_transfer": ["127.0.0.1", f"key:{key.name}"],
            }
        ],
        keys={key.name: {"algorithm": key.algorithm, "secret": key.secret}},
    )
    server = ServerThread(config)
    yield server, key
    server.stop()


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "tsig"])
def test_axfr_of_a_rich_zone_equals_the_zone(rich_server, signed):
    server, key = rich_server
    zone = dns.zone.from_text(_zone_text(), ZONE, relativize=False)
    want = {
        (name, rdataset.rdtype, rdataset.ttl, rdata)
        for name, rdataset in zone.iterate_rdatasets()
        for rdata in rdataset
    }
    assert len({record[1] for record in want}) >= 20
    tsig = {"keyring": key.keyring, "keyname": key.name} if signed else {}
    messages = list(dns.query.xfr("127.0.0.1", ZONE, port=server.port, relativize=False, **tsig))
    assert len(messages) >= 2  # the big RRset alone is larger than one message
    assert all(m.had_tsig for m in messages) == signed
    answers = [rrset for m in messages for rrset in m.answer]
    assert answers[0].rdtype == answers[-1].rdtype == dns.rdatatype.SOA
    assert _records(messages) == want
    names = {name.to_text() for name, _t, _ttl, _rd in want}
    assert "Mixed.Case.example.com." in names and "esc\\.aped.example.com." in names


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "tsig"])
def test_kdig_reads_the_rich_axfr(rich_server, signed):
    server, key = rich_server
    command = ["kdig", "@127.0.0.1", "-p", str(server.port), "+noall", "+answer"]
    if signed:
        command += ["-y", f"{key.algorithm}:{key.name}:{key.secret}"]
    done = subprocess.run(
        [*command, f"{ZONE}.", "AXFR"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "TSIG" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
    lines = [line for line in done.stdout.splitlines() if line and not line.startswith(";")]
    zone = dns.zone.from_text(_zone_text(), ZONE, relativize=False)
    want = sum(len(rdataset) for _name, rdataset in zone.iterate_rdatasets())
    assert len(lines) == want + 1  # the SOA twice
    got = dns.zone.from_text("\n".join(lines[:-1]), ZONE, relativize=False, check_origin=False)
    assert got == zone
