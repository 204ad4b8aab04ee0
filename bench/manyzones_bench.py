#!/usr/bin/env python3
"""Benchmark ``secdns serve`` with many small secondary zones against a Knot secondary.

1. One zone of ~--records records (default 20) from the shared generator
   (``--genzone``, ../shared/genzone.py), written out --zones times (default
   10,000) under the names z0.many.test, z1.many.test, ...; one BIND primary
   serves them all and notifies both secondaries.  Its ``transfers-out`` is
   raised to --transfers-out (default 100; BIND's own default of 10 answers
   SERVFAIL past it), so that the primary limits neither secondary.
2. Cold start: ``secdns serve`` with a generated config of every zone (an empty
   store), timed from its start until every zone answers the primary's serial;
   then a Knot secondary of the same zones, configured as tests/servers.py does
   (one UDP, one TCP and one background worker, ``zonefile-sync: 0``), timed the
   same way by the same poller (:class:`Poller`: one UDP socket, 200 queries in
   flight, passes until every zone answers the serial; one extra pass is timed on
   its own and printed, so the poller's share is visible).  secdns runs twice per
   round (``--store-sync both``, the default): with ``store_sync = "fsync"`` (its
   default, labelled secdns) and ``"none"`` (secdns-nosync: the same durability as
   Knot's ``zonefile-sync``, which renames its zone files unsynced: the equal work).
3. Restart with the store (Knot: its database and zone files) in place: the
   same times again.
4. Per start: the server's CPU seconds (user + system, /proc) at the moment every
   zone was served, and its memory (PSS) then, total and per zone.
5. ``--storm``: the refresh-storm bound instead (no Knot): a BIND primary whose zones
   can be edited (not dynamic; NOTIFYs not paced: ``notify-rate``), and ``secdns serve``
   with ``[server] concurrency`` (--concurrency, default its own) in three storms where
   every zone's check falls due at once: the cold start; a restart with the store a
   refresh interval old (SOA refresh --storm-refresh, default 30 s) and the primary one
   serial ahead; and a NOTIFY of every zone while it runs (the primary's serials moved
   together).  Per storm: seconds until every zone answers the new serial, serve's CPU,
   and the peak of transfers at once as the primary saw them: from BIND's own log
   (``AXFR/IXFR started`` and ``ended`` lines, in order) and from sampling its
   established connections (``ss``); both can read a little high (a BIND thread logs an
   ``ended`` after another's next ``started``; the primary's side of a connection stays
   established a moment after secdns closed it), so the listing also counts secdns's
   side (never past the bound here), and the exact count is tests/test_scale.py's.
6. ``--floor``: beside the starts, each round, :mod:`axfr_floor` (bench/axfr_floor.py):
   a bare Python client that only transfers every zone (the same concurrency, plain
   asyncio sockets, nothing checked, built, stored or served), and again decoding each
   message with secdns's decoder: how much of Knot's whole cold start the transfers
   alone take from Python, so that the rest of secdns's time can be told apart.
7. ``--silent N``: N more zones in both secondaries' configs whose primary takes
   connections and datagrams and never answers (tests/fakeprimary.py
   ``silent_primary``: down behind a firewall that drops, or hung); the starts are
   still timed until every healthy zone answers, each secondary with its own
   timeouts as it ships (secdns: ``[server] timeout`` 10 s and its unreachable
   cache; Knot: its own); the connections the silent primary took are counted.
8. ``--catalog``: the zones are the members of a catalog zone (RFC 9432) the primary
   serves (version 2, one PTR a member), and both secondaries are given only that
   catalog: secdns a ``[[catalog]]``, Knot ``catalog-role: interpret`` with a member
   template like its zones above; the starts are timed until every member answers.
Medians are taken over --repeat runs (default 1: each start is one run of the
whole set, a new store each round).
Prints every reference command line and the ratios; writes bench/out/manyzones.json.

    python bench/manyzones_bench.py [--zones 10000] [--records 20] [--repeat 1] [--genzone PATH]
        [--store-sync fsync|none|both] [--before DIR] [--profile DIR | --cprofile DIR] [--floor]
        [--silent N]
    python bench/manyzones_bench.py --zones 300     # the small version
    python bench/manyzones_bench.py --zones 2000 --catalog   # members of a catalog
    python bench/manyzones_bench.py --storm [--concurrency 8] [--storm-refresh 30] [--before DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import dns.zone  # noqa: E402
import tomli_w  # noqa: E402
from fakeprimary import silent_primary  # noqa: E402
from measure import (  # noqa: E402
    CLOCK_TICKS,
    add_genzone_option,
    genzone,
    group_cpu,
    group_pss_mib,
    process_cpu,
    show_reference,
)
from servers import (  # noqa: E402
    Bind,
    ServerError,
    _knot_conf,
    _live_group_members,
    _Setup,
    free_port,
    need_binary,
)

from secdns.config.values import DEFAULT_CONCURRENCY  # noqa: E402

TEMPLATE = "template.invalid"
SERIAL = 2024060101
CATALOG = "many.catalog.test"


def zone_names(count: int) -> list[str]:
    return [f"z{i}.many.test" for i in range(count)]


def zone_texts(template: str, names: list[str]) -> dict[str, str]:
    return {name: template.replace(f"{TEMPLATE}.", f"{name}.") for name in names}


def catalog_text(names: list[str]) -> str:
    """A version 2 catalog (RFC 9432) of ``names``: what ``--catalog`` serves."""
    soa = f"@ SOA invalid. invalid. {SERIAL} 3600 600 2147483646 0"
    lines = [f"$ORIGIN {CATALOG}.", "$TTL 0", soa, "@ NS invalid.", 'version TXT "2"']
    lines += [f"m{index}.zones PTR {name}." for index, name in enumerate(names)]
    return "\n".join(lines) + "\n"


class Poller:
    """Ask every zone's SOA over UDP, many queries in flight, until each answers ``serial``.

    One non-blocking socket, up to ``window`` queries outstanding, the query wire
    built once per zone and the serial read straight from the reply's SOA: a pass
    over 10,000 served zones takes a fraction of a second (printed on its own), so
    the figure is the server's, not the poller's.  The sequential dnspython poller
    this replaced took seconds per pass.  While zones are still coming, the poller
    asks the unserved zones a chunk at a time (``window``), and after a chunk not
    wholly served only ``probe`` of them every ``pause`` seconds: asking every pending
    zone again and again would load the server it measures (10,000 queries a pass).
    The same poller times both servers.
    """

    def __init__(
        self,
        port: int,
        names: list[str],
        window: int = 200,
        probe: int = 20,
        pause: float = 0.05,
    ) -> None:
        self.port = port
        self.window = window
        self.probe = probe
        self.pause = pause
        self.questions = {name: _question(name) for name in names}
        self.queries = 0  # asked during the last wait()
        self.primary_cpu = 0.0  # the primary's CPU seconds during the last wait()
        self.poller_cpu = 0.0  # this poller's own (its thread's)

    primary_pid: int | None = None
    """The primary's process (set once started): its CPU is counted over each wait()."""

    def wait(
        self, serial: int, timeout: float, *, proc: subprocess.Popen[bytes] | None = None
    ) -> float:
        """Seconds until every zone answered ``serial`` (raises SystemExit after ``timeout``)."""
        start = time.perf_counter()
        self.queries = 0
        primary_began = process_cpu(self.primary_pid) if self.primary_pid else 0.0
        poller_began = time.thread_time()
        try:
            return self._wait(serial, timeout, proc, start)
        finally:
            if self.primary_pid:
                self.primary_cpu = process_cpu(self.primary_pid) - primary_began
            self.poller_cpu = time.thread_time() - poller_began

    def _wait(
        self, serial: int, timeout: float, proc: subprocess.Popen[bytes] | None, start: float
    ) -> float:
        pending = list(self.questions)
        size = self.probe
        while pending:
            chunk = {name: self.questions[name] for name in pending[:size]}
            self.queries += len(chunk)
            served = set(self.served(chunk, serial))
            if served:
                pending = [name for name in pending if name not in served]
            if len(served) == len(chunk):  # all there: on to the next chunk at once
                size = self.window
                continue
            size = self.probe
            if proc is not None and proc.poll() is not None:
                raise SystemExit(
                    f"the server (pid {proc.pid}) exited with {len(pending)} zones unserved"
                )
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"{len(pending)} zones not served after {timeout:.0f} s")
            time.sleep(self.pause)
        return time.perf_counter() - start

    def one_pass(self, serial: int) -> tuple[float, int]:
        """One pass over every zone on its own: its seconds and how many answered ``serial``."""
        began = time.perf_counter()
        served = self.served(dict(self.questions), serial)
        return time.perf_counter() - began, len(served)

    def served(self, questions: dict[str, bytes], serial: int, wait: float = 0.1) -> list[str]:
        """Ask each question once; the names that answered NOERROR with ``serial``."""
        order = list(questions)
        by_id: dict[int, str] = {}
        found: list[str] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.connect(("127.0.0.1", self.port))
            sock.setblocking(False)
            sent = 0
            last = time.perf_counter()
            while sent < len(order) or by_id:
                while sent < len(order) and len(by_id) < self.window:
                    query_id = sent & 0xFFFF
                    if query_id in by_id:  # more than 65,536 names: wait for that id's answer
                        break
                    name = order[sent]
                    sent += 1
                    try:
                        sock.send(struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0) + questions[name])
                    except ConnectionRefusedError:  # not listening yet (an ICMP came back)
                        continue
                    by_id[query_id] = name
                    last = time.perf_counter()
                ready, _, _ = select.select([sock], [], [], 0.05)
                if ready:
                    while True:
                        try:
                            reply = sock.recv(4096)
                        except (BlockingIOError, ConnectionRefusedError):
                            break
                        name = by_id.get(struct.unpack_from("!H", reply)[0], "")
                        if not name or not reply.startswith(questions[name], 12):
                            continue
                        del by_id[struct.unpack_from("!H", reply)[0]]
                        if _reply_serial(reply, 12 + len(questions[name])) == serial:
                            found.append(name)
                        last = time.perf_counter()
                elif time.perf_counter() - last > wait:  # the rest were lost or unanswered
                    by_id.clear()
        return found


def _question(name: str) -> bytes:
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.rstrip(".").split("."))
    return labels + b"\0" + struct.pack("!HH", 6, 1)  # SOA IN


def _reply_serial(reply: bytes, offset: int) -> int | None:
    """The serial of the first answer of a NOERROR reply whose answer is a SOA, else None."""
    flags, _qd, ancount = struct.unpack_from("!HHH", reply, 2)
    if flags & 0x8000 == 0 or flags & 0xF != 0 or ancount == 0:
        return None
    # skip the answer's owner name (a pointer, or labels ending in one or in the root)
    while offset < len(reply):
        length = reply[offset]
        if length >= 0xC0:
            offset += 2
            break
        offset += 1 + length
        if length == 0:
            break
    rtype, _cls, _ttl, rdlength = struct.unpack_from("!HHIH", reply, offset)
    if rtype != 6:
        return None
    end = offset + 10 + rdlength
    return int(struct.unpack_from("!I", reply, end - 20)[0])


def argv_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def cpu_split(pid: int) -> tuple[float, float, float, float]:
    """The process's user and system seconds, and its main thread's."""

    def ticks(stat: Path) -> tuple[int, int]:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])

    user, system = ticks(Path(f"/proc/{pid}/stat"))
    main_user, main_system = ticks(Path(f"/proc/{pid}/task/{pid}/stat"))
    return tuple(t / CLOCK_TICKS for t in (user, system, main_user, main_system))  # type: ignore[return-value]


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each of the process's threads by name (threads of
    one name summed; the main thread as "main"): where a start's CPU went."""
    seconds: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = "main" if task.name == str(pid) else stat[stat.index("(") + 1 : stat.rindex(")")]
        name = name.rstrip("0123456789_")  # store_0, asyncio_3: one entry per kind
        fields = stat.rsplit(")", 1)[1].split()
        spent = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        seconds[name] = seconds.get(name, 0.0) + spent
    return seconds


def create_cost(directory: Path, files: int = 200) -> float:
    """Microseconds of CPU to create one empty file in a new directory beside the
    servers' (the files are left: removing them would slow the next creations).

    On this machine's ext4 (no journal) creating a file cost 30 to 900 us from one
    minute to the next: each creation steps over the inodes freed in the last ~30 s
    whose table blocks are still dirty (``recently_deleted()``, seen with perf),
    so whatever removed many files just before (a bench's clean-up, another test
    suite) slows every server that writes a file a zone.  Printed before each start."""
    directory.mkdir(parents=True)
    began = time.process_time()
    for index in range(files):
        os.close(os.open(directory / f"f{index}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return (time.process_time() - began) / files * 1e6


def zone_files(directory: Path) -> int:
    """The zone files in ``directory`` now (written whole: temporary files not counted)."""
    try:
        with os.scandir(directory) as scan:
            return sum(1 for e in scan if e.name.endswith(".zone") and not e.name.startswith("."))
    except OSError:
        return 0


def measure_start(
    label: str,
    phase: str,
    proc: subprocess.Popen[bytes],
    poller: Poller,
    timeout: float,
    files: Path | None = None,
) -> dict[str, float]:
    """Time ``proc`` (started just now) until every zone answers; its CPU, memory, one pass.
    ``files``: the directory of its zone files, counted once every zone answers and
    again when they are all written (both servers write them behind their answers)."""
    found = {phase: poller.wait(SERIAL, timeout, proc=proc)}
    if files is not None:  # (a restart finds them all there: counted at a cold start only)
        found[f"{phase}_files_at_served"] = zone_files(files)
    # the server and its children (secdns forks helpers for large zones; Knot: none)
    # (with the children it waited for: secdns ends its transfer process after a cold start)
    found[f"{phase}_cpu_s"] = group_cpu(_live_group_members(proc.pid), children=True)
    split = cpu_split(proc.pid)
    threads = thread_cpu(proc.pid)
    for member in _live_group_members(proc.pid):
        if member != proc.pid:
            threads["child process"] = threads.get("child process", 0.0) + process_cpu(member)
    ended = process_cpu(proc.pid, children=True) - process_cpu(proc.pid)
    if ended > 0:  # children it has waited for (secdns: its cold start's transfer process)
        threads["children ended"] = ended
    for key, seconds in zip(("user", "sys", "main_user", "main_sys"), split, strict=True):
        found[f"{phase}_{key}_s"] = seconds
    found[f"{phase}_queries"] = poller.queries
    found[f"{phase}_primary_cpu_s"] = poller.primary_cpu
    found[f"{phase}_poller_cpu_s"] = poller.poller_cpu
    found[f"{phase}_rss_mib"] = group_pss_mib(_live_group_members(proc.pid))
    if files is not None:
        began, total = time.perf_counter(), len(poller.questions)
        while zone_files(files) < total and time.perf_counter() - began < 60:
            time.sleep(0.01)
        found[f"{phase}_files_all_s"] = found[phase] + time.perf_counter() - began
    one, answered = poller.one_pass(SERIAL)
    found[f"{phase}_poll_pass_s"] = one
    print(
        f"  {label} {phase}: all served after {found[phase]:.2f} s "
        f"(server CPU {found[f'{phase}_cpu_s']:.2f} s: user {split[0]:.2f}, system {split[1]:.2f}, "
        f"main thread {split[2]:.2f} + {split[3]:.2f}; {poller.queries} polling queries; "
        f"primary CPU {poller.primary_cpu:.2f} s, poller {poller.poller_cpu:.2f} s); "
        f"one more pass on its own {one:.3f} s ({answered} answered); threads: "
        + ", ".join(f"{name} {spent:.2f}" for name, spent in sorted(threads.items())),
        file=sys.stderr,
    )
    if files is not None:
        print(
            f"  {label} {phase}: {found[f'{phase}_files_at_served']:.0f} zone files written "
            f"when all were served; all written after {found[f'{phase}_files_all_s']:.2f} s",
            file=sys.stderr,
        )
    return found


def secdns_round(
    workdir: Path,
    port: int,
    primary: str,
    names: list[str],
    args: argparse.Namespace,
    *,
    label: str = "secdns",
    path: Path | None = None,
    store_sync: str | None = None,
) -> dict[str, float]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "secdns.toml"
    server: dict[str, object] = {
        "directory": str(workdir / "store"),
        "listen": [f"127.0.0.1:{port}"],
    }
    if args.concurrency is not None:
        server["concurrency"] = args.concurrency
    if store_sync is not None:  # (left out: the default, and what --before knows)
        server["store_sync"] = store_sync
    zones = [{"name": name, "primaries": [primary]} for name in names]
    zones += [{"name": name, "primaries": [args.silent_at]} for name in args.silent_zones]
    doc: dict[str, object] = {"server": server, "zone": zones}
    if args.catalog:  # (the members come from the catalog alone)
        doc = {"server": server, "catalog": [{"name": CATALOG, "primaries": [primary]}]}
    config.write_text(tomli_w.dumps(doc))
    argv = [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"]
    show_reference(label, argv)
    env = secdns_env(path, workdir / "pycache")
    warm_pycache(env, path or ROOT)
    poller = Poller(port, names)
    found: dict[str, float] = {}
    for phase in ("cold", "restart"):
        # ``python -m`` imports from its working directory first: run in the directory
        # of the package meant (this checkout's, or --before's), whatever the caller's
        run = argv
        if args.cprofile is not None and label != "before":
            args.cprofile.mkdir(parents=True, exist_ok=True)
            out = args.cprofile / f"{label}-{workdir.name}-{phase}.prof"
            run = [argv[0], "-m", "cProfile", "-o", str(out), *argv[1:]]
            print(f"  cProfile of the main thread: {out}", file=sys.stderr)
        creating = create_cost(workdir / f"probe-{phase}")
        print(f"  {label} {phase}: creating a file costs {creating:.0f} us now", file=sys.stderr)
        proc = subprocess.Popen(run, start_new_session=True, env=env, cwd=path or ROOT)
        spy = profiler(args.profile, label, phase, proc.pid, workdir)
        try:
            files = workdir / "store" if phase == "cold" else None
            found |= measure_start(label, phase, proc, poller, args.timeout, files=files)
            found[f"{phase}_create_us"] = creating
        finally:
            proc.terminate()
            proc.wait()
            if spy is not None:
                spy.wait()
    return found


def profiler(
    where: Path | None, label: str, phase: str, pid: int, workdir: Path
) -> subprocess.Popen[bytes] | None:
    """With --profile: py-spy sampling every busy thread of this secdns's cold start and
    restart (not pausing it, 200 Hz) into ``where``/``label``-``workdir``-``phase``.txt
    (collapsed stacks).  Its figures then include py-spy's own cost: profile and measure
    in separate runs."""
    if where is None:
        return None
    where.mkdir(parents=True, exist_ok=True)
    out = where / f"{label}-{workdir.name}-{phase}.txt"
    argv = ["py-spy", "record", "--nonblocking", "-r", "200", "--threads", "--subprocesses"]
    argv += ["--format", "raw"]
    argv += ["-o", str(out), "--pid", str(pid)]
    print(f"  profiling {label} {phase}: {out}", file=sys.stderr)
    spy_path = Path(sys.executable).parent / "py-spy"
    argv[0] = str(spy_path) if spy_path.exists() else "py-spy"
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def secdns_env(path: Path | None, pycache: Path) -> dict[str, str]:
    """The environment of ``secdns serve``: ``path`` (holding a secdns package) first on
    PYTHONPATH, or this checkout's; compiled modules kept under ``pycache`` (an installed
    package has them: without it every start compiled ~300 modules, ~0.5 s of CPU, where
    this environment sets PYTHONDONTWRITEBYTECODE), as bench/startup_bench.py does."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), *filter(None, [env.get("PYTHONPATH")])])
        print(f"  secdns package from {path} (PYTHONPATH)", file=sys.stderr)
    return env


def warm_pycache(env: dict[str, str], cwd: Path) -> None:
    """Import every secdns module once, untimed, so that the timed starts find them
    compiled (as an installed package's are)."""
    code = (
        "import importlib, pkgutil, secdns\n"
        "for m in pkgutil.walk_packages(secdns.__path__, 'secdns.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True)


def floor_round(
    primary: tuple[str, int], names: list[str], template: Path, decode: bool
) -> dict[str, float]:
    """--floor: bench/axfr_floor.py against the primary (every zone transferred, nothing
    else done), timed like a cold start but without a poller; no restart."""
    zone = dns.zone.from_file(str(template), relativize=False)
    records = sum(len(rdataset) for _name, rdataset in zone.iterate_rdatasets()) + 1
    argv = [sys.executable, str(HERE / "axfr_floor.py"), primary[0], str(primary[1]), str(records)]
    argv += [*names, "--concurrency", str(DEFAULT_CONCURRENCY)] + (["--decode"] if decode else [])
    label = "floor-decode" if decode else "floor"
    show_reference(label, argv[:4] + ["RECORDS", f"<{len(names)} zones>"] + argv[5 + len(names) :])
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    found = json.loads(done.stdout.splitlines()[-1])
    print(
        f"  {label}: every zone transferred after {found['seconds']:.2f} s "
        f"(CPU {found['cpu_s']:.2f} s)",
        file=sys.stderr,
    )
    return {"cold": found["seconds"], "cold_cpu_s": found["cpu_s"]}


def knot_round(
    workdir: Path, port: int, primary: tuple[str, int], names: list[str], args: argparse.Namespace
) -> dict[str, float]:
    """Knot as tests/servers.py configures it (one UDP, one TCP, one background worker;
    ``zonefile-sync: 0``), started here so that the same poller times it."""
    of = {CATALOG: primary} if args.catalog else {name: primary for name in names}
    if args.silent_zones:
        host, port_text = args.silent_at.rsplit(":", 1)
        of |= {name: (host, int(port_text)) for name in args.silent_zones}
    setup = _Setup.prepare(workdir, {}, also_secondary_of=of)
    (setup.workdir / "db").mkdir(exist_ok=True)
    control = Path(tempfile.mkdtemp(prefix="secdns-knot-")) / "knot.sock"
    conf = setup.workdir / "knot.conf"
    text = _knot_conf(setup, port, control)
    if args.catalog:  # the catalog interpreted, its members made from a template (Knot's doc)
        member = (
            "  - id: member\n"
            f"    storage: {setup.workdir / 'secondary'}\n"
            '    file: "%s.zone"\n'
            "    master: primary0\n"
            "    zonefile-sync: 0\n"
            "    zonefile-load: whole\n"
            "    acl: [transfer, notify-from-primary0]\n"
        )
        text = text.replace("\nzone:\n", "\n" + member + "\nzone:\n", 1)
        acl = "    acl: [transfer, notify-from-primary0]\n"
        catalog_role = "    catalog-role: interpret\n    catalog-template: member\n"
        head, _, tail = text.partition("\nzone:\n")
        text = head + "\nzone:\n" + tail.replace(acl, acl + catalog_role, 1)
    pool = ""
    if args.knot_pool:  # Knot's own kept connections (remote-pool-limit, default 0: off)
        text = text.replace(
            "    background-workers: 1\n",
            f"    background-workers: 1\n    remote-pool-limit: {args.knot_pool}\n",
            1,
        )
        pool = f", remote-pool-limit: {args.knot_pool}"
    conf.write_text(text)
    argv = [need_binary("knotd"), "-c", str(conf)]
    show_reference("knot", argv)
    print(
        f"  knot config: {conf} (zonefile-sync: 0, one worker of each kind{pool})",
        file=sys.stderr,
    )
    poller = Poller(port, names)
    found: dict[str, float] = {}
    try:
        for phase in ("cold", "restart"):
            creating = create_cost(setup.workdir / f"probe-{phase}")
            print(f"  knot {phase}: creating a file costs {creating:.0f} us now", file=sys.stderr)
            with (setup.workdir / f"knot-{phase}.log").open("wb") as log:
                proc = subprocess.Popen(
                    argv,
                    cwd=setup.workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                files = setup.workdir / "secondary" if phase == "cold" else None
                found |= measure_start("knot", phase, proc, poller, args.timeout, files=files)
                found[f"{phase}_create_us"] = creating
            finally:
                proc.terminate()
                proc.wait()
    finally:
        shutil.rmtree(control.parent, ignore_errors=True)
    return found


def start_primary(
    tmp: Path,
    texts: dict[str, str],
    notify: list[tuple[str, int]],
    attempts: int = 3,
    *,
    dynamic: bool = True,
) -> Bind:
    """The BIND primary, started again (up to ``attempts`` times) when it does not answer
    for every zone within the fixtures' start timeout: 10,000 zones took 14.9 s of its
    15 s on a loaded machine, and once more than that."""
    for attempt in range(attempts):
        try:
            return Bind.start(tmp / f"primary-{attempt}", texts, notify=notify, dynamic=dynamic)
        except ServerError as err:
            if attempt + 1 == attempts:
                raise
            reason = str(err).rsplit(">", 1)[-1].strip().splitlines()[0]
            print(f"  BIND primary: did not start ({reason}); again", file=sys.stderr)
    raise AssertionError("unreachable")


def raise_transfers_out(primary: Bind, limit: int) -> None:
    """BIND answers SERVFAIL past ``transfers-out`` (default 10) concurrent AXFRs: raise it
    (and ``tcp-clients``) so that the primary is not what limits either secondary."""
    conf = primary.workdir / "named.conf"
    text = conf.read_text()
    extra = f"    transfers-out {limit};\n    tcp-clients {max(limit * 2, 150)};\n"
    conf.write_text(text.replace("    recursion no;\n", extra + "    recursion no;\n", 1))
    primary.reload()
    time.sleep(1.0)  # SIGHUP: named re-reads its options (the zones are unchanged)


class TransferPeak:
    """The most transfers at once that the primary saw, from two sides (``with`` around a
    storm): BIND's log lines of transfers started and ended since the start, counted in
    their order; and ``ss`` listing the established connections on the primary's port
    every few ms.  Both can read one or more over the true figure (see --storm)."""

    def __init__(self, primary: Bind) -> None:
        self.log = primary.log_path
        self.mark = self.log.stat().st_size
        self.port = primary.port
        self.sampled = 0
        self.held = 0  # connections to the primary on the secondary's side
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TransferPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        # ss: the kernel filters its socket table (a Python read of /proc/net/tcp, 10,000
        # closed connections in TIME_WAIT, took ~40 ms and counted several generations)
        argv = ["ss", "-Htn", "state", "established"]
        while not self._stop.is_set():
            listed = subprocess.run(
                [*argv, f"( sport = :{self.port} or dport = :{self.port} )"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.splitlines()
            # (with a state filter ss -H lists: Recv-Q Send-Q Local Peer)
            local = sum(1 for line in listed if line.split()[2].endswith(f":{self.port}"))
            self.samples += 1
            self.sampled = max(self.sampled, local)  # the primary's side
            self.held = max(self.held, len(listed) - local)  # the secondary's side
            time.sleep(0.001)

    def logged(self) -> tuple[int, int, int]:
        """(the most transfers started and not yet ended, transfers started, the most
        connections with a transfer started and not yet ended) in BIND's log.

        The third counts a transfer started on a connection whose last transfer has no
        "ended" line yet as following it: secdns asks the next zone on a kept connection
        once it has read the last one's final SOA, and BIND can log the new "started"
        before the old "ended" (in the first count, that is two at once)."""
        running = peak = started = 0
        connections: dict[bytes, int] = {}  # client address#port: transfers without "ended"
        busiest = 0
        with self.log.open("rb") as log:
            log.seek(self.mark)
            for line in log:
                if b": transfer of '" not in line:
                    continue
                client = _CLIENT.search(line)
                key = client.group(1) if client else line
                if b"XFR started" in line:
                    running += 1
                    started += 1
                    peak = max(peak, running)
                    connections[key] = connections.get(key, 0) + 1
                    busiest = max(busiest, len(connections))
                elif b"XFR ended" in line or b" failed" in line or b" aborted" in line:
                    running -= 1
                    left = connections.get(key, 0) - 1
                    if left > 0:
                        connections[key] = left
                    else:
                        connections.pop(key, None)
        return peak, started, busiest


_CLIENT = re.compile(rb"client @0x[0-9a-f]+ (\S+#\d+) ")
"""The client's address#port in a BIND log line (its connection)."""


def bump_serials(primary: Bind, names: list[str], texts: dict[str, str], serial: int) -> float:
    """Every zone's serial to ``serial`` on the primary (files, SIGHUP); seconds until it
    answers it for all."""
    for name in names:
        primary.write_zone(name, texts[name].replace(f" {SERIAL} ", f" {serial} ", 1))
    primary.reload()
    return Poller(primary.port, names).wait(serial, 900)


def notify_all(port: int, names: list[str], serial: int, window: int = 200) -> int:
    """A NOTIFY (RFC 1996) of every zone to ``port``, ``window`` unanswered at most, as a
    primary whose zones all changed at once sends them; one that is not answered within
    a second is sent again (as BIND does), up to 5 times.  Returns the NOTIFYs sent."""
    import collections

    import dns.flags
    import dns.message
    import dns.opcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    wires: dict[int, bytes] = {}
    for index, name in enumerate(names):
        message = dns.message.make_query(name, dns.rdatatype.SOA)
        message.set_opcode(dns.opcode.NOTIFY)
        message.flags |= dns.flags.AA
        message.id = index & 0xFFFF
        rrset = message.find_rrset(
            message.answer,
            message.question[0].name,
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            create=True,
        )
        rrset.add(
            dns.rdata.from_text(
                "IN", "SOA", f"ns1.{name}. hostmaster.{name}. {serial} 30 10 1209600 3600"
            ),
            3600,
        )
        wires[index] = message.to_wire()
    pending = list(wires)
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        for _attempt in range(5):
            outstanding: dict[int, int] = {}  # query id -> index
            queue = collections.deque(pending)
            answered: set[int] = set()
            last = time.perf_counter()
            while queue or outstanding:
                while queue and len(outstanding) < window:
                    if (queue[0] & 0xFFFF) in outstanding:  # (more than 65,536 zones)
                        break
                    index = queue.popleft()
                    sock.send(wires[index])
                    sent += 1
                    outstanding[index & 0xFFFF] = index
                    last = time.perf_counter()
                ready, _, _ = select.select([sock], [], [], 0.05)
                if ready:
                    reply = sock.recv(4096)
                    index = outstanding.pop(struct.unpack_from("!H", reply)[0], -1)
                    if index >= 0:
                        answered.add(index)
                        last = time.perf_counter()
                elif time.perf_counter() - last > 1.0:
                    outstanding.clear()
            pending = [index for index in pending if index not in answered]
            if not pending:
                break
    return sent


def storm_main(args: argparse.Namespace, names: list[str], template: str) -> None:
    """--storm: the shared transfer bound of serve when every zone falls due at once."""
    texts = zone_texts(
        template.replace(f" {SERIAL} 7200 3600 ", f" {SERIAL} {args.storm_refresh} 10 ", 1), names
    )
    labels = [("secdns", None)] + ([("before", args.before)] if args.before else [])
    found: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="secdns-storm-") as tmp_text:
        tmp = Path(tmp_text)
        ports = {label: free_port() for label, _path in labels}
        # no NOTIFYs from BIND: it sends each as it reloads a zone (10,000 changed zones
        # took it ~55 s) and paces them (notify-rate, 20 a second); the bench sends them
        primary = start_primary(tmp, texts, notify=[], dynamic=False)
        raise_transfers_out(primary, args.transfers_out)
        show_reference("BIND primary", argv_of(primary.pid))
        Poller.primary_pid = primary.pid
        serial = SERIAL
        try:
            for label, path in labels:
                found[label], serial = storm_round(
                    tmp / label, ports[label], primary, names, texts, serial, args, label, path
                )
        finally:
            primary.stop()
    bound = args.concurrency or DEFAULT_CONCURRENCY
    print(f"{args.zones} zones, [server] concurrency {bound}:", file=sys.stderr)
    for label, row in found.items():
        for storm in ("cold", "restart", "notify"):
            seconds, cpu = row[storm], row[f"{storm}_cpu_s"]
            logged, sampled = row[f"{storm}_logged_peak"], row[f"{storm}_sampled_peak"]
            print(
                f"  {label:<7} {storm:<8} all served {seconds:6.2f} s, CPU {cpu:6.2f} s; "
                f"peak transfers at once: {logged:.0f} in BIND's log "
                f"(on {row[f'{storm}_logged_connections']:.0f} connections; "
                f"{row[f'{storm}_transfers']:.0f} transfers), {sampled:.0f} sampled "
                f"(secdns's side {row[f'{storm}_secondary_peak']:.0f})",
                file=sys.stderr,
            )
    summary = {"zones": args.zones, "concurrency": bound, "storms": found}
    (HERE / "out" / "manyzones-storm.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def storm_round(
    workdir: Path,
    port: int,
    primary: Bind,
    names: list[str],
    texts: dict[str, str],
    serial: int,
    args: argparse.Namespace,
    label: str,
    path: Path | None,
) -> tuple[dict[str, float], int]:
    """The three storms for one secdns: cold start, restart past the refresh, NOTIFY."""
    workdir.mkdir(parents=True)
    server: dict[str, object] = {
        "directory": str(workdir / "store"),
        "listen": [f"127.0.0.1:{port}"],
    }
    if args.concurrency is not None:
        server["concurrency"] = args.concurrency
    config = workdir / "secdns.toml"
    zones = [{"name": name, "primaries": [primary.addr]} for name in names]
    config.write_text(tomli_w.dumps({"server": server, "zone": zones}))
    argv = [sys.executable, "-m", "secdns", "serve", "-c", str(config)]
    show_reference(label, argv)
    env = secdns_env(path, workdir / "pycache")
    warm_pycache(env, path or ROOT)
    poller = Poller(port, names)
    found: dict[str, float] = {}

    def storm(name: str, proc: subprocess.Popen[bytes], bump: bool = False) -> None:
        cpu = process_cpu(proc.pid)
        began = time.perf_counter()
        with TransferPeak(primary) as peak:
            if bump:  # the primary has the serial already: every zone's NOTIFY at once
                found[f"{name}_notifies"] = notify_all(port, names, serial)
            poller.wait(serial, args.timeout, proc=proc)
        found[name] = time.perf_counter() - began
        found[f"{name}_cpu_s"] = process_cpu(proc.pid) - cpu
        (
            found[f"{name}_logged_peak"],
            found[f"{name}_transfers"],
            found[f"{name}_logged_connections"],
        ) = peak.logged()
        found[f"{name}_sampled_peak"] = peak.sampled
        found[f"{name}_secondary_peak"] = peak.held
        print(
            f"  {label} {name}: {found[name]:.2f} s, CPU {found[f'{name}_cpu_s']:.2f} s, "
            f"peak {found[f'{name}_logged_peak']:.0f} logged "
            f"(on {found[f'{name}_logged_connections']:.0f} connections), {peak.sampled} sampled "
            f"(secdns's side {peak.held}) "
            f"({peak.samples} samples)"
            + (f"; {found[f'{name}_notifies']:.0f} NOTIFYs sent" if bump else ""),
            file=sys.stderr,
        )

    def start(phase: str) -> subprocess.Popen[bytes]:
        log = (workdir / f"serve-{phase}.log").open("wb")
        return subprocess.Popen(
            argv, start_new_session=True, env=env, cwd=path or ROOT, stdout=log, stderr=log
        )

    proc = start("cold")  # 1. nothing stored: every zone's first check at once
    try:
        storm("cold", proc)
    finally:
        proc.terminate()
        proc.wait()
    stopped = time.monotonic()
    serial += 1  # 2. the primary moves on while serve is down, past every refresh
    bump_serials(primary, names, texts, serial)
    time.sleep(max(0.0, args.storm_refresh + 1 - (time.monotonic() - stopped)))
    proc = start("restart")
    try:
        storm("restart", proc)
        serial += 1  # 3. running: the primary moves on and NOTIFYs every zone at once
        bump_serials(primary, names, texts, serial)
        storm("notify", proc, bump=True)
    finally:
        proc.terminate()
        proc.wait()
    return found, serial


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=20, help="per zone (about)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per start, seconds")
    parser.add_argument(
        "--transfers-out",
        type=int,
        default=100,
        help="the BIND primary's transfers-out (BIND's default 10 would limit the secondaries)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="secdns [server] concurrency (its default)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a directory holding another secdns package (e.g. `git archive main secdns`): "
        "run it too, labelled before, in the same run",
    )
    parser.add_argument(
        "--only", choices=("secdns", "knot"), default=None, help="run one secondary only"
    )
    parser.add_argument(
        "--knot-pool",
        type=int,
        default=0,
        help="Knot's remote-pool-limit (its kept outgoing TCP connections; Knot's default 0 "
        "is off; secdns keeps up to 8 a primary unless [server] keep_connections = false)",
    )
    parser.add_argument(
        "--store-sync",
        choices=("fsync", "none", "both"),
        default="both",
        help="secdns's [server] store_sync: fsync (the default; labelled secdns), none "
        "(labelled secdns-nosync: Knot's zonefile-sync does not fsync either, so this is the "
        "equal work), or both in the same run (default)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="a directory: py-spy samples each secdns start into it (skews the figures)",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        help="a directory: cProfile of each secdns start's main thread (skews the figures)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time bench/axfr_floor.py each round: AXFR every zone with nothing else done "
        "(no decoding, no store, no serving), and again decoding each message",
    )
    parser.add_argument(
        "--storm",
        action="store_true",
        help="measure the shared transfer bound in refresh storms instead (see above; no Knot)",
    )
    parser.add_argument(
        "--storm-refresh",
        type=int,
        default=30,
        help="with --storm: the zones' SOA refresh, waited out before the restart storm",
    )
    parser.add_argument(
        "--catalog",
        action="store_true",
        help="the zones as members of a catalog the primary serves; both secondaries "
        "are given only the catalog",
    )
    parser.add_argument(
        "--silent",
        type=int,
        default=0,
        help="N more zones whose primary never answers (see above); timed until the healthy "
        "zones are served",
    )
    add_genzone_option(parser)
    args = parser.parse_args()
    args.silent_zones = [f"s{index}.silent.test" for index in range(args.silent)]
    if args.catalog and (args.silent or args.storm):
        parser.error("--catalog goes with neither --silent nor --storm")
    for binary in ("named", "knotd"):
        if shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
            raise SystemExit(f"{binary} is not installed")
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    template_file = out_dir / f"manyzones.{args.records}.template.zone"
    genzone(args.genzone, args.records, template_file, origin=TEMPLATE, serial=SERIAL)
    names = zone_names(args.zones)
    if args.storm:
        storm_main(args, names, template_file.read_text())
        return
    texts = zone_texts(template_file.read_text(), names)
    if args.catalog:
        texts[CATALOG] = catalog_text(names)
    runs: dict[str, list[dict[str, float]]] = {
        "secdns": [],
        "secdns-nosync": [],
        "before": [],
        "knot": [],
        "floor": [],
        "floor-decode": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="secdns-manyzones-") as tmp_text,
        silent_primary() as (args.silent_at, silent_taken),
    ):
        tmp = Path(tmp_text)
        if args.silent:
            print(
                f"  {args.silent} more zones of a silent primary at {args.silent_at}",
                file=sys.stderr,
            )
        secdns_port, knot_port = free_port(), free_port()
        started = time.perf_counter()
        primary = start_primary(
            tmp, texts, notify=[("127.0.0.1", secdns_port), ("127.0.0.1", knot_port)]
        )
        print(
            f"BIND primary: {args.zones} zones of {args.records} records loaded in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        show_reference("BIND primary", argv_of(primary.pid))
        Poller.primary_pid = primary.pid
        raise_transfers_out(primary, args.transfers_out)
        print(
            f"  BIND primary: transfers-out {args.transfers_out} (its default is 10)",
            file=sys.stderr,
        )
        try:
            for round_ in range(args.repeat):
                # one after the other, not at once: each has the machine to itself; the
                # order turns each round, since later starts in a round ran slower (~1.5 s
                # a place at 10,000 zones: the primary and the file system carry state)
                starts: list[tuple[str, Callable[[], dict[str, float]]]] = []
                if args.only in (None, "secdns") and args.store_sync in ("fsync", "both"):
                    starts.append(
                        (
                            "secdns",
                            functools.partial(
                                secdns_round,
                                tmp / f"secdns-{round_}",
                                secdns_port,
                                primary.addr,
                                names,
                                args,
                            ),
                        )
                    )
                if args.only in (None, "secdns") and args.store_sync in ("none", "both"):
                    starts.append(
                        (
                            "secdns-nosync",
                            functools.partial(
                                secdns_round,
                                tmp / f"nosync-{round_}",
                                free_port(),
                                primary.addr,
                                names,
                                args,
                                label="secdns-nosync",
                                store_sync="none",
                            ),
                        )
                    )
                if args.before is not None and args.only in (None, "secdns"):
                    starts.append(
                        (
                            "before",
                            functools.partial(
                                secdns_round,
                                tmp / f"before-{round_}",
                                free_port(),  # its own: the port just let go may be taken
                                primary.addr,
                                names,
                                args,
                                label="before",
                                path=args.before,
                            ),
                        )
                    )
                if args.only in (None, "knot"):
                    starts.append(
                        (
                            "knot",
                            functools.partial(
                                knot_round,
                                tmp / f"knot-{round_}",
                                knot_port,
                                primary.endpoint,
                                names,
                                args,
                            ),
                        )
                    )
                if args.floor:
                    for decode in (False, True):
                        starts.append(
                            (
                                "floor-decode" if decode else "floor",
                                functools.partial(
                                    floor_round, primary.endpoint, names, template_file, decode
                                ),
                            )
                        )
                turn = round_ % len(starts) if starts else 0
                for label, start in starts[turn:] + starts[:turn]:
                    taken = silent_taken[0]
                    runs[label].append(start())
                    if args.silent:
                        runs[label][-1]["silent_connections"] = silent_taken[0] - taken
                        print(
                            f"  {label}: the silent primary took {silent_taken[0] - taken} "
                            "connections in its cold start and restart",
                            file=sys.stderr,
                        )
        finally:
            primary.stop()

    def med(label: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[label])

    table = {
        label: {
            "cold_start_to_all_served_s": round(med(label, "cold"), 2),
            "cold_cpu_s": round(med(label, "cold_cpu_s"), 2),
            "restart_to_all_served_s": round(med(label, "restart"), 2),
            "restart_cpu_s": round(med(label, "restart_cpu_s"), 2),
            "rss_mib": round(med(label, "cold_rss_mib"), 1),
            "rss_per_zone_kib": round(med(label, "cold_rss_mib") * 1024 / args.zones, 1),
            "restart_rss_mib": round(med(label, "restart_rss_mib"), 1),
            "poll_pass_s": round(med(label, "cold_poll_pass_s"), 3),
            # zone files on disk when every zone answered, and when all were written
            "files_at_served": round(med(label, "cold_files_at_served")),
            "all_files_written_s": round(med(label, "cold_files_all_s"), 2),
        }
        | ({"silent_connections": round(med(label, "silent_connections"))} if args.silent else {})
        for label in runs
        if runs[label] and not label.startswith("floor")
    }
    floors = {
        label: {
            "cold_start_to_all_served_s": round(med(label, "cold"), 2),
            "cold_cpu_s": round(med(label, "cold_cpu_s"), 2),
        }
        for label in ("floor", "floor-decode")
        if runs[label]
    }
    ratios: dict[str, float] = {}
    for label in ("secdns", "secdns-nosync", "before"):
        if label not in table or "knot" not in table:
            continue
        mine, knot = table[label], table["knot"]
        ratios |= {
            f"{key}_{label}_vs_knot": round(mine[key] / knot[key], 2)
            for key in (
                "cold_start_to_all_served_s",
                "cold_cpu_s",
                "restart_to_all_served_s",
                "restart_cpu_s",
                "rss_mib",
            )
        }
    print(
        f"{args.zones} zones of ~{args.records} records (median of {args.repeat}):", file=sys.stderr
    )
    for label, row in table.items():
        print(
            f"  {label:<13} cold {row['cold_start_to_all_served_s']:7.2f} s "
            f"(CPU {row['cold_cpu_s']:6.2f} s)  restart {row['restart_to_all_served_s']:7.2f} s "
            f"(CPU {row['restart_cpu_s']:6.2f} s)  RSS {row['rss_mib']:7.1f} MiB "
            f"({row['rss_per_zone_kib']:.1f} KiB/zone); "
            f"one polling pass {row['poll_pass_s']:.3f} s; cold: {row['files_at_served']} zone "
            f"files written when all were served, all after {row['all_files_written_s']:.2f} s",
            file=sys.stderr,
        )
    for label, row in floors.items():
        versus = ""
        if "knot" in table:
            ratio = row["cold_start_to_all_served_s"] / table["knot"]["cold_start_to_all_served_s"]
            ratios[f"cold_{label}_vs_knot"] = round(ratio, 2)
            versus = f" ({ratio:.2f}x Knot's whole cold start)"
        print(
            f"  {label:<13} every zone transferred {row['cold_start_to_all_served_s']:7.2f} s "
            f"(CPU {row['cold_cpu_s']:6.2f} s), nothing else done{versus}",
            file=sys.stderr,
        )
    print(f"  ratios: {ratios}", file=sys.stderr)
    summary = {
        "zones": args.zones,
        "records_per_zone": args.records,
        "silent_zones": args.silent,
        "repeat": args.repeat,
        "servers": table,
        "floors": floors,
        "ratios": ratios,
        "runs": runs,
    }
    (
        out_dir
        / (
            "manyzones-silent.json"
            if args.silent
            else "manyzones-catalog.json"
            if args.catalog
            else "manyzones.json"
        )
    ).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
