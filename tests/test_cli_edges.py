"""The rough edges a new user hit (issue 11), each through the command line.

Every test runs the exact command of the report (CliRunner, or a subprocess when a
real pipe, a terminal or a signal is the point) and asserts the exit status, stdout
and the stderr line.  The primary is the demo's embedded one, on a loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest
from click.testing import CliRunner
from servers import stored_master

from secdns.cli import cli
from secdns.demo import DemoPrimary, bundled_zone
from secdns.errors import EXIT_CODE_TABLE, ExitCode

ROOT = Path(__file__).resolve().parent.parent
ZONES = Path(__file__).resolve().parent / "zones"
EXAMPLE_COM = ZONES / "example.com.zone"
DEMO_ZONE = "example.test"
CHANGES = (
    ({"api": (300, "A", "192.0.2.99")}, [("www", "CNAME", "@")]),
    ({"www": (3600, "A", "192.0.2.10")}, []),
)
"""+api A, www CNAME -> A: two records added, one removed (the SOA aside)."""


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(cli, list(args), env=env, input=input)


def secdns_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "secdns", *args]


def sub_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECDNS_")}
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


class Primary:
    """The demo's embedded primary, run on its own event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = DemoPrimary(bundled_zone())
        self.port = self.call(self.server.start)

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        async def wrapper() -> Any:
            result = func(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(10)

    @property
    def at(self) -> str:
        return f"@127.0.0.1:{self.port}"

    def change(self) -> int:
        for added, removed in CHANGES:
            self.call(self.server.change, added, removed)
        return self.server.serial

    def close(self) -> None:
        self.call(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def primary() -> Iterator[Primary]:
    server = Primary()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback UDP port that receives and never answers: every query times out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    return stderr.rstrip("\n")


# --- a closed output pipe ------------------------------------------------------------------------


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run secdns with stdout a pipe whose reader has already gone, as after `| head -1`."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            secdns_cmd(*args), stdout=write_end, stderr=subprocess.PIPE, timeout=60, env=sub_env()
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "example.com", str(EXAMPLE_COM), "--json"),
        ("verify", "--list-checks"),
        ("verify", "example.com", str(EXAMPLE_COM)),
        (
            "diff",
            "example.com",
            str(EXAMPLE_COM),
            str(ZONES / "broken" / "two-soa.zone"),
            "-f",
            "json",
        ),
        ("completion", "bash"),
        ("-h",),
    ],
)
def test_closed_pipe_exits_quietly(args):
    result = run_into_closed_pipe(*args)
    assert result.returncode in (0, 141), (result.returncode, result.stderr)
    assert result.stderr == b"", result.stderr


def test_verify_json_into_head():
    shell = (
        "set -o pipefail 2>/dev/null; "
        f"{' '.join(secdns_cmd('verify', 'example.com', str(EXAMPLE_COM), '--json'))} | head -1"
    )
    result = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, timeout=60, env=sub_env()
    )
    assert result.stdout == "{\n"
    assert result.returncode in (0, 141), result.stderr
    assert result.stderr == ""


# --- diff -f nsupdate --server -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "line"),
    [
        ("192.0.2.53", "server 192.0.2.53 53"),
        ("192.0.2.53:5300", "server 192.0.2.53 5300"),
        ("[2001:db8::53]:5300", "server 2001:db8::53 5300"),
        ("2001:db8::53", "server 2001:db8::53 53"),
        ("ns1.example.net:5300", "server ns1.example.net 5300"),
        ("192.0.2.53 5300", "server 192.0.2.53 5300"),
    ],
)
def test_diff_nsupdate_server_forms(server, line):
    b = ZONES / "broken" / "two-soa.zone"
    result = run(
        "diff", "example.com", str(EXAMPLE_COM), str(b), "-f", "nsupdate", "--server", server
    )
    assert result.exit_code == 1, result.stderr
    assert result.stdout.splitlines()[0] == line
    assert result.stdout.splitlines()[1] == "zone example.com."
    assert result.stderr == ""


def test_diff_nsupdate_bad_server_is_a_usage_error():
    result = run(
        "diff", "example.com", str(EXAMPLE_COM), str(EXAMPLE_COM), "-f", "nsupdate",
        "--server", "192.0.2.53:99999",
    )  # fmt: skip
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith("secdns: error: --server: port out of range")


# --- pull -o FILE: only a file of this zone, intact and current, is left alone -------------------


def test_pull_o_leaves_a_file_of_another_zone_alone(primary, tmp_path):
    # a copy secdns wrote of another zone (its header names it): refused before any
    # transfer, the file untouched (it was written over, with a warning, before)
    out = tmp_path / "f.zone"
    serial = primary.server.serial
    text = (
        f"; zone example.com. serial {serial} (written by secdns; one record per line,"
        " canonical order)\n" + EXAMPLE_COM.read_text()
    )
    out.write_text(text)
    result = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert result.exit_code == 6, result.stderr
    assert "result=failed serial=none" in result.stdout
    assert f"{out} holds zone example.com. (its SOA), not example.test.: left as it is" in one_line(
        result.stderr
    )
    assert out.read_text() == text


def test_pull_o_leaves_a_hand_written_file_of_another_zone_alone(primary, tmp_path):
    # a stranger's typo: -o pointing at the zone file a server loads for another zone
    out = tmp_path / "db.example.com"
    text = EXAMPLE_COM.read_text()
    out.write_text(text)
    for extra in ((), ("-d", str(tmp_path / "store"))):
        result = run("pull", DEMO_ZONE, primary.at, "-o", str(out), *extra)
        assert result.exit_code == 6, result.stderr
        line = one_line(result.stderr)
        assert "holds zone example.com. (its SOA), not example.test." in line
        assert DEMO_ZONE in line and "--force to write over it" in result.stderr
        assert out.read_text() == text
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.zone"))
    result = run("pull", DEMO_ZONE, primary.at, "-o", str(out), "--force")
    assert result.exit_code == 0, result.stderr
    assert out.read_text().startswith(f"; zone {DEMO_ZONE}. serial ")


HAND_WRITTEN = (
    "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 host {serial} 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
)


def test_pull_o_replaces_a_hand_written_file_of_the_zone_but_not_by_an_older_serial(
    primary, tmp_path
):
    out = tmp_path / "db.example.test"
    out.write_text(HAND_WRITTEN.format(serial=1))
    result = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert f"serial=1->{primary.server.serial} " in result.stdout
    assert out.read_text().startswith(f"; zone {DEMO_ZONE}. serial ")
    # newer than the primary's (a stranger's file, hand-edited ahead): a downgrade
    newer = HAND_WRITTEN.format(serial=2030010100)
    out.write_text(newer)
    result = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert result.exit_code == 6, result.stderr
    assert f"older than the 2030010100 of {out} (written by hand" in one_line(result.stderr)
    assert "result=failed serial=2030010100 " in result.stdout
    assert out.read_text() == newer
    # beside a store that is current (a stranger's -d DIR -o FILE wrote over it)
    store = tmp_path / "store"
    assert run("pull", DEMO_ZONE, primary.at, "-d", str(store)).exit_code == 0
    for where in (("-d", str(store)), ("-d", str(store), "--axfr")):
        result = run("pull", DEMO_ZONE, primary.at, "-o", str(out), *where)
        assert result.exit_code == 6, result.stderr
        assert out.read_text() == newer
    result = run("pull", DEMO_ZONE, primary.at, "-o", str(out), "--force")
    assert result.exit_code == 0, result.stderr
    assert f"serial=2030010100->{primary.server.serial} " in result.stdout  # (its serial said)
    assert out.read_text().startswith(f"; zone {DEMO_ZONE}. serial ")
    # a secdns copy edited since, its serial (and header) raised past the primary's
    text = out.read_text().replace(f" {primary.server.serial} ", " 2030010100 ")
    out.write_text(text)
    result = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert result.exit_code == 6 and out.read_text() == text, result.stderr
    # its first line naming another zone, its SOA still this one's
    other = text.replace(f"; zone {DEMO_ZONE}.", "; zone example.com.", 1)
    out.write_text(other)
    result = run("pull", "example.com", primary.at, "-o", str(out))
    assert result.exit_code == 6 and out.read_text() == other, result.stderr
    assert f"holds zone {DEMO_ZONE}. (its SOA), not example.com." in result.stderr


def test_pull_o_leaves_a_file_that_is_no_zone_file_alone(primary, tmp_path):
    # a stranger's typo: -o pointing at a unit file, a config, a file with no SOA
    out = tmp_path / "important.service"
    for text, why in (
        ("[Unit]\nDescription=important\n", "does not read as a master file (line 1: "),
        ("this is not a zone file {\n", "does not read as a master file (line 1: "),
        ("www 300 IN A 192.0.2.1\n", "has no SOA record of example.test. at its start"),
    ):
        out.write_text(text)
        result = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
        assert result.exit_code == 6, result.stderr
        assert f"{out} {why}" in one_line(result.stderr)
        assert out.read_text() == text
    result = run("pull", DEMO_ZONE, primary.at, "-o", str(out), "--force")
    assert result.exit_code == 0, result.stderr
    for empty in ("", "\n \n\t\n"):  # an empty file (touch), blank lines: written
        out.write_text(empty)
        result = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert out.read_text().startswith(f"; zone {DEMO_ZONE}. serial ")


def test_pull_o_never_replaces_a_device_fifo_or_directory_and_follows_a_link(primary, tmp_path):
    # a stranger's -o /dev/null replaced the device with a file; a FIFO hung the pull
    fifo = tmp_path / "f.zone"
    os.mkfifo(fifo)
    for target in (fifo, tmp_path):
        for force in ((), ("--force",)):
            result = run("pull", DEMO_ZONE, primary.at, "-o", str(target), *force)
            assert result.exit_code == 7, result.stderr
            kind = "a FIFO" if target == fifo else "a directory"
            assert f"{target} is {kind}, not a regular file" in one_line(result.stderr)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    real = tmp_path / "real" / "db.example.test"
    real.parent.mkdir()
    link = tmp_path / "link.zone"
    link.symlink_to(real)  # a zone file linked into a server's directory (dangling first)
    for _ in range(2):
        result = run("pull", DEMO_ZONE, primary.at, "-o", str(link))
        assert result.exit_code == 0, result.stderr
        assert link.is_symlink() and real.read_text().startswith(f"; zone {DEMO_ZONE}. serial ")
    assert "result=up-to-date" in result.stdout


def test_pull_o_checks_the_file_before_skipping(primary, tmp_path):
    out = tmp_path / "f.zone"
    first = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert first.exit_code == 0 and "result=transferred" in first.stdout
    again = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert again.exit_code == 0 and "result=up-to-date" in again.stdout  # current: skipped
    assert again.stderr == ""
    good = out.read_text()
    out.write_text(good.replace(" SOA ", " TXT ", 1))  # the header says current; the data not
    fixed = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert fixed.exit_code == 0 and "result=transferred" in fixed.stdout
    assert "does not start with the apex SOA" in one_line(fixed.stderr)
    assert out.read_text() == good
    out.write_text(good[:-12])  # cut short, as a copy that did not finish
    refetched = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert refetched.exit_code == 0 and "result=transferred" in refetched.stdout
    assert "is cut short (no final newline): fetching it by AXFR" in one_line(refetched.stderr)
    assert out.read_text() == good


# --- exit codes ----------------------------------------------------------------------------------


def test_verify_unparsable_file_is_6_and_missing_file_is_7(tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("garbage here\n")
    result = run("verify", "example.com", str(bad))
    assert (
        result.exit_code
        == ExitCode.BAD_DATA
        == run("diff", "example.com", str(bad), str(bad)).exit_code
    )
    assert result.stdout.startswith(f"error integrity.parse example.com.: {bad}:1:")
    missing = run("verify", "example.com", str(tmp_path / "missing.zone"))
    assert missing.exit_code == ExitCode.LOCAL_IO
    assert one_line(missing.stderr) == (
        f"secdns: error: zone example.com.: no such zone file: {tmp_path / 'missing.zone'}"
    )
    config = run("pull", "-c", str(tmp_path / "missing.toml"))
    assert config.exit_code == missing.exit_code == 7


def test_exit_code_table_has_130_and_the_epilog_is_generated_from_it():
    assert (130, ExitCode.INTERRUPTED) == (int(ExitCode.INTERRUPTED), 130)
    assert any(int(code) == 130 for code, _ in EXIT_CODE_TABLE)
    result = run("-h")
    assert result.exit_code == 0
    epilog = result.stdout.split("Exit status", 1)[1]
    for code, meaning in EXIT_CODE_TABLE:
        assert re.search(rf"^\s+{int(code)}\s+{re.escape(meaning)}$", epilog, re.M), code


EARLY_SIGINT = """
import builtins, os, signal, sys
from secdns import _entry
sys.argv = ["secdns", "pull", "--help"]
real_import = builtins.__import__
def interrupting_import(name, *args, **kwargs):
    if name == "click":  # the command line is still being imported
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting_import
_entry.main()
"""


def test_sigint_while_the_command_line_is_imported_exits_130_in_one_line():
    """Ctrl-C in the first few hundred milliseconds (click and the command's modules
    still loading) used to print an import traceback."""
    proc = subprocess.run(
        [sys.executable, "-c", EARLY_SIGINT],
        capture_output=True,
        text=True,
        env=sub_env(),
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.returncode == 130
    assert proc.stdout == ""
    assert proc.stderr == "secdns: interrupted\n"


def test_sigint_exits_130():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(30)
        silent = f"127.0.0.1:{sock.getsockname()[1]}"
        proc = subprocess.Popen(
            secdns_cmd("pull", DEMO_ZONE, f"@{silent}", "-o", "-", "--timeout", "30"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=sub_env(),
            # a shell's background job ignores SIGINT, and the child would inherit that
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            sock.recv(512)  # the SOA query has been sent: the pull waits for its answer
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130
    assert stdout == ""
    assert one_line(stderr) == "secdns: interrupted"


# --- NO_COLOR on a terminal ----------------------------------------------------------------------


def run_on_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run with stdout and stderr on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(leader)
    return shown.decode(errors="replace")


def unstyled(shown: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", shown)


def test_no_color_on_a_terminal_drops_only_colour():
    args = secdns_cmd("verify", "example.com", str(EXAMPLE_COM))
    env = sub_env(TERM="xterm-256color", COLUMNS="120")
    coloured = run_on_terminal(args, env)
    plain = run_on_terminal(args, {**env, "NO_COLOR": "1"})
    assert "example.com. passed: 0 errors" in unstyled(coloured) and "\x1b[32m" in coloured
    assert "example.com. passed: 0 errors" in unstyled(plain)  # the same summary...
    assert "zone=example.com." not in plain  # ...not the piped key=value lines
    assert not re.search(r"\x1b\[[0-9;]*(?<![0-9])(3[0-7]|9[0-7]|38;)", plain)  # ...but no colour


# --- no Python in the output ---------------------------------------------------------------------


def test_pull_json_error_names_no_python_class(silent, tmp_path):
    result = run(
        "pull", DEMO_ZONE, f"@{silent}", "-o", str(tmp_path / "z"), "--timeout", "0.2", "--json"
    )
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["error"]["error"] == "TimeoutError"
    assert doc["result"] == doc["status"] == "failed"
    assert one_line(result.stderr).startswith("secdns: error: zone example.test., server ")


def test_watch_summary_says_no_answer_and_has_time(silent):
    args = [
        "watch", DEMO_ZONE, "--servers", f"@{silent}", "--until-consistent",
        "--timeout", "0.5", "--query-timeout", "5",
    ]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 3
    lagging, summary = result.stdout.splitlines()[-2:]  # the summary is always the last event
    assert re.match(r"time=\S+Z event=summary zone=example.test. result=timeout ", summary)
    assert re.match(r"time=\S+Z event=lagging ", lagging) and lagging.endswith('error="no answer"')
    line = one_line(result.stderr)
    assert "None" not in line and "(newest none)" in line and line.endswith(f"{silent} (no answer)")
    doc = json.loads(run(*args, "--json").stdout.splitlines()[-1])
    assert doc["event"] == "summary" and doc["time"].endswith("Z")
    assert doc["lagging"][0]["error"] == "no answer" and doc["servers"][0]["error"] == "no answer"


# --- one vocabulary ------------------------------------------------------------------------------


def test_pull_says_result_in_text_and_json(primary, tmp_path):
    text = run("pull", DEMO_ZONE, primary.at, "-o", str(tmp_path / "a.zone"))
    doc = json.loads(
        run("pull", DEMO_ZONE, primary.at, "-o", str(tmp_path / "b.zone"), "--json").stdout
    )
    assert text.exit_code == 0 and " result=transferred " in text.stdout
    assert doc["result"] == "transferred" and list(doc)[:2] == ["zone", "result"]


# --- init -h, completion vs pull ZONE, lists, environment variables ------------------------------


def test_init_help_is_its_own():
    result = run("init", "-h")
    assert result.exit_code == 0
    help_text = " ".join(result.stdout.split())
    assert "--force Overwrite an existing config file." in help_text
    assert "Accept a serial that is not newer" not in help_text
    assert "--key NAME Put the TSIG key NAME of an existing config in the new file" in help_text


def test_completed_zone_pulls_from_the_config_in_this_directory(primary, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECDNS_CONFIG", raising=False)
    Path("secdns.toml").write_text(
        f'[server]\ndirectory = "zones"\n[[zone]]\nname = "{DEMO_ZONE}"\n'
        f'primaries = ["{primary.at[1:]}"]\n'
    )
    completed = subprocess.run(
        secdns_cmd(),
        env=sub_env(_SECDNS_COMPLETE="bash_complete", COMP_WORDS="secdns pull ex", COMP_CWORD="2"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert f"plain,{DEMO_ZONE}" in completed.stdout.splitlines()
    result = run("pull", DEMO_ZONE)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("zone=example.test. result=transferred kind=AXFR ")
    assert (tmp_path / "zones" / "example.test.zone").exists()
    assert "./secdns.toml" in " ".join(run("pull", "-h").stdout.split())


def test_lists_take_commas_and_repeats():
    skip = run("verify", "example.com", str(EXAMPLE_COM), "--skip", "dnssec,consistency", "--json")
    assert skip.exit_code == 0, skip.stderr
    ran = {check["id"] for check in json.loads(skip.stdout)["checks"]}
    assert ran and all(check.startswith("integrity.") for check in ran)
    repeated = run(
        "verify",
        "example.com",
        str(EXAMPLE_COM),
        "--skip",
        "dnssec",
        "--skip",
        "consistency",
        "--json",
    )
    assert {c["id"] for c in json.loads(repeated.stdout)["checks"]} == ran
    b = ZONES / "broken" / "two-soa.zone"
    commas = run(
        "diff", "example.com", str(EXAMPLE_COM), str(b), "--stat", "--ignore-type", "A,SOA"
    )
    repeats = run(
        "diff",
        "example.com",
        str(EXAMPLE_COM),
        str(b),
        "--stat",
        "--ignore-type",
        "A",
        "--ignore-type",
        "SOA",
    )
    assert commas.exit_code == repeats.exit_code and commas.stdout == repeats.stdout


def test_environment_variables_follow_the_long_option(silent):
    result = run(
        "pull", DEMO_ZONE, f"@{silent}", "--timeout", "0.2", env={"SECDNS_PULL_OUTPUT": "-"}
    )
    assert result.exit_code == 3  # -o came from the variable: no "say where the zone goes"
    assert "no answer to the SOA query" in result.stderr.splitlines()[0]
    assert result.stderr.splitlines()[1].startswith("zone=example.test. result=failed ")
    json_env = run("verify", "example.com", str(EXAMPLE_COM), env={"SECDNS_VERIFY_JSON": "1"})
    assert json.loads(json_env.stdout)["zone"] == "example.com."


# --- the demo keeps running ----------------------------------------------------------------------


def test_demo_keep_serves_until_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        secdns_cmd("demo", "--keep", "--change-every", "0.3", "-d", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=sub_env(),
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops both" in line:
                break
        text = "".join(lines)
        primary = re.search(r"primary\s+127\.0\.0\.1:(\d+)\s", text)
        secondary = re.search(r"secondary\s+127\.0\.0\.1:(\d+)\s", text)
        assert primary and secondary, text
        assert f"secdns pull {DEMO_ZONE} @127.0.0.1:{primary.group(1)} -d zones" in text

        def serial(port: str) -> int:
            query = dns.message.make_query(DEMO_ZONE, "SOA")
            return dns.query.udp(query, "127.0.0.1", port=int(port), timeout=2).answer[0][0].serial

        first = serial(primary.group(1))
        deadline = time.monotonic() + 10
        while serial(secondary.group(1)) <= first and time.monotonic() < deadline:
            time.sleep(0.1)  # the primary changes and NOTIFYs while kept
        assert serial(secondary.group(1)) > first
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr  # Ctrl-C, as every command reports it
    assert "== stopped" in rest
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "secdns demo --keep" in readme


# --- README: the journal --------------------------------------------------------------------------


def test_first_pull_leaves_no_journal_as_the_readme_says(primary, tmp_path):
    store = tmp_path / "zones"
    assert run("pull", DEMO_ZONE, primary.at, "-d", str(store)).exit_code == 0
    assert not (store / "example.test.journal").exists()
    primary.change()
    again = run("pull", DEMO_ZONE, primary.at, "-d", str(store))
    assert "kind=IXFR" in again.stdout and (store / "example.test.journal").exists()
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "the IXFR journal (`example.com.journal`) starts with the first change" in readme


# --- usage and config messages -------------------------------------------------------------------


@pytest.mark.parametrize("server", ["127.0.0.1:53", "192.0.2.1", "[2001:db8::1]:53"])
def test_pull_primary_without_at(server):
    result = run("pull", "example.com", server, "-o", "f")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert one_line(result.stderr) == (
        f"secdns: error: {server}: primaries start with '@' (secdns pull ZONE @{server} ...)"
    )


def test_zone_without_name_reports_every_problem_and_suggests_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[server]\nlisten_on = ["127.0.0.1:53"]\n'
        '[[zone]]\nprimaries = ["192.0.2.1"]\nfile = "x.zone"\n'
    )
    result = run("pull", "-c", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "secdns: error: 3 problems:",
        f"  {path}: server.listen_on: unknown key (did you mean 'listen'?)",
        f"  {path}: zone[0].name: missing zone name",
        f"  {path}: zone[0]: set either primaries (a secondary zone) or file (a primary zone)",
    ]


# --- diff and verify output ----------------------------------------------------------------------


def test_text_diff_lists_removals_first_within_an_owner(tmp_path):
    head = "$ORIGIN t.\n$TTL 60\n@ SOA ns h 1 1 1 1 1\n@ NS ns\nns A 192.0.2.1\n"
    (tmp_path / "a.zone").write_text(head + "www CNAME @\n")
    (tmp_path / "b.zone").write_text(head + "www A 192.0.2.2\nwww AAAA 2001:db8::2\n")
    result = run("diff", "t", str(tmp_path / "a.zone"), str(tmp_path / "b.zone"))
    assert result.exit_code == 1 and result.stderr == ""
    assert result.stdout.splitlines()[2:] == [
        "@@ www @@",
        "-www 60 IN CNAME @",
        "+www 60 IN A 192.0.2.2",
        "+www 60 IN AAAA 2001:db8::2",
    ]


def test_verify_file_of_another_zone_is_one_finding():
    result = run("verify", DEMO_ZONE, str(EXAMPLE_COM))
    assert result.exit_code == 1 and result.stderr == ""
    findings = [line for line in result.stdout.splitlines() if not line.startswith("zone=")]
    assert findings == [
        "error integrity.out-of-zone example.test.: the file holds zone example.com. (its SOA), "
        "not example.test.: 51 of 51 records are outside example.test.; wrong file or wrong "
        "zone name? (RFC 1034 4.2)"
    ]


# --- added/removed: a full zone answering IXFR counts as the IXFR would ---------------------------


def counts(line: str) -> tuple[str, str, str]:
    fields = dict(field.split("=", 1) for field in line.split())
    return fields["kind"], fields["added"], fields["removed"]


def test_added_removed_the_same_for_ixfr_and_a_full_zone_answer(primary, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for store in (a, b):
        assert run("pull", DEMO_ZONE, primary.at, "-d", str(store)).exit_code == 0
    primary.change()
    by_ixfr = run("pull", DEMO_ZONE, primary.at, "-d", str(a))
    primary.call(primary.server.deltas.clear)  # now IXFR from the old serial gets the full zone
    by_axfr = run("pull", DEMO_ZONE, primary.at, "-d", str(b))
    assert by_ixfr.exit_code == by_axfr.exit_code == 0
    assert counts(by_ixfr.stdout) == ("IXFR", "2", "1")
    assert counts(by_axfr.stdout) == ("AXFR", "2", "1")
    with contextlib.suppress(FileNotFoundError):
        assert stored_master(a / "example.test.zone") == stored_master(b / "example.test.zone")


def test_pull_d_o_writes_the_master_text_and_pulls_again_into_it(primary, tmp_path):
    # -d DIR -o FILE: FILE gets the master text without the store's state line, and
    # the next pull recognises it as this zone's copy
    out, store = tmp_path / "f.zone", tmp_path / "store"
    for _ in range(2):
        result = run("pull", DEMO_ZONE, primary.at, "-d", str(store), "-o", str(out))
        assert result.exit_code == 0, result.stderr
        first = out.read_text().splitlines()[0]
        assert first.startswith(f"; zone {DEMO_ZONE}. serial "), first


def test_pull_d_o_writes_file_and_stdout_when_the_store_is_current(primary, tmp_path):
    # a stranger: `pull ZONE -c CONFIG -o FILE` with the config's store current said
    # up-to-date and wrote no FILE (`-o -`: an empty zone on stdout, exit 0)
    store = tmp_path / "store"
    first = run("pull", DEMO_ZONE, primary.at, "-d", str(store))
    assert first.exit_code == 0 and "result=transferred" in first.stdout
    out = tmp_path / "later.zone"
    result = run("pull", DEMO_ZONE, primary.at, "-d", str(store), "-o", str(out))
    assert result.exit_code == 0 and "result=up-to-date" in result.stdout, result.stderr
    text = out.read_text()
    assert text.startswith(f"; zone {DEMO_ZONE}. serial {primary.server.serial} ")
    assert "secdns-state" not in text
    result = run("pull", DEMO_ZONE, primary.at, "-d", str(store), "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == text


def test_a_zone_name_typed_in_capitals_is_written_in_lower_case(primary, tmp_path):
    # a stranger: `pull Z01.TEST.` wrote `$ORIGIN Z01.TEST.` (its text hung on the typing)
    result = run("pull", DEMO_ZONE.upper() + ".", primary.at, "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert f"$ORIGIN {DEMO_ZONE}.\n" in result.stdout and DEMO_ZONE.upper() not in result.stdout
    assert f"zone={DEMO_ZONE}. " in result.stderr or f"zone={DEMO_ZONE}. " in result.stdout


def test_an_unknown_zone_key_names_the_zone_and_suggests_only_a_close_key(tmp_path):
    # a stranger: "zone[51].bogus_key: unknown key (did you mean 'tls_key' under [server]?)"
    path = tmp_path / "c.toml"
    path.write_text(
        '[server]\ndirectory = "store"\n'
        '[[zone]]\nname = "x.test"\nprimaries = ["192.0.2.1"]\nbogus_key = 1\n'
        '[[zone]]\nname = "y.test"\nprimaries = ["192.0.2.1"]\nlisten_on = 1\n'
    )
    result = run("pull", "-c", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        f"  {path}: zone[0] (x.test).bogus_key: unknown key",
        f"  {path}: zone[1] (y.test).listen_on: unknown key"
        " (did you mean 'listen' under [server]?)",
    ]


def test_pull_o_transfers_again_over_a_file_edited_since(primary, tmp_path):
    # a stranger: `sed -i` of one record in a pull -o file, then pull -o said up-to-date
    out = tmp_path / "f.zone"
    assert run("pull", DEMO_ZONE, primary.at, "-o", str(out)).exit_code == 0
    text = out.read_text()
    assert text.splitlines()[-1].startswith("; sha256 ")
    same = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert "result=up-to-date" in same.stdout and same.stderr == ""
    out.write_text(text.replace("192.0.2.10", "192.0.2.99", 1))
    again = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert again.exit_code == 0 and "result=transferred kind=AXFR" in again.stdout
    assert "was changed since secdns wrote it" in one_line(again.stderr)
    assert out.read_text() == text
    out.write_text("\n".join(text.splitlines()[:-1]) + "\n")  # an older secdns's file
    older = run("pull", DEMO_ZONE, primary.at, "-o", str(out))
    assert "result=transferred" in older.stdout and "has no checksum line" in older.stderr


def test_pull_o_of_a_directory_path_is_a_usage_error(primary, tmp_path):
    # a stranger: -o newdir/ wrote a regular file called newdir
    result = run("pull", DEMO_ZONE, primary.at, "-o", f"{tmp_path}/newdir/")
    assert result.exit_code == 2 and not (tmp_path / "newdir").exists()
    assert "a file's path, not a directory's" in one_line(result.stderr)
