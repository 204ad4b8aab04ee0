"""Who answers which serial, since when, and how long after the first to show it.

The bookkeeping of the propagation monitor (:mod:`secdns.monitor`), pure: it is
given each answer with the times its query was sent and its answer received, and
returns :class:`MonitorEvent` values; it never sleeps or sends.  A lag is an
interval, not an instant (:class:`Lag`): what a poll can tell is that an address
switched between two of its answers.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from secdns.errors import ExitCode, SecdnsError
from secdns.store import iso_time
from secdns.xfr import serial_compare

if TYPE_CHECKING:
    from secdns.monitor import Target


class MonitorEventKind(enum.Enum):
    SERIAL = "serial"  # an address answers a serial it did not answer before
    FAILED = "failed"  # an address stopped answering, or answers an error
    RECOVERED = "recovered"  # it answers again, with the serial it had
    CONSISTENT = "consistent"  # every address answers the same serial
    NOTIFY = "notify"  # a watched server NOTIFYed the zone: every address is asked now


@dataclasses.dataclass(frozen=True, slots=True)
class Lag:
    """How long after the change an address showed a serial: between ``low`` and ``high`` seconds.

    Moments are windows, not instants: an address switched after the query that
    last showed its old serial was sent, and before the answer showing the new one
    was received.  The lag is measured from the reference's window (the primary's,
    else the first address's to show the serial) to this address's: the truth lies
    in ``[low, high]`` (``lag_min``, ``lag_max`` in the output), never below 0;
    ``value`` (``lag``) is the middle of that window and ``precision``
    (``lag_precision``) its half-width.  When the reference already had the serial
    at its first answer (the change came before the watch), only ``low`` is
    known: ``high``, ``value`` and ``precision`` are None.
    """

    low: float
    high: float | None

    @property
    def value(self) -> float | None:
        return None if self.high is None else (self.low + self.high) / 2

    @property
    def precision(self) -> float | None:
        return None if self.high is None else (self.high - self.low) / 2

    @property
    def best(self) -> float:
        """The middle, or the lower bound when that is all there is (for ordering)."""
        return self.low if self.high is None else (self.low + self.high) / 2

    @classmethod
    def between(
        cls, window: tuple[float, float], first: tuple[float, float], *, bounded: bool = True
    ) -> Lag:
        """From the reference's window ``first`` to ``window``; not ``bounded``: the
        reference switched at some time before ``first`` (unknown)."""
        low = max(0.0, window[0] - first[1])
        return cls(low, max(low, window[1] - first[0]) if bounded else None)

    def fields(self) -> dict[str, float | None]:
        """``lag``, ``lag_min``, ``lag_max``, ``lag_precision`` in seconds, rounded to ms."""
        return {
            "lag": _ms(self.value),
            "lag_min": _ms(self.low),
            "lag_max": _ms(self.high),
            "lag_precision": _ms(self.precision),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


LAG_KEYS = ("lag", "lag_min", "lag_max", "lag_precision")


def lag_fields(lag: Lag | None) -> dict[str, float | None]:
    """The lag's output fields, every one None when there is no lag."""
    if lag is None:
        return {key: None for key in LAG_KEYS}
    return lag.fields()


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorEvent:
    """One change seen by the monitor, for the renderers."""

    kind: MonitorEventKind
    zone: str
    at: float  # wall-clock time
    elapsed: float  # seconds since the monitor started
    server: str | None = None
    address: str | None = None
    serial: int | None = None
    previous: int | None = None
    lag: Lag | None = None  # after the first address showed this serial
    newest: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "event": self.kind.value,
            "time": iso_time(self.at),
            "elapsed": round(self.elapsed, 3),
            "zone": self.zone,
            "server": self.server,
            "address": self.address,
            "serial": self.serial,
            "previous": self.previous,
            **lag_fields(self.lag),
            "newest": self.newest,
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AddressStatus:
    """Where one address stands, for the table and the summary."""

    server: str
    address: str
    serial: int | None
    lag: Lag | None  # for its current serial; None if it had it when we started
    changed_at: float | None  # wall-clock time it started answering that serial
    error: str | None  # its latest query failed
    current: bool  # answers the newest serial
    primary: bool = False  # the primary's: lags are measured from it

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "address": self.address,
            "primary": self.primary,
            "serial": self.serial,
            **lag_fields(self.lag),
            "changed": iso_time(self.changed_at) if self.changed_at is not None else None,
            "error": self.error,
            "current": self.current,
        }


@dataclasses.dataclass(slots=True)
class _Seen:
    target: Target
    serial: int | None = None
    previous: int | None = None
    lag: Lag | None = None
    changed: float | None = None  # monotonic
    window: tuple[float, float] | None = None  # when it switched to ``serial``; None: had it
    sent: float | None = None  # when the query behind the latest answer was sent
    error: str | None = None
    error_code: int = 0


class _Waiting(NamedTuple):
    """An address that showed a serial before the primary did: its event, held back."""

    seen: _Seen
    at: float  # monotonic: when it was seen
    previous: int | None
    window: tuple[float, float]


class PropagationTracker:
    """Who answers which serial, since when, and how long after the change.

    Pure: :meth:`observe` is given each answer (or failure) with the monotonic
    times its query was sent and its answer received, and returns the events it
    caused.  An address that switched serials did so inside the window from the
    sending of the query that last showed the old serial to the receipt of the one
    showing the new; a serial's *lag* at an address compares that window with the
    reference's (see :class:`Lag`).

    The reference for a serial is the primary's window (``primaries``: the
    indices of its addresses), where changes start: an address that shows a new
    serial before the primary is seen with it waits (no event yet) until the
    primary shows it, which the monitor asks at once.  If the primary answers an
    older serial to a query sent after another address showed the new one, or
    fails, it was not where this change started: the reference is then the first
    address to show the serial, as it is when no primary is known.  The reference
    has lag 0; an address that already had a serial at its first answer has no lag.
    """

    def __init__(
        self,
        zone: str,
        targets: Sequence[Target],
        *,
        started: float,
        wall_started: float | None = None,
        primaries: Iterable[int] = (),
    ) -> None:
        self.zone = zone
        self.targets = tuple(targets)
        self.started = started
        self.wall_started = time.time() if wall_started is None else wall_started
        self._seen = [_Seen(target) for target in self.targets]
        self._watched = [seen for seen in self._seen if seen.target.address is not None]
        self._primaries = frozenset(i for i in primaries if self.targets[i].address is not None)
        self._first: dict[int, tuple[float, float]] = {}  # serial -> first address's window
        self._reference: dict[int, tuple[float, float]] = {}  # serial -> the lags' origin
        self._had: set[tuple[float, float]] = set()  # windows of first answers: had it before
        self._pending: dict[int, list[_Waiting]] = {}  # serial -> who waits for the primary
        self._announced: int | None = None
        self.newest: int | None = None
        self.answered = False

    def _wall(self, now: float) -> float:
        return self.wall_started + (now - self.started)

    def _event(
        self,
        kind: MonitorEventKind,
        now: float,
        seen: _Seen | None = None,
        *,
        serial: int | None = None,
        previous: int | None = None,
        lag: Lag | None = None,
        error: str | None = None,
    ) -> MonitorEvent:
        return MonitorEvent(
            kind,
            self.zone,
            self._wall(now),
            now - self.started,
            server=seen.target.server if seen else None,
            address=seen.target.where if seen else None,
            serial=serial,
            previous=previous,
            lag=lag,
            newest=self.newest,
            error=error,
        )

    @property
    def primaries(self) -> frozenset[int]:
        """The indices of the primary's addresses (the reference for lags)."""
        return self._primaries

    def observe(
        self,
        index: int,
        now: float,
        *,
        serial: int | None = None,
        error: SecdnsError | None = None,
        sent: float | None = None,
    ) -> list[MonitorEvent]:
        """Record one answer (``serial``) or failure, received at ``now`` for a query
        sent at ``sent`` (default ``now``)."""
        seen = self._seen[index]
        sent = now if sent is None else sent
        if serial is None:
            return self._failed(seen, now, error) + self._settle(index, None, sent)
        self.answered = True
        events: list[MonitorEvent] = []
        recovered = seen.error is not None
        seen.error = None
        if serial == seen.serial:
            if recovered:
                events.append(self._event(MonitorEventKind.RECOVERED, now, seen, serial=serial))
        else:
            events += self._switched(index, seen, serial, sent, now)
        seen.sent = sent
        released = self._settle(index, serial, sent)
        if released:  # held back, so seen before this answer
            events = sorted(events + released, key=lambda event: event.elapsed)
        consistent = self.consistent_serial()
        if consistent is not None and consistent != self._announced:
            self._announced = consistent
            lags = [s.lag for s in self._watched if s.lag is not None]
            slowest = max(lags, key=lambda lag: lag.best, default=None)
            events.append(
                self._event(MonitorEventKind.CONSISTENT, now, serial=consistent, lag=slowest)
            )
        elif consistent is None and self._serials_differ():
            self._announced = None
        return events

    def _switched(
        self, index: int, seen: _Seen, serial: int, sent: float, now: float
    ) -> list[MonitorEvent]:
        """An address answers another serial: its event, unless it waits for the primary."""
        had = seen.serial
        window = (sent if had is None or seen.sent is None else seen.sent, now)
        if had is None:
            self._had.add(window)
        self._first.setdefault(serial, window)
        if index in self._primaries:
            self._reference.setdefault(serial, window)
        if self.newest is None or serial_compare(serial, self.newest) == 1:
            self.newest = serial
        seen.previous, seen.serial, seen.changed = had, serial, now
        # at its first answer an address may have had the serial for long: no lag
        seen.window = None if had is None else window
        seen.lag = None
        if seen.window is not None and self._reference_of(serial) is None:
            self._pending.setdefault(serial, []).append(_Waiting(seen, now, had, window))
            return []
        seen.lag = self._lag(seen, serial)
        return [
            self._event(
                MonitorEventKind.SERIAL, now, seen, serial=serial, previous=had, lag=seen.lag
            )
        ]

    def _reference_of(self, serial: int) -> tuple[float, float] | None:
        if not self._primaries:
            return self._first.get(serial)
        return self._reference.get(serial)

    def _lag(self, seen: _Seen, serial: int) -> Lag | None:
        return self._lag_of(seen.window, serial)

    def _lag_of(self, window: tuple[float, float] | None, serial: int) -> Lag | None:
        reference = self._reference_of(serial)
        if window is None or reference is None:
            return None
        if window is reference:
            return Lag(0.0, 0.0)
        return Lag.between(window, reference, bounded=reference not in self._had)

    def _settle(self, index: int, serial: int | None, sent: float) -> list[MonitorEvent]:
        """Release the addresses waiting for the primary, once it shows their serial
        or answers otherwise (fails, or still the old one after they had the new)."""
        if index not in self._primaries or not self._pending:
            return []
        released: list[MonitorEvent] = []
        for waiting in list(self._pending):
            if waiting not in self._reference:
                if serial == waiting or sent < self._first[waiting][1]:
                    continue  # shown by another primary address; or asked before
                self._reference[waiting] = self._first[waiting]  # not where it started
            released += self._release(waiting)
        return released

    def settle(self) -> list[MonitorEvent]:
        """At the end of a run: release every address still waiting for the primary,
        its lag measured from the first address to show the serial."""
        released: list[MonitorEvent] = []
        for waiting in list(self._pending):
            self._reference.setdefault(waiting, self._first[waiting])
            released += self._release(waiting)
        return released

    def _release(self, serial: int) -> list[MonitorEvent]:
        events = []
        for waiting in self._pending.pop(serial, []):
            seen = waiting.seen
            lag = self._lag_of(waiting.window, serial)
            if seen.window is waiting.window:  # still at that serial
                seen.lag = lag
            events.append(
                self._event(
                    MonitorEventKind.SERIAL,
                    waiting.at,
                    seen,
                    serial=serial,
                    previous=waiting.previous,
                    lag=lag,
                )
            )
        return events

    def notified(self, now: float, source: str) -> MonitorEvent:
        """A NOTIFY for the zone came from ``source`` (an allowed server) at ``now``."""
        return MonitorEvent(
            MonitorEventKind.NOTIFY,
            self.zone,
            self._wall(now),
            now - self.started,
            address=source,
            newest=self.newest,
        )

    def _failed(self, seen: _Seen, now: float, error: SecdnsError | None) -> list[MonitorEvent]:
        message = error.message if error is not None else "no answer"
        if seen.error == message:
            return []
        seen.error = message
        seen.error_code = int(error.exit_code) if error is not None else ExitCode.NETWORK
        return [self._event(MonitorEventKind.FAILED, now, seen, serial=seen.serial, error=message)]

    def _serials_differ(self) -> bool:
        return len({seen.serial for seen in self._watched}) > 1

    def serial_of(self, index: int) -> int | None:
        """The serial an address answered last, None if it never did or now fails."""
        seen = self._seen[index]
        return seen.serial if seen.error is None else None

    def all_asked(self) -> bool:
        """Whether every address has answered or failed at least once."""
        return all(seen.serial is not None or seen.error is not None for seen in self._watched)

    def consistent_serial(self) -> int | None:
        """The serial every address answers right now, if they all answer the same."""
        serials = set()
        for seen in self._watched:
            if seen.serial is None or seen.error is not None:
                return None
            serials.add(seen.serial)
        return serials.pop() if len(serials) == 1 else None

    def reached(self, serial: int, *, newer: bool = False) -> bool:
        """Whether every address answers ``serial`` or newer right now (RFC 1982);
        with ``newer``, a serial newer than ``serial``."""
        wanted = (1,) if newer else (0, 1)
        if not self._watched:
            return False
        return all(
            seen.serial is not None
            and seen.error is None
            and serial_compare(seen.serial, serial) in wanted
            for seen in self._watched
        )

    def statuses(self) -> tuple[AddressStatus, ...]:
        return tuple(
            AddressStatus(
                server=seen.target.server,
                address=seen.target.where,
                serial=seen.serial,
                lag=seen.lag,
                changed_at=self._wall(seen.changed) if seen.changed is not None else None,
                error=seen.error if seen.target.address is not None else seen.target.error,
                current=(
                    seen.serial is not None and seen.serial == self.newest and seen.error is None
                ),
                primary=seen.target.primary,
            )
            for seen in self._seen
        )

    def worst_error(self) -> int:
        """The worst exit code among addresses whose latest query failed (3 if none)."""
        codes = [seen.error_code for seen in self._watched if seen.error is not None]
        return max(codes, default=int(ExitCode.NETWORK))
