"""serve's transfer process (secdns.server.xferproc): at a cold start of many zones the
AXFRs are made in a process of their own, and serve builds its versions from the
lines it sends back.  It is only an optimisation: what is served, stored and
reported is what serve makes itself, and serve goes on alone when it ends, dies,
fails a zone or meets a zone too large for it.  MIN_ZONES is lowered here so that a
few zones of a real BIND primary take that path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rcode
import pytest
from fakeprimary import CountingPrimary, zone_names
from servers import free_port
from serving import ServerThread, write_config, zones_config

from secdns.server import xferproc
from secdns.store import Store

ZONES = ["example.com", *(f"z{i:03d}.example" for i in range(60))]


def _texts() -> dict[str, str]:
    from servers import zone_text

    base = zone_text("example.com")
    texts = {"example.com": base}
    for name in ZONES[1:]:
        texts[name] = base.replace("example.com.", f"{name}.")
    return texts


def _wait(server: ServerThread, names: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(server.serial(name) is None for name in names):
        assert time.monotonic() < deadline, "not every zone was served"
        time.sleep(0.02)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _started(server: ServerThread) -> xferproc.TransferProcess:
    """The server's transfer process, once started."""
    assert server.server is not None
    transfers = server.server.transfers
    deadline = time.monotonic() + 10
    while transfers.process is None:
        assert time.monotonic() < deadline, "the transfer process was not started"
        time.sleep(0.01)
    return transfers


@pytest.fixture
def few(monkeypatch):
    monkeypatch.setattr(xferproc, "MIN_ZONES", 2)


def test_a_cold_start_from_bind_is_served_and_stored_as_serve_would(few, bind_primary, tmp_path):
    primary = bind_primary(_texts())
    # (one at a time: a start long enough for the process to be ready for most)
    config = zones_config(tmp_path / "secdns.toml", primary.addr, ZONES, concurrency=1)
    server = ServerThread(config, log_queries=False)
    try:
        assert server.server is not None
        _wait(server, ZONES)
        transfers = server.server.transfers
        assert transfers.process is not None and transfers.made > 0  # it took part
        for name in ZONES:
            answer = server.query(f"www.{name}", "A")
            assert answer.rcode() == dns.rcode.NOERROR and answer.answer
        deadline = time.monotonic() + 10
        while not transfers.ended or transfers.process.returncode is None:
            assert time.monotonic() < deadline, "the process did not end after the cold start"
            time.sleep(0.02)
        assert transfers.process.returncode == 0
    finally:
        server.stop()
    # the store holds what an in-process transfer would have written: a restart
    # answers every zone from it, and each copy is whole
    store = Store(tmp_path / "store")
    for name in ZONES:
        state = store.load_state(dns.name.from_text(name))
        assert state.serial is not None and state.records and state.records > 10
    restarted = ServerThread(config, log_queries=False)
    try:
        assert all(restarted.serial(name) is not None for name in ZONES)
    finally:
        restarted.stop()


@contextlib.contextmanager
def _cold_start(
    tmp_path: Path, zones: int, delay: float, concurrency: int
) -> Iterator[tuple[ServerThread, xferproc.TransferProcess, list[str]]]:
    """serve's cold start of ``zones`` zones of a counting primary that answers after
    ``delay``, once its transfer process has started; stopped after."""
    names = zone_names(zones)
    upstream = CountingPrimary(names, delay=delay)
    try:
        config = zones_config(
            tmp_path / "secdns.toml", upstream.addr, names, concurrency=concurrency
        )
        server = ServerThread(config, log_queries=False)
        try:
            yield server, _started(server), names
        finally:
            server.stop()
    finally:
        upstream.stop()


def test_serve_goes_on_alone_when_the_process_dies(few, tmp_path, caplog):
    with _cold_start(tmp_path, 60, 0.05, 2) as (server, transfers, names):
        os.kill(transfers.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        _wait(server, names)
        assert transfers.ended and not transfers.running
        assert "the transfer process ended" in caplog.text  # said once, as a warning


def test_a_zone_the_process_fails_is_reported_as_serve_reports_it(
    few, bind_primary, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="secdns.pull")
    primary = bind_primary(_texts())
    zones = [{"name": name, "primaries": [primary.addr]} for name in ZONES]
    zones.append({"name": "missing.example", "primaries": [primary.addr]})  # REFUSED there
    config = write_config(tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones)
    server = ServerThread(config, log_queries=False)
    try:
        assert server.server is not None
        _wait(server, ZONES)
        runtime = server.server.runtimes[dns.name.from_text("missing.example")]
        deadline = time.monotonic() + 10
        while runtime.refresher.last_error is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert (
            "REFUSED" in runtime.refresher.last_error or "NOTAUTH" in runtime.refresher.last_error
        )
        assert primary.addr.split(":")[1] in runtime.refresher.last_error  # names the primary
        assert server.server.transfers.made > 0
        assert "zone=missing.example. AXFR without a probe failed" in caplog.text
    finally:
        server.stop()


def test_a_zone_too_large_for_the_process_is_transferred_by_serve(
    few, monkeypatch, bind_primary, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="secdns.pull")
    monkeypatch.setattr(xferproc, "MAX_BYTES", 600)  # example.com's AXFR is larger
    primary = bind_primary(_texts())
    config = zones_config(tmp_path / "secdns.toml", primary.addr, ZONES)
    server = ServerThread(config, log_queries=False)
    try:
        _wait(server, ZONES)
        answer = server.query("www.example.com", "A")
        assert answer.rcode() == dns.rcode.NOERROR and answer.answer
        assert "zone=example.com. AXFR without a probe failed" in caplog.text
    finally:
        server.stop()


def test_a_stop_during_the_cold_start_ends_the_process(few, tmp_path):
    with _cold_start(tmp_path, 40, 0.2, 1) as (server, transfers, _names):
        pid = transfers.process.pid  # type: ignore[union-attr]
        server.stop()
        returned = transfers.process.returncode  # type: ignore[union-attr]
        assert _process_gone(pid) or returned is not None


def test_a_start_that_fails_leaves_no_transfer_process(few, tmp_path, monkeypatch):
    """The process starts as soon as the store is listed; a start that fails after
    that (here its listening, once the process runs) ends it at once."""
    from secdns.config import load_config
    from secdns.errors import LocalIOError
    from secdns.server.server import Server

    config = zones_config(tmp_path / "secdns.toml", "127.0.0.1:9", zone_names(5))
    server = Server(load_config(config), log_queries=False)

    async def refused() -> None:
        for _ in range(500):  # (the process ready: the failure comes after its start)
            if server.transfers.running:
                break
            await asyncio.sleep(0.01)
        raise LocalIOError("cannot listen on 127.0.0.1:53: address in use")

    monkeypatch.setattr(server.listeners, "listen", refused)

    async def start() -> None:
        with pytest.raises(LocalIOError, match="in use"):
            await server.startup()
        assert server.transfers.ended

    asyncio.run(start())
    process = server.transfers.process
    assert process is not None  # it had started
    deadline = time.monotonic() + 5
    while not _process_gone(process.pid):
        assert time.monotonic() < deadline, "the transfer process was left running"
        time.sleep(0.02)


def test_a_catalogs_first_members_are_a_cold_start_of_their_own(few, bind_primary, tmp_path):
    """The members a catalog's first transfer adds into an empty store are most of the
    server's zones: they get a cold start's transfer process, as configured zones do at
    serve's start (a stranger's 2,000 members took 4.06 s against a Knot's 1.57 s)."""
    import tomli_w

    texts = _texts()
    lines = ["$ORIGIN cat.test.", "$TTL 0", "@ SOA invalid. invalid. 1 3600 600 2147483646 0"]
    lines += ["@ NS invalid.", 'version TXT "2"']
    lines += [f"m{i}.zones PTR {name}." for i, name in enumerate(ZONES)]
    texts["cat.test"] = "\n".join(lines) + "\n"
    primary = bind_primary(texts)
    config = tmp_path / "secdns.toml"
    server_table = {"directory": str(tmp_path / "store"), "listen": [f"127.0.0.1:{free_port()}"]}
    catalog = {"name": "cat.test", "primaries": [primary.addr]}
    config.write_text(tomli_w.dumps({"server": server_table, "catalog": [catalog]}))
    server = ServerThread(config, log_queries=False)
    try:
        assert server.server is not None
        _wait(server, ZONES)
        assert server.server.transfers.made > 0  # (a new process: the start's had ended)
    finally:
        server.stop()
