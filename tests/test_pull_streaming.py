"""A pulled zone is written as it is sorted (no whole list of lines, no whole text),
and a stored version is diffed by one merge: the files and journal entries are the
same, byte for byte, as the renderer that held everything produced (issue 10 item 1,
issue 12 ``pull -o``)."""

from __future__ import annotations

import json
import random
import socket
import struct
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import pytest
from click.testing import CliRunner
from servers import output_master, stored_master

from secdns import wire, zonefile
from secdns.cli import cli
from secdns.copies import axfr_journal
from secdns.errors import LocalIOError
from secdns.store import AtomicFile, Store, StoredSoa, ZoneWriter, atomic_write

ORIGIN = "rich.test."
RICH = r"""$ORIGIN rich.test.
$TTL 300
@           SOA ns1 hostmaster 7 7200 900 1209600 300
            NS  ns1
            NS  ns2.elsewhere.example.
            MX  10 mail
            MX  20 Mail.Rich.Test.
            TXT "v=spf1 -all" "second \"quoted\" string"
            CAA 0 issue "letsencrypt.org"
ns1         A   192.0.2.1
ns1         AAAA 2001:db8::1
mail        A   192.0.2.25
WWW         A   192.0.2.80
www         A   192.0.2.81
www         AAAA 2001:db8::80
a           A   192.0.2.10
a-b         A   192.0.2.11
a.b         A   192.0.2.12
b.a         TXT "under a"
z.a         TXT "z under a"
*           A   192.0.2.99
*.wild      MX  5 mail
\@odd       TXT "at sign"
\000.bin    TXT "binary label"
sp\032ace   TXT "space"
_sip._tcp   SRV 10 60 5060 sip
sip         CNAME www
sub         NS  ns.sub
ns.sub      A   192.0.2.53
sub         DS  12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
nap         NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@rich.test!" .
ptr         PTR www
big         TXT "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
big         TXT "bbbb"
big         TXT "a"
unk         TYPE65280 \# 3 010203
empty       TYPE65281 \# 0
ttl         600 A 192.0.2.14
"""


def old_render(origin: dns.name.Name, records: list[wire.Record], soa: wire.Record) -> str:
    """The renderer before streaming: one sort on a key tuple a record, every line
    and the whole text held (kept here as the reference)."""
    records.sort(key=zonefile.record_key)
    lines: list[str] = []
    previous = None
    for rec in records:
        key = (rec.key, rec.rdtype, rec.rdata)
        if key == previous:
            continue
        previous = key
        lines.append(wire.record_line(rec))
    return zonefile.render(origin, soa.serial, soa.ttl, lines)


def axfr_records(host: str, port: int, origin: dns.name.Name) -> list[wire.Record]:
    """The zone as secdns's decoder sees the primary's own messages (raw AXFR)."""
    query = dns.message.make_query(origin, dns.rdatatype.AXFR).to_wire()
    records: list[wire.Record] = []
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        stream = sock.makefile("rb")
        while len(records) < 2 or records[-1].rdtype != dns.rdatatype.SOA:
            (length,) = struct.unpack("!H", stream.read(2))
            records.extend(wire.parse_message(stream.read(length), origin).records)
    assert records[0].rdtype == dns.rdatatype.SOA
    return records[:-1]


def test_pull_o_writes_what_the_old_renderer_wrote(bind_primary, tmp_path: Path) -> None:
    primary = bind_primary({"rich.test": RICH})
    out = tmp_path / "rich.zone"
    result = CliRunner().invoke(cli, ["pull", ORIGIN, f"@{primary.addr}", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    origin = dns.name.from_text(ORIGIN)
    records = axfr_records(primary.host, primary.port, origin)
    expected = old_render(origin, records, records[0])
    assert output_master(out) == expected  # (and its checksum line after)
    assert len(expected.splitlines()) > 35
    # to stdout, and into the store (alone and with -o), the same bytes
    result = CliRunner().invoke(cli, ["pull", ORIGIN, f"@{primary.addr}", "-o", "-", "--axfr"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == out.read_text()
    store = tmp_path / "store"
    copy = tmp_path / "copy.zone"
    args = ["pull", ORIGIN, f"@{primary.addr}", "-d", str(store), "-o", str(copy)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    assert stored_master(store / "rich.test.zone") == expected
    assert copy.read_text() == out.read_text()


def _random_version(rng: random.Random, origin: dns.name.Name, size: int) -> list[wire.Record]:
    out = []
    for _ in range(size):
        owner = rng.choice(["@", "a", "A", "b.a", "a-b", "z", "\\000", "x.y.z", "m"])
        name = dns.name.from_text(owner, origin)
        key = tuple(label.lower() for label in reversed(name.labels[:-1]))
        rdtype = rng.choice([1, 2, 16, 28, 65280])
        rdata = {
            1: f"192.0.2.{rng.randrange(8)}",
            2: f"ns{rng.randrange(3)}",
            16: f'"t{rng.randrange(5)}"',
            28: f"2001:db8::{rng.randrange(6)}",
            65280: f"\\# 1 0{rng.randrange(4)}",
        }[rdtype]
        out.append(wire.Record(key, owner, rng.choice([300, 600]), 1, rdtype, rdata, None))
    return out


def _soa(origin: dns.name.Name, serial: int) -> wire.Record:
    okey = tuple(label.lower() for label in reversed(origin.labels[:-1]))
    return wire.Record(
        okey, "@", 300, 1, 6, f"ns1 hostmaster {serial} 7200 900 1209600 300", serial
    )


def test_sorted_lines_and_merge_match_the_set_difference() -> None:
    origin = dns.name.from_text(ORIGIN)
    keyer = zonefile.LineKeyer(origin)
    rng = random.Random(10)
    for _ in range(200):
        old = [_soa(origin, 1), *_random_version(rng, origin, rng.randrange(0, 30))]
        new = [_soa(origin, 2), *_random_version(rng, origin, rng.randrange(0, 30))]
        expected_old = old_render(origin, list(old), old[0]).split("\n")[3:-1]
        old_lines = zonefile.canonical_lines(list(old))
        new_lines = zonefile.canonical_lines(list(new))
        assert old_lines == expected_old
        diff = zonefile.SortedDiff(keyer, old_lines)
        assert list(diff.lines(iter(new_lines))) == new_lines
        assert diff.deleted == sorted(set(old_lines) - set(new_lines), key=keyer)
        assert diff.added == sorted(set(new_lines) - set(old_lines), key=keyer)


def test_store_axfr_merges_with_the_stored_version(tmp_path: Path) -> None:
    origin = dns.name.from_text(ORIGIN)
    rng = random.Random(12)
    store = Store(tmp_path)
    old = [_soa(origin, 1), *_random_version(rng, origin, 40)]
    new = [_soa(origin, 2), *_random_version(rng, origin, 40)]
    old_lines = zonefile.canonical_lines(list(old))
    new_lines = zonefile.canonical_lines(list(new))
    soa1 = StoredSoa(1, 300, 7200, 900, 1209600, 300)
    soa2 = StoredSoa(2, 300, 7200, 900, 1209600, 300)
    ZoneWriter(store, origin).replace(old_lines, soa1)

    writer = ZoneWriter(store, origin)
    written, added, removed = writer.replace_merged(zonefile.sorted_lines(list(new)), soa2)
    entry, want_added, want_removed = axfr_journal(origin, old_lines, new_lines, 1, 2)
    assert (written.records, added, removed) == (len(new_lines), want_added, want_removed)
    path = store.zone_path(origin)
    assert path.read_text() == zonefile.render(origin, 2, 300, new_lines)
    assert store.zone_problem(origin, writer.state) is None
    journal = [json.loads(line) for line in store.journal_path(origin).read_text().splitlines()]
    assert entry is not None
    assert journal == [
        {"from": 1, "to": 2, "deleted": list(entry.deleted), "added": list(entry.added)}
    ]
    assert store.read_journal(origin, 2)[0] == entry

    # a stored file changed by hand is not diffed against: the journal starts afresh
    path.write_text(path.read_text() + "x 1 IN A 192.0.2.1\n")
    soa3 = StoredSoa(3, 300, 7200, 900, 1209600, 300)
    written, added, removed = ZoneWriter(store, origin).replace_merged(
        zonefile.sorted_lines(list(old)), soa3
    )
    assert (added, removed) == (len(old_lines), 0)
    assert not store.journal_path(origin).exists()


def test_a_failed_streaming_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f.zone"
    atomic_write(path, "old\n")

    def chunks():
        yield b"new "
        raise OSError(28, "No space left on device")

    with pytest.raises(LocalIOError, match="No space left"):
        atomic_write(path, chunks())
    with pytest.raises(ZeroDivisionError), AtomicFile(path) as temp:
        temp.write_all([b"newer\n"])
        raise ZeroDivisionError
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.zone"]
