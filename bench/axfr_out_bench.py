#!/usr/bin/env python3
"""Benchmark AXFR out of ``secdns serve`` against BIND (and Knot) in one run.

1. Generates a zone of N records (default 1,000,000) with the shared
   generator (``--genzone``, ../shared/genzone.py: the realistic mix).
2. Serves that file from BIND (``named -g``, a static primary zone), Knot and
   ``secdns serve`` (the zone given as ``file``, ``allow_transfer`` the
   loopback), each on a free loopback port; with ``--before DIR`` also a second
   ``secdns serve`` run from the source tree DIR (e.g. a worktree of main), for a
   before/after in the same run.
3. For each of --repeat rounds, and each server in turn: ``dig AXFR > file``,
   timing the wall clock of dig and the CPU seconds (user + system) the server
   spent meanwhile (from /proc, every thread of its process group), and
   checking the number of records dig received against BIND's.
Medians over the rounds, ratios to BIND; every reference command line is
printed; results go to bench/out/axfr_out.json.

    python bench/axfr_out_bench.py [--records N] [--repeat K] [--no-knot]
        [--before DIR] [--genzone PATH]
"""

from __future__ import annotations

import argparse
import json
import os
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
        zone = {"name": ZONE, "file": str(zone_file), "allow_transfer": ["127.0.0.1"]}
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


def transfer(label: str, server, out: Path, show: bool) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """One ``dig AXFR``: (wall seconds, the server's CPU seconds meanwhile, records)."""
    argv = ["dig", "@127.0.0.1", "-p", str(server.port), f"{ZONE}.", "AXFR"]
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
        raise SystemExit(f"dig AXFR from {label} failed: see {out}")
    return run.wall, cpu, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-knot", action="store_true", help="BIND and secdns only")
    parser.add_argument(
        "--before", type=Path, help="also serve from this secdns source tree (before/after)"
    )
    add_genzone_option(parser)
    args = parser.parse_args()
    patient_servers()
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    zone_file = out_dir / f"{ZONE}.{args.records}.zone"
    genzone(args.genzone, args.records, zone_file, origin=ZONE)
    results: dict[str, dict[str, float]] = {}
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
            rows: dict[str, dict[str, list[float]]] = {
                label: {"wall": [], "cpu": [], "records": []} for label in servers
            }
            for round_ in range(args.repeat):
                for label, server in servers.items():
                    wall, cpu, records = transfer(
                        label, server, tmp / f"{label}.axfr", show=round_ == 0
                    )
                    rows[label]["wall"].append(wall)
                    rows[label]["cpu"].append(cpu)
                    rows[label]["records"].append(records)
                    print(
                        f"  round {round_ + 1} {label:<14} {wall:7.2f} s wall  server CPU "
                        f"{cpu:6.2f} s  {records} records",
                        file=sys.stderr,
                    )
        finally:
            for server in servers.values():
                server.stop()
    want = rows["bind"]["records"][0]
    for label, row in rows.items():
        if any(count != want for count in row["records"]):
            raise SystemExit(f"{label} sent {row['records']} records, BIND {want}")
    bind = rows["bind"]
    print(f"medians of {args.repeat}, {want} records (ratios: / BIND's):", file=sys.stderr)
    for label, row in rows.items():
        wall, cpu = median(row["wall"]), median(row["cpu"])
        results[label] = {
            "wall_s": round(wall, 2),
            "server_cpu_s": round(cpu, 2),
            "server_cpu_us_per_record": round(cpu / want * 1e6, 2),
            "wall_vs_bind": round(wall / median(bind["wall"]), 2),
            "server_cpu_vs_bind": round(cpu / median(bind["cpu"]), 2),
        }
        print(
            f"  {label:<14} {wall:7.2f} s wall ({results[label]['wall_vs_bind']:.2f}x)  "
            f"server CPU {cpu:6.2f} s ({results[label]['server_cpu_vs_bind']:.2f}x, "
            f"{results[label]['server_cpu_us_per_record']:.2f} us/record)",
            file=sys.stderr,
        )
    (out_dir / "axfr_out.json").write_text(
        json.dumps({"records": args.records, "repeat": args.repeat, "servers": results}, indent=2)
        + "\n"
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
