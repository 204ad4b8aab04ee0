"""``secdns pull --catalog`` against BIND 9 publishing a catalog zone (RFC 9432)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from servers import stored_master

from secdns.cli import cli

CATALOG = "catalog.invalid"


def member_zone(name: str, serial: int = 1) -> str:
    return (
        f"$ORIGIN {name}.\n$TTL 300\n"
        f"@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
        "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n"
    )


def catalog_zone(*members: tuple[str, str], extra: str = "") -> str:
    lines = [
        f"$ORIGIN {CATALOG}.",
        "$TTL 0",
        "@ SOA invalid. invalid. 1 3600 600 2147483646 0",
        "@ NS invalid.",
        'version TXT "2"',
    ]
    lines += [f"{unique}.zones PTR {member}." for unique, member in members]
    return "\n".join(lines) + "\n" + extra


def pull(*args: str):
    return CliRunner().invoke(cli, ["pull", *args])


def lines_by_zone(output: str) -> dict[str, str]:
    return {line.split()[0].removeprefix("zone="): line for line in output.splitlines() if line}


def test_catalog_members_follow_the_primary(bind_primary, tmp_path):
    zones = {z: member_zone(z) for z in ("example.com", "example.org", "example.net")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"), ("m2", "example.org"))
    primary = bind_primary(zones)
    store = tmp_path / "zones"
    store.mkdir()
    bystander = store / "other.example.zone"
    bystander.write_text("; not a member of any catalog\n")
    args = ["--catalog", CATALOG, f"@{primary.addr}", "-d", str(store)]

    first = pull(*args)
    assert first.exit_code == 0, first.stderr
    rows = lines_by_zone(first.stdout)
    assert list(rows) == ["catalog.invalid.", "example.com.", "example.org."]
    assert all("result=transferred kind=AXFR" in row for row in rows.values())
    assert stored_master(store / "example.org.zone").startswith("; zone example.org. serial 1")
    recorded = json.loads((store / "catalog.invalid.members.json").read_text())
    assert recorded["members"] == {"example.com.": "m1", "example.org.": "m2"}

    # a member added with nsupdate arrives; the catalog comes by IXFR
    primary.nsupdate(f"update add m3.zones.{CATALOG}. 0 PTR example.net.", zone=CATALOG)
    second = pull(*args)
    assert second.exit_code == 0, second.stderr
    rows = lines_by_zone(second.stdout)
    assert "kind=IXFR" in rows["catalog.invalid."]
    assert "result=up-to-date" in rows["example.com."]
    assert "result=transferred kind=AXFR" in rows["example.net."]

    # a member removed is kept until --prune; other zones in DIR are never touched
    primary.nsupdate(f"update delete m1.zones.{CATALOG}. PTR", zone=CATALOG)
    kept = pull(*args)
    assert kept.exit_code == 0, kept.stderr
    assert "example.com. is no longer a member: kept (--prune removes it)" in kept.stderr
    assert "example.com." not in lines_by_zone(kept.stdout)
    assert (store / "example.com.zone").exists()
    pruned = pull(*args, "--prune")
    assert pruned.exit_code == 0, pruned.stderr
    assert "example.com. is no longer a member: removed (--prune)" in pruned.stderr
    assert not (store / "example.com.zone").exists()
    assert not (store / "example.com.state.toml").exists()
    assert bystander.exists() and (store / "example.net.zone").exists()

    # a new unique id for a member: removed and transferred from scratch (RFC 9432 5.2)
    primary.nsupdate(
        f"update delete m2.zones.{CATALOG}. PTR\n"
        f"update add m2b.zones.{CATALOG}. 0 PTR example.org.",
        zone=CATALOG,
    )
    reset = pull(*args)
    assert reset.exit_code == 0, reset.stderr
    assert "serial=none->1" in lines_by_zone(reset.stdout)["example.org."]
    recorded = json.loads((store / "catalog.invalid.members.json").read_text())
    assert recorded == {
        "catalog": "catalog.invalid.",
        "members": {"example.net.": "m3", "example.org.": "m2b"},
        "removed": [],
    }


def test_hostile_catalog_changes_nothing_else(bind_primary, tmp_path):
    hostile = catalog_zone(
        ("good", "example.com"),
        ("self", CATALOG),
        ("twice", "example.com"),
        ("slash", "a/b\\.\\..example"),
        extra="multi.zones PTR x.example.\nmulti.zones PTR y.example.\n",
    )
    primary = bind_primary({CATALOG: hostile, "example.com": member_zone("example.com")})
    store = tmp_path / "zones"
    result = pull("--catalog", CATALOG, f"@{primary.addr}", "-d", str(store))
    assert result.exit_code == 6, result.stderr  # bad data from the primary
    err = result.stderr
    assert (
        f"catalog {CATALOG}.: self.zones.{CATALOG}. PTR {CATALOG}.: "
        "a catalog cannot list itself as a member" in err
    )
    assert "example.com. is listed twice; unique id good keeps it" in err
    assert err.count("member node multi has 2 PTR records") == 2
    rows = lines_by_zone(result.stdout)
    assert "result=transferred" in rows["example.com."]
    # a name that is a path in disguise stays inside DIR, and BIND does not serve it
    assert "result=failed" in rows["a/b\\.\\..example."]
    assert sorted(p.name for p in store.iterdir() if p.suffix == ".zone") == [
        "catalog.invalid.zone",
        "example.com.zone",
    ]
    assert not (tmp_path / "b").exists()


def test_an_unusable_catalog_keeps_the_members_it_had(bind_primary, tmp_path):
    primary = bind_primary(
        {
            CATALOG: catalog_zone(("m1", "example.com"), ("m2", "example.org")),
            "example.com": member_zone("example.com"),
            "example.org": member_zone("example.org"),
        }
    )
    store = tmp_path / "zones"
    args = ["--catalog", CATALOG, f"@{primary.addr}", "-d", str(store)]
    assert pull(*args).exit_code == 0
    recorded = (store / "catalog.invalid.members.json").read_text()

    over = pull(*args, "--max-members", "1")
    assert over.exit_code == 6
    assert "2 members, over the member limit of 1" in over.stderr
    assert list(lines_by_zone(over.stdout)) == ["catalog.invalid.", "example.com.", "example.org."]

    primary.nsupdate(
        f'update delete version.{CATALOG}. TXT\nupdate add version.{CATALOG}. 0 TXT "1"\n'
        f"update delete m2.zones.{CATALOG}. PTR",
        zone=CATALOG,
    )
    result = pull(*args, "--prune")
    assert result.exit_code == 6
    assert f"catalog {CATALOG}.: version.{CATALOG}. TXT: not a version 2 catalog" in result.stderr
    assert "result=up-to-date" in lines_by_zone(result.stdout)["example.org."]
    assert (store / "example.org.zone").exists()
    assert (store / "catalog.invalid.members.json").read_text() == recorded


def test_catalog_usage_errors(tmp_path):
    for args in (
        ["--catalog", CATALOG, "@127.0.0.1"],  # no -d
        ["--catalog", CATALOG, "-d", str(tmp_path)],  # no primary
        ["--catalog", CATALOG, "example.com", "@127.0.0.1", "-d", str(tmp_path)],
        ["--catalog", CATALOG, "@127.0.0.1", "-d", str(tmp_path), "-o", "x"],
    ):
        result = pull(*args)
        assert result.exit_code == 2, args
        assert "usage: secdns pull --catalog CATALOG @PRIMARY" in result.stderr
    config = tmp_path / "secdns.toml"
    config.write_text('[[zone]]\nname = "example.com"\nprimaries = ["127.0.0.1"]\n')
    with_config = pull("--catalog", CATALOG, "-c", str(config), "-d", str(tmp_path))
    assert with_config.exit_code == 2
    assert "--catalog goes with @PRIMARY, not -c" in with_config.stderr
    prune = pull("example.com", "@127.0.0.1", "-d", str(tmp_path), "--prune")
    assert prune.exit_code == 2 and "--prune removes former catalog members" in prune.stderr


def test_config_catalog_tables(tmp_path):
    from secdns.config import parse_config
    from secdns.errors import ConfigError

    config = parse_config(
        {
            "keys": {"k": {"secret": "c2VjcmV0"}},
            "catalog": [
                {"name": CATALOG, "primaries": ["127.0.0.1"], "key": "k", "max_members": 5},
                {"name": "tls.invalid", "primaries": ["127.0.0.1"], "transport": "tls"},
            ],
        }
    )
    first, second = config.catalogs
    assert (first.text, first.key, first.max_members, first.primaries[0].port) == (
        "catalog.invalid.",
        "k",
        5,
        53,
    )
    assert second.tls is not None and second.primaries[0].port == 853
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "zone": [{"name": CATALOG, "primaries": ["127.0.0.1"]}],
                "catalog": [
                    {"name": CATALOG, "primaries": ["127.0.0.1"], "key": "nope"},
                    {"name": "b.invalid", "max_members": 0, "colour": "red"},
                ],
            }
        )
    text = str(caught.value)
    assert "catalog[0] (catalog.invalid).name: defined twice (as a zone or a catalog)" in text
    assert "catalog[0] (catalog.invalid).key: unknown key 'nope'" in text
    assert "catalog[1] (b.invalid).primaries: a catalog needs primaries" in text
    assert "catalog[1] (b.invalid).max_members: expected a positive number" in text
    assert "catalog[1] (b.invalid).colour: unknown key" in text


def test_pull_config_with_two_catalogs(bind_primary, tmp_path):
    zones = {z: member_zone(z) for z in ("example.com", "example.org", "example.net")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"), ("m2", "example.org"))
    zones["second.invalid"] = catalog_zone(("n1", "example.org"), ("n2", "example.net")).replace(
        f"$ORIGIN {CATALOG}.", "$ORIGIN second.invalid."
    )
    primary = bind_primary(zones)
    config = tmp_path / "secdns.toml"
    config.write_text(
        f'[server]\ndirectory = "zones"\n\n'
        f'[[zone]]\nname = "example.com"\nprimaries = ["{primary.addr}"]\n\n'
        f'[[catalog]]\nname = "{CATALOG}"\nprimaries = ["{primary.addr}"]\n\n'
        f'[[catalog]]\nname = "second.invalid"\nprimaries = ["{primary.addr}"]\n'
    )
    result = pull("-c", str(config))
    assert result.exit_code == 0, result.stderr
    rows = lines_by_zone(result.stdout)
    assert sorted(rows) == [
        "catalog.invalid.",
        "example.com.",
        "example.net.",
        "example.org.",
        "second.invalid.",
    ]
    assert (
        f"catalog {CATALOG}.: example.com. is configured as a zone; not a member" in result.stderr
    )
    assert (
        "catalog second.invalid.: example.org. is a member of catalog catalog.invalid. already"
        in result.stderr
    )
    assert (tmp_path / "zones" / "example.net.zone").exists()
    first = json.loads((tmp_path / "zones" / "catalog.invalid.members.json").read_text())
    assert first["members"] == {"example.org.": "m2"}  # example.com. is a configured zone

    # example.org. leaves the first catalog: the second one takes it, --prune keeps it
    primary.nsupdate(f"update delete m2.zones.{CATALOG}. PTR", zone=CATALOG)
    moved = pull("-c", str(config), "--prune")
    assert moved.exit_code == 0, moved.stderr
    assert (tmp_path / "zones" / "example.org.zone").exists()
    assert (tmp_path / "zones" / "example.com.zone").exists()
    second = json.loads((tmp_path / "zones" / "second.invalid.members.json").read_text())
    assert second["members"] == {"example.net.": "n2", "example.org.": "n1"}


def test_change_of_ownership_moves_a_member(bind_primary, tmp_path):
    """RFC 9432 5.6: the first catalog's coo names the second, so the second gets it."""
    first = catalog_zone(("m1", "example.org"), extra="coo.m1.zones PTR second.invalid.\n")
    second = catalog_zone(("n1", "example.org")).replace(
        f"$ORIGIN {CATALOG}.", "$ORIGIN second.invalid."
    )
    primary = bind_primary(
        {CATALOG: first, "second.invalid": second, "example.org": member_zone("example.org")}
    )
    config = tmp_path / "secdns.toml"
    config.write_text(
        f'[server]\ndirectory = "zones"\n\n'
        f'[[catalog]]\nname = "{CATALOG}"\nprimaries = ["{primary.addr}"]\n\n'
        f'[[catalog]]\nname = "second.invalid"\nprimaries = ["{primary.addr}"]\n'
    )
    result = pull("-c", str(config))
    assert result.exit_code == 0, result.stderr
    assert (
        "catalog second.invalid.: example.org. moves here from catalog catalog.invalid. (coo)"
        in result.stderr
    )
    store = tmp_path / "zones"
    assert json.loads((store / "catalog.invalid.members.json").read_text())["members"] == {}
    moved = json.loads((store / "second.invalid.members.json").read_text())
    assert moved["members"] == {"example.org.": "n1"}
    assert (store / "example.org.zone").exists()


def test_verify_catalog_on_two_servers(bind_primary, tmp_path):
    """verify --catalog: the catalog's copies and every member's serial, on each server."""
    zones = {z: member_zone(z) for z in ("example.com", "example.org")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"), ("m2", "example.org"))
    first = bind_primary(zones)
    second = bind_primary(zones)
    servers = [f"@{first.addr}", f"@{second.addr}"]
    agree = CliRunner().invoke(cli, ["verify", "--catalog", CATALOG, *servers])
    assert agree.exit_code == 0, agree.stdout + agree.stderr
    assert [line.split()[:2] for line in agree.stdout.splitlines() if "result=" in line] == [
        ["zone=catalog.invalid.", "result=passed"],
        ["zone=example.com.", "result=passed"],
        ["zone=example.org.", "result=passed"],
        ["catalog=catalog.invalid.", "result=passed"],  # (with its findings counted)
    ]
    assert agree.stdout.splitlines()[-1].endswith("members=2 catalog_findings=0")

    second.nsupdate("update add late.example.org. 300 A 192.0.2.9", zone="example.org")
    second.nsupdate(f"update add m3.zones.{CATALOG}. 0 PTR example.net.", zone=CATALOG)
    behind = CliRunner().invoke(cli, ["verify", "--catalog", CATALOG, *servers, "--json"])
    assert behind.exit_code == 1, behind.stderr
    doc = json.loads(behind.stdout)
    assert doc["catalog"]["result"] == "failed"  # the copies differ: m3 only on one
    by_zone = {m["zone"]: m["result"] for m in doc["members"]}
    assert by_zone == {"example.com.": "passed", "example.net.": "failed", "example.org.": "failed"}
