"""The store's state file: written flat (fast), read back the same by the flat reader
and by tomllib, and byte-identical to what tomli_w wrote before."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest
import tomli_w

from secdns.store import ZoneState, _flat_toml

ERRORS = [
    "plain",
    'quoted "text" and a back\\slash',
    "tab\tnew\nline\rcr\bbs\fff",
    "control \x01 and del \x7f",
    "unicode: zoné ✓ 🙂",
    "",
]


@pytest.mark.parametrize("error", ERRORS)
def test_state_round_trip(error):
    state = ZoneState(
        zone="example.com.",
        serial=2024060101,
        primary="127.0.0.1#5300",
        last_success="2026-12-02T02:00:00Z",
        last_error=error,
        refresh=3600,
        records=20,
        file_sha256="ab" * 32,
    )
    text = state.to_toml()
    expected = {k: v for k, v in dataclasses.asdict(state).items() if v is not None}
    assert tomllib.loads(text) == expected
    assert text == tomli_w.dumps(expected)
    assert ZoneState.from_toml(text, "example.com.") == state
    if not any(c in error for c in "\x01\x7f\t"):
        assert _flat_toml(text) == expected  # the fast reader takes what we write
