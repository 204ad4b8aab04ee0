"""Options shared by every subcommand, defined once and spelled the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from secdns.keys import TsigKey, parse_key_file, parse_tsig_option

F = Callable[..., Any]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "SECDNS",
                    "max_content_width": 100}


def _compose(*decorators: F) -> F:
    def wrap(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func
    return wrap


config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False),
    help="TOML configuration file (see secdns.toml(5)).")

tsig_options = _compose(
    click.option("--tsig", "tsig", metavar="[ALG:]NAME:SECRET",
                 help="TSIG key, as dig -y (algorithm defaults to hmac-sha256)."),
    click.option("-k", "--keyfile", "keyfile", type=click.Path(dir_okay=False),
                 help="TSIG key file in BIND format, as dig -k / nsupdate -k."),
)

network_options = _compose(
    click.option("--timeout", type=click.FloatRange(min=0.01), default=10.0, show_default=True,
                 help="Seconds to wait for each message from a server."),
    click.option("--lifetime", type=click.FloatRange(min=0.01), default=3600.0,
                 show_default=True, help="Seconds a whole transfer may take."),
)

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document instead of text.")

verbosity_options = _compose(
    click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv: debug)."),
    click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors."),
)

force_option = click.option("--force", is_flag=True,
                            help="Accept a serial that is not newer; override safety refusals.")


def resolve_key(tsig: str | None, keyfile: str | None) -> TsigKey | None:
    """The TSIG key from ``--tsig`` or ``-k`` (not both)."""
    if tsig and keyfile:
        raise click.UsageError("use either --tsig or -k, not both")
    if tsig:
        return parse_tsig_option(tsig)
    if keyfile:
        return parse_key_file(keyfile)[0]
    return None
