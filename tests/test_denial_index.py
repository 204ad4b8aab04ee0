"""The denial index a zone version hands on to the next (an IXFR's): the sorted NSEC
owners and the NSEC3 chain brought up to date with the changed owners, equal to what a
build from scratch makes, and no rebuild of the zone's owners for it."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest
from test_answer import _sign, zone_lines

from secdns.server import denial
from secdns.server.denial import index_of
from secdns.server.zone import ZoneVersion

ANSWER_ZONES = Path(__file__).parent / "zones" / "answer"


def _signed_version(tmp_path: Path, nsec3: str) -> ZoneVersion:
    text = (ANSWER_ZONES / "answer.example.zone").read_text().replace("answer.example", "s.test")
    lines = zone_lines(_sign(tmp_path, "s.test.", text, nsec3), "s.test.")
    return ZoneVersion.from_lines(dns.name.from_text("s.test."), lines)


def _denial_owner(version: ZoneVersion, mnemonic: str) -> tuple[str, tuple[str, ...]]:
    for key, (lines, _below) in version.iter_entries():
        if key != version.origin_key and any(f" {mnemonic} " in line for line in lines):
            return key, lines
    raise AssertionError(f"no {mnemonic} owner")


@pytest.mark.parametrize("nsec3", ["", "nsec3"])
def test_an_ixfr_brings_the_denial_index_up_to_date(
    tmp_path: Path, nsec3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mnemonic = "NSEC3" if nsec3 else "NSEC"
    first = _signed_version(tmp_path, nsec3)
    index = index_of(first)
    index.nsec_key_at_or_before(()) if not nsec3 else index.nsec3_chain()
    gone, gone_lines = _denial_owner(first, mnemonic)
    new_owner = "0000000000000000000000000000000a" if nsec3 else "aaa-new"
    new_lines = tuple(
        new_owner + line[line.find(".") if "." in line.split(" ", 1)[0] else line.find(" ") :]
        for line in gone_lines
        if f" {mnemonic} " in line
    )
    second = first.apply([(gone_lines, new_lines)], first.serial + 1)
    third = second.apply([((), ())], second.serial + 1)  # (an index never built between)
    built: list[int] = []
    for version in (second, third):
        for build in ("_built_nsec", "_built_nsec3"):  # (a rebuild from the owners shows)
            monkeypatch.setattr(denial.Index, build, lambda *_args: built.append(1))
        carried = index_of(version)
        got = carried.nsec3_chain() if nsec3 else (carried.nsec_key_at_or_before(()), carried._nsec)
        assert not built
        monkeypatch.undo()
        fresh = denial.Index(version)
        fresh_version_carried, version.carried = version.carried, None
        want = fresh.nsec3_chain() if nsec3 else (fresh.nsec_key_at_or_before(()), fresh._nsec)
        version.carried = fresh_version_carried
        assert got == want
        keys = got[1].values() if nsec3 else got[1][1]
        assert gone not in keys and any(key.startswith(new_owner) for key in keys)


@pytest.mark.parametrize("nsec3", ["", "nsec3"])
def test_the_filler_builds_a_signed_versions_denial_index(tmp_path: Path, nsec3: str) -> None:
    """After a load or full transfer the ready filler builds the denial index, so the
    first DO negative answer does not walk every owner."""
    from secdns.server import readyfill

    version = _signed_version(tmp_path, nsec3)
    readyfill._warm_denial(version)
    index = index_of(version)
    assert (index._nsec3 if nsec3 else index._nsec) is not None
    unsigned = ZoneVersion.from_lines(
        dns.name.from_text("u.test."), ["@ 60 IN SOA ns h 1 2 3 4 5", "@ 60 IN NS ns"]
    )
    readyfill._warm_denial(unsigned)
    assert index_of(unsigned)._nsec is None and index_of(unsigned)._nsec3 is None
