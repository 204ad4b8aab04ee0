"""The control socket of ``serve`` (what ``secdns ctl`` talks to), and serve's operations.

The socket is a Unix stream socket, ``[server] control`` (default ``secdns.ctl`` in
the store directory), created mode 0600: only serve's user may use it, and
nothing listens on the network.

Protocol: JSON lines.  The client sends one JSON object per line; serve answers
each with one JSON object per line, in order, on the same connection::

    -> {"command": "status", "zones": ["example.com"]}
    <- {"ok": true, "command": "status", "result": {"zones": [{"zone": "example.com.", ...}]}}
       (without zones: also "primaries", each held as unreachable or failing: primary,
       state, until, skipped, failures; and "notify_targets": target, missed, retrying, each
       notify target that has not acknowledged the NOTIFYs of that many zones)
    -> {"command": "refresh", "zone": "example.com"}
    <- {"ok": true, "command": "refresh", "result": {"zone": "example.com.", "status": ...}}
    -> {"command": "bogus"}
    <- {"ok": false, "error": "unknown command 'bogus' (...)", "exit_code": 2}

Commands: ``status`` (``zones``: optional list; every zone when empty; ``catalog``:
optional, only the members that ``[[catalog]]`` gives),
``refresh`` (``zone``: SOA check now, transfer if newer; the result is the pull's),
``retransfer`` (``zone``: a full AXFR now, whatever the serial), ``notify``
(``zone``: NOTIFY its ``notify`` targets now; the result's ``targets`` say how each
ended within 10 s: ``target``, ``acknowledged``, ``error``), ``reload`` (as SIGHUP; the result
has ``zones``, the zones ``added``, ``removed`` and ``changed``, and ``warnings``), ``stop``
(as SIGTERM; answered before serve stops).  Each waits for its result unless the
request has ``"no_wait": true``: then the answer is ``{"started": true}`` at once.
A zone's status carries ``zone``, ``serial``, ``state`` (``loading``, ``ok``,
``refreshing``, ``retrying``, ``expired``), ``primary``, ``last_refresh``,
``last_change``, ``next_refresh``, ``expires_at`` (epoch seconds or null),
``records`` and ``last_error`` (one line or null).

Bounds: a line longer than 64 KiB, or one that is not a JSON object, gets one
error answer and the connection is closed; 16 clients at once; 60 s to send a
request.  None of this touches the answering path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secdns.config.values import ServerConfig
from secdns.errors import ExitCode, LocalIOError, SecdnsError, UsageError
from secdns.explain import Explain, Step
from secdns.metrics import Metrics, MetricsServer
from secdns.pull import PullResult
from secdns.xfr import serial_newer
from secdns.zonestatus import ServeZones

if TYPE_CHECKING:
    from secdns.config import Config
    from secdns.notify import NotifyDecision
    from secdns.server.server import Server
    from secdns.server.zones import ZoneRuntime

log = logging.getLogger(__name__)

SOCKET_NAME = "secdns.ctl"
MAX_LINE = 64 * 1024
MAX_CLIENTS = 16
REQUEST_TIMEOUT = 60.0
COMMANDS = ("status", "refresh", "retransfer", "notify", "reload", "stop")
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path, less the terminating NUL


def socket_path(config: Config | ServerConfig) -> Path | None:
    """``[server] control``, else ``secdns.ctl`` in the store directory, else none."""
    server = config if isinstance(config, ServerConfig) else config.server
    if server.control is not None:
        return server.control
    if server.directory is not None:
        return server.directory / SOCKET_NAME
    return None


class ControlServer:
    """Serves the JSON-lines protocol on the Unix socket."""

    def __init__(self, path: Path, operations: Operations) -> None:
        self.path = path
        self.operations = operations
        self.server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._inode: int | None = None

    async def start(self) -> None:
        path = self.path
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            raise LocalIOError(
                f"control socket path {path} is longer than {_SUN_PATH_MAX} bytes",
                hint="set a shorter [server] control",
            )
        if (path.exists() or path.is_symlink()) and not path.is_socket():
            raise LocalIOError(
                f"control socket path {path} exists and is not a socket: not replacing it",
                hint="set [server] control to a path of its own",
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_socket():
                self._refuse_if_live(path)
                path.unlink()
            # bind under a temporary name, restrict it, then rename it into place, so
            # the socket is never reachable at its real path with looser permissions
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(os.fsencode(temporary))
                os.chmod(temporary, 0o600)
                os.replace(temporary, path)
            except OSError:
                sock.close()
                raise
        except OSError as err:
            raise LocalIOError(
                f"cannot create the control socket {path}: {err.strerror or err}",
                hint="check [server] control and the directory's permissions",
            ) from err
        self._inode = path.stat().st_ino
        self.server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_LINE)
        log.info("control: listening on %s", path)

    @staticmethod
    def _refuse_if_live(path: Path) -> None:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(os.fsencode(path))
        except OSError:
            return  # stale: nobody is listening
        finally:
            probe.close()
        raise LocalIOError(
            f"control socket {path} is in use: another secdns serve is running",
            hint="stop it, or give this one another [server] control",
        )

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._clients) >= MAX_CLIENTS or task is None:
            writer.close()
            return
        self._clients.add(task)
        held = False  # ctl stop's connection: closed once serve has stopped
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readuntil(b"\n"), REQUEST_TIMEOUT)
                except asyncio.IncompleteReadError as err:
                    if not err.partial.strip():
                        return  # the client is done
                    line = err.partial
                except asyncio.LimitOverrunError:
                    await self._send(writer, _error(f"request line over {MAX_LINE} bytes"))
                    log.warning("control: closed a client that sent a line over %d bytes", MAX_LINE)
                    return
                request = _parse(line)
                if isinstance(request, str):
                    await self._send(writer, _error(request))
                    log.warning("control: closed a client: %s", request)
                    return
                answer = await self.operations.execute(request, self._stepper(writer))
                await self._send(writer, answer)
                if request.get("command") == "stop" and answer.get("ok"):
                    self.operations.server.stop(waiter=writer)
                    held = True
                    return
        except (TimeoutError, ConnectionError, OSError, ValueError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("control: internal error with a client")
        finally:
            self._clients.discard(task)
            if not held:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)

    @staticmethod
    def _stepper(writer: asyncio.StreamWriter) -> Explain:
        """``explain`` requests: each step as a line of its own, as it happens."""

        def send(step: Step) -> None:
            writer.write(json.dumps({"step": step.to_dict()}).encode() + b"\n")

        return send

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
        writer.write(json.dumps(answer).encode() + b"\n")
        await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)


def _parse(line: bytes) -> dict[str, Any] | str:
    """A request object, or why the line is not one."""
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "not a JSON line"
    if not isinstance(request, dict):
        return "a request is a JSON object"
    return request


def _error(message: str, exit_code: int = 2) -> dict[str, Any]:
    return {"ok": False, "error": message, "exit_code": exit_code}


class Operations:
    """serve's operator side: zone statuses, metrics, the control socket and /metrics."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.zones = ServeZones(server)
        self.metrics = Metrics(
            self.zones.statuses,
            self.query_counts,
            self.held_primaries,
            self.catalog_counts,
            self.notify_missed,
        )
        self.zones.observers.append(self.metrics.observe_pull)
        self.control: ControlServer | None = None
        self.http: MetricsServer | None = None

    def catalog_counts(self) -> Iterable[tuple[str, int, int, bool]]:
        """Each ``[[catalog]]``'s members, records skipped and usability (the metrics; the
        registry reads it once before the server has made its catalogs)."""
        catalogs = getattr(self.server, "catalogs", None)
        return catalogs.counts() if catalogs is not None else ()

    def notify_missed(self) -> dict[str, int]:
        notifier = getattr(self.server, "notifier", None)
        return notifier.missed_counts() if notifier is not None else {}

    def notify_retrying(self) -> dict[str, int]:
        notifier = getattr(self.server, "notifier", None)
        return notifier.retrying_counts() if notifier is not None else {}

    def held_primaries(self) -> Iterable[tuple[str, bool, int, int]]:
        """(primary, held now, tries skipped, tries failed) of each primary held,
        skipped or failed since the start (:meth:`secdns.unreachable.Unreachable.counts`)."""
        unreachable = self.server.unreachable
        return unreachable.counts() if unreachable is not None else ()

    def query_counts(self) -> Iterable[tuple[str, list[int]]]:
        for worker in self.server.listeners.udp:
            yield "udp", worker.rcodes
        yield "tcp", self.server.listeners.tcp_rcodes
        yield "tls", self.server.listeners.tls_rcodes

    def attach(self, runtime: ZoneRuntime) -> None:
        self.zones.attach(runtime)

    def notify_received(self, decision: NotifyDecision) -> None:
        """Count a NOTIFY: ``accepted`` (it names a zone to refresh), ``refused`` (an
        error reply) or ``dropped`` (no reply: not a query, unparsable).  Zones not
        served here are counted together as ``(other)``, so a peer cannot grow the
        label set."""
        name = decision.zone or decision.qname
        runtime = self.server.runtimes.get(name) if name is not None else None
        if decision.zone is not None:
            result = "accepted"
        else:
            result = "refused" if decision.response is not None else "dropped"
        zone = runtime.name if runtime else "(other)"
        self.metrics.observe_notify(zone, result, decision.serial)

    async def start(self) -> None:
        config = self.server.config
        path = socket_path(config)
        if path is not None:
            self.control = ControlServer(path, self)
            await self.control.start()
        if config.server.metrics_listen is not None:
            self.http = MetricsServer(
                config.server.metrics_listen, self.metrics, self.zones.statuses
            )
            try:
                await self.http.start()
            except SecdnsError:
                await self.close()
                raise

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        if self.http is not None:
            await self.http.close()

    async def execute(
        self, request: dict[str, Any], explain: Explain | None = None
    ) -> dict[str, Any]:
        """Run one request; its answer (errors included, as ``ok: false``).

        With ``"explain": true`` a refresh or retransfer reports each step to
        ``explain`` as it happens (the control server sends them as lines).
        """
        command = request.get("command")
        if not request.get("explain") or request.get("no_wait"):
            explain = None
        try:
            if command not in COMMANDS:
                raise UsageError(f"unknown command {command!r} (known: {', '.join(COMMANDS)})")
            result = await self._run(str(command), request, explain)
        except SecdnsError as err:
            return {**_error(err.one_line(), int(err.exit_code)), "command": command}
        return {"ok": True, "command": command, "result": result}

    async def _run(
        self, command: str, request: dict[str, Any], explain: Explain | None
    ) -> dict[str, Any]:
        if command == "status":
            zones = request.get("zones") or []
            if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
                raise UsageError("status: zones is a list of zone names")
            catalog = request.get("catalog")
            if catalog is not None and not isinstance(catalog, str):
                raise UsageError("status: catalog is a zone name")
            # zones not served here are said beside the others' statuses, as knotc
            # zone-status says them (all unknown: the error, as before)
            unknown: list[str] = []
            for name in list(zones) if len(zones) > 1 else []:
                try:
                    self.zones.runtime(name)
                except SecdnsError as err:
                    unknown.append(err.one_line())
                    zones.remove(name)
            statuses = self.zones.statuses(zones, catalog) if zones or not unknown else []
            result: dict[str, Any] = {"zones": [s.to_dict() for s in statuses]}
            if unknown:
                if not statuses and catalog is None:
                    raise UsageError("; ".join(unknown))
                result["unknown"] = unknown
            if not zones and catalog is None:  # (the whole server: its held primaries too)
                unreachable = self.server.unreachable
                result["primaries"] = unreachable.holds() if unreachable is not None else []
                missed = self.notify_missed()  # (and downstreams behind on our NOTIFYs)
                retrying = self.notify_retrying()
                result["notify_targets"] = [
                    {
                        "target": target,
                        "missed": missed.get(target, 0),
                        "retrying": retrying.get(target, 0),
                    }
                    for target in sorted(set(missed) | set(retrying))
                    if missed.get(target) or retrying.get(target)
                ]
            return result
        if command == "stop":
            return {"stopping": True}
        coro: Coroutine[Any, Any, dict[str, Any]]
        if command == "reload":
            coro = self._reload()
        else:
            zone = request.get("zone")
            if not isinstance(zone, str) or not zone:
                raise UsageError(f'{command}: which zone? ("zone": NAME)')
            self.zones.runtime(zone)  # an unknown zone fails now, even with no_wait
            if command == "notify":
                coro = self._notify(zone)
            else:
                coro = self._refresh(zone, command == "retransfer", explain)
        if request.get("no_wait"):
            self.server._spawn(coro)
            return {"started": True}
        return await coro

    async def _refresh(
        self, zone: str, force_axfr: bool, explain: Explain | None
    ) -> dict[str, Any]:
        runtime = self.zones.runtime(zone)
        before = runtime.zone.version.serial if runtime.zone.version is not None else None
        result: PullResult = await self.zones.refresh(zone, force_axfr, explain)
        status = self.zones.status(runtime)
        after = runtime.zone.version.serial if runtime.zone.version is not None else None
        warnings = []
        if before is not None and after is not None and serial_newer(before, after):
            # (a stranger's downstreams all stayed on the newer serial, as they should)
            warnings.append(
                f"zone={runtime.name} serial went back {before} -> {after}: each secondary "
                f"of ours keeps {before} (it refuses an older serial) until it is told to "
                "transfer the zone again (rndc retransfer, knotc zone-retransfer, "
                "nsd-control force_transfer)"
            )
            log.warning("ctl: %s", warnings[-1])
        return {"pull": result.to_dict(), "zone": status.to_dict(), "warnings": warnings}

    async def _notify(self, zone: str) -> dict[str, Any]:
        targets = await self.zones.notify(zone)
        return {"zone": self.zones.runtime(zone).name, "targets": targets}

    async def _reload(self) -> dict[str, Any]:
        done = await self.server.reload()
        return {
            "zones": len(self.server.runtimes),
            "added": done.added,
            "removed": done.removed,
            "changed": done.changed,
            "reloaded": done.reloaded,
            "failed": len(done.failures),
            "failures": done.failures,
            "exit_code": done.exit_code,
            "warnings": done.warnings,
        }


# --- the client side (secdns ctl) --------------------------------------------------------------


class ControlError(SecdnsError):
    """serve answered with an error"""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        try:
            self.exit_code = ExitCode(exit_code)
        except ValueError:
            self.exit_code = ExitCode.INTERNAL


def ctl_request(
    path: Path,
    request: dict[str, Any],
    timeout: float,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Send one request to a running serve and return its ``result``; ``on_step``
    gets each ``{"step": ...}`` line that comes before it (``explain``).  After
    ``stop``, wait (within ``timeout``) until serve has stopped and closes the
    connection: ``result["stopped"]`` says whether it did.

    Raises :class:`LocalIOError` when no serve listens on ``path`` and
    :class:`ControlError` (with serve's exit code) when serve answers an error.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    stopped = False
    try:
        try:
            sock.connect(os.fsencode(path))
        except OSError as err:
            raise LocalIOError(
                f"cannot reach serve's control socket {path}: {err.strerror or err}",
                hint="is secdns serve running with this config? (-c CONFIG or -s SOCKET)",
            ) from err
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as stream:
                while True:
                    line = stream.readline(MAX_LINE * 64)
                    step = _step_line(line)
                    if step is None:
                        break
                    if on_step is not None:
                        on_step(step)
                if request.get("command") == "stop" and b'"ok": true' in line:
                    stopped = _until_closed(stream)
        except TimeoutError as err:
            raise LocalIOError(
                f"serve did not answer {request.get('command')} within {timeout:g}s",
                hint="raise --timeout, or use --no-wait",
            ) from err
        except OSError as err:
            raise LocalIOError(f"control socket {path}: {err.strerror or err}") from err
    finally:
        sock.close()
    try:
        answer = json.loads(line)
    except ValueError as err:
        raise LocalIOError(f"control socket {path}: serve closed without an answer") from err
    if not isinstance(answer, dict):
        raise LocalIOError(f"control socket {path}: not a JSON object: {line[:80]!r}")
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error")), int(answer.get("exit_code") or 70))
    result = answer.get("result")
    result = result if isinstance(result, dict) else {}
    if request.get("command") == "stop":
        result["stopped"] = stopped
    return result


def _until_closed(stream: Any) -> bool:
    """Read until serve closes the connection (it has stopped): True, or False when
    the socket's timeout ran out first."""
    try:
        while stream.read(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        pass  # (reset: closed all the same)
    return True


def _step_line(line: bytes) -> dict[str, Any] | None:
    """The step of a ``{"step": {...}}`` line, else None (the answer, or garbage)."""
    if not line.startswith(b'{"step"'):
        return None
    try:
        step = json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, dict) else None
