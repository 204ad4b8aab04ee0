#!/usr/bin/env python3
"""Benchmark AXFR out of ``secdns serve`` against BIND (and Knot) in one run.

1. Generates a zone of N records (default 1,000,000) with the shared
   generator (``--genzone``, ../shared/genzone.py: the realistic mix).
2. Serves that file from BIND (``named -g``, a static primary zone), Knot and
   ``secdns serve`` (the zone given as ``file``, ``allow_transfer`` the
   loopback), each on a free loopback port; with ``--before DIR`` also a second
   ``secdns serve`` run from the source tree DIR (e.g. a worktree of main), for a
   before/after in the same run.
3. Once every server is idle (secdns has built its ready answers), for each of
   --repeat rounds, and each server in turn: ``dig AXFR > file``,
   timing the wall clock of dig and the CPU seconds (user + system) the server
   spent meanwhile (from /proc, every thread of its process group), and
   checking the number of records dig received against BIND's.
Medians over the rounds, ratios to BIND; every reference command line is
printed; results go to bench/out/axfr_out.json.

With ``--ixfr K``, IXFR out instead: each server is given a new version of the
file (the serial one up, K of its A records with a new address: 2K records
in the difference), re-reads it (BIND ``ixfr-from-differences``, Knot
``zonefile-load: difference``, secdns a SIGHUP: each keeps the difference) and
each round times ``dig IXFR=OLD`` from each, checking that each sent 2K + 4
records (the SOAs included) and no whole zone.

    python bench/axfr_out_bench.py [--records N] [--repeat K] [--no-knot]
        [--before DIR] [--genzone PATH] [--ixfr K]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import servers  # noqa: E402
import tomli_w  # noqa: E402
from measure import (  # noqa: E402
    add_genzone_option,
    genzone,
    group_cpu,
    median,
    run_measured,
    show_reference,
    wait_idle,
)
from servers import Bind, Knot, _live_group_members, free_port  # noqa: E402

ZONE = "bench.test"
START_TIMEOUT = 300.0
"""Seconds BIND and Knot get to load the zone (tests/servers.py waits 15 s: a loaded machine
takes longer for a million records)."""


def patient_servers() -> None:
    """Let tests/servers.py wait START_TIMEOUT for a server to answer (its default argument)."""
    launch = servers.DnsServer._launch.__func__  # type: ignore[attr-defined]
    port_default, _timeout = launch.__defaults__
    launch.__defaults__ = (port_default, START_TIMEOUT)


def argv_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


class Secdns:
    """``secdns serve`` of the zone file, from this tree or from ``source``."""

    def __init__(self, workdir: Path, zone_file: Path, source: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = workdir / "secdns.toml"
        self.zone_file = workdir / f"{ZONE}.zone"  # (its own copy: --ixfr changes it)
        self.zone_file.write_bytes(zone_file.read_bytes())
        zone = {"name": ZONE, "file": str(self.zone_file), "allow_transfer": ["127.0.0.1"]}
        server = {"directory": str(workdir / "store"), "listen": [f"127.0.0.1:{self.port}"]}
        config.write_text(tomli_w.dumps({"server": server, "zone": [zone]}))
        env = dict(os.environ)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        argv = [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"]
        self.proc = subprocess.Popen(argv, start_new_session=True, env=env, cwd=workdir)
        self.pid = self.proc.pid
        query = dns.message.make_query(f"{ZONE}.", "SOA")
        while True:
            try:
                if dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2).answer:
                    return
            except Exception:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"secdns serve exited ({argv}, PYTHONPATH={source})")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()

    def write_zone(self, zone: str, text: str) -> None:
        self.zone_file.write_text(text)

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def wait_for_serial(self, zone: str, serial: int, timeout: float = START_TIMEOUT) -> None:
        query = dns.message.make_query(f"{zone}.", "SOA")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5).answer
                if answer and answer[0][0].serial == serial:
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise SystemExit(f"secdns serve did not load serial {serial} in {timeout:.0f} s")


SERIAL_FIELD = re.compile(r"^(@\s+(?:\d+\s+)?IN\s+SOA\s+\S+\s+\S+\s+)(\d+)", re.MULTILINE)


def changed_zone(text: str, changes: int) -> tuple[str, int, int]:
    """*text* with its serial one up and *changes* of its A records (a fixed choice) given
    another address: (the new text, the old serial, the new serial)."""
    found = SERIAL_FIELD.search(text)
    if found is None:
        raise SystemExit("the zone file's SOA line is not in genzone's form")
    old = int(found.group(2))
    text = text[: found.start(2)] + str(old + 1) + text[found.end(2) :]
    lines = text.split("\n")
    hosts = [i for i, line in enumerate(lines) if " IN A " in line and not line.startswith("@")]
    if len(hosts) < changes:
        raise SystemExit(f"the zone has {len(hosts)} A records, fewer than --ixfr {changes}")
    for i in random.Random(12).sample(hosts, changes):
        head, _, address = lines[i].rpartition(" ")
        octets = address.split(".")
        octets[-1] = str((int(octets[-1]) + 1) % 256)  # (another address, not in the RRset)
        lines[i] = f"{head} {'.'.join(octets)}"
    return "\n".join(lines), old, old + 1


def all_idle(servers: dict) -> None:  # type: ignore[type-arg]
    """Wait until each server is idle: secdns builds a version's ready answers after its
    first answer, in a forked child, and a transfer timed beside it timed the two (its
    CPU counted too)."""
    for label, server in servers.items():
        pids = functools.partial(_live_group_members, server.pid)
        idle = wait_idle(pids, time.perf_counter())
        print(f"{label}: idle after {idle:.1f} s more", file=sys.stderr)


def transfer(  # type: ignore[no-untyped-def]
    label: str, server, out: Path, show: bool, ixfr_from: int | None = None
) -> tuple[float, float, int]:
    """One ``dig AXFR`` (or ``dig IXFR=ixfr_from``): (wall seconds, the server's CPU
    seconds meanwhile, records)."""
    kind = "AXFR" if ixfr_from is None else f"IXFR={ixfr_from}"
    argv = ["dig", "@127.0.0.1", "-p", str(server.port), f"{ZONE}.", kind]
    if show:
        show_reference(f"dig from {label}", argv, stdout=out)
    before = group_cpu(_live_group_members(server.pid))
    run = run_measured(argv, stdout_path=out)
    cpu = group_cpu(_live_group_members(server.pid)) - before
    records = 0
    with open(out, "rb") as lines:
        for line in lines:
            if line.strip() and not line.startswith(b";"):
                records += 1
    if "Transfer failed" in out.read_text(errors="replace")[-2000:] or records < 3:
        raise SystemExit(f"dig {kind} from {label} failed: see {out}")
    return run.wall, cpu, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-knot", action="store_true", help="BIND and secdns only")
    parser.add_argument(
        "--before", type=Path, help="also serve from this secdns source tree (before/after)"
    )
    parser.add_argument(
        "--ixfr",
        type=int,
        metavar="K",
        help="time IXFR out of a change of K A records instead (see above)",
    )
    add_genzone_option(parser)
    args = parser.parse_args()
    patient_servers()
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    zone_file = out_dir / f"{ZONE}.{args.records}.zone"
    genzone(args.genzone, args.records, zone_file, origin=ZONE)
    results: dict[str, dict[str, float | None]] = {}
    with tempfile.TemporaryDirectory(prefix="secdns-axfr-bench-") as tmp_text:
        tmp = Path(tmp_text)
        starters = {"bind": lambda d: Bind.start(d, {ZONE: zone_file}, dynamic=False)}
        if not args.no_knot:
            starters["knot"] = lambda d: Knot.start(d, {ZONE: zone_file})
        starters["secdns"] = lambda d: Secdns(d, zone_file)
        if args.before is not None:
            starters["secdns-before"] = lambda d: Secdns(d, zone_file, args.before.resolve())
        servers = {}
        try:
            for label, start in starters.items():
                started = time.perf_counter()
                servers[label] = start(tmp / label)
                print(
                    f"{label}: serving {args.records} records after "
                    f"{time.perf_counter() - started:.1f} s",
                    file=sys.stderr,
                )
                show_reference(f"{label} server", argv_of(servers[label].pid))
            all_idle(servers)
            ixfr_from = None
            if args.ixfr:
                text, ixfr_from, serial = changed_zone(zone_file.read_text(), args.ixfr)
                for label, server in servers.items():
                    started = time.perf_counter()
                    server.write_zone(ZONE, text)
                    server.reload()
                    server.wait_for_serial(ZONE, serial)
                    print(
                        f"{label}: serial {serial} ({args.ixfr} A records changed) after "
                        f"{time.perf_counter() - started:.1f} s",
                        file=sys.stderr,
                    )
                all_idle(servers)  # (secdns fills the new version's ready answers)
            rows: dict[str, dict[str, list[float]]] = {
                label: {"wall": [], "cpu": [], "records": []} for label in servers
            }
            for round_ in range(args.repeat):
                for label, server in servers.items():
                    wall, cpu, records = transfer(
                        label, server, tmp / f"{label}.axfr", round_ == 0, ixfr_from
                    )
                    rows[label]["wall"].append(wall)
                    rows[label]["cpu"].append(cpu)
                    rows[label]["records"].append(records)
                    print(
                        f"  round {round_ + 1} {label:<14} {wall:7.3f} s wall  server CPU "
                        f"{cpu:6.3f} s  {records} records",
                        file=sys.stderr,
                    )
        finally:
            for server in servers.values():
                server.stop()
    want = rows["bind"]["records"][0]
    if args.ixfr and want != 2 * args.ixfr + 4:
        raise SystemExit(f"BIND sent {want} records, not the IXFR's {2 * args.ixfr + 4}")
    for label, row in rows.items():
        if any(count != want for count in row["records"]):
            raise SystemExit(f"{label} sent {row['records']} records, BIND {want}")
    bind = rows["bind"]
    print(f"medians of {args.repeat}, {want} records (ratios: / BIND's):", file=sys.stderr)
    for label, row in rows.items():
        wall, cpu = median(row["wall"]), median(row["cpu"])
        bind_cpu = median(bind["cpu"])  # (0 when under the clock's tick: a small IXFR)
        results[label] = {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(cpu, 3),
            "server_cpu_us_per_record": round(cpu / want * 1e6, 2),
            "wall_vs_bind": round(wall / median(bind["wall"]), 2),
            "server_cpu_vs_bind": round(cpu / bind_cpu, 2) if bind_cpu else None,
        }
        cpu_ratio = results[label]["server_cpu_vs_bind"]
        print(
            f"  {label:<14} {wall:7.3f} s wall ({results[label]['wall_vs_bind']:.2f}x)  "
            f"server CPU {cpu:6.3f} s "
            f"({f'{cpu_ratio:.2f}x' if cpu_ratio is not None else 'BIND: under a tick'}, "
            f"{results[label]['server_cpu_us_per_record']:.2f} us/record)",
            file=sys.stderr,
        )
    name = "axfr_out.json" if not args.ixfr else "ixfr_out.json"
    (out_dir / name).write_text(
        json.dumps(
            {"records": args.records, "ixfr": args.ixfr, "repeat": args.repeat, "servers": results},
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
