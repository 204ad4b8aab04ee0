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
from collections.abc import Sequence
from typing import TYPE_CHECKING

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


@dataclasses.dataclass(frozen=True, slots=True)
class Lag:
    """How long after the first address an address showed a serial: ``value`` ± ``precision``.

    Moments are windows, not instants: an address switched after the query that
    last showed its old serial was sent, and before the answer showing the new one
    was received.  The lag is the distance between the middles of the two windows
    (this address's and the first address's), never below 0, and ``precision`` how
    far the true lag can be from it: the truth lies within ``value ± precision``.
    """

    value: float
    precision: float

    @classmethod
    def between(cls, window: tuple[float, float], first: tuple[float, float]) -> Lag:
        low, high = window[0] - first[1], window[1] - first[0]
        value = max(0.0, (low + high) / 2)
        return cls(value, max(value - max(0.0, low), high - value))


def _seconds(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


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
            "lag": _seconds(self.lag.value if self.lag else None),
            "lag_precision": _seconds(self.lag.precision if self.lag else None),
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

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "address": self.address,
            "serial": self.serial,
            "lag": _seconds(self.lag.value if self.lag else None),
            "lag_precision": _seconds(self.lag.precision if self.lag else None),
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
    sent: float | None = None  # when the query behind the latest answer was sent
    error: str | None = None
    error_code: int = 0


class PropagationTracker:
    """Who answers which serial, since when, and how long after the first to show it.

    Pure: :meth:`observe` is given each answer (or failure) with the monotonic
    times its query was sent and its answer received, and returns the events it
    caused.  An address that switched serials did so inside the window from the
    sending of the query that last showed the old serial to the receipt of the one
    showing the new; a serial's *lag* at an address compares that window with the
    first address's (see :class:`Lag`).  The first address to show a serial has
    lag 0; an address that already had a serial at its first answer has no lag.
    """

    def __init__(
        self,
        zone: str,
        targets: Sequence[Target],
        *,
        started: float,
        wall_started: float | None = None,
    ) -> None:
        self.zone = zone
        self.targets = tuple(targets)
        self.started = started
        self.wall_started = time.time() if wall_started is None else wall_started
        self._seen = [_Seen(target) for target in self.targets]
        self._watched = [seen for seen in self._seen if seen.target.address is not None]
        self._first: dict[int, tuple[float, float]] = {}  # serial -> first address's window
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
        if serial is None:
            return self._failed(seen, now, error)
        sent = now if sent is None else sent
        self.answered = True
        events: list[MonitorEvent] = []
        recovered = seen.error is not None
        seen.error = None
        if serial == seen.serial:
            if recovered:
                events.append(self._event(MonitorEventKind.RECOVERED, now, seen, serial=serial))
        else:
            had = seen.serial
            window = (sent if had is None or seen.sent is None else seen.sent, now)
            first = self._first.setdefault(serial, window)
            if self.newest is None or serial_compare(serial, self.newest) == 1:
                self.newest = serial
            # at its first answer an address may have had the serial for long: no lag
            if had is None:
                seen.lag = None
            elif first is window:  # the first to show it: the reference
                seen.lag = Lag(0.0, 0.0)
            else:
                seen.lag = Lag.between(window, first)
            seen.previous, seen.serial, seen.changed = had, serial, now
            events.append(
                self._event(
                    MonitorEventKind.SERIAL, now, seen, serial=serial, previous=had, lag=seen.lag
                )
            )
        seen.sent = sent
        consistent = self.consistent_serial()
        if consistent is not None and consistent != self._announced:
            self._announced = consistent
            lags = [s.lag for s in self._watched if s.lag is not None]
            slowest = max(lags, key=lambda lag: lag.value, default=None)
            events.append(
                self._event(MonitorEventKind.CONSISTENT, now, serial=consistent, lag=slowest)
            )
        elif consistent is None and self._serials_differ():
            self._announced = None
        return events

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
            )
            for seen in self._seen
        )

    def worst_error(self) -> int:
        """The worst exit code among addresses whose latest query failed (3 if none)."""
        codes = [seen.error_code for seen in self._watched if seen.error is not None]
        return max(codes, default=int(ExitCode.NETWORK))
