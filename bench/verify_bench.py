#!/usr/bin/env python3
"""Benchmark ``secdns verify`` against BIND: unsigned and signed zones, side by side.

1. Unsigned: a zone of N records (default 1,000,000) from the shared generator
   (``--genzone``, ../shared/genzone.py: hosts under department subdomains,
   CNAME, MX + SPF TXT, ACME/DMARC TXT, SRV, delegations with glue); timed
   ``named-checkzone -i none ZONE FILE`` and ``secdns verify ZONE FILE``.
2. Signed (``--signed-records``, default 100,000; 0 skips): the same generator's
   zone signed by ``dnssec-signzone`` (ECDSA P-256, NSEC, keys made by
   ``dnssec-keygen``, cached in bench/out/); timed ``dnssec-verify -o ZONE FILE``
   and ``secdns verify ZONE FILE``.
Each figure is the median of --repeat runs (wall time, peak RSS from os.wait4);
the reference's command line is printed so that it can be rerun.  Writes
bench/out/verify.json.

    python bench/verify_bench.py [--records N] [--signed-records N] [--repeat K] [--genzone PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import (  # noqa: E402
    add_genzone_option,
    genzone,
    median,
    run_measured,
    show_reference,
)

ZONE = "verify.test"

# Runs the command whether or not secdns.cli registers it yet.
RUNNER = """
import sys
import click
from secdns.cli import cli
if cli.get_command(click.Context(cli), "verify") is None:
    from secdns.cli.verify import command
    cli.add_command(command)
cli(sys.argv[1:], prog_name="secdns")
"""


def tool(name: str) -> str:
    found = shutil.which(
        name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    )
    if found is None:
        raise SystemExit(f"{name} is not installed (apt-get install bind9-utils)")
    return found


def sign(unsigned: Path, signed: Path) -> None:
    """``signed``: ``unsigned`` signed by dnssec-signzone with fresh ECDSA P-256 keys, NSEC."""
    keys = signed.parent / "keys"
    if signed.exists() and signed.stat().st_mtime > unsigned.stat().st_mtime:
        return
    shutil.rmtree(keys, ignore_errors=True)
    keys.mkdir()
    for flags in (["-f", "KSK"], []):
        subprocess.run(
            [tool("dnssec-keygen"), "-q", "-K", str(keys), "-a", "ECDSAP256SHA256", *flags, ZONE],
            check=True,
            capture_output=True,
        )
    argv = [tool("dnssec-signzone"), "-q", "-S", "-K", str(keys), "-d", str(keys), "-o", ZONE]
    argv += ["-N", "keep"]
    argv += ["-f", str(signed), str(unsigned)]
    print(f"  signing: {' '.join(argv)}", file=sys.stderr)
    subprocess.run(argv, check=True, capture_output=True)


def compare(
    title: str, reference: str, commands: dict[str, list[str]], repeat: int
) -> dict[str, object]:
    """Run each command ``repeat`` times, interleaved; medians and the ratio to ``reference``."""
    print(title, file=sys.stderr)
    show_reference(reference, commands[reference])
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rsses: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            # dnssec-verify exits 1 on a zone it does not like: the output says why
            run = run_measured(argv, check=name != reference)
            walls[name].append(run.wall)
            rsses[name].append(run.rss_mib)
            cpus[name].append(run.cpu)
    results: dict[str, object] = {}
    for name in commands:
        wall, rss = median(walls[name]), max(rsses[name])
        results[name] = {"wall_s": round(wall, 3), "runs_s": [round(w, 2) for w in walls[name]]}
        results[name]["rss_mib"] = round(rss, 1)  # type: ignore[index]
        results[name]["cpu_s"] = round(median(cpus[name]), 2)  # type: ignore[index]
        print(
            f"  {name:<26} {wall:7.2f} s  {rss:7.0f} MiB  CPU {median(cpus[name]):7.2f} s",
            file=sys.stderr,
        )
    ratio = median(walls["secdns verify"]) / median(walls[reference])
    print(
        f"  secdns / {reference}: {ratio:.2f}x wall (median of {repeat}); CPU seconds "
        f"{median(cpus['secdns verify']) / median(cpus[reference]):.2f}x "
        f"(secdns verifies signatures on every core)",
        file=sys.stderr,
    )
    results["ratio"] = round(ratio, 2)
    results["reference_command"] = " ".join(commands[reference])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="unsigned zone; 0 skips")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--signed-records", type=int, default=100_000)
    add_genzone_option(parser)
    args = parser.parse_args()
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    secdns = [sys.executable, "-c", RUNNER, "verify", ZONE]
    summary: dict[str, object] = {"repeat": args.repeat}
    if args.records:
        zone_file = out_dir / f"{ZONE}.{args.records}.zone"
        genzone(args.genzone, args.records, zone_file, origin=ZONE)
        summary["unsigned"] = compare(
            f"unsigned: {args.records} records in {zone_file}",
            "named-checkzone -i none",
            {
                "named-checkzone -i none": [
                    *(tool("named-checkzone"), "-i", "none", ZONE, str(zone_file))
                ],
                "secdns verify": [*secdns, str(zone_file)],
            },
            args.repeat,
        )
        summary["unsigned"]["records"] = args.records  # type: ignore[index]
    if args.signed_records:
        unsigned = out_dir / f"{ZONE}.{args.signed_records}.tosign"
        genzone(args.genzone, args.signed_records, unsigned, origin=ZONE)
        signed = out_dir / f"{ZONE}.{args.signed_records}.signed"
        sign(unsigned, signed)
        summary["signed"] = compare(
            f"signed (ECDSA P-256, NSEC): {args.signed_records} records before signing, {signed}",
            "dnssec-verify",
            {
                "dnssec-verify": [tool("dnssec-verify"), "-o", ZONE, str(signed)],
                "secdns verify": [*secdns, str(signed)],
            },
            args.repeat,
        )
        summary["signed"]["records_before_signing"] = args.signed_records  # type: ignore[index]
    (out_dir / "verify.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
