"""Operating serve: /metrics, /healthz, /readyz, the control socket, ``secdns ctl``,
and ``pull --metrics-file``; against serve of a real BIND primary."""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import dns.message
import dns.opcode
import dns.rcode
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from servers import free_port, zone_text
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


def config(tmp_path: Path, primaries: list[str], *, port: int | None = None, **server):
    return write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        port=port,
        zones=[{"name": ZONE, "primaries": primaries}],
        **server,
    )


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}, via prometheus_client's parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def http_status(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def ctl(config_path: Path, *args: str):
    return CliRunner().invoke(cli, ["ctl", "-c", str(config_path), *args])


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_metrics_follow_a_bind_primary(bind_primary, served, tmp_path):
    port, metrics_port = free_port(), free_port()
    primary = bind_primary(notify=[("127.0.0.1", port)])
    path = config(tmp_path, [primary.addr], port=port, metrics_listen=f"127.0.0.1:{metrics_port}")
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    zone = (("zone", "example.com."),)
    samples = wait_for(
        lambda: (s := scrape(metrics_port)).get(("secdns_zone_serial", zone)) and s,
        what="secdns_zone_serial",
    )
    assert samples[("secdns_zone_serial", zone)] == server.serial(ZONE) == SERIAL
    assert samples[("secdns_zone_expired", zone)] == 0
    refreshed = samples[("secdns_zone_last_refresh_timestamp_seconds", zone)]
    assert abs(refreshed - time.time()) < 60
    assert samples[("secdns_zone_expiry_timestamp_seconds", zone)] > time.time() + 1209000
    axfr_ok = (("kind", "axfr"), ("result", "ok"), ("zone", "example.com."))
    assert samples[("secdns_transfers_total", axfr_ok)] == 1
    assert ("process_resident_memory_bytes", ()) in samples
    queries = samples[("secdns_queries_total", (("rcode", "NOERROR"), ("transport", "udp")))]
    assert queries >= 1

    primary.nsupdate("update add new.example.com. 60 A 192.0.2.99")
    server.wait_serial(ZONE, SERIAL + 1)
    ixfr_ok = (("kind", "ixfr"), ("result", "ok"), ("zone", "example.com."))
    after = wait_for(
        lambda: (s := scrape(metrics_port)).get(("secdns_transfers_total", ixfr_ok)) and s,
        what="an IXFR counted",
    )
    assert after[("secdns_transfers_total", ixfr_ok)] == 1
    assert after[("secdns_zone_serial", zone)] == SERIAL + 1
    changed = after[("secdns_zone_last_change_timestamp_seconds", zone)]
    assert abs(changed - time.time()) < 60
    accepted = (("result", "accepted"), ("zone", "example.com."))
    assert after[("secdns_notify_received_total", accepted)] >= 1
    assert after[("secdns_propagation_seconds_count", ())] >= 1
    assert after[("secdns_propagation_seconds_sum", ())] < 10
    tcp = server.query(ZONE, "SOA", tcp=True)
    assert tcp.rcode() == dns.rcode.NOERROR
    final = scrape(metrics_port)
    assert final[("secdns_queries_total", (("rcode", "NOERROR"), ("transport", "tcp")))] >= 1
    assert http_status(metrics_port, "/healthz") == (200, "ok\n")
    assert http_status(metrics_port, "/nothing")[0] == 404
    assert final[("secdns_zones", (("state", "ok"),))] == 1
    assert not [key for key in final if key[0].endswith("_created")]
    # gzipped for a scraper that asks for it, as Prometheus does
    request = urllib.request.Request(
        f"http://127.0.0.1:{metrics_port}/metrics", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        page = gzip.decompress(response.read()).decode()
    assert 'secdns_zone_serial{zone="example.com."}' in page
    for qname in (ZONE, "other.example"):  # from a source that is not a primary
        notify = dns.message.make_query(qname, "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            sock.settimeout(2)
            sock.sendto(notify.to_wire(), ("127.0.0.1", port))
            sock.recv(4096)
    final = scrape(metrics_port)
    refused = (("result", "refused"), ("zone", "example.com."))
    assert final[("secdns_notify_received_total", refused)] == 1
    other = (("result", "refused"), ("zone", "(other)"))
    assert final[("secdns_notify_received_total", other)] == 1
    # the zone removed by a reload: its series go with it (a stranger still scraped them)
    (tmp_path / "kept.zone").write_text("$TTL 60\n@ SOA ns h 1 1 1 1 1\n@ NS ns\nns A 192.0.2.1\n")
    write_config(
        path,
        directory=tmp_path / "store",
        port=port,
        metrics_listen=f"127.0.0.1:{metrics_port}",
        zones=[{"name": "kept.test", "file": str(tmp_path / "kept.zone")}],
    )
    reloaded = ctl(path, "reload")  # what changed, as the log says it
    assert (
        reloaded.output == "reload: done, zones=1 added=1 removed=1 changed=0 reloaded=0 failed=0\n"
    )
    left = [key for key in scrape(metrics_port) if ("zone", "example.com.") in key[1]]
    assert left == [], left


def test_readyz_503_until_the_zone_loads_then_200(bind_primary, served, tmp_path):
    primary_port, metrics_port = free_port(), free_port()
    path = config(
        tmp_path,
        [f"127.0.0.1:{primary_port}"],
        metrics_listen=f"127.0.0.1:{metrics_port}",
        timeout=1.0,
    )
    served(path)
    code, body = http_status(metrics_port, "/readyz")
    assert code == 503
    assert "zone=example.com." in body
    # nothing answers yet: the zone has no copy and its refresh fails
    wait_for(lambda: ctl(path, "status").exit_code == 1, what="status exit 1")
    result = ctl(path, "status")
    assert "state=retrying" in result.output
    assert "last_error=" in result.output and "last_error=-" not in result.output
    bind_primary(port=primary_port)
    refreshed = ctl(path, "refresh", ZONE)
    assert refreshed.exit_code == 0, refreshed.output
    assert "result=transferred kind=AXFR" in refreshed.output
    assert http_status(metrics_port, "/readyz") == (200, "ready: 1 zones\n")
    with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
        try:  # a head over 8 KiB: closed without an answer
            sock.sendall(b"GET /metrics HTTP/1.0\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n")
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
    assert http_status(metrics_port, "/healthz") == (200, "ok\n")
    assert ctl(path, "status").exit_code == 0


def test_ctl_status_refresh_retransfer_against_bind(bind_primary, served, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="secdns.explain")
    primary = bind_primary()  # no NOTIFY: only ctl brings changes
    path = config(tmp_path, [primary.addr])
    server = served(path)  # with -v (log_queries): each refresh is explained in the log
    server.wait_serial(ZONE, SERIAL)
    logged = [r.getMessage() for r in caplog.records if r.name == "secdns.explain"]
    first = (
        "explain: zone=example.com. hold: we hold no copy of the zone: "
        "a full AXFR is needed, after a SOA query"
    )
    assert first in logged
    wait_for(lambda: "state=ok" in ctl(path, "status").output, what="state ok")
    status = ctl(path, "status")
    assert status.exit_code == 0
    line = status.output.strip()
    assert line.startswith(f"zone=example.com. serial={SERIAL} state=ok primary=127.0.0.1:")
    assert "last_error=-" in line
    as_json = json.loads(ctl(path, "status", "--json", ZONE).output)
    (zone,) = as_json["zones"]
    assert set(zone) == {
        "zone",
        "serial",
        "state",
        "primary",
        "last_refresh",
        "last_change",
        "next_refresh",
        "expires_at",
        "records",
        "last_error",
    }
    assert zone["serial"] == SERIAL and zone["records"] > 10
    assert zone["expires_at"] > time.time() + 1209000
    # a zone not served here beside one that is: the one's line, the other's error, exit
    # 2 (a stranger's got nothing for the zone served); only unknown ones: the error
    both = ctl(path, "status", ZONE, "nosuch.test")
    assert both.exit_code == 2, both.output
    assert both.stdout.startswith(f"zone=example.com. serial={SERIAL} state=ok"), both.stdout
    assert "error: zone nosuch.test. is not served here" in both.stderr, both.stderr
    alone = ctl(path, "status", "nosuch.test")
    assert alone.exit_code == 2 and "nosuch.test. is not served here" in alone.stderr
    assert not alone.stdout

    primary.nsupdate("update add ctl.example.com. 60 A 192.0.2.7")
    refreshed = ctl(path, "refresh", ZONE, "--explain")
    assert refreshed.exit_code == 0, refreshed.output
    assert f"result=transferred kind=IXFR serial={SERIAL}->{SERIAL + 1}" in refreshed.stdout
    assert server.serial(ZONE) == SERIAL + 1
    explained = refreshed.stderr
    assert f"request: ask IXFR from our serial {SERIAL} (RFC 1995)" in explained
    assert f"answer: true IXFR: 1 delta to serial {SERIAL + 1}" in explained
    again = json.loads(ctl(path, "refresh", ZONE, "--json", "--explain").output)
    assert again["pull"]["status"] == "up-to-date"
    assert again["pull"]["steps"][-1]["text"].startswith("left alone: serial")
    assert again["zone"]["last_change"] is not None

    changed = again["zone"]["last_change"]
    retransfer = ctl(path, "retransfer", ZONE)
    assert retransfer.exit_code == 0, retransfer.output
    assert "kind=AXFR" in retransfer.output
    # the same serial again: no change (a stranger saw last_change move)
    (status,) = json.loads(ctl(path, "status", "--json").output)["zones"]
    assert status["last_change"] == changed and status["primary"] == primary.addr
    # a reload that changes the zone's settings keeps what status showed of it
    text = path.read_text()
    path.write_text(text.replace("primaries = [", "request_ixfr = false\nprimaries = [", 1))
    assert ctl(path, "reload").exit_code == 0
    (status,) = json.loads(ctl(path, "status", "--json").output)["zones"]
    assert status["last_change"] == changed and status["primary"] == primary.addr, status
    log = primary.log_path.read_text()
    assert log.count("AXFR started") >= 2, primary.log_tail()
    unknown = ctl(path, "refresh", "nope.example")
    assert unknown.exit_code == 2
    assert "not served here" in unknown.output


def test_status_exit_1_when_the_primary_is_unreachable(bind_primary, served, tmp_path):
    primary = bind_primary()
    path = config(tmp_path, [primary.addr], timeout=1.0)
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    primary.stop()
    result = ctl(path, "refresh", ZONE)
    assert result.exit_code == 3, result.output
    status = ctl(path, "status")
    assert status.exit_code == 1
    assert f"serial={SERIAL} state=retrying" in status.output
    assert server.serial(ZONE) == SERIAL  # still answering from the copy


def test_expired_zone_status_exit_1(bind_primary, served, tmp_path):
    text = zone_text().replace("7200       ; refresh", "1 ; refresh")
    text = text.replace("900        ; retry", "1 ; retry").replace("1209600", "2")
    primary = bind_primary({ZONE: text})
    path = config(tmp_path, [primary.addr], timeout=0.5)
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    primary.stop()
    wait_for(lambda: "state=expired" in ctl(path, "status").output, what="expired")
    assert ctl(path, "status").exit_code == 1
    assert server.query(ZONE, "SOA").rcode() == dns.rcode.SERVFAIL


def test_a_zone_failing_when_serve_stops_is_retrying_after_a_restart(
    bind_primary, served, tmp_path
):
    """The last check's failure is kept in the store's state: a restart shows the zone
    retrying with that error (a stranger's monitoring saw ``ok`` after a restart until
    each zone's first check, up to five minutes), and checks it at once."""
    primary = bind_primary()
    path = config(tmp_path, [primary.addr], timeout=0.5)
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    primary.stop()  # its port now refuses
    failed = ctl(path, "refresh", ZONE)
    assert failed.exit_code != 0 and "state=retrying" in ctl(path, "status").output
    state = tmp_path / "store" / f"{ZONE}.state.toml"
    wait_for(lambda: state.exists() and "last_error" in state.read_text(), what="state")
    server.stop()
    again = served(path)
    again.wait_serial(ZONE, SERIAL)  # answered from the store
    status = ctl(path, "status")
    assert status.exit_code == 1, status.output
    assert "state=retrying" in status.output and "last_error=-" not in status.output
    (zone,) = json.loads(ctl(path, "status", "--json").output)["zones"]
    assert zone["state"] == "retrying" and zone["last_error"]


def test_control_socket_is_private_and_survives_garbage(bind_primary, served, tmp_path):
    primary = bind_primary()
    path = config(tmp_path, [primary.addr])
    server = served(path)
    sock_path = tmp_path / "store" / "secdns.ctl"
    mode = os.stat(sock_path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600

    def exchange(payload: bytes) -> list[bytes]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(sock_path))
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)  # no more requests: serve closes after answering
            except OSError:
                pass  # closed while we were still sending (the huge line)
            chunks = []
            try:
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except ConnectionResetError:
                pass  # closed with our unread bytes in its buffer (the huge line)
            return b"".join(chunks).splitlines()

    (answer,) = exchange(b"\x00\xffnot json at all\n")
    assert json.loads(answer) == {"ok": False, "error": "not a JSON line", "exit_code": 2}
    (answer,) = exchange(b"[1, 2]\n")
    assert json.loads(answer)["error"] == "a request is a JSON object"
    for answer in exchange(b"x" * (1 << 20) + b"\n"):  # the answer may be lost to the reset
        assert "over 65536 bytes" in json.loads(answer)["error"]
    (answer,) = exchange(b"[" * 60000 + b"\n")  # nesting deeper than the parser's recursion
    assert json.loads(answer)["error"] == "not a JSON line"
    (answer,) = exchange(b'{"command": "bogus"}\n')
    assert json.loads(answer)["error"].startswith("unknown command 'bogus'")
    # serve is unharmed, and one connection carries several requests
    answers = exchange(b'{"command": "status"}\n{"command": "status", "zones": ["example.com"]}\n')
    assert [json.loads(a)["ok"] for a in answers] == [True, True]
    server.wait_serial(ZONE, SERIAL)


def test_ctl_notify_reload_stop(bind_primary, served, tmp_path):
    primary = bind_primary()
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(5)
    target_port = target.getsockname()[1]
    path = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr], "notify": [f"127.0.0.1:{target_port}"]}],
    )
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    while True:  # drain the NOTIFY of the first load
        target.settimeout(0.5)
        try:
            target.recvfrom(65535)
        except TimeoutError:
            break
    target.settimeout(5)
    result = ctl(path, "notify", ZONE, "--no-wait")
    assert result.exit_code == 0 and "started" in result.output
    data, addr = target.recvfrom(65535)
    message = dns.message.from_wire(data)
    assert message.opcode() == dns.opcode.NOTIFY
    target.sendto(dns.message.make_response(message).to_wire(), addr)

    # waiting for the targets: how each ended, and the exit status says it
    def answer_next(rcode: int) -> threading.Thread:
        def run() -> None:
            data, addr = target.recvfrom(65535)
            reply = dns.message.make_response(dns.message.from_wire(data))
            reply.set_rcode(rcode)
            target.sendto(reply.to_wire(), addr)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    answering = answer_next(dns.rcode.NOERROR)
    result = ctl(path, "notify", ZONE)
    answering.join(10)
    assert result.exit_code == 0, result.output
    assert result.output == f"notify: zone={ZONE}. target=127.0.0.1:{target_port} acknowledged\n"
    answering = answer_next(dns.rcode.NOTAUTH)
    result = ctl(path, "notify", ZONE)
    answering.join(10)
    assert result.exit_code == 4, result.output
    assert 'failed error="answered NOTAUTH"' in result.output
    target.close()
    began = time.monotonic()  # nothing listens now: said when refused, not after 10 s
    refused = ctl(path, "notify", ZONE)
    assert refused.exit_code == 3 and "refused" in refused.output, refused.output
    assert time.monotonic() - began < 5, refused.output

    reloaded = ctl(path, "reload")
    assert reloaded.exit_code == 0 and "zones=1" in reloaded.output
    stopped = ctl(path, "stop")
    assert stopped.exit_code == 0 and stopped.output == "stop: serve stopped\n"
    # returned once stopped: its store is free (a stranger's ctl stop returned first)
    from secdns.server.storelock import hold_store

    os.close(hold_store(tmp_path / "store"))
    server.thread.join(30)
    assert not server.thread.is_alive()
    assert not (tmp_path / "store" / "secdns.ctl").exists()
    gone = ctl(path, "status")
    assert gone.exit_code == 7 and "cannot reach serve's control socket" in gone.output


def test_pull_metrics_file(bind_primary, tmp_path):
    primary = bind_primary()
    metrics = tmp_path / "secdns.prom"
    result = CliRunner().invoke(
        cli,
        ["pull", ZONE, f"@{primary.addr}", "-d", str(tmp_path / "store")]
        + ["--metrics-file", str(metrics)],
    )
    assert result.exit_code == 0, result.output
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
    }
    zone = (("zone", "example.com."),)
    assert samples[("secdns_zone_serial", zone)] == SERIAL
    assert samples[("secdns_zone_expired", zone)] == 0
    assert samples[("secdns_zone_expiry_timestamp_seconds", zone)] > time.time() + 1209000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".secdns.prom")]


def test_a_second_serve_on_the_same_control_socket_is_refused(bind_primary, served, tmp_path):
    from secdns.errors import LocalIOError

    primary = bind_primary()
    first = config(tmp_path, [primary.addr])
    served(first)
    second = write_config(  # another store, the first one's control socket
        tmp_path / "second.toml",
        directory=tmp_path / "store2",
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
        control=str(tmp_path / "store" / "secdns.ctl"),
    )
    with pytest.raises(LocalIOError, match="control socket .* is in use: another secdns serve"):
        served(second)
    third = write_config(  # the first one's store (tests/test_storelock.py: the CLI)
        tmp_path / "third.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
        control=str(tmp_path / "third.ctl"),
    )
    with pytest.raises(LocalIOError, match="store .* is in use by another secdns serve"):
        served(third)
    assert ctl(first, "status").exit_code == 0  # the first one still answers


def test_config_keys_for_operations(tmp_path):
    from secdns.config import parse_config
    from secdns.errors import ConfigError

    doc = {"server": {"directory": "s", "metrics_listen": "127.0.0.1:9153", "control": "c.ctl"}}
    parsed = parse_config(doc, "t.toml", base=tmp_path)
    assert str(parsed.server.metrics_listen) == "127.0.0.1:9153"
    assert parsed.server.control == tmp_path / "c.ctl"
    assert parse_config({}, "t.toml").server.metrics_listen is None
    with pytest.raises(ConfigError, match="server.metrics_listen: expected one ADDR:PORT"):
        parse_config({"server": {"metrics_listen": "metrics.example:9153"}}, "t.toml")
    with pytest.raises(ConfigError, match="server.control: expected a path string"):
        parse_config({"server": {"control": 5}}, "t.toml")


def test_status_renderings():
    import io

    from rich.console import Console

    from secdns.cli.ctl import status_line, status_table

    status = {
        "zone": "example.com.",
        "serial": 7,
        "state": "retrying",
        "primary": "192.0.2.1:53",
        "last_refresh": 0.0,
        "last_change": None,
        "next_refresh": 60.0,
        "expires_at": 1209600.0,
        "records": 12,
        "last_error": 'zone example.com.: no answer "soon"',
    }
    assert status_line(status) == (
        "zone=example.com. serial=7 state=retrying primary=192.0.2.1:53 "
        "last_refresh=1970-01-01T00:00:00Z last_change=- next_refresh=1970-01-01T00:01:00Z "
        'expires_at=1970-01-15T00:00:00Z records=12 last_error="zone example.com.: no answer '
        '\\"soon\\""'
    )
    out = io.StringIO()
    Console(file=out, width=200).print(status_table([status]))
    assert "retrying" in out.getvalue() and "1970-01-15T00:00:00Z" in out.getvalue()


def _watch(*args: str):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "secdns", "watch", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except Exception:
        proc.kill()
        proc.wait(5)


def test_watch_metrics_monitor_and_mirror(bind_primary, tmp_path):
    primary = bind_primary()
    monitor_port, mirror_port = free_port(), free_port()
    monitor = _watch(
        ZONE, "--servers", f"@{primary.addr}", "--interval", "0.2",
        "--metrics-listen", f"127.0.0.1:{monitor_port}",
    )  # fmt: skip
    mirror = _watch(
        ZONE, f"@{primary.addr}", "-d", str(tmp_path / "store"), "--interval", "0.2",
        "--metrics-listen", f"127.0.0.1:{mirror_port}",
    )  # fmt: skip
    try:
        server = (("server", primary.addr), ("zone", "example.com."))
        zone = (("zone", "example.com."),)

        def safe_scrape(port):
            try:
                return scrape(port)
            except OSError:
                return {}

        seen = wait_for(
            lambda: (s := safe_scrape(monitor_port)).get(("secdns_watch_serial", server)) and s,
            what="secdns_watch_serial",
        )
        assert seen[("secdns_watch_serial", server)] == SERIAL
        assert seen[("secdns_watch_lag_seconds", server)] == 0
        wait_for(
            lambda: safe_scrape(mirror_port).get(("secdns_zone_serial", zone)) == SERIAL,
            what="mirror serial",
        )
        primary.nsupdate("update add watched.example.com. 60 A 192.0.2.8")
        wait_for(
            lambda: safe_scrape(monitor_port).get(("secdns_watch_serial", server)) == SERIAL + 1,
            what="monitor sees the new serial",
        )
        ixfr_ok = (("kind", "ixfr"), ("result", "ok"), ("zone", "example.com."))
        after = wait_for(
            lambda: (s := safe_scrape(mirror_port)).get(("secdns_transfers_total", ixfr_ok)) and s,
            what="mirror IXFR counted",
        )
        assert after[("secdns_zone_serial", zone)] == SERIAL + 1
        assert after[("secdns_zone_expiry_timestamp_seconds", zone)] > time.time() + 1209000
        assert http_status(mirror_port, "/readyz")[0] == 200
    finally:
        _stop(monitor)
        _stop(mirror)


def test_control_path_that_is_not_a_socket_is_left_alone(bind_primary, served, tmp_path):
    from secdns.errors import LocalIOError

    primary = bind_primary()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    path = config(tmp_path, [primary.addr], control=str(precious))
    with pytest.raises(LocalIOError, match="exists and is not a socket: not replacing it"):
        served(path)
    assert precious.read_text() == "keep me\n"


def test_ctl_reaches_serve_while_its_config_is_being_edited(bind_primary, served, tmp_path):
    # a stranger: a half-done edit of the config made `ctl status` and `ctl reload` exit
    # 2 with the file's problems, serve still running on the config it had loaded
    primary = bind_primary()
    path = config(tmp_path, [primary.addr])
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    path.write_text(path.read_text() + '\n[[zone]]\nname = "half.test"\nbogus = 1\n')
    status = ctl(path, "status")
    assert status.exit_code == 0, status.output
    assert f"zone={ZONE}" in status.output
    reloaded = ctl(path, "reload")  # serve reads the file: refused, its config kept
    assert reloaded.exit_code == 2, reloaded.output
    assert "half.test" in reloaded.output
    as_json = ctl(path, "reload", "--json")  # the error as JSON on stdout too
    doc = json.loads(as_json.stdout)
    assert as_json.exit_code == 2 and doc["ok"] is False, as_json.output
    assert doc["error"]["exit_code"] == 2 and "half.test" in doc["error"]["message"]
    assert ctl(path, "status").exit_code == 0
    path.write_text("not toml [")  # not even TOML: said as such
    broken = ctl(path, "status")
    assert broken.exit_code == 2 and "not valid TOML" in broken.output
    assert "-s SOCKET reaches serve without the config" in broken.output


def test_last_change_survives_a_restart(bind_primary, served, tmp_path):
    # a stranger: ctl status showed last_change '-' after a restart (last_refresh stayed)
    primary = bind_primary()
    path = config(tmp_path, [primary.addr])
    server = served(path)
    server.wait_serial(ZONE, SERIAL)
    (before,) = json.loads(ctl(path, "status", "--json").output)["zones"]
    assert before["last_change"] is not None
    server.stop()
    again = served(path)
    again.wait_serial(ZONE, SERIAL)
    (after,) = json.loads(ctl(path, "status", "--json").output)["zones"]
    assert after["last_change"] == int(before["last_change"]), (before, after)


def test_ctl_states_are_the_schedulers():
    """ctl writes the states out (it does not import the engine): the same list."""
    from secdns.cli.ctl import STATES as CTL_STATES
    from secdns.zonestatus import STATES

    assert CTL_STATES == STATES


def test_ctl_status_of_many_zones_on_a_terminal_is_columns_and_a_summary(monkeypatch):
    """Past TABLE_ROWS zones a terminal gets aligned columns in one Text (a rich table of
    a stranger's 5,000 zones took 3.4 s), then how many zones are in each state;
    --problems lists only those retrying or expired, the exit status covering all."""
    import io

    from rich.console import Console

    from secdns.cli import ctl as ctl_module

    now = time.time()
    zones = [
        {
            "zone": f"z{i:04d}.example.",
            "serial": i,
            "state": "retrying" if i % 100 == 7 else "ok",
            "primary": "127.0.0.1:5300",
            "last_refresh": now,
            "last_change": now,
            "next_refresh": now + 60,
            "expires_at": now + 600,
            "records": 20,
            "last_error": ("server 127.0.0.1:5300: connection refused " * 5)
            if i % 100 == 7
            else None,
        }
        for i in range(1000)
    ]
    monkeypatch.setattr(ctl_module, "_call", lambda request, on_step=None: {"zones": zones})
    monkeypatch.setattr("secdns.output.use_rich", lambda stream=None: True)
    out = io.StringIO()
    monkeypatch.setattr(
        "rich.console.Console", lambda **kw: Console(file=out, width=100, color_system=None)
    )
    began = time.monotonic()
    result = CliRunner().invoke(cli, ["ctl", "-s", "/nonexistent", "status"])
    assert time.monotonic() - began < 2
    assert result.exit_code == 1, result.output
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 1000 + 1 and max(map(len, lines)) <= 100
    assert lines[0].split()[:3] == ["zone", "serial", "state"]
    assert lines[8].startswith("z0007.example.") and lines[8].endswith("\u2026")
    assert lines[-1] == "1,000 zones: 990 ok, 10 retrying"
    out.truncate(0)
    out.seek(0)
    result = CliRunner().invoke(cli, ["ctl", "-s", "/nonexistent", "status", "--problems"])
    assert result.exit_code == 1
    assert out.getvalue().splitlines()[-1] == "10 of 1,000 zones shown: 990 ok, 10 retrying"
    result = CliRunner().invoke(cli, ["ctl", "-s", "/nonexistent", "status", "--state", "ok"])
    assert result.exit_code == 1  # (the retrying zones, though not listed)
    piped = CliRunner().invoke(cli, ["ctl", "-s", "/x", "status", "--problems", "--json"])
    document = json.loads(piped.output)
    assert len(document["zones"]) == 10 and document["states"]["ok"] == 990


def test_ctl_reload_fails_when_a_zone_file_does_not_load(served, tmp_path):
    """A zone file that no longer loads (cut short, gone, another zone's, or changed
    without a new serial) keeps the loaded version, and says so: ctl reload counts it
    as failed and exits 6 or 7 (it said done and exited 0, a stranger found), ctl status
    shows the error as the zone's last; a file that loads again clears it, and a new
    serial counts as reloaded."""
    zone_file = tmp_path / "primary.zone"
    text = (Path(__file__).parent / "zones" / "example.com.zone").read_text()
    zone_file.write_text(text)
    path = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(zone_file)}],
    )
    served(path)
    cases = [
        (text + "broken ( A 192.0.2.1\n", 6, "parentheses"),
        (text.replace("example.com", "example.net"), 6, "example.net"),
        (text + "extra A 192.0.2.9\n", 6, "did not"),
        (None, 7, "no such zone file"),
    ]
    for content, code, words in cases:
        if content is None:
            zone_file.unlink()
        else:
            zone_file.write_text(content)
        result = ctl(path, "reload")
        assert result.exit_code == code, (words, result.output)
        assert "failed=1" in result.output and words in result.output, result.output
        assert f"zone={ZONE}." in result.output
        status = ctl(path, "status")
        assert "state=ok" in status.output and words in status.output, status.output
    assert dns.message.from_wire(_soa(path)).answer[0][0].serial == SERIAL  # kept
    zone_file.write_text(text.replace(f"{SERIAL} ", f"{SERIAL + 1} "))
    result = ctl(path, "reload")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("reload: done, zones=1 added=0 removed=0 changed=0 reloaded=1")
    assert "last_error=-" in ctl(path, "status").output
    assert dns.message.from_wire(_soa(path)).answer[0][0].serial == SERIAL + 1


def test_a_zone_file_that_does_not_load_leaves_the_other_zones_served(served, tmp_path):
    """One zone file missing or broken at the start, or on a reload, is that zone's
    failure, as BIND and Knot treat it: the others are served (a stranger's serve exited
    6, serving none; a reload stopped at it, the zones after it not added), the zone
    answers SERVFAIL with state=failed until a reload loads its file; a zone whose
    `file` a reload changed reads the new file (it kept the old version)."""
    good = tmp_path / "primary.zone"
    text = (Path(__file__).parent / "zones" / "example.com.zone").read_text()
    good.write_text(text)
    broken = tmp_path / "broken.zone"
    broken.write_text("garbage here\n")
    missing = tmp_path / "missing.zone"
    zones = [
        {"name": ZONE, "file": str(good)},
        {"name": "missing.test", "file": str(missing)},
        {"name": "broken.test", "file": str(broken)},
    ]
    path = write_config(tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones)
    served(path)
    status = ctl(path, "status")
    assert status.exit_code == 1, status.output
    lines = status.output.splitlines()
    assert "state=ok" in lines[0]
    assert "state=failed" in lines[1] and "no such zone file" in lines[1], lines[1]
    assert "state=failed" in lines[2] and "unknown type" in lines[2], lines[2]
    assert dns.message.from_wire(_soa(path)).answer[0][0].serial == SERIAL
    assert dns.message.from_wire(_soa(path, "broken.test")).rcode() == dns.rcode.SERVFAIL
    # the missing file appears; a zone is added whose file is missing, one after it
    # loads; the good zone's file is now another path with a new serial
    missing.write_text(text.replace("example.com", "missing.test"))
    moved = tmp_path / "moved.zone"
    moved.write_text(text.replace(f"{SERIAL} ", f"{SERIAL + 1} "))
    later = tmp_path / "later.zone"
    later.write_text(text.replace("example.com", "later.test"))
    zones[0]["file"] = str(moved)
    zones += [
        {"name": "gone.test", "file": str(tmp_path / "gone.zone")},
        {"name": "later.test", "file": str(later)},
    ]
    write_config(path, directory=tmp_path / "store", zones=zones, port=_port(path))
    result = ctl(path, "reload")
    assert result.exit_code == 6, result.output  # broken.test's (the first failure)
    done = "reload: done, zones=5 added=2 removed=0 changed=1 reloaded=2 failed=2"
    assert done in result.output.splitlines(), result.output  # (serve's log lines too)
    assert "zone=gone.test. no such zone file" in result.output
    assert dns.message.from_wire(_soa(path)).answer[0][0].serial == SERIAL + 1
    for name in ("missing.test", "later.test"):
        assert dns.message.from_wire(_soa(path, name)).answer[0][0].serial == SERIAL
    states = [line.split()[2] for line in ctl(path, "status").output.splitlines()]
    assert states == ["state=ok", "state=ok", "state=failed", "state=failed", "state=ok"]
    # a serial that goes back is loaded, and ctl reload says so (only the log did)
    moved.write_text(text.replace("192.0.2", "198.51.100"))
    result = ctl(path, "reload", "--json")
    warned = json.loads(result.stdout)["warnings"]
    assert any(f"serial {SERIAL + 1} -> {SERIAL} went back" in w for w in warned), warned
    assert ctl(path, "reload", "--json").stdout.count("went back") == 0  # (said once)


def test_a_file_zones_last_change_is_its_load(served, tmp_path):
    zone_file = tmp_path / "primary.zone"
    zone_file.write_text((Path(__file__).parent / "zones" / "example.com.zone").read_text())
    zones = [{"name": ZONE, "file": str(zone_file)}]
    path = write_config(tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones)
    served(path)
    assert "last_change=-" not in ctl(path, "status").output  # (a stranger's was, at a start)


def test_serve_with_no_zone_file_that_loads_exits_naming_the_zone(tmp_path):
    zones = [{"name": "x.test", "file": str(tmp_path / "nope.zone")}]
    path = write_config(tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones)
    result = CliRunner().invoke(cli, ["serve", "-c", str(path)])
    assert result.exit_code == 7, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"secdns: error: zone x.test.: no such zone file: {tmp_path / 'nope.zone'}"
    )
    assert "SERVFAIL" not in result.output  # (no "answering SERVFAIL" for a start that ends)


def _port(path: Path) -> int:
    return int(path.read_text().split("127.0.0.1:")[1].split('"')[0])


def _soa(path: Path, zone: str = ZONE) -> bytes:
    port = _port(path)
    query = dns.message.make_query(zone, "SOA")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(query.to_wire(), ("127.0.0.1", port))
        return sock.recv(4096)
