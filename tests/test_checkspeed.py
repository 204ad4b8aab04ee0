"""The fast paths of ``secdns verify`` on an unsigned zone give what the general paths give.

Each shortcut (plain dotted owner names read without ``Names._parts``, NS/MX/SRV host
names checked in one scan, occluded names found per blocker depth, glue skipped
early, address lookups without groups) is compared with the path it replaces, on
every test zone and on a small zone with the mix of a large one (dotted owners,
delegations with glue, MX, SRV, TXT); the index with grouping every record.
"""

from __future__ import annotations

import dns.name
import pytest
from servers import ZONES_DIR

from secdns import wire
from secdns.checks import hostnames, occlusion, survey
from secdns.checks.integrity import check_integrity
from secdns.checks.zoneindex import Key, ZoneIndex
from secdns.masterfile import read_master
from secdns.masterfile.lexer import BadSyntax
from secdns.masterfile.names import _PLAIN_NAME, Names

ORIGIN = dns.name.from_text("example.com.")


def mixed_zone(hosts: int = 300) -> str:
    """A small zone shaped like bench's realistic mix, with a few oddities."""
    lines = [
        "$ORIGIN example.com.",
        "$TTL 3600",
        "@ SOA ns1 hostmaster 1 7200 900 1209600 300",
        "@ NS ns1",
        "@ NS ns2.example.com.",
        "ns1 A 192.0.2.1",
        "ns2 A 192.0.2.2",
        "@ MX 10 mx1",
    ]
    for i in range(hosts):
        dept = ("dc1", "corp", "ops.eu", "Staging")[i % 4]
        lines.append(f"host{i:05d}.{dept} A 10.0.{i // 256}.{i % 256}")
        if i % 7 == 0:
            lines += [
                f"cust{i} NS ns1.cust{i}",
                f"cust{i} NS ns2.cust{i}",
                f"ns1.cust{i} A 198.51.100.{i % 256}",
                f"ns1.cust{i} AAAA 2001:db8::{i:x}",
            ]
            if i % 21 == 0:
                lines.append(f"www.cust{i} A 198.51.100.7")  # occluded
        if i % 11 == 0:
            lines += [
                f"corp{i} MX 10 host{i:05d}.{dept}",
                f"corp{i} MX 20 mail.other.example.",
                f'corp{i} TXT "v=spf1 mx -all"',
                f"_sip._tcp.svc{i} SRV 1 5 5060 host{i:05d}.{dept}",
            ]
    lines += [
        "bad_name.dc1 A 10.9.9.9",
        "odd MX 10 under_score.dc1",
        "quad MX 10 10.1.2.3.",
        "*.wild A 10.1.1.1",
        "alias.dc1 CNAME host00001.corp",
        "via MX 10 alias.dc1",
        "elsewhere.example.org. A 10.2.2.2",
        "",
    ]
    return "\n".join(lines)


def zone_texts() -> list[tuple[str, str]]:
    texts = [("mixed", mixed_zone())]
    for path in sorted((ZONES_DIR / "broken").glob("*.zone")):
        if path.name != "parse-error.zone":
            texts.append((path.name, path.read_text()))
    texts.append(("example.com.zone", (ZONES_DIR / "example.com.zone").read_text()))
    return texts


ZONES = zone_texts()


def records(text: str) -> list[wire.Record]:
    return read_master(text, ORIGIN, filename="test.zone").records


# --- the general paths, as they were -----------------------------------------------------


def slow_below_some(keys, blockers: set[Key], depth: int) -> list[Key]:
    shortest = min(len(key) for key in blockers)
    return [key for key in keys if any(key[:end] in blockers for end in range(shortest, len(key)))]


def slow_index(origin: dns.name.Name, recs: list[wire.Record]):
    okey = tuple(label.lower() for label in reversed(origin.labels[:-1]))
    groups: dict[Key, list[wire.Record]] = {}
    out_of_zone = []
    for rec in recs:
        if rec.owner[-1:] == "." and okey and rec.key[: len(okey)] != okey:
            out_of_zone.append(rec)
        else:
            groups.setdefault(rec.key, []).append(rec)
    return groups, out_of_zone


def slow_findings(monkeypatch: pytest.MonkeyPatch, recs: list[wire.Record]):
    with monkeypatch.context() as patch:
        patch.setattr(hostnames, "plain_hostnames", lambda texts: set())
        patch.setattr(occlusion, "below_some", slow_below_some)
        patch.setattr(occlusion, "child_labels", lambda blockers, depth: None)
        patch.setattr(
            survey.Survey,
            "has_address",
            lambda self, key: self.has_type(key, survey.ADDRESS_TYPES),
        )
        patch.setattr(survey.Survey, "has_only_addresses", lambda self, key: False)
        return check_integrity(ORIGIN, recs)


# --- the comparisons -----------------------------------------------------------------------


@pytest.mark.parametrize("name,text", ZONES, ids=[name for name, _ in ZONES])
def test_integrity_findings_equal_the_general_paths(monkeypatch, name, text):
    recs = records(text)
    assert check_integrity(ORIGIN, recs) == slow_findings(monkeypatch, recs)


def test_the_mixed_zone_exercises_the_fast_paths(monkeypatch):
    found = {(f.check, f.owner) for f in check_integrity(ORIGIN, records(mixed_zone()))}
    assert ("integrity.hostname", "bad_name.dc1.example.com.") in found
    assert ("integrity.hostname", "odd.example.com.") in found
    assert ("integrity.hostname", "quad.example.com.") in found
    assert ("integrity.occluded", "www.cust0.example.com.") in found
    assert ("integrity.target-is-cname", "via.example.com.") in found
    assert ("integrity.out-of-zone", "elsewhere.example.org.") in found
    assert ("integrity.missing-glue", "cust0.example.com.") in found  # ns2.cust0: no glue
    # With no odd names, the one scan vouches for every target.
    good = hostnames.plain_hostnames(["ns1.cust7", "host00001.corp", "mail.other.example."])
    assert good == {"ns1.cust7", "host00001.corp", "mail.other.example."}
    for odd in ("10.1.2.3.", "a..b", "-a.b", "a-.b", "*.a", "under_score", ""):
        assert odd not in hostnames.plain_hostnames(["ns1.cust7", odd])


@pytest.mark.parametrize("name,text", ZONES, ids=[name for name, _ in ZONES])
def test_index_equals_grouping_every_record(name, text):
    recs = records(text)
    index = ZoneIndex.build(ORIGIN, recs)
    groups, out_of_zone = slow_index(ORIGIN, recs)
    assert index.out_of_zone == out_of_zone
    assert list(index.first) == list(groups)
    assert {key: list(index.group(key)) for key in index.first} == groups


def owner_tokens(text: str) -> set[str]:
    tokens = {line.split()[0] for line in text.splitlines() if line.strip()}
    return {t for t in tokens if t[0] not in "$;" and _PLAIN_NAME(t)}


EDGE_TOKENS = {
    "www",
    "www.dept",
    "WWW.Dept",
    "a..b",
    "a.",
    ".a",
    "*.wild",
    "x" * 63 + ".y",
    "x" * 64,
    ".".join(["abcdefghi"] * 24),
    ".".join(["abcdefghi"] * 25),
    "a.b.c.example.com.",
    "a-b.c_d",
}


@pytest.mark.parametrize("origin", ["example.com.", "Example.COM.", "."])
def test_plain_dotted_owners_read_as_the_general_path(origin):
    zone = dns.name.from_text(origin)
    tokens = set(EDGE_TOKENS)
    for _, text in ZONES:
        tokens |= owner_tokens(text)
    names = Names(zone, zone)
    for token in sorted(tokens):
        try:
            fast = names.resolve(token)
        except BadSyntax:
            fast = None
        try:
            key, texts = names._parts(token)
            slow = (key, names._relative(key, texts))
        except BadSyntax:
            slow = None
        assert fast == slow, token
