"""Zone transfer over TLS (XoT, RFC 9103): ``pull``, ``diff``, ``verify`` against BIND 9.18."""

from __future__ import annotations

import base64
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import dns.name
import pytest
from click.testing import CliRunner
from servers import TsigKey, zone_text
from xotservers import SERVER_NAME, Pki, XotBind

from secdns import xot
from secdns.cli import cli
from secdns.config import parse_config
from secdns.errors import ConfigError, UsageError
from secdns.store import Store

ORIGIN = "example.com."


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[XotBind]:
    server = XotBind.start_tls(
        tmp_path_factory.mktemp("xot-bind"), {"example.com": zone_text()}, pki=pki
    )
    try:
        yield server
    finally:
        server.stop()


# --- settings (no network) -----------------------------------------------------------


def test_pin_must_be_base64_sha256():
    assert len(xot.parse_pin(base64.b64encode(bytes(32)).decode())) == 32
    with pytest.raises(UsageError, match="not base64"):
        xot.parse_pin("not base64!")
    with pytest.raises(UsageError, match="32 bytes"):
        xot.parse_pin(base64.b64encode(b"short").decode())


def test_any_tls_option_implies_tls_and_insecure_excludes_verification(pki):
    assert xot.make_settings(False) is None
    assert xot.make_settings(False, hostname="ns1.example").hostname == "ns1.example"
    with pytest.raises(UsageError, match="verifies nothing"):
        xot.make_settings(True, pin=pki.pin, insecure=True)
    settings = xot.make_settings(True, pin=pki.pin)
    assert settings.mode == "pin" and not settings.verifies_chain
    assert xot.make_settings(True, ca_file=pki.ca, pin=pki.pin).verifies_chain


def test_config_transport_tls(tmp_path, pki):
    doc = {
        "zone": [
            {
                "name": "example.com",
                "primaries": ["127.0.0.1", "127.0.0.2:8853"],
                "transport": "tls",
                "tls_ca": str(pki.ca),
                "tls_hostname": SERVER_NAME,
            },
            {"name": "plain.example", "primaries": ["127.0.0.1"]},
        ]
    }
    config = parse_config(doc)
    tls_zone, plain = config.zones
    assert [p.port for p in tls_zone.primaries] == [853, 8853]
    assert tls_zone.tls == xot.TlsSettings(ca_file=pki.ca, hostname=SERVER_NAME)
    assert plain.tls is None and plain.primaries[0].port == 53
    bad = {
        "zone": [
            {"name": "a.example", "primaries": ["::1"], "transport": "quic"},
            {"name": "b.example", "primaries": ["::1"], "tls_pin": "x"},
            {"name": "c.example", "primaries": ["::1"], "transport": "tls", "tls_pin": "x"},
            {"name": "d.example", "primaries": ["::1"], "transport": "tls", "tls_ca": "/no"},
        ]
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(bad)
    text = str(caught.value)
    assert "4 problems" in text
    assert 'zone[0] (a.example).transport: expected "tcp" or "tls"' in text
    assert 'zone[1] (b.example).tls_pin: needs transport = "tls"' in text
    assert "zone[2] (c.example).tls_pin: 'x': not base64" in text
    assert "zone[3] (d.example).tls_ca: no such file /no" in text


# --- pull over TLS against BIND -----------------------------------------------------


def test_pull_over_tls_with_the_right_ca_then_ixfr(primary, pki, tmp_path):
    store = tmp_path / "store"
    args = [f"@{primary.tls_addr}", "--tls-ca", str(pki.ca), "-d", str(store)]
    result = run("pull", ORIGIN, *args)
    assert result.exit_code == 0, result.stderr
    assert "kind=AXFR" in result.output and "serial=none->2024010101" in result.output
    primary.nsupdate("update add xot.example.com. 300 A 192.0.2.53", zone="example.com")
    result = run("pull", ORIGIN, *args)
    assert result.exit_code == 0, result.stderr
    assert "kind=IXFR" in result.output and "added=1" in result.output
    assert "xot 300 IN A 192.0.2.53" in (store / "example.com.zone").read_text()


def test_pull_verifies_a_given_hostname(primary, pki, tmp_path):
    out = tmp_path / "z"
    ok = run(
        "pull", ORIGIN, f"@{primary.tls_addr}", "--tls-ca", str(pki.ca),
        "--tls-hostname", SERVER_NAME, "-o", str(out),
    )  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    wrong = run(
        "pull", ORIGIN, f"@{primary.tls_addr}", "--tls-ca", str(pki.ca),
        "--tls-hostname", "ns9.other.test", "-o", str(out),
    )  # fmt: skip
    assert wrong.exit_code == 3
    assert "TLS hostname mismatch: the certificate is not for 'ns9.other.test'" in wrong.stderr
    assert f"server {primary.tls_addr}" in wrong.stderr and "zone example.com." in wrong.stderr


def test_pull_refuses_a_certificate_from_another_ca(primary, pki, tmp_path):
    out = tmp_path / "z"
    ca = str(pki.other_ca)
    result = run("pull", ORIGIN, f"@{primary.tls_addr}", "--tls-ca", ca, "-o", str(out))
    assert result.exit_code == 3
    assert f"TLS certificate not trusted by {pki.other_ca}" in result.stderr
    assert not (tmp_path / "z").exists()


def test_system_store_does_not_trust_a_private_ca(primary, tmp_path):
    result = run("pull", ORIGIN, f"@{primary.tls_addr}", "--tls", "-o", str(tmp_path / "z"))
    assert result.exit_code == 3
    assert "TLS certificate not trusted by the system store" in result.stderr


def test_pin_replaces_ca_verification(primary, pki, tmp_path):
    out = tmp_path / "z"
    ok = run("pull", ORIGIN, f"@{primary.tls_addr}", "--tls-pin", pki.pin, "-o", str(out))
    assert ok.exit_code == 0, ok.stderr
    assert out.read_text().startswith("; zone example.com. serial")
    wrong_pin = base64.b64encode(bytes(32)).decode()
    bad = run("pull", ORIGIN, f"@{primary.tls_addr}", "--tls-pin", wrong_pin, "-o", str(out))
    assert bad.exit_code == 3
    assert f"TLS pin mismatch: the certificate's key has pin {pki.pin}" in bad.stderr
    assert f"expected {wrong_pin}" in bad.stderr


def test_insecure_is_explicit_and_works(primary, tmp_path):
    out = str(tmp_path / "z")
    result = run("pull", ORIGIN, f"@{primary.tls_addr}", "--tls-insecure", "-o", out)
    assert result.exit_code == 0, result.stderr
    both = run(
        "pull", ORIGIN, f"@{primary.tls_addr}", "--tls-insecure", "--tls-pin",
        base64.b64encode(bytes(32)).decode(), "-o", str(tmp_path / "z"),
    )  # fmt: skip
    assert both.exit_code == 2 and "--tls-insecure verifies nothing" in both.stderr


def test_plain_dns_to_the_tls_port_fails_cleanly(primary, tmp_path):
    """Forgetting --tls: the SOA probe (UDP) finds no listener, a transfer (TCP) a closed door."""
    pulled = run(
        "pull", ORIGIN, f"@{primary.tls_addr}", "--timeout", "0.5", "-o", str(tmp_path / "z")
    )
    assert pulled.exit_code == 3
    assert "nothing answers DNS there" in pulled.stderr  # no UDP listener: ICMP unreachable
    zone_file = tmp_path / "example.com.zone"
    zone_file.write_text(zone_text())
    diffed = run("diff", ORIGIN, f"@{primary.tls_addr}", str(zone_file), "--timeout", "2")
    assert diffed.exit_code == 3, diffed.stderr
    assert f"server {primary.tls_addr}: the server closed the connection" in diffed.stderr


def test_tls_to_a_plain_dns_port_says_it_is_not_tls(primary, pki, tmp_path):
    result = run(
        "pull", ORIGIN, f"@{primary.addr}", "--tls-ca", str(pki.ca), "--timeout", "1",
        "-o", str(tmp_path / "z"),
    )  # fmt: skip
    assert result.exit_code == 3
    assert "not speaking TLS" in result.stderr and f"server {primary.addr}" in result.stderr


def test_a_server_that_closes_during_the_handshake_refused_it(pki, tmp_path):
    """No real server does this on purpose: a listener that hangs up on the ClientHello."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = run(
            "pull", ORIGIN, f"@127.0.0.1:{port}", "--tls-ca", str(pki.ca), "--timeout", "2",
            "-o", str(tmp_path / "z"),
        )  # fmt: skip
    finally:
        thread.join(5)
        listener.close()
    assert result.exit_code == 3
    assert "no TLS handshake (the server closed the connection)" in result.stderr


def test_tsig_over_tls(pki, tmp_path):
    key = TsigKey.generate("xot-key")
    server = XotBind.start_tls(
        tmp_path / "bind",
        {"example.com": zone_text()},
        pki=pki,
        tsig={key.name: (key.algorithm, key.secret)},
        allow_transfer_key=key.name,
    )
    try:
        tls = ["--tls-ca", str(pki.ca), "-o", "-"]
        signed = run("pull", ORIGIN, f"@{server.tls_addr}", "--tsig", key.nsupdate_arg, *tls)
        assert signed.exit_code == 0, signed.stderr
        unsigned = run("pull", ORIGIN, f"@{server.tls_addr}", *tls)
        assert unsigned.exit_code == 4, unsigned.stderr
        assert "REFUSED" in unsigned.stderr
        wrong = TsigKey.generate("xot-key")
        bad = run("pull", ORIGIN, f"@{server.tls_addr}", "--tsig", wrong.nsupdate_arg, *tls)
        assert bad.exit_code == 5, bad.stderr
        assert f"server {server.tls_addr}" in bad.stderr
    finally:
        server.stop()


def test_pull_config_with_transport_tls(primary, pki, tmp_path):
    config = tmp_path / "secdns.toml"
    config.write_text(
        f'[server]\ndirectory = "store"\n\n[[zone]]\nname = "example.com"\n'
        f'primaries = ["{primary.tls_addr}"]\ntransport = "tls"\ntls_ca = "{pki.ca}"\n'
    )
    result = run("pull", "-c", str(config))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "store" / "example.com.zone").exists()


def test_diff_and_verify_over_tls(primary, pki, tmp_path):
    out = tmp_path / "copy.zone"
    tls = ["--tls-ca", str(pki.ca)]
    assert run("pull", ORIGIN, f"@{primary.tls_addr}", *tls, "-o", str(out)).exit_code == 0
    diffed = run("diff", ORIGIN, str(out), f"@{primary.tls_addr}", *tls)
    assert diffed.exit_code == 0, diffed.stderr + diffed.output
    verified = run("verify", ORIGIN, f"@{primary.tls_addr}", "--deep", *tls)
    assert verified.exit_code == 0, verified.stderr + verified.output


def test_default_port_is_853(pki):
    """--tls with no port in @SERVER means 853: nothing listens there, so 'cannot connect'."""
    result = run("pull", ORIGIN, "@127.0.0.1", "--tls-ca", str(pki.ca), "-o", "-")
    assert result.exit_code == 3
    assert "server 127.0.0.1:853" in result.stderr


def test_ca_bundle_that_is_not_pem_is_a_usage_error(primary, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = run("pull", ORIGIN, f"@{primary.tls_addr}", "--tls-ca", str(junk), "-o", "-")
    assert result.exit_code == 2, result.stderr
    assert f"--tls-ca {junk}: not a PEM CA bundle" in result.stderr


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM a watch, as an operator stops it; its stderr (killed if it lingers)."""
    try:
        process.send_signal(signal.SIGTERM)
        return process.communicate(timeout=10)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_watch_follows_a_zone_over_tls(primary, pki, tmp_path):
    """watch mirror over XoT: first AXFR, then IXFR after a change, all over TLS."""
    before = primary.soa_serial("example.com")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "secdns", "watch", ORIGIN, f"@{primary.tls_addr}",
            "--tls-pin", pki.pin, "-d", str(tmp_path / "store"), "--interval", "0.2",
            "--json", "-v",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        first = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert (first["event"], first["serial"], first["via"]) == ("updated", before, "AXFR")
        primary.nsupdate("update add watched.example.com. 300 A 192.0.2.54", zone="example.com")
        second = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert (second["event"], second["via"]) == ("updated", "IXFR")
        assert second["serial"] == primary.soa_serial("example.com")
    finally:
        stderr = _stop(process)
    assert process.returncode == 0, stderr
    assert "watched 300 IN A 192.0.2.54" in (tmp_path / "store" / "example.com.zone").read_text()


def test_serve_transfers_a_secondary_zone_over_tls(primary, pki, tmp_path):
    from serving import ServerThread, write_config

    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[
            {
                "name": "example.com",
                "primaries": [primary.tls_addr],
                "transport": "tls",
                "tls_pin": pki.pin,
            }
        ],
    )
    server = ServerThread(config)
    try:
        server.wait_serial("example.com", primary.soa_serial("example.com"))
    finally:
        server.stop()
    state = Store(tmp_path / "store").load_state(dns.name.from_text("example.com."))
    assert state.primary == primary.tls_addr


def test_serve_logs_what_failed_and_serves_nothing_stale(primary, pki, tmp_path, caplog):
    from serving import ServerThread, write_config

    caplog.set_level(logging.INFO)
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[
            {
                "name": "example.com",
                "primaries": [primary.tls_addr],
                "transport": "tls",
                "tls_ca": str(pki.other_ca),
            }
        ],
    )
    server = ServerThread(config)
    try:
        deadline = time.monotonic() + 10
        while not any("certificate not trusted" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
        assert server.serial("example.com") is None  # nothing transferred, nothing answered
    finally:
        server.stop()
    messages = [r.getMessage() for r in caplog.records]
    line = next(m for m in messages if "certificate not trusted" in m)
    assert "zone=example.com." in line and primary.tls_addr in line


def test_a_port_that_never_answers_the_tls_handshake_is_held(pki, tmp_path):
    """A stranger gave a plain TCP port as a TLS primary: each try waited out the
    handshake timeout, eight zones at a time, and the primary was never held as
    unreachable (a timeout with nothing heard is: secdns.unreachable)."""
    from fakeprimary import silent_primary
    from serving import ServerThread, write_config

    with silent_primary() as (silent, _taken):
        tls = {"primaries": [silent], "transport": "tls", "tls_ca": str(pki.ca)}
        zones = [{"name": f"s{i}.example", **tls} for i in range(4)]
        config = write_config(
            tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones, timeout=1
        )
        server = ServerThread(config, log_queries=False)
        try:
            deadline = time.monotonic() + 15
            while True:
                shown = CliRunner().invoke(cli, ["ctl", "-c", str(config), "status", "--json"])
                held = [p for p in json.loads(shown.output)["primaries"] if p["state"] == "held"]
                if held:
                    break
                assert time.monotonic() < deadline, shown.output
                time.sleep(0.1)
            assert held[0]["primary"] == silent
        finally:
            server.stop()


def test_an_exchange_does_not_wait_for_the_peers_close_notify(primary, pki):
    """BIND never answers a close_notify: awaiting it (SHUTDOWN_WAIT, 100 ms) cost every
    SOA probe and every transfer over TLS (a stranger's 5-record AXFR took 0.25 s
    against kdig's 11 ms); ours is sent, the connection dropped."""
    import asyncio

    import dns.message

    host, port = primary.tls_addr.rsplit(":", 1)
    tls = xot.TlsSettings(ca_file=pki.ca, hostname=SERVER_NAME)
    query = dns.message.make_query("example.com", "SOA")

    async def timed() -> float:
        began = time.perf_counter()
        await xot.exchange(query, host, int(port), tls, timeout=5)
        return time.perf_counter() - began

    took = min(asyncio.run(timed()) for _ in range(3))
    assert took < xot.SHUTDOWN_WAIT * 0.9, took


def test_watch_says_a_certificate_failure_is_not_an_unreachable_primary(primary, tmp_path):
    """A stranger's watch with an untrusted CA said "primary unreachable, retry in ..."
    for good: a TLS setting to fix is a failed check, its error saying which."""
    other = Pki.make(tmp_path / "other-pki")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "secdns", "watch", ORIGIN, f"@{primary.tls_addr}",
            "--tls-ca", str(other.ca), "-d", str(tmp_path / "store"), "--interval", "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        time.sleep(2.0)
    finally:
        stderr = _stop(process)
    assert "check failed" in stderr and "not trusted" in stderr, stderr
    assert "primary unreachable" not in stderr, stderr
