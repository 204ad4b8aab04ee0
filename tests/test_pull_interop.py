"""``secdns pull`` against real BIND 9, Knot DNS and NSD primaries on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest
from click.testing import CliRunner
from servers import TsigKey, free_port, need_binary, output_master, stored_master

from secdns.cli import cli

ZONE_FILE = Path(__file__).parent / "zones" / "example.com.zone"
ORIGIN = "example.com."


def pull(*args: str):
    return CliRunner().invoke(cli, ["pull", *args])


def record_set(zone: dns.zone.Zone) -> set[tuple[str, int, str, str]]:
    out = set()
    for name, node in zone.nodes.items():
        for rds in node:
            for rd in rds:
                out.add(
                    (
                        name.to_text().lower(),
                        rds.ttl,
                        dns.rdatatype.to_text(rds.rdtype),
                        rd.to_text(),
                    )
                )
    return out


def file_records(path: Path) -> set[tuple[str, int, str, str]]:
    return record_set(dns.zone.from_file(str(path), origin=ORIGIN, relativize=False))


def owner_case(path: Path) -> set[str]:
    return {
        line.split(" ", 1)[0]
        for line in path.read_text().splitlines()
        if line and line[0] not in ";$"
    }


@pytest.mark.parametrize("kind", ["bind", "knot", "nsd"])
def test_axfr_gives_back_exactly_what_was_served(kind, request, tmp_path):
    primary = request.getfixturevalue(f"{kind}_primary")()
    out = tmp_path / "example.com.zone"
    result = pull(ORIGIN, f"@{primary.addr}", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "kind=AXFR" in result.output
    assert file_records(out) == file_records(ZONE_FILE)
    # owner names keep their escapes, and their case where the server keeps it
    # (Knot and NSD lowercase owner names)
    upper = {"UPPER", "WWW2"} if kind == "bind" else {"upper", "www2"}
    assert upper | {"a\\.b", "sp\\032ace", "*.wild"} <= owner_case(out)
    check = subprocess.run(
        [need_binary("named-checkzone"), "-i", "local", ORIGIN, str(out)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_output_is_canonical_and_stable(knot_primary, nsd_primary, tmp_path):
    """Two servers, same zone: byte-identical files, whatever order they sent."""
    bind, knot = knot_primary(), nsd_primary()
    assert pull(ORIGIN, f"@{bind.addr}", "-o", str(tmp_path / "b")).exit_code == 0
    assert pull(ORIGIN, f"@{knot.addr}", "-o", str(tmp_path / "k")).exit_code == 0
    assert (tmp_path / "b").read_text() == (tmp_path / "k").read_text()


CHANGES = """
update delete www.example.com. A 192.0.2.81
update add new.example.com. 300 A 192.0.2.7
update add new.example.com. 300 TXT "fresh record"
update delete txt.example.com. TXT "one" "two"
"""


@pytest.mark.parametrize("kind", ["bind", "knot"])
def test_ixfr_after_nsupdate_equals_fresh_axfr(kind, request, tmp_path):
    primary = request.getfixturevalue(f"{kind}_primary")()
    store = tmp_path / "store"
    first = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
    assert json.loads(first.stdout)["kind"] == "AXFR"
    serial = primary.soa_serial(ORIGIN)
    for round_ in range(2):
        primary.nsupdate(
            CHANGES if round_ == 0 else "update add later.example.com. 60 AAAA 2001:db8::7"
        )
        primary.wait_for_serial(ORIGIN, serial + 1 + round_, timeout=10) if kind == "bind" else None
        again = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
        doc = json.loads(again.stdout)
        assert again.exit_code == 0, again.stderr
        assert doc["kind"] == "IXFR" and doc["fallback"] is None, doc
        assert doc["serial_from"] < doc["serial_to"]
    fresh = tmp_path / "fresh.zone"
    assert pull(ORIGIN, f"@{primary.addr}", "-o", str(fresh), "--axfr").exit_code == 0
    assert stored_master(store / "example.com.zone") == output_master(fresh)
    records = file_records(fresh)
    assert ("new.example.com.", 300, "TXT", '"fresh record"') in records
    assert not any(r[0] == "www.example.com." and r[3] == "192.0.2.81" for r in records)
    # the journal holds both deltas, chained to the stored serial
    journal_text = (store / "example.com.journal").read_text()
    journal = [json.loads(line) for line in journal_text.splitlines()]
    assert [e["to"] for e in journal][-1] == doc["serial_to"]
    assert journal[-1]["from"] == journal[-2]["to"]
    # up to date now: nothing transferred
    same = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
    assert json.loads(same.stdout)["status"] == "up-to-date"


def test_ixfr_from_nsd_after_zone_edit(nsd_primary, tmp_path):
    primary = nsd_primary()
    store = tmp_path / "store"
    assert pull(ORIGIN, f"@{primary.addr}", "-d", str(store)).exit_code == 0
    text = ZONE_FILE.read_text().replace("2024010101 ; serial", "2024010102 ; serial")
    text += "nsdnew 60 IN A 192.0.2.44\n"
    primary.write_zone(ORIGIN.rstrip("."), text)
    primary.reload()
    primary.wait_for_serial(ORIGIN, 2024010102)
    result = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert doc["serial_to"] == 2024010102
    fresh = tmp_path / "fresh.zone"
    assert pull(ORIGIN, f"@{primary.addr}", "-o", str(fresh), "--axfr").exit_code == 0
    assert stored_master(store / "example.com.zone") == output_master(fresh)


def test_ixfr_answered_with_full_zone_falls_back(bind_primary, tmp_path):
    """BIND without a journal or ixfr-from-differences answers IXFR AXFR-style."""
    primary = bind_primary(dynamic=False, ixfr_from_differences=False)
    store = tmp_path / "store"
    assert pull(ORIGIN, f"@{primary.addr}", "-d", str(store)).exit_code == 0
    text = ZONE_FILE.read_text().replace("2024010101 ; serial", "2024010105 ; serial")
    primary.write_zone(ORIGIN.rstrip("."), text + "edited 60 IN A 192.0.2.45\n")
    primary.reload()
    primary.wait_for_serial(ORIGIN, 2024010105)
    result = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert doc["kind"] == "AXFR" and doc["serial_to"] == 2024010105
    assert doc["added"] == 1 and doc["removed"] == 0  # the edited record; the SOA swap is
    # not counted, as for a true IXFR (issue 11)
    assert "edited 60 IN A 192.0.2.45" in (store / "example.com.zone").read_text()


def test_hand_edited_store_is_refetched_by_axfr(bind_primary, tmp_path):
    primary = bind_primary()
    store = tmp_path / "store"
    assert pull(ORIGIN, f"@{primary.addr}", "-d", str(store)).exit_code == 0
    zone_file = store / "example.com.zone"
    pristine = stored_master(zone_file)  # (its state line's times change at each write)
    zone_file.write_text(zone_file.read_text().replace("192.0.2.80", "192.0.2.666"))
    result = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json", "-v")
    assert json.loads(result.stdout)["kind"] == "AXFR"
    # the serial held before the edit is remembered, not reported as none (issue 11)
    assert json.loads(result.stdout)["serial_from"] == json.loads(result.stdout)["serial_to"]
    assert "changed outside secdns" in result.stderr
    assert stored_master(zone_file) == pristine
    zone_file.unlink()
    result = pull(ORIGIN, f"@{primary.addr}", "-d", str(store), "--json")
    assert json.loads(result.stdout)["kind"] == "AXFR"
    assert stored_master(zone_file) == pristine


KEY = TsigKey.generate("xfr-key")


@pytest.fixture
def tsig_bind(bind_primary):
    return bind_primary(tsig={KEY.name: (KEY.algorithm, KEY.secret)}, allow_transfer_key=KEY.name)


def test_tsig_right_key(tsig_bind, tmp_path):
    result = pull(
        ORIGIN,
        f"@{tsig_bind.addr}",
        "-o",
        str(tmp_path / "z"),
        "--tsig",
        f"{KEY.algorithm}:{KEY.name}:{KEY.secret}",
    )
    assert result.exit_code == 0, result.stderr
    assert file_records(tmp_path / "z") == file_records(ZONE_FILE)


def test_tsig_key_file(tsig_bind, tmp_path):
    keyfile = tmp_path / "xfr.key"
    keyfile.write_text(
        f'# tsig-keygen output\nkey "{KEY.name}" {{\n\talgorithm {KEY.algorithm};\n'
        f'\tsecret "{KEY.secret}";\n}};\n'
    )
    result = pull(ORIGIN, f"@{tsig_bind.addr}", "-o", str(tmp_path / "z"), "-k", str(keyfile))
    assert result.exit_code == 0, result.stderr


def test_tsig_wrong_key(tsig_bind, tmp_path):
    wrong = TsigKey.generate("xfr-key")
    result = pull(
        ORIGIN,
        f"@{tsig_bind.addr}",
        "-o",
        str(tmp_path / "z"),
        "--tsig",
        f"{wrong.algorithm}:{wrong.name}:{wrong.secret}",
    )
    assert result.exit_code == 5, result.stderr
    assert "TSIG" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "z").exists()


def test_tsig_unknown_key_name(tsig_bind, tmp_path):
    other = TsigKey.generate("other-key")
    result = pull(
        ORIGIN,
        f"@{tsig_bind.addr}",
        "-o",
        str(tmp_path / "z"),
        "--tsig",
        f"{other.algorithm}:{other.name}:{other.secret}",
    )
    assert result.exit_code == 5, result.stderr
    assert "BADKEY" in result.stderr or "does not know" in result.stderr


def test_no_key_is_refused_with_hint(tsig_bind, tmp_path):
    result = pull(ORIGIN, f"@{tsig_bind.addr}", "-o", str(tmp_path / "z"))
    assert result.exit_code == 4, result.stderr
    assert "REFUSED" in result.stderr and "needs a TSIG key" in result.stderr
    assert "zone example.com., server 127.0.0.1:" in result.stderr


def test_a_zone_the_keyed_primary_does_not_serve_is_refused_not_a_tsig_failure(
    knot_primary, tmp_path
):
    """Knot answers a signed query for a zone it does not serve REFUSED without a TSIG:
    pull said "TSIG check failed: response requires a TSIG" (exit 5), and a stranger
    whose primary had dropped a zone went checking keys.  The RCODE is what went wrong."""
    knot = knot_primary(tsig={KEY.name: (KEY.algorithm, KEY.secret)}, allow_transfer_key=KEY.name)
    result = pull(
        "not-served.test",
        f"@{knot.addr}",
        "-o",
        str(tmp_path / "z"),
        "--tsig",
        f"{KEY.algorithm}:{KEY.name}:{KEY.secret}",
    )
    assert result.exit_code == 4, result.stderr
    assert "REFUSED" in result.stderr and "TSIG" not in result.stderr, result.stderr
    assert not (tmp_path / "z").exists()


@pytest.mark.parametrize("algorithm", ["hmac-sha1", "hmac-sha512", "hmac-md5"])
def test_other_tsig_algorithms(bind_primary, tmp_path, algorithm):
    key = TsigKey.generate("alg-key", algorithm)
    primary = bind_primary(
        tsig={key.name: (key.algorithm, key.secret)}, allow_transfer_key=key.name
    )
    result = pull(
        ORIGIN,
        f"@{primary.addr}",
        "-o",
        str(tmp_path / "z"),
        "--tsig",
        f"{algorithm}:{key.name}:{key.secret}",
    )
    assert result.exit_code == 0, result.stderr


def test_failover_to_second_primary(knot_primary, tmp_path):
    dead = free_port()
    knot = knot_primary()
    result = pull(
        ORIGIN,
        f"@127.0.0.1:{dead}",
        f"@{knot.addr}",
        "-o",
        str(tmp_path / "z"),
        "--timeout",
        "0.5",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["primary"] == knot.addr


def test_every_primary_down(tmp_path):
    ports = [free_port(), free_port()]
    result = pull(
        ORIGIN, *(f"@127.0.0.1:{p}" for p in ports), "-o", str(tmp_path / "z"), "--timeout", "0.3"
    )
    assert result.exit_code == 3
    assert "all 2 primaries failed" in result.stderr


def test_config_pulls_every_zone_concurrently(bind_primary, knot_primary, tmp_path):
    other = ZONE_FILE.read_text().replace("example.com.", "example.org.")
    bind = bind_primary({"example.com": ZONE_FILE, "example.org": other})
    knot = knot_primary(
        {"example.net": ZONE_FILE.read_text().replace("example.com.", "example.net.")}
    )
    config = tmp_path / "secdns.toml"
    init = CliRunner().invoke(
        cli,
        [
            "init",
            "-c",
            str(config),
            "-d",
            "zones",
            "example.com",
            f"@127.0.0.1:{free_port()}",
            f"@{bind.addr}",
            "example.org",
            f"@{bind.addr}",
            "example.net",
            f"@{knot.addr}",
            "broken.test",
            f"@{bind.addr}",
        ],
    )
    assert init.exit_code == 0, init.stderr
    result = CliRunner().invoke(cli, ["pull", "-c", str(config), "--json", "--timeout", "0.5"])
    doc = json.loads(result.stdout)
    by_zone = {r["zone"]: r for r in doc["results"]}
    assert {z: r["status"] for z, r in by_zone.items()} == {
        "example.com.": "transferred",
        "example.org.": "transferred",
        "example.net.": "transferred",
        "broken.test.": "failed",
    }
    assert result.exit_code == 4  # the worst: BIND refuses a zone it does not serve
    assert sorted(p.name for p in (tmp_path / "zones").glob("*.zone")) == [
        "example.com.zone",
        "example.net.zone",
        "example.org.zone",
    ]
    only = CliRunner().invoke(cli, ["pull", "-c", str(config), "example.org"])
    assert only.exit_code == 0 and only.stdout.count("\n") == 1
    assert "result=up-to-date" in only.output


def test_dig_agrees(bind_primary, tmp_path):
    """Our file and dig's AXFR hold the same records."""
    primary = bind_primary()
    out = tmp_path / "z"
    assert pull(ORIGIN, f"@{primary.addr}", "-o", str(out)).exit_code == 0
    dig = subprocess.run(
        [
            need_binary("dig"),
            f"@{primary.host}",
            "-p",
            str(primary.port),
            ORIGIN,
            "AXFR",
            "+nocmd",
            "+nostats",
        ],
        capture_output=True,
        text=True,
    )
    dig_file = tmp_path / "dig.zone"
    dig_file.write_text(dig.stdout)
    assert file_records(dig_file) == file_records(out)


def test_kdig_available():
    assert shutil.which("kdig") or need_binary("kdig")
