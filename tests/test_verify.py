"""``secdns verify``: the orchestration (secdns.verify), the command and its renderings,
and the consistency checks against real BIND and Knot servers on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import dns.asyncresolver
import dns.dnssec
import dns.name
import dns.rdataset
import dns.zone
import dns.zonetypes
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ed25519
from servers import LOOPBACK, ZONES_DIR, TsigKey, zone_text

from secdns.checks import CHECKS
from secdns.cli import cli
from secdns.cli.verify import command, finding_line, junit_xml, plain_lines, render_verify
from secdns.errors import NetworkError
from secdns.store import Store
from secdns.verify import verify_zone
from secdns.verify_report import ProbeStatus, ServerAnswer, VerifyOptions
from secdns.verify_servers import discover_nameservers, serial_findings

ORIGIN = dns.name.from_text("example.com.")
BROKEN = ZONES_DIR / "broken"
EXAMPLE = ZONES_DIR / "example.com.zone"
SERIAL = 2024010101


@pytest.fixture(autouse=True, scope="module")
def registered():
    """Register the command for these tests only, until secdns.cli registers it."""
    if cli.get_command(click.Context(cli), "verify") is not None:
        yield
        return
    cli.add_command(command)
    yield
    cli.commands.pop("verify", None)


def verify(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["verify", *args], input=input)


def lines(result) -> list[str]:
    return result.output.splitlines()


# --- files, exit status, plain lines ---------------------------------------------------------


def test_a_clean_zone_passes():
    result = verify("example.com", str(EXAMPLE))
    assert result.exit_code == 0, result.output + result.stderr
    (summary,) = lines(result)
    assert summary.startswith(
        "zone=example.com. result=passed errors=0 warnings=0 checks=26 passed=17 skipped=9 time="
    )


def test_quiet_prints_only_what_fails():
    """-q is "nothing but errors": a stranger's failing verify -q printed nothing at all
    (exit 1, no reason in the CI log); warnings too with --strict."""
    result = verify("example.com", str(BROKEN / "cname-and-other-data.zone"), "-q")
    assert result.exit_code == 1
    assert result.stdout == (
        "error integrity.cname-and-other-data www.example.com. CNAME: "
        "CNAME and other data (A) at one name (RFC 2181 10.1)\n"
    )
    clean = verify("example.com", str(EXAMPLE), "-q")
    assert (clean.exit_code, clean.stdout) == (0, "")


def test_json_is_a_document_when_the_command_cannot_run(tmp_path):
    """A stranger's ``--json | jq`` in CI read nothing when a source could not be read or
    reached: the error is then the document (as pull's), and still the stderr line."""
    import json

    missing = tmp_path / "missing.zone"
    result = verify("example.com", str(missing), "--json")
    assert result.exit_code == 7
    document = json.loads(result.stdout)
    assert document["result"] == "failed" and document["zone"] == "example.com."
    assert document["error"]["exit_code"] == 7 and str(missing) in document["error"]["message"]
    assert result.stderr.startswith("secdns: error: zone example.com.: ")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    diffed = CliRunner().invoke(
        cli, ["diff", "example.com", str(EXAMPLE), f"@127.0.0.1:{port}", "--json", "--timeout", "2"]
    )
    assert diffed.exit_code == 3, diffed.output
    assert json.loads(diffed.stdout)["error"]["error"] == "NetworkError"


def test_a_failed_check_is_exit_1_with_one_stable_line_per_finding():
    result = verify("example.com", str(BROKEN / "cname-and-other-data.zone"))
    assert result.exit_code == 1
    assert lines(result)[0] == (
        "error integrity.cname-and-other-data www.example.com. CNAME: "
        "CNAME and other data (A) at one name (RFC 2181 10.1)"
    )
    assert lines(result)[-1].startswith("zone=example.com. result=failed errors=1 warnings=0")
    assert result.stderr == ""


def test_warnings_pass_unless_strict():
    path = str(BROKEN / "ttl-mismatch.zone")
    result = verify("example.com", path)
    assert result.exit_code == 0
    assert lines(result)[0] == (
        "warning integrity.ttl-mismatch www.example.com. A: records of one RRset have "
        "different TTLs (300, 600); servers use one (BIND: the first) (RFC 2181 5.2)"
    )
    assert verify("example.com", path, "--strict").exit_code == 1


def test_a_zone_that_does_not_parse_is_a_failed_check_with_its_line():
    path = BROKEN / "parse-error.zone"
    result = verify("example.com", str(path))
    assert result.exit_code == 6  # bad data, as diff says for the same file
    assert lines(result)[0].startswith(f"error integrity.parse example.com.: {path}:8: bad A rdata")


def test_stdin_and_store_sources(tmp_path):
    result = verify("example.com", "-", input=(BROKEN / "two-cnames.zone").read_text())
    assert result.exit_code == 1
    assert "error integrity.cname-and-other-data www.example.com. CNAME: 2 CNAME" in result.output
    store = Store(tmp_path)
    store.ensure()
    store.zone_path(ORIGIN).write_text(EXAMPLE.read_text())
    assert verify("example.com", str(tmp_path)).exit_code == 0
    missing = verify("example.org", str(tmp_path))
    assert missing.exit_code == 7 and "holds no copy of example.org." in missing.stderr


def test_a_store_copy_edited_by_hand_fails_integrity_store(bind_primary, tmp_path):
    """A store's copy is held to the SHA-256 its state keeps: a hand edit (a stranger's
    ``evil A`` line) is an error naming the file, where it passed."""
    primary = bind_primary()
    pulled = CliRunner().invoke(
        cli, ["pull", "example.com", f"@{primary.addr}", "-d", str(tmp_path)]
    )
    assert pulled.exit_code == 0, pulled.output
    assert verify("example.com", str(tmp_path)).exit_code == 0
    path = Store(tmp_path).zone_path(ORIGIN)
    path.write_text(path.read_text() + "evil 300 IN A 192.0.2.66\n")
    result = verify("example.com", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "error integrity.store example.com.: example.com.zone was changed outside secdns" in (
        result.output
    )


def test_several_files_name_their_source():
    a, b = str(BROKEN / "two-soa.zone"), str(EXAMPLE)
    result = verify("example.com", a, b)
    assert result.exit_code == 1
    assert lines(result)[0].endswith(f"(RFC 1035 5.2) [{a}]")


def test_usage_errors_are_exit_2():
    cases = [
        ((), "usage: secdns verify ZONE"),
        (("example.com",), "nothing to verify"),
        (("example.com", str(EXAMPLE), "--check", "integrity.sao"), "unknown check"),
        (
            (
                "example.com",
                str(EXAMPLE),
                "--skip",
                "integrity",
                "--skip",
                "dnssec",
                "--skip",
                "consistency",
            ),
            "leave no check",
        ),
        (("example.com", "-", "-"), "'-' (stdin) can be given once"),
        (("example.com", "@127.0.0.1:99999"), "port out of range"),
        (("example.com", str(EXAMPLE), "--deep"), "--deep transfers from servers"),
    ]
    for args, message in cases:
        result = verify(*args)
        assert result.exit_code == 2, (args, result.output, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1


def test_help_and_list_checks():
    result = verify("-h")
    assert (
        result.exit_code == 0
        and "Examples:" in result.output
        and "--sig-warn-days" in result.output
    )
    listed = verify("--list-checks")
    assert [line.split()[0] for line in lines(listed)] == list(CHECKS)
    as_json = json.loads(verify("--list-checks", "--json").output)
    assert as_json["checks"][0] == {
        "id": "integrity.parse",
        "family": "integrity",
        "title": "The zone file parses",
        "rfc": "RFC 1035 5.1",
    }


def test_check_and_skip_select_checks():
    path = str(BROKEN / "cname-and-other-data.zone")
    assert verify("example.com", path, "--skip", "integrity.cname-and-other-data").exit_code == 0
    doc = json.loads(verify("example.com", path, "--check", "integrity.soa", "--json").output)
    assert [c["id"] for c in doc["checks"]] == ["integrity.soa"]
    assert doc["result"] == "passed" and doc["findings"] == []


# --- JSON, JUnit, rich -------------------------------------------------------------------------


def test_json_document():
    result = verify("example.com", str(BROKEN / "targets-are-cnames.zone"), "--json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert {k: doc[k] for k in ("zone", "result", "strict", "exit_code", "errors", "warnings")} == {
        "zone": "example.com.",
        "result": "passed",
        "strict": False,
        "exit_code": 0,
        "errors": 0,
        "warnings": 3,
    }
    status = {c["id"]: c["status"] for c in doc["checks"]}
    assert status["integrity.target-is-cname"] == "warning"
    assert status["integrity.soa"] == "passed"
    assert status["dnssec.signature"] == "skipped" and status["consistency.serial"] == "skipped"
    assert doc["findings"][0] == {
        "check": "integrity.target-is-cname",
        "severity": "warning",
        "owner": "_sip._tcp.example.com.",
        "type": "SRV",
        "message": "SRV target alias.example.com. is a CNAME",
        "rfc": "RFC 2782",
        "source": str(BROKEN / "targets-are-cnames.zone"),
    }
    assert doc["copies"] == [
        {
            "source": str(BROKEN / "targets-are-cnames.zone"),
            "kind": "file",
            "serial": SERIAL,
            "records": 7,
        }
    ]
    strict = json.loads(
        verify("example.com", str(BROKEN / "targets-are-cnames.zone"), "--json", "--strict").output
    )
    assert strict["result"] == "failed" and strict["exit_code"] == 1


def test_junit_has_one_test_case_per_check(tmp_path):
    out = tmp_path / "verify.xml"
    result = verify(
        "example.com", str(BROKEN / "cname-loop.zone"), "--junit", str(out), "--skip", "consistency"
    )
    assert result.exit_code == 1
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == [c for c in CHECKS if not c.startswith("consistency.")]
    assert suite.get("tests") == "22" and suite.get("failures") == "1"
    assert suite.get("skipped") == "5"  # (the DNSSEC ones, and integrity.store: a file)
    failure = cases["integrity.cname-loop"].find("failure")
    assert failure is not None and failure.get("message") == (
        "CNAME chains inside the zone end: 2 errors, 0 warnings"
    )
    assert "CNAME loop: self.example.com. -> self.example.com." in (failure.text or "")
    assert list(cases["integrity.soa"]) == []  # passed: an empty test case
    assert cases["dnssec.zonemd"].find("skipped") is not None


def test_junit_warnings_are_output_or_failures_with_strict(tmp_path):
    path = str(BROKEN / "soa-timers.zone")
    verify("example.com", path, "--junit", str(tmp_path / "a.xml"))
    case = ET.parse(tmp_path / "a.xml").find(".//testcase[@name='integrity.soa-timers']")
    assert case is not None and case.find("failure") is None
    assert "retry (86400) is not shorter than refresh" in (case.findtext("system-out") or "")
    verify("example.com", path, "--junit", str(tmp_path / "b.xml"), "--strict")
    case = ET.parse(tmp_path / "b.xml").find(".//testcase[@name='integrity.soa-timers']")
    assert case is not None and case.find("failure") is not None


def report_of(*specs: str, **options):
    return asyncio.run(verify_zone(ORIGIN, list(specs), VerifyOptions(**options)))


def test_rich_table_groups_findings_by_check():
    report = report_of(str(BROKEN / "targets-without-address.zone"))
    stream = io.StringIO()
    render_verify(report, as_json=False, quiet=False, stream=stream, rich=True, width=100)
    text = stream.getvalue()
    assert text.count("integrity.target-address") == 1  # one group, three rows
    assert "In-zone NS, MX and SRV targets have address records" in text
    assert text.count("│ warning │") == 3
    assert "passed: integrity.parse, integrity.soa," in text
    assert "nothing to check: integrity.store, dnssec.rrsig-validity" in text
    assert "example.com. passed: 0 errors, 3 warnings, 26 checks" in text
    assert junit_xml(report).startswith("<?xml")


# --- DNSSEC and ZONEMD through the command ---------------------------------------------------


def signed_file(tmp_path: Path, *, expires_in_days: float, tamper: bool = False) -> Path:
    ksk = ed25519.Ed25519PrivateKey.generate()
    zsk = ed25519.Ed25519PrivateKey.generate()
    zone = dns.zone.from_text(EXAMPLE.read_text(), ORIGIN, relativize=False)
    now = time.time()
    with zone.writer() as txn:
        dns.dnssec.sign_zone(
            zone,
            txn,
            keys=[
                (ksk, dns.dnssec.make_dnskey(ksk.public_key(), "ED25519", flags=257)),
                (zsk, dns.dnssec.make_dnskey(zsk.public_key(), "ED25519")),
            ],
            inception=now - 86400,
            expiration=now + expires_in_days * 86400,
        )
        if tamper:
            txn.replace(
                dns.name.from_text("mail", ORIGIN),
                dns.rdataset.from_text("IN", "A", 300, "192.0.2.66"),
            )
    path = tmp_path / "signed.zone"
    path.write_text(zone.to_text(want_origin=True))
    return path


def test_signatures_about_to_expire(tmp_path):
    path = str(signed_file(tmp_path, expires_in_days=3))
    result = verify("example.com", path)
    assert result.exit_code == 0
    warnings = [line for line in lines(result) if line.startswith("warning dnssec.rrsig")]
    # one line a key, for its first signature to expire, with how many more there are (a
    # stranger's zone signed for 2 h made a line a signature: 10,040 of them)
    assert 1 <= len(warnings) <= 2, warnings
    assert "expires in 3.0 days" in warnings[0]
    assert "more signatures by this key expire within 7 days (--sig-warn-days)" in warnings[0]
    assert verify("example.com", path, "--strict").exit_code == 1
    assert verify("example.com", path, "--sig-warn-days", "2").output.startswith("zone=")


def test_expired_and_tampered_signatures(tmp_path):
    result = verify("example.com", str(signed_file(tmp_path, expires_in_days=-0.5)), "--json")
    doc = json.loads(result.output)
    assert result.exit_code == 1
    assert {f["check"] for f in doc["findings"]} == {"dnssec.rrsig-validity"}
    assert all(f["severity"] == "error" and "expired" in f["message"] for f in doc["findings"])
    # one line a key past 10, as for those about to expire (a stranger's zone signed in
    # 2020 made a line a signature)
    assert 1 <= len(doc["findings"]) <= 2, doc["findings"]
    assert "more signatures by this key expired too" in doc["findings"][0]["message"]
    tampered = verify("example.com", str(signed_file(tmp_path, expires_in_days=30, tamper=True)))
    assert tampered.exit_code == 1
    assert lines(tampered)[0].startswith(
        "error dnssec.signature mail.example.com. A: signature by key tag"
    )


def test_zonemd_through_the_command(tmp_path):
    zone = dns.zone.from_text(EXAMPLE.read_text(), ORIGIN, relativize=False)
    zonemd = zone.compute_digest(dns.zonetypes.DigestHashAlgorithm.SHA384)
    with zone.writer() as txn:
        txn.add(ORIGIN, 3600, zonemd)
    path = tmp_path / "zonemd.zone"
    path.write_text(zone.to_text(want_origin=True))
    assert verify("example.com", str(path)).exit_code == 0
    path.write_text(path.read_text().replace("192.0.2.80", "192.0.2.8"))
    result = verify("example.com", str(path))
    assert result.exit_code == 1
    assert lines(result)[0].startswith(
        "error dnssec.zonemd example.com. ZONEMD: SHA384 digest does not match"
    )


# --- consistency across servers ----------------------------------------------------------------


def test_serial_findings_are_pure():
    answers = [
        ServerAnswer("@a", "192.0.2.1:53", ProbeStatus.OK, 42),
        ServerAnswer("@b", "192.0.2.2:53", ProbeStatus.OK, 41),
        ServerAnswer("@c", "192.0.2.3:53", ProbeStatus.LAME, None, "REFUSED to SOA"),
        ServerAnswer("@d", "192.0.2.4:53", ProbeStatus.TIMEOUT, None, "no answer"),
    ]
    findings = serial_findings("example.com.", answers)
    assert {(f.check, f.source) for f in findings} == {
        ("consistency.authoritative", "192.0.2.3:53"),
        ("consistency.reachable", "192.0.2.4:53"),
        ("consistency.serial", "192.0.2.2:53"),
    }
    serial = next(f for f in findings if f.check == "consistency.serial")
    assert serial.message == "serial 41 at 192.0.2.2:53 is behind serial 42 at 192.0.2.1:53"
    # RFC 1982: 1 is newer than 4294967295
    wrapped = serial_findings(
        "example.com.",
        [
            ServerAnswer("@a", "a", ProbeStatus.OK, 4294967295),
            ServerAnswer("@b", "b", ProbeStatus.OK, 1),
        ],
    )
    assert [f.source for f in wrapped] == ["a"]


def test_serials_drift_between_bind_and_knot(bind_primary, knot_primary):
    bind = bind_primary()
    knot = knot_primary()
    servers = [f"@{bind.addr}", f"@{knot.addr}"]
    same = verify("example.com", *servers)
    assert same.exit_code == 0, same.output + same.stderr
    assert lines(same)[:2] == [
        f"server {bind.addr} status=ok serial={SERIAL} name=@{bind.addr}",
        f"server {knot.addr} status=ok serial={SERIAL} name=@{knot.addr}",
    ]

    bind.nsupdate("update add new.example.com. 300 A 192.0.2.7")
    bind.wait_for_serial("example.com", SERIAL + 1)
    drift = verify("example.com", *servers)
    assert drift.exit_code == 1
    assert lines(drift)[0] == (
        f"error consistency.serial example.com. SOA: serial {SERIAL} at {knot.addr} is behind "
        f"serial {SERIAL + 1} at {bind.addr} (RFC 1034 4.3.5) [{knot.addr}]"
    )

    deep = json.loads(verify("example.com", *servers, "--deep", "--json").output)
    content = [f for f in deep["findings"] if f["check"] == "consistency.content"]
    assert len(content) == 1 and content[0]["source"] == knot.addr
    assert content[0]["message"] == (
        f"{knot.addr} differs from {bind.addr}: 1 record missing, 0 extra, 0 with another "
        "TTL (e.g. -new.example.com. 300 IN A 192.0.2.7)"
    )
    # both copies were checked (and are clean)
    assert sorted(c["source"] for c in deep["copies"]) == sorted([bind.addr, knot.addr])
    assert {f["check"] for f in deep["findings"]} == {"consistency.serial", "consistency.content"}


def test_deep_with_identical_copies_checks_the_data_once(bind_primary, knot_primary):
    broken = (BROKEN / "targets-are-cnames.zone").read_text()
    bind = bind_primary({"example.com": broken})
    knot = knot_primary({"example.com": broken})
    doc = json.loads(
        verify("example.com", f"@{bind.addr}", f"@{knot.addr}", "--deep", "--json").output
    )
    assert [c["source"] for c in doc["copies"]] == [f"{bind.addr}, {knot.addr}"]
    assert [f["check"] for f in doc["findings"]] == ["integrity.target-is-cname"] * 3
    assert doc["exit_code"] == 0


def test_lame_and_silent_servers(bind_primary):
    other = bind_primary({"example.org": zone_text().replace("example.com", "example.org")})
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind((LOOPBACK, 0))
    silent_addr = f"{LOOPBACK}:{silent.getsockname()[1]}"
    try:
        result = verify(
            "example.com", f"@{other.addr}", f"@{silent_addr}", "--timeout", "0.3", "--json"
        )
    finally:
        silent.close()
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert {s["address"]: (s["status"], s["serial"]) for s in doc["servers"]} == {
        other.addr: ("lame", None),
        silent_addr: ("timeout", None),
    }
    assert [(f["check"], f["source"]) for f in doc["findings"]] == [
        ("consistency.authoritative", other.addr),
        ("consistency.reachable", silent_addr),
    ]
    lame, silence = doc["findings"]
    assert "REFUSED to SOA query for example.com." in lame["message"]
    assert "does not answer: no answer to the SOA query within 0.3s" in silence["message"]


def test_deep_transfers_use_tsig(bind_primary, tmp_path):
    key = TsigKey.generate("xfr")
    bind = bind_primary(tsig={"xfr": (key.algorithm, key.secret)}, allow_transfer_key="xfr")
    refused = json.loads(verify("example.com", f"@{bind.addr}", "--deep", "--json").output)
    assert [(f["check"], f["severity"]) for f in refused["findings"]] == [
        ("consistency.content", "error")
    ]
    assert "cannot transfer the zone from" in refused["findings"][0]["message"]
    signed = verify(
        "example.com",
        f"@{bind.addr}",
        "--deep",
        "--tsig",
        f"{key.algorithm}:{key.name}:{key.secret}",
    )
    assert signed.exit_code == 0, signed.output
    config = tmp_path / "secdns.toml"
    config.write_text(f'[keys.xfr]\nalgorithm = "{key.algorithm}"\nsecret = "{key.secret}"\n')
    named = verify("example.com", f"@{bind.addr}", "--deep", "-c", str(config), "--key", "xfr")
    assert named.exit_code == 0, named.output + named.stderr


def test_nameservers_auto_looks_up_the_ns_set(bind_primary):
    bind = bind_primary()
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [LOOPBACK]
    resolver.port = bind.port
    targets, findings = asyncio.run(discover_nameservers(ORIGIN, resolver, timeout=2.0))
    assert [(t.server, t.label) for t in targets] == [
        ("ns1.example.com.", "192.0.2.53:53"),
        ("ns1.example.com.", "[2001:db8::53]:53"),
    ]
    # ns2.example.net. is not in any zone this server has: no address
    assert [(f.check, f.rdtype, f.message) for f in findings] == [
        ("consistency.reachable", "NS", "name server ns2.example.net. has no IPv4 or IPv6 address")
    ]


def test_plain_rendering_of_servers_and_sources():
    report = report_of(str(BROKEN / "two-soa.zone"), str(EXAMPLE))
    rendered = plain_lines(report)
    assert rendered[0] == finding_line(report.findings[0], with_source=True)
    assert rendered[-1].startswith("zone=example.com. result=failed errors=1")


def test_a_check_asked_for_that_finds_nothing_to_check_fails(tmp_path):
    """A stranger's ``--check dnssec`` passed an unsigned zone (every check skipped),
    where dnssec-verify and ldns-verify-zone fail it: what --check names (a check, or all
    of a family) that checks nothing is an error saying why; a family some of whose
    checks ran passes (a signed zone without ZONEMD)."""
    unsigned = verify("example.com", str(EXAMPLE), "--check", "dnssec")
    assert unsigned.exit_code == 1, unsigned.output
    assert lines(unsigned)[0] == (
        "error dnssec.rrsig-validity example.com.: --check dnssec was asked for, but "
        "nothing was checked: the zone is not signed (no DNSKEY at its apex) (RFC 4034 3.1.5)"
    )
    signed = str(signed_file(tmp_path, expires_in_days=30))
    assert verify("example.com", signed, "--check", "dnssec").exit_code == 0
    zonemd = verify("example.com", signed, "--check", "dnssec.zonemd")
    assert zonemd.exit_code == 1 and "no ZONEMD at its apex" in zonemd.output
    content = verify("example.com", str(EXAMPLE), "--check", "integrity,consistency.content")
    assert content.exit_code == 1 and "give --deep" in content.output
    assert verify("example.com", str(EXAMPLE), "--skip", "dnssec").exit_code == 0


def test_no_server_answering_leaves_serial_and_authoritative_unchecked():
    """One server, unreachable: reachable fails, and serial and authoritative are
    skipped (nothing answered to compare), not passed."""
    import json

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = verify("example.com", f"@127.0.0.1:{port}", "--json", "--timeout", "2")
    statuses = {c["id"]: c["status"] for c in json.loads(result.stdout)["checks"]}
    assert statuses["consistency.reachable"] == "failed", statuses
    assert statuses["consistency.serial"] == statuses["consistency.authoritative"] == "skipped"


def test_an_ns_set_that_cannot_be_looked_up_is_a_finding_beside_a_file():
    """--nameservers auto with a zone file: the NS look-up failing is a reachable error,
    the file's checks still reported (a stranger's run stopped with exit 3, the file
    unchecked); alone, it still ends the run as a network failure."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    report = report_of(str(EXAMPLE), nameservers_auto=True, resolver=resolver, timeout=1.0)
    reachable = [f for f in report.findings if f.check == "consistency.reachable"]
    assert len(reachable) == 1 and reachable[0].source == "--nameservers auto", reachable
    assert "integrity.soa" in report.ran and report.exit_code() == 1
    with pytest.raises(NetworkError):
        report_of(nameservers_auto=True, resolver=resolver, timeout=1.0)
