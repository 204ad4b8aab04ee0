"""The command line: usage errors, help, version, init and the offline demo."""

from __future__ import annotations

import json
import os
import stat
import tomllib

from click.testing import CliRunner

from secdns import __version__
from secdns.cli import cli
from secdns.config import load_config


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version_and_short_help():
    assert run("--version").output.strip() == f"secdns, version {__version__}"
    for args in (["-h"], ["pull", "-h"], ["init", "-h"], ["demo", "-h"]):
        result = run(*args)
        assert result.exit_code == 0
        assert "Usage: secdns" in result.output
        assert "Example" in result.output


def test_unknown_option_suggests_closest():
    result = run("pull", "--axrf")
    assert result.exit_code == 2
    assert "Did you mean '--axfr'?" in result.stderr


def test_pull_usage_errors_are_exit_2():
    cases = [
        (["pull"], "usage: secdns pull ZONE @PRIMARY"),
        (["pull", "example.com"], "usage: secdns pull ZONE @PRIMARY"),
        (["pull", "example.com", "@127.0.0.1"], "say where the zone goes"),
        (["pull", "example.com", "@127.0.0.1:99999", "-o", "-"], "port out of range"),
        (["pull", "example.com", "@[::1", "-o", "-"], "missing ']'"),
        (["pull", "example..com", "@127.0.0.1", "-o", "-"], "bad zone name"),
        (
            ["pull", "example.com", "@127.0.0.1", "-o", "-", "--tsig", "sha1:k:abc"],
            "unknown TSIG algorithm",
        ),
        (
            ["pull", "example.com", "@127.0.0.1", "-o", "-", "--tsig", "k:not base64!"],
            "not valid base64",
        ),
        (  # every problem of a key at once (the algorithm hid the secret)
            ["pull", "example.com", "@127.0.0.1", "-o", "-", "--tsig", "sha257:k:not base64!"],
            "unknown TSIG algorithm 'sha257'",
        ),
        (
            ["pull", "example.com", "@127.0.0.1", "-o", "-", "--tsig", "sha257:k:not base64!"],
            "; the secret of key 'k' is not valid base64",
        ),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_pull_network_failure_is_exit_3(tmp_path):
    # nothing listens on this port: the SOA probe times out or is refused
    result = run(
        "pull", "example.com", "@127.0.0.1:9", "-o", str(tmp_path / "z"), "--timeout", "0.2"
    )
    assert result.exit_code == 3, result.stderr
    assert result.stderr.startswith("secdns: error: zone example.com., server 127.0.0.1:9:")


def test_init_writes_a_valid_config(tmp_path):
    path = tmp_path / "secdns.toml"
    result = run(
        "init",
        "-c",
        str(path),
        "example.com",
        "@192.0.2.1",
        "@[2001:db8::1]:5300",
        "example.org",
        "@198.51.100.7",
        "--tsig",
        "xfr:c2VjcmV0",
    )
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(path.read_text())
    assert doc["zone"][0] == {
        "name": "example.com.",
        "primaries": ["192.0.2.1:53", "[2001:db8::1]:5300"],
        "key": "xfr",
        "allow_transfer": [],
    }
    assert doc["keys"]["xfr"]["algorithm"] == "hmac-sha256"
    config = load_config(path)
    assert [z.text for z in config.zones] == ["example.com.", "example.org."]
    again = run("init", "-c", str(path), "example.com", "@192.0.2.1")
    assert again.exit_code == 2 and "--force" in again.stderr


def test_init_with_a_key_writes_a_file_only_its_owner_reads(tmp_path, caplog):
    """--tsig: the config holds a secret, so it is made 0600 whatever the umask (at 022
    it was 0644, and every later command warned about the file init had just written);
    without a key, 0644 as any file; --force over a 0644 file with a key: 0600."""
    old = os.umask(0o022)
    try:
        plain, keyed = tmp_path / "plain.toml", tmp_path / "keyed.toml"
        assert run("init", "-c", str(plain), "example.com", "@192.0.2.1").exit_code == 0
        assert stat.S_IMODE(plain.stat().st_mode) == 0o644
        args = ["example.com", "@192.0.2.1", "--tsig", "xfr:c2VjcmV0"]
        assert run("init", "-c", str(keyed), *args).exit_code == 0
        assert run("init", "-c", str(plain), "--force", *args).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(keyed.stat().st_mode) == 0o600
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    caplog.clear()
    load_config(keyed)
    assert "readable by group and others" not in caplog.text


def test_bad_config_reports_every_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("""
[server]
directory = "zones"
concurrency = -1
[keys.k]
algorithm = "hmac-sha999"
secret = "c2VjcmV0"
[[zone]]
name = "example.com"
primaries = ["192.0.2.1:70000"]
key = "nokey"
[[zone]]
primaries = ["192.0.2.1"]
""")
    result = run("pull", "-c", str(path))
    assert result.exit_code == 2
    err = result.stderr
    for fragment in (
        "server.concurrency",
        "hmac-sha999",
        "port out of range",
        "nokey",
        "zone[1].name",
    ):
        assert fragment in err, err
    # a bad primary is its problem, not also a missing setting (a stranger's got both)
    assert "zone[0] (example.com).primaries" in err and "needs primaries" not in err, err


def test_demo_runs_offline(tmp_path):
    result = run("demo", "-d", str(tmp_path))
    assert result.exit_code == 0, result.output + result.stderr
    out = result.stdout
    assert "kind=AXFR" in out and "kind=IXFR" in out
    assert "after the NOTIFY (IXFR, +2 -1)" in out
    assert "+api 300 IN A 192.0.2.99" in out
    assert "   identical" in out and "0 errors" in out
    assert out.strip().endswith(f"== done: files in {tmp_path}")
    assert (tmp_path / "pulled" / "example.test.zone").exists()
    assert (tmp_path / "serve" / "example.test.journal").exists()


def test_pull_json_output(tmp_path):
    from fakeprimary import FakePrimary
    from test_pull_hostile import ORIGIN, axfr_of, full, soa

    with FakePrimary(axfr_of(full(10)), soa(10)) as primary:
        result = run("pull", ORIGIN, primary.addr, "-d", str(tmp_path), "--json")
        again = run("pull", ORIGIN, primary.addr, "-d", str(tmp_path), "--json")
    doc = json.loads(result.stdout)
    assert doc["status"] == "transferred" and doc["kind"] == "AXFR"
    assert doc["serial_to"] == 10 and doc["records"] == 4 and doc["error"] is None
    assert json.loads(again.stdout)["status"] == "up-to-date"


def test_pull_to_stdout(tmp_path):
    from fakeprimary import FakePrimary
    from test_pull_hostile import ORIGIN, axfr_of, full, soa

    with FakePrimary(axfr_of(full(10)), soa(10)) as primary:
        result = run("pull", ORIGIN, primary.addr, "-o", "-", "-q")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith("; sha256 ")  # as -o FILE ends
    assert result.stdout.splitlines()[1:-1] == [
        "$ORIGIN example.com.",
        "$TTL 3600",
        "@ 3600 IN SOA ns1 host 10 7200 900 1209600 300",
        "@ 3600 IN NS ns1",
        "ns1 3600 IN A 192.0.2.1",
        "www 300 IN A 192.0.2.80",
    ]
    assert result.stderr == ""
