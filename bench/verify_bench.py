#!/usr/bin/env python3
"""Benchmark ``secdns verify`` of a big zone file against ``named-checkzone -i none``.

1. Generates a zone of N records (default 1,000,001) in bench/out/: addresses,
   TXT, MX, SRV, CNAMEs and delegations with glue, so that every integrity
   check has work to do, and nothing for it to find.
2. Times, side by side, ``named-checkzone -i none ZONE FILE`` and
   ``secdns verify ZONE FILE`` (wall time, peak RSS; median of --repeat runs).
3. Prints the ratio (the target is 3x at most) and writes bench/out/verify.json.

    python bench/verify_bench.py [--records N] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import median, run_measured  # noqa: E402

ZONE = "verify.test"
TARGET_RATIO = 3.0

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


def generate(path: Path, count: int) -> None:
    """A zone of ``count`` records (SOA included) with a realistic mix of types."""
    if path.exists() and path.stat().st_size > 0:
        with open(path) as existing:
            if sum(1 for line in existing if line[0] not in "$;") == count:
                return
    with open(path, "w") as out:
        out.write(f"$ORIGIN {ZONE}.\n$TTL 3600\n")
        out.write("@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n")
        out.write(
            "@ IN NS ns1\n@ IN NS ns2\nns1 IN A 192.0.2.1\nns2 IN AAAA 2001:db8::2\n"
            "@ IN MX 10 mail\nmail IN A 192.0.2.25\n"
        )
        written = 7
        i = 0
        while written < count:
            slot = i % 100
            target = f"h{i - slot + slot % 60}"  # an A record of the same hundred
            if slot < 60:
                lines = [f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n"]
            elif slot < 75:
                lines = [f"h{i} IN AAAA 2001:db8::{i % 65536:x}:{i // 65536:x}\n"]
            elif slot < 85:
                lines = [f'h{i} IN TXT "v=spf1 ip4:192.0.2.{i % 256} -all"\n']
            elif slot < 89:
                lines = [f"c{i} IN CNAME {target}\n"]
            elif slot < 92:
                lines = [f"m{i} IN MX 10 {target}\n"]
            elif slot < 94:
                lines = [f"_sip._tcp.s{i} IN SRV 0 5 5060 {target}\n"]
            elif slot < 96:  # a delegation with in-domain glue: three records
                lines = [
                    f"d{i} IN NS ns.d{i}\n",
                    f"ns.d{i} IN A 192.0.2.{i % 250 + 1}\n",
                    f"d{i} IN NS ns1.example.net.\n",
                ]
            else:
                lines = [f"h{i} IN A 192.0.2.{i % 250 + 1}\n"]
            for line in lines[: count - written]:
                out.write(line)
                written += 1
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_001)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    checkzone = shutil.which(
        "named-checkzone",
        path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]),
    )
    if checkzone is None:
        raise SystemExit("named-checkzone is not installed (apt-get install bind9-utils)")
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    zone_file = out_dir / f"{ZONE}.{args.records}.zone"
    generate(zone_file, args.records)
    env_path = str(ROOT)
    os.environ["PYTHONPATH"] = env_path + os.pathsep + os.environ.get("PYTHONPATH", "")
    commands = {
        "named-checkzone -i none": [checkzone, "-i", "none", ZONE, str(zone_file)],
        "secdns verify": [sys.executable, "-c", RUNNER, "verify", ZONE, str(zone_file)],
    }
    results: dict[str, dict[str, float]] = {}
    print(f"{args.records} records in {zone_file}", file=sys.stderr)
    for name, argv in commands.items():
        walls, rsses = [], []
        for _ in range(args.repeat):
            run = run_measured(argv)
            wall, rss = run.wall, run.rss_mib
            walls.append(wall)
            rsses.append(rss)
        results[name] = {"wall_s": round(median(walls), 3), "rss_mib": round(max(rsses), 1)}
        print(f"  {name:<26} {median(walls):7.2f} s  {max(rsses):7.0f} MiB", file=sys.stderr)
    ratio = results["secdns verify"]["wall_s"] / results["named-checkzone -i none"]["wall_s"]
    summary = {
        "records": args.records,
        "results": results,
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
    }
    (out_dir / "verify.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if ratio > TARGET_RATIO:
        raise SystemExit(f"secdns verify is {ratio:.2f}x named-checkzone, over {TARGET_RATIO}x")


if __name__ == "__main__":
    main()
