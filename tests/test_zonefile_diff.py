"""A new full version merged with the old file a run of lines (or a rendered part) at a
time (:meth:`SortedDiff.skip_same`, :class:`OldText`, :func:`zonefile.diffed_zone`)
finds exactly what the merge of one line at a time found, and writes the same bytes:
the old reading (a text-mode file a line at a time, header lines left out) is kept
here as the reference (issue 12, ``pull -o`` over an existing copy)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.name
import pytest

from secdns import wire, zonefile

ORIGIN = dns.name.from_text("diff.test.")
OKEY = (b"test", b"diff")


def _soa(serial: int) -> wire.Record:
    return wire.Record(
        OKEY, "@", 300, 1, 6, f"ns1 hostmaster {serial} 7200 900 1209600 300", serial
    )


def _version(rng: random.Random, size: int) -> list[str]:
    """Record lines in canonical order (no SOA), as a pull writes them."""
    keyer = zonefile.LineKeyer(ORIGIN)
    lines: dict[tuple[str, str, str], str] = {}  # one TTL a record, as a zone has
    for _ in range(size):
        owner = rng.choice(["a", "b.a", "a-b", "z", "\\000", "x.y.z", "m", "h1", "h2", "n"])
        rdtype, rdata = rng.choice(
            [
                ("A", f"192.0.2.{rng.randrange(12)}"),
                ("NS", f"ns{rng.randrange(3)}"),
                ("TXT", f'"t{rng.randrange(5)}"'),
                ("AAAA", f"2001:db8::{rng.randrange(6)}"),
            ]
        )
        lines[owner, rdtype, rdata] = f"{owner} {rng.choice([300, 600])} IN {rdtype} {rdata}"
    return sorted(lines.values(), key=keyer)


def _reference(old_path: Path, new: list[str]) -> Merge:
    """The merge of one line at a time, over the file read as before."""
    with open(old_path, encoding="utf-8", errors="replace") as old:
        stored = (
            line.rstrip("\n") for line in old if not line.startswith(zonefile.HEADER_PREFIXES)
        )
        diff = zonefile.SortedDiff(zonefile.LineKeyer(ORIGIN), stored)
        out = list(diff.lines(iter(new)))
    return out, diff.deleted, diff.added


def _parts(rng: random.Random, lines: list[str]) -> Iterator[bytes]:
    """``lines`` cut at random places into rendered parts (some empty)."""
    start = 0
    while start < len(lines):
        stop = start + rng.choice([0, 1, 2, 3, 7, 50])
        yield "".join(line + "\n" for line in lines[start:stop]).encode()
        start = stop


def _old_files(rng: random.Random, new: list[str]) -> Iterator[tuple[str, bytes]]:
    """Old files of every shape the merge meets: equal, one line changed, removed or
    added at the ends and in the middle, another version, comments and blank lines in
    the body, CRLF ends, no final newline, undecodable bytes, empty."""
    head = zonefile.header(ORIGIN, 1, 300)
    soa = wire.record_line(_soa(1))

    def file(lines: list[str], end: str = "\n") -> bytes:
        return ("\n".join([*head, soa, *lines]) + end).encode()

    yield "equal", file(new)
    if new:
        middle = len(new) // 2
        yield (
            "one changed",
            file([*new[:middle], new[middle].replace(" 300 ", " 301 "), *new[middle + 1 :]]),
        )
        yield "first removed", file(new[1:])
        yield "last removed", file(new[:-1])
        yield "middle removed", file(new[:middle] + new[middle + 1 :])
        yield "comment in the body", file([*new[:middle], "; a comment", *new[middle:]])
        yield "directive in the body", file([*new[:middle], "$TTL 5", *new[middle:]])
        yield "blank line in the body", file([*new[:middle], "", *new[middle:]])
        yield "no final newline", file(new, end="")
        yield "crlf", file(new).replace(b"\n", b"\r\n")
        yield "lone cr", file(new[:middle]) + b"\r".join(line.encode() for line in new[middle:])
        yield (
            "undecodable",
            file([*new[:middle], 'q 300 IN TXT "\xff"', *new[middle:]]).replace(
                "\xff".encode(), b"\xff"
            ),
        )
    yield "added at the end", file([*new, "zz 300 IN A 192.0.2.1"])
    yield "another version", file(_version(rng, len(new) + 3))
    yield "empty", b""


@pytest.mark.parametrize("piece", [1, 7, 64, 1 << 20])
def test_merging_runs_at_once_finds_what_one_line_at_a_time_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int
) -> None:
    monkeypatch.setattr(zonefile.OldText, "PIECE", piece)
    rng = random.Random(piece)
    old_path = tmp_path / "old.zone"
    for round_ in range(40):
        monkeypatch.setattr(zonefile, "CHUNK_LINES", rng.choice([1, 2, 5, 4096]))
        new_records = _version(rng, rng.randrange(0, 60))
        new = [wire.record_line(_soa(2)), *new_records]
        for name, data in _old_files(rng, new_records):
            old_path.write_bytes(data)
            want = _outcome(_reference, old_path, new)
            assert _outcome(_merged_lines, old_path, new) == want, (round_, name)
            # a zone rendered in parts (secdns.decodepool), compared a part at a time,
            # and a zone not rendered yet (its rows sorted as they are written)
            rendered = zonefile.FullZone(_soa(2), [])
            rendered.rendered = list(_parts(rng, new_records))
            rendered.rendered_rows = len(new_records)
            rows = [_row(line) for line in reversed(new_records)]
            for zone in (rendered, zonefile.FullZone(_soa(2), rows)):
                assert _outcome(_merged_zone, old_path, new, zone) == want, (round_, name)


Merge = tuple[list[str], list[str], list[str]]


def _merged_lines(old_path: Path, new: list[str]) -> Merge:
    with zonefile.diffed_against(ORIGIN, old_path, iter(new)) as (lines, diff):
        out = list(lines)
    return out, diff.deleted, diff.added


def _merged_zone(old_path: Path, new: list[str], zone: zonefile.FullZone) -> Merge:
    with zonefile.diffed_zone(ORIGIN, old_path, 2, 300, zone) as (chunks, diff):
        text = b"".join(chunks).decode()
    assert text == zonefile.render(ORIGIN, 2, 300, new)
    return new, diff.deleted, diff.added


def _outcome(merge: Callable[..., Merge], *args: object) -> object:
    """The lines, deleted and added of a merge, or the error it raised."""
    try:
        return merge(*args)
    except zonefile.IxfrNotApplicable as err:  # an unparsable old line
        return str(err)


def _row(line: str) -> tuple[tuple[bytes, ...], str, int, int, str]:
    owner, ttl, _, rdtype, rdata = line.split(" ", 4)
    key = zonefile.LineKeyer(ORIGIN).owner_key(owner)
    return (key, owner, int(ttl), {"A": 1, "NS": 2, "TXT": 16, "AAAA": 28}[rdtype], rdata)


def test_a_run_is_never_skipped_past_what_the_old_reading_leaves_out(tmp_path: Path) -> None:
    """New text with a header-like line, a line holding a newline, or no final newline
    is merged a line at a time (the old reading would not have matched it whole)."""
    old_path = tmp_path / "old.zone"
    old_path.write_text("$ORIGIN diff.test.\na 300 IN A 192.0.2.1\n$TTL 5\nb 300 IN A 192.0.2.2\n")
    with open(old_path, encoding="utf-8") as handle:
        diff = zonefile.SortedDiff(zonefile.LineKeyer(ORIGIN), zonefile.OldText(handle))
        run = "a 300 IN A 192.0.2.1\n$TTL 5\nb 300 IN A 192.0.2.2\n"
        assert not diff.skip_same(run, 3)
        assert not diff.skip_same("a 300 IN A 192.0.2.1", 1)
        assert not diff.skip_same("a 300 IN A 192.0.2.1\n", 2)  # a line holding a newline
        assert diff.skip_same("a 300 IN A 192.0.2.1\n", 1)
        assert not diff.skip_same("$TTL 5\n", 1)
        assert diff.skip_same("b 300 IN A 192.0.2.2\n", 1)
        diff.finish()
    assert (diff.deleted, diff.added) == ([], [])


def test_a_rendered_zone_equal_to_its_old_file_is_compared_a_part_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_records = _version(random.Random(5), 200)
    old_path = tmp_path / "old.zone"
    old_path.write_text(zonefile.render(ORIGIN, 1, 300, [wire.record_line(_soa(1)), *new_records]))
    fed: list[str] = []
    feed = zonefile.SortedDiff.feed
    monkeypatch.setattr(
        zonefile.SortedDiff, "feed", lambda self, line: fed.append(line) or feed(self, line)
    )
    zone = zonefile.FullZone(_soa(2), [])
    zone.rendered = list(_parts(random.Random(6), new_records))
    zone.rendered_rows = len(new_records)
    with zonefile.diffed_zone(ORIGIN, old_path, 2, 300, zone) as (chunks, diff):
        b"".join(chunks)
    assert fed == [wire.record_line(_soa(2))]  # only the SOA, which changed
    assert diff.deleted == [wire.record_line(_soa(1))]
    assert diff.added == [wire.record_line(_soa(2))]
