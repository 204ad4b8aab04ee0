"""serve's cold start holds the small zones' store writes until every zone has its first
version (secdns.server.persist.StoreQueue.hold), as Knot queues its zone files' flushes
behind its transfers; then writes them all.  A large write, and any write past
HOLD_JOBS, is not held."""

from __future__ import annotations

import asyncio
import time

from fakeprimary import CountingPrimary, zone_names
from serving import ServerThread, write_config, zones_config

from secdns.server import persist
from secdns.server.persist import StoreQueue


def test_held_writes_wait_for_release_and_others_do_not(tmp_path):
    async def main() -> None:
        queue = StoreQueue(sync=False)
        done: list[str] = []
        try:
            queue.hold()
            small = [
                asyncio.ensure_future(queue.run(lambda i=i: done.append(f"s{i}"), may_wait=True))
                for i in range(3)
            ]
            await asyncio.wait_for(queue.run(lambda: done.append("large")), 5)
            await asyncio.sleep(0.05)
            assert done == ["large"]  # the small ones are held
            queue.release()
            await asyncio.wait_for(asyncio.gather(*small), 5)
            assert done == ["large", "s0", "s1", "s2"]
            await asyncio.wait_for(queue.run(lambda: done.append("after"), may_wait=True), 5)
            assert done[-1] == "after"  # released: nothing held any more
        finally:
            queue.close()

    asyncio.run(main())


def test_a_hold_lets_its_writes_go_once_too_many_wait(monkeypatch):
    monkeypatch.setattr(persist, "HOLD_JOBS", 4)

    async def main() -> None:
        queue = StoreQueue(sync=False)
        done: list[int] = []
        try:
            queue.hold()
            writes = [
                asyncio.ensure_future(queue.run(lambda i=i: done.append(i), may_wait=True))
                for i in range(4)
            ]
            await asyncio.wait_for(asyncio.gather(*writes), 5)
            assert done == [0, 1, 2, 3]
        finally:
            queue.close()

    asyncio.run(main())


def test_a_cold_start_writes_the_store_once_every_zone_is_served(tmp_path):
    names = zone_names(50)
    upstream = CountingPrimary(names, delay=0.02)
    try:
        config = zones_config(tmp_path / "secdns.toml", upstream.addr, names, concurrency=2)
        server = ServerThread(config)
        try:
            deadline = time.monotonic() + 30
            while any(server.serial(name) != 1 for name in names):
                # nothing is written while zones still wait for their first version
                written = list((tmp_path / "store").glob("*.zone"))
                assert not written or all(server.serial(name) == 1 for name in names)
                assert time.monotonic() < deadline
                time.sleep(0.01)
            while len(list((tmp_path / "store").glob("*.zone"))) < len(names):
                assert time.monotonic() < deadline, "the held writes were not made"
                time.sleep(0.01)
        finally:
            server.stop()
    finally:
        upstream.stop()
    # and the copies serve the restart
    restarted = ServerThread(config)
    try:
        assert all(restarted.serial(name) == 1 for name in names)
    finally:
        restarted.stop()


def test_a_zone_whose_primary_is_down_does_not_hold_the_others_writes(tmp_path):
    """The writes wait until each zone has been tried once, not until each is loaded: a
    zone that cannot be transferred would otherwise hold them for FIRST_LOAD_PAUSE."""
    import socket

    names = zone_names(30)
    upstream = CountingPrimary(names, delay=0.0)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{closed.getsockname()[1]}"  # (bound, not listening: refused)
        try:
            zones = [{"name": name, "primaries": [upstream.addr]} for name in names]
            zones.append({"name": "down.example", "primaries": [down]})
            config = write_config(
                tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones
            )
            server = ServerThread(config)
            try:
                deadline = time.monotonic() + 15
                while len(list((tmp_path / "store").glob("*.zone"))) < len(names):
                    assert time.monotonic() < deadline, (
                        "the writes waited for the zone that is down"
                    )
                    time.sleep(0.05)
                assert server.serial("down.example") is None
            finally:
                server.stop()
        finally:
            upstream.stop()


def test_a_silent_primary_holds_the_writes_no_longer_than_cold_hold_seconds(tmp_path, monkeypatch):
    """A primary that takes the connection and never answers keeps its zones' first try
    going for the whole timeout; the others' writes wait COLD_HOLD_SECONDS at most."""
    import socket

    from secdns.server import server as server_module

    monkeypatch.setattr(server_module, "COLD_HOLD_SECONDS", 0.5)
    names = zone_names(20)
    upstream = CountingPrimary(names, delay=0.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections accepted by the kernel, never answered
        quiet = f"127.0.0.1:{silent.getsockname()[1]}"
        try:
            zones = [{"name": name, "primaries": [upstream.addr]} for name in names]
            zones.append({"name": "silent.example", "primaries": [quiet]})
            config = write_config(
                tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones, timeout=20
            )
            server = ServerThread(config)
            try:
                deadline = time.monotonic() + 8  # well before the silent zone's timeout
                while len(list((tmp_path / "store").glob("*.zone"))) < len(names):
                    assert time.monotonic() < deadline, "the writes waited for the silent zone"
                    time.sleep(0.05)
            finally:
                server.stop()
        finally:
            upstream.stop()
