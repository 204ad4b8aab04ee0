#!/usr/bin/env python3
"""Benchmark ``secdns serve`` side by side with NSD, Knot and BIND in one run.

Zones and query files come from the shared generator (``--genzone``,
../shared/genzone.py: hosts under department subdomains, CNAME, MX + SPF TXT,
ACME/DMARC TXT, SRV, delegations with glue; ~10% NXDOMAIN questions).

1. Queries (every server, one server thread each, the same zone file):
   for each of --repeat rounds, start the server on the file and time it to
   its first answer; then **first pass**: one dnsperf pass (``-c 10 -T 1 -q
   100 -n 1``) over --questions distinct questions, none repeated (caches
   cold); memory of the server (PSS summed over its process group) after that
   pass; then the
   **repeating mix**: genzone's query file (questions drawn with repetition)
   for --seconds.  Medians over the rounds; ratios to NSD side by side.
2. Propagation (``--propagation``): a BIND primary with a --big-records zone
   notifying a secdns secondary and a Knot secondary, both writing the zone
   file after each change (secdns: its store, in the background; Knot:
   ``zonefile-sync: 0``, or --knot-zonefile-sync -1 to keep changes in Knot's
   journal only; the output says which); --rounds one-record nsupdates; the
   clock starts when nsupdate starts (its own run time is reported too) and
   both secondaries are polled
   concurrently until each answers the new serial; medians.  Then the time
   for ``secdns serve`` to answer from its store after a restart.

Every reference command line (dnsperf, each server's argv) is printed.

    python bench/serve_bench.py [--records N] [--questions K] [--seconds S] [--repeat R]
        [--propagation] [--big-records N] [--rounds N] [--genzone PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
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
from measure import add_genzone_option, genzone, group_pss_mib, show_reference  # noqa: E402
from servers import Bind, Knot, Nsd, _live_group_members, free_port  # noqa: E402

ZONE = "bench.test"


def distinct_questions(source: Path, out: Path, count: int) -> int:
    """The first ``count`` distinct lines of genzone's query file: no question asked twice."""
    seen: dict[str, None] = {}
    with open(source) as lines:
        for line in lines:
            seen.setdefault(line, None)
            if len(seen) >= count:
                break
    out.write_text("".join(seen))
    return len(seen)


def dnsperf(
    port: int,
    queries: Path,
    seconds: int,
    once: bool = False,
    show: bool = True,
    binary: bool = False,
    interval: int = 0,
    intervals: list[float] | None = None,
) -> float:
    """Queries per second; ``once``: a single pass over the query file instead of a time;
    ``binary``: the file holds TCP-framed query messages (``dnsperf -B``: flags kept, IDs
    set by dnsperf); ``interval``: seconds between dnsperf's statistics lines, whose qps
    go to ``intervals``."""
    limit = ["-n", "1"] if once else ["-l", str(seconds)]
    if binary:
        limit.append("-B")
    if interval:
        limit += ["-S", str(interval)]
    argv = [
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
    ]
    if show:
        show_reference("dnsperf", argv)
    done = subprocess.run(argv, capture_output=True, text=True)
    match = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    if not match:
        raise SystemExit(f"dnsperf failed: {done.stdout}{done.stderr}")
    if intervals is not None:
        intervals.extend(float(m) for m in re.findall(r"^\S+: ([\d.]+)$", done.stdout, re.M))
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
    argv = [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"]
    proc = subprocess.Popen(argv, start_new_session=True)
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


def argv_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


class _Secdns:
    """secdns serve on a zone file, shaped like the tests/servers.py fixtures."""

    def __init__(self, workdir: Path, zone_file: Path) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = secdns_config(
            workdir / "secdns.toml",
            self.port,
            workdir / "store",
            {"name": ZONE, "file": str(zone_file)},
        )
        self.proc, _ = start_secdns(config, self.port)
        self.pid = self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def bench_queries(args: argparse.Namespace, tmp: Path, results: dict) -> None:
    zone_file = tmp / "bench.zone"
    mix = tmp / "queries.txt"
    genzone(args.genzone, args.records, zone_file, origin=ZONE, queries=mix, nq=2 * args.questions)
    first = tmp / "distinct.txt"
    questions = distinct_questions(mix, first, args.questions)
    print(
        f"{args.records} records; first pass: {questions} distinct questions; repeating mix: "
        f"{mix} ({2 * args.questions} questions drawn with repetition, looped {args.seconds}s)",
        file=sys.stderr,
    )
    starters = {
        "nsd": lambda d: Nsd.start(d, {ZONE: zone_file}),
        "knot": lambda d: Knot.start(d, {ZONE: zone_file}),
        "bind": lambda d: Bind.start(d, {ZONE: zone_file}),
        "secdns": lambda d: _Secdns(d, zone_file),
    }
    rows: dict[str, dict[str, list[float]]] = {}
    for round_ in range(args.repeat):
        for label, starter in starters.items():
            row = rows.setdefault(label, {"start": [], "first": [], "rss": [], "mix": []})
            started = time.perf_counter()
            server = starter(tmp / f"{label}-{round_}")
            row["start"].append(time.perf_counter() - started)
            if round_ == 0:
                show_reference(f"{label} server", argv_of(server.pid))
            try:
                show = round_ == 0
                row["first"].append(dnsperf(server.port, first, 0, once=True, show=show))
                row["rss"].append(group_pss_mib(_live_group_members(server.pid)))
                row["mix"].append(dnsperf(server.port, mix, args.seconds, show=show))
            finally:
                server.stop()
            print(
                f"  round {round_ + 1} {label:<6} start {row['start'][-1]:6.2f} s  first pass "
                f"{row['first'][-1]:8.0f} qps  RSS after it {row['rss'][-1]:6.0f} MiB  "
                f"repeating mix {row['mix'][-1]:8.0f} qps",
                file=sys.stderr,
            )
    table = {
        label: {
            "start_to_first_answer_s": round(statistics.median(row["start"]), 2),
            "first_pass_qps": round(statistics.median(row["first"])),
            "rss_after_first_pass_mib": round(statistics.median(row["rss"]), 1),
            "bytes_per_record": round(statistics.median(row["rss"]) * 2**20 / args.records),
            "repeating_mix_qps": round(statistics.median(row["mix"])),
        }
        for label, row in rows.items()
    }
    nsd = table["nsd"]
    print(f"medians of {args.repeat} (ratios are secdns / NSD):", file=sys.stderr)
    print(
        f"  {'server':<7} {'start s':>8} {'first-pass qps':>15} {'RSS MiB':>8} "
        f"{'B/record':>9} {'repeating-mix qps':>18}",
        file=sys.stderr,
    )
    for label, row in table.items():
        print(
            f"  {label:<7} {row['start_to_first_answer_s']:8.2f} {row['first_pass_qps']:15} "
            f"{row['rss_after_first_pass_mib']:8.0f} {row['bytes_per_record']:9} "
            f"{row['repeating_mix_qps']:18}",
            file=sys.stderr,
        )
    ours = table["secdns"]
    ratios = {
        "first_pass_qps_secdns_vs_nsd": round(ours["first_pass_qps"] / nsd["first_pass_qps"], 3),
        "repeating_mix_qps_secdns_vs_nsd": round(
            ours["repeating_mix_qps"] / nsd["repeating_mix_qps"], 3
        ),
        "start_secdns_vs_nsd": round(
            ours["start_to_first_answer_s"] / nsd["start_to_first_answer_s"], 2
        ),
    }
    print(f"  {ratios}", file=sys.stderr)
    results["queries"] = {
        "records": args.records,
        "distinct_questions": questions,
        "repeat": args.repeat,
        "servers": table,
        "ratios": ratios,
    }


def wait_both(ports: dict[str, int], serial: int, since: float) -> dict[str, float]:
    """Poll every secondary at once; the seconds from ``since`` until each has ``serial``."""
    found: dict[str, float] = {}

    def poll(label: str, port: int) -> None:
        found[label] = wait_serial(port, serial, since=since)

    threads = [threading.Thread(target=poll, args=item) for item in ports.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(found) != len(ports):
        raise SystemExit(f"serial {serial} never reached by {sorted(set(ports) - set(found))}")
    return found


def knot_zonefile_sync(value: str) -> None:
    """Make tests/servers.py's Knot secondaries flush their zone file per ``value``."""
    original = servers._knot_conf

    def conf(*args, **kwargs) -> str:  # type: ignore[no-untyped-def]
        return original(*args, **kwargs).replace(
            "    zonefile-sync: 0\n", f"    zonefile-sync: {value}\n"
        )

    servers._knot_conf = conf


def bench_propagation(args: argparse.Namespace, tmp: Path, results: dict) -> None:
    knot_zonefile_sync(args.knot_zonefile_sync)
    flush = f"Knot: zonefile-sync: {args.knot_zonefile_sync}, journal-content: changes"
    zone_file = tmp / "big.zone"
    genzone(args.genzone, args.big_records, zone_file, origin=ZONE, serial=1)
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
    print(
        "propagation: zone files (secdns: store written in the background after each "
        f"change; {flush})",
        file=sys.stderr,
    )
    show_reference("BIND primary", argv_of(primary.pid))
    procs = []
    knot = None
    try:
        proc, first_start = start_secdns(config, secdns_port)
        procs.append(proc)
        wait_serial(secdns_port, 1, timeout=600)
        knot = Knot.start_secondary(tmp / "knot", {ZONE: primary.endpoint}, port=knot_port)
        show_reference("Knot secondary", argv_of(knot.pid))
        serial = 1
        times: dict[str, list[float]] = {"secdns": [], "knot": [], "nsupdate": []}
        for round_ in range(args.rounds):
            serial += 1
            # the clock starts when nsupdate starts (as the issue times it): the update,
            # BIND's NOTIFY, the SOA check, the IXFR and the swap; nsupdate's own time
            # (process start, the update's round trip) is reported beside it
            start = time.perf_counter()
            primary.nsupdate(f"update add p{round_}.{ZONE}. 60 A 192.0.2.{round_ % 250}", zone=ZONE)
            times["nsupdate"].append(time.perf_counter() - start)
            found = wait_both({"secdns": secdns_port, "knot": knot_port}, serial, start)
            for label, seconds in found.items():
                times[label].append(seconds)
            time.sleep(1.0)
        knot.stop()
        knot = None
        # startup from the store
        proc.terminate()
        proc.wait()
        procs.clear()
        proc, startup = start_secdns(config, secdns_port)
        procs.append(proc)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        if knot is not None:
            knot.stop()
        primary.stop()
    ours, theirs = times["secdns"], times["knot"]
    results["propagation"] = {
        "records": args.big_records,
        "rounds": args.rounds,
        "zone_file_flush": f"secdns: store written in the background after each change; {flush}",
        "secdns_median_ms": round(statistics.median(ours) * 1000, 1),
        "secdns_ms": [round(x * 1000, 1) for x in ours],
        "knot_median_ms": round(statistics.median(theirs) * 1000, 1),
        "knot_ms": [round(x * 1000, 1) for x in theirs],
        "nsupdate_median_ms": round(statistics.median(times["nsupdate"]) * 1000, 1),
        "nsupdate_ms": [round(x * 1000, 1) for x in times["nsupdate"]],
        "ratio_secdns_vs_knot": round(statistics.median(ours) / statistics.median(theirs), 3),
        "bind_load_s": round(bind_load, 2),
        "secdns_startup_from_store_s": round(startup, 2),
        "secdns_first_axfr_start_s": round(first_start, 2),
        "ratio_startup_from_store_vs_bind_load": round(startup / bind_load, 2),
    }
    print(json.dumps(results["propagation"], indent=2), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=100_000, help="distinct, first pass")
    parser.add_argument("--seconds", type=int, default=10, help="of the repeating mix")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--propagation", action="store_true")
    parser.add_argument("--big-records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--knot-zonefile-sync",
        default="0",
        help="Knot's zonefile-sync for the propagation secondary: 0 flushes the zone file "
        "after each change (as secdns writes its store), -1 keeps changes in the journal",
    )
    add_genzone_option(parser)
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
