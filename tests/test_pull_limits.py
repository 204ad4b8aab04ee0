"""A primary that never stops sending: the lifetime is kept and memory stays bounded.

``secdns pull`` runs as a subprocess so that its peak RSS (VmHWM) can be read from
/proc while it runs and from wait4() when it exits.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from fakeprimary import FakePrimary
from xfrwire import rrset

ORIGIN = "example.com."
MIB = 1024 * 1024
SOA = rrset(f"{ORIGIN} 3600 SOA ns1.{ORIGIN} host.{ORIGIN} 10 7200 900 1209600 300")


def _message(query_id: int, rrsets: list[dns.rrset.RRset], question: bool) -> bytes:
    msg = dns.message.Message(id=query_id)
    msg.flags = dns.flags.QR | dns.flags.AA
    if question:
        msg.question.append(
            dns.rrset.RRset(dns.name.from_text(ORIGIN), dns.rdataclass.IN, dns.rdatatype.AXFR)
        )
    msg.answer.extend(rrsets)
    return msg.to_wire(max_size=65535)


def endless(query: dns.message.Message) -> Iterator[bytes]:
    """An AXFR answer that starts well and never reaches its final SOA."""
    yield _message(query.id, [SOA], True)
    batches = [
        _message(
            query.id,
            [rrset(f"r{b}-{i}.{ORIGIN} 300 A 192.0.2.{i % 250}") for i in range(200)],
            False,
        )
        for b in range(100)
    ]
    yield from itertools.cycle(batches)


def endless_binary_txt(query: dns.message.Message) -> Iterator[bytes]:
    """Endless distinct TXT records of binary strings: 4 bytes of text per byte sent."""
    yield _message(query.id, [SOA], True)
    blob = " ".join('"' + "".join(f"\\{c:03d}" for c in range(200, 255)) + '"' for _ in range(20))
    rrsets = [rrset(f"t{i}.{ORIGIN} 300 TXT XXXXXXXXXX-{i} {blob}") for i in range(20)]
    template = _message(query.id, rrsets, False)
    for count in itertools.count():
        yield template.replace(b"XXXXXXXXXX", b"%010d" % count)


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(args: list[str], limit: float) -> tuple[int, str, float, float]:
    """Run ``secdns ARGS``; return exit status, stderr, seconds and peak RSS in MiB."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "secdns", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak = 0
    try:
        while process.poll() is None:
            peak = max(peak, _hwm_kib(process.pid))
            if time.monotonic() - started > limit:
                process.kill()
                process.wait()
                pytest.fail(f"secdns {' '.join(args)} still running after {limit:g}s")
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    elapsed = time.monotonic() - started
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    return process.returncode, stderr, elapsed, peak / 1024


def test_lifetime_is_kept_while_data_keeps_arriving(tmp_path):
    out = tmp_path / "z.zone"
    with FakePrimary(endless, SOA) as primary:
        code, stderr, elapsed, peak = run_measured(
            ["pull", ORIGIN, primary.addr, "-o", str(out), "--lifetime", "2"], limit=30
        )
    assert code == 3, stderr
    assert "took longer than its lifetime of 2s" in stderr, stderr
    assert "zone example.com." in stderr and f"server {primary.addr[1:]}" in stderr
    assert "--lifetime" in stderr
    assert elapsed < 6, elapsed
    assert peak < 400, f"peak RSS {peak:.0f} MiB"
    assert not out.exists()


def test_default_limits_bound_memory(tmp_path):
    """With default limits only, binary TXT (text 4 times the wire) stops at 128 MiB of text."""
    out = tmp_path / "z.zone"
    with FakePrimary(endless_binary_txt, SOA) as primary:
        code, stderr, elapsed, peak = run_measured(
            ["pull", ORIGIN, primary.addr, "-o", str(out)], limit=120
        )
    sys.stderr.write(f"endless binary TXT, default limits: {peak:.0f} MiB, {elapsed:.1f}s\n")
    assert code == 6, stderr
    assert "exceeds the limit of 134217728 bytes (as text)" in stderr, stderr
    assert "--max-bytes" in stderr
    assert "zone example.com." in stderr and f"server {primary.addr[1:]}" in stderr
    assert peak < 1024, f"peak RSS {peak:.0f} MiB"
    assert not out.exists()
