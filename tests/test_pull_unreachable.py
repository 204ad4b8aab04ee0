"""A primary that is not there, or not authoritative: one clear line, at once."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from fakeprimary import FakePrimary
from servers import free_port
from xfrwire import rrset

from secdns.cli import cli

ORIGIN = "example.com."
SOA = rrset(f"{ORIGIN} 3600 SOA ns1.{ORIGIN} host.{ORIGIN} 10 7200 900 1209600 300")


def pull(*args: str):
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["pull", *args])
    return result, time.monotonic() - started


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("secdns: error:")]


def test_port_unreachable_fails_at_once(tmp_path):
    """Like dig: ICMP port unreachable ends the query, not the 10 s timeout."""
    port = free_port()
    result, elapsed = pull(ORIGIN, f"@127.0.0.1:{port}", "-o", str(tmp_path / "z"))
    assert result.exit_code == 3, result.stderr
    assert elapsed < 2, elapsed
    assert error_lines(result) == [
        f"secdns: error: zone example.com., server 127.0.0.1:{port}: connection refused: "
        "nothing answers DNS there (ICMP port unreachable to the SOA query)"
    ]
    assert not (tmp_path / "z").exists()


def test_every_primary_unreachable_fails_at_once(tmp_path):
    ports = [free_port(), free_port()]
    result, elapsed = pull(ORIGIN, *(f"@127.0.0.1:{p}" for p in ports), "-o", str(tmp_path / "z"))
    assert result.exit_code == 3, result.stderr
    assert elapsed < 2, elapsed
    (line,) = error_lines(result)
    assert "all 2 primaries failed" in line and line.count("connection refused") == 2


def test_not_authoritative_bind_says_so(bind_primary, tmp_path):
    """BIND answers REFUSED for a zone it does not serve: not a transfer ACL problem."""
    primary = bind_primary()
    result, _ = pull("example.org.", f"@{primary.addr}", "-o", str(tmp_path / "z"))
    assert result.exit_code == 4, result.stderr
    (line,) = error_lines(result)
    assert line == (
        f"secdns: error: zone example.org., server {primary.addr}: REFUSED to SOA query for "
        "example.org. (the server refuses queries for this zone: it is probably not "
        "authoritative for it)"
    )
    assert "transfers" not in line


@pytest.mark.parametrize(
    ("rcode", "aa", "text"),
    [
        (9, True, "NOTAUTH to SOA query for example.com. (the server is not authoritative"),
        (0, False, "is not authoritative (no AA flag) (the server is not authoritative"),
    ],
)
def test_not_authoritative_answer(tmp_path, rcode, aa, text):
    with FakePrimary(lambda q: [], SOA) as primary:
        primary.udp_rcode, primary.udp_aa = rcode, aa
        result, _ = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"))
    assert result.exit_code == 4, result.stderr
    (line,) = error_lines(result)
    assert text in line and f"server {primary.addr[1:]}" in line and "transfers" not in line
