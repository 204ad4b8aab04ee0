"""Findings of a first-time user who had only the README, each through the CLI
against real BIND/Knot where a server is involved."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from serving import ServerThread, write_config

from secdns.cli import cli

ZONE = "example.com"
SERIAL = 2024010101


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


def ctl(config_path: Path, *args: str):
    return CliRunner().invoke(cli, ["ctl", "-c", str(config_path), *args])


def test_ctl_reload_reports_a_bad_config_and_restart_warnings(bind_primary, served, tmp_path):
    """Item 2: a reload that kept the running config fails with its error and exit 2;
    a setting that needs a restart is a warning line for the ctl caller."""
    primary = bind_primary()
    path = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
    )
    good = path.read_text()
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    path.write_text(good + "bogus = 1\n")
    failed = ctl(path, "reload")
    assert failed.exit_code == 2, failed.output
    assert "bogus" in failed.output and "unknown key" in failed.output
    assert "reload: done" not in failed.output

    path.write_text(good.replace('listen = [\n', 'listen = [\n    "127.0.0.1:1",\n', 1))
    warned = ctl(path, "reload")
    assert warned.exit_code == 0, warned.output
    assert "reload: done, zones=1" in warned.output
    assert "warning: reload: listen addresses changed; restart secdns serve" in warned.output
