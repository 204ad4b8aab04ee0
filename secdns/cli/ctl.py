"""``secdns ctl``: status and control of a running ``secdns serve`` over its control socket."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

import click

from secdns import output
from secdns.cli.options import complete_zones, config_option, find_config_path, json_option
from secdns.errors import ExitCode, SecdnsError, UsageError

SOCKET_META = "secdns.ctl_socket"
TIMEOUT_META = "secdns.ctl_timeout"
STATUS_FIELDS = (
    "zone",
    "serial",
    "state",
    "primary",
    "last_refresh",
    "last_change",
    "next_refresh",
    "expires_at",
    "records",
    "last_error",
)
STATES = ("loading", "ok", "queued", "refreshing", "retrying", "expired", "unusable", "failed")
""":data:`secdns.zonestatus.STATES`, written out: that module imports the transfer engine,
which no ``ctl`` command needs (a test keeps the two equal)."""
TIME_FIELDS = frozenset({"last_refresh", "last_change", "next_refresh", "expires_at"})
_STATE_STYLE = {
    "ok": "green",
    "loading": "cyan",
    "queued": "cyan",
    "refreshing": "cyan",
    "retrying": "bold yellow",
    "expired": "bold red",
    "unusable": "bold red",
    "failed": "bold red",
}


def _socket_path(ctx: click.Context) -> Path:
    given = ctx.meta.get(SOCKET_META)
    if given:
        return Path(given)
    from secdns.config import server_settings
    from secdns.control import socket_path
    from secdns.errors import ConfigError

    config_path = find_config_path(ctx)
    if config_path is None:
        raise UsageError("which serve? give -c CONFIG or -s SOCKET")
    # the [server] table alone: a serve is reached while its config is being edited
    # (a stranger's half-done edit made ctl status exit 2 with serve running)
    try:
        path = socket_path(server_settings(config_path))
    except ConfigError as err:  # not TOML at all: its [server] table cannot be read
        raise ConfigError(err.message, hint="-s SOCKET reaches serve without the config") from err
    if path is None:
        raise UsageError(f"{config_path} sets neither [server] control nor [server] directory")
    return path


def _call(request: dict[str, Any], on_step: Any = None) -> dict[str, Any]:
    from secdns.control import ctl_request

    ctx = click.get_current_context()
    try:
        return ctl_request(_socket_path(ctx), request, ctx.meta.get(TIMEOUT_META, 300.0), on_step)
    except SecdnsError as err:
        if ctx.params.get("as_json"):  # (a stranger's ctl reload --json printed nothing)
            output.emit_json({"ok": False, "error": err.to_dict()})
        raise


def _show_step(zone: str) -> Any:
    def show(step: dict[str, Any]) -> None:
        where = f" primary={step['primary']}" if step.get("primary") else ""
        click.echo(f"explain: zone={zone}{where} {step.get('step')}: {step.get('text')}", err=True)

    return show


def _when(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(field: str, value: object) -> str:
    if field in TIME_FIELDS:
        return _when(value)
    if value is None:
        return "-"
    if field == "last_error":
        return json.dumps(value)
    return str(value)


def status_line(status: dict[str, Any]) -> str:
    """One stable ``key=value`` line per zone (times in UTC, ``-`` for none)."""
    return " ".join(f"{field}={_text(field, status.get(field))}" for field in STATUS_FIELDS)


# Columns a narrow terminal loses first; zone, serial, state and last_error stay.
DROP_ORDER = ("records", "last_change", "last_refresh", "expires_at", "next_refresh", "primary")
NEVER_WRAP = frozenset({"zone", "serial", "state", *TIME_FIELDS, "primary", "records"})


def _cell(field: str, value: object) -> str:
    return _when(value) if field in TIME_FIELDS else ("-" if value is None else str(value))


def status_table(statuses: list[dict[str, Any]], width: int = 200) -> Any:
    """The status table for a terminal ``width`` columns wide: a zone name or a serial
    is never wrapped; the least useful columns go first when they do not all fit,
    and only the last error folds."""
    from rich.table import Table
    from rich.text import Text

    fields, widths = _fields_for(statuses, width)
    table = Table(title="secdns serve", title_justify="left")
    for field in fields:
        wrap = field not in NEVER_WRAP
        table.add_column(
            field.replace("_", " "),
            overflow="fold" if wrap else "ellipsis",
            no_wrap=not wrap,
            min_width=None if wrap else widths[field] - 3,
        )
    for status in statuses:
        cells: list[Any] = []
        for field in fields:
            value = status.get(field)
            style = _STATE_STYLE.get(str(value), "") if field == "state" else ""
            cells.append(Text(_cell(field, value), style=style))
        table.add_row(*cells)
    return table


TABLE_ROWS = 200
"""Past this many zones a terminal gets :func:`status_columns`, not a rich table (which
lays out each cell: 3 s for a stranger's 5,000 zones, against 0.1 s)."""


def _fields_for(statuses: list[dict[str, Any]], width: int) -> tuple[list[str], dict[str, int]]:
    """The columns that fit ``width`` (the least useful go first; only the last error
    folds or is cut) and each one's natural width, padding and border included."""

    def natural(field: str) -> int:
        cells = [len(_cell(field, s.get(field))) for s in statuses]
        return max([len(field), *cells]) + 3  # padding and the border

    widths = {field: natural(field) for field in STATUS_FIELDS}
    fields = list(STATUS_FIELDS)
    for field in DROP_ORDER:
        fixed = sum(widths[f] for f in fields if f != "last_error") + 1
        if fixed + min(widths["last_error"], 16) <= width:
            break
        fields.remove(field)
    return fields, widths


def status_columns(statuses: list[dict[str, Any]], width: int = 200) -> Any:
    """Many zones' status as aligned columns in one rich Text (the state coloured, the
    columns of :func:`status_table`, the last error cut to the line)."""
    from rich.text import Text

    fields, widths = _fields_for(statuses, width)
    shown = [f for f in fields if f != "last_error"]
    sizes = [widths[f] - 3 for f in shown]
    used = sum(size + 2 for size in sizes)
    room = max(width - used - 1, 8)
    text = Text()
    heads = [f.replace("_", " ").ljust(size) for f, size in zip(shown, sizes, strict=True)]
    header = "  ".join(heads) + ("  last error" if "last_error" in fields else "")
    text.append(header.rstrip() + "\n", style="bold")
    state_at = shown.index("state") if "state" in shown else -1
    for status in statuses:
        cells = [_cell(f, status.get(f)).ljust(size) for f, size in zip(shown, sizes, strict=True)]
        if state_at >= 0:
            before = "  ".join(cells[:state_at])
            text.append(before + "  " if before else "")
            state = cells[state_at]
            text.append(state, style=_STATE_STYLE.get(state.strip(), ""))
            rest = cells[state_at + 1 :]
            line = ("  " + "  ".join(rest)) if rest else ""
        else:
            line = "  ".join(cells)
        if "last_error" in fields and status.get("last_error"):
            error = str(status["last_error"])
            line += "  " + (error if len(error) <= room else error[: room - 1] + "…")
        text.append(line.rstrip() + "\n")
    return text


def state_counts(statuses: list[dict[str, Any]]) -> dict[str, int]:
    """How many zones are in each state, in the order of :data:`STATES`."""
    counts = dict.fromkeys(STATES, 0)
    for status in statuses:
        state = str(status.get("state"))
        counts[state] = counts.get(state, 0) + 1
    return counts


def _summary(counts: dict[str, int], shown: int) -> str:
    total = sum(counts.values())
    states = ", ".join(f"{count:,} {state}" for state, count in counts.items() if count)
    head = f"{total:,} zones" if shown == total else f"{shown:,} of {total:,} zones shown"
    return f"{head}: {states}" if states else head


def _pull_line(pull: dict[str, Any]) -> str:
    fields = [f"zone={pull.get('zone')}", f"result={pull.get('status')}"]
    if pull.get("kind"):
        fields.append(f"kind={pull['kind']}")
    before, after = pull.get("serial_from"), pull.get("serial_to")
    if pull.get("status") == "up-to-date":
        fields.append(f"serial={after}")
    elif pull.get("status") == "failed":  # the serial held, as pull's line (output._serials)
        fields.append(f"serial={'none' if before is None else before}")
    else:
        fields.append(f"serial={'none' if before is None else before}->{after or '-'}")
    if pull.get("status") == "transferred":
        fields += [f"added={pull.get('added')}", f"removed={pull.get('removed')}"]
    for key in ("records", "primary"):
        if pull.get(key) is not None:
            fields.append(f"{key}={pull[key]}")
    if pull.get("fallback"):
        fields.append(f"fallback={json.dumps(pull['fallback'])}")
    error = pull.get("error")
    if isinstance(error, dict):  # zone= is there already; the server and hint are not
        text = str(error.get("message"))
        if error.get("server"):
            text = f"server {error['server']}: {text}"
        if error.get("hint"):
            text += f" ({error['hint']})"
        fields.append(f"error={json.dumps(text)}")
    return " ".join(fields)


@click.group("ctl")
@config_option
@click.option(
    "-s",
    "--socket",
    "socket",
    type=click.Path(dir_okay=False),
    help="serve's control socket (default: [server] control of the config, else "
    "secdns.ctl in its store directory).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.01),
    default=300.0,
    show_default=True,
    help="Seconds to wait for serve's answer.",
)
@click.pass_context
def command(
    ctx: click.Context, config_path: str | None, socket: str | None, timeout: float
) -> None:
    """Status and control of a running secdns serve, over its control socket.

    \b
    Examples:
      secdns ctl -c /etc/secdns.toml status            # exit 1 if a zone is expired/retrying
      secdns ctl -c secdns.toml refresh example.com    # SOA check now, transfer if newer
      secdns ctl -s /var/lib/secdns/secdns.ctl retransfer example.com
    """
    if config_path and socket:
        raise click.UsageError("use either -c CONFIG or -s SOCKET, not both")
    from secdns.cli import setup_logging

    setup_logging(0, False)  # warnings (a TSIG file others can read) as every command says them
    ctx.meta[SOCKET_META] = socket
    ctx.meta[TIMEOUT_META] = timeout


@command.command("status")
@click.argument("zones", nargs=-1, metavar="[ZONE...]", shell_complete=complete_zones)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATES),
    help="List only the zones in this state (repeat for several); the exit status "
    "still covers every zone asked about.",
)
@click.option(
    "--problems",
    is_flag=True,
    help="List only the zones retrying, expired, unusable or failed (the states that "
    "make the exit status 1).",
)
@click.option(
    "--catalog",
    metavar="CATALOG",
    help="Only the member zones this [[catalog]] gives (the summary and exit status too).",
)
@json_option
def status(
    zones: tuple[str, ...],
    states: tuple[str, ...],
    problems: bool,
    catalog: str | None,
    as_json: bool,
) -> None:
    """Each zone's serial, state, primary, timers and last error.

    States: loading, ok, queued, refreshing, retrying, expired, unusable (a catalog
    whose copy cannot be used), failed (a zone file that has not loaded).  Exit status
    1 when any zone is expired, retrying, unusable or failed (for cron or a
    Nagios-style check).  On a terminal a
    summary line follows (how many zones in each state).

    \b
    Examples:
      secdns ctl -c secdns.toml status
      secdns ctl -c secdns.toml status --problems       # only what needs a look
      secdns ctl -c secdns.toml status --catalog catalog.example.net --problems
      secdns ctl -c secdns.toml status example.com --json
    """
    from secdns.zonestatus import PROBLEM_STATES

    request: dict[str, Any] = {"command": "status", "zones": list(zones)}
    if catalog is not None:
        request["catalog"] = catalog
    reply = _call(request)
    every = reply.get("zones", [])
    held = reply.get("primaries") or []
    wanted = {*states, *(PROBLEM_STATES if problems else ())}
    statuses = [s for s in every if s.get("state") in wanted] if wanted else every
    if as_json:
        counts = {"states": state_counts(every)}
        output.emit_json(
            {
                "zones": statuses,
                **counts,
                **({"primaries": held} if "primaries" in reply else {}),
                **(
                    {"notify_targets": reply["notify_targets"]} if "notify_targets" in reply else {}
                ),
                **({"unknown": reply["unknown"]} if "unknown" in reply else {}),
            }
        )
    elif output.use_rich():
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False)
        if len(statuses) > TABLE_ROWS:
            console.print(status_columns(statuses, console.width), soft_wrap=True, end="")
        elif statuses:
            console.print(status_table(statuses, console.width))
        console.print(_summary(state_counts(every), len(statuses)))
        for item in held:  # once a primary, not only in each of its zones' errors
            until = item.get("until")
            if item.get("state") == "failing":
                line = (
                    f"failing: its last {item.get('failures', 0)} tries failed "
                    "(a zone with another primary goes on to it)"
                )
            else:
                when = f"until {_when(until)}" if until else "a try of it due or under way"
                skipped = item.get("skipped", 0)
                line = f"held as unreachable: {when}; {skipped} tries of its zones skipped"
            console.print(Text.assemble((f"primary {item.get('primary')}", "bold red"), " ", line))
        for item in reply.get("notify_targets") or []:  # downstreams behind on our NOTIFYs
            parts = []
            if item.get("missed"):
                missed = item.get("missed")
                noun = "zone" if missed == 1 else "zones"
                parts.append(
                    f"has not acknowledged the NOTIFYs of {missed} {noun} "
                    "(sent again when it answers)"
                )
            if item.get("retrying"):
                parts.append(
                    f"{item.get('retrying')} NOTIFYs unacknowledged so far, being sent again"
                )
            line = "; ".join(parts)
            console.print(
                Text.assemble((f"notify target {item.get('target')}", "bold yellow"), " ", line)
            )
    else:
        for item in statuses:
            sys.stdout.write(status_line(item) + "\n")
        # the primaries and notify targets the terminal and --json show, as lines of
        # their own (a stranger's piped status had lost them)
        for item in held:
            until = _when(item.get("until"))  # (UTC, as the zones' times; - when none)
            fields = [(k, item.get(k)) for k in ("state", "skipped", "failures")]
            line = output.kv_line(("primary", item.get("primary")), *fields[:1])
            sys.stdout.write(f"{line} until={until} {output.kv_line(*fields[1:])}\n")
        for item in reply.get("notify_targets") or []:
            line = output.kv_line(
                ("notify_target", item.get("target")),
                ("missed", item.get("missed")),
                ("retrying", item.get("retrying", 0)),
            )
            sys.stdout.write(line + "\n")
    for message in reply.get("unknown") or []:  # (after the zones it knows: exit 2)
        click.echo(f"secdns: error: {message}", err=True)
    if reply.get("unknown"):
        sys.exit(int(ExitCode.USAGE))
    if any(item.get("state") in PROBLEM_STATES for item in every):
        sys.exit(int(ExitCode.DIFFERENT))


def _absolute(zone: str) -> str:
    """The zone as every other line names it, with its trailing dot."""
    return zone if zone.endswith(".") else f"{zone}."


def _no_wait_option(func: Any) -> Any:
    return click.option(
        "--no-wait", is_flag=True, help="Return at once; do not wait for the result."
    )(func)


def _refresh_command(name: str, doc: str) -> click.Command:
    @click.argument("zone", shell_complete=complete_zones)
    @_no_wait_option
    @click.option(
        "--explain",
        is_flag=True,
        help="Say each decision of the pull as serve makes it, on stderr "
        "(with --json: a steps array), as pull --explain does.",
    )
    @json_option
    def run(zone: str, no_wait: bool, explain: bool, as_json: bool) -> None:
        request = {"command": name, "zone": zone, "no_wait": no_wait, "explain": explain}
        zone = _absolute(zone)
        on_step = _show_step(zone) if explain and not as_json else None
        result = _call(request, on_step)
        if as_json:
            output.emit_json(result)
            return
        if result.get("started"):
            click.echo(f"{name}: zone={zone} started")
            return
        pull = result.get("pull", {})
        click.echo(_pull_line(pull))
        for warning in result.get("warnings") or []:
            click.echo(f"secdns: warning: {name}: {warning}", err=True)
        error = pull.get("error")
        if isinstance(error, dict):
            sys.exit(int(error.get("exit_code") or ExitCode.INTERNAL))

    run.__doc__ = doc
    return command.command(name)(run)


_refresh_command(
    "refresh",
    """Check the zone's SOA now and transfer it if the primary's serial is newer.

    \b
    Example:
      secdns ctl -c secdns.toml refresh example.com
    """,
)
_refresh_command(
    "retransfer",
    """Transfer the whole zone now by AXFR, whatever the serial.

    Also a serial older than ours (a primary restored from a backup), which refresh
    refuses, as rndc retransfer takes it.

    \b
    Example:
      secdns ctl -c secdns.toml retransfer example.com
    """,
)


@command.command("notify")
@click.argument("zone", shell_complete=complete_zones)
@_no_wait_option
@json_option
def notify(zone: str, no_wait: bool, as_json: bool) -> None:
    """NOTIFY the zone's notify targets now.

    Waits up to 10 s for their acknowledgements and says how each ended; exit status
    3 if one has not acknowledged yet (it is retried in the background), 4 if one
    answered with an error (NOTAUTH: not a secondary of the zone there).

    \b
    Example:
      secdns ctl -c secdns.toml notify example.com
    """
    result = _call({"command": "notify", "zone": zone, "no_wait": no_wait})
    targets = result.get("targets") or []
    if as_json:
        output.emit_json(result)
    elif result.get("started"):
        click.echo(f"notify: zone={_absolute(zone)} started")
    else:
        for item in targets:
            ended = (
                "acknowledged"
                if item.get("acknowledged")
                else f"failed error={json.dumps(item.get('error'))}"
            )
            click.echo(f"notify: zone={result.get('zone')} target={item.get('target')} {ended}")
    failed = [item for item in targets if not item.get("acknowledged")]
    if failed:  # answered an error: REFUSED's code; no answer (yet): NETWORK's
        answered = any(str(item.get("error", "")).startswith("answered ") for item in failed)
        sys.exit(int(ExitCode.REFUSED if answered else ExitCode.NETWORK))


@command.command("reload")
@_no_wait_option
@json_option
def reload(no_wait: bool, as_json: bool) -> None:
    """Re-read the config and the zone files, as SIGHUP does.

    Prints how many zones it added, removed and changed (their settings), reloaded
    (a file zone serving a new serial) and failed (a zone file that did not load, or
    changed without a new serial: the loaded version stays); exits 6 or 7 when one
    failed, as rndc reload does not exit 0.

    \b
    Example:
      secdns ctl -c secdns.toml reload
    """
    result = _call({"command": "reload", "no_wait": no_wait})
    if as_json:
        output.emit_json(result)
    elif result.get("started"):
        click.echo("reload: started")
    else:
        keys = ("added", "removed", "changed", "reloaded", "failed")
        counts = " ".join(f"{key}={result.get(key)}" for key in keys)
        click.echo(f"reload: done, zones={result.get('zones')} {counts}")
    failures = result.get("failures") or []
    for warning in result.get("warnings") or []:
        level = "error" if warning in failures else "warning"
        click.echo(f"secdns: {level}: reload: {warning}", err=True)
    if failures:
        sys.exit(int(result.get("exit_code") or ExitCode.BAD_DATA))


@command.command("stop")
@json_option
def stop(as_json: bool) -> None:
    """Stop serve cleanly, as SIGTERM does; return once it has stopped.

    \b
    Example:
      secdns ctl -c secdns.toml stop
    """
    result = _call({"command": "stop"})
    if as_json:
        output.emit_json(result)
    elif result.get("stopped"):
        click.echo("stop: serve stopped")
    else:  # (its store writes took longer than --timeout)
        click.echo("stop: serve is stopping (not stopped within --timeout)")
