"""Findings of a first-time user who had only the README, each through the CLI
against real BIND/Knot where a server is involved."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import zone_text
from serving import ServerThread, write_config

from secdns.cli import cli
from secdns.errors import ConfigError

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


def test_ctl_reload_reports_a_bad_config_and_restart_warnings(
    bind_primary, served, tmp_path, caplog
):
    """Item 2: a reload that kept the running config fails with its error and exit 2;
    a setting that needs a restart is a warning line for the ctl caller.  serve's log
    line for a config of several problems is one line (a stranger's grep ERROR saw only
    "reload: 3 problems:")."""
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
    caplog.clear()
    path.write_text(good + "bogus = 1\nbogus2 = 2\n")
    secdns_log = logging.getLogger("secdns")  # (the ctl CliRunner left it not propagating)
    secdns_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR, logger="secdns"), pytest.raises(ConfigError):
            server.call(server.server.reload)
    finally:
        secdns_log.removeHandler(caplog.handler)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reload: ")]
    assert len(said) == 1 and "\n" not in said[0] and "2 problems: " in said[0], said
    assert "bogus2" in said[0] and "keeping the running configuration" in said[0], said

    path.write_text(good.replace("listen = [\n", 'listen = [\n    "127.0.0.1:1",\n', 1))
    warned = ctl(path, "reload")
    assert warned.exit_code == 0, warned.output
    assert "reload: done, zones=1" in warned.output
    assert "warning: reload: listen addresses changed; restart secdns serve" in warned.output

    from servers import free_port
    from xotservers import Pki

    pki = Pki.make(tmp_path / "pki")
    tls = (
        f'tls_listen = ["127.0.0.1:{free_port()}"]\n'
        f'tls_cert = "{pki.cert}"\ntls_key = "{pki.key}"\n'
    )
    path.write_text(good.replace("[server]\n", "[server]\n" + tls, 1))
    added = ctl(path, "reload")
    assert added.exit_code == 0, added.output
    assert "warning: reload: tls_listen added; restart secdns serve to apply" in added.output


def test_diff_refuses_a_file_of_another_zone_or_none(tmp_path):
    """Item 3: diff checks that each source holds ZONE (the check verify makes), exit 6."""
    ours = tmp_path / "x.zone"
    ours.write_text(zone_text("example.com"))
    theirs = tmp_path / "other.zone"
    theirs.write_text(zone_text("example.com").replace("example.com.", "example.net."))
    empty = tmp_path / "empty.zone"
    empty.write_text("")
    result = CliRunner().invoke(cli, ["diff", ZONE, str(ours), str(theirs)])
    assert result.exit_code == 6, result.output
    assert "the file holds zone example.net. (its SOA), not example.com." in result.output
    assert str(theirs) in result.output
    result = CliRunner().invoke(cli, ["diff", ZONE, str(empty), str(ours)])
    assert result.exit_code == 6, result.output
    assert "holds no SOA record for example.com." in result.output
    assert "None" not in result.output


def test_a_zone_missing_from_a_store_is_a_local_io_error(tmp_path):
    """Item 7: like a missing file, exit 7, one line naming zone and store."""
    store = tmp_path / "store"
    store.mkdir()
    for args in (
        ["verify", "nothere.com", str(store)],
        ["diff", "nothere.com", str(store), str(store)],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 7, (args, result.output)
        assert f"the store {store} holds no copy of nothere.com." in result.output


def _zone_of(records: int) -> str:
    """example.com with ``records`` records, counted as a user does (SOA once)."""
    lines = [
        "$ORIGIN example.com.",
        "$TTL 3600",
        "@ SOA ns1 hostmaster 7 7200 900 1209600 300",
        "@ NS ns1",
        "ns1 A 192.0.2.1",
    ]
    lines += [f"h{i} A 192.0.2.{i % 250 + 1}" for i in range(records - 3)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("records", [4, 3003])
def test_max_records_counts_the_zone_as_the_user_does(bind_primary, tmp_path, records):
    """Item 5: a zone of N records passes --max-records N and fails at N - 1, with a
    message naming the limit, the option, the zone and the primary (exit 6)."""
    primary = bind_primary({"example.com": _zone_of(records)})
    out = tmp_path / "x.zone"
    ok = CliRunner().invoke(
        cli, ["pull", ZONE, f"@{primary.addr}", "-o", str(out), "--max-records", str(records)]
    )
    assert ok.exit_code == 0, ok.output
    out.unlink()
    over = CliRunner().invoke(
        cli, ["pull", ZONE, f"@{primary.addr}", "-o", str(out), "--max-records", str(records - 1)]
    )
    assert over.exit_code == 6, over.output
    assert (
        f"zone example.com., server {primary.addr}" in over.output
        or "zone example.com., server 127.0.0.1" in over.output
    ), over.output
    assert (
        f"the zone has more than {records - 1} records "
        f"(--max-records {records - 1}, [server] max_records)" in over.output
    )
    assert "malformed" not in over.output
    assert not out.exists()


def _diff_into_a_pipe_that_closes(tmp_path: Path, reader: str, *args: str) -> int:
    """Run secdns.cli.main (diff of two zones that differ, ``args`` added) in a child
    whose stdout is a pipe it closes itself once diff has written, after ``reader`` (a
    statement on the read end ``r``: what the reader did before it went); its status."""
    import subprocess
    import sys
    import textwrap

    a, b = tmp_path / "a.zone", tmp_path / "b.zone"
    a.write_text(zone_text("example.com"))
    b.write_text(zone_text("example.com").replace("2024010101", "2024010102"))
    argv = ["secdns", "diff", "example.com", str(a), str(b), *args]
    child = textwrap.dedent(
        f"""
        import io, os, sys
        r, w = os.pipe()
        os.dup2(w, 1)
        os.close(w)
        class Raw(io.FileIO):
            def write(self, data):
                n = super().write(data)
                {reader}
                os.close(r)
                return n
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(Raw(1, "w", closefd=False)))
        sys.argv = {argv!r}
        from secdns.cli import main
        main()
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60)
    assert done.stderr == b""
    return done.returncode


def test_a_reader_gone_after_the_output_fit_the_pipe_is_exit_141(tmp_path):
    """Item 4: output that fit in the pipe's buffer never meets the closed pipe; the
    command asks before it exits (main() -> check_stdout) and leaves with 141 when the
    reader went without reading it all (head -1 of a longer output)."""
    assert _diff_into_a_pipe_that_closes(tmp_path, "pass") == 141


def test_a_reader_that_read_everything_then_went_leaves_the_commands_status(tmp_path):
    """A stranger's ``diff ... --stat | head -1`` (one line) and ``pull ... | head -1``
    exited 141 after all was read: a reader gone is a cut only if it left bytes unread
    (FIONREAD on the pipe), as ``diff a b | head -1`` exits 1."""
    read_all = "os.read(r, 1 << 16)  # head -1 reads what is there, prints a line, goes"
    assert _diff_into_a_pipe_that_closes(tmp_path, read_all, "--stat") == 1  # (diff(1)'s)


def test_a_failed_first_pull_leaves_no_state_file(bind_primary, tmp_path):
    """Item 18: REFUSED for a zone we never held writes nothing in the store."""
    primary = bind_primary()
    store = tmp_path / "zones2"
    result = CliRunner().invoke(cli, ["pull", "nothere.com", f"@{primary.addr}", "-d", str(store)])
    assert result.exit_code == 4, result.output
    assert not store.exists() or not list(store.glob("nothere.com*"))


def test_verify_deep_probes_soa_unsigned(bind_primary, knot_primary, tmp_path):
    """Item 6: TSIG is for the transfer; a server that knows the key but has it in
    no ACL (Knot: BADKEY to a signed SOA query) still answers the SOA probe."""
    from servers import tsig_secret

    secret = tsig_secret()
    tsig = {"xfr-key": ("hmac-sha256", secret)}
    bind = bind_primary(tsig=tsig, allow_transfer_key="xfr-key")
    knot = knot_primary(
        tsig={**tsig, "other": ("hmac-sha256", tsig_secret())}, allow_transfer_key="other"
    )
    keyfile = tmp_path / "xfr.key"
    keyfile.write_text(f'key "xfr-key" {{ algorithm hmac-sha256; secret "{secret}"; }};\n')
    result = CliRunner().invoke(
        cli, ["verify", ZONE, f"@{bind.addr}", f"@{knot.addr}", "-k", str(keyfile), "--deep"]
    )
    assert f"server {knot.addr} status=ok serial={SERIAL}" in result.output, result.output
    assert f"server {bind.addr} status=ok serial={SERIAL}" in result.output
    # the transfer is signed: Knot's ACL wants the other key, BIND's this one
    assert f"cannot transfer the zone from {knot.addr}" in result.output
    assert f"cannot transfer the zone from {bind.addr}" not in result.output


def test_network_messages_speak_dns_not_python(tmp_path):
    """Item 10: no errno, no asyncio's "Connect call failed (...)", no Python tuples."""
    import socket

    from servers import free_port

    out = str(tmp_path / "x.zone")
    nohost = CliRunner().invoke(cli, ["pull", ZONE, "@no.such.host.invalid", "-o", out])
    assert nohost.exit_code == 3, nohost.output
    assert "cannot resolve no.such.host.invalid: no such host" in nohost.output
    assert "Errno" not in nohost.output
    port = free_port()
    refused = CliRunner().invoke(
        cli, ["pull", ZONE, f"@127.0.0.1:{port}", "--tls-insecure", "-o", out]
    )
    assert refused.exit_code == 3, refused.output
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in refused.output
    assert "Connect call failed" not in refused.output

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy = holder.getsockname()[1]
    try:
        path = write_config(
            tmp_path / "secdns.toml",
            directory=tmp_path / "store",
            port=busy,
            zones=[{"name": ZONE, "primaries": ["127.0.0.1:9"]}],
        )
        served = CliRunner().invoke(cli, ["serve", "-c", str(path)])
    finally:
        holder.close()
    assert served.exit_code == 7, served.output
    assert f"cannot listen on 127.0.0.1:{busy}: address already in use" in served.output
    assert "('127.0.0.1'" not in served.output
    # the control socket it opened first is gone with it (a stranger found it left)
    assert not (tmp_path / "store" / "secdns.ctl").exists()


def test_tls_to_a_plain_dns_port_says_so(bind_primary, served, tmp_path):
    """Item 12: serve's plain port closes on the ClientHello, BIND's waits: both
    get "the server is not speaking TLS on this port?"."""
    primary = bind_primary()
    path = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
        tcp_idle_timeout=0.5,  # it closes before our handshake timeout
    )
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    host, port = server.server.listeners.addresses[0]
    for target in (f"@{host}:{port}", f"@{primary.addr}"):
        result = CliRunner().invoke(
            cli,
            ["pull", ZONE, target, "--tls-insecure", "--timeout", "1.5", "-o", str(tmp_path / "z")],
        )
        assert result.exit_code == 3, result.output
        assert "the server is not speaking TLS on this port?" in result.output, result.output


def test_knot_notauth_to_a_denied_axfr_mentions_the_acl(knot_primary, tmp_path):
    """Item 13: Knot answers NOTAUTH to an AXFR its ACL denies: the hint names the ACL."""
    from servers import tsig_secret

    knot = knot_primary(tsig={"xfr": ("hmac-sha256", tsig_secret())}, allow_transfer_key="xfr")
    result = CliRunner().invoke(cli, ["pull", ZONE, f"@{knot.addr}", "-o", str(tmp_path / "z")])
    assert result.exit_code == 4, result.output
    assert "NOTAUTH" in result.output
    assert "transfer ACL does not allow this host or key" in result.output


def test_errors_name_zone_and_server(bind_primary, served, tmp_path):
    """Item 11: -o in a missing directory names the zone; ctl refresh of a zone whose
    primary is down names the server.  Item 17: the failed pull's JSON fills primary,
    ctl --explain names the zone with its dot, the explain says "1 message"."""
    import json

    from servers import free_port

    primary = bind_primary()
    missing = CliRunner().invoke(
        cli, ["pull", ZONE, f"@{primary.addr}", "-o", str(tmp_path / "nonexistent" / "x.zone")]
    )
    assert missing.exit_code == 7, missing.output
    assert f"zone example.com.: cannot create a file in {tmp_path / 'nonexistent'}" in (
        missing.output
    )

    dead = f"127.0.0.1:{free_port()}"
    failed = CliRunner().invoke(
        cli, ["pull", ZONE, f"@{dead}", "-o", str(tmp_path / "z"), "--json"]
    )
    assert failed.exit_code == 3, failed.output
    doc = json.loads(failed.stdout)
    pulled = doc[0] if isinstance(doc, list) else doc.get("results", [doc])[0]
    assert pulled["primary"] == pulled["error"]["server"] == dead

    path = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[
            {"name": ZONE, "primaries": [primary.addr]},
            {"name": "dead.com", "primaries": [dead]},
        ],
    )
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    refreshed = ctl(path, "refresh", "dead.com")
    assert refreshed.exit_code == 3, refreshed.output
    assert f'error="server {dead}: ' in refreshed.output, refreshed.output
    explained = ctl(path, "refresh", ZONE, "--explain")
    assert explained.exit_code == 0, explained.output
    assert "explain: zone=example.com. " in explained.output
    assert "zone=example.com " not in explained.output
    assert "1 messages" not in explained.output


def test_progress_ends_on_the_count_the_summary_shows(bind_primary, tmp_path):
    """Item 17: the TTY progress bar said 3,004 records, the summary 3003."""
    import asyncio

    import dns.name

    from secdns.engine import transfer
    from secdns.xfr import XfrKind

    primary = bind_primary({"example.com": _zone_of(3003)})
    host, port = primary.addr.rsplit(":", 1)
    seen: list[int] = []
    xfr = asyncio.run(
        transfer(
            dns.name.from_text(ZONE),
            host,
            int(port),
            XfrKind.AXFR,
            progress=lambda records, nbytes: seen.append(records),
        )
    )
    assert len(xfr.reader.records or []) == 3003
    assert seen[-1] == 3003
    result = CliRunner().invoke(cli, ["pull", ZONE, f"@{primary.addr}", "-o", str(tmp_path / "z")])
    assert "records=3003" in result.output, result.output


def test_readme_diff_server_syntax_works(tmp_path):
    """Item 8: the README's --server syntax for diff -f nsupdate is the one that works."""
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    spelled = re.findall(r"`--server ([^`]+)`", readme)
    assert spelled == ["HOST[:PORT]"], spelled
    a, b = tmp_path / "a.zone", tmp_path / "b.zone"
    a.write_text(zone_text("example.com"))
    b.write_text(
        zone_text("example.com").replace("2024010101", "2024010102")
        + "added 300 IN A 192.0.2.99\n"  # (a serial alone makes no script)
    )
    result = CliRunner().invoke(
        cli, ["diff", ZONE, str(a), str(b), "-f", "nsupdate", "--server", "127.0.0.1:15310"]
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("server 127.0.0.1 15310\n")


def test_demo_says_only_what_exists_and_ctrl_c_is_130():
    """Items 9/16: no "files in /tmp/..." for a directory deleted at exit; demo --keep
    stopped with Ctrl-C exits 130 like the other commands."""
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "secdns", "demo", "--keep", "--change-every", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops both" in line:
                break
        time.sleep(1)  # past the signal handlers' setup (before it: KeyboardInterrupt)
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    text = "".join(lines) + rest
    assert process.returncode == 130, (text, stderr)
    # finding 10 (2026-12-02): while it runs, the secondary's store is still in use
    assert "== done: the secondary's store is /tmp/" in text
    assert "/serve, removed when the demo stops (-d DIR keeps it)" in text
    assert "== done: no files kept" not in text
    assert "== stopped: no files kept (-d DIR keeps them)" in text
    assert "files in /tmp" not in text


def test_watch_mirror_stopped_by_sigint_prints_a_summary(bind_primary, tmp_path):
    """Item 16b: the README says watch exits 0 "after a summary" on SIGINT/SIGTERM."""
    import os
    import signal
    import subprocess
    import sys

    primary = bind_primary()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "secdns",
            "watch",
            ZONE,
            f"@{primary.addr}",
            "-d",
            str(tmp_path / "store"),
            "--interval",
            "0.2",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "zone=example.com." in first, first
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert f"event=summary zone=example.com. serial={SERIAL} state=ok" in rest, (rest, stderr)


def test_ctl_status_table_fits_80_columns(bind_primary, served, tmp_path, monkeypatch):
    """Item 14: on an 80-column terminal no zone name or serial is wrapped; the
    less useful columns go first."""
    primary = bind_primary()
    path = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
    )
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    monkeypatch.setattr("secdns.output.use_rich", lambda stream=None: True)
    result = CliRunner(env={"COLUMNS": "80", "NO_COLOR": "1"}).invoke(
        cli, ["ctl", "-c", str(path), "status"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, result.output
    row = next(line for line in lines if "example.com." in line)
    assert f" {SERIAL} " in row and " ok " in row, result.output


def test_serve_logs_a_first_load_from_serial_none(bind_primary, served, tmp_path, caplog):
    """Item 10: serve's refresh log says "serial none -> N", not Python's None."""
    import logging

    caplog.set_level(logging.INFO)
    primary = bind_primary()
    path = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
    )
    served(path).wait_serial(ZONE, SERIAL)
    assert f"zone=example.com. serial none -> {SERIAL} via AXFR" in caplog.text, caplog.text
    assert "None" not in caplog.text
