import os

import dns.name
import pytest

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
    assert written.records == 3 and store.zone_path(origin).read_text() == written.text
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
