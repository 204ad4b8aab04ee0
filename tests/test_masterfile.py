"""Tests for secdns.masterfile: equivalence with dnspython, BIND and the wire decoder;
syntax errors with their line numbers; $INCLUDE and $GENERATE."""

from __future__ import annotations

import collections
import io
import os
import random
import re
import struct
import subprocess
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from faithful import faithful_text
from servers import need_binary

from secdns import masterfile, wire, zonefile
from secdns.errors import ZoneFileError
from secdns.masterfile import generate, lexer, read_master, reader
from secdns.masterfile import names as names_module
from secdns.server import load

ZONES = Path(__file__).resolve().parent / "zones"
CORPUS = ZONES / "masterfile"
EXAMPLE_COM = dns.name.from_text("example.com.")
EXAMPLE_ORG = dns.name.from_text("example.org.")

# (file, origin): zone files that BIND and dnspython both load.
SHARED = [
    (ZONES / "example.com.zone", EXAMPLE_COM),
    (CORPUS / "syntax.zone", EXAMPLE_ORG),
]
# ... and files whose reading follows BIND where dnspython differs.
BIND_ONLY = [(CORPUS / "bind-semantics.zone", EXAMPLE_COM)]

Row = tuple[tuple[bytes, ...], str, int, int, int, str, "int | None"]


def _rows(records: list[wire.Record]) -> list[Row]:
    return [(r.key, r.owner, r.ttl, r.rdclass, r.rdtype, r.rdata, r.serial) for r in records]


def _read(path: Path, origin: dns.name.Name | None) -> masterfile.MasterZone:
    return read_master(path.read_text(), origin, filename=str(path))


def _okey(origin: dns.name.Name) -> tuple[bytes, ...]:
    return tuple(label.lower() for label in reversed(origin.labels[:-1]))


def _in_zone(records: list[wire.Record], origin: dns.name.Name) -> list[wire.Record]:
    okey = _okey(origin)
    return [r for r in records if r.key[: len(okey)] == okey]


def _error(text: str, **kwargs: object) -> ZoneFileError:
    kwargs.setdefault("filename", "zone.db")
    with pytest.raises(ZoneFileError) as info:
        read_master(text, kwargs.pop("origin", EXAMPLE_COM), **kwargs)  # type: ignore[arg-type]
    return info.value


# --- equivalence with dnspython -------------------------------------------


def _dnspython_rrsets(path: Path, origin: dns.name.Name) -> dict[tuple, tuple[int, set[str]]]:
    """What dns.zone makes of a file: {(owner key, type): (TTL, {rdata})}."""
    zone = dns.zone.from_text(
        path.read_text(),
        origin,
        relativize=False,
        check_origin=False,
        filename=path.name,
        allow_include=True,
    )
    out = {}
    for name, node in zone.nodes.items():
        for rdataset in node:
            out[(_okey(name), rdataset.rdtype)] = (
                rdataset.ttl,
                {faithful_text(rd, origin) for rd in rdataset},
            )
    return out


def _as_rrsets(records: list[wire.Record]) -> dict[tuple, tuple[int, set[str]]]:
    """Our records grouped as dns.zone groups them: the lowest TTL, rdata as a set."""
    out: dict[tuple, tuple[int, set[str]]] = {}
    for rec in records:
        ttl, rdatas = out.get((rec.key, rec.rdtype), (rec.ttl, set()))
        out[(rec.key, rec.rdtype)] = (min(ttl, rec.ttl), rdatas | {rec.rdata})
    return out


@pytest.mark.parametrize(("path", "origin"), SHARED, ids=lambda v: getattr(v, "name", None))
def test_shared_corpus_matches_dnspython(
    path: Path, origin: dns.name.Name, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(path.parent)  # dnspython opens $INCLUDE files relative to the cwd
    ours = _in_zone(_read(path, origin).records, origin)
    assert _as_rrsets(ours) == _dnspython_rrsets(path, origin)


def test_shared_corpus_owner_text_and_rdata_are_dnspython_renderings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Record by record: owner is name.relativize(origin).to_text(), nothing merged."""
    path = CORPUS / "syntax.zone"
    monkeypatch.chdir(path.parent)
    zone = dns.zone.from_text(
        path.read_text(), EXAMPLE_ORG, relativize=False, check_origin=False, allow_include=True
    )
    owners = {_okey(name): name.relativize(EXAMPLE_ORG).to_text() for name in zone.nodes}
    records = _read(path, EXAMPLE_ORG).records
    assert len(records) == sum(len(rds) for node in zone.nodes.values() for rds in node)
    for rec in records:
        assert rec.owner == owners[rec.key], rec
        assert rec.rdclass == dns.rdataclass.IN
        assert (rec.serial is not None) == (rec.rdtype == dns.rdatatype.SOA)


def test_bind_semantics_differ_from_dnspython_as_documented(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = CORPUS / "bind-semantics.zone"
    monkeypatch.chdir(path.parent)
    ours = {(r.owner, r.rdtype, r.rdata): r.ttl for r in _read(path, EXAMPLE_COM).records}
    a, txt, mx, ptr = (dns.rdatatype.A, dns.rdatatype.TXT, dns.rdatatype.MX, dns.rdatatype.PTR)
    # The SOA MINIMUM became the default, so "a" does not take the previous 60.
    assert ours["@", dns.rdatatype.SOA, "ns hostmaster 1 7200 900 1209600 300"] == 300
    assert ours["a", a, "192.0.2.2"] == 300
    assert ours["big", a, "192.0.2.3"] == 0  # above 2**31 - 1
    assert ours["big", txt, '"from the include"'] == 300  # blank owner: the includer's
    assert ours["after", a, "192.0.2.5"] == 99  # the included $TTL is still in force
    assert ours["after", a, "10.9.9.9"] == 99  # $GENERATE did not change the owner
    assert ours["mx1", mx, "10 mail"] == 600  # class before TTL, quoted rdata
    assert ours["txt2", txt, '"x2"'] == 99  # the rest of the generated rdata is a comment
    assert ours["8.0.rev", ptr, "host8"] == 60  # ${0,3,N}
    assert ours["caf\\195\\169", a, "192.0.2.6"] == 99  # UTF-8 octets, not IDNA

    # dnspython reads neither "IN 600" nor quoted rdata in $GENERATE: leave those out.
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.startswith("$GENERATE")
    )
    dnspython = dns.zone.from_text(
        text, EXAMPLE_COM, relativize=False, check_origin=False, allow_include=True
    )

    def ttl(owner: str, rdtype: int) -> int:
        return dnspython.find_rdataset(dns.name.from_text(owner, EXAMPLE_COM), rdtype).ttl

    assert ttl("a", a) == 60  # RFC 2308 mode: the previous TTL wins over the SOA's
    # The include's $TTL was undone, and the previous TTL beats the SOA's default.
    assert ttl("after", a) == 2147483648
    assert ttl("big", a) == 2147483648


# --- equivalence with the wire decoder ------------------------------------

HEX32 = "0123456789abcdef" * 4
B64 = (
    "AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjFFVQUTf6v"
    "58fLjwBd0YI0EzrAcQqBGCzh/RStIoO8g0NfnfL2MTJRkxoXbfDaUeVPQuYEhg37"
)

# (owner, type, rdata as written in a file). Many are written in a form that
# is not the canonical rendering, to exercise normalisation.
RECORDS: list[tuple[str, str, str]] = [
    ("@", "SOA", "ns1 hostmaster ( 2024010101 2h 1h 2w 5m )"),
    ("@", "NS", "ns1"),
    ("@", "NS", "NS2.EXAMPLE.COM."),
    ("@", "NS", "ns.other.net."),
    ("@", "A", "192.0.2.1"),
    ("host1", "A", "0.0.0.0"),
    ("host1", "A", "255.255.255.255"),
    ("host1", "AAAA", "::"),
    ("host1", "AAAA", "0::1"),
    ("host1", "AAAA", "::FFFF:1.2.3.4"),
    ("host1", "AAAA", "::1.2.3.4"),
    ("host1", "AAAA", "2001:0DB8:0000:0000:0000:0000:0000:0001"),
    ("host1", "AAAA", "2001:db8::"),
    ("host1", "AAAA", "1:0:0:2:0:0:0:3"),
    ("host1", "AAAA", "1:0:0:2:0:0:3:4"),
    ("host1", "AAAA", "1::2:3:4:5:6:7"),
    ("host1", "AAAA", "fe80:0::1:0:0:1"),
    ("host1", "AAAA", "::ffff:0:0"),
    ("host1", "AAAA", "0:0:0:0:0:1:0:0"),
    ("host1", "A", r"\# 4 C0000202"),
    ("WWW.Host2", "CNAME", "host1"),
    ("alias", "CNAME", "elsewhere.org."),
    ("up", "CNAME", "@"),
    ("sub", "DNAME", "other.net."),
    ("sub2", "DNAME", "deep.sub.example.com."),
    ("1.2", "PTR", "host1.example.com."),
    ("@", "MX", "10 mail"),
    ("@", "MX", "020 mx.other.net."),
    ("@", "MX", "30 MAIL.Example.COM."),
    ("nomail", "MX", "0 ."),
    ("_sip._tcp", "SRV", "0 5 5060 sip"),
    ("_sip._udp", "SRV", "10 60 05060 ."),
    ("txt", "TXT", '"hello world"'),
    ("txt", "TXT", "unquoted words ~ok!"),
    ("txt", "TXT", r'"with \"quote\" and \\ backslash" "" "semi;colon"'),
    ("txt", "TXT", r'"\000\001\031\127\128\255" "tab\009" "\065BC"'),
    ("txt", "TXT", '"' + "x" * 255 + '" "second"'),
    ("txt", "TXT", '"(parens) @at $dollar"'),
    ("txt", "TXT", '"café"'),
    ("txt", "TXT", 'a"b"c'),
    ("txt", "SPF", '"v=spf1 -all"'),
    ("naptr", "NAPTR", r'100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .'),
    ("@", "CAA", '0 issue "letsencrypt.org"'),
    ("_443._tcp", "TLSA", "3 1 1 " + HEX32),
    ("host1", "SSHFP", "1 1 " + HEX32[:40].upper()),
    ("@", "HTTPS", '1 . alpn="h2,h3" ipv4hint=192.0.2.1'),
    ("svc", "SVCB", "1 svc.example.com. port=8443"),
    ("loc", "LOC", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"),
    ("hinfo", "HINFO", '"PC" Linux'),
    ("sub", "DS", "12345 13 2 ( " + HEX32[:32] + " " + HEX32[32:] + " )"),
    ("@", "DNSKEY", "257 3 13 ( " + B64[:64] + " " + B64[64:] + " )"),
    ("@", "NSEC", "host1.example.com. A NS SOA MX TXT AAAA RRSIG NSEC DNSKEY"),
    ("unknown", "TYPE65280", r"\# 4 0a0b0c0d"),
    ("unknown", "type65280", r"\# 0"),
    ("rp", "RP", "admin.example.com. txt.other.net."),
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
    ("a-b_c/d", "NS", "x-y_z"),
    ("a@b", "CNAME", "x$y.other."),
    ("@", "PTR", "$"),
]


def _master_text(style: str) -> str:
    """RECORDS as a master file, each line's TTL being 300 + its index."""
    lines = ["$ORIGIN example.com."]
    for index, (owner, rdtype, rdata) in enumerate(RECORDS):
        ttl = 300 + index
        if style == "plain":
            lines.append(f"{owner} {ttl} IN {rdtype} {rdata}")
        elif style == "parens":  # every record through the general tokenizer
            lines.append(f"{owner} ( {ttl} ; a comment\n IN {rdtype}\n {rdata} )")
        elif style == "reordered":  # class before TTL, tabs, trailing comment
            lines.append(f"{owner}\tIN\t{ttl}\t{rdtype}\t{rdata} ; comment")
    return "\n".join(lines) + "\n"


def _uncompressed_response(rrsets: list[dns.rrset.RRset]) -> bytes:
    """An AXFR response without name compression, which would change names' case."""
    out = io.BytesIO()
    out.write(struct.pack("!HHHHHH", 1, 0x8400, 1, len(rrsets), 0, 0))
    EXAMPLE_COM.to_wire(out)
    out.write(struct.pack("!HH", dns.rdatatype.AXFR, dns.rdataclass.IN))
    for rrset in rrsets:
        rrset.to_wire(out)
    return out.getvalue()


def _wire_rows(origin: dns.name.Name) -> list[Row]:
    rrsets = []
    for index, (owner, rdtype, text) in enumerate(RECORDS):
        name = dns.name.from_text(owner, EXAMPLE_COM)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, EXAMPLE_COM, relativize=False)
        rrsets.append(dns.rrset.from_rdata(name, 300 + index, rdata))
    return _rows(wire.parse_message(_uncompressed_response(rrsets), origin).records)


@pytest.mark.parametrize("style", ["plain", "parens", "reordered"])
@pytest.mark.parametrize(
    "origin",
    [EXAMPLE_COM, dns.name.from_text("EXAMPLE.Com."), dns.name.root],
    ids=["origin", "origin-other-case", "root"],
)
def test_records_equal_the_wire_decoders(style: str, origin: dns.name.Name) -> None:
    ours = read_master(_master_text(style), origin).records
    wire_rows = _wire_rows(origin)
    # The wire decoder sets serial from the SOA too; ours must agree everywhere.
    assert _rows(ours) == wire_rows


# --- equivalence with BIND --------------------------------------------------


def _named_checkzone_dump(path: Path, origin: dns.name.Name) -> str:
    checkzone = need_binary("named-checkzone")
    done = subprocess.run(
        [checkzone, "-i", "none", "-k", "ignore", "-D", "-o", "-", origin.to_text(), path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


@pytest.mark.parametrize(
    ("path", "origin"), SHARED + BIND_ONLY, ids=lambda v: getattr(v, "name", None)
)
def test_corpus_matches_named_checkzone(path: Path, origin: dns.name.Name) -> None:
    """The same record set as BIND's canonical dump (read back with read_master)."""
    dump = read_master(_named_checkzone_dump(path, origin), None, filename="<dump>")
    assert dump.origin == origin
    ours = _in_zone(_read(path, origin).records, origin)  # BIND drops out-of-zone data

    def rows(records: list[wire.Record]) -> set[tuple]:
        return {(r.key, r.ttl, r.rdclass, r.rdtype, r.rdata) for r in records}

    assert rows(ours) == rows(dump.records)
    assert len(ours) == len(dump.records)


# --- round trip through the canonical format --------------------------------


@pytest.mark.parametrize(
    ("path", "origin"), SHARED + BIND_ONLY, ids=lambda v: getattr(v, "name", None)
)
def test_canonical_render_reads_back_the_same_records(path: Path, origin: dns.name.Name) -> None:
    records = _read(path, origin).records
    lines = zonefile.canonical_lines(list(records))
    text = zonefile.render(origin, 1, 3600, lines)
    again = read_master(text, origin).records
    expected = sorted(set(_rows(records)), key=lambda row: (row[0], row[4] != 6, row[4], row[5]))
    assert sorted(_rows(again), key=lambda row: (row[0], row[4] != 6, row[4], row[5])) == expected
    assert [wire.record_line(rec) for rec in again] == lines


def test_canonical_format_is_read_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No line of a canonical file without quotes needs the general tokenizer."""
    text = zonefile.render(
        EXAMPLE_COM,
        1,
        3600,
        [
            "@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300",
            "@ 3600 IN NS ns1",
            "@ 3600 IN MX 10 mail",
            "ns1 3600 IN A 192.0.2.1",
            "ns1 3600 IN AAAA 2001:db8::1",
            "www 60 IN CNAME ns1",
            "_s._tcp 60 IN SRV 0 1 2 ns1",
        ],
    )

    def refuse(*args: object) -> None:
        raise AssertionError("the general tokenizer was used")

    monkeypatch.setattr(lexer, "logical_tokens", refuse)
    state = reader.Reader(EXAMPLE_COM, EXAMPLE_COM, None, None, None)
    state.read_top(text, masterfile.STDIN)
    assert [wire.record_line(rec) for rec in state.records] == text.splitlines()[3:]


# --- owners, origins, TTLs and classes --------------------------------------


def test_records_keep_file_order_duplicates_and_owner_case() -> None:
    zone = read_master(
        "$TTL 60\nWWW A 192.0.2.1\nwww A 192.0.2.1\nother.net. A 192.0.2.2\nExample.COM. TXT x\n",
        EXAMPLE_COM,
    )
    assert [(r.owner, r.key, r.rdata) for r in zone.records] == [
        ("WWW", (b"com", b"example", b"www"), "192.0.2.1"),
        ("www", (b"com", b"example", b"www"), "192.0.2.1"),
        ("other.net.", (b"net", b"other"), "192.0.2.2"),
        ("@", (b"com", b"example"), '"x"'),
    ]


def test_origin_changes_resolve_names_but_render_against_the_zone_origin() -> None:
    zone = read_master(
        "$TTL 60\n$ORIGIN sub.example.com.\nhost CNAME target\n  MX 10 @\n"
        "$ORIGIN other.net.\nx CNAME y\n$ORIGIN example.com.\n  A 192.0.2.1\n",
        EXAMPLE_COM,
    )
    assert [(r.owner, r.rdata) for r in zone.records] == [
        ("host.sub", "target.sub"),
        ("host.sub", "10 sub"),
        ("x.other.net.", "y.other.net."),
        ("x.other.net.", "192.0.2.1"),
    ]  # a blank owner outlives $ORIGIN, as in BIND


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("$ORIGIN Example.COM.\n@ 60 IN SOA ns hm 1 2 3 4 5\n", "Example.COM."),
        ("example.com. 60 IN SOA ns hm 1 2 3 4 5\nwww 60 IN A 192.0.2.1\n", "example.com."),
        ("$ORIGIN .\n$TTL 60\nexample.com IN SOA ns hm 1 2 3 4 5\n", "example.com."),
        (
            "$TTL 60\nfoo.example.net. A 192.0.2.1\nexample.net. SOA ns hm 1 2 3 4 5\n",
            "example.net.",
        ),
        ("$ORIGIN .\n$ORIGIN example.net\n@ 60 SOA ns hm 1 2 3 4 5\n", "example.net."),
        ("$ORIGIN .\n$TTL 60\n. SOA a.root. hm 1 2 3 4 5\n", "."),
    ],
    ids=[
        "first-origin",
        "soa-owner",
        "origin-root-then-soa",
        "soa-later",
        "relative-origin",
        "root-zone",
    ],
)
def test_origin_is_discovered_when_not_given(text: str, origin: str) -> None:
    zone = read_master(text)
    assert zone.origin == dns.name.from_text(origin)
    assert zone.origin.to_text() == origin  # the case as written
    assert zone.records == read_master(text, zone.origin).records


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$TTL 60\nwww A 192.0.2.1\n", "has no $ORIGIN and no SOA"),
        ("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n", "the SOA owner is relative"),
        ("$ORIGIN sub\n", "relative $ORIGIN sub but the origin is unknown"),
    ],
)
def test_origin_that_cannot_be_discovered_is_an_error(text: str, message: str) -> None:
    with pytest.raises(ZoneFileError, match=re.escape(message)):
        read_master(text)


def _ttls(text: str, **kwargs: object) -> list[int]:
    return [r.ttl for r in read_master(text, EXAMPLE_COM, **kwargs).records]  # type: ignore


@pytest.mark.parametrize(
    ("text", "ttls"),
    [
        (
            "$TTL 1h30m\n@ SOA ns hm 1 2 3 4 5\na A 192.0.2.1\nb 60 A 192.0.2.2\nc A 192.0.2.3\n",
            [5400, 5400, 60, 5400],
        ),
        ("@ SOA ns hm 1 2 3 4 300\na 60 A 192.0.2.1\nb A 192.0.2.2\n", [300, 60, 300]),
        (
            "@ 600 SOA ns hm 1 2 3 4 300\na A 192.0.2.1\nb 60 A 192.0.2.2\nc A 192.0.2.3\n",
            [600, 600, 60, 60],
        ),
        (
            "a 1w2d3h4m5s A 192.0.2.1\nb 1W A 192.0.2.1\nc 0 A 192.0.2.1\n"
            "d 2147483647 A 192.0.2.1\ne 2147483648 A 192.0.2.1\nf 4294967295 A 192.0.2.1\n",
            [788645, 604800, 0, 2147483647, 0, 0],
        ),
        ("$TTL 3000000000\na A 192.0.2.1\n", [0]),
        ("$GENERATE 1-2 g$ 77 A 192.0.2.$\nb A 192.0.2.9\n", [77, 77, 77]),
    ],
    ids=[
        "$TTL",
        "soa-minimum-default",
        "previous-ttl",
        "units-and-limits",
        "big-$TTL",
        "generate-sets-previous",
    ],
)
def test_ttls_as_bind_assigns_them(text: str, ttls: list[int]) -> None:
    assert _ttls(text) == ttls


def test_default_ttl_acts_as_an_initial_ttl_directive() -> None:
    assert _ttls("a A 192.0.2.1\n$TTL 5\nb A 192.0.2.2\n", default_ttl=42) == [42, 5]


@pytest.mark.parametrize("token", ["1h30", "1h0", "h1", "4294967296", "1x"])
def test_tokens_that_are_not_ttls_are_unknown_types(token: str) -> None:
    err = _error(f"$TTL 60\nwww {token} A 192.0.2.1\n")
    assert f"unknown type {token!r}" in str(err)
    assert err.line == 2


def test_chaos_class_zone_keeps_its_class() -> None:
    text = (
        "$TTL 0\n@ CH SOA @ hostmaster 1 2 3 4 5\n  CH NS @\nversion.bind. TXT 9.18\n  CH A @ 177\n"
    )
    records = read_master(text, dns.name.from_text("bind.")).records
    assert {r.rdclass for r in records} == {dns.rdataclass.CH}
    assert [(r.owner, r.rdata) for r in records][-2:] == [
        ("version", '"9.18"'),
        ("version", "@ 177"),
    ]
    assert wire.record_line(records[-1]) == "version 0 CH A @ 177"


def test_max_records() -> None:
    text = "$TTL 1\n" + "".join(f"h{i} A 192.0.2.1\n" for i in range(5))
    assert len(read_master(text, EXAMPLE_COM, max_records=5).records) == 5
    err = _error(text, max_records=4)
    assert "more than 4 records" in str(err) and err.line == 6
    err = _error("$TTL 1\n$GENERATE 1-10 h$ A 192.0.2.1\n", max_records=3)
    assert "more than 3 records" in str(err) and err.line == 2


# --- rdata: the direct path agrees with dnspython ---------------------------

RDATA_SAMPLES = {
    "A": ["192.0.2.1", "0.0.0.0", "255.255.255.255"],
    "AAAA": [
        "::",
        "::1",
        "1::",
        "::ffff:1.2.3.4",
        "::1.2.3.4",
        "0:0:0:0:0:ffff:102:304",
        "2001:DB8::A",
        "2001:0db8:0:0:1:0:0:1",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1:0:0:2:0:0:3:4",
        "fe80::0:1",
        "0:0:0:0:0:1:0:0",
        "64:ff9b::192.0.2.33",
        "1:2:3:4:5:6:1.2.3.4",
        "::0:0:1",
    ],
    "CNAME": [
        "www",
        "www.example.com.",
        "WWW.EXAMPLE.COM.",
        "example.com.",
        "@",
        ".",
        "other.net.",
        "a.b.c",
        "*.wild",
        "x-y_z",
        "com.",
    ],
    "MX": ["10 mail", "0 .", "65535 mail.other.net.", "007 @"],
    "SRV": ["0 0 0 .", "1 2 3 target", "65535 65535 65535 t.example.com."],
    "TXT": [
        '"a"',
        "a",
        '"" ""',
        '"a b" c "d;e"',
        '"~!#%&*()[]{}<>?/|^`\'=+-_.,:@$"',
        "x" * 255,
        '"' + "y" * 255 + '"',
    ],
}


@pytest.mark.parametrize(
    ("rdtype", "text"), [(t, v) for t, values in RDATA_SAMPLES.items() for v in values]
)
def test_direct_rendering_equals_dnspythons(rdtype: str, text: str) -> None:
    (record,) = read_master(f"$TTL 1\nx {rdtype} {text}\n", EXAMPLE_COM).records
    expected = dns.rdata.from_text("IN", rdtype, text, EXAMPLE_COM, relativize=False)
    assert record.rdata == faithful_text(expected, EXAMPLE_COM)


@pytest.mark.parametrize(
    ("rdtype", "text"),
    [
        ("A", "01.2.3.4"),
        ("A", "1.2.3"),
        ("A", "1.2.3.256"),
        ("A", "1.2.3.4.5"),
        ("AAAA", "1:2:3:4:5:6:7:8:9"),
        ("AAAA", "12345::"),
        ("AAAA", "1.2.3.4"),
        ("AAAA", ":1::"),
        ("AAAA", "::01.2.3.4"),
        ("MX", "65536 mail"),
        ("MX", "x mail"),
        ("MX", "10"),
        ("SRV", "1 2 70000 t"),
        ("CNAME", "a..b"),
        ("CNAME", "a b"),
        ("TXT", "x" * 256),
        ("CNAME", "x" * 64),
        ("NS", ".".join(["abcdefghi"] * 26)),
    ],
)
def test_bad_rdata_is_reported_with_dnspythons_message(rdtype: str, text: str) -> None:
    err = _error(f"$TTL 1\n\nx {rdtype} {text}\n")
    assert err.line == 3
    shown = text if len(text) <= 80 else text[:77] + "..."
    assert f"bad {rdtype} rdata {shown!r}: " in str(err)  # (the text, as named-checkzone)
    with pytest.raises(Exception) as dnspython:  # noqa: B017 (dnspython raises several types)
        dns.rdata.from_text("IN", rdtype, text, EXAMPLE_COM)
    assert str(dnspython.value) in str(err)


# --- syntax errors and their line numbers -----------------------------------

ERRORS = [
    # (text, line, words in the message)
    ("$TTL 60\n$TTL 1h30\n", 2, "bad $TTL value '1h30'"),
    ("$TTL 60\n\nwww IN FOO 192.0.2.1\n", 3, "unknown type 'FOO'"),
    ("$TTL 60\nwww A 192.0.2.999\n", 2, "bad A rdata"),
    ("$TTL 60\nwww MX mail\n", 2, "bad MX rdata"),
    ("$TTL 60\nwww ANY 192.0.2.1\n", 2, "type ANY cannot appear in a zone file"),
    ("$TTL 60\nwww\n", 2, "incomplete record: no type"),
    ("$TTL 60\nwww A\n", 2, "bad A rdata"),
    ("$TTL 60\n@ SOA ns hm (\n 1 2 3\n 4 5\n", 2, "unbalanced parentheses"),
    ("$TTL 60\na A 192.0.2.1\n  )\n", 3, "unbalanced parentheses"),
    ('$TTL 60\n@ TXT ( "ok"\n "not closed )\n', 3, "unterminated quoted string"),
    ('$TTL 60\ntxt TXT "abc\n', 2, "unterminated quoted string"),
    ("$TTL 60\na A 192.0.2.1\n  TXT x\\\n", 3, "backslash at the end of a line"),
    ("$TTL 60\n$FOO bar\n", 2, "unknown directive $FOO"),
    ("\n  A 192.0.2.1\n", 2, "no owner name"),
    ("www A 192.0.2.1\n", 1, "no TTL specified"),
    ("$TTL 60\na A 192.0.2.1\nb CH TXT x\n", 3, "class CH differs from the zone's class IN"),
    ("$TTL 60\na..b A 192.0.2.1\n", 2, "bad name 'a..b'"),
    ('$TTL 60\n"quoted" A 192.0.2.1\n', 2, "a quoted string cannot be a name"),
    ("$TTL 60\n" + "x" * 64 + " A 192.0.2.1\n", 2, "a label is too long"),
    ("$ORIGIN\n", 1, "$ORIGIN needs exactly one name"),
    ("$TTL 60\n$TTL\n", 2, "$TTL needs exactly one TTL"),
    ("$TTL 60\nmx ( 60\n IN MX\n  ten mail )\n", 2, "bad MX rdata"),
    ("$TTL 60\na NONE A 192.0.2.1\n", 2, "type NONE cannot appear in a zone file"),
    ("$TTL 60\na IN IN A 192.0.2.1\n", 2, "expected a type, got the class IN"),
    ("$TTL 60\n$GENERATE 5-1 h$ A 192.0.2.1\n", 2, "bad $GENERATE range '5-1'"),
    ("$TTL 60\n$GENERATE 1-2 h$ A\n", 2, "$GENERATE needs a range, an owner, a type and rdata"),
    ("$TTL 60\n$GENERATE 1-2 h$ MX 10 mail\n", 2, "extra tokens after the $GENERATE rdata"),
    ("$TTL 60\n$GENERATE 1-2 h${1,2,q} A 192.0.2.1\n", 2, "bad $GENERATE modifier"),
    ("$TTL 60\n$GENERATE 1-2 h$ A 192.0.2.$$\n", 2, "bad A rdata"),
    ("$GENERATE 1-2 h$ A 192.0.2.$\n", 1, "no TTL specified"),
    ("$TTL 60\n$INCLUDE\n", 2, "$INCLUDE needs a file name"),
]


@pytest.mark.parametrize(("text", "line", "words"), ERRORS, ids=[words for _, _, words in ERRORS])
def test_syntax_errors_carry_the_line(text: str, line: int, words: str) -> None:
    err = _error(text)
    assert err.line == line
    assert err.filename == "zone.db"
    assert words in str(err)
    assert str(err).startswith(f"zone.db:{line}: ")


def test_errors_inside_an_included_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "inc.zone").write_text("ok A 192.0.2.1\n\nbad A 192.0.2.300\n")
    (tmp_path / "main.zone").write_text("$TTL 60\n$INCLUDE inc.zone\n")
    with pytest.raises(ZoneFileError) as info:
        _read(tmp_path / "main.zone", EXAMPLE_COM)
    assert info.value.filename == str(tmp_path / "inc.zone")
    assert info.value.line == 3


# --- $INCLUDE ---------------------------------------------------------------


def test_include_with_origin_and_nesting() -> None:
    zone = _read(CORPUS / "syntax.zone", EXAMPLE_ORG)
    owners = [r.owner for r in zone.records]
    start = owners.index("host1")
    assert owners[start : start + 8] == [
        "host1",
        "host2",
        "nested",
        "deep.nested",
        "host3",
        "other",
        "other",
        "www.other",
    ]
    assert zone.records[start + 7].rdata == "other"  # "@" in other.zone is other.example.org.


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.zone").write_text("$TTL 60\na A 192.0.2.1\n$INCLUDE b.zone\n")
    (tmp_path / "b.zone").write_text("b A 192.0.2.2\n\n$INCLUDE a.zone\n")
    with pytest.raises(ZoneFileError) as info:
        _read(tmp_path / "a.zone", EXAMPLE_COM)
    assert "include loop" in str(info.value)
    assert info.value.filename == str(tmp_path / "b.zone") and info.value.line == 3


def test_a_file_including_itself_is_a_loop(tmp_path: Path) -> None:
    (tmp_path / "self.zone").write_text("$TTL 60\n$INCLUDE ./self.zone\n")
    with pytest.raises(ZoneFileError, match="include loop"):
        _read(tmp_path / "self.zone", EXAMPLE_COM)


def test_include_may_climb_out_with_dotdot_but_a_missing_file_is_clear(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    (tmp_path / "shared.zone").write_text("shared A 192.0.2.9\n")
    main = tmp_path / "zones" / "main.zone"
    main.write_text("$TTL 60\n$INCLUDE ../shared.zone\n")
    assert [r.owner for r in _read(main, EXAMPLE_COM).records] == ["shared"]

    main.write_text("$TTL 60\n\n$INCLUDE ../../missing.zone\n")
    with pytest.raises(ZoneFileError) as info:
        _read(main, EXAMPLE_COM)
    assert info.value.line == 3
    assert "$INCLUDE ../../missing.zone: no such file" in str(info.value)


def test_nested_includes_resolve_against_one_directory_like_bind(tmp_path: Path) -> None:
    """BIND opens every relative $INCLUDE from its working directory, not the includer's."""
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "first.zone").write_text("first A 192.0.2.1\n$INCLUDE inc/second.zone\n")
    (tmp_path / "inc" / "second.zone").write_text("second A 192.0.2.2\n")
    (tmp_path / "main.zone").write_text("$TTL 60\n$INCLUDE inc/first.zone\n")
    assert [r.owner for r in _read(tmp_path / "main.zone", EXAMPLE_COM).records] == [
        "first",
        "second",
    ]


def test_include_dir_and_standard_input(tmp_path: Path) -> None:
    (tmp_path / "inc.zone").write_text("inc A 192.0.2.1\n")
    text = "$TTL 60\n$INCLUDE inc.zone\n"
    err = _error(text, filename="<stdin>")
    assert "$INCLUDE is refused when reading standard input" in str(err) and err.line == 2
    zone = read_master(text, EXAMPLE_COM, include_dir=tmp_path)
    assert [r.owner for r in zone.records] == ["inc"]
    absolute = f"$TTL 60\n$INCLUDE {tmp_path / 'inc.zone'}\n"
    assert len(read_master(absolute, EXAMPLE_COM, filename=str(tmp_path / "x.zone")).records)


def test_include_of_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    err = _error("$TTL 60\n$INCLUDE dir\n", filename=str(tmp_path / "main.zone"))
    assert "$INCLUDE dir: " in str(err) and "is not a regular file" in str(err)
    assert err.line == 2


def test_include_of_a_fifo_is_an_error_not_a_wait(tmp_path: Path) -> None:
    # a stranger's pull -o, verify and diff waited for ever on an included FIFO
    os.mkfifo(tmp_path / "inc.fifo")
    err = _error("$TTL 60\n$INCLUDE inc.fifo\n", filename=str(tmp_path / "main.zone"))
    assert f"$INCLUDE inc.fifo: {tmp_path / 'inc.fifo'} is not a regular file" in str(err)


# --- $GENERATE -------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "counter", "expected"),
    [
        ("host$", 7, "host7"),
        ("$$$", 7, "$7"),
        ("a\\$$", 3, "a\\$3"),
        ("h${0}", 7, "h7"),
        ("h${-1}", 7, "h6"),
        ("h${+10,4}", 7, "h0017"),
        ("${0,3,d}", 5, "005"),
        ("${0,0,o}", 8, "10"),
        ("${0,4,x}", 255, "00ff"),
        ("${0,4,X}", 255, "00FF"),
        ("${0,0,n}", 0x1A, "a.1"),
        ("${0,0,N}", 0x1A, "A.1"),
        ("${0,8,n}", 0x1A, "a.1.0.0."),
        ("${0,3,n}", 8, "8.0"),
        ("${0,4,n}", 0, "0.0."),
        ("$.${1}", 1, "1.2"),
    ],
)
def test_generate_text_follows_bind(template: str, counter: int, expected: str) -> None:
    assert generate.generate_text(template, counter) == expected


def test_generate_ranges_steps_and_types() -> None:
    text = (
        "$TTL 60\n$GENERATE 0-10/5 h${0,2} A 192.0.2.$\n"
        "$GENERATE 1-2 ${0,1,x}.rev IN 120 PTR host$.example.com.\n"
        '$GENERATE 3-3 mx$ MX "10 mx${-1}"\n'
        '$GENERATE 1-1 t$ TXT "v=$ \\"q\\""\n'
    )
    assert [(r.owner, r.ttl, r.rdata) for r in read_master(text, EXAMPLE_COM).records] == [
        ("h00", 60, "192.0.2.0"),
        ("h05", 60, "192.0.2.5"),
        ("h10", 60, "192.0.2.10"),
        ("1.rev", 120, "host1"),
        ("2.rev", 120, "host2"),
        ("mx3", 60, "10 mx2"),
        ("t1", 60, '"v=1" "\\"q\\""'),
    ]


# --- odds and ends ----------------------------------------------------------


def test_text_is_split_in_chunks_without_losing_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (CORPUS / "syntax.zone").read_text()
    whole = read_master(text, EXAMPLE_ORG, include_dir=CORPUS).records
    monkeypatch.setattr(lexer, "CHUNK", 7)  # boundaries inside parentheses too
    assert _rows(read_master(text, EXAMPLE_ORG, include_dir=CORPUS).records) == _rows(whole)
    err = _error("$TTL 1\n\na A 192.0.2.1\nb ( A\n\n 192.0.2.2 )\n\nc A bad\n")
    assert err.line == 8


def test_the_garbage_collector_is_left_as_it_was() -> None:
    import gc

    assert gc.isenabled()
    read_master("$TTL 1\na A 192.0.2.1\n", EXAMPLE_COM)
    assert gc.isenabled()
    with pytest.raises(ZoneFileError):
        read_master("a A 192.0.2.1\n", EXAMPLE_COM)
    assert gc.isenabled()
    gc.disable()
    try:
        read_master("$TTL 1\na A 192.0.2.1\n", EXAMPLE_COM)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_date_directive_is_accepted_and_ignored() -> None:
    text = "$DATE 20240101000000\n$TTL 1\na A 192.0.2.1\n"
    assert [r.owner for r in read_master(text, EXAMPLE_COM).records] == ["a"]


def test_crlf_line_ends_tabs_and_comment_only_lines() -> None:
    text = "; header\r\n$TTL 60\r\n\t; indented comment\r\nwww\tIN\tA\t192.0.2.1\r\n\r\n"
    assert [(r.owner, r.rdata) for r in read_master(text, EXAMPLE_COM).records] == [
        ("www", "192.0.2.1")
    ]


def test_fast_and_general_paths_agree_on_a_generated_zone() -> None:
    """The same records whether each line is read by str.split or by the tokenizer."""
    lines = ["$TTL 300"]
    for i in range(300):
        lines.append(f"h{i} IN A 10.0.{i // 256}.{i % 256}")
        lines.append(f"  IN AAAA 2001:db8::{i:x}")
        lines.append(f"  MX {i % 7} mx{i % 3}.example.net.")
        lines.append(f"  TXT v=spf1 h{i}")
        lines.append(f"_s{i}._tcp SRV {i} {i % 5} {i + 1000} h{i}")
    fast = "\n".join(lines) + "\n"
    general = "\n".join(f"{line} ()" for line in lines) + "\n"
    assert _rows(read_master(fast, EXAMPLE_COM).records) == _rows(
        read_master(general, EXAMPLE_COM).records
    )
    counts = collections.Counter(r.rdtype for r in read_master(fast, EXAMPLE_COM).records)
    assert counts[dns.rdatatype.A] == counts[dns.rdatatype.SRV] == 300


def test_the_name_caches_size_changes_no_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """The owner and target caches are emptied every NAME_CACHE_LIMIT names: a zone
    of many times that many names, each owner and target written again long after it
    first came (and in another case, and after an $ORIGIN change), reads the same
    with caches that never empty, in records and in served lines."""
    rnd = random.Random(7)
    limit = names_module.NAME_CACHE_LIMIT
    count = 3 * limit + 17
    lines = ["$TTL 300", "@ SOA ns1 hm 1 3600 600 86400 60", "@ NS ns1", "ns1 A 192.0.2.1"]
    for i in range(2 * count):
        n = rnd.randrange(count)
        owner = rnd.choice([f"h{n}", f"H{n}.d{n % 9}", f"_s._tcp.h{n}"])
        rdata = rnd.choice(
            [f"A 10.0.{n // 256 % 256}.{n % 256}", f"CNAME t{n // 3}", f"MX 5 T{n // 3}.d1"]
        )
        lines.append(f"{owner} IN {rdata}")
        if i == count:
            lines.append("$ORIGIN sub.example.com.")
    text = "\n".join(lines) + "\n"
    small = _rows(read_master(text, EXAMPLE_COM).records)
    groups = load.OwnerGroups(EXAMPLE_COM)
    read_master(text, EXAMPLE_COM, emit=groups.emit)
    small_lines = sorted(groups.version().iter_lines())
    monkeypatch.setattr(names_module, "NAME_CACHE_LIMIT", 1 << 40)
    monkeypatch.setattr(reader, "NAME_CACHE_LIMIT", 1 << 40)
    assert _rows(read_master(text, EXAMPLE_COM).records) == small
    groups = load.OwnerGroups(EXAMPLE_COM)
    read_master(text, EXAMPLE_COM, emit=groups.emit)
    assert sorted(groups.version().iter_lines()) == small_lines


def test_a_line_with_one_quoted_string_splits_as_the_tokenizer_splits_it() -> None:
    """logical_tokens splits the common quoted line (one quoted string with white space
    around it) without the regex tokenizer: the same tokens, every shape tried."""
    pieces = ["a", "txt", "IN", "3600", '"v=spf1 mx -all"', '"x"', '""', "k=", '"q"', "\t", " "]
    pieces += ['"a b"c', 'd"e f"', "\r", '" lead"', "w.x-y_z", "10"]
    rnd = random.Random(5)
    fast = 0
    for _ in range(20000):
        line = "".join(rnd.choice(pieces + [" ", " "]) for _ in range(rnd.randint(1, 7)))
        expected: list[str] = []
        try:
            depth, _ = lexer._scan(line, 0, expected, 1)
        except lexer.BadSyntax:
            continue
        if depth:
            continue
        tokens, lineno = lexer.logical_tokens(line, 1, iter(()))
        assert (tokens, lineno) == (expected, 1), repr(line)
        fast += line.count('"') == 2
    assert fast > 1000


def _scan_by_regex(
    line: str, depth: int, tokens: list[str], lineno: int | None
) -> tuple[int, bool]:
    """lexer._scan's token loop alone (what its shortcut for plain lines must equal)."""
    opened = False
    for token in lexer._TOKEN(line):
        if token[0] == ";":
            break
        if token[0] == "(":
            opened = opened or depth == 0
            depth += 1
        elif token[0] == ")":
            if depth == 0:
                raise lexer.BadSyntax("unbalanced", lineno)
            depth -= 1
        else:
            tokens.append(token)
    return depth, opened


def test_plain_lines_are_tokenized_as_the_regex_does():
    rng = random.Random(7)
    pieces = ["a", "B1", "x.y.", " ", "  ", "\t", "(", ")", ";c", "z;w", "20261231", "+/="]
    for _ in range(20_000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        depth = rng.randint(0, 2)
        expected: list[str] = []
        got: list[str] = []
        try:
            want = _scan_by_regex(line, depth, expected, 1)
        except lexer.BadSyntax:
            with pytest.raises(lexer.BadSyntax):
                lexer._scan(line, depth, got, 1)
            continue
        assert lexer._scan(line, depth, got, 1) == want, (line, depth)
        assert got == expected, (line, depth)
