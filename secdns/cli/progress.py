"""The transfer progress display of ``pull`` and ``watch`` on a terminal: one overall
bar for many zones and a row per running transfer (records, bytes, rate), transient.

rich is imported only when the display starts: a piped run never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from secdns import output

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class TransferProgress:
    """A rich progress display for transfers: ``with TransferProgress(True, zones):``.

    ``callback(zone)`` adds a row for a transfer starting and returns the
    ``progress=`` callback of :func:`secdns.pull.pull_zone`; ``finished(zone)``
    removes it; ``done(zone)`` removes it and advances the overall bar (one per zone
    when there is more than one).  Disabled, or once stopped, every call is a no-op.
    """

    def __init__(self, enabled: bool, zones: int = 1, console: Console | None = None) -> None:
        self.enabled = enabled
        self.zones = zones  # more than one (-c): one overall bar, a row per running transfer
        self.console = console  # default: stderr
        self.overall: TaskID | None = None
        self.progress: Progress | None = None  # once started (rich is imported lazily)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> TransferProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not self.enabled or self.progress is not None:
            return
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class PerTransfer(ProgressColumn):
            """A transfer's column; on the overall bar, zones done of all instead."""

            def __init__(self, column: ProgressColumn, overall: str = "") -> None:
                super().__init__()
                self.column = column
                self.overall = overall

            def render(self, task: Task) -> Text:
                if task.fields.get("overall"):
                    return Text(self.overall.format(task=task))
                rendered = self.column.render(task)
                text = rendered if isinstance(rendered, Text) else Text(str(rendered))
                return Text("") if text.plain == "?" else text  # no rate measured yet

        class RowsProgress(Progress):
            """rich's Progress draws the whole display again each time a row is added
            (``add_task`` calls ``refresh``): a row per transfer is 10,000 draws for
            10,000 zones (pull -c of 10,000 zones: 104 s of CPU on a terminal against
            26 s piped).  The display's own refresh thread draws it, 10 times a second."""

            def refresh(self) -> None:
                pass

        self.progress = RowsProgress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            PerTransfer(
                TextColumn("{task.fields[records]:>10,} records"),
                "{task.completed:>10,.0f} done",
            ),
            PerTransfer(TextColumn("{task.completed:>12,.0f} B")),
            PerTransfer(TransferSpeedColumn()),
            TimeElapsedColumn(),
            console=self.console or output.stderr_console(),
            transient=True,
        )
        self.progress.start()
        if self.zones > 1:
            self.overall = self.progress.add_task(
                f"{self.zones:,} zones", total=self.zones, records=0, overall=True
            )

    def stop(self) -> None:
        """Take the display off the terminal (it leaves nothing behind)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.overall = None
            self.tasks.clear()

    def callback(self, zone: str) -> Callable[[int, int], None] | None:
        """The ``progress=`` callback of one transfer.  Its row appears with the first
        data received, so that a zone still at its SOA query (or up to date) shows no
        row of ``0 records 0 B``."""
        progress = self.progress
        if progress is None:
            return None

        def update(records: int, nbytes: int) -> None:
            task = self.tasks.get(zone)
            if task is None:
                if self.progress is not progress:  # stopped meanwhile
                    return
                self.tasks[zone] = progress.add_task(
                    zone, total=None, completed=nbytes, records=records
                )
                return
            progress.update(task, completed=nbytes, records=records)

        return update

    def finished(self, zone: str) -> None:
        """A transfer ended: its row goes (10,000 zones do not make 10,000 rows)."""
        task = self.tasks.pop(zone, None)
        if self.progress is not None and task is not None:
            self.progress.remove_task(task)

    def advance(self) -> None:
        """One more zone done, on the overall bar."""
        if self.progress is not None and self.overall is not None:
            self.progress.advance(self.overall)

    def done(self, zone: str) -> None:
        """A zone finished: its row goes and the overall bar moves."""
        self.finished(zone)
        self.advance()
