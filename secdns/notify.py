"""NOTIFY (RFC 1996), both directions, for ``serve`` and ``watch`` alike.

* :func:`answer_notify` decides one incoming datagram (pure, no sockets):
  validate it, check who sent it, build the reply and name the zone to refresh.
* :class:`NotifyListener` is the datagram protocol ``watch`` listens with
  (``serve`` hands the datagrams its own listeners classified as NOTIFY to
  :func:`answer_notify` directly).
* :class:`RefusalLog` logs refused NOTIFYs at most once per source and zone per
  window, with a count, so a flood cannot fill the log.
* ours are sent by :mod:`secdns.notifysend`.

The reply follows BIND (``ns/notify.c``): same ID, opcode and question; AA set
on NOERROR only; FORMERR for anything but exactly one IN SOA question, NOTAUTH
for a zone we are not a secondary for and for a TSIG that does not verify,
REFUSED for a source (or key) not allowed.  A reply is signed with the query's
key when the query was signed and verified, carries an OPT when the query did
(RFC 6891 6.1.1), and is never larger than the query: no amplification.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import cast

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
import dns.tsig

from secdns import tsigerror
from secdns.endpoints import Endpoint, IPNetwork, source_allowed
from secdns.errors import NetworkError, UsageError, os_reason
from secdns.replies import make_response

log = logging.getLogger(__name__)

HEADER_SIZE = 12
MAX_NOTIFY_SIZE = 4096
"""Datagrams larger than this are not NOTIFYs worth parsing: dropped unread."""
_QR_BYTE = 2  # the QR bit is the top bit of the third header byte
_QR_BIT = 0x80
_TSIG_ERRORS = (
    dns.message.UnknownTSIGKey,
    dns.tsig.BadSignature,
    dns.tsig.BadTime,
    dns.tsig.BadKey,
    dns.tsig.BadAlgorithm,
    dns.tsig.PeerError,
)


@dataclasses.dataclass(frozen=True, slots=True)
class NotifyAcl:
    """Who may NOTIFY one zone.

    ``sources``: the primaries' addresses (/32, /128) and the ``allow_notify``
    networks.  ``keys``: TSIG key names (wire names) that allow a signed NOTIFY
    from any source (``allow_notify = ["key:NAME"]``).  ``zone_key``: the key the
    zone transfers with; a NOTIFY signed with it is accepted from an allowed source.
    ``signed_only`` (``notify_key_required``): an unsigned NOTIFY is refused, from the
    primaries too (BIND accepts one from a primary's address; Knot's and NSD's ACLs can
    ask for the key, as this does).
    """

    sources: tuple[IPNetwork, ...] = ()
    keys: frozenset[dns.name.Name] = frozenset()
    zone_key: dns.name.Name | None = None
    signed_only: bool = False


NotifyLookup = Callable[[dns.name.Name], NotifyAcl | None]
"""Zone -> who may NOTIFY it, or None when we are not a secondary for it (NOTAUTH)."""


@dataclasses.dataclass(frozen=True, slots=True)
class NotifyDecision:
    """What to do with one datagram.

    ``response`` is the reply to send (None: stay silent); ``zone`` the zone to
    refresh now (None: nothing to do); ``rcode`` the reply's rcode and ``reason``
    why, for the log.
    """

    response: bytes | None
    zone: dns.name.Name | None
    rcode: dns.rcode.Rcode | None
    reason: str
    qname: dns.name.Name | None = None  # the question's name, when there was one
    serial: int | None = None  # the serial its answer section's SOA announces, if any
    tsig_error: str | None = None  # BADSIG, BADKEY, BADTIME: its TSIG did not verify
    signer: dns.name.Name | None = None  # the key it was signed with, if it was

    @property
    def refused(self) -> bool:
        return self.zone is None


def is_query_header(wire: bytes) -> bool:
    """The cheap first look: long enough for a header, not huge, and not a response."""
    return HEADER_SIZE <= len(wire) <= MAX_NOTIFY_SIZE and not wire[_QR_BYTE] & _QR_BIT


def answer_notify(
    wire: bytes,
    source: str,
    lookup: NotifyLookup | Mapping[dns.name.Name, NotifyAcl],
    keyring: Mapping[dns.name.Name, dns.tsig.Key] | None = None,
) -> NotifyDecision:
    """Decide one datagram that may be a NOTIFY (RFC 1996 3.7, 3.10; BIND's rules).

    * not a query, truncated, huge or unparsable: dropped, no reply (never reflect garbage);
    * a TSIG that does not verify against ``keyring``: NOTAUTH;
    * an opcode other than NOTIFY: NOTIMP;
    * not exactly one IN SOA question: FORMERR;
    * a zone ``lookup`` does not know: NOTAUTH;
    * a source outside the zone's networks, unless signed with an allowed key,
      or signed with a key not allowed, or unsigned where the zone needs a key: REFUSED;
    * otherwise NOERROR with AA set, and the zone to refresh.
    """
    if not is_query_header(wire):
        return _dropped("not a DNS query")
    find = lookup.get if isinstance(lookup, Mapping) else lookup
    try:
        query = dns.message.from_wire(wire, keyring=dict(keyring or {}))
    except _TSIG_ERRORS as err:
        return _tsig_failure(wire, err, keyring)
    except Exception as err:  # hostile input: whatever the parser raises, drop it
        return _dropped(f"malformed ({err or type(err).__name__})")
    opcode = query.opcode()
    if opcode != dns.opcode.NOTIFY:
        return _reply(
            wire, query, dns.rcode.NOTIMP, f"opcode {dns.opcode.to_text(opcode)} is not NOTIFY"
        )
    if len(query.question) != 1:
        return _reply(
            wire, query, dns.rcode.FORMERR, f"{len(query.question)} questions", echo=False
        )
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN or question.rdtype != dns.rdatatype.SOA:
        return _reply(
            wire,
            query,
            dns.rcode.FORMERR,
            f"question is {dns.rdataclass.to_text(question.rdclass)} "
            f"{dns.rdatatype.to_text(question.rdtype)}, not IN SOA",
        )
    zone = question.name
    acl = find(zone)
    if acl is None:
        return _reply(wire, query, dns.rcode.NOTAUTH, f"not a secondary for {zone}")
    signer = query.keyname if query.had_tsig else None
    if signer is not None and signer in acl.keys:
        accepted = _reply(wire, query, dns.rcode.NOERROR, f"accepted (key {signer})", zone=zone)
        return dataclasses.replace(accepted, serial=_announced(query, zone))
    if not source_allowed(source, acl.sources):
        return _reply(wire, query, dns.rcode.REFUSED, f"{source} is not a primary of {zone}")
    if signer is not None and signer != acl.zone_key:
        return _reply(wire, query, dns.rcode.REFUSED, f"key {signer} is not allowed for {zone}")
    if signer is None and acl.signed_only:
        reason = f"unsigned, and {zone} needs a key (notify_key_required)"
        return _reply(wire, query, dns.rcode.REFUSED, reason)
    accepted = _reply(wire, query, dns.rcode.NOERROR, "accepted", zone=zone)
    return dataclasses.replace(accepted, serial=_announced(query, zone))


def _announced(query: dns.message.Message, zone: dns.name.Name) -> int | None:
    """The serial of the zone's SOA in a NOTIFY's answer section (RFC 1996 3.7: a hint
    the secondary may use), or None."""
    for rrset in query.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == zone and len(rrset):
            return int(rrset[0].serial)
    return None


def _dropped(reason: str) -> NotifyDecision:
    return NotifyDecision(None, None, None, f"dropped: {reason}")


def _tsig_failure(
    wire: bytes, err: Exception, keyring: Mapping[dns.name.Name, dns.tsig.Key] | None
) -> NotifyDecision:
    """NOTAUTH with the TSIG error, for a NOTIFY whose TSIG does not verify (RFC 8945
    5.3.2: :func:`secdns.tsigerror.add_error`, as queries get it; it was an unsigned
    NOTAUTH without the TSIG record, which a primary's TSIG code reads as malformed)."""
    error = tsigerror.error_of(err)
    reason = f"TSIG does not verify ({tsigerror.NAMES[error]}: {err or type(err).__name__})"
    try:
        query = dns.message.from_wire(wire, keyring=False)
    except Exception:
        return _dropped(reason)
    decision = _reply(wire, query, dns.rcode.NOTAUTH, reason, tsig=(query, error, keyring))
    signer = query.keyname if query.had_tsig else None
    return dataclasses.replace(decision, tsig_error=tsigerror.NAMES[error], signer=signer)


def _reply(
    wire: bytes,
    query: dns.message.Message,
    rcode: dns.rcode.Rcode,
    reason: str,
    *,
    zone: dns.name.Name | None = None,
    echo: bool = True,
    tsig: tuple[dns.message.Message, int, Mapping[dns.name.Name, dns.tsig.Key] | None]
    | None = None,
) -> NotifyDecision:
    qname = query.question[0].name if len(query.question) == 1 else None
    # (EDNS: the payload every reply of serve offers, render.EDNS_PAYLOAD; dnspython's
    # default 8192 made a NOTIFY's reply the only one saying so)
    response = make_response(query, our_payload=1232)
    response.flags &= ~dns.flags.AA
    if rcode == dns.rcode.NOERROR:
        response.flags |= dns.flags.AA
    response.set_rcode(rcode)
    if not echo:
        response.question = []
    if tsig is not None and query.tsig is not None:  # (the TSIG error: _tsig_failure)
        signed, error, keyring = tsig
        key = None
        if error == dns.rcode.BADTIME and keyring and signed.keyname is not None:
            key = keyring.get(signed.keyname)
        tsigerror.add_error(response, signed, error, key)
    try:
        out = response.to_wire()
    except dns.exception.DNSException as err:
        return NotifyDecision(None, zone, rcode, f"{reason}; no reply ({err})", qname)
    if len(out) > len(wire):
        return NotifyDecision(None, zone, rcode, f"{reason}; reply larger than query", qname)
    return NotifyDecision(out, zone, rcode, reason, qname)


class RefusalLog:
    """Log refused NOTIFYs at most once per (source address, zone) per ``window``.

    The first refusal in a window is logged; later ones are counted and the count
    goes with the next line logged for that pair.  At most ``max_pairs`` pairs are
    remembered (the oldest are forgotten first): a spoofed flood cannot grow it.  And
    at most ``max_lines`` lines a window in all: NOTIFYs for ever new zone names made
    one line each (a stranger's 50 forged NOTIFYs, 50 lines); past it they are counted,
    and the next line logged says how many were not.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        prefix: str = "notify",
        window: float = 60.0,
        max_pairs: int = 4096,
        max_lines: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.prefix = prefix
        self.window = window
        self.max_pairs = max_pairs
        self.max_lines = max_lines
        self.clock = clock
        self._pairs: dict[tuple[str, str], list[float | int]] = {}
        self._lines: list[float | int] = [float("-inf"), 0, 0]  # window start, lines, not said
        self._lock = threading.Lock()  # serve decides NOTIFYs in worker threads

    def refused(self, source: str, zone: str, reason: str) -> bool:
        """Note one refusal; True when it was logged."""
        with self._lock:
            suppressed = self._count(source, zone)
            unsaid = self._line() if suppressed is not None else None
        if suppressed is None or unsaid is None:
            return False
        more = f" ({suppressed} more since the last line)" if suppressed else ""
        if unsaid:
            more += (
                f" ({unsaid} other refusals not logged: at most {self.max_lines} lines a minute)"
            )
        self.logger.info(
            "%s: zone=%s NOTIFY from %s not accepted: %s%s", self.prefix, zone, source, reason, more
        )
        return True

    def said(self, source: str, what: str, text: str) -> bool:
        """Note one refusal of another kind (``what``: its pair's second half), logged
        as a warning ``PREFIX: TEXT`` under the same bounds; True when it was logged."""
        with self._lock:
            suppressed = self._count(source, what)
            unsaid = self._line() if suppressed is not None else None
        if suppressed is None or unsaid is None:
            return False
        more = f" ({suppressed} more since the last line)" if suppressed else ""
        if unsaid:
            more += (
                f" ({unsaid} other refusals not logged: at most {self.max_lines} lines a minute)"
            )
        self.logger.warning("%s: %s%s", self.prefix, text, more)
        return True

    def _line(self) -> int | None:
        """Whether a line may be logged now under :attr:`max_lines` a window: None if
        not (counted), else how many were not logged before it."""
        now = self.clock()
        lines = self._lines
        if now - lines[0] >= self.window:
            lines[0], lines[1] = now, 0
        if lines[1] >= self.max_lines:
            lines[2] += 1
            return None
        lines[1] += 1
        unsaid, lines[2] = int(lines[2]), 0
        return unsaid

    def _count(self, source: str, zone: str) -> int | None:
        """None inside the pair's window; else how many were not logged before."""
        now = self.clock()
        pair = (source, zone)
        seen = self._pairs.get(pair)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return None
        suppressed = int(seen[1]) if seen is not None else 0
        self._pairs.pop(pair, None)
        while len(self._pairs) >= self.max_pairs:
            self._pairs.pop(next(iter(self._pairs)))
        self._pairs[pair] = [now, 0]
        return suppressed


class NotifyListener(asyncio.DatagramProtocol):
    """The UDP side of a NOTIFY listener: look cheaply, enqueue, never block.

    Datagrams that cannot be a query are dropped here; the rest go on a bounded
    queue (full: dropped) for a task that calls :func:`answer_notify`.
    """

    def __init__(self, queue: asyncio.Queue[tuple[bytes, tuple[str, int]]]) -> None:
        self.queue = queue
        self.transport: asyncio.DatagramTransport | None = None
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a datagram endpoint's protocol is always given a DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not is_query_header(data):
            self.dropped += 1
            return
        try:
            self.queue.put_nowait((data, (str(addr[0]), int(addr[1]))))
        except asyncio.QueueFull:
            self.dropped += 1

    def error_received(self, exc: Exception) -> None:
        log.debug("notify: listener socket error: %s", exc)


NotifyQueue = asyncio.Queue[tuple[bytes, tuple[str, int]]]
NOTIFY_QUEUE = 256
"""Datagrams waiting for :func:`answer_notify` at most; more are dropped."""


async def listen_notify(
    listen: Endpoint,
) -> tuple[asyncio.DatagramTransport, NotifyListener, NotifyQueue]:
    """Bind ``watch``'s NOTIFY listener (``--notify-listen``) on ``listen``, an address;
    the datagrams come out of the returned queue."""
    if not listen.is_address:
        raise UsageError(f"--notify-listen needs an address, not {listen.host!r}")
    queue: NotifyQueue = asyncio.Queue(maxsize=NOTIFY_QUEUE)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: NotifyListener(queue), local_addr=(listen.host, listen.port)
        )
    except OSError as err:
        raise NetworkError(f"cannot listen for NOTIFY on {listen}: {os_reason(err)}") from err
    return transport, protocol, queue
