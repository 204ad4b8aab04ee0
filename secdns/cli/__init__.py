"""The ``secdns`` command line: a thin veneer that parses, calls the core, renders."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import click

from secdns import __version__
from secdns.cli.options import CONTEXT_SETTINGS
from secdns.errors import ExitCode, SecdnsError

EPILOG = """\b
Exit status: 0 ok/same, 1 differences or failed checks, 2 usage,
3 network, 4 refused/NOTAUTH, 5 TSIG, 6 bad data from a server,
7 local I/O, 70 internal error.  See secdns(1)."""


class SecdnsGroup(click.Group):
    """Turns :class:`SecdnsError` into one stderr line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SecdnsError as err:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"secdns: error: {err.one_line()}", err=True)
            ctx.exit(int(err.exit_code))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("secdns: interrupted", err=True)
            ctx.exit(130)
        except Exception as err:  # a bug: say so in one line unless --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"secdns: internal error: {type(err).__name__}: {err} "
                       "(run with --debug for a traceback)", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    logging.basicConfig(level=level, format="secdns: %(message)s", stream=sys.stderr,
                        force=True)


@click.group("secdns", cls=SecdnsGroup, context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="secdns")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Keep secondary copies of DNS zones in sync with their primaries, and check them.

    \b
    Examples:
      secdns demo                                 # try it, no network needed
      secdns pull example.com @192.0.2.1 -o example.com.zone
      secdns pull -c secdns.toml                  # every configured zone
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main() -> None:
    cli(prog_name="secdns")


def _register() -> None:
    from secdns.cli import demo, diff, init, pull, serve

    for module in (pull, diff, serve, init, demo):
        cli.add_command(module.command)


_register()
