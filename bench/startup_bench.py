#!/usr/bin/env python3
"""Time from start to the first correct answer: secdns serve beside NSD (and Knot).

One zone from the shared generator (``--genzone``, ../shared/genzone.py: the
realistic mix of hosts, CNAME, MX + SPF TXT, ACME/DMARC TXT, SRV, delegations
with glue), --records records.  Each round starts, in turn:

* **nsd**, **knot**: the reference servers loading that master file (the
  command line tests/servers.py writes for them, printed once);
* **secdns file**: ``secdns serve`` with the zone given as ``file`` (the same
  master file);
* **secdns store**: ``secdns serve`` with the zone as a secondary whose copy is
  in the store (``secdns pull -d`` of it from the NSD run, done once before the
  rounds): a restart, answering from the store before any refresh (its primary
  is a port nobody listens on).

and times each from its process start until it answers an SOA query with the
zone's serial *and* an A query for the file's first host with its address (a
correct answer, not only a listening socket), polling every 10 ms.  Then: CPU
seconds the server's processes used so far (user + system, from /proc), its
memory (RSS of each process summed, and PSS summed so that pages NSD's
processes share count once), and bytes per record; for secdns file starts the
memory once the processes that read pieces of the file have exited (they may
still be exiting at the first answer: "RSS at 1st" is the sum then).  Medians over --repeat
rounds; ratios to NSD.  Run it from a directory without a ``secdns`` package
in it (``python -m secdns`` imports the cwd's first).

    python bench/startup_bench.py [--records N] [--repeat R] [--no-knot] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import tomli_w  # noqa: E402
from measure import add_genzone_option, genzone, group_cpu, process_cpu, show_reference  # noqa: E402
from servers import Knot, Nsd, _live_group_members, free_port  # noqa: E402

ZONE = "bench.test"
SERIAL = 2024060101


def first_host(zone_file: Path) -> tuple[str, str]:
    """The first ``NAME IN A ADDRESS`` line of genzone's file, below the apex's own."""
    with open(zone_file) as lines:
        for line in lines:
            fields = line.split()
            if len(fields) == 4 and fields[1:3] == ["IN", "A"] and not line.startswith("ns"):
                return f"{fields[0]}.{ZONE}.", fields[3]
    raise SystemExit(f"{zone_file}: no A record")


def answers(port: int, host: str, address: str) -> bool:
    """Whether the server answers the zone's SOA with its serial and the host's A."""
    try:
        soa = dns.query.udp(dns.message.make_query(f"{ZONE}.", "SOA"), "127.0.0.1", 0.1, port)
        if not soa.answer or soa.answer[0][0].serial != SERIAL:
            return False
        reply = dns.query.udp(dns.message.make_query(host, "A"), "127.0.0.1", 0.1, port)
    except (OSError, dns.exception.DNSException):
        return False
    return any(rd.address == address for rrset in reply.answer for rd in rrset)


def own_cpu(pid: int) -> float:
    """User + system seconds of process *pid* alone (its children's excluded).  secdns
    reads a large file in several processes (secdns/server/loadsplit.py): the leader
    waits while the others read, so on an otherwise idle machine with a core for each,
    the wall time to the first answer is about the leader's own CPU time (plus the
    wait for the slowest piece); on a loaded machine the processes share their
    session's CPU share and the wall time is about the total instead."""
    try:
        return process_cpu(pid)
    except OSError:
        return 0.0


def group_memory_mib(pgid: int) -> tuple[float, float]:
    """(RSS summed, PSS summed) over the group's processes, MiB."""
    rss = pss = 0
    for pid in _live_group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def argv_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if _live_group_members(proc.pid):  # NSD's children
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while _live_group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)


Start = tuple[list[str], Path, int, "dict[str, str] | None"]  # argv, cwd, port, env


def timed_start(
    start: Start, host: str, address: str, timeout: float, settle: bool = False
) -> dict[str, float]:
    """Start a server; time it to its first correct answer; measure; stop it.  CPU and
    ``rss_first_mib`` at the first answer; with *settle*, the memory once the server is
    its one process again (secdns's processes that read pieces of the file exit just
    after handing them back, and may still be going at the first answer)."""
    argv, cwd, port, env = start
    with open(cwd / "bench.log", "ab") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not answers(port, host, address):
            if proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited ({proc.returncode}); see {cwd}/bench.log")
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"{argv[0]} did not answer within {timeout} s")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        cpu = group_cpu(_live_group_members(proc.pid), children=True)
        own = own_cpu(proc.pid)
        rss_first, _ = group_memory_mib(proc.pid)
        if settle:  # secdns: its loading processes are exiting; the server's memory is after
            deadline = time.perf_counter() + 10
            while _live_group_members(proc.pid) != [proc.pid] and time.perf_counter() < deadline:
                time.sleep(0.01)
        rss, pss = group_memory_mib(proc.pid)
    finally:
        stop(proc)
    return {
        "start_s": elapsed,
        "cpu_s": cpu,
        "own_cpu_s": own,
        "rss_first_mib": rss_first,
        "rss_mib": rss,
        "pss_mib": pss,
    }


def reference_argv(server_class: type, workdir: Path, zone_file: Path) -> tuple[list[str], int]:
    """The argv and port tests/servers.py starts a reference server with: started there
    once on a two-record zone (to write its configuration without the fixture's start
    timeout), stopped, its state removed, and the zone file put in that one's place."""
    small = workdir.parent / f"{workdir.name}-small.zone"
    small.write_text(
        f"$ORIGIN {ZONE}.\n$TTL 3600\n"
        f"@ IN SOA ns1 hostmaster {SERIAL} 7200 3600 1209600 3600\n@ IN NS ns1\n"
    )
    server = server_class.start(workdir, {ZONE: small})
    argv, port = argv_of(server.pid), server.port
    server.stop()
    shutil.rmtree(workdir / "db", ignore_errors=True)  # Knot's journal and timers
    shutil.copyfile(zone_file, workdir / "zones" / f"{ZONE}.zone")
    return argv, port


def secdns_argv(workdir: Path, zone: dict, port: int) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "secdns.toml"
    server = {"directory": str(workdir / "store"), "listen": [f"127.0.0.1:{port}"]}
    config.write_text(tomli_w.dumps({"server": server, "zone": [zone]}))
    return [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"]


def python_env(tmp: Path, source: Path | None) -> dict[str, str]:
    """The environment of a secdns process: bytecode cached (as an installed package has
    it; under a prefix in *tmp*, not in the tree), and *source*'s package first if given."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def fill_store(zone_file: Path, store: Path, tmp: Path, env: dict[str, str]) -> None:
    """``secdns pull -d store`` of the zone from an NSD serving the file."""
    nsd = Nsd.start(tmp / "nsd-primary", {ZONE: zone_file})
    try:
        argv = [
            sys.executable,
            "-m",
            "secdns",
            "pull",
            ZONE,
            f"@127.0.0.1:{nsd.port}",
            "-d",
            str(store),
            "-q",
        ]
        started = time.perf_counter()
        subprocess.run(argv, check=True, cwd=tmp, env=env)
        print(f"  store filled by {' '.join(argv[2:])} in {time.perf_counter() - started:.1f} s")
    finally:
        nsd.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-knot", action="store_true", help="leave Knot out")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="SRC",
        help="also run the secdns package in SRC (a checkout, e.g. of main) as 'base ...'",
    )
    add_genzone_option(parser)
    args = parser.parse_args()
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="startup-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        run(args, tmp)
    finally:
        if args.workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    zone_file = tmp / "bench.zone"
    genzone(args.genzone, args.records, zone_file, origin=ZONE, serial=SERIAL)
    host, address = first_host(zone_file)
    print(f"{args.records} records ({zone_file}); correct answer: SOA serial {SERIAL}, {host} A")
    starts: dict[str, Start] = {}
    references = [("nsd", Nsd)] + ([] if args.no_knot else [("knot", Knot)])
    for label, server_class in references:
        argv, port = reference_argv(server_class, tmp / label, zone_file)
        starts[label] = (argv, tmp / label, port, None)
    env = python_env(tmp, None)
    # warm the bytecode cache (and fill the store) before anything is timed
    subprocess.run([sys.executable, "-c", "import secdns.cli, secdns.server.server"], env=env)
    store = tmp / "secdns-store" / "store"
    fill_store(zone_file, store, tmp, env)
    trees = [("secdns", env)]
    if args.baseline is not None:
        base_env = python_env(tmp / "base", args.baseline.resolve())
        subprocess.run(
            [sys.executable, "-c", "import secdns.cli, secdns.server.server"], env=base_env
        )
        trees.append(("base", base_env))
    dead = free_port()  # no primary listens here: a restart answers from the store alone
    for name, tree_env in trees:
        port = free_port()
        workdir = tmp / f"{name}-file"
        zone = {"name": ZONE, "file": str(zone_file)}
        starts[f"{name} file"] = (secdns_argv(workdir, zone, port), workdir, port, tree_env)
        port = free_port()
        workdir = tmp / f"{name}-store"
        if not (workdir / "store").exists():
            shutil.copytree(store, workdir / "store")
        zone = {"name": ZONE, "primaries": [f"127.0.0.1:{dead}"]}
        starts[f"{name} store"] = (secdns_argv(workdir, zone, port), workdir, port, tree_env)
    for label, (argv, _cwd, _port, tree_env) in starts.items():
        source = (tree_env or {}).get("PYTHONPATH")
        show_reference(label, ([f"PYTHONPATH={source}"] if source else []) + argv)
    rows: dict[str, list[dict[str, float]]] = {label: [] for label in starts}
    for round_ in range(args.repeat):
        for label, start in starts.items():
            row = timed_start(start, host, address, args.timeout, settle=label.endswith("file"))
            rows[label].append(row)
            print(
                f"  round {round_ + 1} {label:<12} first answer {row['start_s']:6.2f} s  "
                f"CPU {row['cpu_s']:6.2f} s (own {row['own_cpu_s']:5.2f})  "
                f"RSS {row['rss_mib']:6.0f} MiB (at first answer {row['rss_first_mib']:4.0f})  "
                f"PSS {row['pss_mib']:6.0f} MiB",
                flush=True,
            )
    table = {
        label: {
            key: round(statistics.median(r[key] for r in runs), 2)
            for key in ("start_s", "cpu_s", "own_cpu_s", "rss_first_mib", "rss_mib", "pss_mib")
        }
        for label, runs in rows.items()
    }
    for values in table.values():
        values["bytes_per_record"] = round(values["pss_mib"] * 2**20 / args.records)
    nsd = table["nsd"]
    print(f"medians of {args.repeat} (ratios: / NSD; 'own': the first process's CPU alone, "
          "against NSD's CPU: the wall time on an idle machine, see own_cpu)")  # fmt: skip
    print(f"  {'server':<12} {'start s':>8} {'ratio':>6} {'CPU s':>7} {'ratio':>6} "
          f"{'own s':>6} {'ratio':>6} {'RSS MiB':>8} {'PSS MiB':>8} {'B/record':>9} "
          f"{'RSS at 1st':>10}")  # fmt: skip
    nsd_cpu = max(nsd["cpu_s"], 0.01)
    for label, v in table.items():
        print(
            f"  {label:<12} {v['start_s']:8.2f} {v['start_s'] / nsd['start_s']:6.2f} "
            f"{v['cpu_s']:7.2f} {v['cpu_s'] / nsd_cpu:6.2f} "
            f"{v['own_cpu_s']:6.2f} {v['own_cpu_s'] / nsd_cpu:6.2f} "
            f"{v['rss_mib']:8.0f} {v['pss_mib']:8.0f} {v['bytes_per_record']:9} "
            f"{v['rss_first_mib']:10.0f}"
        )
    if args.json:
        print(json.dumps({"records": args.records, "repeat": args.repeat, "servers": table}))


if __name__ == "__main__":
    main()
