"""``pull --explain``: each decision of a pull, in order, against a real BIND primary (and a
fake one for an IXFR REFUSED while AXFR works, which real servers do not do)."""

from __future__ import annotations

import json

import dns.message
import dns.rdatatype
from click.testing import CliRunner
from fakeprimary import FakePrimary
from servers import free_port, zone_text
from xfrwire import answer_messages, rrset, zone_rrsets

from secdns.cli import cli

ZONE = "example.com"
SERIAL = 2024010101


def pull(*args: str):
    return CliRunner().invoke(cli, ["pull", *args])


def steps(result) -> list[tuple[str, str]]:
    return [(s["step"], s["text"]) for s in json.loads(result.stdout)["steps"]]


def test_explain_ixfr_from_bind_then_up_to_date(bind_primary, tmp_path):
    primary = bind_primary()
    store = str(tmp_path / "store")
    first = pull(ZONE, f"@{primary.addr}", "-d", store, "--explain", "--json")
    assert first.exit_code == 0, first.stderr
    said = steps(first)
    assert said[0] == (
        "hold",
        "we hold no copy of the zone: a full AXFR is needed, after a SOA query",
    )
    assert said[1][0] == "primary" and "primary 1 of 1" in said[1][1]
    assert said[2] == ("probe", f"SOA probe answered serial {SERIAL} over UDP")
    assert said[3] == ("request", "ask AXFR: we hold no copy to ask IXFR from")
    assert said[4][0] == "answer" and said[4][1].startswith("AXFR: ")
    assert said[5] == ("tsig", "no TSIG key configured: the answer is not authenticated")
    assert said[6][0] == "write" and said[6][1].startswith(f"wrote serial {SERIAL} to ")
    assert not first.stderr.count("explain: ")  # with --json the steps are only in the JSON

    primary.nsupdate("update add explain.example.com. 60 A 192.0.2.5")
    second = pull(ZONE, f"@{primary.addr}", "-d", store, "--explain")
    assert second.exit_code == 0, second.stderr
    lines = "\n".join(line for line in second.stderr.splitlines() if "explain:" in line)
    assert f"hold: we hold serial {SERIAL} (" in lines
    assert f"probe: SOA probe answered serial {SERIAL + 1} over UDP" in lines
    assert f"compare: the primary's serial {SERIAL + 1} is newer than our {SERIAL}" in lines
    assert f"request: ask IXFR from our serial {SERIAL} (RFC 1995)" in lines
    assert f"answer: true IXFR: 1 delta to serial {SERIAL + 1}" in lines
    assert f"write: wrote serial {SERIAL + 1} to " in lines and "by IXFR: +1 -0" in lines
    assert f"explain: zone=example.com. primary={primary.addr} probe:" in lines

    third = pull(ZONE, f"@{primary.addr}", "-d", store, "--explain", "--json")
    said = steps(third)
    assert ("compare", f"up to date: the primary's serial {SERIAL + 1} equals ours") in said
    assert said[-1] == ("write", f"left alone: serial {SERIAL + 1} is current, nothing written")
    assert not [s for s in said if s[0] in ("request", "answer")]
    plain = pull(ZONE, f"@{primary.addr}", "-d", store, "--json")
    assert "steps" not in json.loads(plain.stdout)


def test_explain_failover_to_the_second_primary(bind_primary, tmp_path):
    primary = bind_primary()
    dead = f"127.0.0.1:{free_port()}"
    result = pull(
        ZONE,
        f"@{dead}",
        f"@{primary.addr}",
        "-o",
        str(tmp_path / "z"),
        "--timeout",
        "0.5",
        "--explain",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    said = [(s["step"], s["primary"], s["text"]) for s in doc["steps"]]
    assert said[1] == (
        "primary",
        dead,
        f"try {dead}: primary 1 of 2, the first in order",
    )
    assert said[2][:2] == ("failover", dead)
    assert said[2][2].startswith("failed: ") and said[2][2].endswith("trying the next primary")
    assert said[3] == (
        "primary",
        primary.addr,
        f"try {primary.addr}: primary 2 of 2, the next in order",
    )
    assert said[4][:2] == ("probe", primary.addr)
    assert doc["primary"] == primary.addr


ORIGIN = "example.com."
FAKE_ZONE = """
@ 3600 IN SOA ns1 host {serial} 7200 900 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
"""


def _fake(serial: int, ixfr_rcode: int | None = None):
    rrsets = zone_rrsets(FAKE_ZONE.format(serial=serial), ORIGIN)
    full = rrsets[:1] + rrsets[1:] + rrsets[:1]

    def respond(query: dns.message.Message) -> list[bytes]:
        if query.question[0].rdtype == dns.rdatatype.IXFR and ixfr_rcode is not None:
            return answer_messages(query.id, ORIGIN, "IXFR", [], rcode=ixfr_rcode)
        return answer_messages(query.id, ORIGIN, "AXFR", full, 2)

    soa = rrset(f"{ORIGIN} 3600 SOA ns1.{ORIGIN} host.{ORIGIN} {serial} 7200 900 1209600 300")
    return FakePrimary(respond, soa)


def test_explain_axfr_fallback_after_refused_ixfr(tmp_path):
    store = str(tmp_path / "store")
    with _fake(10) as primary:
        assert pull(ORIGIN, primary.addr, "-d", store).exit_code == 0
    with _fake(11, ixfr_rcode=5) as primary:  # REFUSED
        result = pull(ORIGIN, primary.addr, "-d", store, "--explain", "--json")
    assert result.exit_code == 0, result.stderr
    said = steps(result)
    assert ("request", "ask IXFR from our serial 10 (RFC 1995): only the changes") in said
    fallback = [text for step, text in said if step == "fallback"]
    assert fallback == ["IXFR refused (REFUSED to IXFR of example.com.); AXFR instead"]
    answers = [text for step, text in said if step == "answer"]
    assert len(answers) == 1 and answers[0].startswith("AXFR: 3 records at serial 11")
    assert said[-1][0] == "write" and "by AXFR" in said[-1][1]


def test_explain_axfr_style_ixfr_and_tsig(bind_primary, tmp_path):
    """BIND without a journal answers IXFR with the whole zone; with TSIG every message
    is verified."""
    from servers import TsigKey

    key = TsigKey.generate("xfr-key")
    primary = bind_primary(
        dynamic=False,
        ixfr_from_differences=False,
        tsig={key.name: (key.algorithm, key.secret)},
        allow_transfer_key=key.name,
    )
    tsig = f"{key.algorithm}:{key.name}:{key.secret}"
    store = str(tmp_path / "store")
    assert pull(ZONE, f"@{primary.addr}", "-d", store, "--tsig", tsig).exit_code == 0
    text = zone_text().replace(f"{SERIAL} ; serial", f"{SERIAL + 4} ; serial")
    primary.write_zone(ZONE, text + "edited 60 IN A 192.0.2.45\n")
    primary.reload()
    primary.wait_for_serial(ZONE, SERIAL + 4)
    result = pull(ZONE, f"@{primary.addr}", "-d", store, "--tsig", tsig, "--explain", "--json")
    assert result.exit_code == 0, result.stderr
    said = steps(result)
    assert ("request", f"ask IXFR from our serial {SERIAL} (RFC 1995): only the changes") in said
    (answer,) = [text for step, text in said if step == "answer"]
    assert answer.startswith("AXFR-style IXFR: the primary sent the whole zone, ")
    assert f"at serial {SERIAL + 4}" in answer
    assert ("tsig", f"every message was signed with key {key.name} and verified") in said
    assert said[-1][0] == "write" and "by AXFR: +1 -0" in said[-1][1]
