"""An IXFR's added/removed counts are the same in serve's memory as in the store.

NSD's IXFR (create-ixfr) re-sends whole nodes: records it did not change come
again as additions.  ``secdns serve`` counted every addition, so a one-record
change was logged, shown in status and metrics as "+12"; the store (pull -d)
counted it as the change it is.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import dns.name
from click.testing import CliRunner
from servers import free_port
from serving import ServerThread, write_config

from secdns import zonefile
from secdns.cli import cli
from secdns.server.zone import ChangeTally, ZoneVersion

ZONE_FILE = Path(__file__).parent / "zones" / "example.com.zone"
ORIGIN = dns.name.from_text("example.com.")


def test_memory_counts_as_the_store_counts_random_deltas():
    rng = random.Random(1995)
    keyer = zonefile.LineKeyer(ORIGIN)
    apex = ["@ 3600 IN SOA ns1 host 1 7200 900 1209600 300", "@ 3600 IN NS ns1"]
    base = sorted(
        apex
        + [f"h{i} {rng.choice((60, 300))} IN A 192.0.2.{i}" for i in range(40)]
        + [f'h{i} 300 IN TXT "t{i}"' for i in range(0, 40, 3)],
        key=keyer,
    )
    for _ in range(300):
        deleted = rng.sample([line for line in base if line not in apex], rng.randint(0, 4))
        kept = [line for line in base if line not in deleted]
        added = []
        for line in rng.sample(kept, rng.randint(0, 6)):  # re-sent, some with a new TTL
            owner, ttl, rest = line.split(" ", 2)
            added.append(line if rng.random() < 0.6 else f"{owner} {int(ttl) + 1} {rest}")
        added += [f"new{rng.randint(0, 9)} 60 IN A 198.51.100.{rng.randint(1, 9)}"]
        added += rng.sample(deleted, min(len(deleted), rng.randint(0, 1)))  # deleted, added back
        added = list(dict.fromkeys(added))
        _, removed, added_count = zonefile.apply_line_delta(base, keyer, deleted, added)
        tally = ChangeTally()
        ZoneVersion.from_lines(ORIGIN, base).apply([(deleted, added)], 2, tally)
        assert (tally.removed, tally.added) == (removed, added_count), (deleted, added)


def test_serve_counts_an_nsd_ixfr_as_pull_does(nsd_primary, tmp_path):
    port = free_port()
    primary = nsd_primary(notify=[("127.0.0.1", port)])
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        port=port,
        zones=[{"name": "example.com", "primaries": [primary.addr]}],
    )
    server = ServerThread(config)
    try:
        server.wait_serial("example.com", 2024010101)
        pulled = tmp_path / "pulled"
        pull = ["pull", "example.com.", f"@{primary.addr}", "-d", str(pulled), "--json"]
        assert CliRunner().invoke(cli, pull).exit_code == 0
        text = ZONE_FILE.read_text().replace("2024010101 ; serial", "2024010102 ; serial")
        primary.write_zone("example.com", text + "nsdnew 60 IN A 192.0.2.44\n")
        primary.reload()
        server.wait_serial("example.com", 2024010102, timeout=20)
        served = server.server.runtimes[next(iter(server.server.runtimes))].last_result
        by_pull = json.loads(CliRunner().invoke(cli, pull).stdout)
    finally:
        server.stop()
    assert by_pull["kind"] == served.kind.value == "IXFR"
    assert (served.added, served.removed) == (by_pull["added"], by_pull["removed"]) == (1, 0)
