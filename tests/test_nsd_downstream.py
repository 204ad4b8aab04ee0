"""NSD as a downstream (secondary) of ``secdns serve``: what an operator with NSD
secondaries relies on.

NSD is set up as nsd.conf(5) sets up a secondary (`Nsd.start_secondary`):
``request-xfr: ADDR@PORT KEY`` (AXFR for its first copy, then IXFR over TCP) and
``allow-notify: ADDR KEY``; serve NOTIFYs it signed with the same key
(``notify = ["ADDR:PORT key:NAME"]``).  A wrong key gets NSD nothing and serve's log
says who, for which zone, with which key; changes made by reloading serve's master
file reach NSD by IXFR from serve's journal, and NSD answers the new data; after a
restart of serve the IXFR is answered with the whole zone, and says so.

NSD answers a NOTIFY whose TSIG fails NOTAUTH without the question section: serve
took that for no answer at all, and retried as if NSD were down (the last test).
"""

from __future__ import annotations

import logging
from pathlib import Path

import dns.query
import dns.rcode
import dns.zone
import pytest
from servers import Nsd, ServerError, TsigKey, free_port, tsig_secret
from serving import ServerThread, write_config

ZONE_FILE = Path(__file__).parent / "zones" / "example.com.zone"
ZONE = "example.com"
SERIAL = 2024010101
KEY = "down-key"

# Three changes, one a serial: a record added, one replaced, one deleted (in an IXFR:
# an addition; a deletion and an addition; a deletion).
CHANGES = (
    ("", "added 300 IN A 192.0.2.222\n"),
    ("www                 A     192.0.2.81\n", "www                 A     192.0.2.82\n"),
    ("mail        300     AAAA  2001:db8::25\n", ""),
)


@pytest.fixture
def served():
    """Start serve (`ServerThread`); stop each at teardown."""
    started: list[ServerThread] = []

    def start(config: Path) -> ServerThread:
        started.append(ServerThread(config))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _serving(served, tmp_path: Path, key: TsigKey, nsd_port: int) -> tuple[ServerThread, Path]:
    """serve of tmp_path/primary.zone, transfers allowed to `key` only, NOTIFYing
    127.0.0.1:`nsd_port` signed with it: (the server, its master file)."""
    zone_file = tmp_path / "primary.zone"
    zone_file.write_text(ZONE_FILE.read_text())
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[
            {
                "name": ZONE,
                "file": str(zone_file),
                "notify": [f"127.0.0.1:{nsd_port} key:{key.name}"],
                "allow_transfer": [f"key:{key.name}"],
            }
        ],
        keys={key.name: {"algorithm": key.algorithm, "secret": key.secret}},
    )
    config.chmod(0o600)  # (it holds a secret: serve would warn)
    return served(config), zone_file


def _changed(rounds: int) -> str:
    """The master file `rounds` changes on (CHANGES), its serial SERIAL + rounds."""
    text = ZONE_FILE.read_text().replace(f"{SERIAL} ; serial", f"{SERIAL + rounds} ; serial")
    for old, new in CHANGES[:rounds]:
        if old:
            assert old in text, old
            text = text.replace(old, new)
        else:
            text += new
    return text


def _xfr_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("xfr: zone=")]


def _axfr(host: str, port: int, key: TsigKey | None = None) -> dns.zone.Zone:
    keyring = key.keyring if key is not None else None
    return dns.zone.from_xfr(dns.query.xfr(host, ZONE, port=port, keyring=keyring, timeout=5))


def _assert_nsd_answers_the_changes(nsd: Nsd) -> None:
    """NSD answers what CHANGES made: the record added, the one replaced, the one gone."""
    assert nsd.query("added.example.com.", "A").answer[0][0].address == "192.0.2.222"
    www = nsd.query("www.example.com.", "A")
    assert sorted(rd.address for rd in www.answer[0]) == ["192.0.2.80", "192.0.2.82"]
    gone = nsd.query("mail.example.com.", "AAAA")
    assert gone.rcode() == dns.rcode.NOERROR and not gone.answer, gone
    assert nsd.query("mail.example.com.", "A").answer[0][0].address == "192.0.2.25"


@pytest.mark.parametrize(
    ("wrong", "error"),
    [("secret", "BADSIG"), ("name", "BADKEY")],
    ids=["wrong-secret", "unknown-key"],
)
def test_nsd_with_a_wrong_key_gets_nothing_and_serve_says_why(
    wrong, error, nsd_secondary, served, tmp_path, caplog
):
    """NSD whose key is not serve's (the right name with another secret, or a name serve
    does not know) gets no copy of the zone, and serve logs one warning naming the
    zone, the transfer, the key, the client and the TSIG error (never the secret)."""
    caplog.set_level(logging.INFO, logger="secdns")
    key = TsigKey.generate(KEY)
    if wrong == "secret":
        nsd_key = TsigKey(key.name, key.algorithm, tsig_secret())
    else:
        nsd_key = TsigKey.generate("other-key")
    nsd_port = free_port()
    server, _ = _serving(served, tmp_path, key, nsd_port)
    with pytest.raises(ServerError, match="did not answer SOA for example.com"):
        nsd_secondary({ZONE: ("127.0.0.1", server.port)}, key=nsd_key, port=nsd_port, timeout=3)
    workdir = tmp_path / "nsd-secondary-0"
    assert not (workdir / "secondary" / f"{ZONE}.zone").exists()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tsig:")]
    # NSD asks again and again; the warning is said once a minute per client and key
    assert len(lines) == 1, lines
    assert (
        f"{ZONE}. AXFR signed with key {nsd_key.name}.: {error} from 127.0.0.1 over tcp: "
        "answered NOTAUTH" in lines[0]
    ), lines
    said = "".join(r.getMessage() for r in caplog.records)
    assert key.secret not in said and nsd_key.secret not in said
    assert not _xfr_lines(caplog)
    counts = server.server.operations.metrics.transfers_out.counts
    assert not any(result == "ok" for _kind, result in counts), counts


def test_changes_in_a_row_reach_nsd_by_ixfr(nsd_secondary, served, tmp_path, caplog):
    """Three reloads of serve's master file (serial +1, +2, +3), each NOTIFYed: NSD
    takes each by IXFR of that one change from serve's journal, signed, and answers
    the new data; its copy is then serve's, record for record."""
    caplog.set_level(logging.INFO, logger="secdns")
    key = TsigKey.generate(KEY)
    nsd_port = free_port()
    server, zone_file = _serving(served, tmp_path, key, nsd_port)
    nsd = nsd_secondary({ZONE: ("127.0.0.1", server.port)}, key=key, port=nsd_port)
    assert nsd.soa_serial(ZONE) == SERIAL
    for rounds in range(1, len(CHANGES) + 1):
        zone_file.write_text(_changed(rounds))
        server.call(server.server.reload)  # as on SIGHUP
        nsd.wait_for_serial(ZONE, SERIAL + rounds, timeout=10)  # NOTIFY, not its refresh
    sent = _xfr_lines(caplog)  # (before the AXFR below, which is one more)
    _assert_nsd_answers_the_changes(nsd)
    assert _axfr(nsd.host, nsd.port) == _axfr("127.0.0.1", server.port, key)

    assert len(sent) == 1 + len(CHANGES), sent
    assert " AXFR to 127.0.0.1#" in sent[0] and f" key {KEY}. serial {SERIAL}:" in sent[0]
    for rounds, line in enumerate(sent[1:], 1):
        assert " IXFR to 127.0.0.1#" in line and f" key {KEY}. " in line, line
        assert f"serial {SERIAL + rounds - 1} -> {SERIAL + rounds}: 1 messages" in line, line
    log = nsd.log_path.read_text()
    for rounds in range(1, len(CHANGES) + 1):
        assert f"serial {SERIAL + rounds - 1} is updated to {SERIAL + rounds}" in log, log
        assert (
            f"received update to serial {SERIAL + rounds} " in log
            and f"TSIG verified with key {KEY}" in log
        ), log


def test_a_burst_of_changes_reaches_nsd_by_ixfr(nsd_secondary, served, tmp_path, caplog):
    """Three reloads back to back, NSD not waited for: NSD ends at the last serial, by
    IXFR only (the changes it missed in one IXFR, or one each), and answers the new data."""
    caplog.set_level(logging.INFO, logger="secdns")
    key = TsigKey.generate(KEY)
    nsd_port = free_port()
    server, zone_file = _serving(served, tmp_path, key, nsd_port)
    nsd = nsd_secondary({ZONE: ("127.0.0.1", server.port)}, key=key, port=nsd_port)
    for rounds in range(1, len(CHANGES) + 1):
        zone_file.write_text(_changed(rounds))
        server.call(server.server.reload)
    last = SERIAL + len(CHANGES)
    nsd.wait_for_serial(ZONE, last, timeout=10)
    sent = _xfr_lines(caplog)
    _assert_nsd_answers_the_changes(nsd)
    assert _axfr(nsd.host, nsd.port) == _axfr("127.0.0.1", server.port, key)
    assert " AXFR to " in sent[0] and all(" IXFR to " in line for line in sent[1:]), sent
    assert not any("as the whole zone" in line for line in sent), sent
    assert f" -> {last}: " in sent[-1], sent


def test_serve_restarted_with_a_changed_file_sends_nsd_the_whole_zone(
    nsd_secondary, served, tmp_path, caplog
):
    """serve stopped, its master file changed (a record replaced, one deleted) and serve
    started again: its NOTIFY at start brings NSD the new serial, answered to NSD's
    IXFR with the whole zone, and saying so (serve keeps a file zone's changes in
    memory only: none reach back past a restart, where BIND's .jnl and NSD's
    store-ixfr do); NSD drops what the file no longer has."""
    caplog.set_level(logging.INFO, logger="secdns")
    key = TsigKey.generate(KEY)
    nsd_port = free_port()
    server, zone_file = _serving(served, tmp_path, key, nsd_port)
    nsd = nsd_secondary({ZONE: ("127.0.0.1", server.port)}, key=key, port=nsd_port)
    zone_file.write_text(_changed(1))
    server.call(server.server.reload)
    nsd.wait_for_serial(ZONE, SERIAL + 1, timeout=10)
    server.stop()
    zone_file.write_text(_changed(3))
    again = served(tmp_path / "secdns.toml")  # (the same port)
    nsd.wait_for_serial(ZONE, SERIAL + 3, timeout=10)  # its NOTIFY at start
    sent = _xfr_lines(caplog)
    _assert_nsd_answers_the_changes(nsd)
    assert _axfr(nsd.host, nsd.port) == _axfr("127.0.0.1", again.port, key)
    assert f"serial {SERIAL} -> {SERIAL + 1}: 1 messages" in sent[1], sent
    assert len(sent) == 3 and " IXFR to 127.0.0.1#" in sent[2], sent
    assert (
        f"serial {SERIAL + 1} -> {SERIAL + 3} as the whole zone "
        "(the journal does not reach its serial)" in sent[2]
    ), sent
    counts = again.server.operations.metrics.transfers_out.counts
    assert counts.get(("ixfr-full", "ok")) == 1, counts


def test_serve_says_nsd_refused_its_notify_for_the_key(nsd_secondary, served, tmp_path, caplog):
    """NSD with the right key name and another secret answers serve's signed NOTIFY
    NOTAUTH, TSIG error BADSIG, with no question section (NSD 4.6.1); serve should
    say the NOTIFY was answered NOTAUTH, as it does for Knot's NOTAUTH, not wait for
    an answer it got and retry as if NSD were down."""
    caplog.set_level(logging.INFO, logger="secdns")
    key = TsigKey.generate(KEY)
    nsd_key = TsigKey(key.name, key.algorithm, tsig_secret())
    nsd_port = free_port()
    server, _ = _serving(served, tmp_path, key, nsd_port)
    # serve's NOTIFY at start finds no NSD yet; its next try, within 1.5 s, finds it
    with pytest.raises(ServerError, match="did not answer SOA for example.com"):
        nsd_secondary({ZONE: ("127.0.0.1", server.port)}, key=nsd_key, port=nsd_port, timeout=3)
    log = (tmp_path / "nsd-secondary-0" / "server.log").read_text()
    assert f"bad tsig signature for key {KEY}. from 127.0.0.1" in log, log  # NSD answered
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("notify: ")]
    assert any(f"127.0.0.1:{nsd_port} answered NOTAUTH" in line for line in said), said
