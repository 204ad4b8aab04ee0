"""Our outgoing NOTIFYs (RFC 1996 3.6-3.7), serve's and the demo's: one place for the
message, its retries, what is logged and counted, and what a target missed.

* One NOTIFY under way per zone and target: a change made while one is not yet
  acknowledged rides on it (its next send carries the newest SOA; acknowledged before
  that send, it is sent once more), as BIND queues no second NOTIFY for a target that
  has one queued.  Twenty quick changes make one or two NOTIFYs to a target, not
  twenty chains of retries.
* At most ``limit`` in flight to one target (``[server] notify_limit``, each holding a
  socket until answered or timed out); the others wait for a slot without a socket.
  A target that never answers holds back only its own NOTIFYs.
* Each send on a connected UDP socket, so that a target with nothing listening is
  known at once (ICMP port unreachable: "connection refused"), not after a timeout.
  Retries with exponential backoff from ``first_timeout``, ``attempts`` sends in all.
* What a target missed is sent again when it is back: a NOTIFY given up unanswered
  (the target down, a downstream restarted for maintenance) is remembered with the
  zone's SOA; the target is tried again with one of them every :data:`MISSED_PROBE`
  seconds, doubling up to :data:`MISSED_PROBE_MAX`, and its first acknowledgement of
  any NOTIFY sends every zone it missed again.  Without this a downstream that was down
  when its zones changed stays behind until its own SOA refresh (BIND and Knot give up
  as well; a stranger's Knot stayed an hour behind).  A missed NOTIFY is forgotten
  after its SOA's refresh interval, when the target checks on its own.  serve keeps
  the list in its store when it stops and takes it up again when it starts
  (:meth:`NotifySender.missed_zones`, :meth:`NotifySender.restore`).
* Logged once a target: its first NOTIFY given up, or answered with an error, is a
  warning; the next ones are info until it acknowledges one (a downstream that was
  down at a cold start of 2,000 zones made 2,000 warnings and 17,000 lines of retries).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig

from secdns.atomicfile import atomic_write
from secdns.config.values import DEFAULT_NOTIFY_LIMIT
from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import SecdnsError, os_reason
from secdns.soaquery import answers

log = logging.getLogger(__name__)

NOTIFY_LIMIT = DEFAULT_NOTIFY_LIMIT
NOTIFY_ATTEMPTS = 6
"""Sends of one NOTIFY before it is given up (timeouts 1, 2, 4, 8, 16, 30 s)."""
MISSED_PROBE = 30.0
"""Seconds after a target's NOTIFY was given up before it is tried again (doubling)."""
MISSED_PROBE_MAX = 600.0
NO_ANSWER = "no answer"
"""Why a send failed when it timed out (anything else, e.g. a refusal, is known at once)."""

Target = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class NotifyResult:
    """How one NOTIFY to one target ended: acknowledged, or why not (one line)."""

    target: str  # ADDR:PORT
    acknowledged: bool
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class _Outgoing:
    """A NOTIFY under way: the SOA its next send carries, and whether a newer change
    came after its last send."""

    soa: dns.rrset.RRset | None
    again: bool = False
    tsig: dns.tsig.Key | None = None
    why: str | None = None  # why its last send failed


@dataclasses.dataclass(slots=True)
class _Missed:
    """A target's NOTIFYs given up unanswered: zone -> (its SOA, forget after), and
    when it is tried next."""

    zones: dict[dns.name.Name, tuple[dns.rrset.RRset | None, float, dns.tsig.Key | None]]
    delay: float = MISSED_PROBE
    probe: asyncio.TimerHandle | None = None


class NotifySender:
    """Sends NOTIFYs (the module docstring); ``counted(target, result)`` is told each
    NOTIFY's end (result: ``acknowledged``; ``unanswered`` after every send timed out,
    ``unreachable`` when the last was refused (nothing listens) or failed to go; or the
    RCODE's name)."""

    def __init__(
        self,
        limit: int = NOTIFY_LIMIT,
        *,
        attempts: int = NOTIFY_ATTEMPTS,
        first_timeout: float = 1.0,
        stop: asyncio.Event | None = None,
        counted: Callable[[str, str], None] | None = None,
        missed_probe: float = MISSED_PROBE,
    ) -> None:
        self.limit = limit
        self.missed_probe = missed_probe
        self.attempts = attempts
        self.first_timeout = first_timeout
        self.stop = stop
        self.counted = counted
        self._under_way: dict[
            tuple[dns.name.Name, str, int], tuple[_Outgoing, asyncio.Task[NotifyResult]]
        ] = {}
        self._slots: dict[Target, asyncio.Semaphore] = {}
        self._said: set[Target] = set()  # warned about since they last acknowledged
        self._missed: dict[Target, _Missed] = {}
        self._ever_missed: set[str] = set()  # (targets: as many as the config names)
        self._probes: set[asyncio.Task[NotifyResult]] = set()
        # told when what a target missed changes (serve keeps it in its store soon after,
        # so that a crash loses at most that delay: :func:`write_missed`)
        self.changed: Callable[[], None] | None = None

    async def send(
        self,
        zone: dns.name.Name,
        soa: dns.rrset.RRset | None,
        address: str,
        port: int,
        tsig: dns.tsig.Key | None = None,
    ) -> NotifyResult:
        """NOTIFY ``address``:``port`` that ``zone`` changed (``soa``: its SOA, or None;
        ``tsig``: the key to sign it with, and to verify the answer with).  A NOTIFY of
        the zone already under way to that target takes the newer SOA, and this returns
        how that one ends."""
        key = (zone, address, port)
        found = self._under_way.get(key)
        if found is not None and not found[1].done():  # (done: its callback is still to run)
            found[0].soa = soa
            found[0].again = True
            return await asyncio.shield(found[1])
        outgoing = _Outgoing(soa, tsig=tsig)
        task = asyncio.get_running_loop().create_task(self._run(zone, outgoing, address, port))
        self._under_way[key] = (outgoing, task)
        task.add_done_callback(lambda done: self._ended(key, done))
        return await asyncio.shield(task)

    def close(self) -> list[asyncio.Task[NotifyResult]]:
        """Cancel every NOTIFY under way and every probe (serve stops); the tasks, to
        be awaited."""
        for missed in self._missed.values():
            if missed.probe is not None:
                missed.probe.cancel()
        tasks = [task for _outgoing, task in self._under_way.values()] + list(self._probes)
        for task in tasks:
            task.cancel()
        return tasks

    @property
    def under_way(self) -> int:
        return len(self._under_way)

    def missed_zones(self) -> dict[str, list[str]]:
        """Each target's zones whose NOTIFY it has not acknowledged, given up or still
        under way (``ADDR:PORT`` -> zone names): what serve keeps in its store when it
        stops (:meth:`restore`)."""
        out: dict[str, dict[str, None]] = {}  # (ordered sets: 10,000 zones a target)
        for (address, port), missed in self._missed.items():
            out.setdefault(f"{address}:{port}", {}).update(
                dict.fromkeys(z.to_text() for z in missed.zones)
            )
        for zone, address, port in self._under_way:
            out.setdefault(f"{address}:{port}", {})[zone.to_text()] = None
        return {target: list(names) for target, names in out.items() if names}

    def restore(
        self,
        target: Target,
        zones: Sequence[tuple[dns.name.Name, dns.rrset.RRset | None, dns.tsig.Key | None]],
    ) -> None:
        """What ``target`` missed before serve stopped: tried again as what it missed
        now (a probe after :data:`MISSED_PROBE`, all of it once it answers)."""
        for zone, soa, tsig in zones:
            self._missed_one(target, zone, soa, tsig)

    def last_failure(self, zone: dns.name.Name, address: str, port: int) -> str | None:
        """Why the last send of the zone's NOTIFY under way to that target failed."""
        found = self._under_way.get((zone, address, port))
        return found[0].why if found is not None else None

    def unreachable(self, zone: dns.name.Name, address: str, port: int) -> bool:
        """Whether the last send of the zone's NOTIFY under way to that target failed
        otherwise than unanswered (refused: nothing listens there; or it could not go),
        which a wait for its acknowledgement would not change."""
        return self.last_failure(zone, address, port) not in (None, NO_ANSWER)

    def missed_counts(self) -> dict[str, int]:
        """Zones each target missed and has not acknowledged since, for every target that
        has missed one since the start (0 once it caught up: the metric's series stays)."""
        counts = dict.fromkeys(self._ever_missed, 0)
        for (address, port), missed in self._missed.items():
            counts[f"{address}:{port}"] = len(missed.zones)
        return counts

    def retrying_counts(self) -> dict[str, int]:
        """Zones whose NOTIFY to each target is under way after a send that failed (not
        acknowledged in time, refused): ``ctl status`` names such a target at once, not
        only once it has missed them after every attempt (~2 min: a stranger's stopped
        downstream showed nowhere meanwhile)."""
        counts: dict[str, int] = {}
        for (_zone, address, port), (outgoing, task) in self._under_way.items():
            if outgoing.why is not None and not task.done():
                target = f"{address}:{port}"
                counts[target] = counts.get(target, 0) + 1
        return counts

    def _ended(self, key: tuple[dns.name.Name, str, int], task: asyncio.Task[NotifyResult]) -> None:
        found = self._under_way.get(key)
        if found is not None and found[1] is task:  # (not a newer one of the same key)
            del self._under_way[key]

    async def _run(
        self, zone: dns.name.Name, outgoing: _Outgoing, address: str, port: int
    ) -> NotifyResult:
        target = (address, port)
        where = f"{address}:{port}"
        slots = self._slots.get(target)
        if slots is None:
            slots = self._slots[target] = asyncio.Semaphore(self.limit)
        timeout = self.first_timeout
        attempt = 0
        why = NO_ANSWER
        while attempt < self.attempts:
            attempt += 1
            outgoing.again = False
            message = _notify_message(zone, outgoing.soa, outgoing.tsig)
            async with slots:
                try:
                    response = await _exchange(message, address, port, timeout)
                except TimeoutError:
                    why = NO_ANSWER
                    response = None
                except (OSError, dns.exception.DNSException) as err:
                    why = os_reason(err) if isinstance(err, OSError) else str(err)
                    response = None
            if response is not None:
                rcode = response.rcode()
                if rcode != dns.rcode.NOERROR:
                    error = f"answered {dns.rcode.to_text(rcode)}"
                    self._say(target, f"notify: zone={zone} {where} {error}")
                    self._count(where, dns.rcode.to_text(rcode))
                    return NotifyResult(where, False, error)
                self._acknowledged(target, zone)
                log.info("notify: zone=%s acknowledged by %s", zone, where)
                if not outgoing.again:
                    self._count(where, "acknowledged")
                    return NotifyResult(where, True)
                attempt = 0  # a newer change came after that send: NOTIFY it too
                timeout = self.first_timeout
                continue
            outgoing.why = why
            log.debug("notify: zone=%s to %s attempt %d failed: %s", zone, where, attempt, why)
            if attempt >= self.attempts:
                break
            delay = timeout * (0.5 + random.random())
            timeout = min(timeout * 2, 30.0)
            if self.stop is not None:
                try:
                    await asyncio.wait_for(self.stop.wait(), delay)
                    return NotifyResult(where, False, "serve stopped")
                except TimeoutError:
                    continue
            await asyncio.sleep(delay)
        error = f"never acknowledged after {attempt} attempts ({why})"
        self._count(where, "unanswered" if why == NO_ANSWER else "unreachable")
        self._missed_one(target, zone, outgoing.soa, outgoing.tsig)
        self._say(target, f"notify: zone={zone} {where} {error}", missed=True)
        return NotifyResult(where, False, error)

    # --- what a target missed ---
    def _missed_one(
        self,
        target: Target,
        zone: dns.name.Name,
        soa: dns.rrset.RRset | None,
        tsig: dns.tsig.Key | None,
    ) -> None:
        missed = self._missed.get(target)
        if missed is None:
            missed = self._missed[target] = _Missed({}, self.missed_probe)
            self._ever_missed.add(f"{target[0]}:{target[1]}")
        refresh = float(soa[0].refresh) if soa is not None else MISSED_PROBE_MAX
        missed.zones[zone] = (soa, time.monotonic() + refresh, tsig)
        if missed.probe is None and not self._stopping():
            loop = asyncio.get_running_loop()
            missed.probe = loop.call_later(missed.delay, self._probe, target)
        self._changed()

    def _probe(self, target: Target) -> None:
        """Try a target that missed NOTIFYs with one of them (its acknowledgement sends
        the rest: :meth:`_acknowledged`)."""
        missed = self._missed.get(target)
        if missed is None:
            return
        missed.probe = None
        now = time.monotonic()
        for zone in [z for z, (_soa, until, _key) in missed.zones.items() if until <= now]:
            del missed.zones[zone]  # (the target has checked it on its own by now)
        if not missed.zones or self._stopping():
            del self._missed[target]
            self._changed()
            return
        zone, (soa, _until, tsig) = next(iter(missed.zones.items()))
        missed.delay = min(missed.delay * 2, MISSED_PROBE_MAX)
        del missed.zones[zone]  # (back in, should this try go unanswered too)
        self._resend(zone, soa, target, tsig)

    def _acknowledged(self, target: Target, zone: dns.name.Name) -> None:
        """The target answers: every other zone it missed is NOTIFYed again now."""
        self._said.discard(target)
        missed = self._missed.pop(target, None)
        if missed is None:
            return
        if missed.probe is not None:
            missed.probe.cancel()
        missed.zones.pop(zone, None)
        self._changed()
        now = time.monotonic()
        again = [(z, soa, key) for z, (soa, until, key) in missed.zones.items() if until > now]
        if not again:
            return
        log.info(
            "notify: %s:%d answers again: NOTIFYing the %d zones it missed", *target, len(again)
        )
        for missed_zone, soa, tsig in again:
            self._resend(missed_zone, soa, target, tsig)

    def _resend(
        self,
        zone: dns.name.Name,
        soa: dns.rrset.RRset | None,
        target: Target,
        tsig: dns.tsig.Key | None,
    ) -> None:
        """A missed NOTIFY sent again, in a task of its own (kept: :meth:`close`)."""
        task = asyncio.get_running_loop().create_task(self.send(zone, soa, *target, tsig))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _changed(self) -> None:
        if self.changed is not None:
            self.changed()

    def _count(self, where: str, result: str) -> None:
        if self.counted is not None:
            self.counted(where, result)

    def _say(self, target: Target, text: str, *, missed: bool = False) -> None:
        """A NOTIFY that failed: a warning the first time for its target, then info
        until the target acknowledges one."""
        if target in self._said:
            log.info("%s", text)
            return
        self._said.add(target)
        again = "; what it missed is sent again when it answers" if missed else ""
        log.warning(
            "%s (its other zones' NOTIFYs that fail are logged at info until it "
            "acknowledges one%s)",
            text,
            again,
        )


MISSED_FILE = "secdns.notify-missed.json"
"""In serve's store: the NOTIFYs each target had not acknowledged when serve stopped,
or :data:`MISSED_KEEP_DELAY` after what a target missed last changed (a crash)."""
MISSED_KEEP_DELAY = 5.0
"""Seconds from a change of what the targets missed to its write in the store."""


def keep_missed(sender: NotifySender, directory: Path) -> None:
    """Write ``sender``'s missed NOTIFYs (:meth:`NotifySender.missed_zones`) to
    :data:`MISSED_FILE` in ``directory``, atomically; none: the file goes."""
    write_missed(directory, sender.missed_zones())


def write_missed(directory: Path, missed: dict[str, list[str]]) -> None:
    """:func:`keep_missed` of a :meth:`NotifySender.missed_zones` taken before (on the
    event loop: this may run in a thread)."""
    path = directory / MISSED_FILE
    try:
        if missed:
            atomic_write(path, json.dumps(missed, indent=1) + "\n", digest=False)
        else:
            path.unlink(missing_ok=True)
    except OSError as err:
        log.warning("notify: cannot keep the missed NOTIFYs in %s: %s", path, os_reason(err))


def take_missed(directory: Path) -> list[tuple[Endpoint, list[dns.name.Name]]]:
    """What :func:`keep_missed` kept in ``directory`` (each target and its zones);
    nothing when there is none or it cannot be read (said).  The file stays until
    serve writes it again (what it resumed of it, or nothing: then it goes), so that
    a crash right after the start loses nothing."""
    path = directory / MISSED_FILE
    try:
        missed = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        log.warning("notify: cannot read the missed NOTIFYs of %s: %s", path, err)
        return []
    out = []
    for target, names in missed.items() if isinstance(missed, dict) else ():
        try:
            endpoint = parse_endpoint(str(target))
            origins = [
                dns.name.from_text(str(n)) for n in (names if isinstance(names, list) else [])
            ]
        except (SecdnsError, dns.exception.DNSException):
            continue
        out.append((endpoint, origins))
    return out


def _notify_message(
    zone: dns.name.Name, soa: dns.rrset.RRset | None, tsig: dns.tsig.Key | None = None
) -> dns.message.Message:
    message = dns.message.make_query(zone, dns.rdatatype.SOA)
    message.flags = dns.flags.AA
    message.set_opcode(dns.opcode.NOTIFY)
    if soa is not None:
        message.answer.append(soa)
    if tsig is not None:
        message.use_tsig(tsig)
    return message


_TSIG_FAILURES = (
    dns.message.UnknownTSIGKey,
    dns.tsig.BadSignature,
    dns.tsig.BadTime,
    dns.tsig.BadKey,
    dns.tsig.PeerError,
)


class _Exchange(asyncio.DatagramProtocol):
    def __init__(self, query: dns.message.Message, answered: asyncio.Future[dns.message.Message]):
        self.query = query
        self.answered = answered

    def datagram_received(self, data: bytes, addr: object) -> None:
        query = self.query
        try:
            if query.had_tsig or query.keyring:
                response = dns.message.from_wire(data, keyring=query.keyring, request_mac=query.mac)
            else:
                response = dns.message.from_wire(data)
        except _TSIG_FAILURES:  # an unsigned error (BADKEY, BADSIG) or a bad signature
            try:
                response = dns.message.from_wire(data, keyring=False)
            except dns.exception.DNSException:
                return
        except dns.exception.DNSException:
            return  # (not an answer: wait on for one)
        if answers(self.query, response) and not self.answered.done():
            self.answered.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if not self.answered.done():
            self.answered.set_exception(exc)


async def _exchange(
    query: dns.message.Message, address: str, port: int, timeout: float
) -> dns.message.Message:
    """``query``'s answer from ``address``:``port`` over a connected UDP socket (the
    kernel drops datagrams from elsewhere, and an ICMP port unreachable is
    ConnectionRefusedError at once); TimeoutError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[dns.message.Message] = loop.create_future()
    transport, _protocol = await loop.create_datagram_endpoint(
        lambda: _Exchange(query, answered), remote_addr=(address, port)
    )
    try:
        transport.sendto(query.to_wire())
        async with asyncio.timeout(timeout):
            return await answered
    finally:
        transport.close()


async def send_notify(
    zone: dns.name.Name,
    soa: dns.rrset.RRset | None,
    address: str,
    port: int,
    *,
    attempts: int = NOTIFY_ATTEMPTS,
    first_timeout: float = 1.0,
    stop: asyncio.Event | None = None,
) -> NotifyResult:
    """NOTIFY one target once (a sender of its own)."""
    sender = NotifySender(attempts=attempts, first_timeout=first_timeout, stop=stop)
    try:
        return await sender.send(zone, soa, address, port)
    finally:
        for task in sender.close():  # (its probe of what the target missed: not here)
            task.cancel()
