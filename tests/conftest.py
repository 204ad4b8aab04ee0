"""Shared fixtures: real BIND, Knot and NSD servers on free loopback ports.

Each `*_primary` / `*_secondary` fixture is a factory: call it to start a
server in its own directory under the test's tmp_path; everything it started
is stopped (and checked gone) at teardown. A missing server binary skips the
test, or fails it when SECDNS_REQUIRE_SERVERS=1 (as in CI).

    def test_axfr(bind_primary):
        primary = bind_primary()                      # tests/zones/example.com.zone
        primary = bind_primary({"example.org": text}, allow_transfer_key="xfr",
                               tsig={"xfr": ("hmac-sha256", tsig_secret())})
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
from servers import (
    Bind,
    DnsServer,
    Endpoint,
    Knot,
    Nsd,
    PowerDns,
    ZoneSource,
    need_binary,
    zone_text,
)

ServerT = TypeVar("ServerT", bound=DnsServer)


class _Started:
    """The servers one fixture started, to stop at teardown."""

    def __init__(self, tmp_path: Path, prefix: str) -> None:
        self.tmp_path = tmp_path
        self.prefix = prefix
        self.servers: list[DnsServer] = []

    def workdir(self) -> Path:
        return self.tmp_path / f"{self.prefix}{len(self.servers)}"

    def add(self, server: ServerT) -> ServerT:
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every server, even when one stop() raises; then raise what went wrong.

        One failure is raised as it is; several as an ExceptionGroup.  A server
        still running after its stop() is a failure too.
        """
        failures: list[Exception] = []
        for server in self.servers:
            try:
                server.stop()
            except Exception as err:  # the next servers must be stopped all the same
                err.add_note(f"while stopping {server!r}")
                failures.append(err)
        alive = [
            server
            for server in self.servers
            if _process_exists(server.pid) or server.live_processes()
        ]
        if alive:
            failures.append(AssertionError(f"servers still running after stop(): {alive}"))
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExceptionGroup("stopping the test's servers failed", failures)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _default_zones(zones: Mapping[str, ZoneSource] | None) -> Mapping[str, ZoneSource]:
    return {"example.com": zone_text("example.com")} if zones is None else zones


@pytest.fixture
def bind_primary(tmp_path: Path) -> Iterator[Callable[..., Bind]]:
    """start(zones=None, **kw) -> Bind; zones default to example.com. See Bind.start."""
    need_binary(Bind.program)
    started = _Started(tmp_path, "bind-primary-")

    def start(zones: Mapping[str, ZoneSource] | None = None, **kw: Any) -> Bind:
        return started.add(Bind.start(started.workdir(), _default_zones(zones), **kw))

    yield start
    started.stop_all()


@pytest.fixture
def knot_primary(tmp_path: Path) -> Iterator[Callable[..., Knot]]:
    """start(zones=None, **kw) -> Knot; zones default to example.com. See Knot.start."""
    need_binary(Knot.program)
    started = _Started(tmp_path, "knot-primary-")

    def start(zones: Mapping[str, ZoneSource] | None = None, **kw: Any) -> Knot:
        return started.add(Knot.start(started.workdir(), _default_zones(zones), **kw))

    yield start
    started.stop_all()


@pytest.fixture
def nsd_primary(tmp_path: Path) -> Iterator[Callable[..., Nsd]]:
    """start(zones=None, **kw) -> Nsd; zones default to example.com. See Nsd.start."""
    need_binary(Nsd.program)
    started = _Started(tmp_path, "nsd-primary-")

    def start(zones: Mapping[str, ZoneSource] | None = None, **kw: Any) -> Nsd:
        return started.add(Nsd.start(started.workdir(), _default_zones(zones), **kw))

    yield start
    started.stop_all()


@pytest.fixture
def pdns_primary(tmp_path: Path) -> Iterator[Callable[..., PowerDns]]:
    """start(zones=None, **kw) -> PowerDns; zones default to example.com. See PowerDns.start."""
    need_binary(PowerDns.program)
    started = _Started(tmp_path, "pdns-primary-")

    def start(zones: Mapping[str, ZoneSource] | None = None, **kw: Any) -> PowerDns:
        return started.add(PowerDns.start(started.workdir(), _default_zones(zones), **kw))

    yield start
    started.stop_all()


@pytest.fixture
def bind_secondary(tmp_path: Path) -> Iterator[Callable[..., Bind]]:
    """start(zones: {zone: (host, port)}, **kw) -> Bind. See DynamicServer.start_secondary."""
    need_binary(Bind.program)
    started = _Started(tmp_path, "bind-secondary-")

    def start(zones: Mapping[str, Endpoint], **kw: Any) -> Bind:
        return started.add(Bind.start_secondary(started.workdir(), zones, **kw))

    yield start
    started.stop_all()


@pytest.fixture
def knot_secondary(tmp_path: Path) -> Iterator[Callable[..., Knot]]:
    """start(zones: {zone: (host, port)}, **kw) -> Knot. See DynamicServer.start_secondary."""
    need_binary(Knot.program)
    started = _Started(tmp_path, "knot-secondary-")

    def start(zones: Mapping[str, Endpoint], **kw: Any) -> Knot:
        return started.add(Knot.start_secondary(started.workdir(), zones, **kw))

    yield start
    started.stop_all()


@pytest.fixture
def nsd_secondary(tmp_path: Path) -> Iterator[Callable[..., Nsd]]:
    """start(zones: {zone: (host, port)}, **kw) -> Nsd. See Nsd.start_secondary."""
    need_binary(Nsd.program)
    started = _Started(tmp_path, "nsd-secondary-")

    def start(zones: Mapping[str, Endpoint], **kw: Any) -> Nsd:
        return started.add(Nsd.start_secondary(started.workdir(), zones, **kw))

    yield start
    started.stop_all()
