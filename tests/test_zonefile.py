import random
import shutil
import subprocess

import dns.name
import dns.zone
import pytest
from xfrwire import records

from secdns import zonefile
from secdns.errors import IxfrNotApplicable

ORIGIN = "example.com."
ZONE = """
@ 3600 IN SOA ns1 host 5 7200 900 1209600 300
@ 3600 IN NS ns1
@ 300 IN MX 10 mail
ns1 3600 IN A 192.0.2.1
ns1 3600 IN AAAA 2001:db8::1
Mail 300 IN A 192.0.2.25
a.b.c 60 IN TXT "deep"
z 60 IN TXT "last"
a\\.b 60 IN A 192.0.2.9
sp\\032ace 60 IN A 192.0.2.10
*.wild 60 IN A 192.0.2.11
"""


def test_canonical_order_soa_first_and_names_in_dnssec_order():
    lines = zonefile.canonical_lines(records(ZONE, ORIGIN))
    owners = [line.split(" ", 1)[0] for line in lines]
    assert lines[0].startswith("@ 3600 IN SOA ")
    assert lines[1].startswith("@ 3600 IN NS ")
    # RFC 4034 6.1: *.wild < a.b.c? no: compare most significant label first
    assert owners.index("a\\.b") < owners.index("a.b.c") < owners.index("mail")
    assert owners.index("mail") < owners.index("ns1") < owners.index("sp\\032ace")
    assert owners.index("*.wild") > owners.index("sp\\032ace")


def test_line_key_equals_record_key_for_every_record():
    recs = records(ZONE, ORIGIN)
    keyer = zonefile.LineKeyer(dns.name.from_text(ORIGIN))
    from secdns import wire

    for rec in recs:
        assert keyer(wire.record_line(rec)) == zonefile.record_key(rec)


def test_render_loads_back_with_same_records():
    recs = records(ZONE, ORIGIN)
    text = zonefile.render(dns.name.from_text(ORIGIN), 5, 3600, zonefile.canonical_lines(recs))
    original = dns.zone.from_text(ZONE, origin=ORIGIN)
    loaded = dns.zone.from_text(text, origin=ORIGIN)
    assert original == loaded
    for name, node in original.nodes.items():
        for rds in node:
            assert loaded.find_rdataset(name, rds.rdtype).ttl == rds.ttl


@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="needs named-checkzone")
def test_named_checkzone_accepts_output(tmp_path):
    recs = records(ZONE, ORIGIN)
    path = tmp_path / "z"
    path.write_text(
        zonefile.render(dns.name.from_text(ORIGIN), 5, 3600, zonefile.canonical_lines(recs))
    )
    run = subprocess.run(
        ["named-checkzone", "-i", "local", ORIGIN, str(path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _zone_with(serial, extra):
    return ZONE.replace("host 5 ", f"host {serial} ") + extra


def test_apply_delta_equals_full_rebuild():
    origin = dns.name.from_text(ORIGIN)
    keyer = zonefile.LineKeyer(origin)
    base = zonefile.canonical_lines(records(ZONE, ORIGIN))
    old = records(ZONE, ORIGIN)
    new_text = _zone_with(6, "new 60 IN A 192.0.2.77\nMail 300 IN A 192.0.2.26\n").replace(
        'z 60 IN TXT "last"\n', ""
    )
    new = records(new_text, ORIGIN)
    old_keys = {zonefile.record_key(r): r for r in old}
    new_keys = {zonefile.record_key(r): r for r in new}
    deleted = [r for k, r in old_keys.items() if k not in new_keys]
    added = [r for k, r in new_keys.items() if k not in old_keys]
    lines, removed, added_count = zonefile.apply_delta(base, keyer, deleted, added)
    assert lines == zonefile.canonical_lines(records(new_text, ORIGIN))
    assert (removed, added_count) == (2, 3)  # SOA, z TXT out; SOA, new A, Mail A in


def test_apply_delta_randomised_against_rebuild():
    rng = random.Random(7)
    origin = dns.name.from_text(ORIGIN)
    keyer = zonefile.LineKeyer(origin)
    names = [f"h{i}" for i in range(60)]
    current = {f"{n} 60 IN A 192.0.2.{rng.randrange(256)}" for n in names}
    head = "@ 3600 IN SOA ns1 host 1 7200 900 1209600 300\n@ 3600 IN NS ns1\n"
    lines = zonefile.canonical_lines(records(head + "\n".join(sorted(current)), ORIGIN))
    for _round in range(20):
        drop = set(rng.sample(sorted(current), 5))
        add = {f"{rng.choice(names)}x 60 IN A 192.0.2.{rng.randrange(256)}" for _ in range(5)}
        add -= current
        new = (current - drop) | add
        deleted = records("\n".join(sorted(drop)), ORIGIN) if drop else []
        added = records("\n".join(sorted(add)), ORIGIN) if add else []
        lines, _, _ = zonefile.apply_delta(lines, keyer, deleted, added)
        current = new
        expect = zonefile.canonical_lines(records(head + "\n".join(sorted(current)), ORIGIN))
        assert lines == expect


def test_apply_delta_refuses_delete_of_missing_record():
    origin = dns.name.from_text(ORIGIN)
    base = zonefile.canonical_lines(records(ZONE, ORIGIN))
    missing = records("nothere 60 IN A 192.0.2.1", ORIGIN)
    with pytest.raises(IxfrNotApplicable, match="nothere"):
        zonefile.apply_delta(base, zonefile.LineKeyer(origin), missing, [])


def test_split_header_round_trip():
    text = zonefile.render(dns.name.from_text(ORIGIN), 9, 300, ["@ 300 IN A 192.0.2.1"])
    head, body = zonefile.split_header(text)
    assert head[0].startswith("; zone example.com. serial 9 ")
    assert head[1:] == ["$ORIGIN example.com.", "$TTL 300"]
    assert body == ["@ 300 IN A 192.0.2.1"]
