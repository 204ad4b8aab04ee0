import os
import subprocess

import dns.name
import dns.zone
import pytest
from servers import need_binary

from secdns.errors import LocalIOError
from secdns.store import JournalEntry, Store, ZoneState, atomic_write, zone_filename

HOSTILE = [
    "\\.\\./\\.\\./etc/passwd",
    "a/b",
    "a\\000b",
    "%2e%2e",
    "\\.\\.",
    ".",
    "a\\/b",
    "\\..\\..\\tmp",
    "x" * 60 + "." + "y" * 60 + "." + "z" * 60 + "." + "w" * 60,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_zone_filename_never_escapes(text, tmp_path):
    name = dns.name.from_text(text) if text != "." else dns.name.root
    stem = zone_filename(name)
    assert "/" not in stem and "\x00" not in stem
    assert stem not in ("", ".", "..")
    store = Store(tmp_path)
    path = store.zone_path(name)
    assert path.parent == tmp_path
    assert path.resolve().parent == tmp_path.resolve()
    path.write_text("x")  # creatable inside the directory


@pytest.mark.parametrize("text", ["..", "../../etc/passwd", "a..b"])
def test_unparsable_zone_names_are_refused(text):
    from secdns.config import parse_zone_name
    from secdns.errors import ConfigError

    with pytest.raises(ConfigError, match="bad zone name"):
        parse_zone_name(text)


def test_zone_filename_is_distinct_and_stable():
    names = ["example.com.", "Example.COM.", "a\\.b.com.", "a.b.com.", "root.", "."]
    stems = [zone_filename(dns.name.from_text(n)) for n in names]
    assert stems[0] == stems[1] == "example.com"
    assert stems[2] != stems[3]
    assert stems[5] == "@root" and stems[4] == "root"


def test_atomic_write_replaces_or_leaves_intact(tmp_path, monkeypatch):
    path = tmp_path / "f.zone"
    atomic_write(path, "old\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(LocalIOError, match="No space left"):
        atomic_write(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.zone"]  # no temp file left behind
    atomic_write(path, "new\n")
    assert path.read_text() == "new\n"


def test_state_round_trip(tmp_path):
    store = Store(tmp_path)
    origin = dns.name.from_text("example.com.")
    state = ZoneState(zone="example.com.", serial=7, primary="192.0.2.1:53", refresh=60)
    store.save_state(origin, state)
    assert store.load_state(origin) == state
    assert "serial = 7" in store.state_path(origin).read_text()


def test_damaged_state_starts_afresh(tmp_path):
    store = Store(tmp_path)
    origin = dns.name.from_text("example.com.")
    store.state_path(origin).write_text("serial = [[[")
    assert store.load_state(origin).serial is None


def test_read_zone_detects_hand_edits_and_loss(tmp_path):
    store = Store(tmp_path)
    origin = dns.name.from_text("example.com.")
    digest, size = store.write_zone(origin, "zone text\n")
    state = ZoneState(zone="example.com.", serial=1, file_sha256=digest, file_size=size)
    assert store.read_zone(origin, state) == ("zone text\n", "ok")
    store.zone_path(origin).write_text("zone text edited\n")
    text, why = store.read_zone(origin, state)
    assert text is None and "changed outside secdns" in why
    store.zone_path(origin).unlink()
    text, why = store.read_zone(origin, state)
    assert text is None and "missing" in why


def test_journal_chain_and_torn_tail(tmp_path):
    store = Store(tmp_path)
    origin = dns.name.from_text("example.com.")
    store.append_journal(origin, [JournalEntry(1, 2, ("d",), ("a",))], 1)
    store.append_journal(origin, [JournalEntry(2, 3, ("d2",), ("a2",))], 2)
    with open(store.journal_path(origin), "a") as handle:
        handle.write('{"from": 3, "to"')  # torn by a crash
    chain = store.read_journal(origin, 3)
    assert [(e.serial_from, e.serial_to) for e in chain] == [(1, 2), (2, 3)]
    # entries beyond the stored serial (written before a crash) are ignored
    assert [(e.serial_from, e.serial_to) for e in store.read_journal(origin, 2)] == [(1, 2)]


def test_journal_is_bounded(tmp_path):
    store = Store(tmp_path, journal_bytes=2000)
    origin = dns.name.from_text("example.com.")
    for serial in range(1, 60):
        store.append_journal(
            origin, [JournalEntry(serial, serial + 1, ("d" * 20,), ("a" * 20,))], serial
        )
    assert store.journal_path(origin).stat().st_size <= 2000
    chain = store.read_journal(origin, 60)
    assert chain and chain[-1].serial_to == 60
    assert all(b.serial_from == a.serial_to for a, b in zip(chain, chain[1:], strict=False))


def test_a_kill_during_the_final_write_leaves_a_temp_file_the_next_write_sweeps(tmp_path):
    import subprocess
    import sys
    import time

    from secdns import atomicfile as store_module

    target = tmp_path / "example.com.zone"
    target.write_text("old\n")
    # a writer killed after its data is on disk, before the rename
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal; from pathlib import Path; from secdns import store\n"
            "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"store.atomic_write(Path({str(target)!r}), 'new\\n' * 1000)\n",
        ],
        check=False,
    )
    assert killed.returncode == -9
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".example.com.zone.")
    assert target.read_text() == "old\n"
    # kept: a live writer's file, another target's, and a recent one without a pid
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".example.com.zone.{sleeper.pid}.abcd1234.tmp"
        other = tmp_path / ".example.com.zone.zone.99999999.abcd1234.tmp"
        recent = tmp_path / ".example.com.zone.recent12.tmp"
        old = tmp_path / ".example.com.zone.oldone12.tmp"
        for path in (live, other, recent, old):
            path.write_text("x")
        long_ago = time.time() - store_module.OLD_TEMP_AGE - 10
        os.utime(old, (long_ago, long_ago))
        store_module._swept.discard(str(target))
        store_module._temp_listing.pop(tmp_path, None)
        atomic_write(target, "newer\n")
        assert target.read_text() == "newer\n"
        remaining = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
        assert remaining == sorted([live.name, other.name, recent.name])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_zone_writer_replaces_applies_and_refuses_a_changed_file(tmp_path):
    from secdns.errors import IxfrNotApplicable
    from secdns.store import StoredSoa, ZoneWriter

    origin = dns.name.from_text("example.com.")
    store = Store(tmp_path)

    def soa_line(serial: int) -> str:
        return f"@ 3600 IN SOA ns1 host {serial} 7200 900 1209600 300"

    writer = ZoneWriter(store, origin)
    lines = [soa_line(1), "@ 3600 IN NS ns1", "www 300 IN A 192.0.2.1"]
    written = writer.replace(lines, StoredSoa.from_line(soa_line(1)), primary="192.0.2.53:53")
    # a first version is one file: its state in its first line, the master file after it
    first, rest = store.zone_path(origin).read_text().split("\n", 1)
    assert written.records == 3 and rest == written.text
    assert first.startswith("; secdns-state {") and not store.state_path(origin).exists()
    entry = JournalEntry(
        1, 2, (soa_line(1), "www 300 IN A 192.0.2.1"), (soa_line(2), "www 300 IN A 192.0.2.2")
    )
    # a new writer reads what the first committed: state, file and journal agree
    again = ZoneWriter(store, origin)
    written = again.apply([entry], StoredSoa.from_line(soa_line(2)))
    assert (written.removed, written.added, written.records) == (2, 2, 3)
    assert "www 300 IN A 192.0.2.2" in written.text and "192.0.2.1" not in written.text
    state = store.load_state(origin)
    assert (state.serial, state.last_kind, state.expire, state.records) == (2, "IXFR", 1209600, 3)
    assert store.read_journal(origin, 2) == [entry]
    # a file changed outside secdns is not patched
    path = store.zone_path(origin)
    path.write_text(path.read_text().replace("192.0.2.2", "192.0.2.9"))
    later = JournalEntry(2, 3, (soa_line(2),), (soa_line(3),))
    with pytest.raises(IxfrNotApplicable, match="changed outside secdns"):
        ZoneWriter(store, origin).apply([later], StoredSoa.from_line(soa_line(3)))


def test_a_first_version_keeps_its_state_in_its_first_line_until_a_state_write(tmp_path):
    """One new file a zone at a cold start: the state line, read back by every reader
    of the store; the first state-only write makes the state file, which then rules."""
    from secdns.store import StoredSoa, ZoneWriter

    origin = dns.name.from_text("example.com.")
    store = Store(tmp_path)
    soa = "@ 3600 IN SOA ns1 host 7 7200 900 1209600 300"
    written = ZoneWriter(store, origin).replace(
        [soa, "@ 3600 IN NS ns1", "ns1 300 IN A 192.0.2.53", "www 300 IN A 192.0.2.1"],
        StoredSoa.from_line(soa),
        primary="192.0.2.53:53",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.com.zone"]
    state, from_file = store.load_state_from(origin, store.listing())
    assert not from_file and (state.serial, state.primary, state.records) == (7, "192.0.2.53:53", 4)
    assert store.read_zone(origin, state) == (written.text, "ok")
    assert store.zone_problem(origin, state) is None
    # a master-file reader sees a comment
    zone = dns.zone.from_file(str(store.zone_path(origin)), origin, relativize=False)
    assert zone.get_soa().serial == 7
    checked = subprocess.run(
        [need_binary("named-checkzone"), "-q", "example.com.", str(store.zone_path(origin))],
        check=False,
    )
    assert checked.returncode == 0

    # a check writes the state file: it rules from then on, the line is ignored
    writer = ZoneWriter(store, origin)
    writer.state.last_success = None
    assert writer.checked()
    assert store.state_path(origin).exists()
    state, from_file = store.load_state_from(origin)
    assert from_file and state.serial == 7 and store.zone_problem(origin, state) is None
    # and the next version is written without a line
    soa8 = soa.replace(" 7 ", " 8 ")
    ZoneWriter(store, origin).replace([soa8, "www 300 IN A 192.0.2.2"], StoredSoa.from_line(soa8))
    assert store.zone_path(origin).read_text().startswith("; zone example.com. serial 8")
    assert store.load_state(origin).serial == 8


def test_a_changed_or_damaged_state_line_is_caught(tmp_path, caplog):
    from secdns.store import StoredSoa, ZoneWriter

    origin = dns.name.from_text("example.com.")
    store = Store(tmp_path)
    soa = "@ 3600 IN SOA ns1 host 7 7200 900 1209600 300"
    ZoneWriter(store, origin).replace([soa, "www 300 IN A 192.0.2.1"], StoredSoa.from_line(soa))
    path = store.zone_path(origin)
    text = path.read_text()
    # the text after the line edited: the line's SHA-256 no longer matches
    path.write_text(text.replace("192.0.2.1", "192.0.2.9"))
    state = store.load_state(origin)
    assert state.serial == 7
    assert "changed outside secdns" in (store.zone_problem(origin, state) or "")
    assert store.read_zone(origin, state)[0] is None
    # a line that is not JSON: no state, a warning, and the zone is transferred afresh
    path.write_text(text.replace('{"serial"', "{serial"))
    assert store.load_state(origin).serial is None
    assert "state line of" in caplog.text and "damaged" in caplog.text
    # a file that only looks like it (no newline within 64 KiB) is not read past that
    path.write_bytes(b"; secdns-state " + b"x" * 70_000)
    assert store.load_state(origin).serial is None


def test_a_long_first_version_is_written_a_chunk_at_a_time_with_a_state_file(tmp_path):
    from secdns.store import WHOLE_LINES, StoredSoa, ZoneWriter

    origin = dns.name.from_text("example.com.")
    store = Store(tmp_path)
    soa = "@ 3600 IN SOA ns1 host 7 7200 900 1209600 300"
    hosts = sorted(f"h{i:05d} 300 IN A 192.0.2.1" for i in range(WHOLE_LINES))
    written = ZoneWriter(store, origin).replace([soa, *hosts], StoredSoa.from_line(soa))
    assert written.text is None and written.records == WHOLE_LINES + 1
    assert store.state_path(origin).exists()
    state = store.load_state(origin)
    assert state.records == WHOLE_LINES + 1 and store.zone_problem(origin, state) is None


def test_a_state_file_another_writer_made_does_not_outlive_a_newer_state_line(tmp_path):
    # serve's writer learnt at start that the zone has no state file; a pull sharing
    # the store writes one since; serve's next version (with its line) must rule
    from secdns.store import StoredSoa, ZoneWriter

    origin = dns.name.from_text("example.com.")
    store = Store(tmp_path)
    soa7 = "@ 3600 IN SOA ns1 host 7 7200 900 1209600 300"
    serving = ZoneWriter(store, origin, store.listing())
    serving.replace([soa7, "www 300 IN A 192.0.2.1"], StoredSoa.from_line(soa7))
    other = ZoneWriter(store, origin)
    other.state.last_success = None
    assert other.checked() and store.state_path(origin).exists()
    soa8 = soa7.replace(" 7 ", " 8 ")
    serving.replace([soa8, "www 300 IN A 192.0.2.2"], StoredSoa.from_line(soa8))
    assert not store.state_path(origin).exists()
    state = store.load_state(origin)
    assert state.serial == 8 and store.zone_problem(origin, state) is None
