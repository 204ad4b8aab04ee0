#!/usr/bin/env python3
"""How close ``watch --servers`` lags are to the truth, this tree against a reference.

A BIND primary (genzone's realistic zone) NOTIFYs a Knot secondary; another
Knot secondary only refreshes on a short SOA timer (--refresh, default 2 s).  An
independent poller queries all three every 5 ms and gives, for each change, the
window in which each server switched serials.  Each round, this tree's
``secdns watch ZONE --servers @PRIMARY @KNOT @NSD --until-serial next --json`` and
the reference's (another checkout's interpreter, e.g. main's, same arguments)
run side by side at the default --interval; after a random delay the primary
takes an update.  For each server and each monitor: the reported lag, its
window, the poller's lag, the error.  Also the CPU (user + sys) of each monitor.

    python bench/monitor_lag_bench.py [--rounds 5] [--records 10000]
        [--reference-python /work/main/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rdatatype  # noqa: E402
from measure import add_genzone_option, genzone, median, show_reference  # noqa: E402
from servers import Bind, Knot, free_port  # noqa: E402

ZONE = "example.com"


class Poller(threading.Thread):
    """Every ``period`` seconds, the SOA of each server: (sent, received, serial)."""

    def __init__(self, servers: dict[str, tuple[str, int]], period: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.servers = servers
        self.period = period
        self.seen: dict[str, list[tuple[float, float, int]]] = {name: [] for name in servers}
        self.halt = threading.Event()

    def run(self) -> None:
        query = dns.message.make_query(dns.name.from_text(ZONE), dns.rdatatype.SOA)
        while not self.halt.is_set():
            for name, (host, port) in self.servers.items():
                sent = time.monotonic()
                try:
                    answer = dns.query.udp(query, host, port=port, timeout=0.5)
                except Exception:  # noqa: BLE001 - a lost answer is only a gap
                    continue
                if answer.answer:
                    self.seen[name].append((sent, time.monotonic(), answer.answer[0][0].serial))
            self.halt.wait(self.period)

    def switched(self, name: str, serial: int) -> tuple[float, float] | None:
        before = None
        for sent, received, seen in self.seen[name]:
            if seen == serial:
                return (before, received) if before is not None else None
            before = sent
        return None


def run_monitor(
    python: str, servers: list[str], cwd: Path, extra: list[str]
) -> subprocess.Popen[str]:
    argv = [python, "-m", "secdns", "watch", ZONE, "--servers", *servers, "--json"]
    argv += ["--until-serial", "next", "--timeout", "30", *extra]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )


def wait_measured(proc: subprocess.Popen[str]) -> tuple[list[dict], float]:
    """Its JSON events, and its CPU seconds (os.wait4)."""
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"monitor exit {proc.returncode}: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    return [json.loads(line) for line in out.splitlines()], usage.ru_utime + usage.ru_stime


def first_answers(proc: subprocess.Popen[str], count: int, into: list[str]) -> None:
    assert proc.stdout is not None
    while len(into) < count:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"monitor ended early: {proc.stderr.read()}")  # type: ignore[union-attr]
        into.append(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--refresh", type=int, default=2, help="the SOA refresh (timer secondary)")
    parser.add_argument("--reference-python", default="/work/main/.venv/bin/python")
    parser.add_argument(
        "--notify",
        action="store_true",
        help="also run this tree with --notify-listen, the primary's first also-notify",
    )
    add_genzone_option(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-lag-"))
    zone_file = work / "example.com.zone"
    genzone(args.genzone, args.records, zone_file, origin=ZONE, serial=2024060101)
    lines = zone_file.read_text().splitlines(keepends=True)
    soa = next(i for i, line in enumerate(lines) if " SOA " in line)
    fields = lines[soa].split()
    fields[-4] = str(args.refresh)  # refresh, retry, expire, minimum are the last four
    fields[-3] = "1"
    lines[soa] = " ".join(fields) + "\n"
    text = "".join(lines)
    knot_port, monitor_port = free_port(), free_port()
    notify = [("127.0.0.1", knot_port)]
    if args.notify:  # the monitor first: BIND sends the next NOTIFY up to 50 ms later
        notify.insert(0, ("127.0.0.1", monitor_port))
    primary = Bind.start(work / "bind", {ZONE: text}, notify=notify)
    started = [primary]
    try:
        started.append(
            Knot.start_secondary(work / "knot", {ZONE: primary.endpoint}, port=knot_port)
        )
        started.append(Knot.start_secondary(work / "knot-timer", {ZONE: primary.endpoint}))
        names = {"primary": started[0], "knot-notify": started[1], "knot-timer": started[2]}
        by_addr = {server.addr: name for name, server in names.items()}
        servers = [f"@{server.addr}" for server in names.values()]
        pythons = {"this": (sys.executable, []), "reference": (args.reference_python, [])}
        if args.notify:
            listen = ["--notify-listen", f"127.0.0.1:{monitor_port}"]
            pythons["this+notify"] = (sys.executable, listen)
        cwd = Path(tempfile.mkdtemp(prefix="lag-cwd-"))  # not a checkout: no stray import
        show_reference(
            "monitor",
            [
                args.reference_python,
                "-m",
                "secdns",
                "watch",
                ZONE,
                "--servers",
                *servers,
                "--json",
                "--until-serial",
                "next",
                "--timeout",
                "30",
            ],
        )
        poller = Poller({name: server.endpoint for name, server in names.items()})
        poller.start()
        serial = primary.soa_serial(ZONE)
        errors: dict[str, list[float]] = {label: [] for label in pythons}
        stated: dict[str, list[float]] = {label: [] for label in pythons}
        cpu: dict[str, list[float]] = {label: [] for label in pythons}
        for rnd in range(args.rounds):
            procs = {
                label: run_monitor(python, servers, cwd, extra)
                for label, (python, extra) in pythons.items()
            }
            for proc in procs.values():
                first_answers(proc, len(names), [])
            time.sleep(random.uniform(0.2, 1.2))  # any phase of the 1 s interval
            serial += 1
            primary.nsupdate(f"update add r{rnd}.{ZONE}. 60 A 192.0.2.9")
            for label, proc in procs.items():
                events, seconds = wait_measured(proc)
                cpu[label].append(seconds)
                moved = [e for e in events if e["event"] == "serial" and e["serial"] == serial]
                truth_first = poller.switched("primary", serial)
                for event in moved:
                    name = by_addr[event["address"]]
                    window = poller.switched(name, serial)
                    if window is None or truth_first is None:
                        continue
                    truth = (sum(window) - sum(truth_first)) / 2
                    error = event["lag"] - truth
                    errors[label].append(abs(error))
                    if name != "primary":  # the reference itself: 0
                        stated[label].append(event["lag_precision"])
                    print(
                        f"round {rnd} {label:11} {name:11} lag {event['lag']:.3f}s "
                        f"±{event['lag_precision']:.3f} "
                        f"(window {event.get('lag_min', float('nan')):.3f}-"
                        f"{event.get('lag_max', float('nan')):.3f})  poller {truth:.3f}s "
                        f"±{(window[1] - window[0] + truth_first[1] - truth_first[0]) / 2:.3f}  "
                        f"error {error:+.3f}s"
                    )
        poller.halt.set()
        print()
        for label in pythons:
            print(
                f"{label:11}: worst |error| {max(errors[label]):.3f}s, median "
                f"{median(errors[label]):.3f}s; secondaries' stated precision "
                f"{min(stated[label]):.3f}-"
                f"{max(stated[label]):.3f}s; CPU per run median {median(cpu[label]):.3f}s "
                f"({len(errors[label])} lags, {args.rounds} rounds)"
            )
    finally:
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    main()
