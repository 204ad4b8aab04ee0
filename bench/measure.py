"""What every benchmark here needs: run one process and measure it alone."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    wall: float  # seconds
    rss_mib: float  # peak resident set of that process (os.wait4)
    exit_code: int
    stdout: str  # empty when stdout went to a file
    cpu: float = 0.0  # user + system seconds, the process's waited-for children included


def run_measured(
    argv: list[str],
    *,
    stdout_path: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    cwd: Path | None = None,
) -> Run:
    """Run ``argv`` (in ``cwd``: ``python -m secdns`` imports the cwd's secdns before
    PYTHONPATH's); with ``check``, a non-zero exit stops the benchmark with its stderr."""
    with (
        tempfile.TemporaryFile() as err_file,
        open(stdout_path, "wb") if stdout_path else tempfile.TemporaryFile() as out_file,
    ):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out_file, stderr=err_file, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        stdout = ""
        if stdout_path is None:
            out_file.seek(0)
            stdout = out_file.read().decode()
        if check and code != 0:
            err_file.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed: {err_file.read().decode()[-2000:]}")
    return Run(wall, usage.ru_maxrss / 1024, code, stdout, usage.ru_utime + usage.ru_stime)


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


GENZONE_DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "genzone.py"
"""The shared zone generator, ``../shared/genzone.py`` relative to the repository."""


def add_genzone_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--genzone",
        type=Path,
        default=GENZONE_DEFAULT,
        help=f"the zone and query generator (default {GENZONE_DEFAULT})",
    )


def genzone(
    script: Path,
    records: int,
    out: Path,
    *,
    origin: str,
    serial: int | None = None,
    queries: Path | None = None,
    nq: int | None = None,
) -> None:
    """Write ``out`` (and the dnsperf file ``queries``) with genzone.py's fixed-seed mix.

    A file already there from the same arguments is reused (genzone is deterministic).
    """
    if not script.exists():
        raise SystemExit(f"{script} not found: pass --genzone PATH/TO/genzone.py")
    argv = [sys.executable, str(script), str(records), str(out), "--origin", origin]
    if serial is not None:
        argv += ["--serial", str(serial)]
    if queries is not None:
        argv += ["--queries", str(queries), "--nq", str(nq or 10000)]
    stamp = out.with_name(out.name + ".args")
    wanted = " ".join(argv[1:])
    if stamp.exists() and stamp.read_text() == wanted and out.exists():
        if queries is None or queries.exists():
            return
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stamp.write_text(wanted)


def show_reference(label: str, argv: list[str], stdout: Path | None = None) -> None:
    """Print the command line of a reference tool, so that a reader can rerun it."""
    redirect = f" > {shlex.quote(str(stdout))}" if stdout is not None else ""
    print(f"  reference {label}: {shlex.join(str(a) for a in argv)}{redirect}", file=sys.stderr)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, children: bool = False) -> float:
    """User + system seconds process *pid* has used so far (all its threads; with
    *children*, also its waited-for children's), from Linux /proc; OSError once it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11 : 15 if children else 13]) / CLOCK_TICKS


def group_cpu(pids: Iterable[int], *, children: bool = False) -> float:
    """:func:`process_cpu` summed over *pids*, skipping those already gone."""
    total = 0.0
    for pid in pids:
        try:
            total += process_cpu(pid, children=children)
        except OSError:
            continue
    return total


def group_pss_mib(pids: Iterable[int]) -> float:
    """Memory now of these processes as the sum of their proportional set sizes (pages
    they share count once), MiB; those already gone are skipped."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def compiled_env(pycache: Path, source: Path | None = None) -> dict[str, str]:
    """The environment of a timed secdns process: compiled modules kept under
    *pycache* (an installed package has them; this environment sets
    PYTHONDONTWRITEBYTECODE, and without a cache every start compiles secdns's modules
    again, ~0.1 s here), and *source*'s secdns package first on PYTHONPATH if given.
    Call :func:`warm_pycache` with it before timing."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [env.get("PYTHONPATH")])])
    return env


def warm_pycache(env: dict[str, str], cwd: Path | None = None) -> None:
    """Import every secdns module once, untimed, under *env* (:func:`compiled_env`), from
    *cwd* (``python -c`` imports the cwd's secdns first: give a source tree's own)."""
    code = (
        "import importlib, pkgutil, secdns\n"
        "for m in pkgutil.walk_packages(secdns.__path__, 'secdns.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True)


def wait_idle(
    members: Callable[[], list[int]], start: float, quiet: float = 0.02, timeout: float = 600.0
) -> float:
    """Seconds from ``start`` until these processes use less than ``quiet`` of a CPU over a
    second (a server done with its background work: secdns's ready answers)."""
    last = group_cpu(members(), children=True)
    while time.perf_counter() - start < timeout:
        time.sleep(1.0)
        now = group_cpu(members(), children=True)
        if now - last < quiet:
            return round(time.perf_counter() - start - 1.0, 2)
        last = now
    raise SystemExit("the server never went idle")
