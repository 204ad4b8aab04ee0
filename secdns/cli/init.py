"""``secdns init``: write a starter configuration file."""

from __future__ import annotations

from pathlib import Path

import click

from secdns.cli.options import make_force_option, make_tsig_options, resolve_key
from secdns.config import parse_zone_name, starter_config
from secdns.endpoints import parse_endpoint
from secdns.errors import LocalIOError, UsageError
from secdns.store import atomic_write


@click.command("init")
@click.argument("args", nargs=-1, metavar="[ZONE @PRIMARY...]...")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default="secdns.toml",
    show_default=True,
    help="Config file to write.",
)
@click.option(
    "-d",
    "--directory",
    default="zones",
    show_default=True,
    help="Zone store directory recorded in [server] directory.",
)
@click.option(
    "--listen",
    multiple=True,
    metavar="ADDR:PORT",
    help="Address for serve to listen on (repeatable; default 127.0.0.1:5353).",
)
@make_tsig_options(
    key_help="Put the TSIG key NAME of an existing config in the new file (the file -c "
    "names, else $SECDNS_CONFIG, else ./secdns.toml): keeps the key with --force."
)
@make_force_option(help="Overwrite an existing config file.")
def command(
    args: tuple[str, ...],
    config_path: str,
    directory: str,
    listen: tuple[str, ...],
    tsig: str | None,
    keyfile: str | None,
    force: bool,
) -> None:
    """Write a starter secdns.toml from zones and their primaries.

    Each ZONE is followed by its @PRIMARY servers.  An existing file is kept
    unless --force.

    \b
    Examples:
      secdns init example.com @192.0.2.1 @192.0.2.2 example.org @198.51.100.7:5300
      secdns init -c /etc/secdns.toml example.com @192.0.2.1 --tsig xfr-key:c2VjcmV0
    """
    zones: list[tuple[str, list[str]]] = []
    for arg in args:
        if arg.startswith("@"):
            if not zones:
                raise UsageError(f"{arg}: a @PRIMARY must follow a ZONE")
            zones[-1][1].append(str(parse_endpoint(arg)))
        else:
            zones.append((parse_zone_name(arg).to_text(), []))
    for name, primaries in zones:
        if not primaries:
            raise UsageError(f"zone {name} has no @PRIMARY")
    for item in listen:
        parse_endpoint(item)
    key = resolve_key(tsig, keyfile)
    path = Path(config_path)
    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    text = starter_config(zones, directory, key, list(listen) or None)
    try:
        atomic_write(path, text, private=key is not None)  # (a TSIG secret: 0600)
    except LocalIOError:
        raise
    click.echo(f"wrote {path} ({len(zones)} zone{'s' if len(zones) != 1 else ''})", err=True)
