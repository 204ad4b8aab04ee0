"""The only place that prints data: rich on a TTY, plain stable text when piped,
JSON on request.  Data goes to stdout, diagnostics to stderr.

rich is imported where it draws, not with this module: a piped ``pull`` (cron, CI)
does not pay for importing a library it never uses (tests/test_startup_imports.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from secdns.pull import PullResult, Status
from secdns.xfr import XfrKind

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod
    from rich.table import Table
    from rich.text import Text


def use_rich(stream: IO[str] | None = None) -> bool:
    """Rich output (tables, progress bar, summary) only on a terminal that can draw it.

    ``NO_COLOR`` does not turn it off: it drops only the colour (https://no-color.org),
    which rich's consoles do by themselves; see :func:`use_colour`.
    """
    stream = stream or sys.stdout
    if os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def use_colour(stream: IO[str] | None = None) -> bool:
    """Colour and bold on a terminal, unless ``NO_COLOR`` is set (to anything)."""
    return use_rich(stream) and not os.environ.get("NO_COLOR")


def stderr_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def pull_dict(result: PullResult) -> dict[str, Any]:
    """A pull result as JSON: the key=value line's vocabulary (``result``), with the
    older ``status`` key kept beside it for existing readers."""
    doc = result.to_dict()
    return {"zone": doc.pop("zone"), "result": doc["status"], **doc}


JSON_EMITTED = "secdns.json-emitted"
"""Set in the running command's context meta once a JSON document went to stdout (an
error after it adds none: :func:`secdns.cli._json_error`)."""


def emit_json(value: Any, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    if stream is sys.stdout:
        import click  # (loaded already by the command that prints)

        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.meta[JSON_EMITTED] = True
    json.dump(value, stream, indent=2, sort_keys=False)
    stream.write("\n")


def kv_value(value: object) -> str:
    """One value of a ``key=value`` line: ``-`` for none, JSON-quoted when it holds a
    space, quote, ``=`` or backslash (or is empty)."""
    if value is None:
        return "-"
    if isinstance(value, str) and (not value or any(c in value for c in ' "=\\')):
        return json.dumps(value)
    return str(value)


def kv_line(*fields: tuple[str, object]) -> str:
    """A stable ``key=value key=value`` line, in the order given."""
    return " ".join(f"{key}={kv_value(value)}" for key, value in fields)


def _serials(result: PullResult) -> str:
    """``from->to`` of a transfer; the one serial of a zone up to date (the primary's)
    or failed (the one held, ``none`` when nothing is held)."""
    before = "none" if result.serial_from is None else str(result.serial_from)
    after = "-" if result.serial_to is None else str(result.serial_to)
    if result.status is Status.UP_TO_DATE:
        return after
    if result.status is Status.FAILED:
        return before
    return f"{before}->{after}"


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def pull_line(result: PullResult) -> str:
    """One stable ``key=value`` line per zone for pipes and logs."""
    fields = [f"zone={result.zone}", f"result={result.status.value}"]
    if result.kind is not XfrKind.NONE:
        fields.append(f"kind={result.kind.value}")
    fields.append(f"serial={_serials(result)}")
    if result.status is Status.TRANSFERRED:
        fields += [f"added={result.added}", f"removed={result.removed}"]
    if result.records is not None:
        fields.append(f"records={result.records}")
    if result.primary:
        fields.append(f"primary={result.primary}")
    if result.bytes:
        fields.append(f"bytes={result.bytes}")
    fields.append(f"time={result.duration:.3f}s")
    if result.fallback:
        fields.append(f"fallback={json.dumps(result.fallback)}")
    if result.error is not None:
        fields.append(f"error={json.dumps(result.error.one_line())}")
    return " ".join(fields)


_STYLE = {Status.TRANSFERRED: "green", Status.UP_TO_DATE: "cyan", Status.FAILED: "bold red"}

TABLE_ZONES = 30
"""A terminal gets a row per zone up to this many zones; past it (``pull -c`` of
10,000 zones) one line of counts and a row per failed zone, at most this many."""


def pull_table(results: Iterable[PullResult]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="secdns pull", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("zone", "left"),
        ("primary", "left"),
        ("kind", "left"),
        ("serial", "left"),
        ("changes", "right"),
        ("time", "right"),
        ("result", "left"),
    )
    results = list(results)
    # an address is never cut (two servers on one IP differ only by port): the primary
    # column keeps its longest entry whole; zone names and results fold
    primary_width = max((len(r.primary or "-") for r in results), default=1)
    for column, justify in columns:
        if column == "primary":
            table.add_column(column, justify=justify, min_width=primary_width, no_wrap=True)
        elif column in ("zone", "result"):  # a word longer than the column folds, never "…"
            table.add_column(
                column, justify=justify, overflow="fold", min_width=11 if column == "result" else 8
            )
        else:
            table.add_column(column, justify=justify)
    for result in results:
        changes = (
            f"+{result.added} -{result.removed}" if result.status is Status.TRANSFERRED else ""
        )
        outcome = Text(result.status.value, style=_STYLE[result.status])
        if result.error is not None:
            outcome = Text(f"failed: {result.error.message}", style="bold red")
        elif result.fallback:
            outcome.append(" (fell back to AXFR)", style="yellow")
        table.add_row(
            result.zone,
            result.primary or "-",
            result.kind.value if result.kind is not XfrKind.NONE else "-",
            _serials(result).replace("->", " → "),
            changes,
            f"{result.duration:.2f}s",
            outcome,
        )
    return table


def render_pull(
    results: list[PullResult],
    *,
    as_json: bool,
    quiet: bool,
    stream: IO[str] | None = None,
    rich: bool | None = None,
) -> None:
    """Show pull results: a JSON document, a rich table/line, or plain lines."""
    stream = stream or sys.stdout
    if as_json:
        emit_json(
            {"results": [pull_dict(r) for r in results]}
            if len(results) != 1
            else pull_dict(results[0]),
            stream,
        )
        return
    if quiet:
        return
    rich = use_rich(stream) if rich is None else rich
    if not rich:
        for result in results:
            stream.write(pull_line(result) + "\n")
        stream.flush()
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False)
    if len(results) == 1:
        result = results[0]
        style = _STYLE[result.status]
        text = Text()
        text.append(result.zone, style="bold")
        text.append(" ")
        if result.status is Status.FAILED:
            text.append("failed", style=style)
        elif result.status is Status.UP_TO_DATE:
            text.append(f"up to date at serial {result.serial_to}", style=style)
        else:
            text.append(f"{result.kind.value} ", style=style)
            text.append(
                f"serial {_serials(result).replace('->', ' → ')}, "
                f"+{result.added} -{result.removed}, {result.records} records, "
                f"{human_bytes(result.bytes)} in {result.duration:.2f}s"
            )
        if result.primary:
            text.append(f" from {result.primary}", style="dim")
        if result.output:
            text.append(f" → {result.output}", style="dim")
        console.print(text)
        if result.fallback:
            console.print(Text(f"  note: {result.fallback}", style="yellow"))
        return
    if len(results) <= TABLE_ZONES:
        console.print(pull_table(results))
        return
    failed = [r for r in results if r.status is Status.FAILED]
    if failed:
        console.print(pull_table(failed[:TABLE_ZONES]))
        if len(failed) > TABLE_ZONES:
            console.print(
                Text(f"... and {len(failed) - TABLE_ZONES:,} more failed", style="bold red")
            )
    console.print(pull_counts(results))


def pull_counts(results: list[PullResult]) -> Text:
    """One line of counts for many zones on a terminal: the piped run's lines, tallied."""
    from rich.text import Text

    statuses = [r.status for r in results]
    return tally(
        Text(f"{len(results):,} zones: ", style="bold"),
        statuses.count(Status.TRANSFERRED),
        statuses.count(Status.UP_TO_DATE),
        statuses.count(Status.FAILED),
    )


def tally(text: Text, transferred: int, up_to_date: int, failed: int) -> Text:
    """``text`` followed by how many zones were transferred, up to date and failed, in
    the words and colours ``pull -c`` and ``watch -c`` both print on a terminal."""
    counts = (
        (transferred, "transferred", _STYLE[Status.TRANSFERRED]),
        (up_to_date, "up to date", _STYLE[Status.UP_TO_DATE]),
        (failed, "failed", _STYLE[Status.FAILED]),
    )
    for rank, (count, what, style) in enumerate(counts):
        text.append(", " if rank else "")
        text.append(f"{count:,} {what}", style=style if count else "")
    return text
