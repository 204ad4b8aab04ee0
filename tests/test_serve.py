"""``secdns serve`` against real peers: BIND as primary, BIND, Knot and NSD as secondaries."""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest
from servers import TsigKey, free_port
from serving import ServerThread, write_config

ZONE_FILE = Path(__file__).parent / "zones" / "example.com.zone"
ZONE = "example.com"
SERIAL = 2024010101


@pytest.fixture
def served(tmp_path):
    """Start secdns servers; stop them all at teardown."""
    started: list[ServerThread] = []

    def start(config_path: Path) -> ServerThread:
        server = ServerThread(config_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def secondary_config(tmp_path: Path, primary, *, port: int | None = None, **zone):
    return write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        port=port,
        zones=[{"name": ZONE, "primaries": [primary.addr], **zone}],
    )


def test_secondary_of_bind_follows_notify_by_ixfr(bind_primary, served, tmp_path):
    port = free_port()
    primary = bind_primary(notify=[("127.0.0.1", port)])
    server = served(secondary_config(tmp_path, primary, port=port))
    server.wait_serial(ZONE, SERIAL)
    answer = server.query("www.example.com.", "A")
    assert answer.flags & dns.flags.AA
    assert sorted(rd.address for rd in answer.answer[0]) == ["192.0.2.80", "192.0.2.81"]
    for round_ in range(1, 4):
        primary.nsupdate(f"update add n{round_}.example.com. 60 A 192.0.2.{round_}")
        # NOTIFY, not the refresh timer (7200 s), brings the change
        elapsed = server.wait_serial(ZONE, SERIAL + round_, timeout=10)
        assert elapsed < 5
        reply = server.query(f"n{round_}.example.com.", "A")
        assert reply.answer[0][0].address == f"192.0.2.{round_}"
    result = server.server.runtimes[next(iter(server.server.runtimes))].last_result
    assert result.kind.value == "IXFR"
    # the store holds the same data, journal included
    server.stop()
    text = (tmp_path / "store" / "example.com.zone").read_text()
    assert "n3 60 IN A 192.0.2.3" in text
    assert (tmp_path / "store" / "example.com.journal").exists()


def test_restart_answers_from_store_before_the_primary(bind_primary, served, tmp_path):
    primary = bind_primary()
    config = secondary_config(tmp_path, primary)
    first = served(config)
    first.wait_serial(ZONE, SERIAL)
    first.stop()
    primary.stop()
    second = served(config)
    # the primary is gone, but the stored copy is answered at once
    assert second.serial(ZONE) == SERIAL
    assert second.query("mail.example.com.", "A").answer[0][0].address == "192.0.2.25"


def test_notify_from_a_stranger_is_refused(bind_primary, served, tmp_path):
    primary = bind_primary()
    server = served(secondary_config(tmp_path, primary, allow_notify=["192.0.2.0/24"]))
    server.wait_serial(ZONE, SERIAL)
    notify = dns.message.make_query(ZONE + ".", "SOA")
    notify.flags = dns.flags.AA
    notify.set_opcode(dns.opcode.NOTIFY)
    # our own address is the primary's (127.0.0.1): use another loopback source
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.2", 0))
    sock.settimeout(2)
    sock.sendto(notify.to_wire(), ("127.0.0.1", server.port))
    reply = dns.message.from_wire(sock.recv(4096))
    sock.close()
    assert reply.rcode() == dns.rcode.REFUSED
    accepted = dns.query.udp(notify, "127.0.0.1", port=server.port, timeout=2)
    assert accepted.rcode() == dns.rcode.NOERROR and accepted.flags & dns.flags.AA
    other = dns.message.make_query("example.org.", "SOA")
    other.set_opcode(dns.opcode.NOTIFY)
    assert (
        dns.query.udp(other, "127.0.0.1", port=server.port, timeout=2).rcode() == dns.rcode.NOTAUTH
    )


@pytest.mark.parametrize("peer", ["bind", "knot", "nsd"])
@pytest.mark.parametrize("with_tsig", [False, True])
def test_secondaries_of_secdns(peer, with_tsig, request, served, tmp_path, caplog):
    """BIND, Knot and NSD as secondaries of serve: the first AXFR, then NOTIFY and
    IXFR, transfers allowed by address or by TSIG key."""
    caplog.set_level(logging.INFO)
    key = TsigKey.generate("down-key") if with_tsig else None
    secondary_port = free_port()
    zone_file = tmp_path / "primary.zone"
    zone_file.write_text(ZONE_FILE.read_text())
    notify = f"127.0.0.1:{secondary_port}"
    if key is not None and peer == "nsd":
        # NSD's allow-notify: ADDR KEY (Nsd.start_secondary) drops an unsigned NOTIFY;
        # BIND's and Knot's accept it by address (Knot answers a signed one NOTAUTH)
        notify += f" key:{key.name}"
    zone: dict = {
        "name": ZONE,
        "file": str(zone_file),
        "notify": [notify],
        "allow_transfer": [f"key:{key.name}"] if key else ["127.0.0.0/8"],
    }
    keys = {key.name: {"algorithm": key.algorithm, "secret": key.secret}} if key else None
    config = write_config(
        tmp_path / "secdns.toml", directory=tmp_path / "store", zones=[zone], keys=keys
    )
    server = served(config)
    start_secondary = request.getfixturevalue(f"{peer}_secondary")
    secondary = start_secondary({ZONE: ("127.0.0.1", server.port)}, key=key, port=secondary_port)
    assert secondary.soa_serial(ZONE) == SERIAL  # first AXFR
    zone_file.write_text(
        ZONE_FILE.read_text().replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial")
        + "added 300 IN A 192.0.2.222\n"
    )
    server.call(server.server.reload)  # as on SIGHUP
    secondary.wait_for_serial(ZONE, SERIAL + 1, timeout=15)  # NOTIFY, then IXFR
    assert secondary.query("added.example.com.", "A").answer[0][0].address == "192.0.2.222"
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("xfr: zone=")]
    assert any(" AXFR to 127.0.0.1#" in m and f"serial {SERIAL}:" in m for m in sent), sent
    # the IXFR's line: the client's port and key, the serials, what went out
    ixfr = [m for m in sent if " IXFR to 127.0.0.1#" in m]
    assert ixfr and f"serial {SERIAL} -> {SERIAL + 1}: 1 messages, " in ixfr[-1], ixfr
    assert (" key down-key." in ixfr[-1]) == with_tsig, ixfr
    counts = server.server.operations.metrics.transfers_out.counts
    assert counts.get(("ixfr", "ok")) == 1 and counts.get(("axfr", "ok")), counts


def _hosts(count: int, changed: bool) -> str:
    """Hosts of several records; ``changed``: every address another, each TXT gone and
    an AAAA added (an IXFR of ~4 records a host)."""
    lines = []
    for i in range(count):
        lines.append(f"h{i}.d{i % 9} 300 IN A 10.{i // 256 % 256}.{i % 256}.{1 + changed}")
        lines.append(f"h{i}.d{i % 9} 300 IN MX 10 h{(i + 1) % count}.d{(i + 1) % count % 9}")
        if changed:
            lines.append(f"h{i}.d{i % 9} 300 IN AAAA 2001:db8::{i:x}")
        else:
            lines.append(f'h{i}.d{i % 9} 300 IN TXT "v=spf1 a -all {i}"')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("peer", ["bind", "knot", "nsd"])
def test_an_ixfr_of_many_messages_to_secondaries(peer, request, served, tmp_path):
    """An IXFR of 10,000 records (several 64 KiB messages, each TSIG-signed) written from
    the journal's lines by the AXFR writer: BIND, Knot and NSD apply it, and each then
    holds the zone serve holds, record for record."""
    key = TsigKey.generate("down-key")
    secondary_port = free_port()
    zone_file = tmp_path / "primary.zone"
    head = ZONE_FILE.read_text()
    zone_file.write_text(head + _hosts(2500, False))
    zone: dict = {
        "name": ZONE,
        "file": str(zone_file),
        # (NSD drops an unsigned NOTIFY, Knot answers a signed one NOTAUTH)
        "notify": [f"127.0.0.1:{secondary_port}" + (f" key:{key.name}" if peer == "nsd" else "")],
        "allow_transfer": [f"key:{key.name}"],
    }
    keys = {key.name: {"algorithm": key.algorithm, "secret": key.secret}}
    config = write_config(
        tmp_path / "secdns.toml", directory=tmp_path / "store", zones=[zone], keys=keys
    )
    server = served(config)
    start_secondary = request.getfixturevalue(f"{peer}_secondary")
    secondary = start_secondary({ZONE: ("127.0.0.1", server.port)}, key=key, port=secondary_port)
    secondary.wait_for_serial(ZONE, SERIAL, timeout=15)
    new = head.replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial") + _hosts(2500, True)
    zone_file.write_text(new)
    server.call(server.server.reload)
    secondary.wait_for_serial(ZONE, SERIAL + 1, timeout=30)  # NOTIFY, then IXFR
    keyring = key.keyring
    ours = dns.zone.from_xfr(
        dns.query.xfr(
            "127.0.0.1", ZONE, port=server.port, keyring=keyring, keyname=key.dns_key.name
        )
    )
    theirs = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=secondary.port))
    assert ours == theirs
    counts = server.server.operations.metrics.transfers_out.counts
    assert counts.get(("ixfr", "ok")) == 1, counts


def test_transfer_refused_without_acl(bind_primary, served, tmp_path):
    primary = bind_primary()
    server = served(secondary_config(tmp_path, primary))
    server.wait_serial(ZONE, SERIAL)
    query = dns.message.make_query(ZONE + ".", "AXFR")
    reply = dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=3)
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.answer


def test_axfr_out_equals_primary(bind_primary, served, tmp_path):
    primary = bind_primary()
    server = served(secondary_config(tmp_path, primary, allow_transfer=["127.0.0.1/32"]))
    server.wait_serial(ZONE, SERIAL)
    ours = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=server.port))
    theirs = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=primary.port))
    assert ours == theirs


def test_expire_answers_servfail_then_recovers(bind_primary, served, tmp_path):
    text = (
        ZONE_FILE.read_text()
        .replace("7200       ; refresh", "1 ; refresh")
        .replace("900        ; retry", "1 ; retry")
        .replace("1209600    ; expire", "3 ; expire")
    )
    port = free_port()
    primary = bind_primary({ZONE: text}, port=port)
    config = secondary_config(tmp_path, primary)
    config.write_text(config.read_text().replace("[server]\n", "[server]\ntimeout = 0.5\n"))
    server = served(config)
    server.wait_serial(ZONE, SERIAL)
    primary.stop()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.query(ZONE + ".", "SOA").rcode() == dns.rcode.SERVFAIL:
            break
        time.sleep(0.2)
    assert server.query("www.example.com.", "A").rcode() == dns.rcode.SERVFAIL
    bind_primary({ZONE: text}, port=port)
    server.wait_serial(ZONE, SERIAL, timeout=15)
    assert server.query("www.example.com.", "A").rcode() == dns.rcode.NOERROR


def test_a_primary_behind_us_is_taken_by_retransfer_and_once_the_zone_expires(
    bind_primary, served, tmp_path
):
    """A primary restored with an older serial (a stranger's BIND, its serial reset):
    refused while our copy is current, the zone retrying with an error that names
    ctl retransfer (not pull's --force); taken by ctl retransfer, as rndc retransfer
    does; and taken by an expired zone's next check, as BIND and Knot reload an
    expired zone whatever its serial (before, it stayed SERVFAIL for good)."""
    from click.testing import CliRunner

    from secdns.cli import cli

    newer, older = SERIAL + 10, SERIAL

    def text(serial: int, expire: int = 1209600) -> str:
        return (
            ZONE_FILE.read_text()
            .replace(str(SERIAL), str(serial))
            .replace("7200       ; refresh", "1 ; refresh")
            .replace("900        ; retry", "1 ; retry")
            .replace("1209600    ; expire", f"{expire} ; expire")
        )

    port = free_port()
    primary = bind_primary({ZONE: text(newer)}, port=port)
    config = secondary_config(tmp_path, primary)
    config.write_text(config.read_text().replace("[server]\n", "[server]\ntimeout = 0.5\n"))
    server = served(config)
    server.wait_serial(ZONE, newer)
    primary.stop()
    primary = bind_primary({ZONE: text(older)}, port=port)
    refreshed = CliRunner().invoke(cli, ["ctl", "-c", str(config), "refresh", ZONE])
    assert refreshed.exit_code != 0
    assert f"older than our {newer}" in refreshed.output
    assert "ctl retransfer" in refreshed.output and "--force" not in refreshed.output
    assert server.serial(ZONE) == newer
    taken = CliRunner().invoke(cli, ["ctl", "-c", str(config), "retransfer", ZONE])
    assert taken.exit_code == 0, taken.output
    assert f"serial={newer}->{older}" in taken.output
    assert server.serial(ZONE) == older
    # its secondaries keep the newer serial: said, with how to move them
    assert f"warning: retransfer: zone={ZONE}. serial went back {newer} -> {older}" in (
        taken.stderr
    ), taken.stderr
    assert "rndc retransfer" in taken.stderr

    # again, without ctl: a copy that expires takes the older serial at its next check
    primary.stop()
    primary = bind_primary({ZONE: text(newer, expire=3)}, port=port)
    server.wait_serial(ZONE, newer, timeout=15)
    primary.stop()
    primary = bind_primary({ZONE: text(older, expire=3)}, port=port)
    server.wait_serial(ZONE, older, timeout=20)
    assert server.query("www.example.com.", "A").rcode() == dns.rcode.NOERROR


def test_fuzzed_packets_do_not_stop_the_server(bind_primary, served, tmp_path):
    primary = bind_primary()
    server = served(secondary_config(tmp_path, primary))
    server.wait_serial(ZONE, SERIAL)
    rng = random.Random(1234)
    good = dns.message.make_query("www.example.com.", "A").to_wire()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    for _ in range(3000):
        choice = rng.random()
        if choice < 0.3:
            packet = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        elif choice < 0.9:
            packet = bytearray(good)
            for _flip in range(rng.randrange(1, 6)):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
            packet = bytes(packet)
        else:
            packet = good[:12] + struct.pack("!H", 40) + good[14:]  # many questions
        sock.sendto(packet, ("127.0.0.1", server.port))
        try:
            reply = sock.recv(65535)
            assert len(reply) <= 512
        except TimeoutError:
            pass
    sock.close()
    # TCP: half a length prefix, then a client that never reads
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(b"\x00")
    lazy = socket.create_connection(("127.0.0.1", server.port))
    lazy.sendall(struct.pack("!H", len(good)) + good)
    reply = server.query("www.example.com.", "A")
    assert reply.rcode() == dns.rcode.NOERROR and len(reply.answer[0]) == 2
    assert server.query("www.example.com.", "A", tcp=True).rcode() == dns.rcode.NOERROR
    half.close()
    lazy.close()


def serve_process(config: Path) -> subprocess.Popen[bytes]:
    """``secdns serve -c CONFIG`` in a process of its own, its log lines on a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "secdns", "serve", "-c", str(config), "--log-format", "text"],
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def udp_serial(zone: str, port: int) -> int | None:
    """The serial 127.0.0.1:``port`` answers for ``zone``, or None."""
    try:
        reply = dns.query.udp(
            dns.message.make_query(zone, "SOA"), "127.0.0.1", port=port, timeout=0.5
        )
    except Exception:
        return None
    return reply.answer[0][0].serial if reply.answer else None


def test_sighup_and_sigterm_in_a_real_process(bind_primary, tmp_path):
    primary = bind_primary()
    other = ZONE_FILE.read_text().replace("example.com.", "example.org.")
    second = bind_primary({"example.org": other})
    config = secondary_config(tmp_path, primary)
    port = int(config.read_text().split("127.0.0.1:")[1].split('"')[0])
    proc = serve_process(config)
    try:
        deadline = time.monotonic() + 20
        while udp_serial("example.com.", port) != SERIAL and time.monotonic() < deadline:
            time.sleep(0.1)
        assert udp_serial("example.com.", port) == SERIAL
        text = config.read_text() + (
            f'\n[[zone]]\nname = "example.org"\nprimaries = ["{second.addr}"]\n'
        )
        config.write_text(text)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while udp_serial("example.org.", port) != SERIAL and time.monotonic() < deadline:
            time.sleep(0.1)
        assert udp_serial("example.org.", port) == SERIAL
        assert udp_serial("example.com.", port) == SERIAL  # not dropped by the reload
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read().decode()
    assert "reload: zone=example.org. added" in log and "serve: stopped" in log


@pytest.mark.parametrize("after", [0.15, 0.5])
def test_a_sighup_right_after_the_start_reloads_once_started(tmp_path, after):
    """systemctl reload right after a start: the SIGHUP came while secdns was still
    importing (0.15 s) or starting (0.5 s), and used to end serve silently."""
    port = free_port()
    other = ZONE_FILE.read_text().replace("example.com.", "example.org.")
    (tmp_path / "example.org.zone").write_text(other)
    config = tmp_path / "secdns.toml"
    base = f'[server]\nlisten = ["127.0.0.1:{port}"]\n'
    base += f'[[zone]]\nname = "example.com"\nfile = "{ZONE_FILE}"\n'
    config.write_text(base)
    proc = serve_process(config)
    try:
        time.sleep(after)
        config.write_text(base + '[[zone]]\nname = "example.org"\nfile = "example.org.zone"\n')
        proc.send_signal(signal.SIGHUP)

        deadline = time.monotonic() + 20
        while udp_serial("example.org.", port) != SERIAL:
            assert proc.poll() is None, "serve ended on the SIGHUP"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert udp_serial("example.com.", port) == SERIAL
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "serve: stopped" in proc.stderr.read().decode()


def test_a_stop_asked_while_starting_stops_once_started_exit_0(tmp_path):
    """SIGTERM or SIGINT while serve loads (here a zone file of 200,000 records, after
    a small zone's): stopped once started, exit 0, as once running (it was 130, or a
    traceback).  The signal goes when the small zone's load is logged, the large one
    still being read (the load line of a zone is logged once it is read: with one
    zone, the signal could come after the start on a busy machine)."""
    port = free_port()
    big = ["$ORIGIN big.example.", "$TTL 300", "@ IN SOA ns1 hostmaster 1 3600 600 86400 300"]
    big += ["@ IN NS ns1", "ns1 IN A 192.0.2.1"]
    big += [f"h{i} IN A 192.0.2.{i % 250 + 1}" for i in range(200000)]
    (tmp_path / "big.zone").write_text("\n".join(big) + "\n")
    (tmp_path / "small.zone").write_text(ZONE_FILE.read_text())
    config = tmp_path / "secdns.toml"
    config.write_text(
        f'[server]\nlisten = ["127.0.0.1:{port}"]\n'
        '[[zone]]\nname = "example.com"\nfile = "small.zone"\n'
        '[[zone]]\nname = "big.example"\nfile = "big.zone"\n'
    )
    proc = serve_process(config)
    try:
        assert proc.stderr is not None
        while b"load:" not in (line := proc.stderr.readline()):  # (loading the file)
            assert line, "serve ended before loading"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read().decode()
    assert "stopping once started" in log and "serve: stopped" in log, log


def test_bad_config_is_one_clear_error(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[server]\nlisten = ["localhost:53"]\n[[zone]]\nname = "x"\nprimaries = ["192.0.2.1"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "secdns", "serve", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "not an IP address" in done.stderr and "server.directory" in done.stderr
    assert done.stderr.count("\n") == 1


def test_tsig_signed_axfr_out_over_many_messages(served, tmp_path):
    """Every message of a long signed transfer verifies (dnspython, kdig and secdns pull)."""
    key = TsigKey.generate("xfr-out")
    text = ZONE_FILE.read_text() + "".join(
        f"bulk{i} 300 IN A 10.0.{i // 256}.{i % 256}\n" for i in range(12000)
    )
    zone_file = tmp_path / "big.zone"
    zone_file.write_text(text)
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(zone_file), "allow_transfer": [f"key:{key.name}"]}],
        keys={key.name: {"algorithm": key.algorithm, "secret": key.secret}},
    )
    server = served(config)
    messages = list(
        dns.query.xfr("127.0.0.1", ZONE, port=server.port, keyring=key.keyring, keyname=key.name)
    )
    assert len(messages) > 3 and all(m.had_tsig for m in messages)
    ours = dns.zone.from_xfr(iter(messages))
    assert len(ours.nodes) == len(dns.zone.from_text(text, ZONE).nodes)
    kdig = subprocess.run(
        [
            "kdig",
            "@127.0.0.1",
            "-p",
            str(server.port),
            "-y",
            f"{key.algorithm}:{key.name}:{key.secret}",
            f"{ZONE}.",
            "AXFR",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert kdig.returncode == 0 and "bulk11999" in kdig.stdout, kdig.stdout[-500:]
    assert "TSIG" not in kdig.stderr
    pulled = subprocess.run(
        [
            sys.executable,
            "-m",
            "secdns",
            "pull",
            ZONE,
            f"@127.0.0.1:{server.port}",
            "-o",
            str(tmp_path / "copy.zone"),
            "--tsig",
            f"{key.algorithm}:{key.name}:{key.secret}",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert (
        '"messages": ' in pulled.stdout
        and "bulk11999 300 IN A 10.0.46.223" in (tmp_path / "copy.zone").read_text()
    )
    wrong = TsigKey.generate("xfr-out")
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "secdns",
            "pull",
            ZONE,
            f"@127.0.0.1:{server.port}",
            "-o",
            str(tmp_path / "no.zone"),
            "--tsig",
            f"{wrong.algorithm}:{wrong.name}:{wrong.secret}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 5, refused.stderr


def _flood(sources: list[str], port: int, stop: threading.Event, opened: list[int]) -> None:
    """Idle TCP connections from ``sources``, reopened as the server closes them."""
    held: list[socket.socket] = []
    while not stop.is_set():
        for source in sources:
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((source, 0))
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
                continue
            held.append(sock)
            opened[0] += 1
        if len(held) > 150:  # forget the ones the server closed, keep the rest open
            readable, _, _ = select.select(held, [], [], 0)
            for sock in readable:
                held.remove(sock)
                sock.close()
            while len(held) > 300:
                held.pop(0).close()
        time.sleep(0.001)
    for sock in held:
        sock.close()


def test_tcp_flood_from_one_address_does_not_shut_out_others(served, tmp_path):
    """Issue 10 item 2: idle connections reconnecting from 127.0.0.2-4 fill the table;
    queries from 127.0.0.1 still succeed and an allowed client completes an AXFR."""
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE), "allow_transfer": ["127.0.0.1"]}],
        tcp_clients=64,
        tcp_clients_per_source=16,
    )
    server = served(config)
    stop = threading.Event()
    opened = [0]
    flood = threading.Thread(
        target=_flood, args=(["127.0.0.2", "127.0.0.3", "127.0.0.4"], server.port, stop, opened)
    )
    flood.start()
    try:
        time.sleep(0.5)
        ok = 0
        for _ in range(100):
            try:
                response = server.query(ZONE, "SOA", tcp=True, timeout=2.0)
                ok += response.rcode() == dns.rcode.NOERROR
            except (dns.exception.DNSException, OSError):
                pass
        messages = list(dns.query.xfr("127.0.0.1", ZONE, port=server.port, timeout=5))
        assert sum(len(m.answer) for m in messages) > 3
    finally:
        stop.set()
        flood.join(10)
    clients = server.server.listeners.tcp_clients
    assert opened[0] > 200 and clients.reclaimed > 100, (opened[0], clients.reclaimed)
    assert ok >= 99, f"{ok}/100 TCP queries answered during the flood"


def test_a_response_over_tcp_closes_the_connection(served, tmp_path):
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE)}],
    )
    server = served(config)
    wire = dns.message.make_query(ZONE, "SOA").to_wire()
    response = wire[:2] + bytes([wire[2] | 0x80]) + wire[3:]
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(struct.pack("!H", len(response)) + response)
        assert sock.recv(100) == b""  # closed without an answer


def test_allow_transfer_key_names_the_keys_table_not_the_wire_name(served, tmp_path):
    """Issue 10 item 6: ``key:xfr`` allows requests signed by ``[keys.xfr]``'s wire name."""
    key = TsigKey.generate("xfrkey")
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE), "allow_transfer": ["key:xfr"]}],
        keys={"xfr": {"name": "xfrkey", "algorithm": key.algorithm, "secret": key.secret}},
    )
    server = served(config)
    messages = list(
        dns.query.xfr("127.0.0.1", ZONE, port=server.port, keyring=key.keyring, keyname="xfrkey")
    )
    assert messages[0].rcode() == dns.rcode.NOERROR and all(m.had_tsig for m in messages)
    with pytest.raises(dns.query.TransferError):  # unsigned: REFUSED
        list(dns.query.xfr("127.0.0.1", ZONE, port=server.port))


def test_allow_transfer_of_an_address_and_a_key_at_once(served, knot_secondary, tmp_path, caplog):
    """allow_transfer = ["127.0.0.1/32 key:down"]: Knot, a downstream signing with the key
    from that address, transfers; the key from another address, or that address
    unsigned, is refused (as a Knot acl with both an address and a key)."""
    key = TsigKey.generate("down")
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE), "allow_transfer": ["127.0.0.1/32 key:down"]}],
        keys={"down": {"name": "down", "algorithm": key.algorithm, "secret": key.secret}},
    )
    server = served(config)
    knot = knot_secondary({ZONE: ("127.0.0.1", server.port)}, key=key)  # (once transferred)
    assert knot.soa_serial(ZONE) == SERIAL
    signed = {"keyring": key.keyring, "keyname": "down"}
    with pytest.raises(dns.query.TransferError):  # the key, from 127.0.0.2
        list(dns.query.xfr("127.0.0.1", ZONE, port=server.port, source="127.0.0.2", **signed))
    with pytest.raises(dns.query.TransferError):  # 127.0.0.1, unsigned
        list(dns.query.xfr("127.0.0.1", ZONE, port=server.port))
    # the log says which half of the entry failed
    assert (
        "from 127.0.0.2 (key down.) refused by allow_transfer: key down. is allowed "
        "from 127.0.0.1/32 only" in caplog.text
    )
    assert "refused by allow_transfer: 127.0.0.1/32 needs key down." in caplog.text
    messages = list(dns.query.xfr("127.0.0.1", ZONE, port=server.port, **signed))
    assert messages[0].rcode() == dns.rcode.NOERROR


def test_cookies_keepalive_and_identity_through_the_server(served, tmp_path):
    """Cached answers get a fresh server cookie; keepalive over TCP sends tcp_idle_timeout;
    [server] identity/version answer CH TXT."""
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE)}],
        identity="ns1.test",
        version="secdns test",
        tcp_idle_timeout=7.5,
    )
    server = served(config)
    from secdns.server.front import cookie_valid

    answers = []
    for name in (f"www.{ZONE}.", f"www.{ZONE}.", f"nothing-here.{ZONE}.", f"nothing-here.{ZONE}."):
        query = dns.message.make_query(name, "A", use_edns=0)
        query.use_edns(0, payload=1232, options=[dns.edns.CookieOption(b"\x07" * 8, b"")])
        response = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)
        (option,) = response.options
        assert option.client == b"\x07" * 8
        assert cookie_valid(option.client, option.server, "127.0.0.1")
        answers.append((response.rcode(), [str(r) for r in response.answer]))
    assert answers[0] == answers[1] and answers[2] == answers[3]
    assert answers[2][0] == dns.rcode.NXDOMAIN
    # a query for a server cookie alone (RFC 7873 5.4, `dig +header-only +cookie`): no
    # question, NOERROR and the cookies, as BIND (a stranger got FORMERR); UDP and TCP
    for send in (dns.query.udp, dns.query.tcp):
        bare = dns.message.Message()
        bare.use_edns(0, payload=1232, options=[dns.edns.CookieOption(b"\x09" * 8, b"")])
        response = send(bare, "127.0.0.1", port=server.port, timeout=2)
        assert response.rcode() == dns.rcode.NOERROR and not response.question
        (option,) = response.options
        assert option.client == b"\x09" * 8
        assert cookie_valid(option.client, option.server, "127.0.0.1")
        bare = dns.message.Message()  # no cookie: FORMERR, as before
        bare.use_edns(0, payload=1232)
        assert send(bare, "127.0.0.1", port=server.port, timeout=2).rcode() == dns.rcode.FORMERR
    query = dns.message.make_query(ZONE, "SOA", use_edns=0)
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(11, b"")])
    response = dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=2)
    assert [o.to_wire() for o in response.options] == [struct.pack("!H", 75)]
    response = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)
    assert not response.options
    for name, text in (("version.bind.", "secdns test"), ("id.server.", "ns1.test")):
        query = dns.message.make_query(name, "TXT", "CH")
        response = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)
        assert response.answer[0][0].strings == (text.encode(),)


def test_edns_expire_on_soa_and_axfr(served, tmp_path):
    """RFC 7314: a primary zone answers its SOA EXPIRE; a copy with expires_at set (by the
    refresh scheduler) answers the seconds left, on SOA queries and transfers."""
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE), "allow_transfer": ["127.0.0.1"]}],
    )
    server = served(config)
    soa_expire = dns.zone.from_file(str(ZONE_FILE), ZONE).get_soa().expire

    def expire(rdtype: str) -> int:
        query = dns.message.make_query(ZONE, rdtype, use_edns=0)
        query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(9, b"")])
        wire = query.to_wire()
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            size = struct.unpack("!H", sock.recv(2, socket.MSG_WAITALL))[0]
            first = dns.message.from_wire(sock.recv(size, socket.MSG_WAITALL))
        (option,) = [o for o in first.options if o.otype == 9]
        return struct.unpack("!I", option.to_wire())[0]

    assert expire("SOA") == expire("AXFR") == soa_expire
    zone = next(iter(server.server.runtimes.values())).zone
    zone.expires_at = time.time() + 500
    assert 495 <= expire("SOA") <= 500 and 495 <= expire("AXFR") <= 500


def test_edns_expire_of_a_secondary_counts_down_from_its_last_refresh(
    bind_primary, served, tmp_path
):
    """A secondary answers EDNS EXPIRE with the time left before its copy expires (set by the
    refresh scheduler from the last successful check), not the SOA's EXPIRE field."""
    primary = bind_primary()
    server = served(secondary_config(tmp_path, primary))
    server.wait_serial(ZONE, SERIAL)
    runtime = next(iter(server.server.runtimes.values()))
    deadline = time.time() + 5
    while runtime.zone.expires_at is None and time.time() < deadline:
        time.sleep(0.02)
    assert runtime.zone.expires_at == runtime.status().expires_at
    soa_expire = server.query(ZONE, "SOA").answer[0][0].expire
    # pretend the last successful check was 100 s ago
    runtime.zone.expires_at -= 100
    query = dns.message.make_query(ZONE, "SOA", use_edns=0)
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(9, b"")])
    response = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)
    (option,) = [o for o in response.options if o.otype == 9]
    left = struct.unpack("!I", option.to_wire())[0]
    assert soa_expire - 105 <= left <= soa_expire - 99


def test_a_secondary_of_a_secondary_takes_the_smaller_edns_expire(bind_primary, served, tmp_path):
    """RFC 7314: the refresh asks its primary for EDNS EXPIRE and expires no later than the
    primary's own copy does, so a chain of secondaries cannot outlive the original's expiry."""
    primary = bind_primary()
    first_port = free_port()
    first = served(
        write_config(
            tmp_path / "first.toml",
            directory=tmp_path / "first",
            port=first_port,
            zones=[{"name": ZONE, "primaries": [primary.addr], "allow_transfer": ["127.0.0.1"]}],
        )
    )
    first.wait_serial(ZONE, SERIAL)
    upstream = next(iter(first.server.runtimes.values()))
    upstream.zone.expires_at = time.time() + 300  # its copy expires in 300 s
    second = served(
        write_config(
            tmp_path / "second.toml",
            directory=tmp_path / "second",
            zones=[{"name": ZONE, "primaries": [f"127.0.0.1:{first_port}"]}],
        )
    )
    second.wait_serial(ZONE, SERIAL)
    runtime = next(iter(second.server.runtimes.values()))
    deadline = time.time() + 5
    while runtime.status().expires_at is None and time.time() < deadline:
        time.sleep(0.02)
    expires_at = runtime.status().expires_at
    assert expires_at is not None
    assert time.time() + 290 <= expires_at <= time.time() + 301


def test_a_wrong_tsig_key_is_logged_once_a_minute_per_client_and_key(served, tmp_path, caplog):
    """A downstream with the wrong secret or an unknown key (dig -y) gets NOTAUTH, and
    serve says so in its log, once a minute per client and key: a stranger's wrong-key
    downstream was seen only in secdns_queries_total{rcode="NOTAUTH"}."""
    key = TsigKey.generate("down")
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE), "allow_transfer": [f"key:{key.name}"]}],
        keys={key.name: {"algorithm": key.algorithm, "secret": key.secret}},
    )
    server = served(config)
    caplog.set_level(logging.WARNING, logger="secdns")
    wrong = base64.b64encode(b"not the secret, not at all!").decode()

    def dig(*args: str) -> str:
        done = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(server.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout + done.stderr

    for _ in range(3):
        dig("-y", f"{key.algorithm}:{key.name}:{wrong}", f"{ZONE}.", "AXFR")
    dig("-y", f"{key.algorithm}:nosuchkey:{wrong}", f"{ZONE}.", "SOA")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tsig:")]
    assert len(lines) == 2, lines
    assert f"{ZONE}. AXFR signed with key {key.name}.: BADSIG from 127.0.0.1 over tcp" in lines[0]
    assert "answered NOTAUTH" in lines[0]
    assert "signed with key nosuchkey.: BADKEY from 127.0.0.1 over udp" in lines[1]
    assert key.secret not in "".join(lines) and wrong not in "".join(lines)


def test_a_downstream_down_while_its_zone_changed_is_notified_once_back(
    knot_secondary, served, tmp_path
):
    """Knot, a downstream of serve, is stopped; the zone changes and serve's NOTIFYs to
    it go unanswered.  Knot started again loads its old copy and would wait for its
    SOA refresh (an hour); serve tries it again and, once it acknowledges, NOTIFYs what
    it missed: Knot has the new serial in seconds (a stranger's Knot stayed an hour
    behind)."""
    server, knot, _config, secondary_port = _downstream_missed_a_change(
        knot_secondary, served, tmp_path
    )
    notifier = server.server.notifier
    assert notifier.missed_counts() == {f"127.0.0.1:{secondary_port}": 1}
    status = server.call(lambda: server.server.operations.execute({"command": "status"}))
    assert status["result"]["notify_targets"] == [
        {"target": f"127.0.0.1:{secondary_port}", "missed": 1, "retrying": 0}
    ], status
    _start_again(knot)
    knot.wait_for_serial(ZONE, SERIAL + 1, timeout=15)
    assert notifier.missed_counts() == {f"127.0.0.1:{secondary_port}": 0}


def test_a_downstream_that_does_not_acknowledge_shows_in_status_at_once(
    knot_secondary, served, tmp_path
):
    """While serve's NOTIFY to a stopped downstream is still being sent again, ctl
    status names the target (retrying), not only once every attempt has failed (~2 min:
    a stranger's stopped Knot showed nowhere meanwhile)."""
    server, knot, _config, secondary_port = _serving_knot(knot_secondary, served, tmp_path)
    notifier = server.server.notifier
    notifier.first_timeout = 0.3
    knot.process.send_signal(signal.SIGSTOP)  # silent: its NOTIFYs time out
    try:
        _next_serial(tmp_path / "primary.zone")
        server.call(server.server.reload)
        target = f"127.0.0.1:{secondary_port}"
        deadline = time.monotonic() + 10
        while notifier.retrying_counts().get(target) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = server.call(lambda: server.server.operations.execute({"command": "status"}))
        assert status["result"]["notify_targets"] == [
            {"target": target, "missed": 0, "retrying": 1}
        ], status
    finally:
        knot.process.send_signal(signal.SIGCONT)
    knot.wait_for_serial(ZONE, SERIAL + 1, timeout=15)  # the next send is acknowledged
    assert notifier.retrying_counts() == {}


def _downstream_missed_a_change(knot_secondary, served, tmp_path):
    """serve of a file zone with Knot as its downstream; Knot is stopped, the zone
    changes and serve's NOTIFY to Knot is given up (retries made short): (server, Knot,
    the config, Knot's port), the NOTIFY counted as missed."""
    server, knot, config, secondary_port = _serving_knot(knot_secondary, served, tmp_path)
    notifier = server.server.notifier
    notifier.attempts, notifier.first_timeout, notifier.missed_probe = 2, 0.2, 0.5
    knot.process.send_signal(signal.SIGTERM)
    knot.process.wait(10)
    _next_serial(tmp_path / "primary.zone")
    server.call(server.server.reload)
    deadline = time.monotonic() + 10
    while not any(notifier.missed_counts().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, knot, config, secondary_port


def _serving_knot(knot_secondary, served, tmp_path):
    """serve of a file zone (tmp_path/primary.zone) NOTIFYing Knot, its downstream, once
    Knot has the zone: (server, Knot, the config, Knot's port)."""
    secondary_port = free_port()
    zone_file = tmp_path / "primary.zone"
    zone_file.write_text(ZONE_FILE.read_text())
    zone = {
        "name": ZONE,
        "file": str(zone_file),
        "notify": [f"127.0.0.1:{secondary_port}"],
        "allow_transfer": ["127.0.0.0/8"],
    }
    config = write_config(tmp_path / "secdns.toml", directory=tmp_path / "store", zones=[zone])
    server = served(config)
    knot = knot_secondary({ZONE: ("127.0.0.1", server.port)}, port=secondary_port)
    assert knot.soa_serial(ZONE) == SERIAL
    return server, knot, config, secondary_port


def _next_serial(zone_file: Path) -> None:
    """The zone file one serial on, with one record more."""
    zone_file.write_text(
        ZONE_FILE.read_text().replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial")
        + "added 300 IN A 192.0.2.222\n"
    )


def _start_again(knot) -> None:
    """The same Knot started again, its files (its old copy, its timers) kept."""
    with (knot.workdir / "server.log").open("ab") as log:
        knot.process = subprocess.Popen(
            knot.process.args,
            cwd=knot.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_secondary_named_by_key_may_hold_many_connections(served, tmp_path, caplog):
    """A downstream allowed by its key alone (allow_transfer = ["key:down"]), once it has
    transferred, may hold a secondary's share of TCP connections (NSD's xfrd opens many
    at once: at tcp_clients_per_source = 32 a stranger's NSD had them closed under it).
    An ordinary client past its 32 (set so here) loses its oldest idle one, logged."""
    key = TsigKey.generate("down")
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(ZONE_FILE), "allow_transfer": [f"key:{key.name}"]}],
        keys={key.name: {"algorithm": key.algorithm, "secret": key.secret}},
        tcp_clients_per_source=32,
    )
    server = served(config)
    caplog.set_level(logging.WARNING, logger="secdns")

    def connections(count: int, source: str) -> list[socket.socket]:
        opened = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", server.port), source_address=(source, 0))
            opened.append(sock)
        time.sleep(0.3)
        return opened

    def closed_by_server(sockets: list[socket.socket]) -> int:
        count = 0
        for sock in sockets:
            sock.setblocking(False)
            try:
                count += sock.recv(1) == b""
            except BlockingIOError:
                pass
            except ConnectionError:
                count += 1
        return count

    ordinary = connections(40, "127.0.0.2")  # no transfer from it: 32 at most
    assert closed_by_server(ordinary) == 8
    assert any("127.0.0.2 holds 32 TCP connections" in r.getMessage() for r in caplog.records)
    messages = list(
        dns.query.xfr("127.0.0.1", ZONE, port=server.port, keyring=key.keyring, keyname=key.name)
    )
    assert messages and all(m.had_tsig for m in messages)
    secondary = connections(60, "127.0.0.1")
    try:
        assert closed_by_server(secondary) == 0
    finally:
        for sock in ordinary + secondary:
            sock.close()


def test_a_notify_sent_before_the_primary_answers_its_serial_is_checked_again(
    bind_primary, served, tmp_path, caplog
):
    """A NOTIFY announcing serial N+1 comes while the primary still answers N (PowerDNS
    answers from its packet cache for 20 s): serve checks, finds N, and checks again
    2 s later, by when BIND answers N+1.  On the tree before it stayed at N until its
    refresh (7200 s): a stranger's PowerDNS zone stayed an hour behind."""
    caplog.set_level(logging.INFO, logger="secdns")
    primary = bind_primary()  # (notify no: only our NOTIFY)
    server = served(secondary_config(tmp_path, primary))
    server.wait_serial(ZONE, SERIAL)
    notify = dns.message.make_query(f"{ZONE}.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    soa = server.query(f"{ZONE}.", "SOA").answer[0]
    announced = soa.copy()
    announced.clear()
    announced.add(soa[0].replace(serial=SERIAL + 1))
    notify.answer.append(announced)
    reply = dns.query.udp(notify, "127.0.0.1", timeout=3, port=server.port)
    assert reply.rcode() == dns.rcode.NOERROR
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        "checking again in 2 s" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    primary.nsupdate("update add late.example.com. 60 A 192.0.2.77")  # now N+1
    elapsed = server.wait_serial(ZONE, SERIAL + 1, timeout=10)
    assert elapsed < 5
    assert any(
        f"a NOTIFY announced serial {SERIAL + 1}, but" in r.getMessage() for r in caplog.records
    )


def test_notify_signed_with_the_targets_key_reaches_a_keyed_nsd(nsd_secondary, served, tmp_path):
    """notify = ["HOST:PORT key:NAME"]: serve signs its NOTIFYs to that target with
    [keys.NAME], as NSD's usual allow-notify: ADDR KEY wants (a stranger's NSD refused
    all 1,000 zones' NOTIFYs, "no acl matches", and caught up only at its refresh)."""
    key = TsigKey.generate("down")
    nsd_port = free_port()
    zone_file = tmp_path / "primary.zone"
    zone_file.write_text(ZONE_FILE.read_text())
    zone = {
        "name": ZONE,
        "file": str(zone_file),
        "notify": [f"127.0.0.1:{nsd_port} key:{key.name}"],
        "allow_transfer": [f"key:{key.name}"],
    }
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[zone],
        keys={key.name: {"algorithm": key.algorithm, "secret": key.secret}},
    )
    server = served(config)
    # request-xfr and allow-notify both keyed; its first transfer, asked by itself
    nsd = nsd_secondary({ZONE: ("127.0.0.1", server.port)}, key=key, port=nsd_port)
    assert nsd.soa_serial(ZONE) == SERIAL
    zone_file.write_text(
        ZONE_FILE.read_text().replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial")
    )
    server.call(server.server.reload)
    started = time.monotonic()
    nsd.wait_for_serial(ZONE, SERIAL + 1, timeout=10)
    assert time.monotonic() - started < 5  # our signed NOTIFY, not its refresh
    text = nsd.log_path.read_text(errors="replace")
    assert "no acl matches" not in text, text[-2000:]


def test_a_file_zone_changed_while_serve_was_down_is_notified_at_the_start(
    knot_secondary, served, tmp_path
):
    """serve stops, its file zone changes, serve starts: its targets are NOTIFYed of the
    loaded zone, as BIND does at a primary zone's load (a stranger's NSD stayed at the old
    serial, its refresh 7200 s away: no NOTIFY went out at the start)."""
    server, knot, config, _port = _serving_knot(knot_secondary, served, tmp_path)
    server.stop()
    _next_serial(tmp_path / "primary.zone")
    served(config)  # (the same port: where Knot looks for its primary)
    knot.wait_for_serial(ZONE, SERIAL + 1, timeout=10)


def test_missed_notifies_outlive_a_restart_of_serve(knot_secondary, served, tmp_path, monkeypatch):
    """Knot, a downstream, is down while the zone changes, and serve is restarted before
    Knot comes back: the NOTIFY Knot missed is kept in the store when serve stops, and
    sent again by the next serve once Knot answers (with the NOTIFY of the file zone's
    load at the start: both reach it)."""
    from secdns import notifysend

    monkeypatch.setattr(notifysend, "MISSED_KEEP_DELAY", 0.2)
    server, knot, config, secondary_port = _downstream_missed_a_change(
        knot_secondary, served, tmp_path
    )
    kept = tmp_path / "store" / notifysend.MISSED_FILE
    expected = {f"127.0.0.1:{secondary_port}": [f"{ZONE}."]}
    # kept while serve runs, not only at its stop: a crash (kill -9, OOM) loses nothing
    _wait_for(lambda: kept.exists() and json.loads(kept.read_text()) == expected, 10)
    server.stop()
    assert json.loads(kept.read_text()) == expected
    _start_again(knot)  # back, its old copy kept
    monkeypatch.setattr(notifysend, "MISSED_PROBE", 0.3)
    served(config)  # the next serve: the kept list taken up, then removed once Knot has it
    knot.wait_for_serial(ZONE, SERIAL + 1, timeout=15)
    _wait_for(lambda: not kept.exists(), 10)


def _wait_for(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def test_a_reload_reads_only_the_zone_files_that_changed(served, tmp_path, monkeypatch):
    """SIGHUP re-reads a file zone only when its file changed (size, mtime or inode), as
    BIND's reload leaves an up-to-date zone alone: a stranger's unchanged 17,000-record
    signed zone was read again at every SIGHUP (0.6 s each)."""
    from secdns.server import load

    zone_file = tmp_path / "primary.zone"
    zone_file.write_text(ZONE_FILE.read_text())
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "file": str(zone_file)}],
    )
    server = served(config)
    reads = []
    real = load.version_from_file

    def counted(*args):  # type: ignore[no-untyped-def]
        reads.append(args[0])
        return real(*args)

    monkeypatch.setattr(load, "version_from_file", counted)
    server.call(server.server.reload)
    assert reads == []
    zone_file.write_text(
        ZONE_FILE.read_text().replace(f"{SERIAL} ; serial", f"{SERIAL + 1} ; serial")
    )
    server.call(server.server.reload)
    assert reads == [zone_file]
    reply = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=server.port)
    assert reply.answer[0][0].serial == SERIAL + 1


@pytest.mark.parametrize(
    "verbose, queries, debug",
    [(0, False, False), (1, False, False), (2, True, False), (3, True, True)],
)
def test_serve_verbosity_explains_before_it_logs_queries(
    verbose: int, queries: bool, debug: bool
) -> None:
    """serve -v explains refreshes; -vv also logs every query (a line each); -vvv debugs."""
    from secdns.cli.serve import setup_server_logging

    root = logging.getLogger()
    query_log = logging.getLogger("secdns.query")
    saved = (list(root.handlers), root.level, query_log.level)
    try:
        setup_server_logging("text", verbose, False)
        assert query_log.isEnabledFor(logging.INFO) == queries
        assert root.isEnabledFor(logging.DEBUG) == debug
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        query_log.setLevel(saved[2])


def test_json_log_lines_carry_the_zone_and_the_server(tmp_path):
    """--log-format json: the zone and the server a line names are fields of their own
    (a stranger found them only inside "message"), so a log store can select on them."""
    closed = f"127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": "gone.example", "primaries": [closed]}],
    )
    argv = [sys.executable, "-m", "secdns", "serve", "-c", str(config), "--log-format", "json"]
    process = subprocess.Popen(
        argv, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1")
    )
    found = None
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 20
        while found is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            doc = json.loads(line)
            if doc.get("zone") == "gone.example." and "server" in doc:
                found = doc
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert found is not None
    assert found["server"] == closed and found["level"] in ("info", "warning")
    assert found["message"].startswith("refresh: zone=gone.example. failed")
