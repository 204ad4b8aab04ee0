"""``secdns watch`` as a stranger met it from the README (2026-12-02 trial): a closed
pipe is exit 141 in every mode, the summary is the last event, what --timeout and
--exec's output mean is said in --help, --exec gets the serial held before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import free_port

from secdns.cli import cli

ZONE = "example.com"
SERIAL = 2024010101
ROOT = Path(__file__).resolve().parent.parent
SECDNS = [sys.executable, "-m", "secdns"]


def _config(tmp_path: Path, primary_addr: str) -> Path:
    config = tmp_path / "secdns.toml"
    config.write_text(
        f'[server]\ndirectory = "zones"\n[[zone]]\nname = "{ZONE}"\n'
        f'primaries = ["{primary_addr}"]\n'
    )
    return config


@pytest.mark.parametrize("mode", ["monitor", "monitor-json", "mirror-config"])
def test_watch_into_a_closed_pipe_exits_141_quietly(bind_primary, tmp_path, mode):
    """Item 1: ``secdns watch ... | head -1`` exits 141, as every other command does,
    whether it watches servers, mirrors configured zones, or prints JSON."""
    primary = bind_primary()
    if mode == "mirror-config":
        args = ["watch", "-c", str(_config(tmp_path, primary.addr)), "--interval", "0.1"]
    else:
        args = ["watch", ZONE, "--servers", f"@{primary.addr}", "--interval", "0.1"]
        if mode == "monitor-json":
            args.append("--json")
    process = subprocess.Popen(
        [*SECDNS, *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout.readline()  # type: ignore[union-attr]
        process.stdout.close()  # type: ignore[union-attr]  # head -1 has its line
        assert process.wait(10) == 141
        assert process.stderr.read() == ""  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_summary_is_the_last_event_after_a_timeout(bind_primary):
    """Item 7: ``--until-consistent --timeout`` with a dead server: the lagging lines
    come before the summary, which ends the output."""

    primary = bind_primary()
    dead = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli,
        [
            "watch",
            ZONE,
            "--servers",
            f"@{primary.addr}",
            f"@{dead}",
            "--interval",
            "0.1",
            "--query-timeout",
            "0.2",
            "--until-consistent",
            "--timeout",
            "1",
        ],
    )
    assert result.exit_code == 1, (result.stdout, result.stderr)
    events = [line.split(" ")[1] for line in result.stdout.splitlines()]
    assert events[-1] == "event=summary", result.stdout
    assert "event=lagging" in events
    assert events.index("event=lagging") < len(events) - 1


def test_help_says_what_timeout_and_exec_output_are():
    """Items 2 and 9: watch's --timeout is a whole-run deadline (pull's is per
    message); --exec's output goes to stderr; when SECDNS_OLD_SERIAL is empty."""
    text = " ".join(CliRunner().invoke(cli, ["watch", "--help"]).stdout.split())
    assert "a deadline for the whole watch" in text
    assert "Not per message as in pull and serve: --query-timeout is that here." in text
    assert "Its output goes to stderr: stdout carries only the events." in text
    assert "SECDNS_OLD_SERIAL (the serial held before; empty when none was" in text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`watch --timeout` (with `--until-*`) is a deadline for the whole watch" in readme
    assert "its output goes to stderr, so stdout carries only events" in readme


@pytest.mark.parametrize("where", ["store", "file"])
def test_exec_gets_the_old_serial_and_its_output_goes_to_stderr(bind_primary, tmp_path, where):
    """Item 9: the first transfer into an empty store has no old serial (empty); the
    change after it has the serial held before; the hook writes to stderr, never
    between the events on stdout."""
    primary = bind_primary()
    hook = 'echo "HOOK $SECDNS_ZONE old=[$SECDNS_OLD_SERIAL] new=$SECDNS_NEW_SERIAL"'
    process = subprocess.Popen(
        [
            *SECDNS,
            "watch",
            *(
                ["-c", str(_config(tmp_path, primary.addr))]
                if where == "store"
                else [ZONE, f"@{primary.addr}", "-o", "example.com.zone"]
            ),
            "--interval",
            "0.1",
            "--json",
            "--exec",
            hook,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        first = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert (first["event"], first["serial"]) == ("updated", SERIAL)
        primary.nsupdate("update add new.example.com. 60 A 192.0.2.9")
        while True:
            event = json.loads(process.stdout.readline())  # type: ignore[union-attr]
            if event["event"] == "updated":
                break
        assert event["serial"] == SERIAL + 1
        # the hook's line for this change comes before the exec event is printed
        while event["event"] != "exec" or event["serial"] != SERIAL + 1:
            event = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "HOOK" not in stdout
    hooks = [line for line in stderr.splitlines() if line.startswith("HOOK")]
    assert hooks == [
        f"HOOK {ZONE}. old=[] new={SERIAL}",
        f"HOOK {ZONE}. old=[{SERIAL}] new={SERIAL + 1}",
    ]


def _on_a_terminal(
    args: list[str], cwd: Path, during: Callable[[], object], columns: int = 80
) -> tuple[int, str]:
    """Run ``secdns ARGS`` with stdout and stderr on a pty ``columns`` wide, and
    ``during`` in a thread meanwhile; its exit status and everything it showed."""
    import pty
    import threading

    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([*SECDNS, *args], cwd=cwd, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    meanwhile = threading.Thread(target=during)
    meanwhile.start()
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer has gone
                break
            if not chunk:
                break
            shown += chunk
        status = process.wait(30)
    finally:
        meanwhile.join()
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, shown.decode(errors="replace")


def test_monitor_table_keeps_ports_whole_on_an_80_column_terminal(
    bind_primary, knot_secondary, tmp_path
):
    """Item 3: two servers on one IP stay apart on an 80-column terminal, with a
    change and its lag windows shown: each port and window is whole, nothing is cut
    with an ellipsis, and no line is wider than 80."""
    import re

    first = bind_primary()
    second = knot_secondary({ZONE: first.endpoint})

    def change() -> None:
        time.sleep(1.0)
        first.nsupdate("update add d.example.com. 60 A 192.0.2.4")
        time.sleep(0.5)
        second.knotc("zone-refresh", f"{ZONE}.")

    status, shown = _on_a_terminal(
        [
            "watch",
            ZONE,
            "--servers",
            f"@{first.addr}",
            f"@{second.addr}",
            "--primary",
            f"@{first.addr}",
            "--interval",
            "0.1",
            "--until-serial",
            "next",
            "--timeout",
            "20",
        ],
        tmp_path,
        change,
    )
    assert status == 0, shown
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert first.addr in plain and second.addr in plain, plain
    assert "…" not in plain, plain
    assert re.search(r"\d+\.\d{3}-\d+\.\d{3}s", plain), plain  # a whole window
    assert max(len(line.rstrip("\r")) for line in plain.splitlines()) <= 80, plain


def test_monitor_table_at_80_columns_folds_names_and_keeps_windows():
    """Item 3, the table alone: a long IPv6 address, a host name and lag windows fit
    80 columns with no number or address cut; "last change" goes first."""
    import io

    from rich.console import Console

    from secdns.cli.watch_monitor import monitor_table
    from secdns.propagation import AddressStatus, Lag

    statuses = (
        AddressStatus(
            "192.0.2.1:25300", "192.0.2.1:25300", 7, Lag(0.0, 0.071), 0.0, None, True, True
        ),
        AddressStatus(
            "ns2.example.net.", "2001:db8:1234:5678::53", 7, Lag(10.25, 10.375), 0.0, None, True
        ),
        AddressStatus("ns3.example.net.", "192.0.2.3", 6, None, 0.0, "timed out", False),
    )
    buffer = io.StringIO()
    Console(file=buffer, width=80).print(monitor_table("example.com.", statuses, 7, width=80))
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    for whole in ("192.0.2.1:25300", "2001:db8:1234:5678::53", "0.000-0.071s", "10.250-10.375s"):
        assert whole in text, text
    assert "…" not in text, text


def test_watch_config_on_a_terminal_shows_a_failure_once_and_no_empty_rows(bind_primary, tmp_path):
    """Item 4: ``watch -c`` on a terminal, one zone's primary dead: its failure is
    shown once (the event; the log line saying the same is not also printed into
    the progress bar), and no transfer row reads ``0 records 0 B ?``."""
    import re

    from test_watch_progress import ZONES, small_zone, watch_on_terminal, zone_config

    primary = bind_primary({zone: small_zone(zone) for zone in ZONES})
    config = zone_config(tmp_path, primary.addr, ZONES)
    dead = f"127.0.0.1:{free_port()}"
    config.write_text(config.read_text() + f'[[zone]]\nname = "d.lab"\nprimaries = ["{dead}"]\n')
    shown = watch_on_terminal(
        [*SECDNS, "watch", "-c", str(config), "--interval", "2", "--query-timeout", "0.5"],
        until="zones checked in",
        cwd=tmp_path,
    )
    assert f"{len(ZONES)} transferred, 0 up to date, 1 failed" in shown, shown
    assert len(re.findall(r"d\.lab\. check failed, retry in", shown)) == 1, shown
    assert "secdns: watch: zone=d.lab." not in shown, shown  # the log line
    assert not re.search(r"\b0 records +0 B", shown), shown
    assert " B ? " not in shown, shown
