"""``secdns diff``: semantic record diff, its renderings and exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dns.name
import dns.rdatatype
from click.testing import CliRunner
from servers import need_binary, tsig_secret
from xfrwire import records

from secdns.cli import cli
from secdns.diff import diff_zones, to_ixfr, to_json

ORIGIN = dns.name.from_text("example.com.")
A = """
@ 3600 IN SOA ns1 host 41 7200 900 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.80
www 300 IN A 192.0.2.81
mail 300 IN MX 10 MX1
old 60 IN TXT "gone soon"
"""
B = """
@ 3600 IN SOA ns1 host 42 7200 900 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.80
www 300 IN A 192.0.2.82
mail 600 IN MX 10 mx1
new 60 IN TXT "hello"
"""


def delta(**kw):
    return diff_zones(ORIGIN, records(A, "example.com."), records(B, "example.com."), **kw)


def test_semantic_diff():
    d = delta()
    assert not d.same
    assert [(r.owner, r.rdata) for r in d.removed] == [
        ("@", "ns1 host 41 7200 900 1209600 300"),
        ("old", '"gone soon"'),
        ("www", "192.0.2.81"),
    ]
    assert [(r.owner, r.rdata) for r in d.added] == [
        ("@", "ns1 host 42 7200 900 1209600 300"),
        ("new", '"hello"'),
        ("www", "192.0.2.82"),
    ]
    # MX1 vs mx1: names compare case-insensitively, so only the TTL changed
    assert [(c.old.ttl, c.new.ttl, c.new.owner) for c in d.ttl_changed] == [(300, 600, "mail")]
    assert (d.serial_a, d.serial_b) == (41, 42)


def test_identical_zones_and_ignore_options():
    same = diff_zones(ORIGIN, records(A, "example.com."), records(A, "example.com."))
    assert same.same
    d = delta(ignore_ttl=True, ignore_serial=True, ignore_types=frozenset({dns.rdatatype.TXT}))
    assert d.ttl_changed == [] and not any(r.rdtype == dns.rdatatype.SOA for r in d.added)
    assert [r.owner for r in d.added] == ["www"]


def test_json_schema():
    doc = to_json(delta(), "a.zone", "@192.0.2.1:53")
    assert doc["zone"] == "example.com." and doc["same"] is False
    assert doc["a"] == {"source": "a.zone", "serial": 41}
    assert doc["stats"] == {"added": 3, "removed": 3, "ttl_changed": 1}
    assert {"name": "www.example.com.", "ttl": 300, "type": "A", "rdata": "192.0.2.82"} in doc[
        "added"
    ]
    assert doc["ttl_changed"] == [
        {
            "name": "mail.example.com.",
            "type": "MX",
            "rdata": "10 mx1.example.com.",
            "ttl_a": 300,
            "ttl_b": 600,
        }
    ]


def test_ixfr_listing_is_rfc1995_shaped():
    lines = to_ixfr(delta()).splitlines()
    soa = [i for i, line in enumerate(lines) if " SOA " in line]
    assert " 42 " in lines[0] and " 41 " in lines[1] and " 42 " in lines[-1]
    assert len(soa) == 4 and lines[soa[2]] == lines[0]
    assert 'old.example.com. 60 IN TXT "gone soon"' in lines[2 : soa[2]]
    assert 'new.example.com. 60 IN TXT "hello"' in lines[soa[2] :]


def test_nsupdate_script_turns_a_into_b(bind_primary, tmp_path):
    """Apply the script to a real BIND serving A; its zone then equals B."""
    zone_a = Path(__file__).parent / "zones" / "example.com.zone"
    text_a = zone_a.read_text()
    text_b = (
        text_a.replace("192.0.2.81", "192.0.2.181").replace('TXT   "one" "two"', 'TXT   "three"')
        + "brandnew 120 IN AAAA 2001:db8::77\n"
    )
    primary = bind_primary({"example.com": text_a})
    file_b = tmp_path / "b.zone"
    file_b.write_text(text_b)
    script_run = CliRunner().invoke(
        cli, ["diff", "example.com", f"@{primary.addr}", f"@{primary.addr}", "-f", "nsupdate"]
    )
    # the same copy: no script at all (not a zone line and an empty UPDATE), as -f ixfr
    assert script_run.exit_code == 0 and script_run.stdout == ""
    other = bind_primary({"example.com": text_b})
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            "example.com",
            f"@{primary.addr}",
            f"@{other.addr}",
            "-f",
            "nsupdate",
            "--ignore-serial",
            "--server",
            primary.addr,  # HOST:PORT, written as nsupdate's "server HOST PORT"
        ],
    )
    assert result.exit_code == 1, result.stderr
    script = result.stdout
    assert script.splitlines()[0] == f"server {primary.host} {primary.port}"
    assert "update delete www.example.com. 3600 IN A 192.0.2.81" in script
    assert "update add brandnew.example.com. 120 IN AAAA 2001:db8::77" in script
    done = subprocess.run(
        [need_binary("nsupdate")],
        input=script,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    after = CliRunner().invoke(
        cli,
        ["diff", "example.com", f"@{primary.addr}", f"@{other.addr}", "--ignore-serial", "--json"],
    )
    assert after.exit_code == 0, after.stdout
    assert json.loads(after.stdout)["same"] is True


def test_cli_text_and_stat_between_servers(bind_primary, knot_primary):
    zone = (Path(__file__).parent / "zones" / "example.com.zone").read_text()
    bind = bind_primary({"example.com": zone})
    knot = knot_primary({"example.com": zone.replace("192.0.2.80", "192.0.2.180")})
    result = CliRunner().invoke(cli, ["diff", "example.com", f"@{bind.addr}", f"@{knot.addr}"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"--- {bind.addr} (serial 2024010101)",
        f"+++ {knot.addr} (serial 2024010101)",
        "@@ www @@",
        "-www 3600 IN A 192.0.2.80",
        "+www 3600 IN A 192.0.2.180",
    ]
    stat = CliRunner().invoke(
        cli, ["diff", "example.com", f"@{bind.addr}", f"@{knot.addr}", "--stat"]
    )
    assert stat.stdout == (
        "example.com. 1 added, 1 removed, 0 TTL changed (serial 2024010101 -> 2024010101)\n"
    )
    same = CliRunner().invoke(cli, ["diff", "example.com", f"@{bind.addr}", f"@{bind.addr}"])
    assert same.exit_code == 0 and same.stdout == ""


def test_cli_errors(tmp_path):
    result = CliRunner().invoke(cli, ["diff", "example.com", "-", "-"])
    assert result.exit_code == 2 and "only one of A and B" in result.stderr
    result = CliRunner().invoke(
        cli, ["diff", "example.com", str(tmp_path / "nope.zone"), "@127.0.0.1:1"]
    )
    assert result.exit_code >= 2
    zone = str(Path(__file__).parent / "zones" / "example.com.zone")
    both = CliRunner().invoke(cli, ["diff", "example.com", zone, zone, "-f", "nsupdate", "--json"])
    assert both.exit_code == 2 and "two outputs" in both.stderr  # (it printed JSON)


def test_files_stdin_and_store(tmp_path):
    zone_a = Path(__file__).parent / "zones" / "example.com.zone"
    text_b = zone_a.read_text().replace("192.0.2.81", "192.0.2.181")
    file_b = tmp_path / "b.zone"
    file_b.write_text(text_b)
    same = CliRunner().invoke(cli, ["diff", "example.com", str(zone_a), str(zone_a)])
    assert same.exit_code == 0 and same.stdout == ""
    result = CliRunner().invoke(
        cli, ["diff", "example.com", str(zone_a), "-", "--json"], input=text_b
    )
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["b"]["source"] == "-" and doc["stats"] == {
        "added": 1,
        "removed": 1,
        "ttl_changed": 0,
    }
    # a store directory is a source too
    from secdns import zonefile
    from secdns.masterfile import read_master

    store = tmp_path / "store"
    store.mkdir()
    recs = read_master(text_b, dns.name.from_text("example.com.")).records
    (store / "example.com.zone").write_text(
        zonefile.render(
            dns.name.from_text("example.com."), 2024010101, 3600, zonefile.canonical_lines(recs)
        )
    )
    from_store = CliRunner().invoke(cli, ["diff", "example.com", str(store), str(file_b)])
    assert from_store.exit_code == 0, from_store.stdout + from_store.stderr


def test_unparsable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("$ORIGIN example.com.\n@ 3600 IN SOA a b 1 2 3 4 5\nwww 300 IN A 300.1.1.1\n")
    result = CliRunner().invoke(cli, ["diff", "example.com", str(bad), str(bad)])
    assert result.exit_code == 6
    assert f"{bad}:3:" in result.stderr and "zone example.com." in result.stderr
    missing = CliRunner().invoke(
        cli, ["diff", "example.com", str(tmp_path / "nope.zone"), str(bad)]
    )
    assert missing.exit_code == 7 and "no such zone file" in missing.stderr


def test_tsig_side_signs_one_servers_axfr_only(bind_primary, knot_primary):
    """A hidden primary without the key beside a secondary that requires it (a
    stranger's primary vs distribution tier): --tsig signs both, and the primary
    answers BADKEY; --tsig-side b signs only B's AXFR."""
    zone = (Path(__file__).parent / "zones" / "example.com.zone").read_text()
    secret = tsig_secret()
    open_primary = knot_primary({"example.com": zone})
    keyed = bind_primary(
        {"example.com": zone},
        allow_transfer_key="down",
        tsig={"down": ("hmac-sha256", secret)},
    )
    args = ["diff", "example.com", f"@{open_primary.addr}", f"@{keyed.addr}"]
    both = CliRunner().invoke(cli, [*args, "--tsig", f"hmac-sha256:down:{secret}"])
    assert both.exit_code != 0 and both.exit_code != 1, both.output
    one = CliRunner().invoke(
        cli, [*args, "--tsig", f"hmac-sha256:down:{secret}", "--tsig-side", "b"]
    )
    assert one.exit_code == 0, one.output
    wrong_side = CliRunner().invoke(
        cli, [*args, "--tsig", f"hmac-sha256:down:{secret}", "--tsig-side", "a"]
    )
    assert wrong_side.exit_code not in (0, 1), wrong_side.output
