#!/usr/bin/env python3
"""CPU of decoding a small zone's AXFR: ``wire.parse_message`` + ``XfrReader.feed``.

1. One zone of --records records (default 20) from the shared generator
   (``--genzone``, ../shared/genzone.py), as manyzones_bench.py makes each of its
   zones; a BIND primary serves it and its AXFR answer is captured as sent (BIND
   9.18 writes it in one message, most new owners uncompressed), then BIND stops.
2. For this tree, and for ``--before DIR`` (a ``secdns`` package, e.g. from
   ``git archive main secdns | tar -x -C DIR``) if given, a child process decodes
   and feeds those messages --count times (default 10,000) as the engine does
   (``reader.admit``, ``parse_message(raw, origin, limit, reader.rows())``,
   ``reader.feed``, ``reader.finish``) and reports its CPU seconds; the trees take
   turns, --repeat rounds (default 3), medians.
Prints microseconds of CPU per zone and the ratio, and the figures as JSON on stdout.

    python bench/small_axfr_bench.py [--records 20] [--count 10000] [--repeat 3]
        [--before DIR] [--genzone PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from measure import add_genzone_option, genzone, median  # noqa: E402

ZONE = "z1.many.test"

# The child: decode and feed the captured messages --count times; print CPU seconds.
CHILD = """
import struct, sys, time
import dns.name
import secdns
from secdns import wire
from secdns.xfr import XfrKind, XfrReader
assert secdns.__file__.startswith(sys.argv[4]), secdns.__file__
blob, count = open(sys.argv[1], "rb").read(), int(sys.argv[2])
messages, pos = [], 0
while pos < len(blob):
    (length,) = struct.unpack_from("!H", blob, pos)
    messages.append(blob[pos + 2 : pos + 2 + length])
    pos += 2 + length
origin = dns.name.from_text(sys.argv[3])
started = time.process_time()
for _ in range(count):
    reader = XfrReader(origin, XfrKind.AXFR, query_id=1, max_records=1_000_000, max_bytes=1 << 30)
    for raw in messages:
        reader.admit(int.from_bytes(raw[6:8]))
        message = wire.parse_message(raw, origin, 1_000_002, reader.rows())
        reader.feed(message, len(raw) + 2)
    reader.finish()
print(time.process_time() - started)
"""


def capture(zone_text: str, records: int, workdir: Path) -> list[bytes]:
    """BIND's AXFR answer messages for the zone, as sent."""
    from servers import Bind

    server = Bind.start(workdir, {f"{ZONE}.": zone_text}, dynamic=False)
    try:
        labels = b"".join(bytes((len(part),)) + part.encode() for part in ZONE.split("."))
        query = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + labels + b"\x00\x00\xfc\x00\x01"
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(struct.pack("!H", len(query)) + query)
            stream = sock.makefile("rb")
            messages: list[bytes] = []
            seen = 0
            while seen < records + 1:  # the zone's records and the closing SOA
                (length,) = struct.unpack("!H", stream.read(2))
                messages.append(stream.read(length))
                seen += int.from_bytes(messages[-1][6:8])
    finally:
        server.stop()
    return messages


def cpu_seconds(tree: Path, messages: Path, count: int) -> float:
    """The child's CPU seconds, with ``tree``'s secdns package (checked: ``-P`` keeps the
    working directory's copy off the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-P", "-c", CHILD, str(messages), str(count), f"{ZONE}.", str(tree)]
    return float(subprocess.run(argv, env=env, check=True, capture_output=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a tree holding the secdns package before")
    add_genzone_option(parser)
    args = parser.parse_args()
    trees = {"secdns": ROOT}
    if args.before is not None:
        trees["before"] = args.before.resolve()
    with tempfile.TemporaryDirectory(prefix="secdns-small-axfr-") as tmp:
        workdir = Path(tmp)
        zone_file = workdir / "zone.db"
        genzone(args.genzone, args.records, zone_file, origin=ZONE, serial=2024060101)
        messages = capture(zone_file.read_text(), args.records, workdir / "bind")
        blob = workdir / "axfr.bin"
        blob.write_bytes(b"".join(struct.pack("!H", len(raw)) + raw for raw in messages))
        print(
            f"{ZONE}: {args.records} records in {len(messages)} message(s) of "
            f"{', '.join(str(len(raw)) for raw in messages)} octets; {args.count} zones a run",
            file=sys.stderr,
        )
        runs: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                runs[name].append(cpu_seconds(tree, blob, args.count))
    result = {
        name: {"cpu_s": round(median(values), 3), "runs": [round(v, 3) for v in values]}
        for name, values in runs.items()
    }
    for name, figures in result.items():
        per_zone = figures["cpu_s"] / args.count * 1e6
        figures["us_per_zone"] = round(per_zone, 1)
        print(f"  {name:7} {per_zone:6.1f} us CPU a zone (runs {figures['runs']})", file=sys.stderr)
    if "before" in result:
        ratio = result["secdns"]["cpu_s"] / result["before"]["cpu_s"]
        result["ratio_to_before"] = round(ratio, 3)
        print(f"  secdns / before: {ratio:.2f}x", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
