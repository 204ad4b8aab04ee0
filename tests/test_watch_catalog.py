"""``secdns watch --catalog``: follow a catalog zone (RFC 9432) that real BIND publishes."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import dns.name
from servers import free_port, stored_master
from test_catalog_pull import CATALOG, catalog_zone, member_zone
from test_watch import ROOT, SECDNS, Recorder, run

from secdns.catalog_watch import CatalogWatch
from secdns.endpoints import Endpoint
from secdns.mirror import MirrorEventKind, MirrorOptions, MirrorZone
from secdns.store import Store, iso_time


def wait_for(predicate, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("condition never held")


def members(store: Path) -> dict:
    try:
        return json.loads((store / f"{CATALOG}.members.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


class Lines:
    """A subprocess's stdout, line by line, read by a thread."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def rest(self) -> list[str]:
        """Every line not waited for, to the end of the stream."""
        self._thread.join(10)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return self.lines

    def wait(self, *words: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if all(word in line for word in words):
                    self.lines.remove(line)
                    return line
            try:
                self.lines.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no line with {words}; got {self.lines}") from None


def test_cli_follows_the_catalog_and_stops_with_a_summary(bind_primary, tmp_path):  # noqa: PLR0915
    port = free_port()
    zones = {z: member_zone(z) for z in ("example.com", "example.org", "example.net")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"), ("m2", "example.org"))
    primary = bind_primary(zones, notify=[("127.0.0.1", port)])
    store = tmp_path / "zones"
    process = subprocess.Popen(
        [
            *SECDNS,
            "watch",
            "--catalog",
            CATALOG,
            f"@{primary.addr}",
            "-d",
            str(store),
            "--interval",
            "60",  # only NOTIFY brings changes in this test
            "--notify-listen",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = Lines(process.stdout)
        out.wait("event=updated", f"zone={CATALOG}.", "serial=none->1", "via=AXFR")
        out.wait("event=updated", "zone=example.com.", "serial=none->1")
        out.wait("event=updated", "zone=example.org.", "serial=none->1")
        assert members(store)["members"] == {"example.com.": "m1", "example.org.": "m2"}

        # added with nsupdate: BIND's NOTIFY, the catalog's IXFR, the member's AXFR
        primary.nsupdate(f"update add m3.zones.{CATALOG}. 0 PTR example.net.", zone=CATALOG)
        started = time.monotonic()
        out.wait("event=updated", f"zone={CATALOG}.", "serial=1->2", "via=IXFR")
        out.wait("event=updated", "zone=example.net.", "serial=none->1", "via=AXFR")
        assert time.monotonic() - started < 3
        assert stored_master(store / "example.net.zone").startswith("; zone example.net. serial 1")

        # removed: followed no more, its file kept (no --prune), recorded as an ex-member
        primary.nsupdate(f"update delete m1.zones.{CATALOG}. PTR", zone=CATALOG)
        out.wait("event=updated", f"zone={CATALOG}.", "serial=2->3")
        out.wait("event=removed", "zone=example.com.", "serial=1")  # (not only counted)
        wait_for(lambda: members(store).get("removed") == ["example.com."])
        # (lines are stamped in UTC to the millisecond, and so is this, not to the second:
        # BIND's NOTIFY at its start can come after watch listens, is not waited for, and
        # once came in the same second as the removal, ahead of it)
        removed_at = iso_time()
        assert (store / "example.com.zone").exists()
        primary.nsupdate("update add new.example.com. 300 A 192.0.2.9", zone="example.com")

        # a new unique id: removed and transferred from scratch (RFC 9432 5.2)
        primary.nsupdate(
            f"update delete m2.zones.{CATALOG}. PTR\n"
            f"update add m2b.zones.{CATALOG}. 0 PTR example.org.",
            zone=CATALOG,
        )
        out.wait("event=updated", "zone=example.org.", "serial=none->1", "via=AXFR")
        wait_for(lambda: members(store)["members"].get("example.org.") == "m2b")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        stderr = process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    rest = out.rest()
    # the removed member's NOTIFY after its removal brought nothing
    after = [line for line in rest if line.split(" ", 1)[0] > f"time={removed_at}"]
    assert not [line for line in after if "zone=example.com." in line], rest
    summary = rest[-1]
    assert f"event=summary catalog={CATALOG}. serial=4 members=2" in summary, rest
    assert "added=3 removed=1 reset=1 pruned=0 findings=0" in summary
    assert f"catalog={CATALOG}. member example.net. added: following it" in stderr
    assert f"catalog={CATALOG}. member example.com. removed: no longer followed" in stderr
    assert f"catalog {CATALOG}.: example.com. is no longer a member: kept (--prune" in stderr
    assert "example.org. has a new unique id m2b: transferring it from scratch" in stderr
    assert "new.example.com" not in (store / "example.com.zone").read_text()


async def follow(watch: CatalogWatch, scenario) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(watch.run(stop))
    try:
        await scenario()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def catalog_watch(primary, store: Path, events: Recorder, **kw) -> CatalogWatch:
    catalog = MirrorZone(dns.name.from_text(CATALOG), (Endpoint(primary.host, primary.port),))
    options = MirrorOptions(interval=0.2, jitter=0, timeout=1.0)
    return CatalogWatch(catalog, Store(store), options, on_event=events, **kw)


def updated(events: Recorder, zone: str) -> list:
    return [e for e in events.of(MirrorEventKind.UPDATED) if e.zone == zone]


def test_prune_removes_an_ex_members_files_and_members_survive_a_restart(bind_primary, tmp_path):
    zones = {z: member_zone(z) for z in ("example.com", "example.org")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"), ("m2", "example.org"))
    primary = bind_primary(zones)
    store = tmp_path / "zones"
    events = Recorder()

    async def first() -> None:
        await events.wait(
            lambda: updated(events, "example.org.") and updated(events, "example.com.")
        )

    asyncio.run(follow(catalog_watch(primary, store, events), first))
    primary.nsupdate(f"update delete m1.zones.{CATALOG}. PTR", zone=CATALOG)

    # a restart: the members are followed from members.json at once, then the
    # catalog's change made meanwhile is applied, and --prune removes the files
    again = Recorder()
    watch = catalog_watch(primary, store, again, prune=True)
    assert sorted(o.to_text() for o in watch.mirror.origins) == [
        f"{CATALOG}.",
        "example.com.",
        "example.org.",
    ]

    async def second() -> None:
        await again.wait(lambda: not list(store.glob("example.com.*")))
        await again.wait(lambda: dns.name.from_text("example.com") not in watch.mirror.origins)
        # the mirror goes on after a zone it started with is removed
        catalog = dns.name.from_text(CATALOG)
        checked = watch.mirror.status(catalog).last_refresh or 0.0
        await again.wait(lambda: (watch.mirror.status(catalog).last_refresh or 0.0) > checked)

    asyncio.run(follow(watch, second))
    assert members(store) == {
        "catalog": f"{CATALOG}.",
        "members": {"example.org.": "m2"},
        "removed": [],
    }
    assert (store / "example.org.zone").exists()
    summary = watch.summary()
    assert (summary.members, summary.removed, summary.pruned) == (1, 1, 1)
    assert not updated(again, "example.org.")  # up to date from the store: no transfer


def test_hostile_catalog_is_logged_and_changes_nothing_else(bind_primary, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="secdns")
    hostile = catalog_zone(
        ("good", "example.com"),
        ("self", CATALOG),
        ("twice", "example.com"),
        extra="multi.zones PTR x.example.\nmulti.zones PTR y.example.\n",
    )
    zones = {CATALOG: hostile, "example.com": member_zone("example.com")}
    primary = bind_primary(zones)
    store = tmp_path / "zones"
    events = Recorder()
    watch = catalog_watch(primary, store, events)

    async def scenario() -> None:
        await events.wait(lambda: updated(events, "example.com."))
        assert f"catalog {CATALOG}.: self.zones.{CATALOG}. PTR {CATALOG}.: " in caplog.text
        assert "a catalog cannot list itself as a member" in caplog.text
        assert "example.com. is listed twice; unique id good keeps it" in caplog.text
        assert caplog.text.count("member node multi has 2 PTR records") == 2
        # hostile records added later: logged, and nothing else changes
        caplog.clear()
        await asyncio.to_thread(
            primary.nsupdate,
            f"update add bad.zones.{CATALOG}. 0 PTR {CATALOG}.\n"
            f"update add zdup.zones.{CATALOG}. 0 PTR example.com.",
            zone=CATALOG,
        )
        await events.wait(lambda: f"bad.zones.{CATALOG}. PTR {CATALOG}.: a catalog" in caplog.text)
        assert "example.com. is listed twice; unique id zdup keeps it" not in caplog.text
        assert "example.com. is listed twice; unique id good keeps it" in caplog.text
        assert sorted(o.to_text() for o in watch.mirror.origins) == [f"{CATALOG}.", "example.com."]
        assert members(store)["members"] == {"example.com.": "good"}
        # not version 2 any more: logged, the members kept and still followed
        caplog.clear()
        await asyncio.to_thread(
            primary.nsupdate,
            f'update delete version.{CATALOG}. TXT\nupdate add version.{CATALOG}. 0 TXT "1"\n'
            f"update delete good.zones.{CATALOG}. PTR\nupdate delete zdup.zones.{CATALOG}. PTR",
            zone=CATALOG,
        )
        await events.wait(lambda: "is unusable: keeping its 1 members" in caplog.text)

    asyncio.run(follow(watch, scenario))
    assert sorted(o.to_text() for o in watch.mirror.origins) == [f"{CATALOG}.", "example.com."]
    assert sorted(p.name for p in store.iterdir() if p.suffix == ".zone") == [
        "catalog.invalid.zone",
        "example.com.zone",
    ]
    assert members(store)["members"] == {"example.com.": "good"}
    assert watch.summary().findings >= 5


def test_catalog_usage_errors(tmp_path):
    for args, message in (
        (["--catalog", CATALOG, "@127.0.0.1"], "usage: secdns watch --catalog CATALOG @PRIMARY"),
        (["--catalog", CATALOG, "-d", str(tmp_path)], "usage: secdns watch --catalog"),
        (["--catalog", CATALOG, "example.com", "@127.0.0.1", "-d", "x"], "usage: secdns watch"),
        (["--catalog", CATALOG, "@127.0.0.1", "-d", "x", "-o", "y"], "-o cannot be used with"),
        (["example.com", "@127.0.0.1", "-d", "x", "--prune"], "--prune removes former catalog"),
        (["example.com", "--servers", "@127.0.0.1", "--catalog", CATALOG], "--catalog cannot"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)


def test_cli_catalog_over_tls_with_tsig_and_json(tmp_path):
    """The members come from the catalog's primaries with its key and TLS settings."""
    from servers import TsigKey
    from xotservers import Pki, XotBind

    pki = Pki.make(tmp_path / "pki")
    key = TsigKey.generate("xot-key")
    zones = {z: member_zone(z) for z in ("example.com", "example.org")}
    zones[CATALOG] = catalog_zone(("m1", "example.com"))
    primary = XotBind.start_tls(
        tmp_path / "bind",
        zones,
        pki=pki,
        tsig={key.name: (key.algorithm, key.secret)},
        allow_transfer_key=key.name,
    )
    store = tmp_path / "zones"
    process = subprocess.Popen(
        [
            *SECDNS, "watch", "--catalog", CATALOG, f"@{primary.tls_addr}", "-d", str(store),
            "--tls-ca", str(pki.ca), "--tsig", key.nsupdate_arg, "--interval", "0.2", "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        out = Lines(process.stdout)
        out.wait('"event":"updated"', '"zone":"example.com."', '"via":"AXFR"')
        primary.nsupdate(f"update add m2.zones.{CATALOG}. 0 PTR example.org.", zone=CATALOG)
        out.wait('"event":"updated"', '"zone":"example.org."', '"via":"AXFR"')
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        stderr = process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        primary.stop()
    assert process.returncode == 0, stderr
    summary = json.loads(out.rest()[-1])
    assert summary["event"] == "summary" and summary["catalog"] == f"{CATALOG}."
    assert (summary["serial"], summary["members"], summary["added"]) == (2, 2, 2)
    assert key.secret not in stderr
    assert stored_master(store / "example.org.zone").startswith("; zone example.org. serial 1")


def test_summary_renderings():
    import io

    from rich.console import Console

    from secdns.catalog_watch import CatalogSummary
    from secdns.cli.watch_catalog import summary_line, summary_text

    summary = CatalogSummary(f"{CATALOG}.", 7, 3, added=4, removed=1, reset=0, pruned=1)
    assert summary_line(summary, at=0) == (
        f"time=1970-01-01T00:00:00.000Z event=summary catalog={CATALOG}. serial=7 members=3 "
        "added=4 removed=1 reset=0 pruned=1 findings=0"
    )
    assert summary.to_dict()["event"] == "summary"
    console = Console(file=io.StringIO(), width=100)
    console.print(summary_text(summary))
    assert console.file.getvalue() == (  # type: ignore[attr-defined]
        f"catalog {CATALOG}. serial 7: 3 members followed; added 4, removed 1, reset 0, pruned 1\n"
    )
