"""What every benchmark here needs: run one process and measure it alone."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    wall: float  # seconds
    rss_mib: float  # peak resident set of that process (os.wait4)
    exit_code: int
    stdout: str  # empty when stdout went to a file


def run_measured(
    argv: list[str],
    *,
    stdout_path: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> Run:
    """Run ``argv``; with ``check``, a non-zero exit stops the benchmark with its stderr."""
    with (
        tempfile.TemporaryFile() as err_file,
        open(stdout_path, "wb") if stdout_path else tempfile.TemporaryFile() as out_file,
    ):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out_file, stderr=err_file, env=env)
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
    return Run(wall, usage.ru_maxrss / 1024, code, stdout)


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]
