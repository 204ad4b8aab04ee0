"""``secdns demo``: a guided run with no network: embedded primary, AXFR, change, IXFR."""

from __future__ import annotations

import asyncio
import difflib
import sys
import tempfile
from pathlib import Path

import click

from secdns import output
from secdns.demo import ORIGIN, DemoPrimary, bundled_zone
from secdns.endpoints import Endpoint
from secdns.pull import StoreCopy, pull_zone
from secdns.store import Store


@click.command("demo")
@click.option("-d", "--directory", type=click.Path(file_okay=False),
              help="Keep the demo's zone store here (default: a temporary directory).")
def command(directory: str | None) -> None:
    """Show secdns at work, offline: pull a bundled zone, change it, pull it by IXFR.

    Starts an embedded primary for the zone example.test. on 127.0.0.1 (a
    random port), pulls it into a zone store by AXFR, changes two records on
    the primary, pulls again (IXFR: only the change travels), and shows how the
    master file changed.  Exits 0 when every step worked.

    \b
    Example:
      secdns demo
    """

    def say(text: str) -> None:
        click.secho(text, bold=True, err=False) if output.use_rich() else click.echo(text)

    async def run(store_dir: Path) -> int:
        primary = DemoPrimary(bundled_zone())
        port = await primary.start()
        store = Store(store_dir)
        endpoint = Endpoint("127.0.0.1", port)
        try:
            say(f"== 1. embedded primary for {ORIGIN} on 127.0.0.1:{port}, "
                f"serial {primary.serial}")
            say(f"== 2. secdns pull {ORIGIN} @127.0.0.1:{port} -d {store_dir}")
            first = await pull_zone(ORIGIN, [endpoint], StoreCopy(store, ORIGIN))
            output.render_pull([first], as_json=False, quiet=False)
            before = store.zone_path(ORIGIN).read_text().splitlines()
            serial = primary.change({"api": (300, "A", "192.0.2.99")},
                                    [("www", "CNAME", "@")])
            primary.change({"www": (3600, "A", "192.0.2.10")}, [])
            say(f"== 3. the primary changes: +api A, www CNAME -> A (serial {serial} -> "
                f"{primary.serial})")
            say("== 4. pull again: the store asks IXFR from its serial")
            second = await pull_zone(ORIGIN, [endpoint], StoreCopy(store, ORIGIN))
            output.render_pull([second], as_json=False, quiet=False)
            after = store.zone_path(ORIGIN).read_text().splitlines()
            say("== 5. what changed in the master file")
            for line in difflib.unified_diff(before, after, "before", "after", lineterm="", n=0):
                click.echo(line)
            say("== 6. pull once more: already up to date")
            third = await pull_zone(ORIGIN, [endpoint], StoreCopy(store, ORIGIN))
            output.render_pull([third], as_json=False, quiet=False)
            ok = (first.error is None and second.error is None and third.error is None
                  and second.kind.value == "IXFR" and third.status.value == "up-to-date")
            say(f"== done: zone files in {store_dir}" if ok else "== demo FAILED")
            return 0 if ok else 1
        finally:
            await primary.stop()

    if directory:
        sys.exit(asyncio.run(run(Path(directory))))
    with tempfile.TemporaryDirectory(prefix="secdns-demo-") as tmp:
        code = asyncio.run(run(Path(tmp)))
    sys.exit(code)
