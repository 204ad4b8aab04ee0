"""``secdns demo``: a guided run with no network: an embedded primary, ``serve`` as its
secondary, pull, a change pushed by NOTIFY + IXFR, diff and verify.

Parse, call :mod:`secdns.demo` (the scenario, the primary, the sockets), render.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path

import click

from secdns import output
from secdns.demo import ORIGIN, DemoSetup, demo_servers, keep_changing, run_scenario
from secdns.errors import ExitCode
from secdns.pull import PullResult


class _Printer:
    """The :class:`secdns.demo.DemoReport` of the command line."""

    def step(self, text: str) -> None:
        if output.use_colour():
            click.secho(f"== {text}", bold=True)
        else:
            click.echo(f"== {text}")

    def detail(self, text: str) -> None:
        click.echo(f"   {text}")

    def pull(self, result: PullResult) -> None:
        output.render_pull([result], as_json=False, quiet=False)


def kept_text(setup: DemoSetup, change_every: float) -> list[str]:
    """How to reach the kept primary and secondary."""
    zone = ORIGIN.to_text().rstrip(".")
    primary, secondary = setup.primary_address, setup.secondary_address
    port = setup.primary.port
    lines = [
        f"primary   {primary}  (dig @127.0.0.1 -p {port} {zone} SOA)",
        f"secondary {secondary}  (secdns serve, store {setup.work / 'serve'})",
        "try:",
        f"  secdns pull {zone} @{primary} -d zones",
        f"  secdns watch {zone} --servers @{primary} @{secondary}",
        f"  secdns verify {zone} @{primary} @{secondary}",
    ]
    if change_every > 0:
        lines.append(
            f"the primary adds a record and NOTIFYs every {change_every:g}s; Ctrl-C stops both"
        )
    else:
        lines.append("Ctrl-C stops both")
    return lines


async def _wait_for_stop(stop: asyncio.Event) -> int:
    """Wait for SIGINT or SIGTERM; the exit status it calls for (130 for Ctrl-C, as
    every other command gives; 0 for SIGTERM, as serve gives)."""
    loop = asyncio.get_running_loop()
    got: list[int] = []

    def on_signal(signum: int) -> None:
        got.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_signal, signum)
    try:
        await stop.wait()
        return ExitCode.INTERRUPTED if got and got[0] == signal.SIGINT else ExitCode.OK
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)


@click.command("demo")
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False),
    help="Keep the demo's files here (default: a temporary directory).",
)
@click.option(
    "--keep",
    is_flag=True,
    help="After the tour, keep the primary and the serve secondary running (and "
    "print how to reach them) until Ctrl-C, to follow the README's tour.",
)
@click.option(
    "--port",
    "primary_port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    help="Port of the embedded primary on 127.0.0.1 (default: a free one).",
)
@click.option(
    "--change-every",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="With --keep: the primary adds a record, bumps its serial and NOTIFYs this "
    "often (0: never).",
)
def command(directory: str | None, keep: bool, primary_port: int, change_every: float) -> None:
    """Show secdns at work, offline: serve, pull, NOTIFY + IXFR, diff and verify.

    Starts an embedded primary for example.test. and a `secdns serve`
    secondary, both on 127.0.0.1 (random ports); pulls the zone from the
    secondary; changes it on the primary, which NOTIFYs the secondary (IXFR,
    atomic swap) and times how fast the change is answered; pulls again by
    IXFR; then diffs and verifies every copy.  Exits 0 when every step worked.
    With --keep both keep running afterwards, for the README's tour.

    \b
    Examples:
      secdns demo
      secdns demo --keep --port 5300      # then: secdns pull example.test @127.0.0.1:5300 -d zones
    """
    printer = _Printer()

    where = f"files in {directory}" if directory else "no files kept (-d DIR keeps them)"

    async def run(work: Path) -> int:
        stopped: int = ExitCode.OK
        async with demo_servers(work, primary_port) as setup:
            ok = await run_scenario(setup, printer)
            # --keep without -d: the secondary still serves from the temporary store
            running = (
                f"the secondary's store is {work / 'serve'}, removed when the demo stops"
                " (-d DIR keeps it)"
            )
            printer.step(
                f"done: {running if keep and not directory else where}" if ok else "demo FAILED"
            )
            if keep and ok:
                printer.step("kept running:")
                for line in kept_text(setup, change_every):
                    printer.detail(line)
                sys.stdout.flush()
                stop = asyncio.Event()
                changer = asyncio.create_task(keep_changing(setup.primary, change_every, stop))
                stopped = await _wait_for_stop(stop)
                await changer
                printer.step(f"stopped: {where}")
        return stopped if ok else ExitCode.DIFFERENT

    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        sys.exit(asyncio.run(run(Path(directory))))
    with tempfile.TemporaryDirectory(prefix="secdns-demo-") as tmp:
        code = asyncio.run(run(Path(tmp)))
    sys.exit(code)
