"""``[server] store_sync``: serve's store writes fsynced ("fsync", the default) or only
renamed into place ("none", as Knot's zonefile-sync).

With "none" a crash of the system may leave the last writes empty, cut short or
older; the store's load finds such a copy (the SHA-256 in the state file, a state
file that does not parse) and the zone is transferred again, never served from it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import dns.name
import pytest
from serving import ServerThread, write_config

from secdns import atomicfile
from secdns.config import parse_config
from secdns.errors import ConfigError
from secdns.store import STATE_LINE, JournalEntry, Store, StoredSoa, ZoneWriter, state_line_end

ORIGIN = dns.name.from_text("example.com.")
SOA_LINE = "@ 3600 IN SOA ns1 hostmaster 7 3600 600 86400 300"
LINES = [SOA_LINE, "@ 3600 IN NS ns1", "ns1 3600 IN A 192.0.2.1"]
STORED = StoredSoa(7, 3600, 3600, 600, 86400, 300)


def test_the_option_and_its_default():
    assert parse_config({"server": {}}).server.store_sync == "fsync"
    assert parse_config({"server": {"store_sync": "none"}}).server.store_sync == "none"
    with pytest.raises(ConfigError, match=r"server\.store_sync.*\"fsync\" or \"none\""):
        parse_config({"server": {"store_sync": "sometimes"}})


@pytest.fixture
def fsyncs(monkeypatch):
    """The fsync calls made (counted, then made)."""
    made: list[int] = []
    fsync = os.fsync

    def counted(fd: int) -> None:
        made.append(fd)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    return made


@pytest.mark.parametrize("sync", [True, False])
def test_a_group_commit_writes_the_same_files_synced_or_not(tmp_path, fsyncs, sync):
    store = Store(tmp_path / "store")
    with atomicfile.group_commit(sync):
        writer = ZoneWriter(store, ORIGIN)
        writer.replace(list(LINES), STORED, primary="192.0.2.53")
        entry = JournalEntry(7, 8, (SOA_LINE,), (SOA_LINE.replace(" 7 ", " 8 "),))
        store.append_journal(ORIGIN, [entry], 8)
    assert bool(fsyncs) is sync
    state = ZoneWriter(store, ORIGIN).state
    text, why = store.read_zone(ORIGIN, state)
    assert why == "ok" and text is not None and text.endswith("ns1 3600 IN A 192.0.2.1\n")
    assert [e.serial_to for e in store.read_journal(ORIGIN, 8)] == [8]
    assert not [p for p in store.directory.iterdir() if p.name.endswith(".tmp")]


def _serve(tmp_path: Path, primary, sync: str) -> ServerThread:
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": "example.com", "primaries": [primary.addr]}],
        store_sync=sync,
    )
    return ServerThread(config)


def _wait(server: ServerThread, serial: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.serial("example.com") != serial:
        assert time.monotonic() < deadline, "not served"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "damage", ["zone cut short", "zone empty", "state line cut", "state empty"]
)
def test_a_damaged_copy_is_transferred_again_at_the_next_start(
    bind_primary, tmp_path, caplog, damage
):
    primary = bind_primary()
    serial = primary.soa_serial("example.com")
    server = _serve(tmp_path, primary, "none")
    try:
        _wait(server, serial)
    finally:
        server.stop()
    store = Store(tmp_path / "store")
    zone_file, state_file = store.zone_path(ORIGIN), store.state_path(ORIGIN)
    whole = zone_file.read_bytes()
    # a first version: one file, its state in its first line
    assert whole.startswith(STATE_LINE) and not state_file.exists()
    body = whole[state_line_end(whole) :]
    assert ZoneWriter(store, ORIGIN).state.serial == serial
    # what a crash of the system can leave of writes that were never fsynced
    if damage == "zone cut short":
        zone_file.write_bytes(whole[: len(whole) // 2])
    elif damage == "zone empty":
        zone_file.write_bytes(b"")
    elif damage == "state line cut":
        zone_file.write_bytes(whole[: len(STATE_LINE) + 20])
    else:  # a later state-only write's file (it rules over the line)
        state_file.write_bytes(b"")
    caplog.set_level(logging.INFO, logger="secdns")
    server = _serve(tmp_path, primary, "none")
    try:
        _wait(server, serial)
        assert not [r for r in caplog.records if "from the store" in r.getMessage()]
        transferred = [r.getMessage() for r in caplog.records if "via AXFR" in r.getMessage()]
        assert transferred and "serial none ->" in transferred[0]
        deadline = time.monotonic() + 10
        while (now := zone_file.read_bytes())[state_line_end(now) :] != body:  # again, whole
            assert time.monotonic() < deadline, "the stored copy was not written again"
            time.sleep(0.05)
    finally:
        server.stop()
    state = ZoneWriter(store, ORIGIN).state
    assert store.read_zone(ORIGIN, state)[1] == "ok"
