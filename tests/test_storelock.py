"""One serve per store: a second serve on the same ``[server] directory`` is refused
(a stranger ran two, the second with another control socket, and each rewrote the
zone files the other changed)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import tomli_w
from serving import free_port

ZONE_TEXT = "$ORIGIN lock.test.\n$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"


def config(tmp_path: Path, name: str, store: Path) -> Path:
    zone = tmp_path / "lock.test.zone"
    zone.write_text(ZONE_TEXT)
    path = tmp_path / f"{name}.toml"
    server = {
        "directory": str(store),
        "listen": [f"127.0.0.1:{free_port()}"],
        "control": str(tmp_path / f"{name}.ctl"),
    }
    path.write_text(
        tomli_w.dumps({"server": server, "zone": [{"name": "lock.test", "file": str(zone)}]})
    )
    return path


def serve(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "secdns", "serve", "-c", str(path), "--log-format", "text"],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def wait_listening(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    for line in proc.stderr:
        if "serve: listening on" in line:
            return
        assert time.monotonic() < deadline, "serve did not start"
    raise AssertionError(f"serve ended: {proc.wait()}")


def secdns(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secdns", *args], capture_output=True, text=True, timeout=30
    )


@contextlib.contextmanager
def serving(path: Path) -> Iterator[subprocess.Popen[str]]:
    """serve on ``path``'s config, listening; stopped (by its PID) at the end."""
    proc = serve(path)
    try:
        wait_listening(proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_a_second_serve_on_one_store_is_refused_until_the_first_ends(tmp_path):
    store = tmp_path / "store"
    with serving(config(tmp_path, "first", store)) as first:
        second = secdns("serve", "-c", str(config(tmp_path, "b", store)))
        assert second.returncode == 7, second.stderr
        lines = second.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        said = f"store directory {store} is in use by another secdns serve (pid {first.pid})"
        assert said in lines[0]
        assert "another [server] directory" in lines[0]
        # ctl stop returns once the first has stopped: a new serve starts at once
        stopped = secdns("ctl", "-s", str(tmp_path / "first.ctl"), "stop")
        assert stopped.returncode == 0 and stopped.stdout == "stop: serve stopped\n", stopped
        with serving(config(tmp_path, "third", store)):  # the lock went with the first
            pass


def test_pull_into_a_served_store_is_refused_and_pointed_at_ctl(tmp_path):
    # a stranger's pull -d into serve's store: serve rewrote the files it found changed
    store = tmp_path / "store"
    with serving(config(tmp_path, "first", store)) as first:
        pulled = secdns("pull", "lock.test", "@127.0.0.1:1", "-d", str(store))
        assert pulled.returncode == 7, pulled.stderr
        said = f"store directory {store} is served by secdns serve (pid {first.pid})"
        assert said in pulled.stderr
        assert "secdns ctl refresh ZONE" in pulled.stderr


def test_watch_into_a_served_store_is_refused_too(tmp_path):
    store = tmp_path / "store"
    with serving(config(tmp_path, "first", store)) as first:
        watched = secdns("watch", "lock.test", "@127.0.0.1:1", "-d", str(store))
        assert watched.returncode == 7, watched.stderr
        said = f"store directory {store} is served by secdns serve (pid {first.pid})"
        assert said in watched.stderr
