#!/usr/bin/env python3
"""A downstream NSD fetching every zone from secdns serve, beside the same NSD fetching
them from a Knot primary: secdns as a distribution tier.

--zones small zones (genzone's 20-record template as in manyzones_bench) are served by
``secdns serve`` (as ``file`` zones, transfers allowed by TSIG key) and, in turn, by
Knot (the same files, the same key).  An NSD secondary of all of them (one pattern:
``request-xfr: PRIMARY KEY``, as NSD's docs set a keyed secondary up) is started empty
and timed until every zone answers its SOA; its log's TCP errors (connection reset,
broken pipe) are counted.  Medians of --repeat rounds; the ratio is to Knot.
``--before DIR`` also runs the secdns package in DIR.

    python bench/downstream_bench.py [--zones 1000] [--repeat 3] [--before DIR]
"""

from __future__ import annotations

import argparse
import base64
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
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
from measure import add_genzone_option, genzone, show_reference  # noqa: E402
from servers import free_port  # noqa: E402

TEMPLATE = "template.invalid"
TCP_ERRORS = ("reset by peer", "Broken pipe", "now in progress")


def answers(port: int, zone: str) -> bool:
    try:
        reply = dns.query.udp(
            dns.message.make_query(zone + ".", "SOA"), "127.0.0.1", timeout=0.3, port=port
        )
    except Exception:
        return False
    return bool(reply.answer)


def wait_all(port: int, zones: list[str], timeout: float) -> tuple[float, int]:
    """Seconds until every zone answers (and how many do)."""
    start = time.monotonic()
    pending = list(zones)
    while pending and time.monotonic() - start < timeout:
        pending = [z for z in pending if not answers(port, z)]
        if pending:
            time.sleep(0.1)
    return time.monotonic() - start, len(zones) - len(pending)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def nsd_conf(work: Path, port: int, primary: int, secret: str, zones: list[str]) -> Path:
    lines = [
        "server:",
        f"    ip-address: 127.0.0.1@{port}",
        f"    port: {port}",
        "    do-ip6: no",
        "    server-count: 1",
        "    verbosity: 1",
        '    username: ""',
        '    chroot: ""',
        f'    zonesdir: "{work}"',
        f'    pidfile: "{work}/nsd.pid"',
        '    database: ""',
        f'    zonelistfile: "{work}/zone.list"',
        f'    xfrdfile: "{work}/xfrd.state"',
        f'    xfrdir: "{work}"',
        f'    cookie-secret-file: "{work}/cookie"',
        "remote-control:",
        "    control-enable: no",
        "key:",
        "    name: down",
        "    algorithm: hmac-sha256",
        f'    secret: "{secret}"',
        "pattern:",
        "    name: secondary",
        f"    request-xfr: 127.0.0.1@{primary} down",
        "    allow-notify: 127.0.0.1 down",
    ]
    for zone in zones:
        lines += [
            "zone:",
            f"    name: {zone}",
            "    include-pattern: secondary",
            f"    zonefile: {zone}.zone",
        ]
    conf = work / "nsd.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def knot_conf(work: Path, port: int, secret: str, zones: list[str], files: Path) -> Path:
    lines = [
        "server:",
        f"    listen: 127.0.0.1@{port}",
        f'    rundir: "{work}"',
        "log:",
        "  - target: stderr",
        "    any: warning",
        "key:",
        "  - id: down",
        "    algorithm: hmac-sha256",
        f"    secret: {secret}",
        "acl:",
        "  - id: down",
        "    key: down",
        "    action: transfer",
        "template:",
        "  - id: default",
        f'    storage: "{files}"',
        "    acl: down",
        "    zonefile-sync: -1",
        "    journal-content: none",
        "database:",
        f'    storage: "{work}/db"',
        "zone:",
    ]
    lines += [f"  - domain: {zone}\n    file: {zone}.zone" for zone in zones]
    conf = work / "knot.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def one_round(
    label: str,
    primary_argv: list[str],
    port: int,
    zones: list[str],
    work: Path,
    secret: str,
    env: dict[str, str] | None,
) -> tuple[float, int]:
    """Start the primary, wait until it answers every zone, then time NSD fetching them."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    primary = subprocess.Popen(
        primary_argv,
        stdout=subprocess.DEVNULL,
        stderr=open(work / f"{label}.log", "wb"),
        env=env,
        start_new_session=True,
    )
    try:
        took, count = wait_all(port, zones, 120)
        if count != len(zones):
            raise SystemExit(f"{label}: the primary answers {count}/{len(zones)} zones")
        nsd_port = free_port()
        (work / "nsd").mkdir()
        conf = nsd_conf(work / "nsd", nsd_port, port, secret, zones)
        nsd = subprocess.Popen(
            ["nsd", "-d", "-c", str(conf)],
            stdout=open(work / "nsd.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            took, count = wait_all(nsd_port, zones, 600)
        finally:
            stop(nsd)
        if count != len(zones):
            print(f"  {label}: NSD fetched only {count}/{len(zones)} zones in {took:.1f} s")
        text = (work / "nsd.log").read_text(errors="replace")
        return took, sum(text.count(error) for error in TCP_ERRORS)
    finally:
        stop(primary)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a directory holding another secdns package")
    add_genzone_option(parser)
    args = parser.parse_args()
    for binary in ("nsd", "knotd"):
        if shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
            raise SystemExit(f"{binary} is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="downstream-bench-"))
    try:
        template = tmp / "template.zone"
        genzone(args.genzone, 20, template, origin=TEMPLATE, serial=2024060101)
        text = template.read_text()
        zones = [f"z{index:05d}.test" for index in range(args.zones)]
        files = tmp / "zones"
        files.mkdir()
        for zone in zones:
            (files / f"{zone}.zone").write_text(text.replace(f"{TEMPLATE}.", f"{zone}."))
        secret = base64.b64encode(os.urandom(32)).decode()
        secdns_port, knot_port = free_port(), free_port()
        config = tmp / "secdns.toml"
        config.write_text(
            f'[server]\ndirectory = "{tmp}/store"\nlisten = ["127.0.0.1:{secdns_port}"]\n'
            f'[keys.down]\nsecret = "{secret}"\n'
            + "".join(
                f'[[zone]]\nname = "{z}"\nfile = "{files}/{z}.zone"\n'
                'allow_transfer = ["key:down"]\n'
                for z in zones
            )
        )
        config.chmod(0o600)
        knot_work = tmp / "knot-run"
        knot_work.mkdir()
        knot_cfg = knot_conf(knot_work, knot_port, secret, zones, files)
        runs = {
            "secdns": (
                [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"],
                secdns_port,
                None,
            ),
            "knot": (["knotd", "-c", str(knot_cfg)], knot_port, None),
        }
        if args.before is not None:
            env = dict(os.environ, PYTHONPATH=str(args.before.resolve()))
            runs["before"] = (runs["secdns"][0], secdns_port, env)
        show_reference("knot (primary)", runs["knot"][0])
        print(
            "  the downstream: nsd -d -c nsd.conf (request-xfr: 127.0.0.1@PRIMARY down), "
            f"{args.zones} zones"
        )
        results: dict[str, list[tuple[float, int]]] = {label: [] for label in runs}
        for round_ in range(args.repeat):
            order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
            for label in order:
                argv, port, env = runs[label]
                took, errors = one_round(
                    label, argv, port, zones, tmp / f"round-{label}", secret, env
                )
                results[label].append((took, errors))
                print(
                    f"  round {round_ + 1} {label:7} NSD fetched every zone in {took:6.2f} s, "
                    f"{errors} TCP errors in its log"
                )
        knot = statistics.median(t for t, _ in results["knot"])
        print(f"medians of {args.repeat}:")
        for label, rounds in results.items():
            took = statistics.median(t for t, _ in rounds)
            errors = statistics.median(e for _, e in rounds)
            print(
                f"  {label:7} {took:7.2f} s  TCP errors {errors:5.0f}  "
                f"ratio to knot {took / knot:5.2f}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
