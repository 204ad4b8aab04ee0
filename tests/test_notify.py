"""NOTIFY (secdns.notify): serve and watch give the same replies, on the wire; TSIG is
verified; replies are never larger than the query; refusals are logged once a minute."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
import threading
import time

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import dns.tsig
import pytest
from servers import free_port, tsig_secret
from serving import ServerThread, write_config

from secdns.endpoints import Endpoint
from secdns.keys import TsigKey, make_key
from secdns.mirror import Mirror, MirrorOptions, MirrorZone
from secdns.notify import NotifyAcl, RefusalLog, answer_notify

ZONE = "example.com"
ORIGIN = dns.name.from_text(ZONE)
KEY = make_key("xfr-key", "hmac-sha256", tsig_secret())
OTHER = make_key("other-key", "hmac-sha256", tsig_secret())
NOBODY = make_key("nobody", "hmac-sha256", tsig_secret())


def notify(
    zone: str = ZONE, rdtype: str = "SOA", key: TsigKey | None = None, edns: bool = False
) -> bytes:
    query = dns.message.make_query(zone, rdtype, use_edns=0 if edns else None)
    query.flags = dns.flags.AA
    query.set_opcode(dns.opcode.NOTIFY)
    query.answer.append(
        dns.rrset.from_text(zone + ".", 60, "IN", "SOA", "ns. h. 2 3600 600 86400 60")
    )
    if key is not None:
        wire_key = key.to_dnspython()
        query.use_tsig({wire_key.name: wire_key}, wire_key.name)
    return query.to_wire()


def forged(key: TsigKey) -> TsigKey:
    """The same key name and algorithm with another secret: its MAC does not verify."""
    return TsigKey(key.name, key.algorithm, tsig_secret())


CASES = {
    "accepted": (notify(), "127.0.0.1", dns.rcode.NOERROR),
    "accepted-edns": (notify(edns=True), "127.0.0.1", dns.rcode.NOERROR),
    "signed": (notify(key=KEY), "127.0.0.1", dns.rcode.NOERROR),
    "not-soa": (notify(rdtype="A"), "127.0.0.1", dns.rcode.FORMERR),
    "stranger": (notify(), "127.0.0.2", dns.rcode.REFUSED),
    "bad-tsig": (notify(key=forged(KEY)), "127.0.0.1", dns.rcode.NOTAUTH),
    "unknown-key": (
        notify(key=make_key("nobody", "hmac-sha256", tsig_secret())),
        "127.0.0.1",
        dns.rcode.NOTAUTH,
    ),
    "other-zone": (notify("example.org"), "127.0.0.1", dns.rcode.NOTAUTH),
}


def ask(wire: bytes, source: str, port: int) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(2.0)
        sock.sendto(wire, ("127.0.0.1", port))
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


def summary(reply: bytes) -> tuple[object, ...]:
    message = dns.message.from_wire(reply, keyring=False)
    return (
        message.id,
        message.opcode(),
        message.rcode(),
        message.flags,
        [q.to_text() for q in message.question],
        message.edns,
        message.had_tsig,
    )


class MirrorThread:
    """``watch`` with a NOTIFY listener, in a thread of its own."""

    def __init__(self, port: int, tmp_path) -> None:
        self.mirror = Mirror(
            [MirrorZone(ORIGIN, (Endpoint("127.0.0.1", 9),), key=KEY, output=tmp_path / "w.zone")],
            options=MirrorOptions(
                interval=3600, timeout=0.2, notify_listen=Endpoint("127.0.0.1", port)
            ),
        )
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        task = asyncio.create_task(self.mirror.run(self.stop))
        while self.mirror.notify_address is None and not task.done():
            await asyncio.sleep(0.01)
        self.ready.set()
        await task

    def close(self) -> None:
        assert self.loop is not None and self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.fixture
def both(tmp_path):
    """(serve's port, watch's port): one secondary zone, primary 127.0.0.1, key xfr-key."""
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        keys={
            "xfr": {"name": KEY.name, "algorithm": KEY.algorithm, "secret": KEY.secret},
        },
        zones=[{"name": ZONE, "primaries": ["127.0.0.1:9"], "key": "xfr"}],
    )
    server = ServerThread(config)
    watch_port = free_port()
    mirror = MirrorThread(watch_port, tmp_path)
    yield server.port, watch_port
    mirror.close()
    server.stop()


def test_serve_and_watch_answer_every_notify_alike(both):
    serve_port, watch_port = both
    for name, (wire, source, rcode) in CASES.items():
        served = ask(wire, source, serve_port)
        watched = ask(wire, source, watch_port)
        assert served is not None and watched is not None, name
        assert summary(served) == summary(watched), name
        reply = dns.message.from_wire(served, keyring=False)
        assert reply.rcode() == rcode, name
        assert bool(reply.flags & dns.flags.AA) == (rcode == dns.rcode.NOERROR), name
        # signed, and a bad TSIG's NOTAUTH carries the TSIG error (RFC 8945 5.3.2)
        assert reply.had_tsig == (name in ("signed", "bad-tsig", "unknown-key")), name
        if name in ("bad-tsig", "unknown-key"):
            error = dns.rcode.BADSIG if name == "bad-tsig" else dns.rcode.BADKEY
            assert reply.tsig is not None and reply.tsig[0].error == error, name
        assert len(served) <= len(wire) and len(watched) <= len(wire), name
        if not reply.had_tsig:  # a TSIG record carries the time: bytes differ
            assert served == watched, name


def test_a_notify_with_a_bad_signature_gets_badsig_as_a_query_does():
    """A NOTIFY signed with the wrong secret: NOTAUTH with a TSIG record saying BADSIG,
    which the sender's TSIG code reads as such (dnspython: PeerBadSignature), as for a
    query; it was an unsigned NOTAUTH, which dnspython read as malformed (FormError)."""
    wire = notify(key=forged(KEY))
    keyring = {dns.name.from_text(KEY.name): KEY.to_dnspython()}
    acl = NotifyAcl(zone_key=dns.name.from_text(KEY.name))
    decision = answer_notify(wire, "127.0.0.1", {ORIGIN: acl}, keyring)
    assert decision.response is not None and decision.tsig_error == "BADSIG"
    assert decision.signer == dns.name.from_text(KEY.name)
    sent = dns.message.from_wire(wire, keyring=False)
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.message.from_wire(decision.response, keyring=keyring, request_mac=sent.mac)


def test_signed_reply_verifies_with_the_querys_key():
    wire = notify(key=KEY)
    keyring = {dns.name.from_text(KEY.name): KEY.to_dnspython()}
    query = dns.message.from_wire(wire, keyring=keyring)
    acl = NotifyAcl(zone_key=dns.name.from_text(KEY.name))
    decision = answer_notify(wire, "192.0.2.1", {ORIGIN: acl}, keyring)
    assert decision.rcode == dns.rcode.REFUSED  # the source is not a primary
    acl = NotifyAcl(keys=frozenset({dns.name.from_text(KEY.name)}))
    decision = answer_notify(wire, "192.0.2.1", {ORIGIN: acl}, keyring)  # allow_notify key:
    assert decision.zone == ORIGIN and decision.response is not None
    reply = dns.message.from_wire(decision.response, keyring=keyring, request_mac=query.mac)
    assert reply.had_tsig and reply.rcode() == dns.rcode.NOERROR
    # signed with a key we know that is not the zone's: REFUSED, even from a primary
    keyring[dns.name.from_text(OTHER.name)] = OTHER.to_dnspython()
    acl = NotifyAcl(
        sources=(ipaddress.ip_network("192.0.2.1/32"),), zone_key=dns.name.from_text(KEY.name)
    )
    decision = answer_notify(notify(key=OTHER), "192.0.2.1", {ORIGIN: acl}, keyring)
    assert decision.rcode == dns.rcode.REFUSED and decision.zone is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_logged_once_per_source_and_zone_per_minute(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    refusals = RefusalLog(logging.getLogger("test.notify"), clock=clock)
    logged = [refusals.refused("192.0.2.9", "example.com.", "REFUSED") for _ in range(1620)]
    assert logged.count(True) == 1
    assert refusals.refused("192.0.2.10", "example.com.", "REFUSED")  # another source
    assert refusals.refused("192.0.2.9", "example.org.", "REFUSED")  # another zone
    clock.now += 59
    assert not refusals.refused("192.0.2.9", "example.com.", "REFUSED")
    clock.now += 2
    assert refusals.refused("192.0.2.9", "example.com.", "REFUSED")
    lines = [r.getMessage() for r in caplog.records if r.name == "test.notify"]
    assert len(lines) == 4
    assert "(1620 more since the last line)" in lines[-1]
    # the table of pairs is bounded
    small = RefusalLog(logging.getLogger("test.notify"), clock=clock, max_pairs=8)
    for n in range(100):
        small.refused(f"192.0.2.{n}", "example.com.", "REFUSED")
    assert len(small._pairs) == 8


def test_a_refusal_flood_writes_one_line(both, caplog):
    caplog.set_level(logging.INFO)
    serve_port, watch_port = both
    for port in (serve_port, watch_port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            sock.settimeout(2.0)
            for _ in range(200):
                sock.sendto(notify(), ("127.0.0.1", port))
                assert dns.message.from_wire(sock.recv(4096)).rcode() == dns.rcode.REFUSED
    refused = [
        r.getMessage()
        for r in caplog.records
        if "NOTIFY from" in r.getMessage() and "not accepted" in r.getMessage()
    ]
    assert len(refused) == 2, refused  # one for serve, one for watch


def test_a_notify_that_brings_nothing_is_said_at_info(bind_primary, tmp_path, caplog):
    # a primary whose answer cache still has the old serial (PowerDNS's packet cache),
    # or a NOTIFY sent before the change: the check finds nothing new, and says so
    primary = bind_primary()
    serial = primary.soa_serial(ZONE)
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": ZONE, "primaries": [primary.addr]}],
    )
    caplog.set_level(logging.INFO, logger="secdns")
    server = ServerThread(config)
    try:
        server.wait_serial(ZONE, serial)
        reply = ask(notify(), "127.0.0.1", server.port)
        assert reply is not None
        deadline = time.monotonic() + 10
        wanted = (
            f"zone={ZONE}. NOTIFY, but {primary.addr} answers serial {serial} (served: {serial})"
        )
        while not [r for r in caplog.records if wanted in r.getMessage()]:
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
    finally:
        server.stop()


def test_a_zones_primaries_may_notify_before_its_task_has_run():
    """A NOTIFY that comes between serve's listening and a zone's first step (a cold
    start of 2,000 zones) is taken from a primary written as an address: a stranger's
    primary had 10 refused as 'not a primary' there.  A host name still waits for its
    resolution; an address that is not a primary is still refused."""
    from secdns.config import parse_config
    from secdns.server.zones import ZoneRuntime

    doc = {
        "server": {},
        "zone": [{"name": "example.com", "primaries": ["127.0.0.1:5300", "primary.invalid"]}],
    }
    config = parse_config(doc)
    runtime = ZoneRuntime(config.zones[0], config, None, lambda _runtime: None)
    query = dns.message.make_query("example.com.", "SOA")
    query.set_opcode(dns.opcode.NOTIFY)
    query.flags |= dns.flags.AA
    acls = {runtime.config.name: runtime.notify_acl}
    taken = answer_notify(query.to_wire(), "127.0.0.1", acls)
    assert taken.zone == runtime.config.name
    refused = answer_notify(query.to_wire(), "127.0.0.2", acls)
    assert refused.zone is None and "is not a primary" in refused.reason


def test_a_zone_that_needs_a_key_refuses_an_unsigned_notify_from_its_primary(tmp_path):
    """notify_key_required: a NOTIFY from the primary's own address is refused unsigned
    (BIND would take it; Knot's and NSD's ACLs can ask for the key), taken signed with
    the zone's key or an allow_notify key."""
    from secdns.config import load_config
    from secdns.errors import ConfigError
    from secdns.server.zones import notify_acl

    secret = tsig_secret()
    text = f"""
[keys.xfr]
algorithm = "hmac-sha256"
secret = "{secret}"
[[zone]]
name = "{ZONE}"
primaries = ["192.0.2.1"]
key = "xfr"
notify_key_required = true
"""
    path = tmp_path / "secdns.toml"
    path.write_text(text)
    config = load_config(path)
    zone = config.zones[0]
    assert zone.notify_key_required
    acl = notify_acl(zone, config, ["192.0.2.1"])
    assert acl.signed_only
    key = make_key("xfr", "hmac-sha256", secret)
    keyring = {dns.name.from_text(key.name): key.to_dnspython()}
    refused = answer_notify(notify(), "192.0.2.1", {ORIGIN: acl}, keyring)
    assert refused.rcode == dns.rcode.REFUSED and refused.zone is None
    assert "notify_key_required" in refused.reason
    taken = answer_notify(notify(key=key), "192.0.2.1", {ORIGIN: acl}, keyring)
    assert taken.rcode == dns.rcode.NOERROR and taken.zone == ORIGIN
    elsewhere = answer_notify(notify(key=key), "192.0.2.9", {ORIGIN: acl}, keyring)
    assert elsewhere.rcode == dns.rcode.REFUSED  # the zone's key, from a stranger
    # without it (the default), as BIND: the primary's address is enough
    plain = dataclasses.replace(acl, signed_only=False)
    assert answer_notify(notify(), "192.0.2.1", {ORIGIN: plain}, keyring).zone == ORIGIN
    # nothing could sign one: refused when the config is read
    path.write_text(text.replace('key = "xfr"\n', ""))
    with pytest.raises(ConfigError, match="notify_key_required: no key could sign a NOTIFY"):
        load_config(path)
    path.write_text(text.replace('key = "xfr"\n', 'allow_notify = ["key:xfr"]\n'))
    assert load_config(path).zones[0].notify_key_required
    path.write_text(text.replace("notify_key_required = true", 'notify_key_required = "yes"'))
    with pytest.raises(ConfigError, match="notify_key_required: expected true or false"):
        load_config(path)


def test_refusals_of_ever_new_zones_are_bounded_in_lines(caplog):
    """NOTIFYs for ever new zone names (a stranger's 50 forged ones made 50 lines) are
    logged at most max_lines a minute; the next line says how many were not."""
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    refusals = RefusalLog(logging.getLogger("test.notify"), clock=clock, max_lines=20)
    logged = [refusals.refused("192.0.2.9", f"z{n}.example.", "NOTAUTH") for n in range(500)]
    assert logged.count(True) == 20
    clock.now += 61
    assert refusals.refused("192.0.2.9", "late.example.", "NOTAUTH")
    lines = [r.getMessage() for r in caplog.records if r.name == "test.notify"]
    assert len(lines) == 21 and "(480 other refusals not logged" in lines[-1]


def test_a_notify_reply_offers_the_payload_every_reply_offers():
    """An EDNS NOTIFY's reply says 1232, as serve's query replies do (dnspython's default
    8192 made it the only reply that said otherwise: a stranger's finding)."""
    query = dns.message.make_query(ORIGIN, "SOA", use_edns=0, payload=1232)
    query.set_opcode(dns.opcode.NOTIFY)
    acl = NotifyAcl(sources=(ipaddress.ip_network("127.0.0.1/32"),))
    for source in ("127.0.0.1", "192.0.2.9"):  # accepted, refused
        decision = answer_notify(query.to_wire(), source, {ORIGIN: acl}, {})
        assert decision.response is not None
        assert dns.message.from_wire(decision.response).payload == 1232, source


def test_notify_replies_echo_do():
    """RFC 3225 3 (BIND echoes DO in its NOTIFY replies): accepted, refused, not ours."""
    acl = NotifyAcl(sources=(ipaddress.ip_network("127.0.0.0/8"),))
    query = dns.message.make_query(ORIGIN, "SOA", want_dnssec=True)
    query.set_opcode(dns.opcode.NOTIFY)
    for source, rcode in (("127.0.0.1", dns.rcode.NOERROR), ("192.0.2.1", dns.rcode.REFUSED)):
        decision = answer_notify(query.to_wire(), source, {ORIGIN: acl})
        assert decision.response is not None
        reply = dns.message.from_wire(decision.response)
        assert reply.rcode() == rcode and reply.ednsflags & dns.flags.DO, source
