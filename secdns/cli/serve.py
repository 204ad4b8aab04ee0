"""``secdns serve``: run the authoritative secondary in the foreground."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import sys
import time

import click

from secdns.cli.options import config_option, make_verbosity_options
from secdns.config import load_config
from secdns.endpoints import parse_endpoint
from secdns.errors import UsageError

_NAMED = re.compile(r"\b(zone|catalog)=(\S+)")
_SERVER = re.compile(r"\bserver ((?:\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):\d+)")


class JsonLines(logging.Formatter):
    """One JSON object per log line (``--log-format json``): time, level, logger, the
    message, and as fields of their own the ``zone`` and ``catalog`` it names
    (``zone=NAME``) and the ``server`` of an error (``server ADDR:PORT``), for a log
    store to select on (a stranger found them only inside ``message``)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        for key, value in _NAMED.findall(message):
            doc.setdefault(key, value)
        server = _SERVER.search(message)
        if server is not None:
            doc["server"] = server.group(1)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def _said_level(record: logging.LogRecord) -> bool:
    """serve's lines name their level (``WARNING``, ``"level"``): a message written for
    the other commands' ``secdns: warning: ...`` loses its own ``warning: ``."""
    if isinstance(record.msg, str) and record.msg.startswith("warning: "):
        record.msg = record.msg[len("warning: ") :]
    return True


def setup_server_logging(log_format: str, verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else logging.INFO
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines())
    elif log_format == "rich" or (log_format == "auto" and sys.stderr.isatty()):
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(_said_level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose >= 3 else level)
    logging.getLogger("secdns.query").setLevel(logging.INFO if verbose >= 2 else logging.WARNING)


@click.command("serve")
@config_option
@click.option(
    "--listen",
    multiple=True,
    metavar="ADDR:PORT",
    help="Listen here (UDP and TCP) instead of [server] listen; repeatable.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "text", "rich", "json"]),
    default="auto",
    show_default=True,
    help="Log lines: rich on a TTY (auto), plain text, or JSON lines (time, level, logger,"
    " message, and the zone, catalog and server a line names as fields of their own).",
)
@make_verbosity_options("-v: refreshes explained, -vv: every query too, -vvv: debug")
def command(
    config_path: str | None, listen: tuple[str, ...], log_format: str, verbose: int, quiet: bool
) -> None:
    """Run an authoritative secondary in the foreground (for systemd or a container).

    Answers queries over UDP and TCP for the zones of the config, takes NOTIFY
    from their primaries, refreshes them on their SOA timers (IXFR, AXFR
    fallback), serves AXFR/IXFR to allow_transfer clients and NOTIFYs the
    notify targets.  SIGHUP reloads the config; SIGTERM/SIGINT stop cleanly.
    Listens on 127.0.0.1:5353 unless told otherwise.  -v explains every
    refresh (as pull --explain), -vv also logs every query, -vvv debugs.

    \b
    Examples:
      secdns serve -c /etc/secdns.toml
      secdns serve -c secdns.toml --listen 0.0.0.0:53 --listen [::]:53 --log-format json
    """
    from secdns.server.server import Server, check_config_for_serve

    if not config_path:
        raise UsageError("serve needs a config: -c secdns.toml (see secdns init)")
    setup_server_logging(log_format, verbose, quiet)
    config = load_config(config_path)
    if listen:
        endpoints = tuple(parse_endpoint(item) for item in listen)
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, listen=endpoints)
        )
    check_config_for_serve(config)

    async def run() -> None:
        server = Server(config, log_queries=verbose >= 2, explain=verbose >= 1)
        await server.serve(install_signals=True)

    asyncio.run(run())
