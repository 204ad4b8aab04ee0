"""``serve`` following catalog zones (RFC 9432) that real BIND publishes."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import dns.name
import dns.query
import dns.rcode
import dns.zone
import pytest
import tomli_w
from servers import free_port
from serving import ServerThread
from test_catalog_pull import CATALOG, catalog_zone, member_zone
from test_ops import ctl

from secdns import catalog as catalogs


@pytest.fixture
def served():
    started: list[ServerThread] = []

    def start(config_path: Path) -> ServerThread:
        server = ServerThread(config_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def catalog_config(
    tmp_path: Path, primary, port: int, *, zones: list[dict[str, Any]] = (), **extra: Any
) -> Path:
    doc: dict[str, Any] = {
        "server": {
            "directory": str(tmp_path / "store"),
            "listen": [f"127.0.0.1:{port}"],
            **extra.pop("server", {}),
        },
        "catalog": [{"name": CATALOG, "primaries": [primary.addr], **extra.pop("catalog", {})}],
    }
    if zones:
        doc["zone"] = list(zones)
    doc.update(extra)
    path = tmp_path / "secdns.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def rcode(server: ServerThread, zone: str) -> int:
    return server.query(zone, "SOA").rcode()


def wait_for(predicate, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("condition never held")


def test_members_follow_the_catalog(bind_primary, served, tmp_path):  # noqa: PLR0915
    port = free_port()
    zones = {z: member_zone(z) for z in ("example.com", "example.org", "example.net")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"), ("m2", "example.org"))
    primary = bind_primary(zones, notify=[("127.0.0.1", port)])
    server = served(catalog_config(tmp_path, primary, port, server={"catalog": "mine.invalid"}))
    store = tmp_path / "store"
    server.wait_serial("example.com", 1)
    server.wait_serial("example.org", 1)
    assert rcode(server, "example.net.") == dns.rcode.REFUSED

    # added with nsupdate: the catalog's NOTIFY, then the member's AXFR, within a second
    primary.nsupdate(f"update add m3.zones.{CATALOG}. 0 PTR example.net.", zone=CATALOG)
    started = time.monotonic()
    server.wait_serial("example.net", 1, timeout=10)
    assert time.monotonic() - started < 1.5
    assert server.query("www.example.net.", "A").answer[0][0].address == "192.0.2.2"
    # ... and joins the catalog serve publishes
    node = f"{catalogs.unique_id(dns.name.from_text('example.net'))}.zones.mine.invalid."
    wait_for(lambda: server.query(node, "PTR").answer)

    # removed: REFUSED and its files gone from the store
    assert (store / "example.com.zone").exists()
    primary.nsupdate(f"update delete m1.zones.{CATALOG}. PTR", zone=CATALOG)
    wait_for(lambda: rcode(server, "example.com.") == dns.rcode.REFUSED)
    wait_for(lambda: not list(store.glob("example.com.*")))

    # a new unique id: transferred again from scratch (RFC 9432 5.2)
    before = server.server.runtimes[dns.name.from_text("example.org")]
    primary.nsupdate(
        f"update delete m2.zones.{CATALOG}. PTR\n"
        f"update add m2b.zones.{CATALOG}. 0 PTR example.org.",
        zone=CATALOG,
    )
    name = dns.name.from_text("example.org")
    wait_for(lambda: server.server.runtimes.get(name) not in (None, before))
    runtime = server.server.runtimes[name]
    wait_for(lambda: runtime.last_result is not None)
    assert runtime.last_result.kind.value == "AXFR"
    assert runtime.last_result.serial_from is None
    assert server.serial("example.org") == 1

    # members survive a restart: answered from the store before any refresh
    server.stop()
    primary.stop()
    again = served(catalog_config(tmp_path, primary, free_port()))
    assert again.serial("example.net") == 1
    assert again.serial("example.org") == 1
    assert rcode(again, "example.com.") == dns.rcode.REFUSED


def test_hostile_catalog_is_logged_and_changes_nothing_else(bind_primary, served, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="secdns")
    port = free_port()
    hostile = catalog_zone(
        ("good", "example.com"),
        ("self", CATALOG),
        ("twice", "example.com"),
        ("conf", "example.org"),
        ("slash", "a/b\\.\\..example"),
        extra="multi.zones PTR x.example.\nmulti.zones PTR y.example.\n",
    )
    zones = {CATALOG: hostile, "example.com": member_zone("example.com")}
    zones["example.org"] = member_zone("example.org", 7)
    primary = bind_primary(zones, notify=[("127.0.0.1", port)])
    configured = {"name": "example.org", "primaries": [primary.addr]}
    server = served(catalog_config(tmp_path, primary, port, zones=[configured]))
    server.wait_serial("example.com", 1)
    server.wait_serial("example.org", 7)
    wait_for(lambda: "a catalog cannot list itself" in caplog.text)
    assert f"catalog {CATALOG}.: self.zones.{CATALOG}. PTR {CATALOG}.: " in caplog.text
    assert "example.com. is listed twice; unique id good keeps it" in caplog.text
    assert caplog.text.count("member node multi has 2 PTR records") == 2
    assert rcode(server, "x.example.") == dns.rcode.REFUSED
    # the configured zone wins and stays configured
    owner = server.server.catalogs.owner
    assert dns.name.from_text("example.com") in owner
    assert dns.name.from_text("example.org") not in owner
    # a name that is a path in disguise is a member that stays inside the store
    assert not (tmp_path / "b").exists() and not (tmp_path / "store" / "b").exists()
    assert server.server.runtimes[dns.name.from_text("example.org")].config.key is None
    # and the metrics say so, not only the log (a stranger's catalog stayed 'ok' meanwhile)
    page = server.server.operations.metrics.exposition().decode()
    label = f'{{catalog="{CATALOG}."}}'
    assert f"secdns_catalog_members{label} 2.0" in page, page
    skipped = float(page.split(f"secdns_catalog_records_skipped{label} ")[1].split()[0])
    assert skipped >= 4
    assert f"secdns_catalog_usable{label} 1.0" in page
    # ctl status and /readyz say so too (a stranger's alerting on them saw nothing)
    zones = server.server.operations.zones
    catalog_name = dns.name.from_text(CATALOG)
    (status,) = [s for s in zones.statuses() if s.zone == f"{CATALOG}."]
    assert status.state == "ok" and status.last_error is not None
    assert "records not used (the log says which)" in status.last_error

    # a catalog that is not version 2 any more changes nothing
    caplog.clear()
    primary.nsupdate(
        f'update delete version.{CATALOG}. TXT\nupdate add version.{CATALOG}. 0 TXT "1"',
        zone=CATALOG,
    )
    wait_for(lambda: "is unusable: keeping its 2 members" in caplog.text)
    # the records still not used are not said again at each change (the new one is)
    assert "member node multi has 2 PTR records" not in caplog.text
    assert "not a version 2 catalog" in caplog.text and f"from {primary.addr})" in caplog.text
    page = server.server.operations.metrics.exposition().decode()
    assert f"secdns_catalog_usable{label} 0.0" in page
    assert f"secdns_catalog_members{label} 2.0" in page
    (status,) = [s for s in zones.statuses() if s.zone == f"{CATALOG}."]
    assert status.state == "unusable" and "keeping its 2 members" in (status.last_error or "")
    from secdns.metrics import readiness

    ready, text = readiness(zones.statuses())
    assert not ready and f"not ready: zone={CATALOG}. state=unusable" in text
    assert server.server.catalogs.problems[catalog_name][0] is False
    # a different unique id in the new catalog: the zone is transferred afresh (5.2)
    server.wait_serial("example.com", 1)


def test_group_settings_and_two_catalogs(bind_primary, served, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="secdns")
    port = free_port()
    other = "other.invalid"
    zones = {z: member_zone(z) for z in ("example.com", "example.org")}
    zones[CATALOG] = catalog_zone(
        ("m1", "example.com"),
        ("m2", "example.org"),
        extra='group.m2.zones TXT "special"\n',
    )
    zones[other] = catalog_zone().replace(CATALOG, other)
    primary = bind_primary(zones, notify=[("127.0.0.1", port)])
    path = catalog_config(
        tmp_path,
        primary,
        port,
        groups={"special": {"allow_transfer": ["127.0.0.0/8"]}},
    )
    text = path.read_text() + f'\n[[catalog]]\nname = "{other}"\nprimaries = ["{primary.addr}"]\n'
    path.write_text(text)
    server = served(path)
    server.wait_serial("example.org", 1)
    server.wait_serial("example.com", 1)
    runtimes = server.server.runtimes
    assert runtimes[dns.name.from_text("example.org")].config.allow_transfer == ("127.0.0.0/8",)
    assert runtimes[dns.name.from_text("example.com")].config.allow_transfer == ()
    assert server.server.catalogs.owner[dns.name.from_text("example.com")] == dns.name.from_text(
        CATALOG
    )
    # a group no [groups.*] names: said once, the catalog's settings (a typo was silent)
    primary.nsupdate(f'update add group.m1.zones.{CATALOG}. 0 TXT "specal"', zone=CATALOG)
    wait_for(lambda: "member example.com. names group 'specal', no [groups.*]" in caplog.text)
    assert runtimes[dns.name.from_text("example.com")].config.allow_transfer == ()
    # listed by a second catalog later: the first keeps it, and the conflict is logged
    primary.nsupdate(f"update add o1.zones.{other}. 0 PTR example.com.", zone=other)
    wait_for(lambda: f"example.com. is a member of catalog {CATALOG}. already" in caplog.text)
    # coo: the first catalog hands example.com over to the other
    primary.nsupdate(f"update add coo.m1.zones.{CATALOG}. 0 PTR {other}.", zone=CATALOG)
    wait_for(
        lambda: (
            server.server.catalogs.owner.get(dns.name.from_text("example.com"))
            == dns.name.from_text(other)
        )
    )
    # a different unique id in the new catalog: the zone is transferred afresh (5.2)
    server.wait_serial("example.com", 1)
    # ctl status --catalog: the members one catalog gives (last: ctl sets up logging anew)
    listed = ctl(path, "status", "--catalog", CATALOG)
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines()] == ["zone=example.org."]
    listed = ctl(path, "status", "--catalog", other)
    assert [line.split()[0] for line in listed.output.splitlines()] == ["zone=example.com."]
    unknown = ctl(path, "status", "--catalog", "example.com")
    assert unknown.exit_code == 2 and "is not a [[catalog]] of this server" in unknown.output


def test_sighup_member_limit_configured_zone_and_catalog_removed(bind_primary, served, tmp_path):
    port = free_port()
    zones = {z: member_zone(z) for z in ("example.com", "example.org")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"), ("m2", "example.org"))
    primary = bind_primary(zones, notify=[("127.0.0.1", port)])
    store = tmp_path / "store"
    path = catalog_config(tmp_path, primary, port, catalog={"max_members": 1})
    server = served(path)
    wait_for(lambda: (store / f"{CATALOG}.zone").exists())
    time.sleep(0.3)
    assert rcode(server, "example.com.") == dns.rcode.REFUSED  # over the limit: no members

    def reload(**extra: Any) -> None:
        catalog_config(tmp_path, primary, port, **extra)
        server.call(lambda: server.server.reload())

    reload()  # the limit raised: the catalog's members are taken at once
    server.wait_serial("example.com", 1)
    server.wait_serial("example.org", 1)
    # settings of the catalog changed: counted as changed, the catalog and its members
    # (a stranger's applied changes said changed=0)
    catalog_config(tmp_path, primary, port, catalog={"allow_transfer": ["::1"]})
    done = server.call(lambda: server.server.reload())
    assert (done.added, done.removed, done.changed) == (0, 0, 3), done
    reload()

    # a [[zone]] wins over the catalog: same data, the zone's own settings
    configured = {"name": "example.org", "primaries": [primary.addr], "allow_transfer": ["::1"]}
    reload(zones=[configured])
    runtime = server.server.runtimes[dns.name.from_text("example.org")]
    assert runtime.config.allow_transfer == ("::1",)
    assert dns.name.from_text("example.org") not in server.server.catalogs.owner
    assert server.serial("example.org") == 1
    assert (store / "example.org.zone").exists()

    # the catalog removed from the config: its members go, the configured zone stays;
    # their files are kept, as a removed [[zone]]'s (a stranger's typo would have wiped
    # a customer's zones), and the catalog put back serves them from the store at once
    before = path.read_text()
    doc = before[: before.index("[[catalog]]")] + before[before.index("[[zone]]") :]
    path.write_text(doc)
    done = server.call(lambda: server.server.reload())
    assert (done.added, done.removed) == (0, 2)  # the catalog and its member
    wait_for(lambda: rcode(server, "example.com.") == dns.rcode.REFUSED)
    assert (store / "example.com.zone").exists()
    assert server.serial("example.org") == 1
    path.write_text(before)
    done = server.call(lambda: server.server.reload())
    assert (done.added, done.removed) == (2, 0)  # (a stranger's reload said added=0)
    server.wait_serial("example.com", 1)
    # a change the catalog's NOTIFY brought while it was out of the config is seen at
    # once when it is back, not within the five minutes a restart spreads checks over
    doc = before[: before.index("[[catalog]]")] + before[before.index("[[zone]]") :]
    path.write_text(doc)
    server.call(lambda: server.server.reload())
    primary.nsupdate(f"update delete m1.zones.{CATALOG}. PTR", zone=CATALOG)
    path.write_text(before)
    server.call(lambda: server.server.reload())
    assert wait_for(lambda: rcode(server, "example.com.") == dns.rcode.REFUSED) < 5


def test_a_catalog_knot_generates_is_followed_though_knot_refuses_it_over_udp(
    knot_primary, served, tmp_path
):
    """Knot answers queries for a catalog it generates over TCP only (REFUSED over
    UDP): the catalog's SOA query is asked again over TCP, as BIND's try-tcp-refresh
    does.  A stranger's 2,000-member Knot catalog was transferred once at the start
    (no SOA query for a zone holding nothing) and never again: members added on Knot
    were never served, removed ones served on."""
    port = free_port()
    zones = {z: member_zone(z) for z in ("a.example", "b.example")}
    primary = knot_primary(zones, catalog="knotcat.test", notify=[("127.0.0.1", port)])
    (tmp_path / "c.zone").write_text(member_zone("c.example"))
    allowed = {"name": "knotcat.test", "allow_transfer": ["127.0.0.1"]}
    config = catalog_config(tmp_path, primary, port, catalog=allowed)
    server = served(config)
    server.wait_serial("a.example", 1)
    server.wait_serial("b.example", 1)
    assert rcode(server, "c.example.") == dns.rcode.REFUSED
    # the [[catalog]]'s allow_transfer: a secondary of ours may transfer the catalog,
    # then its members, from us (a stranger found no way without a group property)
    for zone in ("knotcat.test", "a.example"):
        copied = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", zone, port=server.port))
        assert copied.origin == dns.name.from_text(zone)
    primary.knotc("conf-begin")
    for item in (
        "zone[c.example]",
        f"zone[c.example].file={tmp_path / 'c.zone'}",
        "zone[c.example].catalog-role=member",
        "zone[c.example].catalog-zone=knotcat.test",
        "zone[c.example].acl=transfer",
    ):
        primary.knotc("conf-set", *item.split("=", 1))
    primary.knotc("conf-commit")
    server.wait_serial("c.example", 1, timeout=10)  # Knot's NOTIFY of the catalog, then its
    assert server.server is not None
    refreshed = server.server.operations.zones.statuses(["knotcat.test"])[0]
    assert refreshed.state == "ok" and refreshed.last_error is None
