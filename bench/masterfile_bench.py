#!/usr/bin/env python3
"""Benchmark ``secdns.masterfile.read_master`` against ``named-checkzone -i none``.

1. Generates a zone of N records (default 1,000,000) with the shared generator
   (``--genzone``, ../shared/genzone.py: the realistic mix every bench uses).
2. Writes the same zone in secdns's canonical format (``secdns.zonefile.render``
   of ``canonical_lines``), one ``owner TTL IN TYPE rdata`` line per record.
3. Times, side by side, each in its own process (wall time, and peak RSS from
   ``os.wait4``): ``named-checkzone -i none`` and ``read_master`` on each file
   (and ``dns.zone.from_file`` with ``--dnspython``), median of --repeat
   runs (default 3).  A process's wall time includes starting the interpreter
   and freeing every object at exit; the time the child spends reading the
   file and parsing it is shown beside it.
Prints the reference's command line, a table with ratios, and the figures as
JSON on stdout.

    python bench/masterfile_bench.py [--records N] [--repeat K] [--dir DIR] [--dnspython]
        [--genzone PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import add_genzone_option, genzone, run_measured, show_reference  # noqa: E402

ZONE = "bench.test"

# The parent imports neither dnspython nor secdns and writes the canonical file
# from a child, so that it stays small: a forked child's peak RSS counts the
# parent's pages until exec.
CANONICAL = """
import sys
from pathlib import Path
import dns.name
from secdns import zonefile
from secdns.masterfile import read_master
source, path, zone = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
origin = dns.name.from_text(zone)
records = read_master(source.read_text(), origin, filename=str(source)).records
serial = next(rec.serial for rec in records if rec.serial is not None)
path.write_text(zonefile.render(origin, serial, 3600, zonefile.canonical_lines(records)))
"""

# Runs in a child process so that its peak RSS is read_master's alone.
CHILD = """
import sys, time
from pathlib import Path
import dns.name
from secdns.masterfile import read_master
started = time.perf_counter()
text = Path(sys.argv[1]).read_text(encoding="utf-8", errors="surrogateescape")
zone = read_master(text, dns.name.from_text(sys.argv[2]), filename=sys.argv[1])
print(len(zone.records), round(time.perf_counter() - started, 3))
"""

DNSPYTHON = """
import sys, time
import dns.zone
started = time.perf_counter()
zone = dns.zone.from_file(sys.argv[1], sys.argv[2], relativize=False, check_origin=False)
count = sum(len(rdataset) for node in zone.values() for rdataset in node)
print(count, round(time.perf_counter() - started, 3))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is kept")
    add_genzone_option(parser)
    parser.add_argument("--dir", type=Path, help="keep the generated zones here (reused if there)")
    parser.add_argument(
        "--dnspython",
        action="store_true",
        help="also time dns.zone.from_file (slow: about 90 s at 1M records)",
    )
    args = parser.parse_args()
    checkzone = shutil.which("named-checkzone")
    if checkzone is None:
        raise SystemExit("named-checkzone is not installed (apt-get install bind9-utils)")
    tmp = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="secdns-masterfile-bench-")
        directory = Path(tmp.name)
    else:
        directory = args.dir
        directory.mkdir(parents=True, exist_ok=True)
    bind_file = directory / f"{ZONE}.{args.records}.genzone.zone"
    canonical_file = directory / f"{ZONE}.{args.records}.secdns.zone"
    try:
        if not bind_file.exists():
            started = time.perf_counter()
            genzone(args.genzone, args.records, bind_file, origin=ZONE)
            print(
                f"generated {bind_file.name} in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
        if not canonical_file.exists():
            started = time.perf_counter()
            run_measured(
                [sys.executable, "-c", CANONICAL, str(bind_file), str(canonical_file), ZONE],
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )
            print(
                f"wrote {canonical_file.name} in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
        results: dict[str, dict[str, float]] = {}
        counts: dict[str, int] = {}

        def measure(name: str, argv: list[str]) -> None:
            runs = []
            for _ in range(args.repeat):
                run = run_measured(argv, env=dict(os.environ, PYTHONPATH=str(ROOT)))
                wall, rss, stdout = run.wall, run.rss_mib, run.stdout
                fields = stdout.split()
                inner = float(fields[1]) if len(fields) == 2 else None
                runs.append((wall, rss, inner))
                if fields and fields[0].isdigit():
                    counts[name] = int(fields[0])
            runs.sort(key=lambda run: run[0])
            wall, _, inner = runs[len(runs) // 2]
            results[name] = {"wall_s": round(wall, 3), "rss_mib": round(max(r[1] for r in runs), 1)}
            note = ""
            if inner is not None:
                results[name]["read_and_parse_s"] = inner
                note = f"  (reading the file and parsing: {inner:.2f} s)"
            print(
                f"  {name:<38} {wall:7.2f} s  {results[name]['rss_mib']:7.0f} MiB{note}",
                file=sys.stderr,
            )

        for label, path in (("genzone", bind_file), ("canonical", canonical_file)):
            show_reference("named-checkzone", [checkzone, "-i", "none", ZONE, str(path)])
            measure(
                f"named-checkzone -i none ({label})", [checkzone, "-i", "none", ZONE, str(path)]
            )
            measure(f"read_master ({label})", [sys.executable, "-c", CHILD, str(path), ZONE])
            if args.dnspython:
                measure(
                    f"dns.zone.from_file ({label})",
                    [sys.executable, "-c", DNSPYTHON, str(path), ZONE],
                )
    finally:
        if tmp is not None:
            tmp.cleanup()

    def ratio(label: str) -> float:
        return round(
            results[f"read_master ({label})"]["wall_s"]
            / results[f"named-checkzone -i none ({label})"]["wall_s"],
            2,
        )

    summary = {
        "records": args.records,
        "records_read": counts,
        "results": results,
        "ratio_genzone_vs_named_checkzone": ratio("genzone"),
        "ratio_canonical_vs_named_checkzone": ratio("canonical"),
        "ratio_canonical_vs_named_checkzone_on_genzone": round(
            results["read_master (canonical)"]["wall_s"]
            / results["named-checkzone -i none (genzone)"]["wall_s"],
            2,
        ),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
