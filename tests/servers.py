"""Real BIND, Knot and NSD processes for interop tests.

Each server runs in the foreground as a child of the test process, on a free
port of 127.0.0.1, with its config, zone files, journals and log inside one
working directory. `stop()` ends it by its own PID: SIGTERM, a bounded wait,
then SIGKILL. Servers listen on loopback only and send NOTIFY only to the
targets they are given, so nothing leaves the machine.

    primary = Bind.start(tmp_path / "bind", {"example.com": zone_text()})
    primary.nsupdate("update add new.example.com. 300 A 192.0.2.7")
    assert primary.soa_serial("example.com") == 2024010102
    primary.stop()

Zones change in one of two ways: `nsupdate()` (BIND and Knot), or
`write_zone()` with a higher serial then `reload()` (all three). Both leave
the server able to answer IXFR from the old serial.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NoReturn, Self

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.serial
import dns.tsig
import pytest

LOOPBACK = "127.0.0.1"
ZONES_DIR = Path(__file__).parent / "zones"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
REQUIRE_SERVERS_ENV = "SECDNS_REQUIRE_SERVERS"

# Where Debian puts daemons; a non-root PATH often lacks these.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# sockaddr_un holds 108 bytes; keep control socket paths well under that.
_MAX_SOCKET_PATH = 100
# The query timeout while polling: a UDP query to a port nobody has bound yet
# gets no answer (and no error), so keep each try short.
_POLL_TIMEOUT = 0.1
# How many fresh ports to try when another process takes ours first.
_PORT_ATTEMPTS = 3

Endpoint = tuple[str, int]
"""An (address, port) pair: a NOTIFY target, or a primary to transfer from."""

ZoneSource = str | Path
"""Zone text (a str) or a master file to copy (a Path)."""


class ServerError(Exception):
    """A test DNS server failed to start, answer, apply a change, or stop."""


class PortInUse(ServerError):
    """The server could not bind its port: another process took it first."""


# --- binaries -------------------------------------------------------------------


def find_binary(name: str) -> str | None:
    """The absolute path of program `name`, looking in the sbin directories too."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN_DIRS])
    return shutil.which(name, path=path)


def servers_required() -> bool:
    """Whether a missing server binary fails the test (CI) instead of skipping it."""
    return os.environ.get(REQUIRE_SERVERS_ENV, "") not in ("", "0")


def need_binary(name: str) -> str:
    """The path of program `name`; skip the test if it is missing, or fail if required.

    CI sets SECDNS_REQUIRE_SERVERS=1 so that a missing BIND, Knot or NSD can
    never silently turn the interop tests into skips.
    """
    found = find_binary(name)
    if found is not None:
        return found
    _missing(name)


def _missing(name: str) -> NoReturn:
    message = f"{name} is not installed"
    if servers_required():
        pytest.fail(f"{message} and {REQUIRE_SERVERS_ENV} is set", pytrace=False)
    pytest.skip(message)


# --- small values ---------------------------------------------------------------


def free_port() -> int:
    """A port that is free on 127.0.0.1 for both UDP and TCP right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            return port
    raise ServerError("free_port: no port is free for both UDP and TCP on 127.0.0.1")


def stored_master(path: Path) -> str:
    """A store's zone file as a master file: the text after its state line, if it has
    one (secdns.store.STATE_LINE; a first version's state)."""
    from secdns.store import state_line_end

    raw = path.read_bytes()
    return raw[state_line_end(raw) :].decode()


def output_master(path: Path) -> str:
    """A ``pull -o`` file as a master file: the text before its checksum line
    (secdns.seal), which a store's zone file does not have."""
    text = path.read_text()
    body, _, last = text.rstrip("\n").rpartition("\n")
    assert last.startswith("; sha256 "), last
    return body + "\n"


def zone_text(zone: str = "example.com") -> str:
    """The text of the test master file tests/zones/<zone>.zone."""
    return (ZONES_DIR / f"{_zone_name(zone)}.zone").read_text()


def tsig_secret(size: int = 32) -> str:
    """A random base64 TSIG secret of `size` bytes."""
    return base64.b64encode(secrets.token_bytes(size)).decode("ascii")


@dataclass(frozen=True, slots=True)
class TsigKey:
    """A TSIG key, as server configs, nsupdate and dnspython each spell it."""

    name: str
    algorithm: str
    secret: str

    @classmethod
    def generate(cls, name: str, algorithm: str = "hmac-sha256") -> TsigKey:
        return cls(name, algorithm, tsig_secret())

    @property
    def dns_key(self) -> dns.tsig.Key:
        """The key for dnspython, e.g. for `Message.use_tsig()`."""
        return dns.tsig.Key(self.name, self.secret, self.algorithm)

    @property
    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        """A one-key keyring, for the `keyring=` of dns.query functions."""
        key = self.dns_key
        return {key.name: key}

    @property
    def nsupdate_arg(self) -> str:
        """The `-y` argument of nsupdate: algorithm:name:secret."""
        return f"{self.algorithm}:{self.name}:{self.secret}"


def _zone_name(zone: str) -> str:
    return zone.rstrip(".") or "."


def _quote(text: str | Path) -> str:
    """A double-quoted string, as named.conf, knot.conf and nsd.conf read it."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class _Setup:
    """What a server is asked to do, before it has a port: the input to a config writer."""

    workdir: Path
    primaries: Mapping[str, Path]  # zone -> master file
    secondaries: Mapping[str, Endpoint]  # zone -> the primary it is transferred from
    tsig: Mapping[str, TsigKey]
    allow_transfer_key: str | None
    allow_update_key: str | None
    notify: Sequence[Endpoint]
    primary_key: TsigKey | None

    @classmethod
    def prepare(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, ZoneSource],
        *,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        allow_update_key: str | None = None,
        notify: Sequence[Endpoint] = (),
        also_secondary_of: Mapping[str, Endpoint] | None = None,
        primary_key: TsigKey | None = None,
    ) -> _Setup:
        """Check the arguments and write the zone files into tmp_dir/zones."""
        keys = {name: TsigKey(name, alg, secret) for name, (alg, secret) in (tsig or {}).items()}
        if primary_key is not None:
            keys[primary_key.name] = primary_key
        for key in (allow_transfer_key, allow_update_key):
            if key is not None and key not in keys:
                raise ServerError(f"start: key {key!r} is not among the tsig keys {sorted(keys)}")
        workdir = Path(tmp_dir).absolute()
        (workdir / "zones").mkdir(parents=True, exist_ok=True)
        (workdir / "secondary").mkdir(exist_ok=True)
        primaries: dict[str, Path] = {}
        for zone, source in zones.items():
            path = workdir / "zones" / f"{_zone_name(zone)}.zone"
            if isinstance(source, Path):
                shutil.copyfile(source, path)
            else:
                path.write_text(source)
            primaries[_zone_name(zone)] = path
        return cls(
            workdir=workdir,
            primaries=primaries,
            secondaries={_zone_name(z): p for z, p in (also_secondary_of or {}).items()},
            tsig=keys,
            allow_transfer_key=allow_transfer_key,
            allow_update_key=allow_update_key,
            notify=tuple(notify),
            primary_key=primary_key,
        )

    @property
    def zones(self) -> list[str]:
        return [*self.primaries, *self.secondaries]

    def secondary_file(self, zone: str) -> Path:
        return self.workdir / "secondary" / f"{zone}.zone"


def _live_group_members(pgid: int) -> list[int]:
    """PIDs in process group `pgid` that are not zombies, read from Linux's /proc.

    An orphaned helper that exited stays a zombie if PID 1 does not reap it (as
    in some sandboxes); it holds no port or file, so it does not count.
    """
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


# --- the server base ------------------------------------------------------------


class DnsServer:
    """A running DNS server process; each subclass knows one implementation's config."""

    program: ClassVar[str]
    """The daemon binary, e.g. "named"."""

    host = LOOPBACK

    def __init__(
        self,
        workdir: Path,
        port: int,
        process: subprocess.Popen[bytes],
        zones: Sequence[str],
        tsig: Mapping[str, TsigKey],
    ) -> None:
        self.workdir = workdir
        self.port = port
        self.process = process
        self.zones = tuple(zones)
        self.tsig = dict(tsig)
        self.log_path = workdir / "server.log"
        self._cleanup_dirs: list[Path] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} {self.addr} zones={list(self.zones)}>"

    @property
    def addr(self) -> str:
        """The address as "127.0.0.1:PORT"."""
        return f"{self.host}:{self.port}"

    @property
    def endpoint(self) -> Endpoint:
        """(host, port), as `notify=` and `start_secondary()` take it."""
        return (self.host, self.port)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def tsig_key(self, key: str | TsigKey) -> TsigKey:
        """`key` itself, or the key of that name this server was started with."""
        return key if isinstance(key, TsigKey) else self.tsig[key]

    # -- queries

    def query(
        self,
        qname: str,
        rdtype: dns.rdatatype.RdataType | str = dns.rdatatype.SOA,
        *,
        tcp: bool = False,
        key: str | TsigKey | None = None,
        timeout: float = 2.0,
    ) -> dns.message.Message:
        """Ask the server one question, over UDP unless `tcp`, TSIG-signed if `key`."""
        request = dns.message.make_query(qname, rdtype)
        if key is not None:
            request.use_tsig(self.tsig_key(key).dns_key)
        if tcp:
            return dns.query.tcp(request, self.host, timeout=timeout, port=self.port)
        return dns.query.udp(request, self.host, timeout=timeout, port=self.port)

    def soa_serial(self, zone: str, *, timeout: float = 2.0) -> int:
        """The SOA serial the server answers for `zone`; raises unless authoritative."""
        response = self.query(zone, dns.rdatatype.SOA, timeout=timeout)
        soa = response.get_rrset(
            response.answer, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA
        )
        if response.rcode() != dns.rcode.NOERROR or soa is None:
            rcode = dns.rcode.to_text(response.rcode())
            raise ServerError(f"soa_serial: zone={zone} {self!r} answered {rcode} without SOA")
        if not response.flags & dns.flags.AA:
            raise ServerError(f"soa_serial: zone={zone} {self!r} answered without AA")
        serial: int = soa[0].serial
        return serial

    def wait_for_serial(self, zone: str, serial: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until the server answers `zone` with SOA serial `serial` or newer."""
        deadline = time.monotonic() + timeout
        last: int | str = "no answer"
        # NSD keeps old server processes answering for a moment after a reload:
        # insist on several answers in a row with the new serial.
        in_a_row = 0
        while True:
            self._check_alive(f"wait_for_serial: zone={zone}")
            with contextlib.suppress(ServerError, dns.exception.DNSException, OSError):
                last = self.soa_serial(zone, timeout=_POLL_TIMEOUT)
                in_a_row = in_a_row + 1 if dns.serial.Serial(last) >= serial else 0
                if in_a_row >= 3:
                    return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"wait_for_serial: zone={zone} {self!r} still at {last} after "
                    f"{timeout:.0f} s, wanted {serial}\n{self.log_tail()}"
                )
            time.sleep(0.05)

    # -- changes

    def zone_path(self, zone: str) -> Path:
        """The master file the server loads for primary `zone`."""
        return self.workdir / "zones" / f"{_zone_name(zone)}.zone"

    def write_zone(self, zone: str, text: str) -> None:
        """Replace primary `zone`'s master file; call `reload()` next.

        The file's mtime moves forward by at least a second, so that servers
        that compare mtimes (NSD, BIND) see the change even within one second.
        """
        path = self.zone_path(zone)
        before = path.stat().st_mtime_ns
        path.write_text(text)
        mtime = max(time.time_ns(), before + 1_000_000_000)
        os.utime(path, ns=(mtime, mtime))

    def reload(self) -> None:
        """Make the server re-read changed zone files. Then `wait_for_serial()`."""
        self.process.send_signal(signal.SIGHUP)

    # -- lifecycle

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as err:
            return f"(no log: {err})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.log_path} (last {lines} lines) ---\n{tail}"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End the server: SIGTERM, wait up to `timeout` s, then SIGKILL. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        # The server led its own process group: take down any helper it left behind.
        if self.live_processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while self.live_processes():
                if time.monotonic() > deadline:
                    raise ServerError(f"stop: {self!r} left {self.live_processes()} running")
                time.sleep(0.01)
        for directory in self._cleanup_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self._cleanup_dirs.clear()

    def live_processes(self) -> list[int]:
        """PIDs of the server's process group still running (zombies are not)."""
        return _live_group_members(self.pid)

    def _check_alive(self, doing: str) -> None:
        code = self.process.poll()
        if code is None:
            return
        if self._port_taken():
            raise PortInUse(f"{doing}: {self!r} could not bind its port\n{self.log_tail()}")
        raise ServerError(f"{doing}: {self!r} exited with status {code}\n{self.log_tail()}")

    def _port_taken(self) -> bool:
        """Whether the log says the port was taken (Knot says so and keeps running)."""
        try:
            text = self.log_path.read_text(errors="replace").lower()
        except OSError:
            return False
        return "address in use" in text or "address already in use" in text

    def _wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll until every zone answers SOA authoritatively."""
        deadline = time.monotonic() + timeout
        pending = list(self.zones)
        while pending:
            self._check_alive("start")
            try:
                self.soa_serial(pending[0], timeout=_POLL_TIMEOUT)
            except (ServerError, dns.exception.DNSException, OSError):
                if self._port_taken():
                    raise PortInUse(
                        f"start: {self!r} could not bind its port\n{self.log_tail()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"start: {self!r} did not answer SOA for {pending[0]} "
                        f"within {timeout:.0f} s\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)
            else:
                pending.pop(0)

    @classmethod
    def _launch(
        cls,
        setup: _Setup,
        configure: Callable[[int], list[str]],
        port: int | None = None,
        timeout: float = START_TIMEOUT,
    ) -> Self:
        """Start the daemon on `port` and wait until every zone answers.

        `configure(port)` writes the config for that port and returns argv.
        Without a `port`, use a free one; if another process grabs it between
        free_port() and the server's bind, try again on a new one.
        """
        attempts = _PORT_ATTEMPTS if port is None else 1
        for attempt in range(attempts):
            chosen = free_port() if port is None else port
            argv = configure(chosen)
            with (setup.workdir / "server.log").open("wb") as log:
                process = subprocess.Popen(
                    argv,
                    cwd=setup.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            server = cls(setup.workdir, chosen, process, setup.zones, setup.tsig)
            try:
                server._wait_ready(timeout)
            except PortInUse:
                server.stop()
                if attempt + 1 == attempts:
                    raise
            except BaseException:
                server.stop()
                raise
            else:
                return server
        raise AssertionError("unreachable")


class DynamicServer(DnsServer):
    """A server that takes dynamic updates (RFC 2136) and can be a secondary: BIND, Knot."""

    @classmethod
    def start(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, ZoneSource],
        *,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        allow_update_key: str | None = None,
        notify: Sequence[Endpoint] = (),
        also_secondary_of: Mapping[str, Endpoint] | None = None,
        primary_key: TsigKey | None = None,
        port: int | None = None,
    ) -> Self:
        """Start as primary of `zones`: see `Bind.start`."""
        raise NotImplementedError

    @classmethod
    def start_secondary(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, Endpoint],
        *,
        key: TsigKey | None = None,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        notify: Sequence[Endpoint] = (),
        port: int | None = None,
    ) -> Self:
        """Start as secondary of `zones` (zone name -> primary (host, port)).

        Refresh queries and transfers are TSIG-signed with `key` when given;
        NOTIFY is accepted from each primary's address, signed or not. Returns
        once every zone has been transferred.
        """
        return cls.start(
            tmp_dir,
            {},
            tsig=tsig,
            allow_transfer_key=allow_transfer_key,
            notify=notify,
            also_secondary_of=zones,
            primary_key=key,
            port=port,
        )

    def nsupdate(
        self, commands: str, *, zone: str | None = None, key: str | TsigKey | None = None
    ) -> str:
        """Send a dynamic update with the nsupdate program; return its stdout.

        `commands` are nsupdate lines such as
        "update add x.example.com. 60 A 192.0.2.9"; the `server` and `zone`
        lines and the final `send` are added. `zone` defaults to the server's
        only zone. `key` is a TsigKey, or the name of one the server has.
        Raises ServerError with nsupdate's stderr if the update fails.
        """
        if zone is None:
            if len(self.zones) != 1:
                raise ServerError(f"nsupdate: {self!r} serves {len(self.zones)} zones: name one")
            zone = self.zones[0]
        lines = [f"server {self.host} {self.port}", f"zone {zone}", *commands.strip().splitlines()]
        if lines[-1].strip() != "send":
            lines.append("send")
        key_args = [] if key is None else ["-y", self.tsig_key(key).nsupdate_arg]
        # A reply can be late on a loaded CI machine (a primary's journal fsync;
        # CI once saw BIND answer nobody for 5 s): one more try with a longer
        # wait. Tests' updates are adds and deletes, which a second send leaves
        # as the first did.
        for wait in (5, 20):
            argv = [need_binary("nsupdate"), "-t", str(wait), *key_args]
            done = subprocess.run(
                argv,
                input="\n".join(lines) + "\n",
                capture_output=True,
                text=True,
                timeout=wait + 25,
            )
            said = done.stderr.strip() or done.stdout.strip()
            if done.returncode == 0 or "timed out" not in said:
                break
        if done.returncode != 0:
            raise ServerError(
                f"nsupdate: zone={zone} {self!r} exit {done.returncode}: {said}\n{self.log_tail()}"
            )
        return done.stdout


# --- BIND -----------------------------------------------------------------------


class Bind(DynamicServer):
    """ISC BIND 9 (`named -g`): a primary of dynamic zones, and/or a secondary."""

    program = "named"

    @classmethod
    def start(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, ZoneSource],
        *,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        allow_update_key: str | None = None,
        notify: Sequence[Endpoint] = (),
        also_secondary_of: Mapping[str, Endpoint] | None = None,
        primary_key: TsigKey | None = None,
        port: int | None = None,
        ixfr_from_differences: bool = True,
        dynamic: bool = True,
    ) -> Self:
        """Start named serving `zones` (zone name -> text or master file) as primary.

        Primary zones are `dynamic` (allow-update, with a journal), so IXFR
        works after `nsupdate()`; with `dynamic=False` edit them with
        `write_zone()` + `reload()` instead, and ixfr-from-differences makes
        the IXFR. Transfers and updates are open to anyone unless
        `allow_transfer_key` / `allow_update_key` name a key from `tsig`
        (name -> (algorithm, secret)): then only that key may. NOTIFY goes to
        the `notify` targets and nowhere else. `also_secondary_of` maps more
        zones to the primary they are transferred from, signed with
        `primary_key` if given. `port` defaults to a free one.
        """
        named = need_binary(cls.program)
        setup = _Setup.prepare(
            tmp_dir,
            zones,
            tsig=tsig,
            allow_transfer_key=allow_transfer_key,
            allow_update_key=allow_update_key,
            notify=notify,
            also_secondary_of=also_secondary_of,
            primary_key=primary_key,
        )

        def configure(port: int) -> list[str]:
            conf = setup.workdir / "named.conf"
            conf.write_text(_named_conf(setup, port, ixfr_from_differences, dynamic))
            return [named, "-g", "-4", "-n", "2", "-c", str(conf)]

        return cls._launch(setup, configure, port)


def _named_conf(setup: _Setup, port: int, ixfr_from_differences: bool, dynamic: bool) -> str:
    def acl(key: str | None) -> str:
        return "{ any; }" if key is None else f"{{ key {_quote(key)}; }}"

    if setup.notify:
        targets = " ".join(f"{host} port {target_port};" for host, target_port in setup.notify)
        notify = ["notify explicit;", f"also-notify {{ {targets} }};", "notify-delay 0;"]
    else:
        notify = ["notify no;"]

    out = [
        "options {",
        f"    directory {_quote(setup.workdir)};",
        f"    pid-file {_quote(setup.workdir / 'named.pid')};",
        f"    session-keyfile {_quote(setup.workdir / 'session.key')};",
        f"    managed-keys-directory {_quote(setup.workdir)};",
        f"    dump-file {_quote(setup.workdir / 'named_dump.db')};",
        f"    statistics-file {_quote(setup.workdir / 'named.stats')};",
        f"    listen-on port {port} {{ {LOOPBACK}; }};",
        "    listen-on-v6 { none; };",
        "    recursion no;",
        "    dnssec-validation no;",
        "    allow-query { any; };",
        "    notify no;",
        "};",
        "controls { };",  # no rndc: named is stopped and reloaded by signals
    ]
    for key in setup.tsig.values():
        out += [
            f"key {_quote(key.name)} {{",
            f"    algorithm {key.algorithm};",
            f"    secret {_quote(key.secret)};",
            "};",
        ]
    for zone, path in setup.primaries.items():
        out += [
            f"zone {_quote(zone)} {{",
            "    type primary;",
            f"    file {_quote(path)};",
            f"    allow-transfer {acl(setup.allow_transfer_key)};",
            f"    ixfr-from-differences {'yes' if ixfr_from_differences else 'no'};",
        ]
        if dynamic:
            out.append(f"    allow-update {acl(setup.allow_update_key)};")
        out += [f"    {line}" for line in notify]
        out.append("};")
    for zone, (host, primary_port) in setup.secondaries.items():
        signed = f" key {_quote(setup.primary_key.name)}" if setup.primary_key else ""
        out += [
            f"zone {_quote(zone)} {{",
            "    type secondary;",
            f"    primaries {{ {host} port {primary_port}{signed}; }};",
            f"    file {_quote(setup.secondary_file(zone))};",
            "    masterfile-format text;",
            f"    allow-notify {{ {host}; }};",
            f"    allow-transfer {acl(setup.allow_transfer_key)};",
            *(f"    {line}" for line in notify),
            "};",
        ]
    return "\n".join(out) + "\n"


# --- Knot -----------------------------------------------------------------------


class Knot(DynamicServer):
    """Knot DNS (`knotd`): a primary of zone files, and/or a secondary.

    Primary zones keep changes in the journal and never write them back to
    the zone file (zonefile-sync: -1, zonefile-load: difference,
    journal-content: changes), so both `nsupdate()` and `write_zone()` +
    `reload()` yield IXFR.
    """

    program = "knotd"
    control_socket: Path
    """The knotc control socket (see `knotc()`)."""

    @classmethod
    def start(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, ZoneSource],
        *,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        allow_update_key: str | None = None,
        notify: Sequence[Endpoint] = (),
        also_secondary_of: Mapping[str, Endpoint] | None = None,
        primary_key: TsigKey | None = None,
        port: int | None = None,
        catalog: str | None = None,
    ) -> Self:
        """Start knotd serving `zones` as primary; arguments as for `Bind.start`.
        `catalog`: also generate a catalog zone of that name (RFC 9432, Knot's
        `catalog-role: generate`) listing every primary zone, NOTIFYing `notify` too;
        Knot answers queries for it over TCP only (it is not waited for)."""
        knotd = need_binary(cls.program)
        setup = _Setup.prepare(
            tmp_dir,
            zones,
            tsig=tsig,
            allow_transfer_key=allow_transfer_key,
            allow_update_key=allow_update_key,
            notify=notify,
            also_secondary_of=also_secondary_of,
            primary_key=primary_key,
        )
        (setup.workdir / "db").mkdir(exist_ok=True)
        control_socket = setup.workdir / "knot.sock"
        short_dir: Path | None = None
        if len(str(control_socket)) > _MAX_SOCKET_PATH:
            short_dir = Path(tempfile.mkdtemp(prefix="secdns-knot-"))
            control_socket = short_dir / "knot.sock"

        def configure(port: int) -> list[str]:
            conf = setup.workdir / "knot.conf"
            conf.write_text(_knot_conf(setup, port, control_socket, catalog))
            return [knotd, "-c", str(conf)]

        try:
            server = cls._launch(setup, configure, port)
        except BaseException:
            if short_dir is not None:
                shutil.rmtree(short_dir, ignore_errors=True)
            raise
        server.control_socket = control_socket
        if short_dir is not None:
            server._cleanup_dirs.append(short_dir)
        return server

    def knotc(self, *args: str) -> str:
        """Run `knotc -b ARGS` (blocking) on this server's control socket; return stdout."""
        argv = [need_binary("knotc"), "-s", str(self.control_socket), "-b", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise ServerError(
                f"knotc {' '.join(args)}: {self!r} exit {done.returncode}: "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        return done.stdout

    def reload(self) -> None:
        """Re-read changed zone files (knotc zone-reload); returns when done."""
        self.knotc("zone-reload")


def _knot_conf(setup: _Setup, port: int, control_socket: Path, catalog: str | None = None) -> str:
    loopback = "[127.0.0.0/8, ::1]"

    def acl(acl_id: str, action: str, address: str, key: str | None) -> list[str]:
        entry = [f"  - id: {acl_id}", f"    address: {address}", f"    action: {action}"]
        if key is not None:
            entry.append(f"    key: {_quote(key)}")
        return entry

    out = [
        "server:",
        f"    rundir: {_quote(setup.workdir)}",
        f"    pidfile: {_quote(setup.workdir / 'knot.pid')}",
        "    user: root:root",
        f"    listen: {LOOPBACK}@{port}",
        "    udp-workers: 1",
        "    tcp-workers: 1",
        "    background-workers: 1",
        "",
        "control:",
        f"    listen: {_quote(control_socket)}",
        "",
        "log:",
        "  - target: stderr",
        "    any: info",
        "",
        "database:",
        f"    storage: {_quote(setup.workdir / 'db')}",
        "    journal-db-max-size: 64M",
        "    kasp-db-max-size: 16M",
        "    timer-db-max-size: 16M",
        "    catalog-db-max-size: 16M",
        "",
    ]
    if setup.tsig:
        out.append("key:")
        for key in setup.tsig.values():
            out += [
                f"  - id: {_quote(key.name)}",
                f"    algorithm: {key.algorithm}",
                f"    secret: {key.secret}",
            ]
        out.append("")

    notify_ids = [f"notify{i}" for i in range(len(setup.notify))]
    primary_ids = {zone: f"primary{i}" for i, zone in enumerate(setup.secondaries)}
    primary_key = setup.primary_key.name if setup.primary_key else None
    if notify_ids or primary_ids:
        out.append("remote:")
        for remote_id, (host, target_port) in zip(notify_ids, setup.notify, strict=True):
            out += [f"  - id: {remote_id}", f"    address: {host}@{target_port}"]
        for zone, remote_id in primary_ids.items():
            host, primary_port = setup.secondaries[zone]
            out += [f"  - id: {remote_id}", f"    address: {host}@{primary_port}"]
            if primary_key is not None:
                out.append(f"    key: {_quote(primary_key)}")
        out.append("")

    out.append("acl:")
    out += acl("transfer", "transfer", loopback, setup.allow_transfer_key)
    out += acl("update", "update", loopback, setup.allow_update_key)
    for zone, remote_id in primary_ids.items():
        host, _ = setup.secondaries[zone]
        # NOTIFY only prompts a (signed) SOA query, so the address is enough.
        out += acl(f"notify-from-{remote_id}", "notify", host, None)
    out.append("")

    if not setup.zones:
        return "\n".join(out)
    notify = [f"    notify: [{', '.join(notify_ids)}]"] if notify_ids else []
    out += [
        "template:",
        "  - id: default",
        f"    storage: {_quote(setup.workdir)}",
        "    semantic-checks: off",
        "    journal-content: changes",
        "    serial-policy: increment",
        "",
        "zone:",
    ]
    member = ["    catalog-role: member", f"    catalog-zone: {_quote(catalog)}"] if catalog else []
    if catalog is not None:
        out += [
            f"  - domain: {_quote(catalog)}",
            "    catalog-role: generate",
            "    serial-policy: unixtime",  # (Knot: a generated catalog must)
            "    acl: [transfer]",
            *notify,
        ]
    for zone, path in setup.primaries.items():
        out += [
            f"  - domain: {_quote(zone)}",
            f"    file: {_quote(path)}",
            "    zonefile-sync: -1",
            "    zonefile-load: difference",
            "    acl: [transfer, update]",
            *member,
            *notify,
        ]
    for zone, remote_id in primary_ids.items():
        out += [
            f"  - domain: {_quote(zone)}",
            f"    file: {_quote(setup.secondary_file(zone))}",
            f"    master: {remote_id}",
            "    zonefile-sync: 0",
            "    zonefile-load: whole",
            f"    acl: [transfer, notify-from-{remote_id}]",
            *notify,
        ]
    return "\n".join(out) + "\n"


# --- NSD ------------------------------------------------------------------------


class Nsd(DnsServer):
    """NLnet Labs NSD (`nsd -d`): a primary of zone files, and/or a secondary.

    NSD takes no dynamic updates: `write_zone()` with a higher serial, then
    `reload()` (SIGHUP) and `wait_for_serial()`. With store-ixfr and
    create-ixfr on, NSD serves the difference as IXFR.

    As a secondary (`start_secondary()`) it is set up as NSD's nsd.conf(5)
    sets one up: `request-xfr: HOST@PORT KEY|NOKEY` (no AXFR option, so NSD
    asks IXFR over TCP once it has a copy, and AXFR for the first one) and
    `allow-notify: HOST KEY|NOKEY`, the zone written to `secondary/ZONE.zone`.
    """

    program = "nsd"

    @classmethod
    def start(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, ZoneSource],
        *,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        notify: Sequence[Endpoint] = (),
        also_secondary_of: Mapping[str, Endpoint] | None = None,
        primary_key: TsigKey | None = None,
        port: int | None = None,
        timeout: float = START_TIMEOUT,
    ) -> Self:
        """Start nsd serving `zones` as primary; arguments as for `Bind.start`.
        `timeout`: seconds to wait for every zone to answer SOA."""
        nsd = need_binary(cls.program)
        setup = _Setup.prepare(
            tmp_dir,
            zones,
            tsig=tsig,
            allow_transfer_key=allow_transfer_key,
            notify=notify,
            also_secondary_of=also_secondary_of,
            primary_key=primary_key,
        )

        def configure(port: int) -> list[str]:
            conf = setup.workdir / "nsd.conf"
            conf.write_text(_nsd_conf(setup, port))
            return [nsd, "-d", "-c", str(conf)]

        return cls._launch(setup, configure, port, timeout)

    @classmethod
    def start_secondary(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, Endpoint],
        *,
        key: TsigKey | None = None,
        port: int | None = None,
        timeout: float = START_TIMEOUT,
    ) -> Self:
        """Start as secondary of `zones` (zone -> primary); returns once each is transferred.

        With `key`, transfers are signed with it and NOTIFY must be signed with
        it too (`allow-notify: HOST KEY`, NSD's usual setup); without, NOTIFY
        is accepted unsigned from each primary's address. A zone not transferred
        within `timeout` seconds raises ServerError, NSD stopped.
        """
        return cls.start(
            tmp_dir, {}, also_secondary_of=zones, primary_key=key, port=port, timeout=timeout
        )


def _nsd_conf(setup: _Setup, port: int) -> str:
    workdir = setup.workdir
    # A secondary logs a NOTIFY it refuses ("no acl matches") at verbosity 2 only.
    verbosity = 2 if setup.secondaries else 1
    out = [
        "server:",
        f"    ip-address: {LOOPBACK}@{port}",
        f"    port: {port}",
        "    do-ip6: no",
        "    reuseport: no",
        "    server-count: 1",
        "    rrl-ratelimit: 0",  # no response rate limiting: tests and benchmarks flood it
        f"    verbosity: {verbosity}",
        '    username: ""',
        '    chroot: ""',
        f"    zonesdir: {_quote(workdir)}",
        f"    pidfile: {_quote(workdir / 'nsd.pid')}",
        '    database: ""',
        f"    zonelistfile: {_quote(workdir / 'zone.list')}",
        f"    xfrdfile: {_quote(workdir / 'xfrd.state')}",
        f"    xfrdir: {_quote(workdir)}",
        f"    cookie-secret-file: {_quote(workdir / 'cookiesecrets.txt')}",
        "",
        "remote-control:",
        "    control-enable: no",  # reload is SIGHUP, stop is SIGTERM
        "",
    ]
    for key in setup.tsig.values():
        out += [
            "key:",
            f"    name: {_quote(key.name)}",
            f"    algorithm: {key.algorithm}",
            f"    secret: {_quote(key.secret)}",
            "",
        ]
    transfer_key = _quote(setup.allow_transfer_key) if setup.allow_transfer_key else "NOKEY"
    for zone, path in setup.primaries.items():
        out += [
            "zone:",
            f"    name: {_quote(zone)}",
            f"    zonefile: {_quote(path)}",
            f"    provide-xfr: 127.0.0.0/8 {transfer_key}",
            f"    provide-xfr: ::1 {transfer_key}",
            "    store-ixfr: yes",
            "    create-ixfr: yes",
            *(f"    notify: {host}@{target_port} NOKEY" for host, target_port in setup.notify),
            "",
        ]
    primary_key = _quote(setup.primary_key.name) if setup.primary_key else "NOKEY"
    for zone, (host, primary_port) in setup.secondaries.items():
        out += [
            "zone:",
            f"    name: {_quote(zone)}",
            f"    zonefile: {_quote(setup.secondary_file(zone))}",
            f"    request-xfr: {host}@{primary_port} {primary_key}",
            f"    allow-notify: {host} {primary_key}",
            f"    provide-xfr: 127.0.0.0/8 {transfer_key}",
            *(f"    notify: {host}@{target_port} NOKEY" for host, target_port in setup.notify),
            "",
        ]
    return "\n".join(out)


# --- PowerDNS -------------------------------------------------------------------


class PowerDns(DnsServer):
    """PowerDNS Authoritative (`pdns_server`, gsqlite3 backend): a primary and/or a secondary.

    Zones live in an SQLite database made from the Debian schema and filled with
    `pdnsutil`; caches are off, so a change is visible at once. PowerDNS keeps no
    journal: it answers IXFR with the SOA alone when the client is current, and
    otherwise with the whole zone AXFR-style (the SOA alone in the first message).
    Change a primary zone with `write_zone()` then `reload()` (`pdnsutil load-zone`).
    TSIG keys are imported with `pdnsutil`; with `allow_transfer_key` only that key
    may transfer (allow-axfr-ips is emptied).
    """

    program = "pdns_server"
    control_dir: Path
    """The directory of the pdns_control socket (see `control()`)."""

    @classmethod
    def start(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, ZoneSource],
        *,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        notify: Sequence[Endpoint] = (),
        also_secondary_of: Mapping[str, Endpoint] | None = None,
        primary_key: TsigKey | None = None,
        port: int | None = None,
        cache_ttl: int = 0,
    ) -> Self:
        """Start pdns_server serving `zones` as primary; arguments as for `Bind.start`.
        `cache_ttl`: seconds its packet cache keeps an answer (PowerDNS's default is 20;
        off unless given: a change is visible at once)."""
        pdns = need_binary(cls.program)
        setup = _Setup.prepare(
            tmp_dir,
            zones,
            tsig=tsig,
            allow_transfer_key=allow_transfer_key,
            notify=notify,
            also_secondary_of=also_secondary_of,
            primary_key=primary_key,
        )
        control_dir = setup.workdir
        short_dir: Path | None = None
        if len(str(control_dir / "pdns.controlsocket")) > _MAX_SOCKET_PATH:
            short_dir = Path(tempfile.mkdtemp(prefix="secdns-pdns-"))
            control_dir = short_dir
        (setup.workdir / "pdns.conf").write_text(_pdns_conf(setup, control_dir, cache_ttl))
        try:
            _pdns_database(setup)

            def configure(port: int) -> list[str]:
                return [pdns, f"--config-dir={setup.workdir}", f"--local-port={port}"]

            server = cls._launch(setup, configure, port)
        except BaseException:
            if short_dir is not None:
                shutil.rmtree(short_dir, ignore_errors=True)
            raise
        server.control_dir = control_dir
        if short_dir is not None:
            server._cleanup_dirs.append(short_dir)
        return server

    @classmethod
    def start_secondary(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, Endpoint],
        *,
        key: TsigKey | None = None,
        notify: Sequence[Endpoint] = (),
        port: int | None = None,
    ) -> Self:
        """Start as secondary of `zones` (zone -> primary); returns once each is transferred.

        Transfers are TSIG-signed with `key` when given; NOTIFY is accepted from
        127.0.0.0/8. `control("retrieve", zone)` asks for a refresh at once.
        """
        return cls.start(
            tmp_dir, {}, also_secondary_of=zones, primary_key=key, notify=notify, port=port
        )

    def control(self, *args: str) -> str:
        """Run `pdns_control ARGS` against this server; return its stdout."""
        argv = [need_binary("pdns_control"), f"--socket-dir={self.control_dir}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise ServerError(
                f"pdns_control {' '.join(args)}: {self!r} exit {done.returncode}: "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        return done.stdout

    def pdnsutil(self, *args: str) -> str:
        """Run `pdnsutil ARGS` on this server's database; return its stdout."""
        return _pdnsutil(self.workdir, *args)

    def reload(self) -> None:
        """Load every primary zone's master file again (pdnsutil load-zone)."""
        for zone in self.zones:
            path = self.zone_path(zone)
            if path.exists():
                self.pdnsutil("load-zone", zone, str(path))


def _pdnsutil(workdir: Path, *args: str) -> str:
    argv = [need_binary("pdnsutil"), f"--config-dir={workdir}", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise ServerError(
            f"pdnsutil {' '.join(args)}: exit {done.returncode}: "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def _pdns_database(setup: _Setup) -> None:
    """Create the gsqlite3 database and load zones and keys with pdnsutil."""
    import sqlite3

    schema = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
    if not schema.exists():
        _missing("pdns-backend-sqlite3 (its schema)")
    with contextlib.closing(sqlite3.connect(setup.workdir / "pdns.db")) as db:
        db.executescript(schema.read_text())
        db.commit()
    for key in setup.tsig.values():
        _pdnsutil(setup.workdir, "import-tsig-key", key.name, key.algorithm, key.secret)
    for zone, path in setup.primaries.items():
        _pdnsutil(setup.workdir, "load-zone", zone, str(path))
        _pdnsutil(setup.workdir, "set-kind", zone, "primary")
        if setup.allow_transfer_key is not None:
            _pdnsutil(setup.workdir, "activate-tsig-key", zone, setup.allow_transfer_key, "primary")
    for zone, (host, primary_port) in setup.secondaries.items():
        _pdnsutil(setup.workdir, "create-secondary-zone", zone, f"{host}:{primary_port}")
        if setup.primary_key is not None:
            _pdnsutil(setup.workdir, "activate-tsig-key", zone, setup.primary_key.name, "secondary")


def _pdns_conf(setup: _Setup, control_dir: Path, cache_ttl: int = 0) -> str:
    also_notify = ",".join(f"{host}:{target_port}" for host, target_port in setup.notify)
    out = [
        "launch=gsqlite3",
        f"gsqlite3-database={setup.workdir / 'pdns.db'}",
        f"local-address={LOOPBACK}",
        f"socket-dir={control_dir}",
        "daemon=no",
        "guardian=no",
        "disable-syslog=yes",
        "loglevel=6",
        "security-poll-suffix=",  # no security polling: nothing leaves the machine
        "primary=yes",
        "secondary=yes",
        f"allow-axfr-ips={'' if setup.allow_transfer_key else '127.0.0.0/8'}",
        "allow-notify-from=127.0.0.0/8",
        f"also-notify={also_notify}",
        "only-notify=",  # NOTIFY goes to also-notify only, never to the zone's NS
        f"cache-ttl={cache_ttl}",
        f"query-cache-ttl={cache_ttl}",
        "negquery-cache-ttl=0",
        "zone-cache-refresh-interval=0",
        "consistent-backends=yes",
        "xfr-cycle-interval=1",
        "distributor-threads=1",
        "receiver-threads=1",
    ]
    return "\n".join(out) + "\n"
