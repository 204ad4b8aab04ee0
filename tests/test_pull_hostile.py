"""Hostile and broken primaries: every case is a clear error and the old copy survives."""

from __future__ import annotations

import hashlib
import json

import dns.message
import dns.name
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import pytest
from click.testing import CliRunner
from fakeprimary import RAW, FakePrimary
from xfrwire import answer_messages, rrset, zone_rrsets

from secdns.cli import cli
from secdns.store import Store

ORIGIN = "example.com."
ZONE = """
@ 3600 IN SOA ns1 host {serial} 7200 900 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.80
"""


def soa(serial: int):
    return rrset(f"{ORIGIN} 3600 SOA ns1.{ORIGIN} host.{ORIGIN} {serial} 7200 900 1209600 300")


def full(serial: int, extra=()):
    rrsets = zone_rrsets(ZONE.format(serial=serial), ORIGIN)
    return rrsets[:1] + list(extra) + rrsets[1:] + rrsets[:1]


def axfr_of(rrsets, per_message=2):
    return lambda query: answer_messages(query.id, ORIGIN, "AXFR", rrsets, per_message)


def pull(*args):
    result = CliRunner().invoke(cli, ["pull", *args])
    return result


@pytest.fixture
def good_copy(tmp_path):
    """A store holding serial 10, pulled from a well-behaved fake primary."""
    store = tmp_path / "store"
    with FakePrimary(axfr_of(full(10)), soa(10)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store))
        assert result.exit_code == 0, result.output + result.stderr
    zone_file = store / "example.com.zone"
    return store, zone_file, zone_file.read_bytes()


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


CASES = {
    "out-of-zone record": (
        lambda: axfr_of(full(11, [rrset("evil.example.net. 300 A 192.0.2.66")])),
        "out-of-zone record evil.example.net.",
    ),
    "missing final SOA": (lambda: axfr_of(full(11)[:-1]), "ended before its final SOA"),
    "first and last SOA differ": (
        lambda: axfr_of(full(11)[:-1] + [soa(12)]),
        "last SOA (serial 12) differs",
    ),
    "garbage bytes": (lambda: lambda q: [RAW + b"\x00\x20" + b"\xff" * 32], "malformed message"),
    "SOA not at apex": (
        lambda: axfr_of(full(11, [rrset("sub.example.com. 300 SOA a. b. 1 1 1 1 1")])),
        "not at the zone apex",
    ),
    "answer for another zone": (
        lambda: lambda q: answer_messages(q.id, "example.org.", "AXFR", full(11)),
        "another zone",
    ),
    "wrong query id": (
        lambda: lambda q: answer_messages((q.id + 1) % 65536, ORIGIN, "AXFR", full(11)),
        "does not match query ID",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_axfr_is_refused_and_store_untouched(good_copy, case):
    store, zone_file, before = good_copy
    make, message = CASES[case]
    state_before = Store(store).load_state(dns.name.from_text(ORIGIN))
    with FakePrimary(make(), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--axfr")
    assert result.exit_code == 6, result.output + result.stderr
    assert message in result.stderr
    assert "zone example.com." in result.stderr and "server 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
    assert zone_file.read_bytes() == before
    assert sorted(p.name for p in store.iterdir()) == ["example.com.state.toml", "example.com.zone"]
    # the state records the failure but keeps the good serial and checksum (the first
    # version held its state in its first line; the failure made the state file)
    state_after = Store(store).load_state(dns.name.from_text(ORIGIN))
    assert state_after.serial == 10 and state_after.last_error
    assert state_after.file_sha256 == state_before.file_sha256
    assert state_before.serial == 10 and state_before.last_error is None


def test_truncated_stream(good_copy):
    store, zone_file, before = good_copy
    with FakePrimary(axfr_of(full(11)), soa(11)) as primary:
        primary.close_after = 60
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--axfr")
    assert result.exit_code == 6
    assert "cut short" in result.stderr
    assert zone_file.read_bytes() == before


def test_output_file_untouched_on_failure(tmp_path):
    out = tmp_path / "z.zone"
    with FakePrimary(axfr_of(full(10)), soa(10)) as primary:
        assert pull(ORIGIN, primary.addr, "-o", str(out)).exit_code == 0
    before = out.read_bytes()
    with FakePrimary(axfr_of(full(11)[:-1]), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(out))
    assert result.exit_code == 6
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["z.zone"]


def test_serial_going_backwards_is_refused_unless_forced(good_copy):
    store, zone_file, before = good_copy
    with FakePrimary(axfr_of(full(9)), soa(9)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store))
        assert result.exit_code == 6
        assert "older than our 10" in result.stderr and "--force" in result.stderr
        assert zone_file.read_bytes() == before
        forced = pull(ORIGIN, primary.addr, "-d", str(store), "--force")
        assert forced.exit_code == 0, forced.stderr
    assert " 9 7200 900 1209600 300" in zone_file.read_text()


def test_axfr_with_older_serial_than_probe_is_refused(good_copy):
    """The probe says 11 but the transfer brings 9: nothing is stored."""
    store, zone_file, before = good_copy
    with FakePrimary(axfr_of(full(9)), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store))
    assert result.exit_code == 6
    assert "not newer than our 10" in result.stderr
    assert zone_file.read_bytes() == before


def test_record_limit(tmp_path):
    with FakePrimary(axfr_of(full(10)), soa(10)) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"), "--max-records", "2")
    assert result.exit_code == 6
    assert "the zone has more than 2 records (--max-records 2" in result.stderr
    assert not (tmp_path / "z").exists()


def test_byte_limit(tmp_path):
    with FakePrimary(axfr_of(full(10)), soa(10)) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"), "--max-bytes", "100")
    assert result.exit_code == 6
    assert "limit of 100 bytes" in result.stderr


def test_silent_primary_times_out(tmp_path):
    with FakePrimary(axfr_of(full(10)), soa(10)) as primary:
        primary.silent = True
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"), "--timeout", "0.3")
    assert result.exit_code == 3
    assert "no data for 0.3s" in result.stderr


def test_refused_transfer_gives_hint(tmp_path):
    respond = lambda q: answer_messages(q.id, ORIGIN, "AXFR", [], rcode=5)  # noqa: E731
    with FakePrimary(respond, soa(10)) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"))
    assert result.exit_code == 4
    assert "REFUSED" in result.stderr
    assert "does not allow transfers to this host, or needs a TSIG key" in result.stderr


KEY = dns.tsig.Key("xfr.", "c2VjcmV0c2VjcmV0c2VjcmV0", dns.tsig.HMAC_SHA256)
WRONG = dns.tsig.Key("xfr.", "b3RoZXJzZWNyZXRvdGhlcg==", dns.tsig.HMAC_SHA256)


def _signed(key, sign_from=0):
    """An AXFR answer signed with ``key``; messages before ``sign_from`` go unsigned."""

    def respond(query: dns.message.Message) -> list[bytes]:
        out = []
        ctx = None
        rrsets = full(10)
        for index in range(0, len(rrsets), 2):
            msg = dns.message.Message(id=query.id)
            msg.flags = dns.flags.QR | dns.flags.AA
            if index == 0:
                msg.question = list(query.question)
            for item in rrsets[index : index + 2]:
                msg.answer.append(item)
            if index >= sign_from:
                msg.use_tsig({key.name: key}, key.name)
                msg.request_mac = query.tsig[0].mac if index == 0 else b""
                out.append(msg.to_wire(multi=True, tsig_ctx=ctx))
                ctx = msg.tsig_ctx
            else:
                out.append(msg.to_wire())
        return out

    return respond


TSIG = "hmac-sha256:xfr:c2VjcmV0c2VjcmV0c2VjcmV0"


def test_tsig_right_key(tmp_path):
    with FakePrimary(_signed(KEY), soa(10), keyring={KEY.name: KEY}) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"), "--tsig", TSIG)
    assert result.exit_code == 0, result.stderr
    assert primary.queries[0].had_tsig


def test_tsig_wrong_secret_in_transfer(tmp_path):
    with FakePrimary(_signed(WRONG), soa(10), keyring={KEY.name: KEY}) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"), "--tsig", TSIG)
    assert result.exit_code == 5, result.stderr
    assert "TSIG does not verify" in result.stderr
    assert not (tmp_path / "z").exists()


def test_tsig_unsigned_transfer_answer(tmp_path):
    with FakePrimary(_signed(KEY, sign_from=99), soa(10), keyring={KEY.name: KEY}) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"), "--tsig", TSIG)
    assert result.exit_code == 5, result.stderr
    assert "not TSIG-signed" in result.stderr


def test_tsig_unsigned_soa_answer(tmp_path):
    with FakePrimary(_signed(KEY), soa(10)) as primary:
        result = pull(ORIGIN, primary.addr, "-o", str(tmp_path / "z"), "--tsig", TSIG)
    assert result.exit_code == 5, result.stderr
    assert not (tmp_path / "z").exists()


def _ixfr_or_axfr(ixfr_answer, serial=11, extra=()):
    """Answers IXFR with ``ixfr_answer(query)`` and AXFR with the full zone at ``serial``."""

    def respond(query: dns.message.Message) -> list[bytes]:
        if query.question[0].rdtype == dns.rdatatype.IXFR:
            return ixfr_answer(query)
        return answer_messages(query.id, ORIGIN, "AXFR", full(serial, extra), 2)

    return respond


NEW = rrset("new.example.com. 60 A 192.0.2.77")


@pytest.mark.parametrize("rcode", [4, 5, 1])  # NOTIMP, REFUSED, FORMERR
def test_ixfr_error_rcode_falls_back_to_axfr(good_copy, rcode):
    store, zone_file, _ = good_copy
    refuse = lambda q: answer_messages(q.id, ORIGIN, "IXFR", [], rcode=rcode)  # noqa: E731
    with FakePrimary(_ixfr_or_axfr(refuse, extra=[NEW]), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--json")
        kinds = [q.question[0].rdtype for q in primary.queries]
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert kinds == [dns.rdatatype.IXFR, dns.rdatatype.AXFR]
    assert doc["kind"] == "AXFR" and "IXFR refused" in doc["fallback"]
    assert "new 60 IN A 192.0.2.77" in zone_file.read_text()


def test_ixfr_delta_that_does_not_apply_falls_back_to_axfr(good_copy):
    store, zone_file, _ = good_copy
    bogus_delete = rrset("ghost.example.com. 60 A 192.0.2.1")

    def delta(query):
        return answer_messages(
            query.id, ORIGIN, "IXFR", [soa(11), soa(10), bogus_delete, soa(11), NEW, soa(11)]
        )

    with FakePrimary(_ixfr_or_axfr(delta, extra=[NEW]), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert doc["kind"] == "AXFR" and "does not apply" in doc["fallback"]
    assert "ghost" in doc["fallback"]
    text = zone_file.read_text()
    assert "new 60 IN A 192.0.2.77" in text and " 11 7200 " in text


def test_ixfr_delta_from_wrong_serial_falls_back(good_copy):
    store, zone_file, _ = good_copy

    def delta(query):
        return answer_messages(query.id, ORIGIN, "IXFR", [soa(11), soa(9), soa(11), NEW, soa(11)])

    with FakePrimary(_ixfr_or_axfr(delta, extra=[NEW]), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--json")
    doc = json.loads(result.stdout)
    assert doc["kind"] == "AXFR" and "starts at serial 9" in doc["fallback"]


def test_ixfr_good_delta_applies_incrementally(good_copy):
    store, zone_file, _ = good_copy
    old_www = rrset("www.example.com. 300 A 192.0.2.80")

    def delta(query):
        return answer_messages(
            query.id,
            ORIGIN,
            "IXFR",
            [soa(12), soa(10), old_www, soa(11), NEW, soa(11), soa(12), soa(12)],
            per_message=3,
        )

    with FakePrimary(_ixfr_or_axfr(delta, serial=12), soa(12)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--json")
        kinds = [q.question[0].rdtype for q in primary.queries]
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert kinds == [dns.rdatatype.IXFR]
    assert doc["kind"] == "IXFR" and doc["fallback"] is None
    assert (doc["serial_from"], doc["serial_to"], doc["added"], doc["removed"]) == (10, 12, 1, 1)
    text = zone_file.read_text()
    assert "new 60 IN A 192.0.2.77" in text and "192.0.2.80" not in text
    assert "@ 3600 IN SOA ns1 host 12 7200" in text
    journal = (store / "example.com.journal").read_text().splitlines()
    assert [(json.loads(e)["from"], json.loads(e)["to"]) for e in journal] == [(10, 11), (11, 12)]


def test_ixfr_out_of_zone_in_delta_is_refused(good_copy):
    store, zone_file, before = good_copy

    def delta(query):
        return answer_messages(
            query.id,
            ORIGIN,
            "IXFR",
            [soa(11), soa(10), soa(11), rrset("evil.example.net. 60 A 192.0.2.66"), soa(11)],
        )

    evil_axfr = [rrset("evil.example.net. 60 A 192.0.2.66")]
    with FakePrimary(_ixfr_or_axfr(delta, extra=evil_axfr), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store))
    assert result.exit_code == 6
    assert "out-of-zone" in result.stderr
    assert zone_file.read_bytes() == before


def _soa_alone_first(serial: int):
    """An IXFR answer as PowerDNS sends it: the SOA alone, the zone, the SOA alone."""

    def respond(query: dns.message.Message) -> list[bytes]:
        rrsets = full(serial, [NEW])
        first = answer_messages(query.id, ORIGIN, "IXFR", rrsets[:1])
        rest = answer_messages(query.id, ORIGIN, "IXFR", rrsets[1:-1], per_message=50)
        last = answer_messages(query.id, ORIGIN, "IXFR", rrsets[-1:])
        return first + rest[:1] + last

    return respond


def test_ixfr_newer_soa_alone_in_first_message_reads_on(good_copy):
    """RFC 1995: a lone SOA means up to date only when it is not newer than ours."""
    store, zone_file, _ = good_copy
    with FakePrimary(_soa_alone_first(11), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--json")
        kinds = [q.question[0].rdtype for q in primary.queries]
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert kinds == [dns.rdatatype.IXFR]
    assert (doc["status"], doc["kind"], doc["serial_to"], doc["messages"]) == (
        "transferred",
        "AXFR",
        11,
        3,
    )
    assert "new 60 IN A 192.0.2.77" in zone_file.read_text()


def test_ixfr_current_soa_alone_is_up_to_date(good_copy):
    store, zone_file, before = good_copy
    alone = lambda q: answer_messages(q.id, ORIGIN, "IXFR", [soa(10)])  # noqa: E731
    # the probe says 11 (so we ask), the IXFR answer says 10: nothing newer
    with FakePrimary(_ixfr_or_axfr(alone), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--json")
    doc = json.loads(result.stdout)
    assert doc["kind"] is None, doc  # no transfer (that the probe said 11 is pull.py's to judge)
    assert zone_file.read_bytes() == before


def test_ixfr_newer_soa_alone_then_close_falls_back_to_axfr(good_copy):
    store, zone_file, _ = good_copy
    alone = lambda q: answer_messages(q.id, ORIGIN, "IXFR", [soa(11)])  # noqa: E731
    with FakePrimary(_ixfr_or_axfr(alone, extra=[NEW]), soa(11)) as primary:
        result = pull(ORIGIN, primary.addr, "-d", str(store), "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert doc["kind"] == "AXFR" and "before its final SOA" in doc["fallback"], doc
    assert "new 60 IN A 192.0.2.77" in zone_file.read_text()


def test_force_takes_an_older_primary_by_axfr_not_ixfr(good_copy):
    """An IXFR from our serial 10 to a primary at 9 gets the lone SOA real servers send for
    "nothing newer than yours"; --force (which the refusal suggests) must ask AXFR instead."""
    store, zone_file, _before = good_copy
    asked: list[str] = []

    def respond(query):
        kind = dns.rdatatype.to_text(query.question[0].rdtype)
        asked.append(kind)
        if kind == "IXFR":
            return answer_messages(query.id, ORIGIN, "IXFR", [soa(9)], 1)
        return answer_messages(query.id, ORIGIN, "AXFR", full(9), 2)

    with FakePrimary(respond, soa(9)) as primary:
        forced = pull(ORIGIN, primary.addr, "-d", str(store), "--force")
    assert forced.exit_code == 0, forced.output
    assert asked == ["AXFR"]
    assert " 9 7200 900 1209600 300" in zone_file.read_text()
