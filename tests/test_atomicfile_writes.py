"""The atomic writer's temporary file, written with os.write: a write that takes only
part of a chunk goes on with the rest, so the file and its SHA-256 are whole."""

from __future__ import annotations

import hashlib
import os
import stat

from secdns.atomicfile import AtomicFile


def test_partial_writes_are_completed(tmp_path, monkeypatch):
    """A write that takes at most three bytes, as a raw write may."""
    write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: write(fd, bytes(data[:3])))
    target = tmp_path / "zone.zone"
    chunks = [b"; header\n", b"", b"a 3600 IN A 192.0.2.1\n" * 5, b"z"]
    with AtomicFile(target) as temp:
        temp.write_all(chunks)
    monkeypatch.undo()
    whole = b"".join(chunks)
    assert target.read_bytes() == whole
    assert temp.sha256 == hashlib.sha256(whole).hexdigest() and temp.size == len(whole)


def test_a_new_file_is_0644_and_a_replaced_one_keeps_its_mode(tmp_path):
    target = tmp_path / "state.toml"
    with AtomicFile(target) as temp:
        temp.write_all([b"serial = 1\n"])
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    os.chmod(target, 0o600)
    with AtomicFile(target) as temp:
        temp.write_all([b"serial = 2\n"])
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert target.read_text() == "serial = 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state.toml"]  # no temporary left


def test_a_group_fsyncs_the_descriptors_it_kept_and_closes_every_one(tmp_path, monkeypatch):
    """In a group commit each file's descriptor is kept for its fsync (no second open),
    up to KEPT_FDS; then the rest are opened again; none is left open after."""
    from secdns import atomicfile

    monkeypatch.setattr(atomicfile, "KEPT_FDS", 5)
    synced: list[int] = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), fsync(fd))[1])
    opened = len(os.listdir("/proc/self/fd"))
    with atomicfile.group_commit(True) as group:
        for index in range(8):
            atomicfile.atomic_write(tmp_path / f"z{index}.zone", b"x\n", new=index % 2 == 0)
        assert len(group.open_fds) == 5
    assert len(os.listdir("/proc/self/fd")) == opened
    assert len([fd for fd in synced if fd >= 0]) >= 8  # every file (and the directory)
    for index in range(8):
        path = tmp_path / f"z{index}.zone"
        assert path.read_bytes() == b"x\n"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"z{i}.zone" for i in range(8)]


def test_a_group_that_does_not_sync_keeps_no_descriptor(tmp_path):
    from secdns import atomicfile

    opened = len(os.listdir("/proc/self/fd"))
    with atomicfile.group_commit(False) as group:
        atomicfile.atomic_write(tmp_path / "z.zone", b"x\n", new=True)
        assert not group.open_fds
        assert len(os.listdir("/proc/self/fd")) == opened
    assert (tmp_path / "z.zone").read_bytes() == b"x\n"


def test_stale_temp_files_are_named_five_times_then_removed_quietly(tmp_path, caplog, monkeypatch):
    """A serve of many zones killed mid-commit leaves hundreds of temporary files: the
    next start removes each, and names five (a stranger saw 63 warnings)."""
    import logging
    import subprocess
    import sys

    from secdns import atomicfile

    monkeypatch.setattr(atomicfile, "_removed_said", [0])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **_OUT)
    pid = int(gone.stdout)  # (a process that has ended)
    for index in range(8):
        (tmp_path / f".z{index}.zone.{pid}.abcdefgh.tmp").write_text("cut short")
    caplog.set_level(logging.DEBUG, logger="secdns")
    for index in range(8):
        assert atomicfile.sweep_temp_files(tmp_path / f"z{index}.zone")
    assert not list(tmp_path.iterdir())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 6 and "without a warning" in warnings[-1], warnings
    assert sum("stopped mid-write" in r.getMessage() for r in caplog.records) == 8


_OUT = {"capture_output": True, "text": True, "check": True}
