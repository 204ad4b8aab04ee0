"""``watch``: what its two products share.

The mirror (follow zones into files) is :mod:`secdns.mirror`, the propagation
monitor (``watch --servers``) :mod:`secdns.monitor`, the NOTIFY listener
:mod:`secdns.notify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator, Sequence

SHUTDOWN_GRACE = 5.0
"""Seconds a transfer or an --exec command in progress gets to finish on SIGINT/SIGTERM."""


def seconds_text(value: float) -> str:
    """``0.4s``, ``12s``, ``900s``: short, for logs and lines."""
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"


@contextlib.contextmanager
def stop_on_signals(
    stop: asyncio.Event,
    signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM while inside; restore the handlers on exit."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in signals:
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            continue
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
