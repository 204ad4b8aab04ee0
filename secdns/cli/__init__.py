"""The ``secdns`` command line: a thin veneer that parses, calls the core, renders."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any, NoReturn

import click

from secdns import __version__
from secdns.errors import ExitCode, SecdnsError, exit_code_epilog

EPILOG = exit_code_epilog()

CONTEXT_SETTINGS = {
    "help_option_names": ["-h", "--help"],
    "auto_envvar_prefix": "SECDNS",
    "max_content_width": 100,
}

EXIT_BROKEN_PIPE = int(ExitCode.BROKEN_PIPE)
"""The status of a command whose reader went away (``| head -1``), as a shell
reports one killed by SIGPIPE."""


def exit_on_broken_pipe() -> NoReturn:
    """Leave quietly once stdout's reader has gone: no traceback, no "internal
    error", and no second BrokenPipeError when Python flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (CliRunner): nothing to flush
        pass
    sys.exit(EXIT_BROKEN_PIPE)


READER_GRACE_MS = 20
"""How long a command that wrote to a pipe waits at exit for its reader to go."""


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader closed it before reading all we wrote
    (``| head -1`` that took its line and left the rest).  Output that fit in the
    pipe's buffer never met the closed pipe, so a command that wrote to stdout asks
    before it exits: POLLERR on a pipe's write end means its reader is gone, and bytes
    still in the pipe (FIONREAD) that it had not read them all.  A reader that read
    everything, then went (``| head -1`` of one line, or of a short output read in one
    go), leaves the command's own status, as ``diff a b | head -1`` exits 1: a
    stranger's ``pull ... | head -1`` of its one line said 141 after a good pull."""
    import fcntl
    import select
    import stat
    import termios

    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, 0)
        # a reader that stopped early (head) is gone within a few milliseconds of our
        # last write; one that reads to the end (cat, less) costs this wait once
        if not any(event & select.POLLERR for _, event in poller.poll(READER_GRACE_MS)):
            return False
    except (OSError, ValueError, AttributeError):
        return False
    unread = bytearray(4)
    try:
        fcntl.ioctl(fd, termios.FIONREAD, unread)
    except OSError:  # (cannot tell: gone is gone)
        return True
    return int.from_bytes(unread, sys.byteorder) > 0


def check_stdout() -> None:
    """Flush stdout and leave with 141 if its reader has gone (see
    :func:`stdout_reader_gone`); :func:`main` does it for every command."""
    sys.stdout.flush()
    if stdout_reader_gone():
        exit_on_broken_pipe()


# subcommand -> module defining ``command``; imported only when used, so that
# ``secdns pull`` does not pay for importing ``serve``.
LAZY_COMMANDS = {
    "pull": "secdns.cli.pull",
    "diff": "secdns.cli.diff",
    "verify": "secdns.cli.verify",
    "watch": "secdns.cli.watch",
    "serve": "secdns.cli.serve",
    "init": "secdns.cli.init",
    "demo": "secdns.cli.demo",
    "completion": "secdns.cli.completion",
    "ctl": "secdns.cli.ctl",
}


def name_envvars(command: click.Command, prefix: str) -> None:
    """Name each option's environment variable ``SECDNS_<COMMAND>_<OPTION>`` after its
    long spelling (``-o/--output`` -> ``SECDNS_PULL_OUTPUT``), not after the Python
    parameter (click's ``auto_envvar_prefix`` would say ``SECDNS_PULL_OUTPUT_PATH``).

    The parameter-named variable still works where it differs, as a second choice.
    """
    for param in command.params:
        if not isinstance(param, click.Option) or param.envvar or not param.allow_from_autoenv:
            continue
        if param.is_eager and not param.expose_value:  # --help, --version
            continue
        longs = [opt for opt in param.opts if opt.startswith("--")]
        if not longs or not param.name:
            continue
        documented = f"{prefix}_{longs[0][2:].replace('-', '_').upper()}"
        legacy = f"{prefix}_{param.name.upper()}"
        param.envvar = documented if legacy == documented else [documented, legacy]


class SecdnsGroup(click.Group):
    """Loads subcommands lazily and turns :class:`SecdnsError` into one stderr line
    and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            import importlib

            command = importlib.import_module(LAZY_COMMANDS[cmd_name]).command
            self.add_command(command, cmd_name)
        if command is not None:  # however it was registered (idempotent)
            name_envvars(command, f"SECDNS_{cmd_name.upper().replace('-', '_')}")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as err:
            import difflib

            name = args[0] if args else ""
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close and "No such command" in err.message:
                raise click.UsageError(f"{err.message} Did you mean '{close[0]}'?", ctx) from None
            raise

    def invoke(self, ctx: click.Context) -> Any:
        take_sigint_back()
        try:
            return super().invoke(ctx)
        except SecdnsError as err:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"secdns: error: {err.one_line()}", err=True)
            _json_error(ctx, err)
            ctx.exit(int(err.exit_code))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            exit_on_broken_pipe()
        except KeyboardInterrupt:
            click.echo("secdns: interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except Exception as err:  # a bug: say so in one line unless --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(
                f"secdns: internal error: {type(err).__name__}: {err} "
                "(run with --debug for a traceback)",
                err=True,
            )
            ctx.exit(int(ExitCode.INTERNAL))


def take_sigint_back() -> None:
    """From here on SIGINT is KeyboardInterrupt again, which each command turns into
    its own orderly stop (a summary, exit 130); before, :mod:`secdns._entry` had it
    leave at once."""
    import signal

    from secdns._entry import interrupted_early

    if signal.getsignal(signal.SIGINT) is interrupted_early:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    logging.basicConfig(level=level, format="secdns: %(message)s", stream=sys.stderr, force=True)


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


def _json_error(ctx: click.Context, err: SecdnsError) -> None:
    """With --json, an error that ended the command before its document is one too
    (``{"zone", "result": "failed", "error"}``, as pull's), so ``... --json | jq`` reads
    it (a stranger's diff and verify printed nothing on stdout)."""
    from secdns import output
    from secdns.cli.options import JSON_META

    if ctx.meta.get(JSON_META) and not ctx.meta.get(output.JSON_EMITTED):
        document = {"zone": err.zone, "result": "failed", "error": err.to_dict()}
        try:
            output.emit_json(document)
        except BrokenPipeError:
            exit_on_broken_pipe()


def main() -> None:
    try:
        try:
            cli(prog_name="secdns")
        except SystemExit as done:
            # click met the closed pipe itself (help, usage): it wraps stdout and exits 1
            if type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper":
                exit_on_broken_pipe()
            if done.code in (None, 0, 1):  # a failure's own status says more than 141
                check_stdout()
            raise
        finally:  # what is still buffered meets a closed pipe here, after sys.exit
            sys.stdout.flush()
    except BrokenPipeError:
        exit_on_broken_pipe()
    except KeyboardInterrupt:  # after the command, while its output is flushed
        click.echo("secdns: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
