#!/usr/bin/env python3
"""First asks across many small zones: one dnsperf pass over every zone's questions,
secdns beside NSD in one run.

    python bench/zones_first_ask_bench.py [--zones 10000] [--records 20] [--rounds 3]
        [--rd-clear] [--edns 1232] [--baseline SRC]

A provider's secondary serves thousands of customer zones, and its queries are
spread over all of them: each zone's answers are first asks far more often than on
one large zone.  Each of ``--zones`` zones is genzone's ``--records``-record zone
under its own name (``z00000.zones.test.`` ...), given to each server as a master
file.  The questions are every owner and type of every zone, and one name that does
not exist per zone (NXDOMAIN), each asked once, in a fixed random order: no
answer is asked twice, so no cache answers it.  The pass starts once every zone
answers its SOA and the server has gone idle (secdns has built what it builds in
the background).  Prints per server: qps of the pass, its CPU microseconds per
query (user + system of the server's processes), the busiest thread's, RSS, and
the time from start until every zone answered; medians of ``--rounds``.
``--baseline SRC`` runs secdns from another source tree too (``git archive main
secdns | tar -x -C SRC``).  ``--rd-clear`` / ``--edns N`` ask as resolvers do
(through ``dnsperf -B``).  NSD's and dnsperf's command lines are printed.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import dns.rdatatype  # noqa: E402
import dns.zone  # noqa: E402
import tomli_w  # noqa: E402
from first_ask_bench import binary_queries, one_pass, rss_mib, wait_idle, with_children  # noqa: E402
from manyzones_bench import Poller  # noqa: E402
from measure import (  # noqa: E402
    add_genzone_option,
    compiled_env,
    genzone,
    show_reference,
    warm_pycache,
)
from servers import Nsd, _live_group_members, free_port  # noqa: E402

TEMPLATE = "template.invalid."
SERIAL = 2024060101
SUFFIX = "zones.test."


def zone_names(count: int) -> list[str]:
    return [f"z{number:05d}.{SUFFIX}" for number in range(count)]


def questions(template: Path, names: list[str], out: Path, seed: int = 12) -> int:
    """Write every owner and type of the template in every zone, and one nonexistent
    name a zone, once each in a fixed random order (``NAME TYPE`` lines); their count."""
    zone = dns.zone.from_file(str(template), origin=TEMPLATE, relativize=True)
    asked: list[tuple[str, str]] = []
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            asked.append((name.to_text(), dns.rdatatype.to_text(rdataset.rdtype)))
    asked.append(("no-such-name", "A"))
    lines = [
        f"{name if rel == '@' else rel + '.' + name} {rdtype}"
        for name in names
        for rel, rdtype in asked
    ]
    random.Random(seed).shuffle(lines)
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


def zone_text(template: str, name: str) -> str:
    return template.replace(TEMPLATE, name)


def measure(
    port: int, pid: int, members, names: list[str], start: float, args: argparse.Namespace
) -> dict[str, float]:
    """Wait for every zone's serial and for the server to go idle, then one pass."""
    Poller(port, names).wait(SERIAL, args.timeout)
    row: dict[str, float] = {"all_served_s": round(time.perf_counter() - start, 2)}
    row["idle_s"] = wait_idle(members, start)
    one_pass(port, args.asked, members, row, count=args.count, binary=args.binary)
    row["rss_mib"] = round(rss_mib(pid), 1)
    return row


def run_nsd(args: argparse.Namespace, tmp: Path, names: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    nsd = Nsd.start(tmp / "nsd", {name.rstrip("."): zone_text(args.text, name) for name in names})
    try:
        if not args.shown.get("nsd"):
            show_reference("nsd", ["nsd", "-d", "-c", str(tmp / "nsd" / "nsd.conf")])
            args.shown["nsd"] = True
        members = functools.partial(_live_group_members, nsd.pid)
        return measure(nsd.port, nsd.pid, members, names, start, args)
    finally:
        nsd.stop()


def run_secdns(
    args: argparse.Namespace, tmp: Path, names: list[str], source: Path | None
) -> dict[str, float]:
    tmp.mkdir()
    files = tmp / "zones"
    files.mkdir()
    zones = []
    for name in names:
        path = files / f"{name}zone"
        path.write_text(zone_text(args.text, name))
        zones.append({"name": name, "file": str(path)})
    port = free_port()
    config = tmp / "secdns.toml"
    server = {"directory": str(tmp / "store"), "listen": [f"127.0.0.1:{port}"]}
    config.write_text(tomli_w.dumps({"server": server, "zone": zones}))
    env = compiled_env(tmp.parent / "pycache", source)
    warm_pycache(env, source or HERE.parent)
    start = time.perf_counter()
    # (python -m imports the cwd's secdns first: the source tree's own, or this checkout's)
    proc = subprocess.Popen(
        [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"],
        env=env,
        cwd=source or HERE.parent,
    )
    try:
        return measure(port, proc.pid, with_children(proc.pid), names, start, args)
    finally:
        proc.terminate()
        proc.wait()


def one_round(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="secdns-zonesfirst-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only != "secdns":
            results["nsd"] = run_nsd(args, tmp, names)
            print(f"nsd: {results['nsd']}", file=sys.stderr)
        if args.only != "nsd":
            runs: list[tuple[str, Path | None]] = [("secdns", None)]
            if args.baseline is not None:
                runs.append(("secdns-baseline", args.baseline.resolve()))
            for label, source in runs:
                results[label] = run_secdns(args, tmp / label, names, source)
                print(f"{label}: {results[label]}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, default=10000)
    parser.add_argument("--records", type=int, default=20, help="per zone (about)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median")
    parser.add_argument("--only", choices=("nsd", "secdns"))
    parser.add_argument(
        "--baseline", type=Path, help="also run secdns from this source tree (e.g. main's)"
    )
    parser.add_argument(
        "--rd-clear", action="store_true", help="ask with RD clear, as resolvers do (dnsperf -B)"
    )
    parser.add_argument("--edns", type=int, help="ask with EDNS and this payload (dnsperf -B)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per start, seconds")
    add_genzone_option(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="secdns-zonesfirst-q-"))
    template = work / "template.zone"
    genzone(args.genzone, args.records, template, origin=TEMPLATE, serial=SERIAL)
    args.text = template.read_text()
    names = zone_names(args.zones)
    text_questions = work / "questions.txt"
    args.count = questions(template, names, text_questions)
    args.binary = args.rd_clear or args.edns is not None
    args.asked = text_questions
    if args.binary:
        args.asked = text_questions.with_suffix(".bin")
        binary_queries(text_questions, args.asked, not args.rd_clear, args.edns, False)
    args.shown = {}
    print(
        f"{args.zones} zones, {args.count} distinct questions; "
        f"dnsperf -s 127.0.0.1 -p PORT -d {args.asked} -c 10 -T 1 -q 100 -n 1"
        + (" -B" if args.binary else ""),
        file=sys.stderr,
    )
    rounds = [one_round(args, names) for _ in range(args.rounds)]
    results: dict[str, dict[str, float]] = {}
    for label in rounds[0]:
        results[label] = {
            field: statistics.median(r[label][field] for r in rounds) for field in rounds[0][label]
        }
    if "nsd" in results and "secdns" in results:
        results["ratio"] = {
            "first_pass": round(
                results["secdns"]["first_pass_qps"] / results["nsd"]["first_pass_qps"], 3
            ),
            "all_served": round(
                results["secdns"]["all_served_s"] / results["nsd"]["all_served_s"], 2
            ),
        }
    print(json.dumps({"zones": args.zones, "rounds": args.rounds, "median": results}, indent=2))
    for made in work.iterdir():
        made.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
