"""Prepared answers (secdns.server.prepared) are the general path's bytes, or step aside.

The property: for every owner name (and empty non-terminal) of the test zones,
every type a zone uses and a few it does not, names that do not exist, in
several query shapes (RD, CD, EDNS with and without DO, a 512-byte EDNS
payload) and letter cases (0x20), :meth:`PreparedAnswers.answer` returns
exactly the bytes :func:`secdns.server.front.handle` returns, or None.
"""

from __future__ import annotations

import random
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from test_answer import CHILD, EXAMPLE, _sign, zone_lines
from test_fastpath import ZONE as FASTPATH_ZONE

from secdns.server import front
from secdns.server.prepared import PreparedAnswers
from secdns.server.zone import ServedZone, ZoneTable, ZoneVersion

ANSWER_ZONES = Path(__file__).parent / "zones" / "answer"

# the shape of /work/shared/genzone.py's mix: hosts under departments, CNAME, MX + SPF,
# ACME/DMARC TXT, SRV, delegations with glue
MIX = """\
$ORIGIN mix.test.
$TTL 3600
@ IN SOA ns1.mix.test. hostmaster.mix.test. 2024060101 7200 3600 1209600 3600
@ IN NS ns1.mix.test.
@ IN NS ns2.mix.test.
ns1 IN A 192.0.2.1
ns2 IN A 192.0.2.2
@ IN MX 10 mx1
@ IN TXT "v=spf1 mx -all"
mx1 IN A 192.0.2.25
storage000001.dc1 IN A 10.132.121.109
metrics000002.dc1 IN AAAA 2001:db8::2
cust000003 IN NS ns1.cust000003
cust000003 IN NS ns2.cust000003
ns1.cust000003 IN A 198.51.172.13
ns2.cust000003 IN A 203.0.65.166
ns1.cust000003 IN AAAA 2001:db8:ffff:8019::53
ci000004.cdn IN A 10.38.189.67
_submission._tcp.svc000007 IN SRV 1 53 587 ci000004.cdn
_submission._tcp.svc000008 IN SRV 1 53 587 storage000001.dc1.mix.test.
_acme-challenge.host000009.ops IN TXT "780b86486a2a18129b19cdec60c9e347780b86486a2"
_dmarc.corp000010 IN TXT "v=DMARC1; p=none" "rua=mailto:d@mix.test"
corp000010 IN MX 10 ci000004.cdn
corp000010 IN MX 20 storage000001.dc1
corp000010 IN MX 30 mail.elsewhere.net.
corp000010 IN TXT "v=spf1 ip4:10.218.0.0/16 include:_spf.mix.test. ~all"
www000011.web IN CNAME ci000004.cdn
ptr000012 IN PTR ci000004.cdn
mxcut IN MX 10 ns1.cust000003
"""


def _table(zones: dict[str, str]) -> ZoneTable:
    table = ZoneTable()
    for origin, text in zones.items():
        zone = ServedZone(dns.name.from_text(origin))
        zone.swap(ZoneVersion.from_lines(zone.origin, zone_lines(text, origin)))
        table.add(zone)
    return table


def _zone_sets() -> dict[str, dict[str, str]]:
    files = {
        origin: (ANSWER_ZONES / f"{origin}.zone").read_text()
        for origin in ("answer.example", "other.example", "child.answer.example", "dnapex.example")
    }
    return {
        "battery": files,
        "example": {"example.": EXAMPLE, "child.example.": CHILD},
        "fastpath": {"example.com.": FASTPATH_ZONE},
        "mix": {"mix.test.": MIX},
    }


SHAPES = [
    {},
    {"rd": True},
    {"cd": True},
    {"edns": 1232},
    {"edns": 1232, "do": True, "rd": True},
    {"edns": 512},
    {"edns": 4096, "do": True},
]
TYPES = ["A", "AAAA", "NS", "MX", "TXT", "SRV", "CNAME", "SOA", "PTR", "DNAME", "CAA", "HINFO"]


def _query(name: str, rdtype: str, *, rd=False, cd=False, edns=None, do=False) -> bytes:
    if edns is None:
        query = dns.message.make_query(name, rdtype, use_edns=False)
    else:
        query = dns.message.make_query(name, rdtype, use_edns=0, payload=edns, want_dnssec=do)
    query.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
    return query.to_wire()


def _cases(name: str, rng: random.Random) -> list[str]:
    mixed = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
    return [name, name.upper(), mixed]


@pytest.mark.parametrize("zones", sorted(_zone_sets()))
def test_prepared_answers_are_the_general_paths_bytes(zones: str) -> None:
    _same_as_general(_table(_zone_sets()[zones]))


@pytest.mark.parametrize("nsec3", ["", "nsec3", "optout"])
def test_signed_zones_are_prepared_with_their_rrsigs_for_do(tmp_path: Path, nsec3: str) -> None:
    text = (ANSWER_ZONES / "answer.example.zone").read_text().replace("answer.example", "s.test")
    table = _table({"s.test.": _sign(tmp_path, "s.test.", text, nsec3)})
    _same_as_general(table)
    prepared = PreparedAnswers(table)
    # DO: a positive answer with its RRSIGs (in every section); a negative one with its
    # NSEC or NSEC3 proofs
    signed = prepared.answer(_query("www.s.test.", "A", edns=1232, do=True))
    assert signed is not None
    reply = dns.message.from_wire(signed[0])
    assert {r.rdtype for r in reply.answer} == {dns.rdatatype.A, dns.rdatatype.RRSIG}
    assert dns.rdatatype.RRSIG in {r.rdtype for r in reply.authority}
    wire = _query("nothere.s.test.", "A", edns=1232, do=True)
    negative = prepared.answer(wire)
    assert negative is not None and negative[0] == front.handle(wire, table, tcp=False).wire
    proof = dns.message.from_wire(negative[0])
    assert proof.rcode() == dns.rcode.NXDOMAIN
    denial = dns.rdatatype.NSEC3 if nsec3 else dns.rdatatype.NSEC
    assert {r.rdtype for r in proof.authority} == {dns.rdatatype.SOA, dns.rdatatype.RRSIG, denial}
    assert [r for r in proof.authority if r.rdtype == denial]
    # an empty non-terminal (what a QNAME-minimising resolver asks): NODATA with its proof
    version = table.zones["s.test."].version
    assert version is not None
    empty = [key for key, (lines, below) in version.iter_entries() if not lines and below]
    assert empty
    made = 0
    for key in empty:  # (below a delegation, a wildcard's or opt-out's: the general path)
        wire = _query(key, "A", edns=1232, do=True)
        nodata = prepared.answer(wire)
        if nodata is not None:
            assert nodata[0] == front.handle(wire, table, tcp=False).wire, key
            made += 1
    assert made >= len(empty) // 2, (made, len(empty))
    assert prepared.answer(_query("www.s.test.", "A", edns=1232)) is not None


def test_signatures_are_read_when_a_do_answer_needs_them(tmp_path: Path) -> None:
    text = (ANSWER_ZONES / "answer.example.zone").read_text().replace("answer.example", "s.test")
    table = _table({"s.test.": _sign(tmp_path, "s.test.", text, "")})
    prepared = PreparedAnswers(table)
    plain = prepared.answer(_query("www.s.test.", "A", edns=1232))
    assert plain is not None
    owner = prepared.owners["www.s.test."][1]
    assert owner is not None and owner.sig_lines and not owner.sigs  # none read without DO
    wire = _query("www.s.test.", "A", edns=1232, do=True)
    signed = prepared.answer(wire)
    assert signed is not None and signed[0] == front.handle(wire, table, tcp=False).wire
    assert owner.sigs is not None and set(owner.sigs) == {dns.rdatatype.A}  # only A's


def test_the_apex_block_is_shared_and_written_where_each_answer_puts_it(tmp_path: Path) -> None:
    """The authority and additional sections every positive answer of a zone has are
    kept as bytes by where they start and what they would compress against: answers of
    names of other lengths and depths, in other cases, get their own, equal to the
    general path's."""
    text = (ANSWER_ZONES / "answer.example.zone").read_text().replace("answer.example", "s.test")
    for nsec3 in ("", "nsec3"):
        table = _table({"s.test.": _sign(tmp_path / (nsec3 or "nsec"), "s.test.", text, nsec3)})
        prepared = PreparedAnswers(table)
        assert table.zones["s.test."].version is not None
        names = [k for k, e in table.zones["s.test."].version.iter_entries() if e[0]]
        for name in names * 2:  # (the second round from the kept templates)
            for case in (name, name.upper()):
                for do in (False, True):
                    wire = _query(case, "A", edns=4096, do=do)
                    mine = prepared.answer(wire)
                    if mine is not None:
                        assert mine[0] == front.handle(wire, table, tcp=False).wire, (case, do)
        kept = table.zones["s.test."].version.kept
        assert kept and any(getattr(block, "templates", None) for block in kept.values())


def _same_as_general(table: ZoneTable) -> None:
    prepared = PreparedAnswers(table)
    rng = random.Random(12)
    asked = 0
    for zone in list(table.zones.values()):
        assert zone.version is not None
        for key, _entry in zone.version.iter_entries():
            names = [key, "nx." + key if key != "." else "nx."]
            for name in names:
                for rdtype in TYPES:
                    combos = [(s, c) for s in SHAPES for c in _cases(name, rng)]
                    for shape, case in rng.sample(combos, 4):
                        try:
                            wire = _query(case, rdtype, **shape)
                        except dns.name.NameTooLong:
                            continue
                        mine = prepared.answer(wire)
                        asked += 1
                        if mine is None:
                            continue
                        general = front.handle(wire, table, tcp=False)
                        assert mine[0] == general.wire, (case, rdtype, shape)
                        assert mine[1] is general.zone
                        assert general.cacheable
    assert prepared.used > asked // 4, (prepared.used, asked)


def test_the_owner_form_survives_an_ixfr_of_other_owners() -> None:
    table = _table({"mix.test.": MIX})
    zone = table.zones["mix.test."]
    prepared = PreparedAnswers(table)
    wire = _query("ci000004.cdn.mix.test.", "A")
    before = prepared.answer(wire)
    assert before is not None
    kept = prepared.owners["ci000004.cdn.mix.test."]
    assert zone.version is not None
    zone.swap(
        zone.version.apply(
            [
                (
                    ["mx1 3600 IN A 192.0.2.25"],
                    ["mx1 3600 IN A 192.0.2.26", "new 3600 IN A 192.0.2.27"],
                )
            ],
            2024060102,
        )
    )
    assert prepared.answer(wire) == before
    assert prepared.owners["ci000004.cdn.mix.test."] is kept  # not rebuilt
    mx1 = _query("mx1.mix.test.", "A")
    changed = prepared.answer(mx1)
    assert changed is not None and bytes([192, 0, 2, 26]) in changed[0]
    assert changed[0] == front.handle(mx1, table, tcp=False).wire
    new_wire = _query("new.mix.test.", "A")
    new = prepared.answer(new_wire)
    assert new is not None and new[0] == front.handle(new_wire, table, tcp=False).wire


def test_what_is_not_prepared_takes_the_general_path() -> None:
    table = _table({"mix.test.": MIX, "example.": EXAMPLE})
    prepared = PreparedAnswers(table)
    for name, rdtype in [
        ("www000011.web.mix.test.", "A"),  # a CNAME chain
        ("x.wild.example.", "A"),  # wildcard synthesis
        ("a.dn.example.", "A"),  # DNAME
        ("mix.test.", "ANY"),
        ("mix.test.", "DNSKEY"),
        ("cust000003.mix.test.", "DS"),
        ("nowhere.test.", "A"),  # no zone: REFUSED by the general path
    ]:
        assert prepared.answer(_query(name, rdtype)) is None, (name, rdtype)


@pytest.mark.parametrize("zones", sorted(_zone_sets()))
def test_referrals_are_the_general_paths_bytes(zones: str) -> None:
    """Every name at or below a delegation (its glue, a name under it that does not exist),
    every type and shape, three letter cases: the prepared referral is the general path's
    bytes (AA clear, the cut's NS, glue in reverse NS order), or None."""
    table = _table(_zone_sets()[zones])
    prepared = PreparedAnswers(table)
    rng = random.Random(5)
    made = 0
    for zone in list(table.zones.values()):
        assert zone.version is not None
        apex = zone.version.origin_key
        cuts = [
            key
            for key, (lines, _below) in zone.version.iter_entries()
            if key != apex and any(" NS " in line for line in lines)
        ]
        names = [
            key
            for key, _entry in zone.version.iter_entries()
            if any(key == cut or key.endswith("." + cut) for cut in cuts)
        ]
        for name in names + ["www." + cut for cut in cuts] + ["a.b." + cut for cut in cuts]:
            for rdtype in [*TYPES, "DS"]:
                for shape in SHAPES:
                    for case in _cases(name, rng):
                        wire = _query(case, rdtype, **shape)
                        mine = prepared.answer(wire)
                        if mine is None:
                            continue
                        general = front.handle(wire, table, tcp=False)
                        assert mine[0] == general.wire, (case, rdtype, shape)
                        made += not mine[0][2] & 0x04
    assert made or zones == "fastpath", zones  # referrals (AA clear) made here


def test_referrals_at_and_below_a_cut_are_prepared() -> None:
    table = _table({"mix.test.": MIX})
    prepared = PreparedAnswers(table)
    for name, rdtype in [
        ("cust000003.mix.test.", "NS"),
        ("cust000003.mix.test.", "A"),
        ("www.cust000003.mix.test.", "A"),
        ("ns1.cust000003.mix.test.", "MX"),
        ("ns1.cust000003.mix.test.", "A"),
    ]:
        wire = _query(name, rdtype, edns=1232, do=True)
        mine = prepared.answer(wire)
        assert mine is not None and not mine[0][2] & 0x04, (name, rdtype)
        assert mine[0] == front.handle(wire, table, tcp=False).wire
    assert prepared.answer(_query("cust000003.mix.test.", "DS")) is None


def test_glue_that_answers_the_question_comes_first() -> None:
    """A question for glue (a provider's zones each delegate with glue: 3 of genzone's
    20-record zone's 19 questions) is a prepared referral with that glue first in the
    additional section, then its name's other type, then the rest in BIND's passes
    (``query_glueanswer``): the general path's bytes."""
    table = _table({"mix.test.": MIX})
    prepared = PreparedAnswers(table)
    for name, rdtype in [
        ("ns1.cust000003.mix.test.", "A"),
        ("ns1.cust000003.mix.test.", "AAAA"),
        ("NS2.cust000003.mix.test.", "A"),
    ]:
        for shape in SHAPES:
            wire = _query(name, rdtype, **shape)
            mine = prepared.answer(wire)
            assert mine is not None, (name, rdtype, shape)
            assert mine[0] == front.handle(wire, table, tcp=False).wire, (name, rdtype, shape)
            reply = dns.message.from_wire(mine[0])
            assert not reply.flags & dns.flags.AA and not reply.answer
            first = reply.additional[0]
            assert (first.name, first.rdtype) == (
                dns.name.from_text(name),
                dns.rdatatype.from_text(rdtype),
            )


def test_each_zone_keeps_its_apex_block_at_thousands_of_zones() -> None:
    """The apex block and the negative answers' SOA bytes are kept with each zone's
    version: at more zones than a shared table held (1,024 blocks), a second round of
    SOA and NXDOMAIN questions over every zone builds none again."""
    text = "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\n@ 300 NS ns2\n"
    text += "ns1 300 A 192.0.2.1\nns2 300 A 192.0.2.2\n"
    table = _table({f"z{number}.test.": text for number in range(1500)})
    prepared = PreparedAnswers(table)
    questions = [
        _query(f"{name}z{number}.test.", rdtype)
        for number in range(1500)
        for name, rdtype in (("", "SOA"), ("nx.", "A"))
    ]
    first = [prepared.answer(wire) for wire in questions]
    kept = {key: dict(zone.version.kept or {}) for key, zone in table.zones.items() if zone.version}
    again = [prepared.answer(wire) for wire in questions]
    assert first == again and all(reply is not None for reply in first)
    for key, zone in table.zones.items():
        assert zone.version is not None and zone.version.kept is not None
        assert len(kept[key]) == 2  # the block and the NXDOMAIN's SOA bytes
        for what, value in zone.version.kept.items():
            assert kept[key][what] is value, (key, what)  # the same objects: none built again
    wire = questions[0]
    assert first[0] is not None and first[0][0] == front.handle(wire, table, tcp=False).wire


def test_a_delegations_referral_sections_are_made_once_a_version() -> None:
    """Every name at or below a delegation shares its referral's sections (the cut's NS and
    glue), made on the first referral of the version; a new version makes its own."""
    table = _table({"mix.test.": MIX})
    prepared = PreparedAnswers(table)
    zone = table.zones["mix.test."]
    names = ["cust000003.mix.test.", "www.cust000003.mix.test.", "a.b.cust000003.mix.test."]
    for name in names:
        wire = _query(name, "A", edns=1232)
        mine = prepared.answer(wire)
        assert mine is not None and mine[0] == front.handle(wire, table, tcp=False).wire
    assert zone.version is not None and zone.version.kept is not None
    cuts = [value for value in zone.version.kept.values() if isinstance(value, dict)]
    assert len(cuts) == 1 and list(cuts[0]) == ["cust000003.mix.test."]
    block = cuts[0]["cust000003.mix.test."]
    assert block is not None and len(block.templates) >= 2  # (names of other depths)
    zone.swap(ZoneVersion.from_lines(zone.origin, zone_lines(MIX, "mix.test.")))
    wire = _query("www.cust000003.mix.test.", "A", edns=1232)
    mine = prepared.answer(wire)
    assert mine is not None and mine[0] == front.handle(wire, table, tcp=False).wire
    assert zone.version.kept is not None
    assert all(
        value["cust000003.mix.test."] is not block
        for value in zone.version.kept.values()
        if isinstance(value, dict)
    )
