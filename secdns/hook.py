"""The ``--exec`` hook of ``watch``: the command run after each change of a zone.

:func:`exec_environment` says what the command sees (the change, never an
inherited ``SECDNS_*`` variable, which may hold a TSIG secret);
:func:`run_command` runs it in its own session with stdout on our stderr, and
on cancellation (shutdown past the grace period) stops its process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping

from secdns.xfr import XfrKind


def exec_environment(
    base: Mapping[str, str],
    *,
    zone: str,
    old_serial: int | None,
    new_serial: int | None,
    file: str | None,
    kind: XfrKind,
) -> dict[str, str]:
    """The environment of an ``--exec`` command.

    Every inherited ``SECDNS_*`` variable is removed (one may hold ``--tsig``), then
    ``SECDNS_ZONE``, ``SECDNS_OLD_SERIAL`` (empty for a first transfer),
    ``SECDNS_NEW_SERIAL``, ``SECDNS_FILE`` and ``SECDNS_KIND`` (IXFR/AXFR) are set.
    """
    env = {name: value for name, value in base.items() if not name.startswith("SECDNS_")}
    env.update(
        SECDNS_ZONE=zone,
        SECDNS_OLD_SERIAL="" if old_serial is None else str(old_serial),
        SECDNS_NEW_SERIAL="" if new_serial is None else str(new_serial),
        SECDNS_FILE=file or "",
        SECDNS_KIND=kind.value if kind is not XfrKind.NONE else "",
    )
    return env


async def run_command(command: str, env: Mapping[str, str]) -> int:
    """Run ``command`` in a shell and return its exit status; ``OSError`` when it
    cannot start.  Its output is not our data: it goes to stderr."""
    process = await asyncio.create_subprocess_shell(
        command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=2,
        start_new_session=True,
    )
    try:
        return await process.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(process.wait(), 1.0)
        raise
