"""serve's loader (secdns.server.load) builds the version the general path builds.

The general path: read the file into records, sort them canonically, render
their lines, ``ZoneVersion.from_lines``.  The loader groups lines by owner as the
reader emits them and sorts only the owners that need it; every entry (lines in
the same order, names below each name), the serial and the counts must be equal.
"""

from __future__ import annotations

import gc
import random
import subprocess
import sys
from pathlib import Path

import dns.name
import pytest
from servers import free_port

from secdns import zonefile
from secdns.errors import ZoneFileError
from secdns.masterfile import read_master
from secdns.server import zone as zone_module
from secdns.server.load import version_from_file, version_from_text
from secdns.server.zone import ZoneVersion

ZONES = Path(__file__).resolve().parent / "zones"
EXAMPLE = dns.name.from_text("example.com.")


def _general(text: str, origin: dns.name.Name, filename: str = "zone.db") -> ZoneVersion:
    records = read_master(text, origin, filename=filename).records
    return ZoneVersion.from_lines(origin, zonefile.canonical_lines(records))


def _same(ours: ZoneVersion, theirs: ZoneVersion) -> None:
    assert dict(ours.iter_entries()) == dict(theirs.iter_entries())
    assert (ours.serial, ours.records, ours.names) == (theirs.serial, theirs.records, theirs.names)


def _both(text: str, origin: dns.name.Name = EXAMPLE) -> None:
    _same(version_from_text(text, origin, "zone.db"), _general(text, origin))


HEAD = "$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n"


def test_corpus_files_load_as_on_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    path = ZONES / "example.com.zone"
    monkeypatch.chdir(path.parent)
    _same(version_from_file(str(path), EXAMPLE), _general(path.read_text(), EXAMPLE, str(path)))


@pytest.mark.parametrize(
    "body",
    [
        # out of order within an owner, and split over the file
        "www MX 20 b\nwww A 192.0.2.9\nwww MX 10 a\nftp A 192.0.2.3\nwww AAAA ::1\n",
        # exact duplicates, and duplicates but for the TTL (the first one stays)
        "a 10 A 192.0.2.1\na 20 A 192.0.2.1\na A 192.0.2.1\nb TXT x\nb TXT x\n",
        # the same owner written in another case, consecutive and not
        "Host A 192.0.2.1\nhost A 192.0.2.2\nx A 192.0.2.3\nHOST AAAA ::2\n",
        # empty non-terminals several labels deep, a wildcard, a delegation with glue
        "a.b.c.d A 192.0.2.1\n*.w TXT wild\nsub NS ns.sub\nns.sub A 192.0.2.7\nd TXT d\n",
        # $ORIGIN, $GENERATE, escaped and absolute owners, blank owners
        "$ORIGIN x.example.com.\ny A 192.0.2.1\n  TXT blank\n$ORIGIN example.com.\n"
        "$GENERATE 1-5 h$ A 192.0.2.$\nw\\.dot A 192.0.2.8\nz.example.com. A 192.0.2.4\n"
        "a\\065 TXT esc\n",
        # a second SOA record at the apex (kept, as the general path keeps it)
        "@ SOA ns2 hostmaster 7 3600 600 86400 60\n",
        # an owner back after others: still in order (glue), a duplicate, lower rdata,
        # a lower type, and the apex back with a type after or before its last
        "g A 192.0.2.1\nx A 192.0.2.9\ng A 192.0.2.2\ny A 192.0.2.8\ng AAAA ::1\n",
        "g A 192.0.2.1\nx A 192.0.2.9\ng A 192.0.2.1\n",
        "g A 192.0.2.2\nx A 192.0.2.9\ng A 192.0.2.1\n",
        "g AAAA ::1\nx A 192.0.2.9\ng A 192.0.2.1\n",
        "x A 192.0.2.9\n@ TXT apex\ny A 192.0.2.8\n@ A 192.0.2.7\n",
    ],
)
def test_records_land_as_on_the_general_path(body: str) -> None:
    _both(HEAD + body)


def test_a_shuffled_generated_zone_loads_as_on_the_general_path() -> None:
    rnd = random.Random(12)
    lines = []
    for i in range(400):
        owner = rnd.choice([f"h{i % 50}", f"h{i % 50}.d{i % 7}", f"_s._tcp.h{i % 30}", "@"])
        kind = rnd.choice(
            [
                f"A 192.0.2.{i % 9}",
                f"AAAA 2001:db8::{i % 5:x}",
                f"MX {i % 3} mx",
                f'TXT "t{i % 4}"',
                f"SRV 0 1 {i % 3} t",
                f"CNAME c{i % 2}",
            ]
        )
        lines.append(f"{owner} {rnd.choice(['', '60 ', '120 '])}IN {kind}")
    _both(HEAD + "\n".join(lines) + "\n")


def test_a_record_outside_the_zone_is_refused_as_before() -> None:
    text = HEAD + "www.example.net. A 192.0.2.1\n"
    with pytest.raises(ZoneFileError, match="record outside the zone") as general:
        _general(text, EXAMPLE)
    with pytest.raises(ZoneFileError, match="record outside the zone") as ours:
        version_from_text(text, EXAMPLE, "zone.db")
    assert str(ours.value) == str(general.value)


def test_a_chaos_zone_keeps_its_class() -> None:
    origin = dns.name.from_text("example.")
    _both("$TTL 60\n@ CH SOA ns hm 1 2 3 4 5\n@ CH NS ns\nns CH TXT a\nb CH TXT b\n", origin)


def test_the_root_zone() -> None:
    _both(
        "$TTL 60\n. SOA a.root. hm. 1 2 3 4 5\n. NS a.root.\na.root. A 192.0.2.1\n"
        "com. NS a.gtld.\na.gtld. A 192.0.2.2\n",
        dns.name.root,
    )


@pytest.mark.parametrize(
    ("origin_key", "keys"),
    [
        (  # plain keys (counted in C)
            "example.com.",
            ["example.com.", "a.b.c.example.com.", "b.c.example.com.", "z.y.x.w.example.com."],
        ),
        ("example.com.", ["a.b.example.com.", "q.example.com."]),  # no apex records
        (  # escaped keys (the general loop)
            "example.com.",
            ["example.com.", "a\\.b.c.example.com.", "\\065.x.w.example.com.", "q.example.com."],
        ),
        (".", [".", "com.", "a.gtld.", "x.y.z."]),  # the root zone
    ],
)
def test_names_below_counts_each_ancestor_as_the_walk_did(origin_key: str, keys: list[str]) -> None:
    groups = {key: ["x"] for key in keys}
    below: dict[str, int] = {}
    for key in groups:
        walk = key
        while walk != origin_key:
            walk = zone_module.parent_key(walk)
            below[walk] = below.get(walk, 0) + 1
    assert dict(zone_module._names_below(groups, origin_key)) == below


def test_loading_leaves_no_garbage_for_the_collector() -> None:
    """Nothing of the loader lingers in a reference cycle (serve freezes what is left
    after loading: a cycle would keep a large zone's groups for good)."""
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        version = version_from_text(HEAD + "www A 192.0.2.1\nwww A 192.0.2.1\n", EXAMPLE, "z")
        assert gc.collect() == 0
        assert version.records == 4
    finally:
        if collecting:
            gc.enable()


def test_serve_names_the_zone_and_the_file_when_a_file_holds_another_zone(tmp_path) -> None:
    # a stranger's config: [[zone]] own.test with file = a copy of z002.test; before, the
    # one line was "record outside the zone: z002.test. 300 IN SOA ... 8" (cut, unnamed)
    (tmp_path / "other.zone").write_text(
        "$ORIGIN z002.test.\n$TTL 300\n"
        "@ IN SOA ns1.z002.test. hostmaster.z002.test. 2024010100 3600 600 86400 300\n"
        "@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    )
    (tmp_path / "secdns.toml").write_text(
        f'[server]\nlisten = ["127.0.0.1:{free_port()}"]\n'
        '[[zone]]\nname = "own.test"\nfile = "other.zone"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "secdns", "serve", "-c", "secdns.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 6, done.stderr
    assert done.stderr.strip().splitlines() == [
        "secdns: error: zone own.test.: other.zone: the file holds zone z002.test. (its SOA), "
        "not own.test.: wrong file or wrong zone name?"
    ]


def test_a_record_outside_the_zone_is_named_with_the_file_and_the_zone() -> None:
    text = HEAD + "www.example.net. 300 IN TXT " + '"' + "x" * 100 + '"\n'
    with pytest.raises(ZoneFileError) as caught:
        version_from_text(text, EXAMPLE, "zone.db")
    assert caught.value.one_line().startswith(
        "zone example.com.: zone.db: record outside the zone example.com.: www.example.net."
    )
    assert caught.value.one_line().endswith("...")
