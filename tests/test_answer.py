"""The answer path (server.front, lookup, denial, render): rules, a battery against BIND, fuzzing.

1. Unit tests of ``answer()`` and ``handle()`` on small zones built here.
2. The battery: tests/zones/answer/ (plus copies signed with NSEC and NSEC3 by
   dnssec-signzone) loaded into BIND 9.18 and into a ZoneTable; each query goes
   to both as wire and the responses are compared section by section (rcode,
   flags, question case, EDNS, and the RRsets of every section as sets, names
   compared case-sensitively, TTLs included).  BIND runs with ``minimal-any
   yes`` (RFC 8482), which secdns implements; everything else is its default.
3. Fuzzing: thousands of random and mutated packets through ``handle()``.

Deliberate differences from BIND (not in the battery, each pinned by a test here):

* A query with bytes after its question gets FORMERR; BIND ignores the junk.
* Class CH is REFUSED for every name; BIND answers version.bind, hostname.bind,
  authors.bind and id.server from its built-in view (the version unless
  ``version none``).
* BIND prefers AAAA glue for IPv6 clients when the additional section is cut;
  ``handle()`` does not know the client's address family and always fills A
  first, as BIND does for IPv4 clients (the battery runs over IPv4).
"""

from __future__ import annotations

import collections
import dataclasses
import random
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.zone
import pytest
import xfrwire
from cryptography.hazmat.primitives.asymmetric import ed25519
from servers import Bind, ServerError, need_binary

from secdns import zonefile
from secdns.server.front import Reply, _plain_query, handle
from secdns.server.lookup import answer
from secdns.server.prepared import PreparedAnswers
from secdns.server.render import EDNS_PAYLOAD
from secdns.server.zone import ServedZone, ZoneTable, ZoneVersion

ZONES = Path(__file__).parent / "zones" / "answer"


# --- helpers ------------------------------------------------------------------------------------


def zone_lines(text: str, origin: str) -> list[str]:
    """Canonical store lines of zone text, as a transfer would leave them."""
    return zonefile.canonical_lines(xfrwire.records(text, origin))


def served(origin: str, text: str) -> ServedZone:
    zone = ServedZone(dns.name.from_text(origin))
    zone.swap(ZoneVersion.from_lines(zone.origin, zone_lines(text, origin)))
    return zone


def table_of(zones: dict[str, str]) -> ZoneTable:
    table = ZoneTable()
    for origin, text in zones.items():
        table.add(served(origin, text))
    return table


def make_query(
    name: str,
    rdtype: str = "A",
    *,
    rd: bool = False,
    edns: int | None = None,
    do: bool = False,
    rdclass: str = "IN",
) -> dns.message.Message:
    if edns is None and do:
        edns = EDNS_PAYLOAD
    if edns is None:
        query = dns.message.make_query(name, rdtype, rdclass, use_edns=False)
    else:
        query = dns.message.make_query(
            name, rdtype, rdclass, use_edns=0, payload=edns, want_dnssec=do
        )
    query.flags = dns.flags.RD if rd else 0
    return query


def ask(
    table: ZoneTable, name: str, rdtype: str = "A", *, tcp: bool = False, **kw: object
) -> dns.message.Message:
    return answer(make_query(name, rdtype, **kw), table, tcp=tcp)  # type: ignore[arg-type]


def ask_wire(
    table: ZoneTable, name: str, rdtype: str = "A", *, tcp: bool = False, **kw: object
) -> tuple[dns.message.Message, Reply]:
    reply = handle(make_query(name, rdtype, **kw).to_wire(), table, tcp=tcp)  # type: ignore[arg-type]
    assert reply.wire is not None
    return dns.message.from_wire(reply.wire), reply


def records(section: list[dns.rrset.RRset]) -> set[str]:
    """One ``owner ttl class type rdata`` string per record, owner case kept."""
    out = set()
    for rrset in section:
        for rd in rrset:
            out.add(
                f"{rrset.name} {rrset.ttl} {dns.rdataclass.to_text(rrset.rdclass)} "
                f"{dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text()}"
            )
    return out


def types_in(section: list[dns.rrset.RRset]) -> set[tuple[str, str]]:
    return {
        (
            str(r.name),
            dns.rdatatype.to_text(r.rdtype if r.rdtype != dns.rdatatype.RRSIG else r.covers)
            + ("/SIG" if r.rdtype == 46 else ""),
        )
        for r in section
    }


# --- small zones for the unit tests -------------------------------------------------------------

EXAMPLE = """\
$ORIGIN example.
$TTL 300
@           3600  SOA   ns1 hostmaster 1 7200 900 1209600 60
@                 NS    ns1
@                 NS    ns2.elsewhere.
@                 MX    10 mail
ns1               A     192.0.2.1
ns1               AAAA  2001:db8::1
mail              A     192.0.2.25
www               A     192.0.2.80
www               AAAA  2001:db8::80
WithCase          A     192.0.2.81
alias             CNAME www
alias2            CNAME alias
dangling          CNAME nowhere
ext               CNAME www.elsewhere.
tochild           CNAME www.child
loop              CNAME loop
*.wild            A     192.0.2.100
*.wild            TXT   "wild"
real.wild         A     192.0.2.101
host.ent.wild     A     192.0.2.102
below.*.wild      TXT   "below the wildcard"
*.wc              CNAME www
a.b.ent           TXT   "deep"
dn          600   DNAME target.test.
sub               NS    ns.sub
sub               NS    ns1
sub         7200  DS    12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE0E9E4E5F3B9F1F5F0D5B2F31
ns.sub            A     192.0.2.53
child             NS    ns.child
child             DS    54321 13 2 0A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F9
ns.child          A     192.0.2.54
_x._tcp           SRV   0 0 80 www
big               TXT   "{pad} 1"
big               TXT   "{pad} 2"
big               TXT   "{pad} 3"
big               TXT   "{pad} 4"
big               TXT   "{pad} 5"
big               TXT   "{pad} 6"
big               TXT   "{pad} 7"
big               TXT   "{pad} 8"
""".replace("{pad}", "x" * 90)

CHILD = """\
$ORIGIN child.example.
$TTL 300
@                 SOA   ns hostmaster 1 7200 900 1209600 300
@                 NS    ns
ns                A     192.0.2.54
www               A     192.0.2.55
"""


@pytest.fixture(scope="module")
def table() -> ZoneTable:
    return table_of({"example": EXAMPLE, "child.example": CHILD})


# --- 1. the rules -------------------------------------------------------------------------------


def test_exact_match_is_authoritative_with_apex_ns_and_addresses(table: ZoneTable) -> None:
    response = ask(table, "www.example", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert records(response.answer) == {"www.example. 300 IN A 192.0.2.80"}
    assert records(response.authority) == {
        "example. 300 IN NS ns1.example.",
        "example. 300 IN NS ns2.elsewhere.",
    }
    # the in-zone name server's addresses; never an out-of-zone one
    assert records(response.additional) == {
        "ns1.example. 300 IN A 192.0.2.1",
        "ns1.example. 300 IN AAAA 2001:db8::1",
    }


def test_rd_drops_the_authority_ns_like_bind_no_auth_recursive(table: ZoneTable) -> None:
    response = ask(table, "www.example", "A", rd=True)
    assert response.flags & dns.flags.RD and not response.flags & dns.flags.RA
    assert response.authority == [] and response.additional == []
    assert records(response.answer) == {"www.example. 300 IN A 192.0.2.80"}


def test_question_case_is_echoed_and_owner_case_is_the_zones(table: ZoneTable) -> None:
    response, _ = ask_wire(table, "wItHcAsE.EXAMPLE", "A", rd=True)
    assert str(response.question[0].name) == "wItHcAsE.EXAMPLE."
    assert str(response.answer[0].name) == "WithCase.example."
    response, _ = ask_wire(table, "WWW.example", "A", rd=True)
    assert str(response.question[0].name) == "WWW.example."
    assert str(response.answer[0].name) == "www.example."


def test_ns_at_apex_answers_without_repeating_it_in_authority(table: ZoneTable) -> None:
    response = ask(table, "example", "NS")
    assert len(response.answer) == 1 and response.authority == []
    assert "ns1.example. 300 IN A 192.0.2.1" in records(response.additional)


def test_mx_and_srv_targets_get_addresses(table: ZoneTable) -> None:
    response = ask(table, "example", "MX", rd=True)
    assert records(response.additional) == {"mail.example. 300 IN A 192.0.2.25"}
    response = ask(table, "_x._tcp.example", "SRV", rd=True)
    assert records(response.additional) == {
        "www.example. 300 IN A 192.0.2.80",
        "www.example. 300 IN AAAA 2001:db8::80",
    }


def test_cname_chain_is_followed_inside_the_zone(table: ZoneTable) -> None:
    response = ask(table, "alias2.example", "AAAA", rd=True)
    assert records(response.answer) == {
        "alias2.example. 300 IN CNAME alias.example.",
        "alias.example. 300 IN CNAME www.example.",
        "www.example. 300 IN AAAA 2001:db8::80",
    }
    assert [str(r.name) for r in response.answer] == [
        "alias2.example.",
        "alias.example.",
        "www.example.",
    ]
    assert response.flags & dns.flags.AA


def test_cname_query_type_is_not_followed(table: ZoneTable) -> None:
    response = ask(table, "alias.example", "CNAME", rd=True)
    assert records(response.answer) == {"alias.example. 300 IN CNAME www.example."}


def test_cname_to_nodata_and_nxdomain_report_the_end_of_the_chain(table: ZoneTable) -> None:
    response = ask(table, "alias.example", "MX")
    assert response.rcode() == dns.rcode.NOERROR
    assert types_in(response.authority) == {("example.", "SOA")}
    response = ask(table, "dangling.example", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert records(response.answer) == {"dangling.example. 300 IN CNAME nowhere.example."}


def test_cname_leaving_the_zone_stops_even_into_a_zone_we_serve(table: ZoneTable) -> None:
    for name, target in (
        ("ext.example", "www.elsewhere."),
        ("tochild.example", "www.child.example."),
    ):
        response = ask(table, name, "A")
        assert response.rcode() == dns.rcode.NOERROR
        assert records(response.answer) == {f"{name}. 300 IN CNAME {target}"}
        assert response.authority == [] and response.additional == []


def test_cname_loop_is_servfail_with_ede(table: ZoneTable) -> None:
    response = ask(table, "loop.example", "A", edns=1232)
    assert response.rcode() == dns.rcode.SERVFAIL
    assert records(response.answer) == {"loop.example. 300 IN CNAME loop.example."}
    assert [(o.code, o.text) for o in response.options] == [(0, "max. restarts reached")]


def test_wildcard_synthesizes_the_query_name(table: ZoneTable) -> None:
    # BIND renders a synthesized owner through the wildcard owner's case, octet by octet:
    # with the zone's all-lowercase '*.wild', the query name comes back lowercased
    response, _ = ask_wire(table, "Any.Thing.wild.example", "TXT", rd=True)
    assert str(response.question[0].name) == "Any.Thing.wild.example."
    assert records(response.answer) == {'any.thing.wild.example. 300 IN TXT "wild"'}
    response = ask(table, "x.wild.example", "MX")
    assert response.rcode() == dns.rcode.NOERROR and response.answer == []
    assert types_in(response.authority) == {("example.", "SOA")}


def test_wildcard_does_not_cover_existing_names_or_empty_non_terminals(table: ZoneTable) -> None:
    # an existing name: NODATA, not the wildcard's TXT
    response = ask(table, "real.wild.example", "TXT")
    assert response.rcode() == dns.rcode.NOERROR and response.answer == []
    # below an existing name: NXDOMAIN (the closest encloser has no wildcard)
    assert ask(table, "x.real.wild.example", "A").rcode() == dns.rcode.NXDOMAIN
    # an empty non-terminal blocks the wildcard too (RFC 4592 2.2.2)
    response = ask(table, "ent.wild.example", "A")
    assert response.rcode() == dns.rcode.NOERROR and response.answer == []
    assert ask(table, "x.ent.wild.example", "A").rcode() == dns.rcode.NXDOMAIN


def test_the_wildcard_owner_queried_directly_and_names_below_it(table: ZoneTable) -> None:
    response = ask(table, "*.wild.example", "A")
    assert records(response.answer) == {"*.wild.example. 300 IN A 192.0.2.100"}
    response = ask(table, "below.*.wild.example", "TXT")
    assert records(response.answer) == {'below.*.wild.example. 300 IN TXT "below the wildcard"'}
    # '*.wild' exists, so it is the closest encloser of x.*.wild and has no '*' child
    assert ask(table, "x.*.wild.example", "A").rcode() == dns.rcode.NXDOMAIN


def test_wildcard_cname_is_synthesized_and_followed(table: ZoneTable) -> None:
    response = ask(table, "a.wc.example", "A")
    assert records(response.answer) == {
        "a.wc.example. 300 IN CNAME www.example.",
        "www.example. 300 IN A 192.0.2.80",
    }


def test_dname_synthesizes_a_cname_with_the_dname_ttl(table: ZoneTable) -> None:
    response = ask(table, "a.b.dn.example", "A")
    assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
    assert records(response.answer) == {
        "dn.example. 600 IN DNAME target.test.",
        "a.b.dn.example. 600 IN CNAME a.b.target.test.",
    }
    # the DNAME owner itself is not redirected
    response = ask(table, "dn.example", "A")
    assert response.answer == [] and types_in(response.authority) == {("example.", "SOA")}


def test_dname_overflowing_255_octets_is_yxdomain(table: ZoneTable) -> None:
    label = "a" * 63
    response = ask(table, f"{label}.{label}.{label}.{'b' * 50}.dn.example", "A")
    assert response.rcode() == dns.rcode.YXDOMAIN
    assert records(response.answer) == {"dn.example. 600 IN DNAME target.test."}


def test_referral_has_the_delegation_ns_glue_and_no_aa(table: ZoneTable) -> None:
    for name in ("sub.example", "deep.down.sub.example"):
        response = ask(table, name, "A", rd=True)
        assert response.rcode() == dns.rcode.NOERROR
        assert not response.flags & dns.flags.AA
        assert response.answer == []
        assert records(response.authority) == {
            "sub.example. 300 IN NS ns.sub.example.",
            "sub.example. 300 IN NS ns1.example.",
        }
        # glue only: ns1 is authoritative data, not glue, and BIND leaves it out too
        assert records(response.additional) == {"ns.sub.example. 300 IN A 192.0.2.53"}
    # NS at the cut is the child's: a referral, not an answer
    assert not ask(table, "sub.example", "NS").flags & dns.flags.AA


def test_ds_is_answered_from_the_parent_side(table: ZoneTable) -> None:
    response = ask(table, "sub.example", "DS")
    assert response.flags & dns.flags.AA
    assert types_in(response.answer) == {("sub.example.", "DS")}
    assert response.answer[0].ttl == 7200
    assert response.authority == []  # BIND answers DS minimally
    # the child zone is ours too: DS still comes from the parent zone
    response = ask(table, "child.example", "DS")
    assert types_in(response.answer) == {("child.example.", "DS")}
    # and the child apex's own data from the child zone
    response = ask(table, "child.example", "SOA")
    assert records(response.answer) == {
        "child.example. 300 IN SOA ns.child.example. hostmaster.child.example. 1 7200 900 "
        "1209600 300"
    }


def test_nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl(table: ZoneTable) -> None:
    for name, rcode in (
        ("nothing.example", dns.rcode.NXDOMAIN),
        ("www.example", dns.rcode.NOERROR),
    ):
        response = ask(table, name, "TXT", rd=True)
        assert response.rcode() == rcode and response.flags & dns.flags.AA
        assert response.answer == []
        # RFC 2308: min(SOA TTL 3600, MINIMUM 60)
        assert records(response.authority) == {
            "example. 60 IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 60"
        }


def test_empty_non_terminals_are_nodata(table: ZoneTable) -> None:
    for name in ("b.ent.example", "ent.example"):
        response = ask(table, name, "A")
        assert response.rcode() == dns.rcode.NOERROR and response.answer == []
        assert types_in(response.authority) == {("example.", "SOA")}


def test_names_outside_every_zone_are_refused(table: ZoneTable) -> None:
    for name in ("example.com", ".", "elsewhere"):
        response = ask(table, name, "A")
        assert response.rcode() == dns.rcode.REFUSED
        assert not response.flags & dns.flags.AA
        assert response.answer == response.authority == []


def test_a_zone_without_data_is_servfail(table: ZoneTable) -> None:
    zones = ZoneTable()
    zones.add(ServedZone(dns.name.from_text("example")))
    response, reply = ask_wire(zones, "www.example", "A")
    assert response.rcode() == dns.rcode.SERVFAIL and not reply.cacheable
    expired = served("example", EXAMPLE)
    expired.expired = True
    zones = ZoneTable()
    zones.add(expired)
    assert ask(zones, "www.example", "A").rcode() == dns.rcode.SERVFAIL


def test_other_classes(table: ZoneTable) -> None:
    # CH: refused, as BIND does for CH names outside its built-in view (deliberately for all)
    response = ask(table, "version.bind", "TXT", rdclass="CH", edns=1232)
    assert response.rcode() == dns.rcode.REFUSED and response.options == ()
    # a class no view serves: REFUSED with EDE 18 (Prohibited), as BIND
    response = ask(table, "www.example", "A", rdclass="HS", edns=1232)
    assert response.rcode() == dns.rcode.REFUSED
    assert [o.code for o in response.options] == [dns.edns.EDECode.PROHIBITED]
    # class ANY in a query: FORMERR, as BIND
    assert ask(table, "www.example", "A", rdclass="ANY").rcode() == dns.rcode.FORMERR


def rdtype_of(text: str) -> int:
    return dns.rdatatype.from_text(text)


def test_meta_query_types(table: ZoneTable) -> None:
    assert ask(table, "www.example", "MAILB").rcode() == dns.rcode.NOTIMP
    assert ask(table, "www.example", "TSIG").rcode() == dns.rcode.FORMERR
    assert ask(table, "www.example", "OPT").rcode() == dns.rcode.FORMERR
    for rdtype in ("AXFR", "IXFR"):
        reply = handle(make_query("example", rdtype).to_wire(), table, tcp=True)
        assert (reply.wire, reply.kind) == (None, "xfr")
        assert reply.query is not None and reply.query.question[0].rdtype == rdtype_of(rdtype)


def test_any_is_minimal_over_udp_and_full_over_tcp(table: ZoneTable) -> None:
    response = ask(table, "example", "ANY")
    assert types_in(response.answer) == {("example.", "SOA")}
    assert response.authority == [] and response.additional == []
    response = ask(table, "example", "ANY", tcp=True)
    assert types_in(response.answer) == {("example.", t) for t in ("SOA", "NS", "MX")}
    assert response.authority == [] and response.additional == []
    response = ask(table, "www.example", "ANY", tcp=True)
    assert types_in(response.answer) == {("www.example.", "A"), ("www.example.", "AAAA")}
    assert types_in(response.authority) == {("example.", "NS")}


def test_minimal_any_picks_the_first_rrset_in_bind_node_order() -> None:
    """BIND iterates a node's priority types (A, MX, TXT, ...) first, each group in
    zone-file order; the canonical file orders types by number."""
    zones = table_of(
        {
            "example": EXAMPLE.replace(
                "ns1               A     192.0.2.1\n",
                (
                    "ns1               A     192.0.2.1\n"
                    'prio              HINFO "cpu" "os"\n'
                    "prio              MX    10 mail\n"
                    'rest              CAA   0 issue "ca.example"\n'
                    'rest              HINFO "cpu" "os"\n'
                ),
            )
        }
    )
    assert types_in(ask(zones, "prio.example", "ANY").answer) == {("prio.example.", "MX")}
    assert types_in(ask(zones, "rest.example", "ANY").answer) == {("rest.example.", "HINFO")}
    assert types_in(ask(zones, "rest.example", "ANY", tcp=True).answer) == {
        ("rest.example.", "HINFO"),
        ("rest.example.", "CAA"),
    }


def test_the_fast_query_parser_agrees_with_dnspython() -> None:
    for query in (
        make_query("www.example", "A"),
        make_query("WwW.Example", "AAAA", rd=True),
        make_query("example", "ANY", edns=4096, do=True),
        make_query("x.example", "TYPE65280", edns=300),
        make_query(".", "NS", edns=1232),
    ):
        wire = query.to_wire()
        fast = _plain_query(wire)
        slow = dns.message.from_wire(wire)
        assert fast is not None
        assert (
            fast.id,
            int(fast.flags),
            fast.edns,
            fast.ednsflags,
            fast.payload if fast.edns >= 0 else None,
        ) == (
            slow.id,
            int(slow.flags),
            slow.edns,
            slow.ednsflags,
            slow.payload if slow.edns >= 0 else None,
        )
        assert [(str(q.name), q.rdtype, q.rdclass) for q in fast.question] == [
            (str(q.name), q.rdtype, q.rdclass) for q in slow.question
        ]
    # anything else goes to dnspython: options, compression, trailing bytes, TSIG
    with_option = make_query("www.example", "A", edns=1232)
    with_option.use_edns(0, payload=1232, options=[dns.edns.GenericOption(10, b"12345678")])
    compressed = bytearray(make_query("example", "A").to_wire())
    for wire in (
        with_option.to_wire(),
        make_query("www.example").to_wire() + b"x",
        bytes(compressed[:12]) + b"\x03www\xc0\x0c" + bytes(compressed[-4:]),
    ):
        assert _plain_query(wire) is None


def test_edns_is_echoed_with_our_payload_and_badvers(table: ZoneTable) -> None:
    response, _ = ask_wire(table, "www.example", "A", edns=4096, do=True)
    assert response.edns == 0 and response.payload == EDNS_PAYLOAD
    assert response.ednsflags & dns.flags.DO
    response, _ = ask_wire(table, "www.example", "A")
    assert response.edns == -1
    query = make_query("www.example", "A", edns=1232)
    query.use_edns(1, payload=1232)
    response = dns.message.from_wire(handle(query.to_wire(), table, tcp=False).wire or b"")
    assert response.rcode() == dns.rcode.BADVERS and response.edns == 0
    assert response.answer == [] and not response.flags & dns.flags.AA


def test_truncation_without_edns_sends_the_records_that_fit(table: ZoneTable) -> None:
    response, _ = ask_wire(table, "big.example", "TXT")
    assert response.flags & dns.flags.TC
    assert 0 < sum(len(r) for r in response.answer) < 8  # a partial RRset, as BIND
    assert (
        len(handle(make_query("big.example", "TXT").to_wire(), table, tcp=False).wire or b"") <= 512
    )


def test_truncation_with_edns_sends_whole_rrsets_only(table: ZoneTable) -> None:
    query = make_query("big.example", "TXT", edns=600)
    wire = handle(query.to_wire(), table, tcp=False).wire or b""
    response = dns.message.from_wire(wire)
    assert response.flags & dns.flags.TC and response.answer == []
    assert len(wire) <= 600
    response, _ = ask_wire(table, "big.example", "TXT", edns=1232)
    assert not response.flags & dns.flags.TC and len(response.answer[0]) == 8
    response, _ = ask_wire(table, "big.example", "TXT", tcp=True)
    assert not response.flags & dns.flags.TC and len(response.answer[0]) == 8


def test_small_edns_buffers_get_minimal_responses(table: ZoneTable) -> None:
    response, _ = ask_wire(table, "www.example", "A", edns=512)
    assert response.answer and response.authority == [] and response.additional == []


def test_dnssec_answers_signed_zone() -> None:
    """RRSIGs and NSEC proofs on a zone signed here with dnspython."""
    zones = table_of({"example": signed_with_dnspython(EXAMPLE, "example")})
    response = ask(zones, "www.example", "A", do=True)
    assert types_in(response.answer) == {("www.example.", "A"), ("www.example.", "A/SIG")}
    assert ("example.", "NS/SIG") in types_in(response.authority)
    assert ("ns1.example.", "A/SIG") in types_in(response.additional)
    # no DO: no DNSSEC records
    response = ask(zones, "www.example", "A")
    assert types_in(response.answer) == {("www.example.", "A")}
    # NODATA: the SOA (negative TTL on the signature too) and the name's NSEC
    response = ask(zones, "www.example", "TXT", do=True)
    assert types_in(response.authority) == {
        ("example.", "SOA"),
        ("example.", "SOA/SIG"),
        ("www.example.", "NSEC"),
        ("www.example.", "NSEC/SIG"),
    }
    assert {r.ttl for r in response.authority if r.name == dns.name.from_text("example")} == {60}
    # NXDOMAIN: the NSEC covering the name and the one covering the wildcard
    response = ask(zones, "nothing.example", "A", do=True)
    nsecs = {str(r.name) for r in response.authority if r.rdtype == dns.rdatatype.NSEC}
    assert nsecs == {"mail.example.", "example."}
    # a wildcard answer proves the name itself does not exist
    response = ask(zones, "x.wild.example", "A", do=True)
    assert ("x.wild.example.", "A/SIG") in types_in(response.answer)
    assert ("ent.wild.example.", "NSEC") not in types_in(response.authority)
    assert any(r.rdtype == dns.rdatatype.NSEC for r in response.authority)
    # a referral with DO carries the signed DS
    response = ask(zones, "x.sub.example", "A", do=True)
    assert ("sub.example.", "DS") in types_in(response.authority)
    assert ("sub.example.", "DS/SIG") in types_in(response.authority)


def test_empty_non_terminal_nsec_is_the_one_before_it() -> None:
    zones = table_of({"example": signed_with_dnspython(EXAMPLE, "example")})
    response = ask(zones, "b.ent.example", "A", do=True)
    nsecs = [r for r in response.authority if r.rdtype == dns.rdatatype.NSEC]
    assert [str(r.name) for r in nsecs] == ["dn.example."]
    assert str(next(iter(nsecs[0])).next) == "a.b.ent.example."


def signed_with_dnspython(text: str, origin: str) -> str:
    zone = dns.zone.from_text(text, origin=origin, relativize=False)
    key = ed25519.Ed25519PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ED25519, flags=257)
    dns.dnssec.sign_zone(zone, keys=[(key, dnskey)], lifetime=86400 * 30, dnskey_ttl=3600)
    return zone.to_text(relativize=False)


# --- the wire layer ----------------------------------------------------------------------------


def test_garbage_is_dropped_or_formerr(table: ZoneTable) -> None:
    assert handle(b"", table, tcp=False).wire is None
    assert handle(b"\x12\x34\x01", table, tcp=False).wire is None
    response = make_query("www.example", "A").to_wire()
    assert handle(response[:2] + b"\x80" + response[3:], table, tcp=False).wire is None  # QR=1
    header = struct.pack("!HHHHHH", 0x1234, 0, 0, 0, 0, 0)
    for wire in (
        header,  # no question
        header[:4] + b"\x00\x02" + response[6:] + response[12:],  # two questions
        response[:20],  # a question cut short
        response + b"junk",
    ):  # trailing bytes
        reply = handle(wire, table, tcp=False)
        assert reply.wire is not None and reply.kind == "error" and not reply.cacheable
        parsed = dns.message.from_wire(reply.wire)
        assert parsed.rcode() == dns.rcode.FORMERR and parsed.id == struct.unpack("!H", wire[:2])[0]


def test_bad_opt_is_formerr_with_the_question(table: ZoneTable) -> None:
    wire = make_query("www.example", "A", edns=1232).to_wire()
    opt = wire[-11:]
    doubled = wire[:10] + b"\x00\x02" + wire[12:] + opt
    reply = handle(doubled, table, tcp=False)
    parsed = dns.message.from_wire(reply.wire or b"")
    assert parsed.rcode() == dns.rcode.FORMERR and parsed.edns == -1
    assert str(parsed.question[0].name) == "www.example."


def test_opcodes(table: ZoneTable) -> None:
    wire = make_query("example", "SOA").to_wire()
    flags = struct.pack("!H", dns.opcode.NOTIFY << 11)
    assert handle(wire[:2] + flags + wire[4:], table, tcp=False) == Reply(
        None, False, None, "notify"
    )
    # UPDATE: REFUSED with the zone section, by the front (the server does not parse it again)
    reply = handle(
        wire[:2] + struct.pack("!H", dns.opcode.UPDATE << 11) + wire[4:], table, tcp=False
    )
    assert reply.kind == "update" and reply.wire is not None
    assert reply.wire[3] & 0xF == dns.rcode.REFUSED and reply.wire[12:] == wire[12:]
    for opcode in (dns.opcode.IQUERY, dns.opcode.STATUS, 3, 6, 15):
        flags = struct.pack("!H", opcode << 11 | dns.flags.RD)
        reply = handle(wire[:2] + flags + wire[4:], table, tcp=False)
        parsed = dns.message.from_wire(reply.wire or b"")
        assert parsed.rcode() == dns.rcode.NOTIMP and parsed.opcode() == opcode
        assert parsed.question == [] and parsed.edns == -1


def test_error_replies_keep_the_opt_of_the_query(table: ZoneTable) -> None:
    """RFC 6891 6.1.1: an OPT in the query requires one in the reply (NOTIMP as BIND)."""
    wire = make_query("example", "SOA", edns=4096).to_wire()
    for opcode in (dns.opcode.IQUERY, 6):
        flags = struct.pack("!H", opcode << 11 | dns.flags.RD)
        parsed = dns.message.from_wire(handle(wire[:2] + flags + wire[4:], table, tcp=False).wire)
        assert parsed.rcode() == dns.rcode.NOTIMP and parsed.edns == 0
        assert parsed.payload == EDNS_PAYLOAD and parsed.question == []
    update = wire[:2] + struct.pack("!H", dns.opcode.UPDATE << 11) + wire[4:]
    parsed = dns.message.from_wire(handle(update, table, tcp=False).wire)
    assert parsed.rcode() == dns.rcode.REFUSED and parsed.edns == 0


def test_cacheable_only_for_plain_queries(table: ZoneTable) -> None:
    plain = handle(make_query("www.example", "A", edns=1232).to_wire(), table, tcp=False)
    assert plain.cacheable and plain.zone is not None and plain.kind == "query"
    assert str(plain.zone.origin) == "example."
    with_option = make_query("www.example", "A", edns=1232)
    with_option.use_edns(0, payload=1232, options=[dns.edns.GenericOption(65001, b"1234")])
    assert not handle(with_option.to_wire(), table, tcp=False).cacheable
    # a COOKIE alone: cacheable without the option (the server adds a fresh one)
    with_option.use_edns(0, payload=1232, options=[dns.edns.GenericOption(10, b"12345678")])
    reply = handle(with_option.to_wire(), table, tcp=False)
    assert reply.cacheable and reply.cookie > 0
    refused = handle(make_query("example.com", "A").to_wire(), table, tcp=False)
    assert refused.zone is None


def test_tsig_signed_queries_get_signed_answers(table: ZoneTable) -> None:
    keyring = dns.tsigkeyring.from_text({"k.": "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="})
    query = make_query("www.example", "A")
    query.use_tsig(keyring, keyname="k.")
    reply = handle(query.to_wire(), table, tcp=False, keyring=keyring)
    assert not reply.cacheable
    response = dns.message.from_wire(reply.wire or b"", keyring=keyring, request_mac=query.mac)
    assert response.had_tsig and response.rcode() == dns.rcode.NOERROR
    assert records(response.answer) == {"www.example. 300 IN A 192.0.2.80"}
    # an unknown key: NOTAUTH, TSIG error BADKEY, unsigned
    reply = handle(query.to_wire(), table, tcp=False, keyring={})
    response = dns.message.from_wire(reply.wire or b"", keyring=False)
    assert response.rcode() == dns.rcode.NOTAUTH
    assert response.tsig is not None and response.tsig[0].error == dns.rcode.BADKEY
    # a bad signature: BADSIG
    other = dns.tsigkeyring.from_text({"k.": "b3RoZXIgc2VjcmV0IG90aGVyIHNlY3JldA=="})
    reply = handle(query.to_wire(), table, tcp=False, keyring=other)
    response = dns.message.from_wire(reply.wire or b"", keyring=False)
    assert response.rcode() == dns.rcode.NOTAUTH and response.tsig[0].error == dns.rcode.BADSIG


# --- 2. the battery against BIND -----------------------------------------------------------------


@dataclasses.dataclass
class Battery:
    bind: Bind
    table: ZoneTable
    plain: Bind
    """BIND with its default ``minimal-any no``: what RRSIG queries are compared with (secdns
    keeps minimal answers for ANY only, RFC 8482)."""


def _sign(workdir: Path, origin: str, text: str, nsec3: str) -> str:
    """Sign zone text with dnssec-keygen + dnssec-signzone: ``nsec3`` is "" for NSEC,
    "nsec3" for NSEC3 without salt or iterations, "optout" for NSEC3 with opt-out."""
    keygen = need_binary("dnssec-keygen")
    signzone = need_binary("dnssec-signzone")
    workdir.mkdir(parents=True, exist_ok=True)
    keys = []
    for extra in (["-f", "KSK"], []):
        done = subprocess.run(
            [keygen, "-q", "-K", str(workdir), "-a", "ECDSAP256SHA256", *extra, origin],
            capture_output=True,
            text=True,
            check=True,
        )
        keys.append(workdir / done.stdout.strip())
    source = workdir / f"{origin}.zone"
    source.write_text(text + "".join(Path(f"{key}.key").read_text() for key in keys))
    out = workdir / f"{origin}.signed"
    argv = [
        signzone,
        "-q",
        "-K",
        str(workdir),
        "-o",
        origin,
        "-e",
        "20500101000000",
        "-f",
        str(out),
    ]
    if nsec3:
        argv += ["-3", "-", "-H", "0"] + (["-A"] if nsec3 == "optout" else [])
    subprocess.run(
        [*argv, str(source), *(str(key) for key in keys)],
        capture_output=True,
        text=True,
        check=True,
        cwd=workdir,
    )
    return out.read_text()


BASE_ZONES = ("answer.example", "other.example", "child.answer.example", "dnapex.example")
SIGNED_ZONES = {"signed.example": "", "nsec3.example": "nsec3", "optout.example": "optout"}


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Battery]:
    """BIND and a ZoneTable serving the same canonical zone files."""
    need_binary(Bind.program)
    workdir = tmp_path_factory.mktemp("answer-battery")
    texts = {origin: (ZONES / f"{origin}.zone").read_text() for origin in BASE_ZONES}
    base = texts["answer.example"]
    for origin, nsec3 in SIGNED_ZONES.items():
        copy = base.replace("answer.example", origin)
        texts[origin] = _sign(workdir / f"sign-{origin}", origin, copy, nsec3)
    # Both sides load the canonical file secdns stores: BIND's node order (minimal ANY)
    # follows the file, so it must be the same file.
    files = {}
    table = ZoneTable()
    for origin, text in texts.items():
        lines = zone_lines(text, origin)
        files[origin] = zonefile.render(dns.name.from_text(origin), None, 3600, lines)
        zone = ServedZone(dns.name.from_text(origin))
        zone.swap(ZoneVersion.from_lines(zone.origin, lines))
        table.add(zone)
    bind = Bind.start(workdir / "bind", files, dynamic=False)
    try:
        plain = Bind.start(workdir / "bind-default", files, dynamic=False)
    except BaseException:
        bind.stop()
        raise
    try:
        _enable_minimal_any(bind)
        yield Battery(bind, table, plain)
    finally:
        bind.stop()
        plain.stop()


def _enable_minimal_any(bind: Bind) -> None:
    """Turn on ``minimal-any yes`` (RFC 8482) in the running named and wait for it."""
    conf = bind.workdir / "named.conf"
    text = conf.read_text()
    assert "    recursion no;\n" in text
    conf.write_text(
        text.replace("    recursion no;\n", "    recursion no;\n    minimal-any yes;\n")
    )
    bind.reload()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            response = dns.query.udp(
                make_query("answer.example", "ANY"), bind.host, port=bind.port, timeout=0.5
            )
            if len(response.answer) == 1:
                return
        except dns.exception.DNSException:
            pass
        time.sleep(0.05)
    raise ServerError(f"minimal-any did not take effect\n{bind.log_tail()}")


LONG = ".".join(["a" * 60] * 2)

# (name relative to the zone ("@" is the apex), type); every rule of answer.py has a line.
BASE_QUERIES: list[tuple[str, str]] = [
    ("@", "SOA"),
    ("@", "NS"),
    ("@", "MX"),
    ("@", "TXT"),
    ("@", "A"),
    ("@", "AAAA"),
    ("@", "ANY"),
    ("@", "DS"),
    ("@", "DNSKEY"),
    ("@", "NSEC3PARAM"),
    ("www", "A"),
    ("WwW", "AAAA"),
    ("www", "MX"),
    ("www", "ANY"),
    ("www", "RRSIG"),
    ("@", "RRSIG"),
    ("foo.wild", "RRSIG"),
    ("www", "NSEC"),
    ("c1", "NSEC"),  # at a CNAME: not followed for NSEC (an NSEC3 zone: NODATA)
    ("www", "TYPE65280"),
    ("ns1", "A"),
    ("mixedcase", "A"),
    ("MIXEDCASE", "A"),
    ("upper.mixed", "TXT"),
    ("MIXED", "A"),
    ("nothere", "A"),
    ("a.b.nothere", "MX"),
    ("nothere", "SOA"),  # NXDOMAIN to type SOA: BIND's zero-no-soa-ttl, the SOA's TTL 0
    ("a.b.nothere", "SOA"),
    ("www", "SOA"),  # NODATA: its usual TTL
    ("sub", "NSEC"),  # the parent's NSEC at a delegation point (signed zones)
    ("child", "NSEC"),
    ("zzzz", "A"),
    ("0", "A"),
    ("_sip._tcp", "SRV"),
    ("mx", "MX"),
    ("mxglue", "MX"),
    ("mxwild", "MX"),
    ("mx", "ANY"),
    ("sub", "NS"),
    ("sub", "A"),
    ("host.sub", "A"),
    ("ns.sub", "A"),
    ("ns.sub", "AAAA"),
    ("sub", "DS"),
    ("x.sub", "DS"),
    ("occluded.sub", "A"),
    ("sub", "ANY"),
    ("noglue", "A"),
    ("noglue", "DS"),
    ("sibling", "AAAA"),
    ("child", "DS"),
    ("child", "NS"),
    ("child", "SOA"),
    ("www.child", "A"),
    ("nothere.child", "A"),
    ("bigdeleg", "A"),
    ("x.bigdeleg", "AAAA"),
    ("foo.wild", "A"),
    ("FOO.Wild", "TXT"),
    ("foo.wild", "MX"),
    ("a.b.wild", "A"),
    ("foo.wild", "ANY"),
    ("exists.wild", "A"),
    ("exists.wild", "TXT"),
    ("x.exists.wild", "A"),
    ("ent.wild", "A"),
    ("x.ent.wild", "A"),
    ("*.wild", "A"),
    ("*.wild", "MX"),
    ("sub.*.wild", "TXT"),
    ("x.*.wild", "A"),
    ("foo.wcname", "A"),
    ("foo.wcname", "CNAME"),
    ("foo.wmx", "MX"),
    ("foo.ewild", "A"),
    ("host.*.ewild", "TXT"),
    ("c1", "A"),
    ("c1", "CNAME"),
    ("c1", "MX"),
    ("c1", "ANY"),
    ("cext", "A"),
    ("cother", "A"),
    ("cchild", "A"),
    ("loop1", "A"),
    ("cnx", "A"),
    ("cdeleg", "A"),
    ("cwild", "A"),
    ("cdname", "A"),
    ("cbig", "TXT"),
    ("chain00", "A"),
    ("chain01", "A"),
    ("chain02", "A"),
    ("dn", "DNAME"),
    ("dn", "A"),
    ("www.dn", "A"),
    ("nope.dn", "A"),
    ("x.y.dnext", "A"),
    ("www.dnother", "A"),
    ("dtarget.dn", "A"),
    (f"{LONG}.x.dnlong", "A"),
    ("b.ent", "A"),
    ("ent", "TXT"),
    ("a.b.ent", "TXT"),
    ("A.B.ENT", "TXT"),
    ("a\\.b", "TXT"),
    ("sp\\032ace", "TXT"),
    ("A\\.B", "ANY"),
    ("bigtxt", "TXT"),
    ("hugetxt", "TXT"),
    ("manya", "A"),
    ("mxmany", "MX"),
    ("widedeleg", "A"),
    ("longdeleg", "A"),
    ("ttlmix", "A"),
    ("ns12.bigdeleg", "AAAA"),
    ("ns00.bigdeleg", "A"),
    (f"{'n' * 60}0.{'l' * 60}.longdeleg", "A"),
    ("WWW.Dn", "A"),
    ("Host.SUB", "A"),
    ("X.Sub", "DS"),
    ("FOO.WCNAME", "A"),
    ("Nothere", "A"),
    ("C1", "A"),
    ("Exists.WILD", "TXT"),
    ("X.Ent.Wild", "A"),
    ("Foo.EWild", "A"),
    ("FOO.wmx", "MX"),
    ("CHILD", "DS"),
    ("Sub", "NS"),
]

# queries outside the zone, and odd classes
OTHER_QUERIES: list[tuple[str, str, str]] = [
    ("www.example.com.", "A", "IN"),
    (".", "NS", "IN"),
    ("example.", "SOA", "IN"),
    ("other.example.", "SOA", "IN"),
    ("www.other.example.", "A", "IN"),
    ("foo.bind.", "TXT", "CH"),
    ("www.answer.example.", "A", "CH"),
    ("www.answer.example.", "A", "HS"),
    ("www.answer.example.", "A", "ANY"),
    ("www.answer.example.", "MAILB", "IN"),
    ("www.answer.example.", "TSIG", "IN"),
    ("dnapex.example.", "TXT", "IN"),
    ("dnapex.example.", "DNAME", "IN"),
    ("www.dnapex.example.", "A", "IN"),
    ("a.b.dnapex.example.", "TXT", "IN"),
    ("child.answer.example.", "ANY", "IN"),
    ("www.child.answer.example.", "ANY", "IN"),
]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    rdtype: str
    rdclass: str = "IN"
    rd: bool = False
    edns: int | None = None
    do: bool = False
    tcp: bool = False

    def __str__(self) -> str:
        flags = [f"edns{self.edns}" if self.edns is not None else "noedns"]
        flags += ["rd"] * self.rd + ["do"] * self.do + ["tcp"] * self.tcp
        return f"{self.name}/{self.rdclass}/{self.rdtype}/{'+'.join(flags)}"


def _absolute(name: str, zone: str) -> str:
    return f"{zone}." if name == "@" else f"{name}.{zone}."


def battery_cases() -> list[Case]:
    cases = []
    for name, rdtype in BASE_QUERIES:
        qname = _absolute(name, "answer.example")
        for rd in (False, True):
            for edns in (None, EDNS_PAYLOAD):
                cases.append(Case(qname, rdtype, rd=rd, edns=edns))
        cases.append(Case(qname, rdtype, edns=512))
        cases.append(Case(qname, rdtype, edns=600))
        if rdtype in ("ANY", "TXT", "MX", "A"):
            cases.append(Case(qname, rdtype, tcp=True))
        for zone in SIGNED_ZONES:
            signed = _absolute(name, zone)
            cases.append(Case(signed, rdtype, edns=EDNS_PAYLOAD, do=True))
            cases.append(Case(signed, rdtype, rd=True, edns=EDNS_PAYLOAD, do=True, tcp=True))
            cases.append(Case(signed, rdtype, edns=EDNS_PAYLOAD))
            cases.append(Case(signed, rdtype, edns=700, do=True))
    for zone, nsec3 in SIGNED_ZONES.items():
        if not nsec3:
            continue
        # the owner of www's NSEC3 (no salt, no extra iterations: _sign): not a name to a
        # query (RFC 5155 7.2.9: NXDOMAIN; BIND keeps it in a tree of its own)
        hashed = dns.dnssec.nsec3_hash(f"www.{zone}.", None, 0, 1).lower()
        for rdtype in ("A", "NSEC3", "TXT"):
            for do in (False, True):
                cases.append(Case(f"{hashed}.{zone}.", rdtype, edns=EDNS_PAYLOAD, do=do))
        cases.append(Case(f"x.{hashed}.{zone}.", "A", edns=EDNS_PAYLOAD, do=True))
    for name, rdtype, rdclass in OTHER_QUERIES:
        for edns in (None, EDNS_PAYLOAD):
            cases.append(Case(name, rdtype, rdclass, edns=edns))
    return cases


def _record_lines(section: list[dns.rrset.RRset]) -> list[str]:
    out = []
    for rrset in section:
        for rd in rrset:
            out.append(
                f"{rrset.name} {rrset.ttl} {dns.rdataclass.to_text(rrset.rdclass)} "
                f"{dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text()}"
            )
    return out


def _rrset_keys(section: list[dns.rrset.RRset]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for rrset in section:
        counts[f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}/{rrset.covers}"] += len(rrset)
    return counts


def compare(bind: dns.message.Message, ours: dns.message.Message) -> list[str]:
    """The differences between two responses, section by section (empty: the same)."""
    problems = []
    if bind.rcode() != ours.rcode():
        problems.append(
            f"rcode {dns.rcode.to_text(bind.rcode())} != {dns.rcode.to_text(ours.rcode())}"
        )
    mask = (
        dns.flags.QR
        | dns.flags.AA
        | dns.flags.TC
        | dns.flags.RD
        | dns.flags.RA
        | dns.flags.AD
        | dns.flags.CD
    )
    if bind.flags & mask != ours.flags & mask:
        problems.append(
            f"flags {dns.flags.to_text(bind.flags & mask)!r} != "
            f"{dns.flags.to_text(ours.flags & mask)!r}"
        )
    if bind.opcode() != ours.opcode():
        problems.append(f"opcode {bind.opcode()} != {ours.opcode()}")
    question = [(str(q.name), q.rdtype, q.rdclass) for q in bind.question]
    if question != [(str(q.name), q.rdtype, q.rdclass) for q in ours.question]:
        problems.append(f"question {bind.question} != {ours.question}")
    edns = (bind.edns, bind.payload if bind.edns >= 0 else None, bind.ednsflags & 0xFFFF)
    our_edns = (ours.edns, ours.payload if ours.edns >= 0 else None, ours.ednsflags & 0xFFFF)
    if edns != our_edns:
        problems.append(f"edns (version, payload, flags) {edns} != {our_edns}")
    options = sorted(o.to_text() for o in bind.options)
    if options != sorted(o.to_text() for o in ours.options):
        problems.append(f"EDNS options {options} != {sorted(o.to_text() for o in ours.options)}")
    for label, theirs, mine in (
        ("answer", bind.answer, ours.answer),
        ("authority", bind.authority, ours.authority),
        ("additional", bind.additional, ours.additional),
    ):
        if bind.flags & dns.flags.TC:
            # a truncated set keeps whichever records fit: compare names and types.  Not
            # counts: BIND's default rrset-order shuffles an RRset, and which names can
            # be compressed (so how many records fit) depends on that order.
            if set(_rrset_keys(theirs)) != set(_rrset_keys(mine)):
                problems.append(
                    f"{label} (truncated) {dict(_rrset_keys(theirs))} != {dict(_rrset_keys(mine))}"
                )
            continue
        want, have = set(_record_lines(theirs)), set(_record_lines(mine))
        if want != have:
            problems.append(
                f"{label}: only BIND {sorted(want - have)}; only secdns {sorted(have - want)}"
            )
    return problems


def _query_wire(case: Case) -> bytes:
    query = make_query(
        case.name, case.rdtype, rd=case.rd, edns=case.edns, do=case.do, rdclass=case.rdclass
    )
    query.id = 0x5EC5
    return query.to_wire()


def _ask_bind(bind: Bind, wire: bytes, tcp: bool) -> dns.message.Message:
    query = dns.message.from_wire(wire)
    for attempt in range(4):
        try:
            if tcp:
                return dns.query.tcp(query, bind.host, port=bind.port, timeout=3)
            return dns.query.udp(query, bind.host, port=bind.port, timeout=1.5)
        except dns.exception.Timeout:
            # BIND's built-in CH view rate-limits (3 responses/s, slip 0): wait and retry
            if attempt == 3:
                raise
            time.sleep(1.1)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("case", battery_cases(), ids=str)
def test_battery_matches_bind(battery: Battery, case: Case) -> None:
    wire = _query_wire(case)
    bind = battery.plain if case.rdtype == "RRSIG" else battery.bind
    theirs = _ask_bind(bind, wire, case.tcp)
    reply = handle(wire, battery.table, tcp=case.tcp)
    assert reply.wire is not None and reply.kind == "query"
    ours = dns.message.from_wire(reply.wire)
    problems = compare(theirs, ours)
    assert not problems, (
        f"{case}:\n  " + "\n  ".join(problems) + (f"\n--- BIND\n{theirs}\n--- secdns\n{ours}")
    )
    if not case.tcp:  # the first ask of a UDP worker: the prepared path, the same bytes
        prepared = PreparedAnswers(battery.table).answer(wire)
        assert prepared is None or prepared[0] == reply.wire, case
    if not case.tcp:
        limit = 512 if case.edns is None else max(512, min(case.edns, EDNS_PAYLOAD))
        assert len(reply.wire) <= limit


MALFORMED = [
    ("two OPT records", "two-opt"),
    ("OPT owner not root", "opt-owner"),
    ("no question", "qd0"),
    ("two questions", "qd2"),
    ("question cut short", "cut"),
    ("opcode IQUERY", "op1"),
    ("opcode STATUS", "op2"),
    ("opcode 6", "op6"),
    ("TC set in the query", "tc"),
    ("Z bit set", "z"),
    ("EDNS version 1", "v1"),
    ("EDNS version 1 with DO", "v1do"),
    ("unknown EDNS option", "opt-unknown"),
    ("COOKIE of 5 bytes", "cookie5"),
    ("COOKIE of 13 bytes", "cookie13"),
    ("an option past the end of the OPT", "opt-overrun"),
    ("opcode 6 with EDNS", "op6-edns"),
]


def _malformed(kind: str) -> bytes:
    query = make_query("www.answer.example.", "A", rd=True, edns=1232)
    query.id = 0x5EC5
    wire = query.to_wire()
    plain = make_query("www.answer.example.", "A", rd=True)
    plain.id = 0x5EC5
    base = plain.to_wire()
    opt = wire[-11:]
    if kind == "two-opt":
        return wire[:10] + b"\x00\x02" + wire[12:] + opt
    if kind == "opt-owner":
        return wire[:-11] + b"\x01a\x00" + opt[1:]
    if kind == "qd0":
        return base[:4] + b"\x00\x00" + base[6:12]
    if kind == "qd2":
        return base[:4] + b"\x00\x02" + base[6:] + base[12:]
    if kind == "cut":
        return base[:20]
    if kind in ("op1", "op2", "op6"):
        flags = int(kind[2:]) << 11 | dns.flags.RD
        return base[:2] + struct.pack("!H", flags) + base[4:]
    if kind == "tc":
        return base[:2] + struct.pack("!H", dns.flags.TC | dns.flags.RD) + base[4:]
    if kind == "z":
        return base[:2] + struct.pack("!H", 0x0040 | dns.flags.RD) + base[4:]
    if kind in ("v1", "v1do"):
        query.use_edns(1, ednsflags=dns.flags.DO if kind == "v1do" else 0, payload=1232)
        return query.to_wire()
    if kind in ("cookie5", "cookie13"):
        size = int(kind[6:])
        query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(10, b"c" * size)])
        return query.to_wire()
    if kind == "opt-overrun":
        return wire[:-2] + struct.pack("!HHH", 6, 65001, 10) + b"ab"
    if kind == "op6-edns":
        return wire[:2] + struct.pack("!H", 6 << 11 | dns.flags.RD) + wire[4:]
    if kind == "opt-unknown":
        query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(65001, b"xyz")])
        return query.to_wire()
    raise AssertionError(kind)


@pytest.mark.parametrize(("label", "kind"), MALFORMED, ids=[m[1] for m in MALFORMED])
def test_malformed_queries_match_bind(battery: Battery, label: str, kind: str) -> None:
    wire = _malformed(kind)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(wire, (battery.bind.host, battery.bind.port))
        theirs = sock.recv(65535)
    ours = handle(wire, battery.table, tcp=False).wire
    assert ours is not None, label
    assert theirs[:4] == ours[:4], f"{label}: header {theirs[:12].hex()} != {ours[:12].hex()}"
    problems = compare(dns.message.from_wire(theirs), dns.message.from_wire(ours))
    assert not problems, f"{label}: {problems}"


# --- 3. fuzzing ---------------------------------------------------------------------------------


def _mutations(rng: random.Random, seeds: list[bytes]) -> Iterator[tuple[bytes, bool]]:
    for _ in range(1500):
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80))), rng.random() < 0.3
    for _ in range(3500):
        wire = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 6)):
            action = rng.randrange(6)
            if action == 0 and wire:
                wire[rng.randrange(len(wire))] ^= 1 << rng.randrange(8)
            elif action == 1 and wire:
                wire[rng.randrange(len(wire))] = rng.randrange(256)
            elif action == 2:
                del wire[rng.randrange(len(wire) + 1) :]
            elif action == 3:
                wire += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
            elif action == 4 and len(wire) >= 12:
                position = rng.choice((4, 6, 8, 10))
                wire[position : position + 2] = struct.pack("!H", rng.choice((0, 1, 2, 255, 65535)))
            elif action == 5 and len(wire) >= 4:
                wire[2] = rng.randrange(256) & 0x7F
        yield bytes(wire), rng.random() < 0.3


def test_fuzzed_packets_never_raise_and_never_amplify(table: ZoneTable) -> None:
    rng = random.Random(20240101)
    names = [
        "www.example",
        "big.example",
        "x.wild.example",
        "a.b.dn.example",
        "sub.example",
        "nothing.example",
        "example",
        "alias2.example",
        "elsewhere",
    ]
    seeds = []
    for name in names:
        for rdtype in ("A", "TXT", "ANY", "NS", "DS", "MX"):
            seeds.append(make_query(name, rdtype).to_wire())
            seeds.append(
                make_query(
                    name, rdtype, edns=rng.choice((512, 1232, 4096)), do=rng.random() < 0.5
                ).to_wire()
            )
    answered = 0
    for wire, tcp in _mutations(rng, seeds):
        reply = handle(wire, table, tcp=tcp)
        assert isinstance(reply, Reply)
        if reply.wire is None:
            assert reply.kind in ("error", "notify", "xfr")
            continue
        answered += 1
        assert reply.wire[:2] == wire[:2] and reply.wire[2] & 0x80  # QR
        assert len(reply.wire) <= max(len(wire), 12) or reply.kind == "query"
        if reply.kind == "update":  # the zone section echoed, which dnspython may reject
            continue
        assert dns.message.from_wire(reply.wire).flags & dns.flags.QR
        if not tcp:
            limit = 512
            try:
                query = dns.message.from_wire(wire)
                if query.edns >= 0:
                    limit = max(512, min(query.payload, EDNS_PAYLOAD))
            except Exception:  # noqa: BLE001 - unparsable queries get the plain limit
                pass
            assert len(reply.wire) <= limit
    assert answered > 1000


def _without_options(wire: bytes) -> tuple[dns.message.Message, dict[int, bytes]]:
    message = dns.message.from_wire(wire)
    options = {int(o.otype): o.to_wire() or b"" for o in message.options}
    message.use_edns(message.edns, message.ednsflags, message.payload, options=[])
    return message, options


@pytest.mark.parametrize(
    ("label", "code", "data", "qtype", "tcp"),
    [
        ("cookie", 10, b"\x01" * 8, "A", False),
        ("cookie with an old server cookie", 10, b"\x01" * 8 + bytes(16), "A", False),
        ("cookie over TCP", 10, b"\x01" * 8, "A", True),
        ("keepalive over TCP", 11, b"", "A", True),
        ("keepalive over UDP", 11, b"", "A", False),
        ("expire on the SOA", 9, b"", "SOA", False),
        ("expire on another type", 9, b"", "A", False),
    ],
)
def test_edns_options_match_bind(
    battery: Battery, label: str, code: int, data: bytes, qtype: str, tcp: bool
) -> None:
    """COOKIE (RFC 7873: a fresh 16-byte server cookie), TCP keepalive (RFC 7828, TCP only)
    and EXPIRE (RFC 7314: a primary zone answers its SOA EXPIRE) as BIND answers them."""
    name = "answer.example." if qtype == "SOA" else "www.answer.example."
    query = make_query(name, qtype, edns=1232)
    query.id = 0x5EC5
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(code, data)])
    wire = query.to_wire()
    theirs, their_options = _without_options(_ask_bind(battery.bind, wire, tcp).to_wire())
    reply = handle(wire, battery.table, tcp=tcp, client="127.0.0.1")
    ours, our_options = _without_options(reply.wire or b"")
    assert not compare(theirs, ours), (label, compare(theirs, ours))
    assert set(their_options) == set(our_options), label
    if code == 10 and 10 in our_options:
        assert len(their_options[10]) == len(our_options[10]) == 24
        assert our_options[10][:8] == data[:8]
    if code == 9 and 9 in our_options:
        assert their_options[9] == our_options[9]


def _do_queries() -> dict[str, bytes]:
    """Queries with DO set whose replies are errors or carry no records."""
    queries = {}
    for opcode in (dns.opcode.STATUS, dns.opcode.IQUERY):
        query = make_query("answer.example.", "SOA", do=True)
        query.set_opcode(opcode)
        queries[dns.opcode.to_text(opcode)] = query.to_wire()
    cookie = [dns.edns.GenericOption(10, b"\x01" * 8)]
    query = make_query("answer.example.", "SOA", do=True)
    query.use_edns(0, dns.flags.DO, 1232, options=cookie)
    query.question = []
    queries["cookie alone"] = query.to_wire()
    query = make_query("answer.example.", "SOA", do=True)
    query.question = []
    queries["no question"] = query.to_wire()
    query = make_query("answer.example.", "SOA", do=True)
    query.use_edns(1, dns.flags.DO, 1232)
    queries["EDNS version 1"] = query.to_wire()
    query = make_query("nowhere.invalid.", "SOA", do=True)
    queries["not ours"] = query.to_wire()
    return queries


@pytest.mark.parametrize("label", list(_do_queries()))
def test_error_replies_echo_do_as_bind(battery: Battery, label: str) -> None:
    """RFC 3225 3: the DO bit of the query is copied in the response; NOTIMP, FORMERR,
    a server cookie alone and the like dropped it (a stranger compared them with BIND's)."""
    wire = _do_queries()[label]
    theirs = _ask_bind(battery.bind, wire, False)
    reply = handle(wire, battery.table, tcp=False, client="127.0.0.1")
    ours = dns.message.from_wire(reply.wire or b"")
    assert (ours.rcode(), ours.edns) == (theirs.rcode(), theirs.edns), label
    assert ours.ednsflags & dns.flags.DO and theirs.ednsflags & dns.flags.DO, label


def test_refused_and_notimp_requests_are_signed_when_the_tsig_verified(table: ZoneTable) -> None:
    """Issue 10 item 7 (RFC 8945 5.3): the error reply to a signed UPDATE or unknown opcode
    is signed with the request's key; an unknown key gets NOTAUTH/BADKEY."""
    keyring = dns.tsigkeyring.from_text({"k.": "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="})
    update = dns.update.UpdateMessage("example.")
    update.add("www", 300, "A", "192.0.2.9")
    update.use_edns(0, payload=1232)
    update.use_tsig(keyring, keyname="k.")
    reply = handle(update.to_wire(), table, tcp=False, keyring=keyring)
    assert reply.kind == "update"
    response = dns.message.from_wire(reply.wire or b"", keyring=keyring, request_mac=update.mac)
    assert response.had_tsig and response.rcode() == dns.rcode.REFUSED and response.edns == 0
    assert str(response.zone[0].name) == "example."
    query = make_query("www.example", "A")
    query.set_opcode(6)
    query.use_tsig(keyring, keyname="k.")
    reply = handle(query.to_wire(), table, tcp=False, keyring=keyring)
    response = dns.message.from_wire(reply.wire or b"", keyring=keyring, request_mac=query.mac)
    assert response.had_tsig and response.rcode() == dns.rcode.NOTIMP
    assert response.question == [] and response.opcode() == 6
    reply = handle(update.to_wire(), table, tcp=False, keyring={})
    response = dns.message.from_wire(reply.wire or b"", keyring=False)
    assert response.rcode() == dns.rcode.NOTAUTH and response.tsig[0].error == dns.rcode.BADKEY


def test_chaos_identity_and_version_only_when_configured(table: ZoneTable) -> None:
    for name in ("version.bind", "hostname.bind", "id.server"):
        assert ask(table, name, "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED
    table.chaos = {"version.bind.": "secdns", "hostname.bind.": "ns1", "id.server.": "ns1"}
    try:
        for name, text in (
            ("version.bind", "secdns"),
            ("HOSTNAME.bind", "ns1"),
            ("id.server", "ns1"),
        ):
            response, reply = ask_wire(table, name, "TXT", rdclass="CH", edns=1232)
            assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
            assert records(response.answer) == {f'{name}. 0 CH TXT "{text}"'}
            assert not reply.cacheable
        assert ask(table, "version.bind", "A", rdclass="CH").rcode() == dns.rcode.REFUSED
        assert ask(table, "other.bind", "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED
    finally:
        table.chaos = {}


def test_expire_answers_the_seconds_left_of_a_secondary_copy(table: ZoneTable) -> None:
    """RFC 7314: the SOA EXPIRE field for a primary zone, the time left for a secondary."""
    query = make_query("example", "SOA", edns=1232)
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(9, b"")])
    zone = table.zones["example."]

    def expire() -> int:
        wire = handle(query.to_wire(), table, tcp=False).wire or b""
        (option,) = dns.message.from_wire(wire).options
        return struct.unpack("!I", option.to_wire())[0]

    assert expire() == 1209600
    zone.expires_at = time.time() + 1000
    try:
        assert 998 <= expire() <= 1000
        zone.expires_at = time.time() - 5
        assert expire() == 0
    finally:
        zone.expires_at = None
