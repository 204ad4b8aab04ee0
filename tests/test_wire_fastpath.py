"""The decoder's shortcuts (a new owner as one label then a pointer, in
``wire._read_name``; a repeated owner as a bare pointer, in ``wire._read_answers``;
a name in rdata as a bare pointer, in ``wire._rdata_name``) give what dnspython
and the general loop of ``wire._read_name`` give, over AXFR-shaped messages whose
names repeat, compress and change case."""

from __future__ import annotations

import random

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from test_wire import ORIGIN, _axfr_messages, _decoded, _random_name, _reference

from secdns import wire

ORIGINS = [ORIGIN, dns.name.from_text("EXAMPLE.Com."), dns.name.from_text("a.B.example.com.")]
NAME_TYPES = [dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR]


def _rdata(rng: random.Random, known: list[dns.name.Name]) -> dns.rdata.Rdata:
    """An rdata whose name, if any, is often one seen before (so it compresses to a
    bare pointer), sometimes in another case."""
    kind = rng.randrange(5)
    if kind == 0:
        return dns.rdata.from_text("IN", "A", f"10.0.{rng.randrange(256)}.{rng.randrange(256)}")
    if kind == 1:
        return dns.rdata.from_text("IN", "TXT", f'"t{rng.randrange(100)}"')
    target = rng.choice(known) if known and rng.random() < 0.7 else _random_name(rng)
    if rng.random() < 0.2:
        target = dns.name.Name([label.upper() for label in target.labels])
    if kind == 2:
        return dns.rdata.from_text("IN", "MX", f"{rng.randrange(50)} {target}")
    rdtype = rng.choice(NAME_TYPES)
    return dns.rdata.from_text("IN", dns.rdatatype.to_text(rdtype), target.to_text())


def _zone(rng: random.Random, size: int) -> list[dns.rrset.RRset]:
    """Records as an AXFR sends them: owners often repeated, often one new label under
    an owner seen before, in mixed case."""
    known: list[dns.name.Name] = [ORIGIN]
    rrsets = []
    for index in range(size):
        shape = rng.randrange(4)
        if shape == 0:
            owner = known[-1]
        elif shape == 1:
            label = rng.choice([b"www", b"Mail", b"a-b", b"_tcp", b"x\x00y", b"h%d" % index])
            try:
                owner = dns.name.Name((label, *rng.choice(known).labels))
            except dns.name.NameTooLong:
                owner = known[-1]
        elif shape == 2:
            owner = _random_name(rng)
        else:
            owner = rng.choice(known)
        known.append(owner)
        rdata = _rdata(rng, known)
        rrsets.append(dns.rrset.from_rdata(owner, 300 + index % 7, rdata))
    return rrsets


def test_rich_zone_matches_dnspython() -> None:
    rng = random.Random(1202)
    for round_ in range(6):
        rrsets = _zone(rng, 1500)
        origin = ORIGINS[round_ % len(ORIGINS)]
        for raw in _axfr_messages(rrsets):
            assert _decoded(raw, origin) == _reference(raw, origin)


def test_owner_fast_path_equals_read_name() -> None:
    rng = random.Random(77)
    rrsets = _zone(rng, 2000)
    for raw in _axfr_messages(rrsets):
        message = wire.parse_message(raw, ORIGIN)
        okey = tuple(label.lower() for label in reversed(ORIGIN.labels[:-1]))
        cache: dict = {}
        pos = 12
        entry = wire._read_name(raw, pos, cache, okey)
        pos = entry[4] + 4
        for rec in message.records:
            entry = wire._read_name(raw, pos, cache, okey)
            assert (rec.key, rec.owner) == (entry[1], entry[2])
            pos = entry[4]
            rdlen = int.from_bytes(raw[pos + 8 : pos + 10], "big")
            pos += 10
            # fill the cache with names inside rdata as the decoder does
            if rec.rdtype in (*NAME_TYPES, dns.rdatatype.MX):
                at = pos + (2 if rec.rdtype == dns.rdatatype.MX else 0)
                wire._read_name(raw, at, cache, okey)
            pos += rdlen


def test_same_target_in_two_cases_and_origins() -> None:
    """A target rendered once per offset is still rendered per its own case."""
    names = ["ns1", "NS1", "ns1.EXAMPLE.com.", "ns1.example.com.", "ns1.other.net."]
    rrsets = []
    for index, owner in enumerate(["a", "b", "c", "d"] * 3):
        target = dns.name.from_text(names[index % len(names)], ORIGIN)
        rdata = dns.rdata.from_text("IN", "NS", target.to_text())
        rrsets.append(dns.rrset.from_rdata(dns.name.from_text(owner, ORIGIN), 60, rdata))
    for origin in ORIGINS:
        for raw in _axfr_messages(rrsets):
            assert _decoded(raw, origin) == _reference(raw, origin)
