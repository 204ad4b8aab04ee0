"""``watch -c`` on a terminal shows the first check of every zone as ``pull -c``
does (an overall bar, a row per running transfer) and then one line saying how
it went; piped, it prints one ``key=value`` line per zone."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ZONES = [f"z{i}.example" for i in range(12)]


def small_zone(zone: str) -> str:
    return (
        f"$ORIGIN {zone}.\n$TTL 300\n"
        "@ SOA ns1 hostmaster 2024010101 7200 900 1209600 300\n"
        "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n"
    )


def zone_config(tmp_path: Path, primary: str, zones: list[str]) -> Path:
    config = tmp_path / "secdns.toml"
    config.write_text(
        f'[server]\ndirectory = "{tmp_path / "zones"}"\n\n'
        + "".join(f'[[zone]]\nname = "{z}"\nprimaries = ["{primary}"]\n\n' for z in zones)
    )
    return config


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SECDNS_")}
    clean.pop("NO_COLOR", None)
    return {**clean, **extra}


def watch_on_terminal(args: list[str], until: str, cwd: Path) -> str:
    """Run on a pseudo-terminal until ``until`` shows, then SIGINT; what it showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        args,
        stdout=follower,
        stderr=follower,
        env=env(TERM="xterm-256color", COLUMNS="120"),
        cwd=cwd,
        start_new_session=True,
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and until.encode() not in shown:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        proc.send_signal(signal.SIGINT)
        while True:
            ready, _, _ = select.select([leader], [], [], 2)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))


def test_watch_config_on_a_terminal_shows_the_first_round_as_pull_does(bind_primary, tmp_path):
    primary = bind_primary({zone: small_zone(zone) for zone in ZONES})
    config = zone_config(tmp_path, primary.addr, ZONES)
    cmd = [sys.executable, "-m", "secdns", "watch", "-c", str(config)]
    # first run: every zone transferred; the bar counted them, a line says how it went
    shown = watch_on_terminal(cmd, until="zones checked in", cwd=tmp_path)
    assert re.search(rf"\r{len(ZONES)} zones +━", shown), shown  # the overall bar
    assert f"{len(ZONES)} of {len(ZONES)} zones checked in" in shown, shown
    assert re.search(rf"\b{len(ZONES)} done\b", shown), shown  # zones, not "12 B"
    assert f"{len(ZONES)} transferred, 0 up to date, 0 failed" in shown, shown
    assert "zone=" not in shown  # not the piped lines
    # second run: all up to date, counted in the bar and not printed one by one
    shown = watch_on_terminal(cmd, until="zones checked in", cwd=tmp_path)
    assert f"0 transferred, {len(ZONES)} up to date, 0 failed" in shown, shown
    assert "up to date at serial" not in shown
    # piped: one key=value line per zone, no bar
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path
    )
    lines: list[str] = []
    while len(lines) < len(ZONES):
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, proc.stderr.read()  # type: ignore[union-attr]
        lines.append(line)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert sorted(re.search(r"zone=(\S+)", line)[1] for line in lines) == sorted(  # type: ignore[index]
        f"{zone}." for zone in ZONES
    )
    assert all(" event=synced " in line for line in lines), lines
    assert "zones checked" not in out + err and "━" not in out + err
