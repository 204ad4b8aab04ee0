"""Catalog zones (RFC 9432): reading member sets, diffing them, writing a catalog."""

from __future__ import annotations

import dns.name
import dns.zone
import pytest

from secdns import catalog, wire
from secdns.sources import read_file_records

CAT = dns.name.from_text("catalog.invalid.")


def parse(body: str, **kw):
    text = (
        "$ORIGIN catalog.invalid.\n$TTL 0\n"
        "@ SOA invalid. invalid. 7 3600 600 2147483646 0\n@ NS invalid.\n" + body
    )
    return catalog.parse_catalog(CAT, read_file_records(None, CAT, text), **kw)


def names(result) -> list[str]:
    return sorted(m.text for m in result.members.values())


def test_version_2_members_and_properties():
    result = parse(
        'version TXT "2"\n'
        "m1.zones PTR example.com.\n"
        'group.m1.zones TXT "blue"\n'
        "m2.zones PTR example.org.\n"
        "coo.m2.zones PTR other-catalog.invalid.\n"
        'ext.m2.zones TXT "ignored"\n'
        "in.zones PTR inner\n"
    )
    assert result.usable and not result.findings and result.serial == 7
    assert names(result) == ["example.com.", "example.org.", "inner.catalog.invalid."]
    m1 = result.members[dns.name.from_text("example.com.")]
    assert (m1.unique_id, m1.groups, m1.coo) == ("m1", ("blue",), None)
    m2 = result.members[dns.name.from_text("example.org.")]
    assert m2.coo == dns.name.from_text("other-catalog.invalid.")


@pytest.mark.parametrize("version", ['"1"', '"2" "x"', None])
def test_a_catalog_that_is_not_version_2_is_unusable(version):
    body = "m1.zones PTR example.com.\n"
    if version:
        body = f"version TXT {version}\n" + body
    result = parse(body)
    assert not result.usable and result.members == {}
    assert "not a version 2 catalog" in result.findings[0].message
    assert result.findings[0].catalog == "catalog.invalid."


def test_hostile_records_are_findings_and_change_nothing_else():
    result = parse(
        'version TXT "2"\n'
        "good.zones PTR example.com.\n"
        "self.zones PTR catalog.invalid.\n"
        "root.zones PTR .\n"
        "twice.zones PTR example.com.\n"
        "multi.zones PTR a.example.\n"
        "multi.zones PTR b.example.\n"
        "coo2.zones PTR c.example.\n"
        "coo.coo2.zones PTR x.invalid.\n"
        "coo.coo2.zones PTR y.invalid.\n"
    )
    assert result.usable
    assert names(result) == ["c.example.", "example.com."]
    lines = [f.line() for f in result.findings]
    assert (
        "catalog catalog.invalid.: self.zones.catalog.invalid. PTR catalog.invalid.: "
        "a catalog cannot list itself as a member" in lines
    )
    assert any("root.zones.catalog.invalid. PTR .: the root cannot" in x for x in lines)
    assert any(
        "twice.zones.catalog.invalid. PTR example.com.: example.com. is listed twice; "
        "unique id good keeps it" in x
        for x in lines
    )
    assert sum("member node multi has 2 PTR records" in x for x in lines) == 2
    assert sum("member node coo2 has 2 coo PTR records" in x for x in lines) == 2
    assert result.members[dns.name.from_text("c.example.")].coo is None


def test_a_member_listed_twice_keeps_the_unique_id_it_had():
    """A stranger added a duplicate entry (dup.zones, sorting before id10.zones) for a
    served member: it took the member over, reset it (SERVFAIL ~200 ms), and again when
    deleted, while the error blamed the original record.  The unique id of the last
    version keeps it; the finding names the new entry."""
    first = parse('version TXT "2"\nid10.zones PTR m10.example.\n')
    held = first.members
    both = 'version TXT "2"\nid10.zones PTR m10.example.\ndup.zones PTR m10.example.\n'
    kept = parse(both, held=held)
    (member,) = kept.members.values()
    assert member.unique_id == "id10"
    (finding,) = kept.findings
    assert finding.record.startswith("dup.zones") and "unique id id10 keeps it" in finding.message
    assert parse(both).members[member.name].unique_id == "dup"  # (nothing held: the first)


def test_a_member_name_that_does_not_parse_is_a_finding():
    records = read_file_records(
        None, CAT, '$ORIGIN catalog.invalid.\n@ 0 SOA a. b. 1 1 1 1 1\nversion 0 TXT "2"\n'
    )
    bad = wire.Record(
        key=(b"invalid", b"catalog", b"zones", b"bad"),
        owner="bad.zones",
        ttl=0,
        rdclass=1,
        rdtype=12,
        rdata="a..b.",
        serial=None,
    )
    result = catalog.parse_catalog(CAT, [*records, bad])
    assert result.usable and result.members == {}
    assert result.findings[0].line() == (
        "catalog catalog.invalid.: bad.zones.catalog.invalid. PTR a..b.: "
        "the member name does not parse"
    )


def test_over_the_member_limit_the_catalog_is_unusable():
    body = 'version TXT "2"\n' + "".join(f"m{i}.zones PTR z{i}.example.\n" for i in range(11))
    assert len(parse(body, max_members=11).members) == 11
    result = parse(body, max_members=10)
    assert not result.usable and result.members == {}
    assert "11 members, over the member limit of 10" in result.findings[0].message


def test_diff_added_removed_reset_changed():
    old = parse(
        'version TXT "2"\n'
        "a.zones PTR keep.example.\n"
        "b.zones PTR gone.example.\n"
        "c.zones PTR moved.example.\n"
        "d.zones PTR grouped.example.\n"
    ).members
    new = parse(
        'version TXT "2"\n'
        "a.zones PTR keep.example.\n"
        "c2.zones PTR moved.example.\n"
        "d.zones PTR grouped.example.\n"
        'group.d.zones TXT "red"\n'
        "e.zones PTR new.example.\n"
    ).members
    delta = catalog.diff_catalogs(old, new)
    assert [m.text for m in delta.added] == ["new.example."]
    assert [m.text for m in delta.removed] == ["gone.example."]
    assert [(m.text, m.unique_id) for m in delta.reset] == [("moved.example.", "c2")]
    assert [(m.text, m.groups) for m in delta.changed] == [("grouped.example.", ("red",))]
    assert catalog.diff_catalogs(new, new).empty
    assert delta.to_dict()["reset"][0]["unique_id"] == "c2"


def test_render_is_a_valid_catalog_that_reads_back():
    zones = [dns.name.from_text(z) for z in ("b.example.", "a.example.", "a.example.")]
    text = catalog.render_catalog(
        CAT, [*zones, CAT], 5, groups={dns.name.from_text("a.example."): 'gr"oup'}
    )
    zone = dns.zone.from_text(text, origin=CAT, relativize=False)  # loads as a zone
    assert zone.get_soa().serial == 5
    result = catalog.catalog_from_text(CAT, text)
    assert result.usable and not result.findings
    assert names(result) == ["a.example.", "b.example."]
    a = result.members[dns.name.from_text("a.example.")]
    assert a.groups == ('gr"oup',)
    assert a.unique_id == catalog.unique_id(dns.name.from_text("A.EXAMPLE."))
    assert catalog.render_catalog(CAT, reversed(zones), 5) == catalog.render_catalog(CAT, zones, 5)
