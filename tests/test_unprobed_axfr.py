"""serve's cold start asks AXFR without a SOA probe first (``ZoneCopy.axfr_unprobed``).

A zone serve holds nothing of is transferred at once: the AXFR brings the SOA, and
the EDNS EXPIRE (RFC 7314) is asked in the AXFR query.  These tests hold the new path
to the probing one on the same real primaries: the same version, the same result
(timers, EDNS EXPIRE, counts), and, when the transfer fails, the same error (the
probing path is then taken, so the error is the one it always reported).
"""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from servers import free_port, tsig_secret, zone_text

from secdns import pull, soaquery, wire
from secdns.config import parse_config
from secdns.errors import TimeoutError_
from secdns.pull import PullOptions, PullResult, Status
from secdns.server.xferproc import TransferProcess
from secdns.server.zones import MemoryCopy, ZoneRuntime

ORIGIN = dns.name.from_text("example.com.")


@pytest.mark.parametrize("ixfr", [False, True])
def test_the_transfer_query_asking_expire_is_what_dnspython_builds(ixfr):
    names = (dns.name.from_text("ns1.example.com."), dns.name.from_text("h.example.com."))
    ours = soaquery.transfer_query(
        7, ORIGIN, 41 if ixfr else None, names if ixfr else None, expire=True
    )
    theirs = dns.message.make_query(
        ORIGIN,
        dns.rdatatype.IXFR if ixfr else dns.rdatatype.AXFR,
        use_edns=0,
        payload=1232,
        options=[dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")],
    )
    theirs.flags &= ~dns.flags.RD
    theirs.id = 7
    if ixfr:
        soa = dns.rdata.from_text("IN", "SOA", f"{names[0]} {names[1]} 41 0 0 0 0")
        theirs.authority.append(dns.rrset.from_rdata(ORIGIN, 0, soa))
    assert dns.message.from_wire(ours) == dns.message.from_wire(theirs.to_wire())
    if not ixfr:
        assert ours == theirs.to_wire()


def _answer(options: list[dns.edns.Option], ednsflags: int = 0, rcode: int = 0) -> bytes:
    query = dns.message.make_query(ORIGIN, dns.rdatatype.AXFR)
    response = dns.message.make_response(query)
    response.use_edns(0, ednsflags, 1232, options=options)
    response.set_rcode(rcode)
    soa = dns.rdata.from_text("IN", "SOA", "ns1.example.com. h.example.com. 41 3600 600 86400 300")
    response.answer.append(dns.rrset.from_rdata(ORIGIN, 300, soa))
    return response.to_wire()


def test_a_transfer_message_gives_its_edns_expire_and_extended_rcode():
    expire = dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, struct.pack("!I", 4321))
    other = dns.edns.GenericOption(dns.edns.OptionType.NSID, b"ns1")
    assert wire.parse_message(_answer([other, expire]), ORIGIN).edns_expire == 4321
    assert wire.parse_message(_answer([other]), ORIGIN).edns_expire is None
    empty = dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")  # malformed: no value
    assert wire.parse_message(_answer([empty]), ORIGIN).edns_expire is None
    plain = dns.message.make_response(dns.message.make_query(ORIGIN, dns.rdatatype.AXFR))
    message = wire.parse_message(plain.to_wire(), ORIGIN)
    assert (message.edns_expire, message.rcode) == (None, 0)
    badvers = wire.parse_message(_answer([], rcode=dns.rcode.BADVERS), ORIGIN)
    assert badvers.rcode == dns.rcode.BADVERS  # 16: the OPT's upper bits, RFC 6891 6.1.3


def _refresh(
    address: str, *, unprobed: bool, timeout: float = 2.0, far: bool = False
) -> tuple[PullResult, object]:
    """One first refresh of example.com by serve's own copy (no store); the result and
    the version's lines.  ``far``: with serve's transfer process running (a cold start
    of many zones, secdns.server.xferproc), which then makes the AXFR."""
    doc = {"server": {}, "zone": [{"name": "example.com", "primaries": [address]}]}
    config = parse_config(doc)

    async def run() -> tuple[PullResult, object]:
        runtime = ZoneRuntime(config.zones[0], config, None, lambda _runtime: None)
        runtime.options = PullOptions(timeout=timeout)
        process = TransferProcess()
        if far:
            process.start()
            for _ in range(500):
                if process.running:
                    break
                await asyncio.sleep(0.01)
            assert process.running
            runtime.elsewhere = process
        try:
            result = await runtime.refresh()
        finally:
            await process.close()
        if far and result.status is Status.TRANSFERRED:
            assert process.made == 1  # there, not here
        version = runtime.zone.version
        return result, sorted(version.iter_lines()) if version else None

    saved = MemoryCopy.axfr_unprobed
    MemoryCopy.axfr_unprobed = unprobed
    try:
        return asyncio.run(run())
    finally:
        MemoryCopy.axfr_unprobed = saved


def _comparable(result: PullResult) -> dict[str, object]:
    """What a result says, but its duration; the EDNS EXPIRE as the refresh uses it (the
    smaller of it and the SOA's: a primary zone's EXPIRE is its SOA's, RFC 7314 2, which
    BIND answers to a SOA query but leaves out of an AXFR); the transfer's size apart
    (an AXFR asked with EDNS is answered with an OPT record)."""
    found = result.to_dict() | {"timers": result.timers, "primary_serial": result.primary_serial}
    del found["duration"], found["bytes"]
    if result.timers is not None:
        found["expire"] = min(result.timers[2], result.edns_expire or result.timers[2])
    return found


@pytest.fixture
def probes(monkeypatch):
    """The SOA probes pull_zone makes (counted)."""
    made: list[str] = []
    probe = pull.probe_soa

    async def counted(origin, *args, **kwargs):
        made.append(origin.to_text())
        return await probe(origin, *args, **kwargs)

    monkeypatch.setattr(pull, "probe_soa", counted)
    return made


def test_a_cold_zone_is_transferred_without_a_probe_as_with_one(
    bind_primary, knot_primary, nsd_primary, probes
):
    for server in (bind_primary(), knot_primary(), nsd_primary()):
        probes.clear()
        probed, probed_lines = _refresh(server.addr, unprobed=False)
        assert probes == ["example.com."]
        probes.clear()
        direct, direct_lines = _refresh(server.addr, unprobed=True)
        assert probes == [], server
        assert direct.status is Status.TRANSFERRED, direct.error
        assert direct_lines == probed_lines, server
        assert _comparable(direct) == _comparable(probed), server
        # the OPT record (11 octets; 19 with Knot's EXPIRE option) per message, if any
        assert 0 <= direct.bytes - probed.bytes <= 19 * direct.messages, server
        # made in serve's transfer process: the same version and result
        far, far_lines = _refresh(server.addr, unprobed=True, far=True)
        assert probes == [], server
        assert far_lines == direct_lines, server
        assert _comparable(far) == _comparable(direct) and far.bytes == direct.bytes, server


def test_the_edns_expire_of_a_secondary_primary_comes_with_the_axfr(
    bind_primary, bind_secondary, probes
):
    """RFC 7314: a BIND secondary answers EXPIRE in the transfer as in the SOA answer."""
    primary = bind_primary()
    secondary = bind_secondary({"example.com": primary.endpoint})
    probed, _ = _refresh(secondary.addr, unprobed=False)
    direct, _ = _refresh(secondary.addr, unprobed=True)
    assert probes == ["example.com."]
    assert probed.edns_expire is not None and direct.edns_expire is not None
    assert probed.edns_expire - 5 <= direct.edns_expire <= probed.edns_expire


def test_a_failed_transfer_without_a_probe_reports_the_probing_path_s_error(bind_primary, probes):
    """Refused (a zone the primary does not serve; a transfer it does not allow) and
    nothing listening: the probing path runs after the failed AXFR, so the error is
    the one it always gave."""
    cases = []
    other = zone_text().replace("example.com.", "other.test.")
    served = bind_primary({"other.test": other})
    cases.append(served.addr)  # REFUSED / NOTAUTH for example.com
    keyed = bind_primary(
        tsig={"xfr": ("hmac-sha256", tsig_secret())},
        allow_transfer_key="xfr",
    )
    cases.append(keyed.addr)  # answers the SOA, refuses an unsigned AXFR
    cases.append(f"127.0.0.1:{free_port()}")  # nothing there
    for address in cases:
        probed, _ = _refresh(address, unprobed=False)
        for far in (False, True):  # in serve, and in its transfer process
            direct, _ = _refresh(address, unprobed=True, far=far)
            assert probed.status is direct.status is Status.FAILED
            assert probed.error is not None and direct.error is not None
            assert direct.error.one_line() == probed.error.one_line(), address
            assert type(direct.error) is type(probed.error)
            assert _comparable(direct) == _comparable(probed)


def test_a_timeout_without_a_probe_is_reported_as_it_came():
    """A primary that takes the connection and never answers: the timeout is not tried
    again (that would double the wait) and is reported as a timeout naming the server."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        direct, _ = _refresh(address, unprobed=True, timeout=0.3)
        far, _ = _refresh(address, unprobed=True, timeout=0.3, far=True)
    for result in (direct, far):
        assert result.status is Status.FAILED
        assert isinstance(result.error, TimeoutError_)
        assert address in result.error.one_line() and "AXFR" in result.error.one_line()
    assert far.error.one_line() == direct.error.one_line()  # type: ignore[union-attr]
