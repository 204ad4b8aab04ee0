"""The ownership rule of catalog members, and the config of serve's catalogs and TLS listeners."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from secdns import catalog
from secdns.config import parse_config
from secdns.errors import ConfigError


def n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def listing(
    *members: str, coo: dict[str, str] | None = None
) -> dict[dns.name.Name, catalog.Member]:
    coo = coo or {}
    return {
        n(m): catalog.Member(n(m), f"id{i}", coo=n(coo[m]) if m in coo else None)
        for i, m in enumerate(members)
    }


def test_first_catalog_keeps_a_member_and_the_conflict_is_noted():
    owner, notes = catalog.assign_members(
        [(n("a.cat"), listing("x.example", "y.example")), (n("b.cat"), listing("x.example"))], set()
    )
    assert owner == {n("x.example"): n("a.cat"), n("y.example"): n("a.cat")}
    assert notes == [
        "catalog b.cat.: x.example. is a member of catalog a.cat. already "
        "(the first catalog that lists a zone keeps it)"
    ]


def test_the_current_owner_wins_over_config_order():
    listings = [(n("a.cat"), listing("x.example")), (n("b.cat"), listing("x.example"))]
    owner, _ = catalog.assign_members(listings, set(), {n("x.example"): n("b.cat")})
    assert owner[n("x.example")] == n("b.cat")
    # once the owner stops listing it, the other catalog gets it
    owner, _ = catalog.assign_members([listings[0], (n("b.cat"), {})], set(), owner)
    assert owner[n("x.example")] == n("a.cat")


def test_coo_hands_a_member_over_and_configured_zones_win():
    listings = [
        (n("a.cat"), listing("x.example", "z.example", coo={"x.example": "b.cat"})),
        (n("b.cat"), listing("x.example")),
    ]
    owner, notes = catalog.assign_members(listings, {n("z.example")}, {n("x.example"): n("a.cat")})
    assert owner == {n("x.example"): n("b.cat")}
    assert "catalog b.cat.: x.example. moves here from catalog a.cat. (coo)" in notes
    assert "catalog a.cat.: z.example. is configured as a zone; not a member" in notes
    # a coo naming a catalog that does not list the member changes nothing
    lone = [(n("a.cat"), listing("x.example", coo={"x.example": "c.cat"}))]
    assert catalog.assign_members(lone, set())[0] == {n("x.example"): n("a.cat")}


def config(text: str, tmp_path: Path):
    path = tmp_path / "secdns.toml"
    path.write_text(text)
    import tomllib

    return parse_config(tomllib.loads(text), str(path), base=tmp_path)


def test_groups_catalog_and_tls_keys_parse(tmp_path):
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    parsed = config(
        """
[server]
catalog = "all.catalog"
catalog_allow_transfer = ["192.0.2.0/24"]
catalog_notify = ["192.0.2.53"]
tls_listen = ["127.0.0.1:8853"]
tls_cert = "cert.pem"
tls_key = "key.pem"

[keys.xfr]
secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"

[groups.special]
primaries = ["192.0.2.9"]
key = "xfr"
allow_transfer = ["key:xfr"]

[[zone]]
name = "example.com"
file = "x.zone"
transfer_transport = "tls"
""",
        tmp_path,
    )
    assert parsed.server.catalog == n("all.catalog")
    assert parsed.server.tls_listen[0].port == 8853
    assert parsed.server.tls_cert == tmp_path / "cert.pem"
    assert parsed.groups["special"].key == "xfr"
    assert parsed.groups["special"].primaries[0].host == "192.0.2.9"
    assert parsed.zones[0].transfer_transport == "tls"


def test_bad_groups_and_tls_keys_are_all_reported(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config(
            """
[server]
tls_listen = ["127.0.0.1"]
catalog = 5

[[catalog]]
name = "cat.example"
primaries = ["192.0.2.1"]

[groups.g]
key = "nope"
tls_ca = "x"

[[zone]]
name = "example.com"
file = "x.zone"
transfer_transport = "quic"
""",
            tmp_path,
        )
    text = str(caught.value)
    assert "server.tls_listen: needs tls_cert and tls_key (PEM files)" in text
    assert "server.catalog: expected a zone name" in text
    assert "groups.g.key: unknown key 'nope'" in text
    assert "groups.g.tls_ca: unknown key" in text
    assert 'transfer_transport: expected "any" or "tls"' in text


def test_the_published_catalog_is_no_other_zone(tmp_path):
    with pytest.raises(ConfigError, match="server.catalog: names a"):
        config(
            '[server]\ncatalog = "example.com"\n[[zone]]\nname = "example.com"\nfile = "x"\n',
            tmp_path,
        )
