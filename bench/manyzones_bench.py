#!/usr/bin/env python3
"""Benchmark ``secdns serve`` with many small secondary zones against a Knot secondary.

1. One zone of ~--records records (default 20) from the shared generator
   (``--genzone``, ../shared/genzone.py), written out --zones times (default
   10,000) under the names z0.many.test, z1.many.test, ...; one BIND primary
   serves them all and notifies both secondaries.
2. Cold start: ``secdns serve`` with a generated config of every zone (an empty
   store), timed from its start until every zone answers the primary's serial;
   then a Knot secondary of the same zones (``zonefile-sync: 0``), timed the same
   way (tests/servers.py's Knot: it returns once every zone answers SOA).
3. Restart with the store (Knot: its database and zone files) in place: the
   same times again.
4. RSS of each secondary with every zone served, total and per zone.
Medians are not taken: each start is one run of the whole set (--repeat runs
the cold start and restart of each that many times, new store each time).
Prints every reference command line and the ratios; writes bench/out/manyzones.json.

    python bench/manyzones_bench.py [--zones 10000] [--records 20] [--repeat 1] [--genzone PATH]
    python bench/manyzones_bench.py --zones 300     # the small version
"""

from __future__ import annotations

import argparse
import json
import os
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
sys.path.insert(0, str(HERE))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import tomli_w  # noqa: E402
from measure import add_genzone_option, genzone, show_reference  # noqa: E402
from servers import Bind, Knot, _live_group_members, free_port  # noqa: E402

TEMPLATE = "template.invalid"
SERIAL = 2024060101


def zone_names(count: int) -> list[str]:
    return [f"z{i}.many.test" for i in range(count)]


def zone_texts(template: str, names: list[str]) -> dict[str, str]:
    return {name: template.replace(f"{TEMPLATE}.", f"{name}.") for name in names}


def wait_all(port: int, names: list[str], serial: int, timeout: float) -> float:
    """Poll until every zone answers SOA with ``serial``; the seconds it took."""
    start = time.perf_counter()
    pending = list(names)
    while pending:
        name = pending[-1]
        query = dns.message.make_query(f"{name}.", "SOA")
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
        except Exception:
            reply = None
        if (
            reply is not None
            and reply.rcode() == dns.rcode.NOERROR
            and reply.answer
            and reply.answer[0][0].serial == serial
        ):
            pending.pop()
            continue
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"{len(pending)} zones not served after {timeout:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - start


def group_rss_mib(pgid: int) -> float:
    """Memory now of every process in the group (NSD forks; the others do not), as the sum
    of their proportional set sizes, so that pages the processes share count once."""
    total = 0
    for pid in _live_group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def argv_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def secdns_round(
    workdir: Path, port: int, primary: str, names: list[str], timeout: float
) -> dict[str, float]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "secdns.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "server": {"directory": str(workdir / "store"), "listen": [f"127.0.0.1:{port}"]},
                "zone": [{"name": name, "primaries": [primary]} for name in names],
            }
        )
    )
    argv = [sys.executable, "-m", "secdns", "serve", "-c", str(config), "-q"]
    show_reference("secdns", argv)
    found: dict[str, float] = {}
    for phase in ("cold", "restart"):
        started = time.perf_counter()
        proc = subprocess.Popen(argv, start_new_session=True)
        try:
            wait_all(port, names, SERIAL, timeout)
            found[phase] = time.perf_counter() - started
            found[f"{phase}_rss_mib"] = group_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    return found


def knot_round(
    workdir: Path, port: int, primary: tuple[str, int], names: list[str]
) -> dict[str, float]:
    found: dict[str, float] = {}
    zones = {name: primary for name in names}
    for phase in ("cold", "restart"):
        started = time.perf_counter()
        knot = Knot.start_secondary(workdir, zones, port=port)
        try:
            # start_secondary returns once every zone answers SOA, after one polling pass
            # as secdns's; that time is Knot's figure.  A second pass then checks the serial
            # (Knot holds no other); it costs the poller seconds at 10,000 zones, so it is
            # kept apart (knot_verified) rather than added to Knot's time.
            found[phase] = time.perf_counter() - started
            wait_all(port, names, SERIAL, 60)
            found[f"{phase}_verified"] = time.perf_counter() - started
            found[f"{phase}_rss_mib"] = group_rss_mib(knot.pid)
            if phase == "cold":
                show_reference("knot", argv_of(knot.pid))
                print(f"  knot config: {workdir / 'knot.conf'} (zonefile-sync: 0)", file=sys.stderr)
        finally:
            knot.stop()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=20, help="per zone (about)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per start, seconds")
    add_genzone_option(parser)
    args = parser.parse_args()
    for binary in ("named", "knotd"):
        if shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
            raise SystemExit(f"{binary} is not installed")
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    template_file = out_dir / f"manyzones.{args.records}.template.zone"
    genzone(args.genzone, args.records, template_file, origin=TEMPLATE, serial=SERIAL)
    names = zone_names(args.zones)
    texts = zone_texts(template_file.read_text(), names)
    runs: dict[str, list[dict[str, float]]] = {"secdns": [], "knot": []}
    with tempfile.TemporaryDirectory(prefix="secdns-manyzones-") as tmp_text:
        tmp = Path(tmp_text)
        secdns_port, knot_port = free_port(), free_port()
        started = time.perf_counter()
        primary = Bind.start(
            tmp / "primary",
            texts,
            notify=[("127.0.0.1", secdns_port), ("127.0.0.1", knot_port)],
        )
        print(
            f"BIND primary: {args.zones} zones of {args.records} records loaded in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        show_reference("BIND primary", argv_of(primary.pid))
        try:
            for round_ in range(args.repeat):
                # one after the other, not at once: each has the machine to itself
                runs["secdns"].append(
                    secdns_round(
                        tmp / f"secdns-{round_}", secdns_port, primary.addr, names, args.timeout
                    )
                )
                print(f"  secdns round {round_ + 1}: {runs['secdns'][-1]}", file=sys.stderr)
                runs["knot"].append(
                    knot_round(tmp / f"knot-{round_}", knot_port, primary.endpoint, names)
                )
                print(f"  knot round {round_ + 1}: {runs['knot'][-1]}", file=sys.stderr)
        finally:
            primary.stop()

    def med(label: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[label])

    table = {
        label: {
            "cold_start_to_all_served_s": round(med(label, "cold"), 2),
            "restart_to_all_served_s": round(med(label, "restart"), 2),
            "rss_mib": round(med(label, "cold_rss_mib"), 1),
            "rss_per_zone_kib": round(med(label, "cold_rss_mib") * 1024 / args.zones, 1),
            "restart_rss_mib": round(med(label, "restart_rss_mib"), 1),
        }
        for label in runs
    }
    ratios = {
        "cold_secdns_vs_knot": round(
            table["secdns"]["cold_start_to_all_served_s"]
            / table["knot"]["cold_start_to_all_served_s"],
            2,
        ),
        "restart_secdns_vs_knot": round(
            table["secdns"]["restart_to_all_served_s"] / table["knot"]["restart_to_all_served_s"],
            2,
        ),
        "rss_secdns_vs_knot": round(table["secdns"]["rss_mib"] / table["knot"]["rss_mib"], 2),
    }
    print(
        f"{args.zones} zones of ~{args.records} records (median of {args.repeat}):", file=sys.stderr
    )
    for label, row in table.items():
        print(
            f"  {label:<7} cold {row['cold_start_to_all_served_s']:7.2f} s  restart "
            f"{row['restart_to_all_served_s']:7.2f} s  RSS {row['rss_mib']:7.1f} MiB "
            f"({row['rss_per_zone_kib']:.1f} KiB/zone)",
            file=sys.stderr,
        )
    print(f"  ratios: {ratios}", file=sys.stderr)
    summary = {
        "zones": args.zones,
        "records_per_zone": args.records,
        "repeat": args.repeat,
        "servers": table,
        "ratios": ratios,
        "runs": runs,
    }
    (out_dir / "manyzones.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
