"""``serve`` over TLS (``[server] tls_listen``): DoT queries and XoT transfers to kdig and BIND."""

from __future__ import annotations

import logging
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import dns.message
import dns.query
import dns.rcode
import dns.xfr
import pytest
import tomli_w
from click.testing import CliRunner
from servers import LOOPBACK, Bind, Endpoint, _named_conf, _quote, _Setup, free_port, need_binary
from serving import ServerThread
from test_catalog_pull import member_zone
from xotservers import SERVER_NAME, Pki

from secdns.cli import cli

ZONE = "example.com"


class TlsSecondaryBind(Bind):
    """named as a secondary whose primary is reached over TLS (``primaries { ... tls NAME; }``)."""

    @classmethod
    def start_tls_secondary(
        cls, tmp_dir: Path, zone: str, primary: Endpoint, *, ca: Path, hostname: str
    ) -> Self:
        named = need_binary(cls.program)
        setup = _Setup.prepare(tmp_dir, {}, also_secondary_of={zone: primary})
        host, port = primary

        def configure(listen: int) -> list[str]:
            conf = _named_conf(setup, listen, True, True)
            plain = f"primaries {{ {host} port {port}; }};"
            assert plain in conf
            conf = conf.replace(plain, f"primaries {{ {host} port {port} tls secdns; }};")
            tls = f"tls secdns {{ ca-file {_quote(ca)}; remote-hostname {_quote(hostname)}; }};\n"
            path = setup.workdir / "named.conf"
            path.write_text(tls + conf)
            return [named, "-g", "-4", "-n", "2", "-c", str(path)]

        return cls._launch(setup, configure)


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki.make(tmp_path / "pki")


@pytest.fixture
def running() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for server in reversed(started):
        server.stop()


def tls_config(tmp_path: Path, pki: Pki, *, tls_port: int, **zone: Any) -> Path:
    zone_file = tmp_path / f"{ZONE}.zone"
    zone_file.write_text(member_zone(ZONE, 5))
    doc = {
        "server": {
            "directory": str(tmp_path / "store"),
            "listen": [f"127.0.0.1:{free_port()}"],
            "tls_listen": [f"127.0.0.1:{tls_port}"],
            "tls_cert": str(pki.cert),
            "tls_key": str(pki.key),
            "tls_handshake_timeout": 1.0,
        },
        "zone": [{"name": ZONE, "file": str(zone_file), "allow_transfer": ["127.0.0.1"], **zone}],
    }
    path = tmp_path / "secdns.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def kdig(*args: str) -> str:
    done = subprocess.run(
        [need_binary("kdig"), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout + done.stderr


def test_kdig_tls_axfr_and_query_and_plain_tcp_refused(tmp_path, pki, running, caplog):
    caplog.set_level(logging.INFO, logger="secdns")
    tls_port = free_port()
    server = ServerThread(tls_config(tmp_path, pki, tls_port=tls_port, transfer_transport="tls"))
    running.append(server)
    common = [
        "@127.0.0.1",
        "-p",
        str(tls_port),
        "+tls",
        f"+tls-ca={pki.ca}",
        f"+tls-hostname={SERVER_NAME}",
    ]
    out = kdig(*common, "AXFR", ZONE)
    assert re.search(r"www\.example\.com\.\s+300\s+IN\s+A\s+192\.0\.2\.2", out), out
    assert out.count("\tSOA\t") == 2, out
    query = kdig(*common, "+norec", "A", "www.example.com")
    assert "status: NOERROR" in query and "192.0.2.2" in query, query
    assert ";; TLS session (TLS1.3)" in query, query
    # a stranger could not tell XoT was in use: the transfer's line and the metrics say so
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("xfr: zone=")]
    assert any(" AXFR to 127.0.0.1#" in m and " over TLS serial " in m for m in said), said
    counts = dict(server.server.operations.query_counts())
    assert counts["tls"][0] >= 2 and not any(counts["tcp"]), counts
    # the wrong name in the certificate: kdig refuses the session
    wrong = kdig(*common[:-1], "+tls-hostname=other.test", "SOA", ZONE)
    assert "status: NOERROR" not in wrong

    # a tls-only zone is not transferred over plain TCP (but still answered)
    plain = dns.message.make_query(ZONE, "AXFR")
    reply = dns.query.tcp(plain, "127.0.0.1", port=server.port, timeout=5)
    assert reply.rcode() == dns.rcode.REFUSED
    assert server.query(f"www.{ZONE}.", "A").answer[0][0].address == "192.0.2.2"


def test_pull_over_tls_from_serve(tmp_path, pki, running):
    tls_port = free_port()
    server = ServerThread(tls_config(tmp_path, pki, tls_port=tls_port))
    running.append(server)
    out = tmp_path / "pulled"
    result = CliRunner().invoke(
        cli,
        [
            "pull",
            ZONE,
            f"@127.0.0.1:{tls_port}",
            "--tls",
            "--tls-ca",
            str(pki.ca),
            "--tls-hostname",
            SERVER_NAME,
            "-d",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "serial 5" in (out / f"{ZONE}.zone").read_text()
    # plain TCP still transfers a zone without transfer_transport = "tls"
    messages = list(dns.query.xfr("127.0.0.1", ZONE, port=server.port, timeout=5))
    assert messages


def test_bind_is_a_secondary_over_tls(tmp_path, pki, running):
    tls_port = free_port()
    server = ServerThread(tls_config(tmp_path, pki, tls_port=tls_port, transfer_transport="tls"))
    running.append(server)
    bind = TlsSecondaryBind.start_tls_secondary(
        tmp_path / "bind", ZONE, (LOOPBACK, tls_port), ca=pki.ca, hostname=SERVER_NAME
    )
    running.append(bind)
    assert bind.soa_serial(ZONE) == 5
    reply = bind.query(f"www.{ZONE}.", "A")
    assert reply.answer[0][0].address == "192.0.2.2"


def test_tls_hardening_handshake_timeout_and_per_source_limit(tmp_path, pki, running):
    tls_port = free_port()
    path = tls_config(tmp_path, pki, tls_port=tls_port)
    doc = path.read_text().replace("[server]\n", "[server]\ntcp_clients_per_source = 2\n", 1)
    path.write_text(doc)
    server = ServerThread(path)
    running.append(server)
    # a client that never shakes hands is closed after tls_handshake_timeout (1 s)
    silent = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
    started = time.monotonic()
    assert silent.recv(10) == b""
    assert time.monotonic() - started < 4
    silent.close()
    # per source: two busy handshakes at most; a third waits for neither and is cut
    stalled = [socket.create_connection(("127.0.0.1", tls_port), timeout=5) for _ in range(3)]
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.set_alpn_protocols(["dot"])
    with (
        socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        # idle handshakes are reclaimed for a new connection from the same source
        assert tls.selected_alpn_protocol() == "dot"  # RFC 9103 7.1
        query = dns.message.make_query(f"www.{ZONE}.", "A").to_wire()
        tls.sendall(len(query).to_bytes(2, "big") + query)
        length = int.from_bytes(tls.recv(2), "big")
        data = b""
        while len(data) < length:
            data += tls.recv(length - len(data))
        assert dns.message.from_wire(data).answer[0][0].address == "192.0.2.2"
    for sock in stalled:
        sock.close()


def test_certificate_reloaded_on_sighup(tmp_path, pki, running, caplog):
    tls_port = free_port()
    path = tls_config(tmp_path, pki, tls_port=tls_port)
    server = ServerThread(path)
    running.append(server)

    def soa_with(ca: Path) -> str:
        return kdig(
            "@127.0.0.1",
            "-p",
            str(tls_port),
            "+tls",
            f"+tls-ca={ca}",
            f"+tls-hostname={SERVER_NAME}",
            "SOA",
            ZONE,
        )

    assert "status: NOERROR" in soa_with(pki.ca)
    fresh = Pki.make(tmp_path / "fresh")
    path.write_text(
        path.read_text()
        .replace(str(pki.cert), str(fresh.cert))
        .replace(str(pki.key), str(fresh.key))
    )
    server.call(lambda: server.server.reload())
    assert "status: NOERROR" in soa_with(fresh.ca)
    assert "status: NOERROR" not in soa_with(pki.ca)
    # a pair that cannot be read keeps the loaded one
    fresh.cert.write_text("not a certificate\n")
    server.call(lambda: server.server.reload())
    assert "keeping the loaded certificate" in caplog.text
    assert "status: NOERROR" in soa_with(fresh.ca)


def test_tls_12_answers_queries_but_no_tls_only_transfer(tmp_path, pki, running):
    tls_port = free_port()
    server = ServerThread(tls_config(tmp_path, pki, tls_port=tls_port, transfer_transport="tls"))
    running.append(server)
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.maximum_version = ssl.TLSVersion.TLSv1_2

    def ask(rdtype: str) -> dns.message.Message:
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
        ):
            assert tls.version() == "TLSv1.2"
            query = dns.message.make_query(ZONE, rdtype).to_wire()
            tls.sendall(len(query).to_bytes(2, "big") + query)
            length = int.from_bytes(tls.recv(2), "big")
            data = b""
            while len(data) < length:
                data += tls.recv(length - len(data))
            return dns.message.from_wire(data)

    assert ask("SOA").answer[0][0].serial == 5  # DNS over TLS (RFC 7858) may use 1.2
    assert ask("AXFR").rcode() == dns.rcode.REFUSED  # XoT needs TLS 1.3 (RFC 9103 9)
