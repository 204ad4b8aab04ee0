"""NOTIFY (RFC 1996): deciding an incoming NOTIFY (pure) and sending ours, with backoff."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Sequence

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from secdns.endpoints import IPNetwork, source_allowed

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class NotifyDecision:
    response: bytes
    zone: dns.name.Name | None  # the zone to refresh now, or None


def decide_notify(
    query: dns.message.Message,
    source: str,
    allowed: Callable[[dns.name.Name], Sequence[IPNetwork] | None],
) -> NotifyDecision:
    """Answer a NOTIFY: NOERROR (and refresh) only from the zone's primaries or allow_notify.

    ``allowed(zone)`` returns the networks allowed to NOTIFY that zone,
    or None when we are not a secondary for it (NOTAUTH).
    """
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return NotifyDecision(response.to_wire(), None)
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
        return NotifyDecision(response.to_wire(), None)
    sources = allowed(question.name)
    if sources is None:
        response.flags &= ~dns.flags.AA
        response.set_rcode(dns.rcode.NOTAUTH)
        return NotifyDecision(response.to_wire(), None)
    if source_allowed(source, sources):
        return NotifyDecision(response.to_wire(), question.name)
    response.set_rcode(dns.rcode.REFUSED)
    return NotifyDecision(response.to_wire(), None)


async def send_notify(
    zone: dns.name.Name,
    soa: dns.rrset.RRset | None,
    address: str,
    port: int,
    *,
    key: dns.tsig.Key | None = None,
    attempts: int = 6,
    first_timeout: float = 1.0,
    stop: asyncio.Event | None = None,
) -> bool:
    """NOTIFY one target, retrying with exponential backoff until it acknowledges."""
    timeout = first_timeout
    for attempt in range(1, attempts + 1):
        message = dns.message.make_query(zone, dns.rdatatype.SOA)
        message.flags = dns.flags.AA
        message.set_opcode(dns.opcode.NOTIFY)
        if soa is not None:
            message.answer.append(soa)
        if key is not None:
            message.use_tsig({key.name: key}, key.name)
        try:
            response = await dns.asyncquery.udp(message, address, timeout=timeout, port=port)
        except (dns.exception.Timeout, OSError, dns.exception.DNSException) as err:
            log.info(
                "notify: zone=%s to %s:%d attempt %d failed: %s",
                zone,
                address,
                port,
                attempt,
                err or type(err).__name__,
            )
        else:
            if response.rcode() == dns.rcode.NOERROR:
                log.info("notify: zone=%s acknowledged by %s:%d", zone, address, port)
                return True
            log.warning(
                "notify: zone=%s %s:%d answered %s",
                zone,
                address,
                port,
                dns.rcode.to_text(response.rcode()),
            )
            return False
        delay = timeout * (0.5 + random.random())
        timeout = min(timeout * 2, 30.0)
        if stop is not None:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return False
            except TimeoutError:
                continue
        await asyncio.sleep(delay)
    log.warning(
        "notify: zone=%s %s:%d never acknowledged after %d attempts", zone, address, port, attempts
    )
    return False
