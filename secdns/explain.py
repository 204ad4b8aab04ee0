"""``--explain``: the decisions of one pull, each as it is made, in words an operator can act on.

:func:`secdns.pull.pull_zone` calls ``PullOptions.explain`` (when set) with a
:class:`Step` at each decision: which primary is tried and why, what the SOA probe
answered and over which transport, IXFR or AXFR and why, what the answer turned
out to be, every fallback and failover with its cause, TSIG, and what was written
or left alone.  The same steps go into the result's ``steps`` for ``--json``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from typing import IO

STEPS = (
    "hold",  # what we hold before asking: serial, and whether a delta can apply to it
    "primary",  # which primary is tried, and why (order, failover)
    "probe",  # what the SOA probe answered: serial, over UDP or TCP (after TC)
    "compare",  # the primary's serial against ours
    "request",  # IXFR or AXFR asked, and why
    "answer",  # what the answer turned out to be
    "fallback",  # a fallback to AXFR, and its cause
    "failover",  # a primary failed: the cause, and what comes next
    "tsig",  # TSIG verification
    "write",  # what was written, or left alone
)


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One decision of a pull: ``step`` is one of :data:`STEPS`, ``text`` one line."""

    step: str
    text: str
    zone: str
    primary: str | None = None
    elapsed: float = 0.0  # seconds since the pull started

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "text": self.text,
            "primary": self.primary,
            "elapsed": round(self.elapsed, 4),
        }

    def line(self) -> str:
        where = f" primary={self.primary}" if self.primary else ""
        return f"explain: zone={self.zone}{where} {self.step}: {self.text}"


Explain = Callable[[Step], None]


class Explainer:
    """What pull_zone talks to: stamps steps, passes them on, keeps them for the result."""

    def __init__(self, zone: str, callback: Explain | None) -> None:
        self.zone = zone
        self.callback = callback
        self.steps: list[Step] = []
        self.started = time.monotonic()
        self.primary: str | None = None

    def __bool__(self) -> bool:
        return self.callback is not None

    def __call__(self, step: str, text: str) -> None:
        if self.callback is None:
            return
        item = Step(step, text, self.zone, self.primary, time.monotonic() - self.started)
        self.steps.append(item)
        self.callback(item)


def log_step(step: Step) -> None:
    """An :data:`Explain` for ``serve -v``: each step of each refresh as a log line."""
    logging.getLogger("secdns.explain").info("%s", step.line())


def printer(stream: IO[str] | None = None) -> Explain:
    """An :data:`Explain` that prints each step as one line (stderr by default)."""

    def show(step: Step) -> None:
        out = stream or sys.stderr
        out.write(step.line() + "\n")
        out.flush()

    return show
