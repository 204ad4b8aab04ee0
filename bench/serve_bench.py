#!/usr/bin/env python3
"""Benchmark ``secdns serve`` side by side with NSD, Knot and BIND in one run.

1. Queries: a 100k-record zone served by each server in turn (one server
   thread each), dnsperf ``-c 10 -T 1 -q 100`` for ``--seconds`` with a query
   mix of 90% existing names and 10% NXDOMAIN; qps per server, and the ratio
   secdns / NSD.
2. Propagation (``--propagation``): a BIND primary with a 1M-record zone, a
   secdns secondary and a Knot secondary both notified; ``--rounds`` one-record
   nsupdates; time from the update until each secondary answers the new
   serial; medians.
3. Startup: time for ``secdns serve`` to answer a stored 1M zone, peak RSS,
   bytes per record, beside BIND's load time of the same zone.

    python bench/serve_bench.py [--records 100000] [--seconds 10] [--propagation]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import tomli_w  # noqa: E402
from servers import Bind, Knot, Nsd, free_port  # noqa: E402

ZONE = "bench.test"


def generate(path: Path, count: int) -> list[str]:
    names = []
    with open(path, "w") as out:
        out.write(f"$ORIGIN {ZONE}.\n$TTL 3600\n")
        out.write("@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\n")
        out.write("ns1 IN A 192.0.2.1\n")
        for i in range(count - 3):
            if i % 10 == 1:
                out.write(f"h{i} IN AAAA 2001:db8::{i % 65536:x}\n")
                names.append(f"h{i}.{ZONE}. AAAA")
            else:
                out.write(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
                names.append(f"h{i}.{ZONE}. A")
    return names


def query_file(path: Path, names: list[str], count: int = 200_000) -> None:
    rng = random.Random(42)
    with open(path, "w") as out:
        for _ in range(count):
            if rng.random() < 0.1:
                out.write(f"nx{rng.randrange(10**9)}.{ZONE}. A\n")
            else:
                out.write(rng.choice(names) + "\n")


def dnsperf(port: int, queries: Path, seconds: int, once: bool = False) -> float:
    """Queries per second; ``once``: a single pass over the query file instead of a time."""
    limit = ["-n", "1"] if once else ["-l", str(seconds)]
    done = subprocess.run(
        [
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            str(queries),
            "-c",
            "10",
            "-T",
            "1",
            "-q",
            "100",
            *limit,
        ],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    if not match:
        raise SystemExit(f"dnsperf failed: {done.stdout}{done.stderr}")
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    print(f"    lost: {lost.group(1) if lost else '?'}", file=sys.stderr)
    return float(match.group(1))


def wait_serial(port: int, serial: int, timeout: float = 60.0, since: float | None = None) -> float:
    start = since if since is not None else time.perf_counter()
    query = dns.message.make_query(f"{ZONE}.", "SOA")
    while time.perf_counter() - start < timeout:
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
            if reply.answer and reply.answer[0][0].serial == serial:
                return time.perf_counter() - start
        except Exception:
            pass
        time.sleep(0.001)
    raise SystemExit(f"port {port} never reached serial {serial}")


def secdns_config(path: Path, port: int, store: Path, zone: dict) -> Path:
    path.write_text(
        tomli_w.dumps(
            {"server": {"directory": str(store), "listen": [f"127.0.0.1:{port}"]}, "zone": [zone]}
        )
    )
    return path


def start_secdns(config: Path, port: int) -> tuple[subprocess.Popen, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"])
    query = dns.message.make_query(f"{ZONE}.", "SOA")
    while True:
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
            if reply.answer:
                return proc, time.perf_counter() - start
        except Exception:
            pass
        if proc.poll() is not None:
            raise SystemExit("secdns serve exited")
        time.sleep(0.02)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_queries(args: argparse.Namespace, tmp: Path, results: dict) -> None:
    zone_file = tmp / "bench.zone"
    names = generate(zone_file, args.records)
    queries = tmp / "queries.txt"
    query_file(queries, names)
    qps: dict[str, float] = {}
    first_pass: dict[str, float] = {}

    def measure(label: str, port: int) -> None:
        # one pass over the whole query file (every question asked once: caches cold),
        # then the timed run (steady state)
        first_pass[label] = dnsperf(port, queries, 0, once=True)
        print(
            f"  {label}: first pass {first_pass[label]:.0f} qps; dnsperf {args.seconds}s",
            file=sys.stderr,
        )
        qps[label] = dnsperf(port, queries, args.seconds)

    for label, cls in (("nsd", Nsd), ("knot", Knot), ("bind", Bind)):
        server = cls.start(tmp / label, {ZONE: zone_file})
        try:
            measure(label, server.port)
        finally:
            server.stop()
    port = free_port()
    config = secdns_config(
        tmp / "secdns.toml", port, tmp / "store", {"name": ZONE, "file": str(zone_file)}
    )
    proc, _ = start_secdns(config, port)
    try:
        measure("secdns", port)
    finally:
        proc.terminate()
        proc.wait()
    results["queries"] = {
        "qps": qps,
        "first_pass_qps": first_pass,
        "ratio_secdns_vs_nsd": round(qps["secdns"] / qps["nsd"], 3),
        "records": args.records,
    }
    print(json.dumps(results["queries"], indent=2), file=sys.stderr)


def bench_propagation(args: argparse.Namespace, tmp: Path, results: dict) -> None:
    zone_file = tmp / "big.zone"
    generate(zone_file, args.big_records)
    secdns_port, knot_port = free_port(), free_port()
    t0 = time.perf_counter()
    primary = Bind.start(
        tmp / "primary",
        {ZONE: zone_file},
        notify=[("127.0.0.1", secdns_port), ("127.0.0.1", knot_port)],
    )
    bind_load = time.perf_counter() - t0
    config = secdns_config(
        tmp / "sec.toml",
        secdns_port,
        tmp / "sec-store",
        {"name": ZONE, "primaries": [primary.addr]},
    )
    procs = []
    try:
        proc, first_start = start_secdns(config, secdns_port)
        procs.append(proc)
        wait_serial(secdns_port, 1, timeout=600)
        knot = Knot.start_secondary(tmp / "knot", {ZONE: primary.endpoint}, port=knot_port)
        serial = 1
        ours, theirs = [], []
        for round_ in range(args.rounds):
            serial += 1
            # the clock starts when the primary has acknowledged the update (nsupdate
            # returned): from there on it is NOTIFY, SOA check, IXFR and swap
            primary.nsupdate(f"update add p{round_}.{ZONE}. 60 A 192.0.2.{round_ % 250}", zone=ZONE)
            start = time.perf_counter()
            ours.append(wait_serial(secdns_port, serial, since=start))
            theirs.append(wait_serial(knot_port, serial, since=start))
            time.sleep(1.0)
        knot.stop()
        # startup from the store, 1M records
        proc.terminate()
        proc.wait()
        procs.clear()
        proc, startup = start_secdns(config, secdns_port)
        procs.append(proc)
        time.sleep(1)
        rss = rss_mib(proc.pid)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        primary.stop()
    results["propagation"] = {
        "records": args.big_records,
        "rounds": args.rounds,
        "secdns_median_ms": round(statistics.median(ours) * 1000, 1),
        "secdns_ms": [round(x * 1000, 1) for x in ours],
        "knot_median_ms": round(statistics.median(theirs) * 1000, 1),
        "knot_ms": [round(x * 1000, 1) for x in theirs],
        "bind_load_s": round(bind_load, 2),
        "secdns_startup_from_store_s": round(startup, 2),
        "secdns_first_axfr_start_s": round(first_start, 2),
        "ratio_startup_vs_bind_load": round(startup / bind_load, 2),
        "secdns_rss_mib": round(rss, 1),
        "bytes_per_record": round(rss * 1024 * 1024 / args.big_records, 1),
    }
    print(json.dumps(results["propagation"], indent=2), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--propagation", action="store_true")
    parser.add_argument("--big-records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--skip-queries", action="store_true")
    args = parser.parse_args()
    if not shutil.which("dnsperf") and not args.skip_queries:
        raise SystemExit("dnsperf is not installed (apt-get install dnsperf)")
    results: dict = {}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="secdns-serve-bench-") as tmp_text:
        tmp = Path(tmp_text)
        if not args.skip_queries:
            bench_queries(args, tmp, results)
        if args.propagation:
            bench_propagation(args, tmp, results)
    (out / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
