"""``secdns pull`` writes what the primary sent, as dig shows it (issue 11): names in
rdata keep the case of their zone part, and empty unknown-type rdata has no
trailing space.  Against a real BIND primary, then read back by BIND and secdns."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.name
from click.testing import CliRunner
from servers import need_binary

from secdns.cli import cli
from secdns.diff import diff_zones, name_rdata
from secdns.masterfile import read_master

ORIGIN = "d-upper.test."
ZONE = """$ORIGIN d-upper.test.
$TTL 300
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.1
www     A   192.0.2.2
alias   CNAME WWW.D-UPPER.TEST.
same    CNAME www.d-upper.test.
mail    MX  10 Mail.D-Upper.Test.
empty   TYPE65280 \\# 0
"""


def _lines(path: Path) -> dict[str, str]:
    """owner+type -> the whole line, for the records of a written zone file."""
    out = {}
    for line in path.read_text().splitlines():
        if line and line[0] not in ";$":
            owner, _ttl, _class, rdtype, _ = line.split(" ", 4)
            out[f"{owner} {rdtype}"] = line
    return out


def test_pull_keeps_rdata_names_and_empty_rdata_as_sent(bind_primary, tmp_path: Path) -> None:
    primary = bind_primary({"d-upper.test": ZONE})
    out = tmp_path / "d-upper.test.zone"
    result = CliRunner().invoke(cli, ["pull", ORIGIN, f"@{primary.addr}", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    lines = _lines(out)
    assert lines["empty TYPE65280"] == "empty 300 IN TYPE65280 \\# 0"
    assert lines["alias CNAME"] == "alias 300 IN CNAME WWW.D-UPPER.TEST."
    assert lines["same CNAME"] == "same 300 IN CNAME www"
    assert lines["mail MX"] == "mail 300 IN MX 10 Mail.D-Upper.Test."
    assert not [line for line in out.read_text().splitlines() if line.endswith(" ")]

    # dig shows the same names; BIND and secdns read the file back as it was sent
    dig = subprocess.run(
        [need_binary("dig"), "-p", str(primary.port), f"@{primary.host}", "+short"]
        + ["alias.d-upper.test.", "CNAME"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert dig.stdout.strip() == "WWW.D-UPPER.TEST."
    check = subprocess.run(
        [need_binary("named-checkzone"), "-i", "local", "-D", ORIGIN, str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "WWW.D-UPPER.TEST." in check.stdout
    records = read_master(out.read_text(), dns.name.from_text(ORIGIN)).records
    texts = {(rec.owner, rec.rdata) for rec in records}
    assert {("alias", "WWW.D-UPPER.TEST."), ("empty", "\\# 0"), ("same", "www")} <= texts


def test_diff_still_ignores_the_case_of_names() -> None:
    """A name kept absolute for its case compares equal to the relative one (RFC 4343)."""
    origin = dns.name.from_text(ORIGIN)
    faithful = read_master(ZONE, origin).records
    lowered = read_master(ZONE.lower().replace("type65280", "TYPE65280"), origin).records
    assert {rec.rdata for rec in faithful} >= {"WWW.D-UPPER.TEST.", "10 Mail.D-Upper.Test."}
    assert {rec.rdata for rec in lowered} >= {"www", "10 mail"}
    assert diff_zones(origin, faithful, lowered).same
    assert diff_zones(origin, faithful, lowered, ignore_serial=True).same
    assert name_rdata("A\\.D-UPPER.TEST. D-UPPER.TEST. X.D-UPPER.TEST.", ORIGIN) == (
        "a\\.d-upper.test. @ x"
    )
