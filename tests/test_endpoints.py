"""secdns.endpoints (pure parsing and formatting) and secdns.addresses (getaddrinfo)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from secdns.addresses import resolve
from secdns.endpoints import (
    Endpoint,
    format_addr,
    host_networks,
    parse_endpoint,
    source_allowed,
)
from secdns.errors import ExitCode, NetworkError, UsageError


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("@192.0.2.1", "192.0.2.1", 53),
        ("192.0.2.1:5353", "192.0.2.1", 5353),
        ("@ns1.example.net:54", "ns1.example.net", 54),
        ("@[2001:db8::1]:5300", "2001:db8::1", 5300),
        ("@[2001:db8::1]", "2001:db8::1", 53),
        ("@2001:db8::1", "2001:db8::1", 53),
        ("@fe80::1%eth0", "fe80::1%eth0", 53),
    ],
)
def test_parse_endpoint(text: str, host: str, port: int) -> None:
    assert parse_endpoint(text) == Endpoint(host, port)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("@", "empty server address"),
        ("@[2001:db8::1", "missing ']'"),
        ("@[2001:db8::1]53", "expected ':PORT' after ']'"),
        ("@host:port", "bad port"),
        ("@host:0", "port out of range"),
        ("@host:65536", "port out of range"),
        ("@:53", "no host"),
        ("@[zz::1]:53", "not an IPv6 address"),
    ],
)
def test_parse_endpoint_errors_say_why(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as caught:
        parse_endpoint(text)
    assert caught.value.exit_code == ExitCode.USAGE


def test_one_address_format() -> None:
    assert format_addr("192.0.2.1", 53) == "192.0.2.1:53" == str(Endpoint("192.0.2.1"))
    assert format_addr("2001:db8::1", 5300) == "[2001:db8::1]:5300"
    assert str(Endpoint("2001:db8::1", 5300)) == "[2001:db8::1]:5300"


def test_source_allowed() -> None:
    allowed = host_networks(["127.0.0.1", "2001:db8::/32", "ns1.example.net"])
    assert len(allowed) == 2  # names are skipped
    assert source_allowed("127.0.0.1", allowed)
    assert source_allowed("::ffff:127.0.0.1", allowed)  # IPv4-mapped, as a dual-stack socket says
    assert source_allowed("2001:db8::53%eth0", allowed)
    assert not source_allowed("127.0.0.2", allowed)
    assert not source_allowed("not an address", allowed)


def test_endpoints_is_pure() -> None:
    """Parsing endpoints imports no event loop and no sockets."""
    code = (
        "import sys\n"
        "import secdns.endpoints\n"
        "print(sorted(m for m in ('asyncio', 'socket') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_resolve() -> None:
    assert asyncio.run(resolve(Endpoint("127.0.0.1", 5300))) == [("127.0.0.1", 5300)]
    addresses = asyncio.run(resolve(Endpoint("localhost", 5300)))
    assert addresses and all(port == 5300 for _, port in addresses)
    assert {address for address, _ in addresses} <= {"127.0.0.1", "::1"}
    with pytest.raises(NetworkError, match="cannot resolve no-such-host.invalid"):
        asyncio.run(resolve(Endpoint("no-such-host.invalid")))
