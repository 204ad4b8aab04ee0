"""One exception tree for secdns; each class carries its process exit code.

The core raises these; only the CLI edge turns them into one stderr line and an
exit code.  The table below is the single source of the exit codes quoted in the
README and the man pages.
"""

from __future__ import annotations

import enum
import errno
import os


class ExitCode(enum.IntEnum):
    """Process exit status shared by every subcommand (diff(1) style for 0-2)."""

    OK = 0
    DIFFERENT = 1
    USAGE = 2
    NETWORK = 3
    REFUSED = 4
    TSIG = 5
    BAD_DATA = 6
    LOCAL_IO = 7
    INTERNAL = 70
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143


EXIT_CODE_TABLE: tuple[tuple[int, str], ...] = (
    (
        ExitCode.OK,
        "success: transfer done or zone already up to date; no differences; all checks pass",
    ),
    (
        ExitCode.DIFFERENT,
        "differences found (diff) or checks failed (verify, watch --until-*); "
        "a zone expired, retrying, unusable or failed (ctl status)",
    ),
    (ExitCode.USAGE, "usage error: bad option, argument or configuration file"),
    (
        ExitCode.NETWORK,
        "network failure: timeout, connection refused, no address, every primary down; "
        "TLS (XoT): certificate not trusted, hostname or pin mismatch, handshake refused",
    ),
    (
        ExitCode.REFUSED,
        "the server refused: REFUSED, NOTAUTH, NOTIMP or not authoritative for the zone",
    ),
    (ExitCode.TSIG, "TSIG failure: bad key, bad signature, bad time, or an unsigned answer"),
    (
        ExitCode.BAD_DATA,
        "bad data: a server sent malformed or out-of-zone data, mismatched SOAs, "
        "a serial that went backwards, or too much; or a zone file does not parse",
    ),
    (ExitCode.LOCAL_IO, "local I/O error: cannot read or write a file or directory"),
    (ExitCode.INTERNAL, "internal error (a bug: please report it with the --debug output)"),
    (ExitCode.INTERRUPTED, "interrupted by SIGINT (Ctrl-C), as a shell reports 128 + 2"),
    (
        ExitCode.BROKEN_PIPE,
        "the output pipe closed early (piped into head): stops quietly, 128 + 13 (`pull -c` "
        "finishes and stores the transfers under way and starts no other)",
    ),
    (ExitCode.TERMINATED, "stopped by SIGTERM before a watch --until-* condition held, 128 + 15"),
)


def exit_code_epilog() -> str:
    """The exit-code table for ``secdns -h``, generated from :data:`EXIT_CODE_TABLE`
    as the README's and the man pages' are (``\\b`` keeps click from rewrapping it)."""
    lines = ["\b", "Exit status (see secdns(1)):"]
    lines += [f"  {int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_TABLE]
    return "\n".join(lines)


class SecdnsError(Exception):
    """secdns failed."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(
        self,
        message: str | None = None,
        *,
        zone: str | None = None,
        server: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "error").strip()
        self.zone = zone
        self.server = server
        self.hint = hint
        super().__init__(self.message)

    def with_context(self, *, zone: str | None = None, server: str | None = None) -> SecdnsError:
        """Fill in the zone and server if the raiser did not know them."""
        if self.zone is None:
            self.zone = zone
        if self.server is None:
            self.server = server
        return self

    def one_line(self, with_zone: bool = True) -> str:
        """The error as one line: zone, server, cause, hint (``with_zone`` False: where
        the zone is named already, as in its own status)."""
        parts = []
        if self.zone and with_zone:
            parts.append(f"zone {self.zone}")
        if self.server:
            parts.append(f"server {self.server}")
        where = ", ".join(parts)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    @classmethod
    def kind(cls) -> str:
        """The class name as JSON shows it (``TimeoutError``, not the Python-side
        ``TimeoutError_`` that keeps clear of the builtin)."""
        return cls.__name__.rstrip("_")

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.kind(),
            "message": self.message,
            "zone": self.zone,
            "server": self.server,
            "hint": self.hint,
            "exit_code": int(self.exit_code),
        }


class UsageError(SecdnsError):
    """invalid usage"""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """invalid configuration"""


class NetworkError(SecdnsError):
    """network failure"""

    exit_code = ExitCode.NETWORK

    no_server = False
    """Nothing serves there (the connection or the query refused, no route to it): its
    server is down, not slow (:mod:`secdns.unreachable` probes it until it answers)."""

    def after(self, err: OSError) -> NetworkError:
        """Mark the error :attr:`no_server` when the socket error ``err`` says so."""
        if isinstance(err, ConnectionRefusedError) or err.errno in _NO_SERVER:
            self.no_server = True
        return self


_NO_SERVER = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})


class TimeoutError_(NetworkError):
    """timed out"""

    silent = True
    """Nothing was heard from the server (False: it answered, then stalled or outlived
    the transfer's lifetime); only a silent timeout counts toward holding a primary as
    unreachable (:mod:`secdns.unreachable`)."""

    tried = True
    """False: not tried at all, the server being held as unreachable after timeouts
    (serve logs it at info and counts it as a ``skipped`` transfer: the primary's
    hold is said once, as a warning)."""

    retry_after = 0.0
    """Of a try not made: seconds until the server's hold ends (no try is made before)."""

    def heard(self) -> TimeoutError_:
        """Mark the server as having answered before the timeout."""
        self.silent = False
        return self

    def not_tried(self, retry_after: float = 0.0) -> TimeoutError_:
        self.tried = False
        self.retry_after = retry_after
        return self


def not_tried(err: BaseException | None) -> bool:
    """Whether ``err`` is a pull that tried no primary: each was held as unreachable."""
    return isinstance(err, TimeoutError_) and not err.tried


def said_once(err: BaseException | None) -> bool:
    """Whether a zone's failure is said once for its primary, not as a warning per zone
    (serve and watch log it at info): no primary was tried (each held as unreachable),
    or none serves (each refused: :mod:`secdns.unreachable` warns once that it is
    down).  A stranger's primary, stopped, made 2,000 warnings, one a zone."""
    return not_tried(err) or (isinstance(err, NetworkError) and err.no_server)


class RefusedError(SecdnsError):
    """the server refused the request"""

    exit_code = ExitCode.REFUSED


class TsigError(SecdnsError):
    """TSIG verification failed"""

    exit_code = ExitCode.TSIG


class BadDataError(SecdnsError):
    """bad data from the server"""

    exit_code = ExitCode.BAD_DATA


class LimitExceeded(BadDataError):
    """the transfer exceeded a size limit"""


class SerialBackwards(BadDataError):
    """the primary's serial is older than the stored one"""


class IxfrNotApplicable(BadDataError):
    """the IXFR delta does not apply to the stored zone"""


class ZoneFileError(BadDataError):
    """the zone file does not parse"""

    def __init__(
        self,
        message: str | None = None,
        *,
        filename: str | None = None,
        line: int | None = None,
        zone: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.filename = filename
        self.line = line
        where = (
            f"{filename}:{line}: " if filename and line else (f"{filename}: " if filename else "")
        )
        super().__init__(f"{where}{message}" if message else None, zone=zone, hint=hint)


class LocalIOError(SecdnsError):
    """local I/O error"""

    exit_code = ExitCode.LOCAL_IO


def worst(codes: list[int]) -> int:
    """The exit status for several results: the highest error code, else 1 if any differ."""
    errors = [c for c in codes if c >= ExitCode.USAGE]
    if errors:
        return max(errors)
    return max(codes, default=0)


def os_reason(err: OSError) -> str:
    """An OSError's cause in words (``connection refused``, ``no such host``), not
    Python's rendering of it (``Connect call failed ('127.0.0.1', 853)``, ``[Errno -2]``)."""
    import socket  # here: the exception tree imports no sockets

    if isinstance(err, socket.gaierror):
        if err.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return "no such host"
        text = err.strerror or str(err)
    elif err.errno:
        text = os.strerror(err.errno)
    else:
        text = err.strerror or str(err)
    return text[:1].lower() + text[1:]


def other_zone_words(found: str, zone: str) -> str:
    """The words for a file that holds zone ``found`` where ``zone`` was asked for (its
    SOA says so): diff, verify, serve's loader and ``pull -o`` say it alike."""
    return f"holds zone {found} (its SOA), not {zone}"
