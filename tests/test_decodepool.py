"""A large AXFR decoded in worker processes (``secdns.decodepool``) against the
in-process path (issue 12, ``pull -o``): the same file, the same errors.

Each end-to-end test runs :func:`secdns.engine.transfer` twice against the same
scripted primary, ``pooled=False`` (the in-process decoder) and ``pooled=True``,
and compares what was written, or the error's class and text.
"""

from __future__ import annotations

import asyncio
import random
import time

import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from fakeprimary import FakePrimary
from test_pull_rows import _in_zone
from test_wire import ORIGIN, RECORDS, _response, _rrsets
from xfrwire import answer_messages

from secdns import decodepool, engine, wire, wirescan, zonefile
from secdns.config import Limits
from secdns.xfr import XfrKind

ZONE = "pool.test."
ZONE_NAME = dns.name.from_text(ZONE)
SOA_TEXT = "ns1.pool.test. hostmaster.pool.test. 7 7200 900 1209600 300"


def _zone(count: int, seed: int = 5) -> list[dns.rrset.RRset]:
    """A zone of ``count`` single-record RRsets in canonical order (owners of mixed
    case, several types an owner in no particular order, an exact duplicate and a
    duplicate with another TTL), SOA first; no closing SOA."""
    rng = random.Random(seed)
    rrsets = []
    for index in range(count):
        label = rng.choice(["Host", "host", "mail", "WWW", "a-b"]) + str(rng.randrange(count // 3))
        dept = rng.choice(["", ".ops", ".Dev", ".x.y"])
        name = f"{label}{dept}.{ZONE}"
        kind = rng.randrange(5)
        if kind == 0:
            rrsets.append(dns.rrset.from_text(name, 300, "IN", "AAAA", f"2001:db8::{index:x}"))
        elif kind == 1:
            rrsets.append(dns.rrset.from_text(name, 300, "IN", "TXT", f'"t {index % 7}"'))
        elif kind == 2:
            rrsets.append(dns.rrset.from_text(name, 300, "IN", "MX", f"10 mx{index % 3}.{ZONE}"))
        else:
            address = f"10.{index % 7}.{index % 251}.{index % 13}"
            rrsets.append(dns.rrset.from_text(name, 300, "IN", "A", address))
    rrsets.append(dns.rrset.from_text(f"mail1.{ZONE}", 300, "IN", "A", "192.0.2.1"))
    rrsets.append(dns.rrset.from_text(f"mail1.{ZONE}", 300, "IN", "A", "192.0.2.1"))
    rrsets.append(dns.rrset.from_text(f"MAIL1.{ZONE}", 60, "IN", "A", "192.0.2.1"))
    rrsets.sort(key=lambda rrset: rrset.name)  # stable: an owner's types stay unsorted
    apex = [
        dns.rrset.from_text(ZONE, 300, "IN", "NS", f"ns1.{ZONE}"),
        dns.rrset.from_text(ZONE, 300, "IN", "NS", "ns.elsewhere.example."),
    ]
    return [soa_rrset()] + apex + rrsets


def soa_rrset(serial: int = 7) -> dns.rrset.RRset:
    return dns.rrset.from_text(ZONE, 300, "IN", "SOA", SOA_TEXT.replace(" 7 ", f" {serial} "))


def _pull(primary: FakePrimary, pooled: bool, **kwargs: object) -> tuple[str, str | bytes]:
    """('ok', the file's bytes) or (error class, error text)."""

    async def run() -> engine.Transfer:
        return await engine.transfer(
            ZONE_NAME, "127.0.0.1", primary.port, XfrKind.AXFR, pooled=pooled, **kwargs
        )

    try:
        xfr = asyncio.run(run())
    except Exception as err:  # noqa: BLE001  # compared, not handled
        return type(err).__name__, str(err)
    zone, soa = xfr.reader.zone, xfr.reader.soa
    assert zone is not None and soa is not None
    if not pooled:
        assert zone.rendered is None
    text = b"".join(zonefile.zone_chunks(ZONE_NAME, soa.serial, soa.ttl, zone))
    counts = f"\n{len(zone)} {zone.dropped} {xfr.reader.count}".encode()
    lines = b"".join(zonefile.render_chunks(ZONE_NAME, soa.serial, soa.ttl, zone.lines()))
    assert text == lines
    return "ok", text + counts


def _both(respond, **kwargs: object) -> tuple[str, str | bytes]:  # type: ignore[no-untyped-def]
    with FakePrimary(respond, soa_rrset()) as primary:
        plain = _pull(primary, False, **kwargs)
    with FakePrimary(respond, soa_rrset()) as primary:  # one answering a connection at a time
        pooled = _pull(primary, True, **kwargs)
    assert pooled == plain
    return plain


def _stream(rrsets: list[dns.rrset.RRset], per_message: int = 40):  # type: ignore[no-untyped-def]
    return lambda query: answer_messages(query.id, ZONE, "AXFR", rrsets, per_message)


@pytest.mark.parametrize("per_message", [1, 3, 40, 500])
def test_canonical_order_is_written_as_rendered(per_message: int) -> None:
    rrsets = _zone(1500)
    status, _ = _both(_stream(rrsets + rrsets[:1], per_message))
    assert status == "ok"


def test_other_order_is_sorted_as_before() -> None:
    rrsets = _zone(1500)
    body = rrsets[1:]
    random.Random(3).shuffle(body)
    status, _ = _both(_stream(rrsets[:1] + body + rrsets[:1]))
    assert status == "ok"
    # out of order only across one message boundary
    swapped = rrsets[:1] + rrsets[300:340] + rrsets[1:300] + rrsets[340:] + rrsets[:1]
    assert _both(_stream(swapped))[0] == "ok"


def test_damaged_message_in_the_middle_fails_as_before() -> None:
    rrsets = _zone(1500)

    def respond(query):  # type: ignore[no-untyped-def]
        messages = answer_messages(query.id, ZONE, "AXFR", rrsets + rrsets[:1], 40)
        messages[12] = messages[12][:-3]
        return messages

    status, text = _both(respond)
    assert status == "BadDataError" and "malformed message" in str(text)


@pytest.mark.parametrize(
    "extra",
    [
        "x.other.test. 300 IN A 192.0.2.1",
        "sub.pool.test. 300 IN SOA a. b. 1 2 3 4 5",
        "pool.test. 300 IN SOA ns1.pool.test. hostmaster.pool.test. 8 7200 900 1209600 300",
    ],
    ids=["out-of-zone", "soa-not-at-apex", "other-final-soa"],
)
def test_bad_record_in_the_middle_fails_as_before(extra: str) -> None:
    rrsets = _zone(1500)
    name, ttl, _, rdtype, rdata = extra.split(" ", 4)
    bad = dns.rrset.from_text(name, int(ttl), "IN", rdtype, rdata)
    status, text = _both(_stream(rrsets[:700] + [bad] + rrsets[700:] + rrsets[:1]))
    assert status == "BadDataError", text


def test_records_after_the_final_soa_and_missing_final_soa_fail_as_before() -> None:
    rrsets = _zone(1500)
    status, text = _both(_stream(rrsets[:700] + rrsets[:1] + rrsets[700:] + rrsets[:1]))
    assert status == "BadDataError" and "after the final SOA" in str(text)
    status, text = _both(_stream(rrsets))
    assert status == "BadDataError" and "before its final SOA" in str(text)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.97, 0.9999])
def test_stream_cut_short_fails_as_before(fraction: float) -> None:
    rrsets = _zone(1500)
    size = sum(len(raw) + 2 for raw in answer_messages(1, ZONE, "AXFR", rrsets + rrsets[:1], 40))
    with FakePrimary(_stream(rrsets + rrsets[:1]), soa_rrset()) as primary:
        primary.close_after = int(size * fraction)
        plain = _pull(primary, False)
        pooled = _pull(primary, True)
    assert pooled == plain
    assert plain[0] == "BadDataError", plain


def test_limits_fail_as_before() -> None:
    rrsets = _zone(1500)
    stream = _stream(rrsets + rrsets[:1])
    status, text = _both(stream, limits=Limits(max_records=900))
    assert status == "LimitExceeded" and "900" in str(text)
    status, text = _both(stream, limits=Limits(max_bytes=30_000))
    assert status == "LimitExceeded" and "30000" in str(text)


def test_a_primary_that_stalls_fails_as_before() -> None:
    rrsets = _zone(1500)

    def respond(query):  # type: ignore[no-untyped-def]
        messages = answer_messages(query.id, ZONE, "AXFR", rrsets + rrsets[:1], 40)
        yield from messages[:20]
        time.sleep(2.5)

    status, text = _both(respond, timeout=1.0)
    assert status == "TimeoutError_" and "no data for 1s" in str(text), text


def test_parts_assemble_as_full_zone_lines() -> None:
    """render_part + Assembler over any split equals FullZone.lines (sorted rows)."""
    origin = ZONE_NAME
    messages = answer_messages(1, ZONE, "AXFR", _zone(1200)[1:], 100_000)
    sink = wirescan.Rows()
    wire.parse_message(messages[0], origin, None, sink)
    rows = sink.rows
    soa = wire.parse_message(answer_messages(1, ZONE, "AXFR", [soa_rrset()])[0], origin).records[0]
    expected_zone = zonefile.FullZone(soa, list(rows))
    expected = list(expected_zone.lines())
    rng = random.Random(9)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(rows)), rng.randrange(1, 60)))
        assembler = decodepool.Assembler()
        for start, stop in zip([0, *cuts], [*cuts, len(rows)], strict=True):
            assembler.add(decodepool.render_part(rows[start:stop]))
        assert assembler.in_order
        text = b"".join(assembler.finish()).decode()
        assert [expected[0], *text.split("\n")[:-1]] == expected
        assert assembler.rows == len(rows) and assembler.dropped == expected_zone.dropped
    assert decodepool.render_part(rows[10:20] + rows[:10]) is None
    assembler = decodepool.Assembler()
    assembler.add(decodepool.render_part(rows[100:200]))
    assembler.add(decodepool.render_part(rows[:100]))
    assert not assembler.in_order
    # runs of parts each in order (BIND's NSEC3 tree after its main tree): merged by owner
    for _ in range(20):
        chosen = {key for key in {row[0] for row in rows} if rng.random() < 0.3}
        runs = [[r for r in rows if r[0] not in chosen], [r for r in rows if r[0] in chosen]]
        assembler = decodepool.Assembler()
        for run in runs:
            cuts = sorted(rng.sample(range(1, len(run)), rng.randrange(1, 30)))
            for start, stop in zip([0, *cuts], [*cuts, len(run)], strict=True):
                assembler.add(decodepool.render_part(run[start:stop]))
        assert not assembler.in_order and assembler.mergeable
        merged = assembler.merged()
        assert merged is not None
        assert [expected[0], *b"".join(merged).decode().split("\n")[:-1]] == expected
        assert assembler.rows == len(rows) and assembler.dropped == expected_zone.dropped
    # an owner in two runs: its records would have to be merged, the zone is sorted whole
    # one message holding the end of one run and the start of the next (BIND's NSEC3 tree)
    chosen = {key for key in {row[0] for row in rows} if rng.random() < 0.3}
    run_a = [r for r in rows if r[0] not in chosen]
    run_b = [r for r in rows if r[0] in chosen]
    straddling = run_a[-20:] + run_b[:20]
    assert decodepool.render_part(straddling) is None
    assembler = decodepool.Assembler()
    assembler.add(decodepool.render_parts(run_a[:-20]))
    assembler.add(decodepool.render_parts(straddling))
    assembler.add(decodepool.render_parts(run_b[20:]))
    merged = assembler.merged()
    assert merged is not None
    assert [expected[0], *b"".join(merged).decode().split("\n")[:-1]] == expected
    four = [rows[a : a + 10] for a in (30, 20, 10, 0)]  # runs of owners, each in order
    assert decodepool.render_parts([row for run in four for row in run]) is not None
    five = [rows[40:50], *four]
    assert decodepool.render_parts([row for run in five for row in run]) is None
    split_owner = next(i for i in range(1, len(rows)) if rows[i][0] == rows[i - 1][0])
    assembler = decodepool.Assembler()
    assembler.add(decodepool.render_part(rows[split_owner : split_owner + 50]))
    assembler.add(decodepool.render_part(rows[:split_owner]))
    assert assembler.merged() is None


def test_worker_decode_errors_as_in_process() -> None:
    raw = _response(ORIGIN, _rrsets(ORIGIN, _in_zone(RECORDS))).to_wire(max_size=65535)
    rng = random.Random(4)
    for _ in range(400):
        damaged = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(12, len(raw))] = rng.randrange(256)
        sink = wirescan.Rows()
        try:
            message = wire.parse_message(bytes(damaged), ORIGIN, 1000, sink)
        except wire.WireError as err:
            expected: object = str(err)
        else:
            expected = (message.kept, [wire.record_line(r) for r in message.records], sink.text)
        error, decoded, text, _part = decodepool.decode(bytes(damaged), ORIGIN, 1000)
        if error is not None:
            assert error == expected
        else:
            assert decoded is not None
            assert (decoded.kept, [wire.record_line(r) for r in decoded.records], text) == expected


def test_store_and_file_copies_pooled_as_in_process(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``pull -d`` (a first version, then a changed one merged against it) and
    ``pull -o`` write the same files and counts with and without the pool."""
    from click.testing import CliRunner

    from secdns import copies
    from secdns.cli import cli

    first = _zone(1500)
    second = [soa_rrset(8)] + first[1:700] + _zone(300, seed=6)[3:] + first[900:]
    second[1:] = sorted(second[1:], key=lambda rrset: rrset.name)
    outputs = {}
    for pooled in (False, True):
        monkeypatch.setattr(copies.StoreCopy, "pooled", pooled)
        monkeypatch.setattr(copies.FileCopy, "pooled", pooled)
        store, out = tmp_path / f"store-{pooled}", tmp_path / f"out-{pooled}.zone"
        lines = []
        for serial, rrsets in ((7, first), (8, second)):
            with FakePrimary(_stream(rrsets + rrsets[:1]), soa_rrset(serial)) as primary:
                for target in (["-d", str(store)], ["-o", str(out)]):
                    result = CliRunner().invoke(cli, ["pull", ZONE, primary.addr, *target])
                    assert result.exit_code == 0, result.output
                    words = result.output.split()
                    lines.append([w for w in words if not w.startswith(("time=", "primary="))])
        from secdns.store import Store

        stored = Store(store).zone_path(ZONE_NAME).read_bytes()
        outputs[pooled] = (lines, out.read_bytes(), stored)
    assert outputs[True] == outputs[False]


@pytest.mark.parametrize("cpus", [1, 2, 3])
def test_workers_follow_the_cpus_and_decode_as_in_process(
    cpus: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker a CPU the process may use, at most WORKERS; any number of workers
    writes the same file, and fails the same way, as the in-process path."""
    monkeypatch.setattr(decodepool.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.setattr(decodepool, "WORKERS", 3)
    assert decodepool.worker_count() == cpus
    started: list[int] = []
    start = decodepool.Pool.start

    async def counted(self: decodepool.Pool) -> None:
        started.append(self.count)
        await start(self)

    monkeypatch.setattr(decodepool.Pool, "start", counted)
    rrsets = _zone(1500)
    assert _both(_stream(rrsets + rrsets[:1], 7))[0] == "ok"
    status, text = _both(_stream(rrsets[:700] + rrsets[:1] + rrsets[700:] + rrsets[:1], 7))
    assert status == "BadDataError" and "after the final SOA" in str(text)
    assert started == [cpus, cpus]
    monkeypatch.setattr(decodepool, "WORKERS", 2)
    assert decodepool.worker_count() == min(cpus, 2)


def test_an_nsec3_zone_from_bind_is_merged_from_its_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """BIND sends an NSEC3 zone's hashed owners after all the others (its NSEC3 tree):
    the workers' parts come in two runs, merged owner by owner, not decoded again; the
    file is the one the in-process path writes."""
    from click.testing import CliRunner
    from servers import Bind
    from test_answer import _sign

    from secdns import copies
    from secdns.cli import cli

    hosts = "\n".join(f"h{n:04d}.d{n % 7} 300 IN A 192.0.2.{n % 250 + 1}" for n in range(600))
    text = f"$TTL 300\n@ SOA ns1 h 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n{hosts}\n"
    signed = tmp_path / "nsec3.test.zone"
    signed.write_text(_sign(tmp_path / "keys", "nsec3.test.", text, "nsec3"))
    merges = []
    real_merged = decodepool.Assembler.merged
    monkeypatch.setattr(
        decodepool.Assembler, "merged", lambda self: merges.append(1) or real_merged(self)
    )
    primary = Bind.start(tmp_path / "bind", {"nsec3.test": signed})
    try:
        files = {}
        for pooled in (False, True):
            monkeypatch.setattr(copies.FileCopy, "pooled", pooled)
            out = tmp_path / f"out-{pooled}.zone"
            argv = ["pull", "nsec3.test", f"@{primary.addr}", "-o", str(out)]
            result = CliRunner().invoke(cli, argv)
            assert result.exit_code == 0, result.output
            files[pooled] = out.read_bytes()
    finally:
        primary.stop()
    assert merges, "the pool did not see two runs"
    assert files[True] == files[False]
    assert files[True].count(b" NSEC3 ") > 600
