#!/usr/bin/env python3
"""First-ask queries: one dnsperf pass over distinct questions, secdns beside NSD in one run.

    python3 /work/shared/genzone.py 1000000 big.zone --origin example.test. \
        --queries big.q --nq 450000
    python bench/first_ask_bench.py big.zone big.q --origin example.test. \
        --distinct-questions 300000 [--repeat 10]

Prints, per server: time from start to the first answer (the zone given as a
file), one pass over the distinct questions of the query file (genzone repeats
some; each is asked once here, so caches stay cold),
then ``--repeat`` seconds over the same file (the repeating mix), peak RSS,
(``--wait-idle``: the pass starts once the server has gone idle after its first
answer, i.e. secdns has built its ready answers; ``idle_s``/``idle_cpu_s`` say when
and at what CPU cost since start; ``--warm-pass``: the same questions again, every
answer made before the pass, the upper bound of preparing answers),
and the server's CPU microseconds per query of the pass (user + system: the
steadier figure on a shared machine; ``first_pass_busiest_thread_us``: its busiest
thread alone, the answering one, without secdns's builder beside it); ``--rounds``
(3) rounds, medians printed;
``--baseline SRC`` also runs secdns from another source tree (``git archive main
secdns | tar -x -C SRC``) in the same run.  ``--rd-clear`` asks as a resolver does
(RD clear: the apex NS and glue in the reply; ``--edns 1232 --do`` adds what resolvers
add), through ``dnsperf -B`` (a file of TCP-framed messages: flags kept, IDs set by
dnsperf).  ``--sustained S``: instead of one pass, S seconds of continuous queries from
the first answer on (the file replayed as it ends), qps printed per 5 s: how soon a
server restarted into steady traffic has its answers ready.
The dnsperf command line is printed so a reader can rerun it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
from measure import group_cpu, group_pss_mib, wait_idle  # noqa: E402
from serve_bench import dnsperf, secdns_config  # noqa: E402
from servers import Nsd, _live_group_members, free_port  # noqa: E402


def rss_mib(pid: int) -> float:
    """Peak resident set (VmHWM) of one process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_pass(
    port: int,
    queries: Path,
    members: Callable[[], list[int]],
    row: dict[str, float],
    warm: bool = False,
    count: int = 0,
    binary: bool = False,
    sustained: int = 0,
) -> None:
    """One dnsperf pass over ``count`` queries; its qps and the server's CPU microseconds
    per query (on a shared machine the CPU cost is the steadier figure); ``warm``: then a
    second pass over the same questions; ``sustained``: that many seconds instead of one
    pass, with the qps of each 5 s (``sustained_qps_5s``)."""
    peak = PeakPss(members)
    before = group_cpu(members(), children=True)
    if sustained:
        intervals: list[float] = []
        row["sustained_qps"] = dnsperf(
            port, queries, sustained, binary=binary, interval=5, intervals=intervals
        )
        row["sustained_qps_5s"] = [round(q) for q in intervals]  # type: ignore[assignment]
        row["sustained_cpu_s"] = round(group_cpu(members(), children=True) - before, 2)
        row["peak_pss_mib"] = peak.stop()
        return
    threads = thread_cpu(members())
    row["first_pass_qps"] = dnsperf(port, queries, 0, once=True, binary=binary)
    spent = group_cpu(members(), children=True) - before
    row["first_pass_cpu_us_per_query"] = round(spent / count * 1e6, 1)
    # the answering thread alone: secdns's builder of ready answers runs beside it
    row["first_pass_busiest_thread_us"] = busiest_thread_us(threads, thread_cpu(members()), count)
    row["peak_pss_mib"] = peak.stop()
    if warm:  # the same questions again: every answer already made (the upper bound of
        # preparing answers before the pass: a query then costs what a cache hit costs)
        before = group_cpu(members(), children=True)
        row["warm_pass_qps"] = dnsperf(port, queries, 0, once=True, binary=binary)
        spent = group_cpu(members(), children=True) - before
        row["warm_pass_cpu_us_per_query"] = round(spent / count * 1e6, 1)


class PeakPss:
    """The largest PSS of a server's processes (its children included: secdns fills its
    ready answers in a forked child), sampled twice a second until :meth:`stop`."""

    def __init__(self, members: Callable[[], list[int]]) -> None:
        self.members = members
        self.peak = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.wait(0.5):
            self.peak = max(self.peak, group_pss_mib(self.members()))

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return round(max(self.peak, group_pss_mib(self.members())), 1)


def with_children(pid: int) -> Callable[[], list[int]]:
    """``pid`` and its live children (a forked builder) now, for each call."""

    def members() -> list[int]:
        found = [pid]
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                found += [int(child) for child in (task / "children").read_text().split()]
        return found

    return members


def thread_cpu(pids: list[int]) -> dict[tuple[int, str], float]:
    """CPU seconds (user + system) of every thread of these processes, by (pid, tid)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[tuple[int, str], float] = {}
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[(pid, task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def busiest_thread_us(
    before: dict[tuple[int, str], float], after: dict[tuple[int, str], float], count: int
) -> float:
    """CPU microseconds per query of the thread that used the most between the two
    snapshots (a server's answering thread; secdns's ready-answer builder is another)."""
    spent = max((cpu - before.get(key, 0.0) for key, cpu in after.items()), default=0.0)
    return round(spent / count * 1e6, 1)


def binary_queries(text: Path, out: Path, rd: bool, edns: int | None, do: bool) -> None:
    """Write ``text``'s questions (``NAME TYPE`` lines) as TCP-framed query messages for
    ``dnsperf -B``, with RD as given and EDNS/DO as asked."""
    with open(text) as source, open(out, "wb") as sink:
        for line in source:
            name, rdtype = line.split()[:2]
            query = dns.message.make_query(
                name,
                rdtype,
                use_edns=0 if edns is not None else False,
                payload=edns or 1232,
                want_dnssec=do,
            )
            query.flags = dns.flags.RD if rd else 0
            wire = query.to_wire()
            sink.write(len(wire).to_bytes(2, "big") + wire)


def distinct_questions(queries: Path, out: Path, limit: int | None = None) -> tuple[int, int]:
    """Write to ``out`` each question of ``queries`` once (the first time it is asked;
    names compared without case, as a server's caches and prepared forms do): genzone's
    query files repeat some questions, which a first pass must not ask twice. Returns
    (kept, dropped); at most ``limit`` kept."""
    seen: set[str] = set()
    kept = dropped = 0
    with open(queries) as source, open(out, "w") as sink:
        for line in source:
            key = line.strip().lower()
            if not key or key in seen:
                dropped += 1
                continue
            if limit is not None and kept >= limit:
                break
            seen.add(key)
            sink.write(line)
            kept += 1
    return kept, dropped


def first_answer(port: int, origin: str, start: float, timeout: float = 600.0) -> float:
    query = dns.message.make_query(origin, "SOA")
    while time.perf_counter() - start < timeout:
        try:
            if dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2).answer:
                return time.perf_counter() - start
        except Exception:
            pass
        time.sleep(0.01)
    raise SystemExit(f"no answer on port {port}")


def run_secdns(args: argparse.Namespace, tmp: Path, source: Path | None) -> dict[str, float]:
    """Start ``secdns serve`` (from ``source``, a source tree, if given) on the zone file and
    measure it."""
    tmp.mkdir()
    port = free_port()
    config = secdns_config(
        tmp / "secdns.toml",
        port,
        tmp / "store",
        {"name": args.origin, "file": str(args.zone.resolve())},
    )
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"],
        env=env,
        cwd=str(source.resolve()) if source is not None else None,
    )
    try:
        row = {"start_s": round(first_answer(port, args.origin, start), 2)}
        members = with_children(proc.pid)
        if args.wait_idle:
            peak = PeakPss(members)
            row["idle_s"] = wait_idle(members, start)
            row["idle_cpu_s"] = round(group_cpu(members(), children=True), 2)
            row["idle_peak_pss_mib"] = peak.stop()
        time.sleep(args.settle)
        one_pass(
            port,
            args.asked,
            members,
            row,
            args.warm_pass,
            args.count,
            args.binary,
            args.sustained,
        )
        if args.repeat:
            row["repeat_qps"] = dnsperf(port, args.queries, args.repeat)
        row["rss_mib"] = round(rss_mib(proc.pid), 1)
        return row
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("zone", type=Path)
    parser.add_argument("queries", type=Path)
    parser.add_argument("--origin", default="example.test.")
    parser.add_argument("--repeat", type=int, default=0, help="seconds of the repeating mix")
    parser.add_argument("--only", choices=("nsd", "secdns"))
    parser.add_argument(
        "--baseline", type=Path, help="also run secdns from this source tree (e.g. main's)"
    )
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait after start")
    parser.add_argument(
        "--distinct-questions",
        type=int,
        help="ask at most this many distinct questions in the first pass (genzone repeats"
        " some: generate more with --nq, e.g. 450,000 for 300,000 distinct)",
    )
    parser.add_argument(
        "--warm-pass",
        action="store_true",
        help="after the first pass, ask the same questions again (every answer made before"
        " the pass: the upper bound of preparing answers eagerly)",
    )
    parser.add_argument(
        "--wait-idle",
        action="store_true",
        help="start the first pass once the server is idle after its first answer (secdns"
        " builds its ready answers in the background); idle_s and idle_cpu_s say when",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median")
    parser.add_argument(
        "--rd-clear", action="store_true", help="ask with RD clear, as resolvers do (dnsperf -B)"
    )
    parser.add_argument("--edns", type=int, help="ask with EDNS and this payload (dnsperf -B)")
    parser.add_argument("--do", action="store_true", help="with --edns: set DO, as resolvers do")
    parser.add_argument(
        "--sustained",
        type=int,
        default=0,
        help="seconds of continuous queries from the first answer instead of one pass",
    )
    args = parser.parse_args()
    # the first pass asks each question once; the repeating mix replays the file as given
    args.distinct = Path(tempfile.mkdtemp(prefix="secdns-firstask-")) / "distinct.q"
    kept, dropped = distinct_questions(args.queries, args.distinct, args.distinct_questions)
    print(
        f"first pass: {kept} distinct questions ({dropped} repeats of {args.queries} left out)",
        file=sys.stderr,
    )
    args.count = kept
    args.binary = args.rd_clear or args.edns is not None
    args.asked = args.distinct
    if args.binary:
        args.asked = args.distinct.with_suffix(".bin")
        binary_queries(args.distinct, args.asked, not args.rd_clear, args.edns, args.do)
    limit = f"-l {args.sustained} -S 5" if args.sustained else "-n 1"
    print(
        f"dnsperf -s 127.0.0.1 -p PORT -d {args.asked} -c 10 -T 1 -q 100 {limit}"
        + (" -B" if args.binary else ""),
        file=sys.stderr,
    )
    rounds = [one_round(args) for _ in range(args.rounds)]
    results: dict[str, dict[str, float]] = {}
    for label in rounds[0]:
        results[label] = {
            field: _median([r[label][field] for r in rounds]) for field in rounds[0][label]
        }
    if "nsd" in results and "secdns" in results and not args.sustained:
        results["ratio"] = {
            "first_pass": round(
                results["secdns"]["first_pass_qps"] / results["nsd"]["first_pass_qps"], 3
            )
        }
    print(json.dumps({"rounds": args.rounds, "median": results, "each": rounds}, indent=2))
    for made in args.distinct.parent.iterdir():
        made.unlink()
    args.distinct.parent.rmdir()


def _median(values: list) -> object:
    """The median of a figure over rounds; of a list of figures (qps per 5 s), position by
    position."""
    if isinstance(values[0], list):
        return [statistics.median(column) for column in zip(*values, strict=False)]
    return statistics.median(values)


def one_round(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """NSD, then secdns (and the baseline), each started afresh on the zone file."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.only != "secdns":
            start = time.perf_counter()
            nsd = Nsd.start(tmp / "nsd", {args.origin.rstrip("."): args.zone.resolve()})
            load = time.perf_counter() - start
            try:
                row = {"start_s": round(load, 2)}
                members = functools.partial(_live_group_members, nsd.pid)
                if args.wait_idle:
                    row["idle_s"] = wait_idle(members, start)
                    row["idle_cpu_s"] = round(group_cpu(members(), children=True), 2)
                one_pass(
                    nsd.port,
                    args.asked,
                    members,
                    row,
                    args.warm_pass,
                    args.count,
                    args.binary,
                    args.sustained,
                )
                if args.repeat:
                    row["repeat_qps"] = dnsperf(nsd.port, args.queries, args.repeat)
                results["nsd"] = row
                print(f"nsd: {row}", file=sys.stderr)
            finally:
                nsd.stop()
        if args.only != "nsd":
            runs = [("secdns", None)]
            if args.baseline is not None:
                runs.append(("secdns-baseline", args.baseline))
            for label, source in runs:
                results[label] = run_secdns(args, tmp / label, source)
                print(f"{label}: {results[label]}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
