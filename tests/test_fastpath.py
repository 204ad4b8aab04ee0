"""The NXDOMAIN fast path gives exactly the full path's answer, or steps aside."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest
from xfrwire import records

from secdns import zonefile
from secdns.server import front as answer
from secdns.server.fastpath import NegativeAnswers, _same, parse_plain, split_cookie
from secdns.server.zone import ServedZone, ZoneTable, ZoneVersion

ZONE = """
@ 3600 IN SOA ns1 hostmaster 7 7200 900 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.80
a.b.c 60 IN TXT "deep; b.c and c are empty non-terminals"
sub 3600 IN NS ns.sub
ns.sub 3600 IN A 192.0.2.53
*.wild 60 IN A 192.0.2.9
legacy 60 IN DNAME example.net.
"""


def table_for(text: str, origin: str = "example.com.") -> tuple[ZoneTable, ServedZone]:
    name = dns.name.from_text(origin)
    version = ZoneVersion.from_lines(name, zonefile.canonical_lines(records(text, origin)))
    zone = ServedZone(name)
    zone.swap(version)
    table = ZoneTable()
    table.add(zone)
    return table, zone


def query(
    name: str, rdtype: str = "A", *, rd: bool = False, edns: int = -1, cd: bool = False
) -> bytes:
    q = dns.message.make_query(name, rdtype, use_edns=edns)
    q.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
    return q.to_wire()


SHAPES = [dict(), dict(rd=True), dict(edns=0), dict(rd=True, edns=0, cd=True)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fast_answers_equal_the_full_path(shape):
    table, zone = table_for(ZONE)
    fast = NegativeAnswers(table)
    first = query("nope.example.com.", **shape)
    slow = answer.handle(first, table, tcp=False).wire
    assert fast.answer(first) is None  # nothing learnt yet
    fast.learn(first, slow, zone)
    rng = random.Random(5)
    names = [f"nx{rng.randrange(10**6)}.example.com." for _ in range(200)]
    names += [
        "NX.Example.COM.",
        "x.y.z.example.com.",
        "q.a.b.c.example.com.",
        "zz.c.example.com.",
        "deep.www.example.com.",
    ]
    for name in names:
        wire = query(name, **shape)
        mine = fast.answer(wire)
        full = answer.handle(wire, table, tcp=False).wire
        assert mine is not None, name
        assert dns.message.from_wire(full).rcode() == dns.rcode.NXDOMAIN
        assert _same(mine, full), name
    assert fast.used == len(names)


@pytest.mark.parametrize(
    "name",
    [
        "www.example.com.",  # exists
        "c.example.com.",  # empty non-terminal: NODATA, not NXDOMAIN
        "x.wild.example.com.",  # wildcard
        "x.sub.example.com.",  # below a delegation: referral
        "x.legacy.example.com.",  # below a DNAME
        "x.example.org.",  # not our zone
    ],
)
def test_steps_aside_when_not_a_plain_nxdomain(name):
    table, zone = table_for(ZONE)
    fast = NegativeAnswers(table)
    first = query("nope.example.com.")
    fast.learn(first, answer.handle(first, table, tcp=False).wire, zone)
    assert fast.answer(query(name)) is None


def test_template_dies_with_the_zone_version():
    table, zone = table_for(ZONE)
    fast = NegativeAnswers(table)
    first = query("nope.example.com.")
    fast.learn(first, answer.handle(first, table, tcp=False).wire, zone)
    assert fast.answer(query("other.example.com.")) is not None
    zone.swap(zone.version.apply([(["www 300 IN A 192.0.2.80"], ["other 60 IN A 192.0.2.1"])], 8))
    assert fast.answer(query("other.example.com.")) is None
    zone.expired = True
    assert fast.answer(query("third.example.com.")) is None


def test_apex_wildcard_and_odd_queries_step_aside():
    table, zone = table_for(ZONE + "* 60 IN A 192.0.2.99\n")
    fast = NegativeAnswers(table)
    first = query("nope.sub2.example.com.")
    reply = answer.handle(first, table, tcp=False).wire
    fast.learn(first, reply, zone)  # not an NXDOMAIN at all: the wildcard answers
    assert fast.answer(first) is None
    assert parse_plain(query("x.example.com.", edns=0) + b"\x00") is None
    do = dns.message.make_query("x.example.com.", "A", want_dnssec=True).to_wire()
    assert parse_plain(do) is None
    assert parse_plain(query("x.example.com.", "ANY")) is None
    assert parse_plain(b"\x00" * 11) is None


def test_cookie_is_split_off_for_the_cache_and_answered_with_a_server_cookie():
    table, _zone = table_for(ZONE)
    plain = dns.message.make_query("www.example.com.", "A", use_edns=0)
    cookie = dns.message.make_query(
        "www.example.com.",
        "A",
        use_edns=0,
        options=[dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)],
    )
    cookie.id = plain.id
    assert split_cookie(cookie.to_wire()) == (plain.to_wire(), b"\x01" * 8)
    assert split_cookie(plain.to_wire()) is None
    reply = answer.handle(cookie.to_wire(), table, tcp=False, client="192.0.2.1")
    without = answer.handle(plain.to_wire(), table, tcp=False).wire
    assert reply.cacheable and reply.cookie == answer.COOKIE_OPTION_SIZE
    assert reply.wire[: -(reply.cookie + 2)] + b"\x00\x00" == without  # the same but the cookie
    response = dns.message.from_wire(reply.wire)
    (option,) = response.options
    assert option.client == b"\x01" * 8 and len(option.server) == 16
    assert answer.cookie_valid(option.client, option.server, "192.0.2.1")
    assert not answer.cookie_valid(option.client, option.server, "192.0.2.2")
    assert not answer.cookie_valid(b"\x02" * 8, option.server, "192.0.2.1")
    padded = dns.message.make_query(
        "www.example.com.",
        "A",
        use_edns=0,
        options=[dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"\x00" * 8)],
    )
    assert split_cookie(padded.to_wire()) is None


REFUSAL_SHAPES = SHAPES + [dict(rd=True, cd=True), dict(edns=0, cd=True)]


@pytest.mark.parametrize("shape", REFUSAL_SHAPES)
def test_refused_and_unready_answers_equal_the_full_path(shape):
    """REFUSED (a name of no zone here) and SERVFAIL (a zone with no version yet, or
    expired): once learnt per query shape, the template gives the full path's bytes for
    every name; it steps aside once the zone has something to serve."""
    table, served = table_for(ZONE)
    empty = ServedZone(dns.name.from_text("empty.test."))  # configured, no transfer yet
    table.add(empty)
    fast = NegativeAnswers(table)
    cases = {
        "refused": ["nothere.example.", "a.b.c.example.org.", "test.", "Empty.Test.Example."],
        "unready": ["empty.test.", "WWW.Empty.test.", "a.b.c.empty.test."],
    }
    for state, names in cases.items():
        first = query(names[0], **shape)
        full = answer.handle(first, table, tcp=False).wire
        assert fast.refusal(first) is None  # nothing learnt yet
        fast.learn_refusal(first, full)
        for name in names:
            for rdtype in ("A", "SOA", "MX", "TXT"):
                wire = query(name, rdtype, **shape)
                full = answer.handle(wire, table, tcp=False).wire
                assert dns.message.from_wire(full).rcode() == (
                    dns.rcode.REFUSED if state == "refused" else dns.rcode.SERVFAIL
                )
                assert fast.refusal(wire) == full, (state, name, rdtype)
    assert fast.refusal(query("www.example.com.", **shape)) is None  # served: answered
    served.expired = True  # the same SERVFAIL? learnt on its own
    wire = query("www.example.com.", **shape)
    assert fast.refusal(wire) is None
    fast.learn_refusal(wire, answer.handle(wire, table, tcp=False).wire)
    assert fast.refusal(wire) == answer.handle(wire, table, tcp=False).wire
    empty.swap(served.version)  # (any version: the zone now answers)
    assert fast.refusal(query("www.empty.test.", **shape)) is None


def test_refusal_templates_learn_only_the_simple_shape():
    table, zone = table_for(ZONE)
    fast = NegativeAnswers(table)
    wire = query("www.example.com.")  # an answer, not a refusal: nothing learnt
    fast.learn_refusal(wire, answer.handle(wire, table, tcp=False).wire)
    assert not fast.refusals
    other = query("nothere.example.")
    # a SERVFAIL (an internal error, say) where the state says REFUSED: not learnt
    reply = bytearray(answer.handle(other, table, tcp=False).wire)
    reply[3] = (reply[3] & 0xF0) | dns.rcode.SERVFAIL
    fast.learn_refusal(other, bytes(reply))
    assert not fast.refusals
    # a REFUSED with more in it than the template makes: kept out for good
    fast.learn_refusal(other, answer.handle(other, table, tcp=False).wire + b"\x00")
    assert fast.refusals == {("refused", 0, False): None}
    assert fast.refusal(other) is None
    do = dns.message.make_query("nothere.example.", "A", want_dnssec=True).to_wire()
    fast.learn_refusal(do, answer.handle(do, table, tcp=False).wire)
    assert fast.refusal(do) is None
