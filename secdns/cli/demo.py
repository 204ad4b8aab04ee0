"""``secdns demo``: a guided run with no network: an embedded primary, ``serve`` as its
secondary, pull, a change pushed by NOTIFY + IXFR, diff and verify."""

from __future__ import annotations

import asyncio
import difflib
import sys
import tempfile
import time
from pathlib import Path

import click
import dns.message
import dns.query
import dns.rcode

from secdns import output
from secdns.config import parse_config
from secdns.demo import ORIGIN, DemoPrimary, bundled_zone
from secdns.endpoints import Endpoint
from secdns.errors import ExitCode


def _free_port() -> int:
    import socket

    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


async def _serial(port: int) -> int | None:
    query = dns.message.make_query(ORIGIN, "SOA")
    try:
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except Exception:
        return None
    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        return None
    return reply.answer[0][0].serial


async def _wait_serial(port: int, serial: int, timeout: float = 10.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if await _serial(port) == serial:
            return time.perf_counter() - start
        await asyncio.sleep(0.002)
    raise RuntimeError(f"the secondary never answered serial {serial}")


@click.command("demo")
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False),
    help="Keep the demo's files here (default: a temporary directory).",
)
def command(directory: str | None) -> None:
    """Show secdns at work, offline: serve, pull, NOTIFY + IXFR, diff and verify.

    Starts an embedded primary for example.test. and a `secdns serve`
    secondary, both on 127.0.0.1 (random ports); pulls the zone from the
    secondary; changes it on the primary, which NOTIFYs the secondary (IXFR,
    atomic swap) and times how fast the change is answered; pulls again by
    IXFR; then diffs and verifies every copy.  Exits 0 when every step worked.

    \b
    Example:
      secdns demo
    """
    import dns.asyncquery  # noqa: F401  (used by _serial)

    def say(text: str) -> None:
        if output.use_rich():
            click.secho(text, bold=True)
        else:
            click.echo(text)

    async def run(work: Path) -> int:
        from secdns.pull import StoreCopy, pull_zone
        from secdns.server.server import Server
        from secdns.store import Store
        from secdns.verify import VerifyOptions, verify_zone

        primary = DemoPrimary(bundled_zone())
        primary_port = await primary.start()
        secondary_port = _free_port()
        primary.notify_targets.append(("127.0.0.1", secondary_port))
        config = parse_config(
            {
                "server": {
                    "directory": str(work / "serve"),
                    "listen": [f"127.0.0.1:{secondary_port}"],
                },
                "zone": [
                    {
                        "name": ORIGIN.to_text(),
                        "primaries": [f"127.0.0.1:{primary_port}"],
                        "allow_transfer": ["127.0.0.1/32"],
                    }
                ],
            },
            "<demo>",
        )
        server = Server(config)
        ok = True
        try:
            await server.startup()
            secondary = f"127.0.0.1:{secondary_port}"
            say(
                f"== 1. primary (embedded) for {ORIGIN} on 127.0.0.1:{primary_port}, "
                f"serial {primary.serial}"
            )
            say(f"== 2. secdns serve: a secondary on {secondary}, store {work / 'serve'}")
            took = await _wait_serial(secondary_port, primary.serial)
            click.echo(
                f"   loaded by AXFR and answering serial {primary.serial} "
                f"after {took * 1000:.0f} ms"
            )
            say(
                f"== 3. secdns pull {ORIGIN} @{secondary} -d {work / 'pulled'}   "
                "(AXFR out of our secondary)"
            )
            store = Store(work / "pulled")
            endpoint = Endpoint("127.0.0.1", secondary_port)
            first = await pull_zone(ORIGIN, [endpoint], StoreCopy(store, ORIGIN))
            output.render_pull([first], as_json=False, quiet=False)
            before = store.zone_path(ORIGIN).read_text().splitlines()
            old_serial = primary.serial
            primary.change({"api": (300, "A", "192.0.2.99")}, [("www", "CNAME", "@")])
            primary.change({"www": (3600, "A", "192.0.2.10")}, [])
            say(
                f"== 4. the primary changes (+api A, www CNAME -> A; serial {old_serial} -> "
                f"{primary.serial}) and sends NOTIFY"
            )
            started = time.perf_counter()
            await primary.notify()
            took = await _wait_serial(secondary_port, primary.serial)
            runtime = server.runtimes[ORIGIN]
            result = runtime.last_result
            kind = result.kind.value if result else "?"
            click.echo(
                f"   the secondary answered serial {primary.serial} "
                f"{(time.perf_counter() - started) * 1000:.1f} ms after the NOTIFY "
                f"({kind}, +{result.added if result else 0} "
                f"-{result.removed if result else 0})"
            )
            ok = ok and kind == "IXFR"
            say("== 5. pull again: IXFR from the secondary's journal")
            second = await pull_zone(ORIGIN, [endpoint], StoreCopy(store, ORIGIN))
            output.render_pull([second], as_json=False, quiet=False)
            after = store.zone_path(ORIGIN).read_text().splitlines()
            for line in difflib.unified_diff(before, after, "before", "after", lineterm="", n=0):
                click.echo(f"   {line}")
            ok = ok and second.kind.value == "IXFR"
            say(f"== 6. secdns diff {ORIGIN} @primary @secondary")
            from secdns.diff import diff_zones
            from secdns.sources import load_zone, parse_source

            zone_p = await load_zone(parse_source(f"@127.0.0.1:{primary_port}"), ORIGIN)
            zone_s = await load_zone(parse_source(f"@{secondary}"), ORIGIN)
            delta = diff_zones(ORIGIN, zone_p.records, zone_s.records)
            click.echo("   identical" if delta.same else f"   DIFFERENT: {delta.stats()}")
            ok = ok and delta.same
            say(f"== 7. secdns verify {ORIGIN} {work / 'pulled'} @primary @secondary")
            report = await verify_zone(
                ORIGIN,
                [str(work / "pulled"), f"@127.0.0.1:{primary_port}", f"@{secondary}"],
                VerifyOptions(timeout=2.0),
            )
            for answer in report.servers:
                click.echo(f"   {answer.address}: serial {answer.serial} ({answer.status.value})")
            errors = report.errors
            click.echo(f"   {len(errors)} errors, {len(report.warnings)} warnings")
            ok = ok and not report.failed()
        finally:
            await server.shutdown()
            await primary.stop()
        say(f"== done: files in {work}" if ok else "== demo FAILED")
        return ExitCode.OK if ok else ExitCode.DIFFERENT

    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        sys.exit(asyncio.run(run(Path(directory))))
    with tempfile.TemporaryDirectory(prefix="secdns-demo-") as tmp:
        code = asyncio.run(run(Path(tmp)))
    sys.exit(code)
