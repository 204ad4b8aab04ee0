"""``serve`` publishing a catalog zone (``[server] catalog``) that BIND 9.18 and Knot consume."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import dns.name
import dns.query
import dns.rdatatype
import pytest
import tomli_w
from servers import (
    LOOPBACK,
    Bind,
    Endpoint,
    Knot,
    _knot_conf,
    _named_conf,
    _quote,
    _Setup,
    free_port,
    need_binary,
)
from serving import ServerThread
from test_catalog_pull import member_zone

from secdns import catalog as catalogs

PUBLISHED = "served.catalog.invalid"


class CatalogBind(Bind):
    """named as a secondary of one catalog zone, its members from ``default-primaries``."""

    @classmethod
    def start_consumer(
        cls, tmp_dir: Path, catalog: str, primary: Endpoint, port: int | None = None
    ) -> Self:
        named = need_binary(cls.program)
        setup = _Setup.prepare(tmp_dir, {}, also_secondary_of={catalog: primary})
        host, primary_port = primary

        def configure(listen: int) -> list[str]:
            conf = _named_conf(setup, listen, True, True)
            block = (
                f"    catalog-zones {{ zone {_quote(catalog + '.')} "
                f"default-primaries {{ {host} port {primary_port}; }} "
                f"zone-directory {_quote(setup.workdir / 'secondary')} "
                "min-update-interval 1; };\n"
                "    allow-new-zones yes;\n"
            )
            anchor = f"    listen-on port {listen} {{ {LOOPBACK}; }};\n"
            conf = conf.replace(anchor, anchor + block)
            path = setup.workdir / "named.conf"
            path.write_text(conf)
            return [named, "-g", "-4", "-n", "2", "-c", str(path)]

        return cls._launch(setup, configure, port)


class CatalogKnot(Knot):
    """knotd interpreting one catalog zone (``catalog-role: interpret``), members by template."""

    @classmethod
    def start_consumer(cls, tmp_dir: Path, catalog: str, primary: Endpoint) -> Self:
        knotd = need_binary(cls.program)
        setup = _Setup.prepare(tmp_dir, {}, also_secondary_of={catalog: primary})
        (setup.workdir / "db").mkdir(exist_ok=True)
        control_socket = setup.workdir / "knot.sock"

        def configure(port: int) -> list[str]:
            conf = _knot_conf(setup, port, control_socket)
            template = (
                "  - id: member\n"
                f"    storage: {_quote(setup.workdir / 'secondary')}\n"
                "    master: primary0\n"
                "    acl: [transfer, notify-from-primary0]\n"
                "\nzone:\n"
            )
            conf = conf.replace("\nzone:\n", "\n" + template, 1)
            conf = conf.replace(
                "    acl: [transfer, notify-from-primary0]\n",
                "    acl: [transfer, notify-from-primary0]\n"
                "    catalog-role: interpret\n"
                "    catalog-template: member\n",
            )
            # the template's own acl line was rewritten too: put it back
            conf = conf.replace(
                "    master: primary0\n    acl: [transfer, notify-from-primary0]\n"
                "    catalog-role: interpret\n    catalog-template: member\n\nzone:",
                "    master: primary0\n    acl: [transfer, notify-from-primary0]\n\nzone:",
            )
            path = setup.workdir / "knot.conf"
            path.write_text(conf)
            return [knotd, "-c", str(path)]

        server = cls._launch(setup, configure)
        server.control_socket = control_socket
        return server

    def _wait_ready(self, timeout: float = 15.0) -> None:
        """knotd does not answer for an interpreted catalog: ready once it has read one."""
        deadline = time.monotonic() + timeout
        log = self.workdir / "server.log"
        while "catalog reloaded" not in log.read_text(errors="replace"):
            self._check_alive("start")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self!r} never read the catalog\n{self.log_tail()}")
            time.sleep(0.05)


@pytest.fixture
def running(tmp_path) -> Iterator[list[Any]]:
    """Servers (secdns threads and daemons) to stop at teardown, last started first."""
    started: list[Any] = []
    yield started
    for server in reversed(started):
        server.stop()


def producer_config(tmp_path: Path, port: int, zones: list[str], notify: list[str]) -> Path:
    files = tmp_path / "zones"
    files.mkdir(exist_ok=True)
    for zone in zones:
        (files / f"{zone}.zone").write_text(member_zone(zone))
    doc = {
        "server": {
            "directory": str(tmp_path / "store"),
            "listen": [f"127.0.0.1:{port}"],
            "catalog": PUBLISHED,
            "catalog_allow_transfer": ["127.0.0.1"],
            "catalog_notify": notify,
        },
        "zone": [
            {"name": z, "file": str(files / f"{z}.zone"), "allow_transfer": ["127.0.0.1"]}
            for z in zones
        ],
    }
    path = tmp_path / "secdns.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def wait_answers(server: Bind, zone: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if server.soa_serial(zone, timeout=0.5) is not None:
                return
        except Exception:  # noqa: BLE001 - not there yet
            if time.monotonic() > deadline:
                tail = server.log_tail()
                raise AssertionError(f"{server!r} never served {zone}\n{tail}") from None
            time.sleep(0.1)


def test_published_catalog_lists_every_zone(tmp_path, running):
    port = free_port()
    config = producer_config(tmp_path, port, ["example.com", "example.org"], [])
    server = ServerThread(config)
    running.append(server)
    reply = server.query(PUBLISHED, "PTR")  # the apex has none: NOERROR, no data
    assert reply.rcode() == 0
    soa = server.query(PUBLISHED, "SOA").answer[0][0]
    assert soa.serial >= int(time.time()) - 60
    zones = {dns.name.from_text(z) for z in ("example.com", "example.org")}
    for zone in zones:
        node = f"{catalogs.unique_id(zone)}.zones.{PUBLISHED}."
        answer = server.query(node, "PTR").answer
        assert answer[0][0].target == zone
    version = server.query(f"version.{PUBLISHED}.", "TXT").answer[0][0]
    assert version.strings == (b"2",)
    # transferable under catalog_allow_transfer: the same member set
    xfr = list(dns.query.xfr("127.0.0.1", PUBLISHED, port=port, timeout=5))
    ptrs = {
        rdata.target
        for message in xfr
        for rrset in message.answer
        if rrset.rdtype == dns.rdatatype.PTR
        for rdata in rrset
    }
    assert ptrs == zones


def test_bind_follows_the_published_catalog(tmp_path, running):
    port = free_port()
    bind_port = free_port()
    config = producer_config(
        tmp_path, port, ["example.com", "example.org"], [f"127.0.0.1:{bind_port}"]
    )
    server = ServerThread(config)
    running.append(server)
    # named listens on a port of its own choosing; NOTIFY reaches it once reconfigured below
    bind = CatalogBind.start_consumer(tmp_path / "bind", PUBLISHED, ("127.0.0.1", port))
    running.append(bind)
    wait_answers(bind, "example.com")
    wait_answers(bind, "example.org")

    # a zone added to secdns's config (SIGHUP) reaches BIND without touching BIND's config
    producer_config(tmp_path, port, ["example.com", "example.org", "example.net"], [bind.addr])
    server.call(lambda: server.server.reload())
    wait_answers(bind, "example.net")


def test_knot_follows_the_published_catalog(tmp_path, running):
    port = free_port()
    config = producer_config(tmp_path, port, ["example.com", "example.org"], [])
    server = ServerThread(config)
    running.append(server)
    knot = CatalogKnot.start_consumer(tmp_path / "knot", PUBLISHED, ("127.0.0.1", port))
    running.append(knot)
    wait_answers(knot, "example.com")
    wait_answers(knot, "example.org")
    producer_config(tmp_path, port, ["example.com", "example.org", "example.net"], [knot.addr])
    server.call(lambda: server.server.reload())
    wait_answers(knot, "example.net")
