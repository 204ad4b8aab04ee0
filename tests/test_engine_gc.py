"""secdns.gcpause.gc_paused: overlapping pauses keep the collector off until the last ends."""

from __future__ import annotations

import gc
import time

import pytest

from secdns import gcpause


@pytest.fixture(autouse=True)
def _collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_nested_and_overlapping_pauses_resume_at_the_last_end():
    with gcpause.gc_paused():
        assert not gc.isenabled()
        with gcpause.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    first, second = gcpause.gc_paused(), gcpause.gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # (serve: one transfer ends while another runs)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with gcpause.gc_paused():
        pass
    assert not gc.isenabled()


def test_a_long_pause_still_collects_the_young(monkeypatch):
    monkeypatch.setattr(gcpause, "GC_PAUSE_LIMIT", 0.01)
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            generations.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        first, second = gcpause.gc_paused(), gcpause.gc_paused()
        first.__enter__()
        second.__enter__()
        time.sleep(0.02)
        first.__exit__(None, None, None)
        assert generations == [0]
        assert not gc.isenabled()
        second.__exit__(None, None, None)
    finally:
        gc.callbacks.remove(seen)
    assert gc.isenabled()


def test_failed_blocks_bring_a_collection_sooner(monkeypatch):
    monkeypatch.setattr(gcpause, "GC_PAUSE_FAILURES", 2)
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            generations.append(info["generation"])

    outer = gcpause.gc_paused()
    outer.__enter__()
    gc.callbacks.append(seen)
    try:
        for _ in range(2):
            with pytest.raises(ValueError), gcpause.gc_paused():
                raise ValueError("a failed transfer")
        assert generations == [0]
    finally:
        gc.callbacks.remove(seen)
        outer.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_serve_that_cannot_listen_leaves_no_pause_behind(tmp_path):
    """serve pauses the collector until its empty secondaries have their first
    versions; a start that fails (its port in use) must end that pause, or every
    later pause in the process would find the count above zero and never disable
    the collector (seen as a test-order failure: tests/test_polish.py, then this file)."""
    import socket
    import sys

    from click.testing import CliRunner
    from serving import write_config

    from secdns.cli import cli

    interval = sys.getswitchinterval()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        path = write_config(
            tmp_path / "secdns.toml",
            directory=tmp_path / "store",
            port=holder.getsockname()[1],
            zones=[{"name": "example.com", "primaries": ["127.0.0.1:9"]}],
        )
        served = CliRunner().invoke(cli, ["serve", "-c", str(path)])
    finally:
        holder.close()
    assert served.exit_code == 7, served.output
    assert gcpause._pauses == 0
    assert sys.getswitchinterval() == interval
    with gcpause.gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
