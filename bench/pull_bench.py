#!/usr/bin/env python3
"""Benchmark ``secdns pull`` against ``dig AXFR`` in one run, on a local BIND primary.

1. Generates a zone of N records (default 1,000,000) in bench/out/ with the
   shared generator (``--genzone``, ../shared/genzone.py: the realistic mix).
2. Serves it from BIND (named -g) on a free loopback port.
3. Times, side by side: ``dig AXFR > file`` and ``secdns pull -o FILE``
   (wall time, CPU time = user + system, peak RSS; ``pull -o`` into a new file each
   run, as dig's, and again over its own copy, where it also counts the changes),
   then ``secdns pull -d STORE`` (AXFR into the store).  ``--base DIR``: the same
   rows with the secdns package in DIR (before/after in one run).  Wall time
   includes the primary's own work (BIND renders the AXFR on the other core) and
   swings with the machine's load; CPU time is what each client itself spent.
4. Adds 10 records with nsupdate and times ``secdns pull -d STORE`` (an IXFR
   of those 10 records), reported beside dig's full AXFR of the zone.

``--sign nsec|nsec3`` signs the generated zone first (``dnssec-signzone -S`` with a
KSK and a ZSK of ECDSA P-256 made by ``dnssec-keygen``; NSEC3 without salt or extra
iterations, RFC 9276), so that the transfer is a signed zone's: mostly RRSIG and
NSEC/NSEC3 records.  Its IXFR row is left out (BIND would have to re-sign).
Medians of --repeat runs; prints dig's command line, a table with ratios and
writes bench/out/pull.json.

    python bench/pull_bench.py [--records N] [--repeat K] [--genzone PATH] [--base DIR]
        [--sign nsec|nsec3]
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

from measure import (  # noqa: E402
    add_genzone_option,
    compiled_env,
    genzone,
    median,
    run_measured,
    show_reference,
    warm_pycache,
)
from servers import Bind  # noqa: E402

ZONE = "big.test"
# BIND loading a million records can take longer than the tests' start timeout (15 s)
# on a shared machine: give the bench's primary three minutes
Bind._launch.__func__.__defaults__ = (None, 180.0)  # type: ignore[attr-defined]  # (port, timeout)


def signed(zone_file: Path, denial: str, keys: Path) -> Path:
    """``zone_file`` signed with a KSK and a ZSK (made once in ``keys``), NSEC or NSEC3."""
    out = zone_file.with_suffix(f".{denial}.signed")
    if out.exists() and out.stat().st_mtime >= zone_file.stat().st_mtime:
        return out
    keys.mkdir(exist_ok=True)
    if not list(keys.glob(f"K{ZONE}.+013+*.key")):
        for extra in (["-f", "KSK"], []):
            keygen = ["dnssec-keygen", "-q", "-K", str(keys), "-a", "ECDSAP256SHA256"]
            subprocess.run([*keygen, *extra, ZONE], check=True, capture_output=True)
    nsec3 = ["-3", "-", "-H", "0"] if denial == "nsec3" else []
    sign = ["dnssec-signzone", "-q", "-S", "-K", str(keys), *nsec3, "-o", ZONE]
    sign += ["-f", str(out), str(zone_file)]
    print("signing: " + " ".join(sign), file=sys.stderr)
    subprocess.run(sign, check=True, capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    add_genzone_option(parser)
    parser.add_argument(
        "--base",
        type=Path,
        help="also time `pull -o` with the secdns package in this directory (another "
        "checkout's tree, put first on PYTHONPATH): before/after in the same run",
    )
    parser.add_argument(
        "--sign",
        choices=("nsec", "nsec3"),
        help="sign the zone (dnssec-signzone -S, ECDSA P-256) and pull the signed zone",
    )
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    zone_file = out_dir / f"{ZONE}.{args.records}.zone"
    genzone(args.genzone, args.records, zone_file, origin=ZONE)
    if args.sign:
        zone_file = signed(zone_file, args.sign, out_dir / f"keys-{args.records}")
    secdns = [sys.executable, "-m", "secdns"]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="secdns-bench-") as tmp_text:
        tmp = Path(tmp_text)
        # secdns's modules compiled once, untimed, as an installed package has them
        our_env = compiled_env(tmp / "pycache")
        warm_pycache(our_env)
        started = time.perf_counter()
        primary = Bind.start(tmp / "bind", {ZONE: zone_file})
        print(
            f"BIND loaded {args.records} records in {time.perf_counter() - started:.1f}s "
            f"on {primary.addr}",
            file=sys.stderr,
        )
        try:
            dig = ["dig", f"@{primary.host}", "-p", str(primary.port), ZONE, "AXFR"]
            pull = [*secdns, "pull", ZONE, f"@{primary.addr}", "-q"]

            def measure(
                name: str,
                argv: list[str],
                stdout_path: Path | None = None,
                before=None,
                env: dict[str, str] | None = None,
                cwd: Path | None = None,
            ) -> None:  # type: ignore[no-untyped-def]
                walls, cpus, rsses = [], [], []
                for _ in range(args.repeat):
                    if before:
                        before()
                    run = run_measured(
                        argv,
                        stdout_path=stdout_path,
                        env=our_env if env is None else env,
                        cwd=cwd,
                    )
                    walls.append(run.wall)
                    cpus.append(run.cpu)
                    rsses.append(run.rss_mib)
                results[name] = {
                    "wall_s": round(median(walls), 3),
                    "cpu_s": round(median(cpus), 3),
                    "rss_mib": round(max(rsses), 1),
                }
                print(
                    f"  {name:<28} {median(walls):7.2f} s wall {median(cpus):6.2f} s CPU "
                    f"{max(rsses):7.0f} MiB",
                    file=sys.stderr,
                )

            show_reference("dig", dig, stdout=tmp / "dig.zone")
            measure("dig AXFR > file", dig, tmp / "dig.zone")
            # the same work as dig's: a new file each run (over a whole copy of the zone,
            # pull -o also counts what changed against it: the row after); --axfr: a full
            # transfer every time (the file would otherwise be up to date)
            ours = tmp / "secdns.zone"
            pull_o = [*pull, "-o", str(ours), "--axfr"]
            measure("secdns pull -o FILE", pull_o, before=lambda: ours.unlink(missing_ok=True))
            measure("secdns pull -o FILE over its copy", pull_o)
            base_env = None
            if args.base is not None:
                # run in the base tree: from this checkout, python -m secdns imports this
                # checkout's package before PYTHONPATH's (the base ran this code till now)
                base_tree = args.base.resolve()
                base_env = compiled_env(tmp / "base-pycache", base_tree)
                warm_pycache(base_env, cwd=base_tree)
                base_out = tmp / "base.zone"
                base_o = [*pull, "-o", str(base_out), "--axfr"]
                measure(
                    "base: pull -o FILE",
                    base_o,
                    before=lambda: base_out.unlink(missing_ok=True),
                    env=base_env,
                    cwd=base_tree,
                )
                measure("base: pull -o FILE over its copy", base_o, env=base_env, cwd=base_tree)
                same = base_out.read_bytes() == ours.read_bytes()
                print(f"  base and this code wrote the same file: {same}", file=sys.stderr)
            store = tmp / "store"
            # the first run fills an empty store, the others replace the version it holds
            measure("secdns pull -d (AXFR)", [*pull, "-d", str(store), "--axfr"])
            if base_env is not None:
                base_store = tmp / "base-store"
                measure(
                    "base: pull -d (AXFR)",
                    [*pull, "-d", str(base_store), "--axfr"],
                    env=base_env,
                    cwd=base_tree,
                )
            serial = primary.soa_serial(ZONE)
            ixfr_walls, ixfr_rss = [], []
            for round_ in range(0 if args.sign else args.repeat):
                changes = "\n".join(
                    f"update add new{round_}-{k}.{ZONE}. 300 A 192.0.2.{k}" for k in range(10)
                )
                primary.nsupdate(changes, zone=ZONE)
                serial += 1
                primary.wait_for_serial(ZONE, serial)
                run = run_measured([*pull, "-d", str(store), "--json"], env=our_env)
                wall, rss = run.wall, run.rss_mib
                ixfr_walls.append(wall)
                ixfr_rss.append(rss)
            if ixfr_walls:
                results["secdns pull -d (10-record IXFR)"] = {
                    "wall_s": round(median(ixfr_walls), 3),
                    "rss_mib": round(max(ixfr_rss), 1),
                }
                print(
                    f"  {'secdns pull -d (IXFR)':<28} {median(ixfr_walls):7.2f} s  "
                    f"{max(ixfr_rss):7.0f} MiB",
                    file=sys.stderr,
                )
            check = subprocess.run(
                [*pull, "-d", str(store), "--json"], capture_output=True, text=True
            )
            assert json.loads(check.stdout)["status"] == "up-to-date", check.stdout
            dig_lines = sum(1 for line in open(tmp / "dig.zone") if line and line[0] not in ";\n")
            ours = sum(1 for line in open(tmp / "secdns.zone") if line[0] not in ";$")
            print(
                f"  records: dig {dig_lines - 1} (incl. final SOA repeat), secdns {ours}",
                file=sys.stderr,
            )
        finally:
            primary.stop()
    print(f"load average at end: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    dig_wall = results["dig AXFR > file"]["wall_s"]
    dig_cpu = results["dig AXFR > file"]["cpu_s"]
    summary = {
        "records": args.records,
        "results": results,
        "ratio_pull_vs_dig": round(results["secdns pull -o FILE"]["wall_s"] / dig_wall, 2),
        "ratio_pull_vs_dig_cpu": round(results["secdns pull -o FILE"]["cpu_s"] / dig_cpu, 2),
        "ratio_pull_over_its_copy_vs_dig": round(
            results["secdns pull -o FILE over its copy"]["wall_s"] / dig_wall, 2
        ),
        "signed": args.sign,
    }
    ixfr = results.get("secdns pull -d (10-record IXFR)")
    if ixfr is not None:
        # what the row compares: an incremental pull of 10 changed records into the
        # store (secdns pull -d, IXFR) against a full transfer of the zone by dig
        summary["ratio_secdns_10_record_ixfr_pull_vs_dig_full_axfr"] = round(
            ixfr["wall_s"] / dig_wall, 3
        )
    if args.base is not None:
        summary["ratio_base_pull_vs_dig"] = round(
            results["base: pull -o FILE"]["wall_s"] / dig_wall, 2
        )
    print(
        f"  secdns pull -o / dig AXFR > file: {summary['ratio_pull_vs_dig']}x wall, "
        f"{summary['ratio_pull_vs_dig_cpu']}x CPU "
        f"(over its copy {summary['ratio_pull_over_its_copy_vs_dig']}x)"
        + (
            "; secdns pull -d of a 10-record IXFR / dig full AXFR > file: "
            f"{summary['ratio_secdns_10_record_ixfr_pull_vs_dig_full_axfr']}x"
            if ixfr is not None
            else ""
        ),
        file=sys.stderr,
    )
    (out_dir / "pull.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
