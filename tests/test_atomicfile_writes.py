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
