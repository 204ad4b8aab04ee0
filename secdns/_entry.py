"""The ``secdns`` command's first code: quiet about Ctrl-C from the very start.

Importing the command line (click, and a command's own modules) takes a few
hundred milliseconds; a Ctrl-C then used to print a traceback from inside an
import.  Until :class:`~secdns.cli.SecdnsGroup` runs a command (and takes
SIGINT back as KeyboardInterrupt, which every command handles), SIGINT here
writes one line and leaves with the documented status 130.  A SIGINT that the
parent had set to be ignored stays ignored.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

from secdns.errors import ExitCode

INTERRUPTED = int(ExitCode.INTERRUPTED)


def interrupted_early(signum: int, frame: FrameType | None) -> None:
    """SIGINT before a command runs: nothing has been written yet, so leave at once."""
    os.write(2, b"secdns: interrupted\n")
    os._exit(INTERRUPTED)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted_early)
    from secdns.cli import main as cli_main

    cli_main()
