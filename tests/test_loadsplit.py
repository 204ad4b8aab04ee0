"""Reading a master file in pieces (secdns.server.loadsplit) gives what one pass gives.

Every cut is tried at every line of files with the awkward places in them
(parentheses, blank owners, comments, $TTL/$ORIGIN changes, CRLF, a last line
without newline, an owner split over pieces, no $TTL at all): a split read either
declines (the caller then reads in one pass) or builds exactly the version one pass
builds, entry by entry and in the same order.  Errors are the one-pass reader's, and
a child that fails or hangs makes the read decline, not fail.
"""

from __future__ import annotations

import gc
import itertools
import os
import time
from pathlib import Path

import dns.name
import pytest
from serving import ServerThread, write_config

from secdns.errors import ZoneFileError
from secdns.masterfile import reader as reader_module
from secdns.server import loadsplit
from secdns.server.load import version_from_text
from secdns.server.zone import ZoneVersion

EXAMPLE = dns.name.from_text("example.com.")
HEAD = "$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n"

AWKWARD = {
    "parentheses and blank owners": HEAD
    + 'www A 192.0.2.2\n  AAAA ::2\n\tTXT ( "a"\n  "b" )\nmail MX (\n 10\n mx )\n'
    "mx A 192.0.2.3\n; a comment line\n\nftp 60 IN A 192.0.2.4\n",
    "an owner over several pieces": HEAD
    + "h A 192.0.2.1\nh A 192.0.2.2\nh AAAA ::1\nh TXT x\nh MX 10 mx\nq A 192.0.2.9\n"
    "h A 192.0.2.0\nh TXT x\nr A 192.0.2.1\n",
    "$TTL and $ORIGIN changes": HEAD
    + "a A 192.0.2.1\nb A 192.0.2.2\n$TTL 60\nc A 192.0.2.3\nd A 192.0.2.4\n"
    "$ORIGIN sub.example.com.\ne A 192.0.2.5\nf A 192.0.2.6\n$ORIGIN example.com.\ng A 192.0.2.7\n",
    "CRLF and no last newline": (HEAD + 'a A 192.0.2.1\nb TXT "x y"\nc CNAME a\nd A 192.0.2.4')
    .replace("\n", "\r\n")
    .rstrip("\r"),
    "no $TTL: previous TTLs": "@ 120 SOA ns1 hm 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n"
    "a 30 A 192.0.2.1\nb A 192.0.2.2\nc 40 A 192.0.2.3\nd A 192.0.2.4\ne A 192.0.2.5\n",
    "no $TTL: the SOA's minimum": "@ SOA ns1 hm 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n"
    "a A 192.0.2.1\nb 30 A 192.0.2.2\nc A 192.0.2.3\n",
    "escaped owners over several pieces": HEAD
    + "w\\.dot A 192.0.2.1\nx.w\\.dot A 192.0.2.2\nq A 192.0.2.3\nw\\.dot TXT again\n"
    "a\\065 TXT esc\nb.a\\065 A 192.0.2.4\nq AAAA ::1\nA\\065 AAAA ::1\nc.b.a\\065 A 192.0.2.5\n",
    "mixed types out of order": HEAD
    + "w MX 20 b\nw A 192.0.2.9\nw MX 10 a\n_s._tcp.w SRV 0 1 2 t\nw AAAA ::1\nx.y.z A 192.0.2.1\n"
    "W A 192.0.2.9\n*.w TXT wild\nsub NS ns.sub\nns.sub A 192.0.2.7\n",
}

DIG_STYLE = "".join(  # no $TTL, every record with its TTL, absolute owners
    ["example.com. 3600 IN SOA ns1.example.com. hm.example.com. 7 3600 600 86400 60\n"]
    + [f"h{i}.example.com. {60 + i % 7} IN A 192.0.2.{i % 250}\n" for i in range(12)]
    + ["late.example.com. IN A 192.0.2.1\n", "later.example.com. 5 IN A 192.0.2.2\n"]
)
AWKWARD["dig style: every TTL stated, none by default"] = DIG_STYLE

NEXT_HASH = "0123456789ABCDEFGHIJKLMNOPQRSTUV"  # (base32hex)
SIGNZONE_STYLE = "".join(  # as dnssec-signzone writes: no $TTL, records over several lines
    ["example.com.\t\t3600\tIN SOA\tns1.example.com. hm.example.com. ( 7 3600 600 86400 60 )\n"]
    + ["ns1.example.com.\t3600\tIN A\t192.0.2.1\n"]
    + [
        f"H{i:02d}.example.com. {60 + i % 7} IN NSEC3 1 0 0 - (\n\t\t\t{NEXT_HASH} A )\n"
        f"\t\t\t{60 + i % 7}\tRRSIG\tNSEC3 13 3 60 (\n\t\t\t1 2 3 example.com. sig{i} )\n"
        for i in range(8)
    ]
    + ['q.example.com. 30 IN TXT "a ( b" ( "c" )\n', "r.example.com. (\n 40 IN A 192.0.2.1 )\n"]
    + ["s.example.com. IN A 192.0.2.2 ; no TTL: r's\n"]
)
AWKWARD["dnssec-signzone style: records over several lines, every TTL stated"] = SIGNZONE_STYLE

BROKEN = {
    "an unknown type late": HEAD + "a A 192.0.2.1\nb A 192.0.2.2\nc BOGUS x\nd A 192.0.2.4\n",
    "a bad address early, another error late": HEAD
    + "a A 192.0.2.999\nb A 192.0.2.2\nc A 192.0.2.3\nd BOGUS 1\n",
    "outside the zone": HEAD + "a A 192.0.2.1\nb.example.net. A 192.0.2.2\nc A 192.0.2.3\n",
    "a parenthesis never closed": HEAD + "a A 192.0.2.1\nb TXT ( x\nc A 192.0.2.3\nd TXT y\n",
    "a ')' without '('": HEAD + "a A 192.0.2.1\nb A 192.0.2.2\n)\nc A 192.0.2.3\n",
    "no SOA": "$TTL 60\na A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.3\n",
}


def _one_pass(text: str) -> ZoneVersion:
    return version_from_text(text, EXAMPLE, "zone.db", processes=1)


def _entries(version: ZoneVersion) -> tuple[object, ...]:
    return (
        list(version.iter_entries()),
        version.serial,
        version.records,
        version.names,
        version.mask,
    )


def _split(text: str, points: list[int]) -> ZoneVersion | None:
    gc.disable()
    try:
        return loadsplit.read_split(text, EXAMPLE, "zone.db", len(points) - 1, points=points)
    finally:
        gc.enable()


@pytest.fixture(params=["guessed", "too many", "too few"])
def handback(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The buckets' count as guessed from the head, and guessed wrong both ways (the
    parent then puts every owner in new buckets, in the order they came)."""
    if request.param == "too many":
        monkeypatch.setattr(loadsplit, "estimate_buckets", lambda names: 1 << 10)
    elif request.param == "too few":
        monkeypatch.setattr(loadsplit, "estimate_buckets", lambda names: 1)
    return str(request.param)


def _line_starts(text: str) -> list[int]:
    return [i + 1 for i, char in enumerate(text) if char == "\n" and i + 1 < len(text)]


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_every_cut_reads_as_one_pass(name: str, handback: str) -> None:
    text = AWKWARD[name]
    expected = _entries(_one_pass(text))
    starts = _line_starts(text)
    head = starts[1]  # after the SOA (or $TTL): the reader's state is the zone's from here
    split = 0
    for cut in starts[2:]:
        version = _split(text, [head, cut, len(text)])
        if version is not None:
            split += 1
            assert _entries(version) == expected, f"cut at {text[cut : cut + 20]!r}"
    pairs = itertools.combinations(starts[2:], 2) if handback == "guessed" else ()
    for first, second in pairs:
        version = _split(text, [head, first, second, len(text)])
        if version is not None:
            split += 1
            assert _entries(version) == expected, f"cuts {first}, {second}"
    assert split  # some cuts were read in pieces, not only declined


def test_cuts_decline_where_the_state_is_not_the_heads() -> None:
    text = AWKWARD["$TTL and $ORIGIN changes"]
    head = _line_starts(text)[1]
    after_ttl = text.index("c A")
    after_origin = text.index("e A")
    before_ttl = text.index("b A")
    assert _split(text, [head, after_ttl, len(text)]) is None  # the parent's piece changed $TTL
    assert _split(text, [head, after_origin, len(text)]) is None
    # a child's piece that changes the state: its records were read right, but the
    # next piece's would not be
    assert _split(text, [head, before_ttl, text.index("d A"), len(text)]) is None
    inside = AWKWARD["parentheses and blank owners"]
    cut = inside.index(" 10\n") + len(" 10\n")  # " mx )": not an owner line, but forced here
    assert _split(inside, [_line_starts(inside)[1], cut, len(inside)]) is None


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_errors_are_the_one_pass_readers(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = BROKEN[name]
    with pytest.raises(ZoneFileError) as one_pass:
        _one_pass(text)
    monkeypatch.setattr(loadsplit, "MIN_SPLIT_CHARS", 0)
    starts = _line_starts(text)
    monkeypatch.setattr(loadsplit, "HEAD_CHARS", starts[1] - 1)  # the head: 2 lines
    for cut in starts[2:]:
        monkeypatch.setattr(
            loadsplit,
            "split_points",
            lambda text, processes, cut=cut, **_: [starts[1], cut, len(text)],
        )
        with pytest.raises(ZoneFileError) as split:
            version_from_text(text, EXAMPLE, "zone.db", processes=2)
        assert str(split.value) == str(one_pass.value)


def test_split_points_cut_at_owner_lines() -> None:
    lines = [f"h{i} A 192.0.2.{i % 250}" for i in range(3000)]
    body = "\n".join(lines[:1000]) + "\n  TXT blank\n; comment\n$TTL 60\n" + "\n".join(lines[1000:])
    text = HEAD + body + "\n"
    points = loadsplit.split_points(text, 3, head_chars=len(HEAD) - 5)
    assert points is not None and len(points) == 4
    assert points[0] == len(HEAD) and points[-1] == len(text)
    assert points == sorted(set(points))
    for point in points[:-1]:
        assert text[point - 1] == "\n" and text[point] not in " \t;$("
    assert loadsplit.split_points(text, 1) is None
    assert loadsplit.split_points("x A 1\n" + " y\n" * 50, 2, head_chars=0) is None


def _large_zone(records: int) -> str:
    lines = [HEAD.rstrip("\n")]
    for i in range(records):
        lines.append(f"host{i}.d{i % 17} A 192.0.{i % 250}.{i % 199}")
        if i % 5 == 0:
            lines.append(f"host{i}.d{i % 17} AAAA 2001:db8::{i:x}")
        if i % 97 == 0:
            lines.append(f'host{i // 2}.d{(i // 2) % 17} TXT "again {i}"')  # an earlier owner
    return "\n".join(lines) + "\n"


def test_a_large_zone_loads_in_processes_as_in_one_pass(
    monkeypatch: pytest.MonkeyPatch, handback: str
) -> None:
    text = _large_zone(20000)
    expected = _entries(_one_pass(text))
    monkeypatch.setattr(loadsplit, "MIN_SPLIT_CHARS", 0)
    read = []
    real = loadsplit.read_split
    monkeypatch.setattr(
        loadsplit, "read_split", lambda *args, **kw: read.append(1) or real(*args, **kw)
    )
    for processes in (2, 3, 5):
        groups_version = version_from_text(text, EXAMPLE, "zone.db", processes=processes)
        assert _entries(groups_version) == expected
    assert len(read) == 3


def test_a_child_that_hangs_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _large_zone(3000)
    expected = _entries(_one_pass(text))
    parent = os.getpid()
    real_read = reader_module.Reader.read

    def slow_in_children(self: reader_module.Reader, *args: object) -> None:
        if os.getpid() != parent:
            time.sleep(30)
        real_read(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(reader_module.Reader, "read", slow_in_children)
    monkeypatch.setattr(loadsplit, "MIN_WAIT", 0.3)
    started = time.monotonic()
    points = loadsplit.split_points(text, 2, head_chars=len(HEAD) - 5)
    assert points is not None
    assert _split(text, points) is None
    assert time.monotonic() - started < 10
    monkeypatch.setattr(loadsplit, "MIN_SPLIT_CHARS", 0)
    assert _entries(version_from_text(text, EXAMPLE, "zone.db", processes=2)) == expected


def test_a_child_that_dies_makes_the_read_decline(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _large_zone(3000)
    parent = os.getpid()
    real_read = reader_module.Reader.read

    def die_in_children(self: reader_module.Reader, *args: object) -> None:
        if os.getpid() != parent:
            os._exit(3)
        real_read(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(reader_module.Reader, "read", die_in_children)
    points = loadsplit.split_points(text, 3, head_chars=len(HEAD) - 5)
    assert points is not None
    assert _split(text, points) is None


def test_split_reading_leaves_no_garbage() -> None:
    text = _large_zone(500)
    points = loadsplit.split_points(text, 2, head_chars=len(HEAD) - 5)
    assert points is not None
    gc.collect()
    gc.disable()
    try:
        version = loadsplit.read_split(text, EXAMPLE, "zone.db", 2, points=points)
        assert isinstance(version, ZoneVersion)
        del version
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_wrong_guess_of_the_buckets_count_is_put_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _large_zone(3000)
    points = loadsplit.split_points(text, 3, head_chars=len(HEAD) - 5)
    assert points is not None
    right = _split(text, points)
    assert right is not None and right.mask > 0
    assert _entries(right) == _entries(_one_pass(text))
    for wrong in (1, 2 * (right.mask + 1)):
        monkeypatch.setattr(loadsplit, "estimate_buckets", lambda names, wrong=wrong: wrong)
        version = _split(text, points)
        assert version is not None and _entries(version) == _entries(right)


def test_serve_loads_and_reloads_a_file_zone_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real start-up path (the load runs in a thread of serve's event loop, and
    forks from there), then a SIGHUP reload of the changed file, also in pieces."""
    monkeypatch.setattr(loadsplit, "MIN_SPLIT_CHARS", 0)
    monkeypatch.setattr(loadsplit, "HEAD_CHARS", 16)
    monkeypatch.setattr(loadsplit, "processes_available", lambda: 2)
    versions: list[ZoneVersion | None] = []
    real = loadsplit.read_split

    def read_split(*args: object, **kwargs: object) -> ZoneVersion | None:
        version = real(*args, **kwargs)  # type: ignore[arg-type]
        versions.append(version)
        return version

    monkeypatch.setattr(loadsplit, "read_split", read_split)
    text = _large_zone(3000)
    zone_file = tmp_path / "example.com.zone"
    zone_file.write_text(text)
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": "example.com", "file": str(zone_file)}],
    )
    server = ServerThread(config)
    try:
        assert server.serial("example.com.") == 7
        answer = server.query("host2999.d7.example.com.", "A").answer
        assert answer[0][0].address == "192.0.249.14"
        assert len(versions) == 1 and versions[0] is not None
        assert server.server is not None
        served = server.server.runtimes[EXAMPLE].zone.version
        assert served is versions[0]
        assert _entries(served) == _entries(_one_pass(text))
        changed = text.replace("7 3600 600", "8 3600 600") + "late A 192.0.2.77\n"
        zone_file.write_text(changed)
        server.call(server.server.reload)  # as on SIGHUP
        server.wait_serial("example.com.", 8)
        assert server.query("late.example.com.", "A").answer[0][0].address == "192.0.2.77"
        assert len(versions) == 2 and versions[1] is not None
    finally:
        server.stop()


def test_a_file_without_ttl_default_is_cut_where_records_state_their_ttl() -> None:
    text = DIG_STYLE
    head = _line_starts(text)[0]
    stated = text.index("h7.")
    assert _split(text, [head, stated, len(text)]) is not None  # TTLs differ, unused
    late = text.index("late.")  # no TTL: it takes h11's, which the head does not know
    assert _split(text, [head, late, len(text)]) is None
    assert _split(text, [head, text.index("later."), len(text)]) is not None
    big = DIG_STYLE + "".join(
        f"x{i}.example.com. {i % 9 + 1} IN A 192.0.2.{i % 250}\n"
        + (f"y{i}.example.com. IN A 192.0.2.9\n" if i % 3 else "")
        for i in range(3000)
    )
    reader = reader_module.Reader(EXAMPLE, EXAMPLE, None, None, None)
    points = loadsplit.split_points(big, 3, head_chars=10, ttl_kinds=reader.kinds)
    assert points is not None
    for point in points[1:-1]:
        assert big[point] == "x"  # a line stating its TTL
    version = _split(big, points)
    assert version is not None
    assert _entries(version) == _entries(_one_pass(big))


def test_a_signed_file_without_ttl_default_is_cut_before_its_parentheses() -> None:
    """dnssec-signzone writes no $TTL and every NSEC3 record over several lines: its
    owner lines state their TTL before their ``(``, and are cut at (a 24 MB NSEC3 zone
    was read in one process: every owner line of its second half holds a ``(``)."""
    reader = reader_module.Reader(EXAMPLE, EXAMPLE, None, None, None)
    kinds = reader.kinds

    def stated(line: str) -> bool:
        return loadsplit.states_its_ttl(kinds, line + "\n", 0)

    assert stated("H01.example.com. 60 IN NSEC3 1 0 0 - (")
    assert stated("x IN 60 A 192.0.2.1 ; a comment (")
    assert stated("x 60 (IN A 192.0.2.1)")
    assert not stated("x ( 60 IN A 192.0.2.1 )")  # (the TTL inside: not read)
    assert not stated('x "60" IN A 192.0.2.1')
    assert not stated("x\\ 60 IN A 192.0.2.1")
    assert not stated("x IN A 192.0.2.1 ; 60")
    big = SIGNZONE_STYLE + "".join(
        f"N{i}.example.com. {i % 9 + 1} IN NSEC3 1 0 0 - (\n\t\t\t{NEXT_HASH} A )\n"
        for i in range(3000)
    )
    points = loadsplit.split_points(big, 3, head_chars=10, ttl_kinds=kinds)
    assert points is not None
    for point in points[1:-1]:
        assert big[point] == "N"
    version = _split(big, points)
    assert version is not None
    assert _entries(version) == _entries(_one_pass(big))


def _counted_total(version: ZoneVersion) -> int:
    """What a version's buckets' count is computed from: its owners and the names that
    have names below them (:meth:`ZoneVersion.from_groups`)."""
    return version.names + sum(1 for _key, (_lines, below) in version.iter_entries() if below)


def test_owners_in_two_pieces_count_once_when_the_buckets_count_hangs_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent decides whether to write the counts below as the last child's buckets
    come from the count of owners before it knows which owners are in two pieces; if
    those owners tip the buckets' count, it puts every owner in new buckets after
    all, dropping the empty non-terminals it wrote, and writes the counts again."""
    text = HEAD + "".join(
        f"h{i}.d{i % 7}.e A 192.0.2.{i % 250}\n"
        + (f"h{i - 60}.d{(i - 60) % 7}.e TXT late\n" if i % 50 == 49 else "")
        for i in range(400)
    )
    one = _one_pass(text)
    exact = _counted_total(one)
    points = [len(HEAD), text.index("h200."), len(text)]
    real_count = loadsplit.zone.bucket_count
    # h189's TXT is read by the child: the count before the parent knows that is exact + 1
    cases = ((exact + 1, 8), (exact, 4), (exact + 1, 4), (exact + 2, 4))
    for threshold, guessed in cases:
        # 4 buckets below the threshold, 8 from it, and the head's guess of 4 or 8
        monkeypatch.setattr(
            loadsplit.zone, "bucket_count", lambda names, t=threshold: 8 if names >= t else 4
        )
        monkeypatch.setattr(loadsplit, "estimate_buckets", lambda names, g=guessed: g)
        expected = _entries(_one_pass(text))
        version = _split(text, points)
        assert version is not None
        assert _entries(version) == expected, (threshold, guessed)
        monkeypatch.setattr(loadsplit.zone, "bucket_count", real_count)


def test_a_child_that_dies_while_sending_makes_the_read_decline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _large_zone(3000)
    expected = _entries(_one_pass(text))
    parent = os.getpid()
    real_send = loadsplit._send
    sent = []

    def die_after_two(fd: int, message: object) -> None:
        if os.getpid() != parent and len(sent) == 2:
            os._exit(0)  # as if killed: its exit status does not matter, its silence does
        sent.append(1)
        real_send(fd, message)

    monkeypatch.setattr(loadsplit, "_send", die_after_two)
    monkeypatch.setattr(loadsplit, "estimate_buckets", lambda names: 64)
    points = loadsplit.split_points(text, 2, head_chars=len(HEAD) - 5)
    assert points is not None
    assert _split(text, points) is None
    monkeypatch.setattr(loadsplit, "MIN_SPLIT_CHARS", 0)
    assert _entries(version_from_text(text, EXAMPLE, "zone.db", processes=2)) == expected


def test_children_are_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _large_zone(3000)
    forked: list[int] = []
    real_fork = loadsplit._fork_piece

    def fork_piece(*args: object, **kwargs: object) -> object:
        child = real_fork(*args, **kwargs)  # type: ignore[arg-type]
        forked.append(child.pid)
        return child

    monkeypatch.setattr(loadsplit, "_fork_piece", fork_piece)
    points = loadsplit.split_points(text, 3, head_chars=len(HEAD) - 5)
    assert points is not None
    assert _split(text, points) is not None
    assert len(forked) == 2
    deadline = time.monotonic() + 10
    for pid in forked:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)  # (a zombie still takes signals: gone only once reaped)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"child {pid} not reaped")
