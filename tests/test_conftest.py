"""The fixtures' teardown: every server is stopped, whatever one of them does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _Started


class _FakeServer:
    """Stands in for a DnsServer at teardown: stop() may raise; its process is gone."""

    def __init__(self, name: str, error: Exception | None = None, running: bool = False) -> None:
        self.name = name
        self.error = error
        self.running = running
        self.stopped = False
        self.pid = _reaped_pid()

    def stop(self) -> None:
        self.stopped = True
        if self.error is not None:
            raise self.error

    def live_processes(self) -> list[int]:
        return [self.pid] if self.running else []

    def __repr__(self) -> str:
        return f"<fake {self.name}>"


def _reaped_pid() -> int:
    """The PID of a process that has exited and been reaped (so no longer exists)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _started(tmp_path: Path, *servers: _FakeServer) -> _Started:
    started = _Started(tmp_path, "fake-")
    for server in servers:
        started.add(server)  # type: ignore[type-var]  # a stand-in, not a DnsServer
    return started


def test_stop_all_stops_every_server_when_one_stop_raises(tmp_path: Path) -> None:
    first = _FakeServer("first", error=RuntimeError("stop failed"))
    second = _FakeServer("second")
    with pytest.raises(RuntimeError, match="stop failed") as caught:
        _started(tmp_path, first, second).stop_all()
    assert first.stopped and second.stopped
    assert caught.value.__notes__ == ["while stopping <fake first>"]


def test_stop_all_reports_every_failure(tmp_path: Path) -> None:
    servers = (
        _FakeServer("a", error=RuntimeError("a failed")),
        _FakeServer("b", running=True),
        _FakeServer("c", error=OSError("c failed")),
    )
    with pytest.raises(ExceptionGroup) as caught:
        _started(tmp_path, *servers).stop_all()
    assert all(server.stopped for server in servers)
    messages = [str(err) for err in caught.value.exceptions]
    assert messages == ["a failed", "c failed", "servers still running after stop(): [<fake b>]"]


def test_stop_all_is_quiet_when_all_stop(tmp_path: Path) -> None:
    servers = (_FakeServer("a"), _FakeServer("b"))
    _started(tmp_path, *servers).stop_all()
    assert all(server.stopped for server in servers)
