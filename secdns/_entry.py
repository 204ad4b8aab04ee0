"""The ``secdns`` command's first code: quiet about Ctrl-C from the very start.

Importing the command line (click, and a command's own modules) takes a few
hundred milliseconds; a Ctrl-C then used to print a traceback from inside an
import.  Until :class:`~secdns.cli.SecdnsGroup` runs a command (and takes
SIGINT back as KeyboardInterrupt, which every command handles), SIGINT here
writes one line and leaves with the documented status 130.  A SIGINT that the
parent had set to be ignored stays ignored.

``serve`` is reloaded with SIGHUP (``systemctl reload``), whose default action ends
the process: a reload asked for right after a start used to stop serve silently,
before it had its handler.  For ``serve``, a SIGHUP from the very start is
remembered (:func:`hangup_seen`) and the config read again once serve has started.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from secdns.errors import ExitCode

INTERRUPTED = int(ExitCode.INTERRUPTED)


def interrupted_early(signum: int, frame: FrameType | None) -> None:
    """SIGINT before a command runs: nothing has been written yet, so leave at once."""
    os.write(2, b"secdns: interrupted\n")
    os._exit(INTERRUPTED)


_HANGUPS: list[int] = []


def hangup_early(signum: int, frame: FrameType | None) -> None:
    """SIGHUP before serve has its own handler: remembered, for a reload once started."""
    _HANGUPS.append(signum)


def hangup_seen() -> bool:
    """Whether a SIGHUP came before serve took the signal (and forget it)."""
    seen = bool(_HANGUPS)
    _HANGUPS.clear()
    return seen


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted_early)
    serve = _command(sys.argv[1:]) == "serve"
    if serve and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        signal.signal(signal.SIGHUP, hangup_early)
    from secdns.cli import main as cli_main

    if not serve:
        cli_main()
        return
    try:
        cli_main()
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: object) -> None:
    """End ``serve`` once it has stopped (everything it keeps is written by then, and
    its threads and children have ended): the log and stdio flushed, then out without
    the interpreter freeing every object one by one, which for a server that answered
    a few hundred thousand distinct questions took over a second after "stopped"."""
    import logging

    logging.shutdown()
    if code is not None and not isinstance(code, int):  # (as sys.exit prints it)
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if sys.getprofile() is not None:  # under cProfile (manyzones_bench --cprofile): it
        sys.exit(code or 0)  # writes its figures at the interpreter's exit
    os._exit(code or 0)


def _command(args: list[str]) -> str | None:
    """The subcommand's name: the first word that is not an option (the group's
    options, ``--debug``, take no value)."""
    return next((arg for arg in args if not arg.startswith("-")), None)
