"""Findings of a README-only trial (2026-12-02) on pull, serve, ctl and demo,
each through the CLI: change counts of ``-o`` against the file replaced, the
result lines, the ``secdns:`` warning prefix, serve's one line a failed refresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servers import PowerDns, ZoneSource, free_port, need_binary, zone_text
from serving import write_config

from secdns.cli import cli

ZONE = "example.com"
ORIGIN = "example.com."
SERIAL = 2024010101


def pull(*args: str):
    return CliRunner().invoke(cli, ["pull", *args])


def changed(serial: int, extra: str = "") -> str:
    return zone_text().replace(f"{SERIAL} ; serial", f"{serial} ; serial") + extra


@pytest.fixture
def pdns_primary(tmp_path: Path) -> Iterator[Callable[..., PowerDns]]:
    need_binary(PowerDns.program)
    started: list[PowerDns] = []

    def start(zones: Mapping[str, ZoneSource] | None = None, **kw: Any) -> PowerDns:
        server = PowerDns.start(tmp_path / f"pdns-{len(started)}", zones or {ZONE: zone_text()})
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    assert not [s for s in started if s.live_processes()], "pdns_server still running"


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


@pytest.mark.parametrize("kind", ["pdns", "nsd"])
def test_replacing_a_file_counts_the_real_change(kind, request, tmp_path):
    """Finding 5: one record added at the primary is +1 -0 for -o as for -d, though
    PowerDNS answers the IXFR with the whole zone and -o always takes an AXFR."""
    primary = request.getfixturevalue(f"{kind}_primary")()
    out, store = tmp_path / "a.zone", tmp_path / "st"
    first = pull(ORIGIN, f"@{primary.addr}", "-o", str(out))
    assert first.exit_code == 0, first.stderr
    records = int(fields(first.stdout)["records"])
    assert fields(first.stdout)["added"] == str(records)  # a first pull: all added
    assert pull(ORIGIN, f"@{primary.addr}", "-d", str(store)).exit_code == 0
    primary.write_zone(ZONE, changed(SERIAL + 1, "added1 60 IN A 192.0.2.55\n"))
    primary.reload()
    primary.wait_for_serial(ORIGIN, SERIAL + 1)
    for target in (["-o", str(out)], ["-d", str(store)]):  # NSD's IXFR re-sends the apex
        result = pull(ORIGIN, f"@{primary.addr}", *target)
        assert result.exit_code == 0, result.stderr
        got = fields(result.stdout)
        assert (got["serial"], got["added"], got["removed"]) == (
            f"{SERIAL}->{SERIAL + 1}",
            "1",
            "0",
        ), (target, result.stdout)
        assert got["records"] == str(records + 1)


def test_replacing_a_file_that_is_no_zone_counts_against_nothing(nsd_primary, tmp_path):
    primary = nsd_primary()
    out = tmp_path / "a.zone"
    out.write_text("not a zone at all\n")
    refused = pull(ORIGIN, f"@{primary.addr}", "-o", str(out))  # (not a zone file: kept)
    assert refused.exit_code == 6 and out.read_text() == "not a zone at all\n"
    result = pull(ORIGIN, f"@{primary.addr}", "-o", str(out), "--force")
    assert result.exit_code == 0, result.stderr
    got = fields(result.stdout)
    assert (got["serial"], got["removed"]) == (f"none->{SERIAL}", "0")
    assert got["added"] == got["records"]


def test_serve_logs_a_failed_refresh_once(tmp_path):
    """Finding 4 (serve): one WARNING line with the retry time, no INFO ``pull:`` twin."""
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [f"127.0.0.1:{free_port()}"]}],  # nothing there
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "secdns",
                "serve",
                "-c",
                str(config),
                "-v",
                "--log-format",
                "text",
            ],
            stderr=log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    try:
        deadline = time.monotonic() + 20
        while "retry in" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in log_path.read_text().splitlines() if f"zone={ORIGIN} failed" in line]
    assert lines and "retry in" in lines[0], lines
    assert not [line for line in lines if "pull: zone=" in line], lines


def test_up_to_date_file_says_its_records_as_the_store_does(nsd_primary, tmp_path):
    """Finding 6: an up-to-date ``-o`` line has ``records=`` as ``-d``'s has."""
    primary = nsd_primary()
    out, store = tmp_path / "a.zone", tmp_path / "st"
    first = pull(ORIGIN, f"@{primary.addr}", "-o", str(out), "-d", str(store))
    assert first.exit_code == 0, first.stderr
    records = fields(first.stdout)["records"]
    for target in (["-o", str(out)], ["-d", str(store)]):
        again = pull(ORIGIN, f"@{primary.addr}", *target)
        assert again.exit_code == 0, again.stderr
        got = fields(again.stdout)
        assert (got["result"], got["records"]) == ("up-to-date", records), target


def test_a_store_that_cannot_be_made_prints_its_failed_line(tmp_path):
    """Finding 6: ``-d /proc/nope`` fails with a result line on stdout, as ``-o`` does;
    a failed zone shows the serial held (``none``), not ``none->-``."""
    result = pull(ORIGIN, f"@127.0.0.1:{free_port()}", "-d", "/proc/nope/store")
    assert result.exit_code == 7
    assert "cannot create store directory /proc/nope/store" in result.stderr
    got = fields(result.stdout)
    assert (got["zone"], got["result"], got["serial"]) == (ORIGIN, "failed", "none")


def test_a_failed_zone_shows_the_serial_held(nsd_primary, tmp_path):
    primary = nsd_primary()
    out = tmp_path / "a.zone"
    assert pull(ORIGIN, f"@{primary.addr}", "-o", str(out)).exit_code == 0
    primary.stop()
    result = pull(ORIGIN, f"@{primary.addr}", "-o", str(out), "--timeout", "1")
    assert result.exit_code != 0
    assert fields(result.stdout)["serial"] == str(SERIAL), result.stdout


def test_ctl_warns_with_the_secdns_prefix(tmp_path, monkeypatch):
    """Finding 8: ``ctl`` says the TSIG-file warning as ``pull`` does."""
    from secdns import keys

    monkeypatch.setattr(keys, "_warned", set())
    config = tmp_path / "bad.toml"
    config.write_text(
        '[server]\ndirectory = "store"\n\n[keys.xfr]\nsecret = "c2VjcmV0c2VjcmV0c2VjcmV0"\n\n'
        f'[[zone]]\nname = "example.com"\nprimaries = ["127.0.0.1:{free_port()}"]\nkey = "xfr"\n'
    )
    config.chmod(0o644)
    result = CliRunner().invoke(cli, ["ctl", "-c", str(config), "status"])
    warned = [line for line in result.stderr.splitlines() if "holds a TSIG secret" in line]
    assert warned and warned[0].startswith(f"secdns: warning: {config} holds"), result.stderr


def test_watch_replacing_a_file_counts_the_real_change(nsd_primary, tmp_path):
    """Finding 5 (watch -o): the same copy as ``pull -o``, the same counts."""
    primary = nsd_primary()
    out = tmp_path / "wz.zone"
    assert pull(ORIGIN, f"@{primary.addr}", "-o", str(out)).exit_code == 0
    primary.write_zone(ZONE, changed(SERIAL + 1, "added1 60 IN A 192.0.2.55\n"))
    primary.reload()
    primary.wait_for_serial(ORIGIN, SERIAL + 1)
    process = subprocess.Popen(
        [sys.executable, "-m", "secdns", "watch", ORIGIN, f"@{primary.addr}", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1"),
    )
    updated = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "event=updated" in line:
                updated.append(line)
                break
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert updated
    got = fields(updated[-1])
    assert (got["added"], got["removed"]) == ("1", "0"), updated


def test_pull_table_keeps_primaries_whole_at_80_columns():
    """`pull -c` on an 80-column terminal cut the primary to `127.0.0.1:25…` (two
    servers on one address then look the same) while the result column wrapped."""
    import io

    from rich.console import Console

    from secdns.errors import RefusedError
    from secdns.output import pull_table
    from secdns.pull import PullResult, Status
    from secdns.xfr import XfrKind

    results = [
        PullResult(
            "a-rather-long-zone-name.example.", Status.TRANSFERRED, XfrKind.AXFR,
            "127.0.0.1:25355", 100, 101, added=1, duration=0.05,
        ),
        PullResult(
            "b.lab.", Status.FAILED, primary="[2001:db8::53]:25356",
            error=RefusedError("the primary refused the transfer: it needs a TSIG key"),
        ),
    ]  # fmt: skip
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(pull_table(results))
    shown = out.getvalue()
    assert "127.0.0.1:25355" in shown and "[2001:db8::53]:25356" in shown, shown
    assert "…" not in shown and max(map(len, shown.splitlines())) <= 80, shown
