"""Primaries that time out, held back for a while: BIND's unreachable cache.

A primary that takes no connection, or takes it and never answers, costs each try
the whole ``timeout``, and every try holds one of the shared transfer slots
(``[server] concurrency``) meanwhile.  Forty zones of such a primary among 400 kept
the healthy zones' cold start waiting ~50 s, and their NOTIFYs 30-40 s.  BIND keeps
an "unreachable cache" of primary addresses for this (``dns_zonemgr_unreachable``):
two timeouts in a row put an address in it, and a zone's try of a cached address
is skipped ("master ... is unreachable (cached)") until the entry expires.

:class:`Unreachable` does the same, one per event loop that asks for it (serve,
``pull -c``, ``watch``: :meth:`Unreachable.install`), and
:func:`secdns.pull._first_primary` consults it before each try of an address:

- :data:`TIMEOUTS` timeouts in a row from one address (``address``, ``port``) with
  nothing heard from it between hold it for :data:`FIRST_HOLD` seconds; each hold
  that ends in another timeout doubles it, up to ``hold`` (``[server]
  unreachable_hold``, :data:`DEFAULT_HOLD`; 0 turns the cache off).
- While held, tries of it are skipped at once with a :class:`TimeoutError_` that
  says so: a zone with another primary goes on to it without waiting, a zone with
  none is retried on its SOA retry, as after a timeout, but no slot is held.
- When a hold ends, one try goes (the others are still skipped until it ends):
  any answer from the address, even a refusal, clears it; a timeout holds it again.
- After one timeout, no new try of the address starts while others are under way:
  they will tell (the slot the timeout freed went to it again at once, and a
  ``pull -c`` beside a silent primary paid two timeouts); the zones skipped so are
  checked again as soon as it answers.
- Serve's and watch's zones wait, before a check and without a slot, while another
  zone makes the first try of their (first usable) primary address and it has
  neither answered nor timed out yet (:meth:`Unreachable.admit`): one try learns
  whether it answers.  Without this, the zones of a silent primary took every slot
  at each start until the first timeout, and every healthy zone waited that one
  ``timeout`` (5.8 s for a stranger's 360 zones beside 40 silent ones).  A zone whose
  later primary has answered goes on to it meanwhile; one whose later primaries are
  not known yet waits too (its preferred primary is not passed over for a try that
  may yet answer, nor its second one flooded at each start).
- A NOTIFY from the address for a zone it is a primary of (:meth:`forget`: it may
  be up; the port its zones are transferred from, not the NOTIFY's) and ``ctl
  refresh`` of a zone try it at once, as when a hold ends; a timeout holds it again,
  the hold doubled (a stranger's ``ctl refresh`` started it over at 30 s).
- The first hold is a warning in the log; the later ones, until it answers, are info.
- Its zones are not left to their own retry timers, which doubled while their tries
  were skipped (a stranger's 40 zones of a primary back after a 300 s hold loaded over
  the next 217 s): the owner's :attr:`Unreachable.ready` is called when a hold ends
  (one of its failing zones is checked now: that is the one try) and when it answers
  again or is cleared (all of them are checked now, under the shared bound).

A primary that refuses connections (its server stopped: a :class:`NetworkError`) is
not held, since a refusal costs nothing; its zones fail over at once or fail.  But
they would wait out their SOA retry, doubled at each failure, after it came back (a
stranger's zones stayed ``retrying`` for minutes beside a primary that answered
again, and a change made meanwhile waited for the primary's rate-limited NOTIFY of
that very zone).  So a refusing primary is *down*: one of its failing zones is
checked again after :data:`DOWN_PROBE` seconds, doubling up to ``hold``, and the
first answer of any kind from it (another zone's check, the probe) or a NOTIFY from
it checks every one of its failing zones at once.

Only a timeout with nothing received counts (:attr:`TimeoutError_.silent`): a
transfer that outlived its ``lifetime``, or stalled after some records, came from a
primary that answers.  ``pull`` of one zone keeps no cache: it tries each primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from secdns.endpoints import Endpoint, format_addr

log = logging.getLogger(__name__)

TIMEOUTS = 2
"""Timeouts in a row that hold an address (BIND: two ``unreachableadd`` calls)."""
FIRST_HOLD = 30.0
"""Seconds of an address's first hold; each hold that ends in a timeout doubles it."""
DOWN_PROBE = 10.0
"""Seconds before a refusing primary's first probe (then doubling, up to ``hold``): a
probe is one SOA query, and a primary restarted without NOTIFYs was found 49.5 s
after its return with a first probe at 30 s."""
DEFAULT_HOLD = 300.0
"""The longest hold, ``[server] unreachable_hold`` (BIND holds 600 s, not doubling)."""


@dataclasses.dataclass(slots=True)
class _Entry:
    timeouts: int = 0  # in a row, nothing heard between
    until: float = 0.0  # tries skipped until then (the clock's time); 0: not held now
    hold: float = 0.0  # the last hold's length; 0: never held (since it last answered)
    skipped: int = 0  # tries skipped since it last answered (its zones woken when it does)


class Unreachable:
    """The primary addresses held back after timeouts (module docstring)."""

    def __init__(
        self, hold: float = DEFAULT_HOLD, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hold = hold
        self.clock = clock
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._flying: dict[tuple[str, int], int] = {}  # tries under way, per address
        self._skipped: dict[tuple[str, int], int] = {}  # tries skipped in all (metrics)
        self._failed: dict[tuple[str, int], int] = {}  # tries failed in all (metrics)
        self._streak: dict[tuple[str, int], int] = {}  # tries failed in a row (ctl status)
        # addresses that answered since the start or their last timeout (admit: proven)
        self._heard: set[tuple[str, int]] = set()
        # the first try under way of an address not proven: the checks waiting on it
        self._probes: dict[tuple[str, int], list[asyncio.Future[None]]] = {}
        # refusing primaries (not held: module docstring) -> the delay of their next probe
        self._down: dict[tuple[str, int], float] = {}
        # (address, port, every): check now one failing zone of that primary (its hold
        # ended: the one try) or every one (it answers again); whether a zone was; set
        # by serve and watch
        self.ready: Callable[[str, int, bool], bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # (install)

    # -- one per event loop (as tcpstream.IdleConnections)

    @classmethod
    def install(
        cls, hold: float = DEFAULT_HOLD, ready: Callable[[str, int, bool], bool] | None = None
    ) -> Unreachable | None:
        """Keep the cache for the running event loop until :meth:`close`; None when
        ``hold`` is 0 (off).  ``ready``: :attr:`ready` (serve, watch)."""
        if hold <= 0:
            return None
        cache = cls(hold)
        cache.ready = ready
        cache._loop = asyncio.get_running_loop()
        _CACHES[cache._loop] = cache
        return cache

    @classmethod
    def current(cls) -> Unreachable | None:
        """The running loop's cache, or None."""
        try:
            return _CACHES.get(asyncio.get_running_loop())
        except RuntimeError:  # (no running loop)
            return None

    def close(self) -> None:
        if self._loop is not None and _CACHES.get(self._loop) is self:
            del _CACHES[self._loop]

    # -- the decisions

    def skip(self, address: str, port: int, more: bool = False) -> str | None:
        """Why a try of ``address``:``port`` is skipped now, or None: try it (counted
        under way until :meth:`tried`).  ``more``: the zone has another primary
        address after this one (a zone goes on to it rather than join another zone's
        first try of this one)."""
        key = (address, port)
        entry = self._entries.get(key)
        if entry is None:
            if more and key in self._probes and _PROBE.get() != key:
                self._skipped[key] = self._skipped.get(key, 0) + 1
                return (
                    "not tried: another zone's first try of it is under way, "
                    "not answered yet (a next primary that has answered is tried)"
                )
            return self._go(key)
        flying = self._flying.get(key, 0)
        if entry.timeouts < TIMEOUTS:
            # one timed out: the tries under way will tell, none is added meanwhile (a
            # slot freed by that timeout would otherwise go to it again at once)
            if not flying:
                return self._go(key)
            self._count_skip(key, entry)
            return (
                "not tried: a try of it timed out and another is under way "
                "(unreachable primaries are held)"
            )
        left = entry.until - self.clock()
        if left <= 0 and not flying:
            return self._go(key)  # (the one try when a hold ends)
        self._count_skip(key, entry)
        if left > 0:  # (a time of day: the line is read later, in ctl status)
            until = time.strftime("%H:%M:%SZ", time.gmtime(time.time() + left))
            return (
                f"not tried: held as unreachable until {until}, its tries having timed "
                "out (a NOTIFY from it or ctl refresh tries at once)"
            )
        # (what a ctl refresh is told too when a try is under way: not "tries at once")
        return (
            "not tried: held as unreachable, its tries having timed out, and a try of it "
            "is under way (its answer checks all its zones at once)"
        )

    def _count_skip(self, key: tuple[str, int], entry: _Entry) -> None:
        entry.skipped += 1
        self._skipped[key] = self._skipped.get(key, 0) + 1

    def admit(
        self, keys: Sequence[tuple[str, int] | None]
    ) -> Callable[[], None] | asyncio.Future[None] | None:
        """Before a zone's check, holding a transfer slot (serve, watch): ``keys`` are
        its primaries' addresses in order (IP addresses as written, with their ports;
        None for a host name, whose addresses are not known before the try).

        The primaries are taken in the order the check tries them, passing over those
        :meth:`skip` will pass over (held, or after a timeout while a try is under
        way).  None: go.  A function: go, this check making the first try of an
        address neither heard from nor timed out yet (the task's own: skip() lets it
        through); call it when the check ends.  A future: another zone is making that
        first try: give the slot back, wait for it to end, then ask again (the zone's
        preferred primary is not passed over for a first try that may yet answer,
        unless a later primary has answered: skip() then passes over it)."""
        now = self.clock()
        for index, key in enumerate(keys):
            if key is None or key in self._heard:
                return None  # (tried first, and it answers, or cannot be known)
            entry = self._entries.get(key)
            if entry is not None:  # it timed out: skip() lets one try go at a time
                if entry.until > now or self._flying.get(key):
                    continue  # (passed over: the next primary, if any)
                return None
            probe = self._probes.get(key)
            if probe is None:
                self._probes[key] = []
                token = _PROBE.set(key)
                return functools.partial(self._probed, key, token)
            if any(later in self._heard for later in keys[index + 1 :]):
                return None  # (skip() passes over it, to a primary that answers)
            future = asyncio.get_running_loop().create_future()
            probe.append(future)
            return future
        return None  # every primary held: skip() fails the check at once

    def held_for(self, address: str, port: int) -> float:
        """Seconds until the address's hold ends (0: not held now)."""
        entry = self._entries.get((address, port))
        return max(entry.until - self.clock(), 0.0) if entry is not None else 0.0

    def answered(self, key: tuple[str, int]) -> bool:
        """Whether the address has answered a try since the start or its last timeout
        (a try under way of one that has not is not transferring anything)."""
        return key in self._heard

    def _probed(self, key: tuple[str, int], token: contextvars.Token[object]) -> None:
        """The check that made the first try of ``key`` ended: its waiters ask again."""
        with contextlib.suppress(ValueError):  # (called in another context: tests)
            _PROBE.reset(token)
        for future in self._probes.pop(key, ()):
            if not future.done():  # (a waiter cancelled: its zone removed, serve stopping)
                future.set_result(None)

    def _go(self, key: tuple[str, int]) -> str | None:
        """Try it (None), counted under way until :meth:`tried`."""
        self._flying[key] = self._flying.get(key, 0) + 1
        return None

    def tried(
        self,
        address: str,
        port: int,
        heard: bool | None,
        *,
        failed: bool = False,
        down: bool = False,
        unwell: bool | None = None,
    ) -> None:
        """A try of the address ended: ``heard`` False after a timeout with nothing
        heard, True after anything else (an answer, even a refusal), None when the
        try was cancelled (nothing learnt).  ``failed``: it brought no result (a
        refusal, a timeout, a bad answer: counted for the metrics, failovers too).
        ``down``: it failed for want of a server there (connection refused, unreachable):
        the address is probed until it answers (module docstring).  ``unwell``: the
        failure was the primary's (a network error), which ``ctl status`` lists it as
        ``failing`` for, not one zone's (its key or ACL: the zone's own error says it);
        None: as ``failed``."""
        unwell = failed if unwell is None else unwell
        key = (address, port)
        if heard:
            if down:
                self._went_down(key)
            elif key in self._down:
                del self._down[key]
                log.info(
                    "pull: primary %s answers again: its failing zones are checked now",
                    format_addr(address, port),
                )
                self._tell(address, port, True)
        if failed and unwell and heard is not None:  # (the primary's own: a zone's wrong
            self._failed[key] = self._failed.get(key, 0) + 1  # key counts for the zone's
            self._streak[key] = self._streak.get(key, 0) + 1  # transfers, not here)
        elif heard:
            self._streak.pop(key, None)
        flying = self._flying.get(key, 0) - 1
        if flying > 0:
            self._flying[key] = flying
        else:
            self._flying.pop(key, None)
        if heard is None:
            return
        if heard:
            self._heard.add(key)
            entry = self._entries.pop(key, None)
            if entry is not None and entry.hold:
                log.info(
                    "pull: primary %s answers again: no longer held as unreachable",
                    format_addr(address, port),
                )
            if entry is not None and (entry.hold or entry.skipped):
                self._tell(address, port, True)  # (the zones skipped meanwhile: now)
            return
        self._heard.discard(key)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.timeouts += 1
        now = self.clock()
        if entry.timeouts < TIMEOUTS or now < entry.until:
            return  # (tries under way as the hold began end in it)
        first = not entry.hold
        entry.hold = min(entry.hold * 2 if entry.hold else FIRST_HOLD, self.hold)
        entry.until = now + entry.hold
        if self.ready is not None:
            asyncio.get_running_loop().call_later(entry.hold, self._hold_over, key, entry)
        if first:  # (the warning once: each later hold, until it answers, at info)
            log.warning(
                "pull: primary %s held as unreachable for %.0fs: its last %d tries timed "
                "out; its zones' tries are skipped meanwhile, then tried once, the hold "
                "doubling while it times out",
                format_addr(address, port),
                entry.hold,
                entry.timeouts,
            )
        else:
            log.info(
                "pull: primary %s held as unreachable for %.0fs more: its try timed out",
                format_addr(address, port),
                entry.hold,
            )

    def forget(self, address: str, ports: Iterable[int], *, up: bool = True) -> None:
        """``address`` may be up on these ``ports`` (it sent a NOTIFY for a zone whose
        primaries listen on them; ``ctl refresh``): the zone it is for tries it at once,
        the other zones' tries are skipped until that one ends (its answer ends the hold and checks
        them; a timeout holds it again at once, the hold doubled, not started over).
        ``up``: it sent something (a NOTIFY): other zones' first tries need not wait
        for one of its (:meth:`admit`); False for ``ctl refresh``, which only asks."""
        keys = [(address, port) for port in ports]
        if up:
            self._heard.update(keys)
        for key in keys:
            if up and self._down.pop(key, None) is not None:
                log.info(
                    "pull: primary %s sent a NOTIFY: its failing zones are checked now",
                    format_addr(*key),
                )
                self._tell(*key, True)
            entry = self._entries.get(key)
            if entry is not None and entry.until:
                entry.until = 0.0
                entry.timeouts = TIMEOUTS - 1
                log.info("pull: primary %s: trying it again now", format_addr(*key))

    def keep_only(self, used: set[tuple[str, int]]) -> None:
        """Forget every address no zone transfers from any more (a reload moved its
        zones away: a stranger's removed primaries stayed ``held`` and ``failing`` in
        ``ctl status`` and ``secdns_primary_unreachable`` 1 for good, as a removed
        zone's series go); tries under way end as they would."""
        for table in (self._entries, self._skipped, self._failed, self._streak, self._down):
            for key in [key for key in table if key not in used]:
                del table[key]
        self._heard &= used

    def _went_down(self, key: tuple[str, int]) -> None:
        """A try of ``key`` found no server there: probe it (module docstring)."""
        if key in self._down or self.ready is None:
            return
        log.warning(
            "pull: primary %s refuses: nothing serves there; its zones fail over or fail "
            "(each said at info), one of them is checked again in %.0fs, all of them as "
            "soon as it answers",
            format_addr(*key),
            DOWN_PROBE,
        )
        self._down[key] = DOWN_PROBE
        asyncio.get_running_loop().call_later(DOWN_PROBE, self._probe_down, key)

    def _probe_down(self, key: tuple[str, int]) -> None:
        """One failing zone of a refusing primary is checked now; the next probe after
        twice the delay, until it answers or none of its zones is failing."""
        delay = self._down.get(key)
        if delay is None:
            return  # (it answered meanwhile)
        if not self._flying.get(key) and not self._tell(*key, False):
            del self._down[key]  # (no zone is failing on it: nothing to find out)
            return
        self._down[key] = delay = min(delay * 2, self.hold)
        asyncio.get_running_loop().call_later(delay, self._probe_down, key)

    def _hold_over(self, key: tuple[str, int], entry: _Entry) -> None:
        if (
            self._entries.get(key) is entry
            and entry.until
            and not self._flying.get(key)
            and self.clock() >= entry.until - 0.05
        ):
            self._tell(*key, False)

    def _tell(self, address: str, port: int, every: bool) -> bool:
        """:attr:`ready`: whether a failing zone of the primary was woken."""
        if self.ready is not None:
            try:
                return self.ready(address, port, every)
            except Exception:  # (a bug of the owner's must not fail the pull that told it)
                log.exception("pull: primary %s: waking its zones failed", address)
        return False

    def holds(self) -> list[dict[str, object]]:
        """Each address held since it last answered, or whose last try failed, for
        ``ctl status``: ``primary``, ``state`` (``held``, or ``failing``: a primary that
        refuses is never held, its zones failing over at once), ``until`` (epoch seconds
        its hold ends; None: not held, or a try of it due or under way), ``skipped``
        (its zones' tries skipped since it last answered) and ``failures`` (its tries
        failed in a row)."""
        now, wall = self.clock(), time.time()
        entries, streaks = dict(self._entries), dict(self._streak)
        shown: list[dict[str, object]] = []
        for key in dict.fromkeys([*(k for k, e in entries.items() if e.hold), *streaks]):
            entry = entries.get(key)
            held = entry is not None and bool(entry.hold)
            until = entry.until if entry is not None else 0.0
            shown.append(
                {
                    "primary": format_addr(*key),
                    "state": "held" if held else "failing",
                    "until": round(wall + until - now, 3) if held and until > now else None,
                    "skipped": entry.skipped if entry is not None else 0,
                    "failures": streaks.get(key, 0),
                }
            )
        return shown

    def counts(self) -> Iterator[tuple[str, bool, int, int]]:
        """(server, held, tries skipped in all, tries failed in all) of each address
        held, skipped or failed since the start: held from its first hold until it
        answers again; the counts stay (a Prometheus counter must not vanish).  A
        primary that refuses is never held (its tries fail at once), but counted."""
        entries = dict(self._entries)
        held = (key for key, entry in entries.items() if entry.hold)
        keys = dict.fromkeys([*self._failed, *self._skipped, *held])
        for key in keys:
            entry = entries.get(key)
            yield (
                format_addr(*key),
                entry is not None and bool(entry.hold),
                self._skipped.get(key, 0),
                self._failed.get(key, 0),
            )


_PROBE: contextvars.ContextVar[object] = contextvars.ContextVar("secdns_probe", default=None)
"""The address whose first try the running task's check makes (:meth:`Unreachable.admit`)."""

_CACHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Unreachable] = (
    weakref.WeakKeyDictionary()
)
"""The cache of each event loop that keeps one (serve in a test's thread, beside
another loop, keeps its own)."""


def notify_ports(source: str, primaries: Iterable[tuple[str, int]]) -> set[int]:
    """The ports of a zone's primaries (address, port) that a NOTIFY from ``source``
    shows to be up (:meth:`Unreachable.forget`): the one primary at that address; none
    when several share it on other ports (a NOTIFY's source port names none of them:
    a stranger's two primaries on one host had the held one tried, for a timeout, on
    the other's NOTIFY)."""
    ports = {port for address, port in primaries if address == source}
    return ports if len(ports) == 1 else set()


def admitter(
    primaries: Callable[[], Iterable[Endpoint]],
) -> Callable[[], Callable[[], None] | asyncio.Future[None] | None] | None:
    """:attr:`secdns.refresh.Refresher.admit` for a zone of serve or watch whose
    primaries, as written now, ``primaries()`` gives: the running loop's
    :meth:`Unreachable.admit` of those written as IP addresses (a host name's
    addresses are not known before the try); None when the loop keeps no cache."""
    cache = Unreachable.current()
    if cache is None:
        return None

    def admit() -> Callable[[], None] | asyncio.Future[None] | None:
        return cache.admit([(p.host, p.port) if p.is_address else None for p in primaries()])

    return admit


class _Checked(Protocol):
    failures: int

    def recheck(self) -> None: ...


def wake_failing(
    zones: Iterable[tuple[Iterable[tuple[str, int]], _Checked]],
    address: str,
    port: int,
    every: bool,
) -> bool:
    """:attr:`Unreachable.ready` for serve and watch: of ``zones`` ((address, port) of
    each primary, refresher), those whose last check failed and that list
    ``address``:``port`` are checked now: one, or ``every`` one; whether one was.  Serve gives its
    primaries' addresses as resolved at start (a host name's too); watch gives them as
    written (a primary named by host name is not matched: its zones wait for their own
    timers)."""
    key = (address, port)
    woken = False
    for primaries, refresher in zones:
        if refresher.failures and key in primaries:
            refresher.recheck()
            woken = True
            if not every:
                break
    return woken
