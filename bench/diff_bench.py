#!/usr/bin/env python3
"""Benchmark ``secdns diff`` on two 1M-record zones that differ in 1,000 records.

In one run: ``named-checkzone -i none`` of one file (the reference reader), the
time secdns takes to load both files (``read_master``), and ``secdns diff --stat``
of the two files end to end.  Target: diff under 2x the time to load both.

    python bench/diff_bench.py [--records N] [--changes K]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from measure import run_measured  # noqa: E402

ZONE = "big.test"


def write_zone(path: Path, count: int, serial: int, changed: set[int]) -> None:
    with open(path, "w") as out:
        out.write(
            f"$ORIGIN {ZONE}.\n$TTL 3600\n@ IN SOA ns1 hostmaster {serial} 7200 900 "
            "1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
        )
        for i in range(count - 3):
            last = 99 if i in changed else i & 255
            if i % 20 == 2:
                out.write(f'h{i} IN TXT "record {i} {last}"\n')
            else:
                out.write(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{last}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_001)
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="secdns-diff-bench-") as tmp_text:
        tmp = Path(tmp_text)
        a, b = tmp / "a.zone", tmp / "b.zone"
        step = max(1, args.records // args.changes)
        write_zone(a, args.records, 1, set())
        write_zone(b, args.records, 2, set(range(0, args.records - 3, step)[: args.changes]))
        checkzone = run_measured(["named-checkzone", "-i", "none", ZONE, str(a)]).wall
        load_code = (
            "import sys,dns.name; from secdns.masterfile import read_master; "
            "o=dns.name.from_text(sys.argv[3]); "
            "[read_master(open(p).read(), o, filename=p) for p in sys.argv[1:3]]"
        )
        load_both = run_measured([sys.executable, "-c", load_code, str(a), str(b), ZONE]).wall
        diff_run = run_measured(
            [sys.executable, "-m", "secdns", "diff", ZONE, str(a), str(b), "--stat"], check=False
        )
        diff, diff_rss, code = diff_run.wall, diff_run.rss_mib, diff_run.exit_code
        assert code == 1, f"diff exit {code}"
        out = diff_run.stdout
    summary = {
        "records": args.records,
        "changes": args.changes,
        "named_checkzone_one_file_s": round(checkzone, 2),
        "secdns_load_both_s": round(load_both, 2),
        "secdns_diff_s": round(diff, 2),
        "secdns_diff_rss_mib": round(diff_rss, 1),
        "ratio_diff_vs_load_both": round(diff / load_both, 2),
        "ratio_load_one_vs_checkzone": round(load_both / 2 / checkzone, 2),
        "stat": out.strip(),
    }
    print(json.dumps(summary, indent=2))
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "diff.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
