"""parse_zone_name reads plain names without dns.name.from_text (10,000 [[zone]] tables):
the same Name (in lower case), or the same error, as dnspython's reading, over awkward
and random text."""

from __future__ import annotations

import random

import dns.name
import pytest

from secdns.config.values import parse_zone_name
from secdns.errors import ConfigError

AWKWARD = [
    "example.com",
    "Example.COM.",
    "a",
    "_tcp.x-y.z",
    "-a.com",
    "x" * 63 + ".com",
    "x" * 64 + ".com",
    ".".join(["a" * 63] * 3) + "." + "a" * 61,
    ".".join(["a" * 63] * 3) + "." + "a" * 62,
    ".".join(["a" * 63] * 4),
    ".",
    "",
    "a..b",
    "a..",
    "a b",
    "\\065.com",
    "é.com",
    "@",
]


def _reading(text: str) -> tuple[str, object]:
    try:  # (in lower case: a zone name is, whatever its case as typed)
        return "ok", dns.name.from_text(text).canonicalize().labels
    except dns.exception.DNSException as err:
        return "error", type(err)


def _ours(text: str) -> tuple[str, object]:
    try:
        return "ok", parse_zone_name(text).labels
    except ConfigError as err:
        return "error", type(err.__cause__)


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_names_read_as_dnspython_reads_them(text):
    assert _ours(text) == _reading(text)


def test_random_names_read_as_dnspython_reads_them():
    rng = random.Random(12)
    for _ in range(5000):
        text = "".join(rng.choice("ab-_.9Z\\ .") for _ in range(rng.randint(1, 14)))
        assert _ours(text) == _reading(text), text


def test_a_zone_named_twice_in_another_case_is_reported(tmp_path):
    from secdns.config import load_config

    path = tmp_path / "secdns.toml"
    path.write_text(
        '[[zone]]\nname = "Example.COM"\nprimaries = ["192.0.2.1"]\n'
        '[[zone]]\nname = "example.com."\nprimaries = ["192.0.2.1"]\n'
    )
    with pytest.raises(
        ConfigError,
        match=r"zone\[1\] \(example.com.\).name: zone defined twice \(first as zone\[0\]\)",
    ):
        load_config(path)


def test_a_zone_takes_its_groups_settings_it_does_not_set(tmp_path):
    """[[zone]] group = "NAME": [groups.NAME]'s primaries, key, allow_transfer and notify
    where the zone sets none of its own; a file zone takes no primaries; an unknown
    group is reported."""
    from secdns.config import load_config

    path = tmp_path / "secdns.toml"
    path.write_text(
        '[keys.down]\nsecret = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="\n'
        "[groups.customers]\n"
        'primaries = ["192.0.2.1"]\nallow_transfer = ["key:down"]\n'
        'notify = ["192.0.2.53"]\n'
        '[[zone]]\nname = "a.example"\ngroup = "customers"\n'
        '[[zone]]\nname = "b.example"\ngroup = "customers"\nnotify = []\n'
        'primaries = ["192.0.2.2"]\n'
        '[[zone]]\nname = "c.example"\ngroup = "customers"\nfile = "c.zone"\n'
    )
    a, b, c = load_config(path).zones
    assert [str(e) for e in a.primaries] == ["192.0.2.1:53"]
    assert a.allow_transfer == ("key:down",) and [str(e) for e in a.notify] == ["192.0.2.53:53"]
    assert [str(e) for e in b.primaries] == ["192.0.2.2:53"] and b.notify == ()
    assert b.allow_transfer == ("key:down",)
    assert c.primaries == () and c.file == tmp_path / "c.zone" and c.allow_transfer == ("key:down",)
    path.write_text('[[zone]]\nname = "a.example"\ngroup = "nosuch"\nprimaries = ["192.0.2.1"]\n')
    with pytest.raises(ConfigError, match=r"zone\[0\].group: unknown group 'nosuch'"):
        load_config(path)


def test_a_notify_target_may_name_its_key(tmp_path):
    """notify = ["HOST[:PORT] key:NAME"] in a zone, a group, a catalog or catalog_notify:
    the target's NOTIFYs are signed with [keys.NAME]; an unknown key, or two keys for
    one target, are config problems."""
    from secdns.config import load_config
    from secdns.endpoints import parse_endpoint

    path = tmp_path / "secdns.toml"
    secret = 'secret = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="\n'
    path.write_text(
        f"[keys.down]\n{secret}[keys.other]\n{secret}"
        '[groups.g]\nnotify = ["192.0.2.54 key:other"]\n'
        '[[zone]]\nname = "a.example"\nprimaries = ["192.0.2.1"]\n'
        'notify = ["192.0.2.53:5353 key:down", "192.0.2.99"]\n'
    )
    config = load_config(path)
    assert [str(e) for e in config.zones[0].notify] == ["192.0.2.53:5353", "192.0.2.99:53"]
    down = config.notify_key(parse_endpoint("192.0.2.53:5353"))
    assert down is not None and down.name == "down"
    assert config.notify_key(parse_endpoint("192.0.2.99")) is None
    other = config.notify_key(parse_endpoint("192.0.2.54:53"))
    assert other is not None and other.name == "other"
    path.write_text(
        f"[keys.down]\n{secret}[keys.other]\n{secret}"
        '[[zone]]\nname = "a.example"\nprimaries = ["192.0.2.1"]\n'
        'notify = ["192.0.2.53 key:nosuch"]\n'
        '[[zone]]\nname = "b.example"\nprimaries = ["192.0.2.1"]\n'
        'notify = ["192.0.2.7 key:down"]\n'
        '[[zone]]\nname = "c.example"\nprimaries = ["192.0.2.1"]\n'
        'notify = ["192.0.2.7 key:other"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "zone[0].notify: unknown key 'nosuch'" in raised.value.message
    assert "zone[2].notify: 192.0.2.7 is given two keys (down, other)" in raised.value.message


def test_allow_transfer_may_ask_for_an_address_and_a_key_at_once(tmp_path):
    """allow_transfer = ["CIDR key:NAME"]: that range and that key, both (a Knot acl with
    an address and a key); written back with one space; a bad part, an unknown key or
    three parts are config problems; allow_notify takes either, not both at once."""
    from secdns.config import load_config

    path = tmp_path / "secdns.toml"
    secret = 'secret = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="\n'
    path.write_text(
        f"[keys.down]\n{secret}"
        '[[zone]]\nname = "a.example"\nprimaries = ["192.0.2.1"]\n'
        'allow_transfer = ["192.0.2.0/24   key:down", "key:down", "2001:db8::1"]\n'
    )
    (zone,) = load_config(path).zones
    assert zone.allow_transfer == ("192.0.2.0/24 key:down", "key:down", "2001:db8::1")
    path.write_text(
        f"[keys.down]\n{secret}"
        '[[zone]]\nname = "a.example"\nprimaries = ["192.0.2.1"]\n'
        'allow_transfer = ["192.0.2.0/24 key:nosuch", "nonsense key:down", '
        '"192.0.2.1 key:down extra", "key:down 192.0.2.1"]\n'
        'allow_notify = ["192.0.2.1 key:down"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = raised.value.message
    assert "allow_transfer: unknown key 'nosuch'" in message
    assert "'nonsense' is neither a CIDR/address, key:NAME nor 'CIDR key:NAME'" in message
    assert "'192.0.2.1 key:down extra' is neither" in message
    assert "'key:down 192.0.2.1' is neither" in message
    assert "allow_notify: '192.0.2.1 key:down': here an address or a key" in message


def test_transfer_allowed_by_an_address_and_a_key():
    from secdns.server.xfrout import transfer_allowed

    key = dns.name.from_text("xfrkey")
    keys = {"down": key}
    acl = ["192.0.2.0/24 key:down"]
    assert transfer_allowed(acl, "192.0.2.7", key, keys)
    assert not transfer_allowed(acl, "192.0.2.7", None, keys)  # unsigned
    assert not transfer_allowed(acl, "198.51.100.7", key, keys)  # signed, elsewhere
    assert not transfer_allowed(acl, "192.0.2.7", dns.name.from_text("other"), keys)
    either = ["192.0.2.0/24", "key:down"]
    assert transfer_allowed(either, "192.0.2.7", None, keys)
    assert transfer_allowed(either, "198.51.100.7", key, keys)
    assert not transfer_allowed(either, "198.51.100.7", None, keys)


def test_two_key_tables_with_one_wire_name_and_two_secrets_are_said(tmp_path, caplog):
    """A keyring holds one key a name: two [keys.*] naming one wire key with different
    secrets (a secret being rolled; pull --key picks one by its table) are taken, with a
    warning naming both and the one serve verifies against; the same key twice (an
    alias) without one."""
    from secdns.config import load_config

    path = tmp_path / "secdns.toml"
    one = 'secret = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="\n'
    two = 'secret = "b3RoZXIgc2VjcmV0IG90aGVyIHNlY3JldA=="\n'
    zone = '[[zone]]\nname = "a.example"\nprimaries = ["192.0.2.1"]\n'
    path.write_text(f'[keys.a]\nname = "xfr"\n{one}[keys.b]\nname = "xfr"\n{one}{zone}')
    caplog.clear()
    assert set(load_config(path).keys) == {"a", "b"}
    assert "name one key" not in caplog.text
    path.write_text(f'[keys.a]\nname = "xfr"\n{one}[keys.b]\nname = "XFR."\n{two}{zone}')
    assert set(load_config(path).keys) == {"a", "b"}
    assert "[keys.a] and [keys.b] name one key, XFR., with two secrets" in caplog.text
    assert "serve and watch refuse the config" in caplog.text


def test_serve_and_watch_refuse_two_secrets_for_one_key_name(tmp_path):
    """serve and watch check what is signed against a keyring of one key a name: a
    config whose tables give one name two secrets is refused there (exit 2), as BIND and
    Knot refuse a key declared twice (a stranger's second table, for one zone's test,
    had every other zone's NOTIFY answered NOTAUTH); pull -c --key picks a table."""
    from click.testing import CliRunner

    from secdns.cli import cli

    path = tmp_path / "secdns.toml"
    one = 'secret = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="\n'
    two = 'secret = "b3RoZXIgc2VjcmV0IG90aGVyIHNlY3JldA=="\n'
    zone = '[[zone]]\nname = "a.example"\nprimaries = ["127.0.0.1:9"]\n'
    server = f'[server]\ndirectory = "{tmp_path / "store"}"\nlisten = ["127.0.0.1:9"]\n'
    path.write_text(f'{server}[keys.a]\nname = "xfr"\n{one}[keys.b]\nname = "XFR."\n{two}{zone}')
    for argv in (["serve", "-c", str(path)], ["watch", "-c", str(path)]):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert "[keys.b] names the key XFR. as [keys.a] does, with another secret" in (
            result.output
        )


def test_a_half_matched_address_and_key_entry_says_which_half():
    from secdns.server.xfrout import refusal_reason

    key = dns.name.from_text("xfrkey")
    keys = {"down": key}
    acl = ["192.0.2.0/24 key:down"]
    assert refusal_reason(acl, "198.51.100.7", key, keys) == (
        "key xfrkey. is allowed from 192.0.2.0/24 only"
    )
    assert refusal_reason(acl, "192.0.2.7", None, keys) == "192.0.2.0/24 needs key xfrkey."
    assert refusal_reason(["192.0.2.0/24"], "198.51.100.7", None, keys) == ""
    # every key a network allows, every network a key is allowed from (a stranger was
    # told only the first)
    other = dns.name.from_text("other")
    keys["other"] = other
    acl = ["192.0.2.0/24 key:down", "192.0.2.0/24 key:other", "203.0.113.0/24 key:down"]
    assert refusal_reason(acl, "192.0.2.7", None, keys) == (
        "192.0.2.0/24 needs key xfrkey. or other."
    )
    assert refusal_reason(acl, "198.51.100.7", key, keys) == (
        "key xfrkey. is allowed from 192.0.2.0/24 or 203.0.113.0/24 only"
    )


def test_unknown_keys_of_catalogs_groups_and_keys_name_the_closest(tmp_path):
    """A [[catalog]], [groups.*] or [keys.*] typo is told the key it was likely meant
    to be, as [server] and [[zone]] typos are (a stranger's [[catalog]] primary had no
    hint)."""
    from secdns.config import load_config
    from secdns.errors import ConfigError

    path = tmp_path / "secdns.toml"
    path.write_text(
        '[[catalog]]\nname = "c.example"\nprimary = ["127.0.0.1:9"]\nmax_member = 5\n'
        '[groups.g]\nprimries = ["127.0.0.1:9"]\n[keys.k]\nsecrett = "aGVsbG8="\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = raised.value.message
    assert "catalog[0] (c.example).primary: unknown key (did you mean 'primaries'?)" in message
    assert ".max_member: unknown key (did you mean 'max_members'?)" in message
    assert "groups.g.primries: unknown key (did you mean 'primaries'?)" in message
    assert "keys.k.secrett: unknown key (did you mean 'secret'?)" in message
