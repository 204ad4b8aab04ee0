#!/usr/bin/env python3
"""Benchmark ``secdns watch``: CPU of one process between changes, against the 10% target.

1. Mirror: generates N tiny zones (default 1,000), serves them from one BIND on
   loopback, runs ``secdns watch -c secdns.toml`` (every zone, one store) until
   every zone is synced, then measures the process's CPU time (user + system,
   from /proc) over a quiet window: at the zones' SOA refresh, and with
   ``--interval`` forced down (10 s: 100 SOA checks a second).
2. Monitor: one Knot listening on M loopback addresses (default 100:
   127.0.0.2 ... 127.0.0.101, same port; BIND only listens on addresses
   configured on an interface, Knot binds them directly), runs
   ``secdns watch ZONE --servers @127.0.0.2:P ...`` at 1 query per address per
   second, and measures the same way.

Prints a table (checks per second, % of one core, CPU per check) and writes
bench/out/watch.json.

    python bench/watch_bench.py [--zones N] [--addresses M] [--window SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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

import dns.message  # noqa: E402
import dns.query  # noqa: E402
from measure import process_cpu  # noqa: E402
from servers import Bind, find_binary, free_port  # noqa: E402

TARGET = 10.0  # % of one core
# `watch` is not registered in secdns/cli/__init__.py yet: add it in the child.
SECDNS = [
    sys.executable,
    "-c",
    "from secdns.cli import cli; from secdns.cli.watch import "
    "command; cli.add_command(command); cli(prog_name='secdns')",
    "watch",
]


def tiny_zone(name: str, refresh: int) -> str:
    return (
        f"$ORIGIN {name}.\n$TTL 3600\n"
        f"@ IN SOA ns1 hostmaster 1 {refresh} 600 86400 300\n"
        "@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n"
        'txt IN TXT "a tiny zone for the watch benchmark"\n'
    )


class Watcher:
    """``secdns watch`` in a child process; counts its JSON events as they come."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            [*SECDNS, *argv, "--json"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line).get("event", "?")
            with self.lock:
                self.counts[event] = self.counts.get(event, 0) + 1

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def count(self, *events: str) -> int:
        with self.lock:
            return sum(self.counts.get(e, 0) for e in events)

    def wait_for(self, events: tuple[str, ...], number: int, timeout: float) -> float:
        started = time.monotonic()
        while self.count(*events) < number:
            if self.process.poll() is not None:
                raise SystemExit(
                    f"watch exited {self.process.returncode}: {''.join(self.stderr[-20:])}"
                )
            if time.monotonic() - started > timeout:
                raise SystemExit(
                    f"only {self.count(*events)} of {number} {events} events "
                    f"after {timeout:.0f}s: {''.join(self.stderr[-20:])}"
                )
            time.sleep(0.05)
        return time.monotonic() - started

    def measure(self, window: float) -> tuple[float, int]:
        """CPU seconds over a quiet window, and the events seen during it."""
        before_events = sum(self.counts.values())
        before = process_cpu(self.process.pid)
        time.sleep(window)
        cpu = process_cpu(self.process.pid) - before
        return cpu, sum(self.counts.values()) - before_events

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def row(
    results: list[dict],
    scenario: str,
    checks_per_s: float,
    cpu: float,
    window: float,
    events: int,
    extra: dict | None = None,
) -> None:
    percent = 100.0 * cpu / window
    per_check = cpu / (checks_per_s * window) * 1e6 if checks_per_s else None
    results.append(
        {
            "scenario": scenario,
            "checks_per_s": round(checks_per_s, 2),
            "cpu_percent": round(percent, 2),
            "cpu_us_per_check": round(per_check) if per_check is not None else None,
            "window_s": window,
            "events_in_window": events,
            "target_percent": TARGET,
            "ok": percent < TARGET,
            **(extra or {}),
        }
    )
    per = f"{per_check:6.0f} us" if per_check is not None else "      -  "
    print(
        f"  {scenario:<44} {checks_per_s:8.1f}/s {percent:7.2f}% {per}  "
        f"{'ok' if percent < TARGET else 'OVER'}",
        file=sys.stderr,
    )


def bench_mirror(
    tmp: Path, zones: int, window: float, intervals: list[float | None], results: list[dict]
) -> None:
    refresh = 3600
    names = [f"z{i:05d}.bench.test" for i in range(zones)]
    started = time.perf_counter()
    primary = Bind.start(tmp / "bind", {name: tiny_zone(name, refresh) for name in names})
    print(
        f"BIND serves {zones} zones on {primary.addr} "
        f"(started in {time.perf_counter() - started:.1f}s)",
        file=sys.stderr,
    )
    try:
        config = tmp / "secdns.toml"
        lines = ["[server]", f'directory = "{tmp / "store"}"', "concurrency = 16", ""]
        for name in names:
            lines += ["[[zone]]", f'name = "{name}"', f'primaries = ["{primary.addr}"]', ""]
        config.write_text("\n".join(lines))
        for interval in intervals:
            argv = ["-c", str(config)]
            if interval is not None:
                argv += ["--interval", str(interval)]
            watcher = Watcher(argv)
            try:
                took = watcher.wait_for(("updated", "synced"), zones, timeout=600)
                transferred = watcher.count("updated")
                print(
                    f"  mirror start: {zones} zones synced in {took:.1f}s ({transferred} AXFR)",
                    file=sys.stderr,
                )
                time.sleep(min(2.0, window / 4))  # let the start-up burst settle
                # with a forced interval, cover several rounds of checks
                measured = max(window, 3 * interval) if interval is not None else window
                cpu, events = watcher.measure(measured)
            finally:
                status = watcher.stop()
            every = interval if interval is not None else refresh
            label = (
                f"mirror {zones} zones, --interval {interval:g}s"
                if interval is not None
                else f"mirror {zones} zones, SOA refresh {refresh}s"
            )
            row(
                results,
                label,
                zones / every,
                cpu,
                measured,
                events,
                {
                    "zones": zones,
                    "interval_s": every,
                    "startup_s": round(took, 2),
                    "startup_axfr": transferred,
                    "exit_status": status,
                },
            )
    finally:
        primary.stop()


def knot_on_addresses(
    tmp: Path, addresses: list[str], port: int, zone: str
) -> subprocess.Popen[bytes]:
    knotd = find_binary("knotd")
    if knotd is None:
        raise SystemExit("knotd is not installed")
    workdir = tmp / "knot"
    (workdir / "db").mkdir(parents=True)
    (workdir / f"{zone}.zone").write_text(tiny_zone(zone, 3600))
    listen = ", ".join(f"{address}@{port}" for address in addresses)
    (workdir / "knot.conf").write_text(
        "\n".join(
            [
                "server:",
                f'    rundir: "{workdir}"',
                "    user: root:root",
                f"    listen: [{listen}]",
                "    udp-workers: 2",
                "    tcp-workers: 1",
                "    background-workers: 1",
                "",
                "control:",
                f'    listen: "{workdir}/knot.sock"',
                "",
                "log:",
                "  - target: stderr",
                "    any: warning",
                "",
                "database:",
                f'    storage: "{workdir / "db"}"',
                "",
                "zone:",
                f'  - domain: "{zone}"',
                f'    file: "{workdir}/{zone}.zone"',
                "    zonefile-sync: -1",
                "",
            ]
        )
    )
    with open(workdir / "server.log", "wb") as log:
        process = subprocess.Popen(
            [knotd, "-c", str(workdir / "knot.conf")],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    pending = list(addresses)
    while pending:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(
                f"knotd did not answer on {pending[0]}@{port}: "
                f"{(workdir / 'server.log').read_text()[-2000:]}"
            )
        try:
            dns.query.udp(dns.message.make_query(zone, "SOA"), pending[0], port=port, timeout=0.2)
            pending.pop(0)
        except Exception:  # not up yet
            time.sleep(0.05)
    return process


def bench_monitor(
    tmp: Path, count: int, window: float, interval: float, results: list[dict]
) -> None:
    zone = "bench.test"
    addresses = [f"127.0.0.{2 + i}" for i in range(count)]
    port = free_port()
    knot = knot_on_addresses(tmp, addresses, port, zone)
    print(
        f"Knot answers {zone} on {count} addresses 127.0.0.2-{addresses[-1]} port {port}",
        file=sys.stderr,
    )
    try:
        watcher = Watcher(
            [zone, "--servers", *(f"@{a}:{port}" for a in addresses), "--interval", str(interval)]
        )
        try:
            took = watcher.wait_for(("consistent",), 1, timeout=60)
            print(f"  monitor start: {count} addresses consistent in {took:.1f}s", file=sys.stderr)
            time.sleep(min(2.0, window / 4))
            cpu, events = watcher.measure(window)
        finally:
            status = watcher.stop()
        row(
            results,
            f"monitor {count} addresses, --interval {interval:g}s",
            (count - 1) / interval + 20,  # the first @SERVER is the primary: 20 a second
            cpu,
            window,
            events,
            {"addresses": count, "interval_s": interval, "exit_status": status},
        )
    finally:
        os.killpg(knot.pid, signal.SIGTERM)
        try:
            knot.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(knot.pid, signal.SIGKILL)
            knot.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--addresses", type=int, default=100)
    parser.add_argument(
        "--window", type=float, default=30.0, help="seconds of quiet measured per scenario"
    )
    parser.add_argument(
        "--mirror-interval",
        type=float,
        action="append",
        help="forced --interval for mirror runs (repeatable; default 10)",
    )
    parser.add_argument("--monitor-interval", type=float, default=1.0)
    parser.add_argument("--skip-mirror", action="store_true")
    parser.add_argument("--skip-monitor", action="store_true")
    args = parser.parse_args()
    intervals: list[float | None] = [None, *(args.mirror_interval or [10.0])]
    results: list[dict] = []
    print(
        f"  {'scenario':<44} {'checks':>10} {'CPU':>8} {'per check':>9}  "
        f"(target < {TARGET:g}% of one core)",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="secdns-watch-bench-") as tmp_text:
        tmp = Path(tmp_text)
        if not args.skip_mirror:
            bench_mirror(tmp / "mirror", args.zones, args.window, intervals, results)
        if not args.skip_monitor:
            bench_monitor(
                tmp / "monitor", args.addresses, args.window, args.monitor_interval, results
            )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "watch.json").write_text(
        json.dumps({"target_percent": TARGET, "cpus": os.cpu_count(), "results": results}, indent=2)
        + "\n"
    )
    print(f"wrote {out / 'watch.json'}", file=sys.stderr)
    if not all(r["ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
