#!/usr/bin/env python3
"""Benchmark ``secdns pull -c`` of many small zones from one BIND primary.

The zones are manyzones_bench.py's (genzone's mix, ~20 records each, one BIND
primary with ``transfers-out 100``).  Each round, for this tree (and ``--before``'s,
in the same run, the order turned each round):

1. ``pull -c CONFIG -d STORE`` into a fresh store: every zone transferred (AXFR),
   written with its state, durable;
2. the same command again: every zone found current (a SOA probe each, its state
   noted).

The reference is what a shell loop does without secdns: ``dig AXFR`` of every zone,
8 at a time (secdns's default pool), each into its own file (``+noall +answer``;
nothing checked, nothing synced, no state).  Its command line is printed.  Medians
of ``--repeat`` rounds (3 by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manyzones_bench as mb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POOL = 8


def secdns_run(tree: Path, config: Path, store: Path) -> tuple[float, int]:
    argv = [sys.executable, "-m", "secdns", "pull", "-c", str(config), "-d", str(store), "-q"]
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=tree, capture_output=True, text=True, check=False)
    return time.perf_counter() - began, done.returncode


def dig_all(port: int, names: list[str], out: Path) -> float:
    dig = shutil.which("dig") or "dig"
    out.mkdir(parents=True)

    def one(name: str) -> None:
        with open(out / f"{name}.zone", "wb") as handle:
            subprocess.run(
                [dig, "@127.0.0.1", "-p", str(port), name, "AXFR", "+noall", "+answer"],
                stdout=handle,
                check=True,
            )

    began = time.perf_counter()
    with ThreadPoolExecutor(POOL) as pool:
        list(pool.map(one, names))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=20, help="per zone (about)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None, help="another secdns tree")
    mb.add_genzone_option(parser)
    args = parser.parse_args()
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    template = out_dir / f"manyzones.{args.records}.template.zone"
    mb.genzone(args.genzone, args.records, template, origin=mb.TEMPLATE, serial=mb.SERIAL)
    names = mb.zone_names(args.zones)
    texts = mb.zone_texts(template.read_text(), names)
    trees = {"secdns": ROOT}
    if args.before is not None:
        trees["before"] = args.before.resolve()
    found: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="secdns-pullc-") as tmp_text:
        tmp = Path(tmp_text)
        primary = mb.start_primary(tmp, texts, notify=[], dynamic=False)
        try:
            mb.raise_transfers_out(primary, 100)
            config = tmp / "secdns.toml"
            primaries = [f"127.0.0.1:{primary.port}"]
            config.write_text(
                tomli_w.dumps({"zone": [{"name": n, "primaries": primaries} for n in names]})
            )
            print(
                f"reference: dig @127.0.0.1 -p {primary.port} ZONE AXFR +noall +answer > "
                f"ZONE.zone, for each of {args.zones} zones, {POOL} at a time",
                file=sys.stderr,
            )
            for label, tree in trees.items():
                print(
                    f"{label}: (cd {tree} && {sys.executable} -m secdns pull -c {config} "
                    "-d STORE -q), then again",
                    file=sys.stderr,
                )
            for round_ in range(args.repeat):
                order = list(trees.items())
                if round_ % 2:
                    order.reverse()
                for label, tree in order:
                    store = tmp / f"store-{label}-{round_}"
                    first, code = secdns_run(tree, config, store)
                    again, code2 = secdns_run(tree, config, store)
                    found.setdefault(f"{label} first", []).append(first)
                    found.setdefault(f"{label} again", []).append(again)
                    print(
                        f"  round {round_ + 1} {label}: fresh store {first:.2f} s (exit {code}), "
                        f"again {again:.2f} s (exit {code2})",
                        file=sys.stderr,
                    )
                took = dig_all(primary.port, names, tmp / f"dig-{round_}")
                found.setdefault("dig", []).append(took)
                print(f"  round {round_ + 1} dig AXFR x{args.zones}: {took:.2f} s", file=sys.stderr)
        finally:
            primary.stop()
    medians = {key: round(statistics.median(values), 2) for key, values in found.items()}
    ratios = {
        f"{key} / dig": round(value / medians["dig"], 2)
        for key, value in medians.items()
        if key != "dig"
    }
    print(json.dumps({"zones": args.zones, "medians_s": medians, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
