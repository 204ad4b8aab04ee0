"""Options shared by every subcommand, defined once and spelled the same everywhere."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from secdns.config import Config, ZoneConfig, load_config, parse_zone_name
from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import UsageError
from secdns.keys import TsigKey, parse_key_file, parse_tsig_option
from secdns.xot import TlsSettings, default_port, make_settings

F = Callable[..., Any]


def _compose(*decorators: F) -> F:
    def wrap(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return wrap


CONFIG_ENVVAR = "SECDNS_CONFIG"
"""Where shell completion and ``--key`` look for the config when there is no ``-c``."""

DEFAULT_CONFIG = "secdns.toml"
"""The last resort of that search, in the current directory (what ``secdns init`` writes)."""

KEY_NAME_META = "secdns.key_name"
"""``ctx.meta`` slot where ``--key NAME`` is kept, so commands need no ``key_name`` argument."""


def split_list(values: tuple[str, ...] | str | None) -> list[str]:
    """A list option as every command takes it: repeated, comma-separated, or both
    (``--skip a,b --skip c``, as ``--ignore-type A,SOA``); blanks dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = (values,)
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def find_config_path(ctx: click.Context | None = None) -> Path | None:
    """The config a command line refers to: ``-c`` (this context or a parent), else
    ``$SECDNS_CONFIG``, else ``./secdns.toml`` if it exists; ``None`` if there is none.

    A ``-c`` default does not count (``init -c`` names the file it is going to write).
    """
    while ctx is not None:
        given = ctx.params.get("config_path")
        if given and ctx.get_parameter_source("config_path") is not ParameterSource.DEFAULT:
            return Path(given)
        ctx = ctx.parent
    from_env = os.environ.get(CONFIG_ENVVAR)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def _config_document(ctx: click.Context) -> dict[str, Any]:
    """The raw TOML of the config, for completion: no validation, so one bad zone
    does not hide the others."""
    path = find_config_path(ctx)
    if path is None:
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8"))


def complete_zones(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ZONE arguments: the ``[[zone]]`` names of the config.

    ``@SERVER`` words and any problem reading the config complete to nothing.
    """
    if incomplete.startswith("@"):
        return []
    try:
        zones = _config_document(ctx).get("zone", [])
        items = []
        for zone in zones:
            name = zone.get("name")
            if not isinstance(name, str) or not name:
                continue
            shown = name if name == "." else name.rstrip(".")
            if not shown.lower().startswith(incomplete.lower()):
                continue
            primaries = zone.get("primaries") or []
            if isinstance(primaries, str):
                primaries = [primaries]
            detail = (
                f"secondary of {', '.join(map(str, primaries))}"
                if primaries
                else f"primary, from {zone['file']}"
                if zone.get("file")
                else None
            )
            items.append(CompletionItem(shown, help=detail))
        return items
    except Exception:  # completion must never break the shell
        return []


def complete_keys(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ``--key``: the ``[keys.NAME]`` names of the config."""
    try:
        keys = _config_document(ctx).get("keys", {})
        return [
            CompletionItem(name, help=str(table.get("algorithm", "hmac-sha256")))
            for name, table in keys.items()
            if name.startswith(incomplete) and isinstance(table, dict)
        ]
    except Exception:  # completion must never break the shell
        return []


def _remember_key_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.meta[KEY_NAME_META] = value
    return value


config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="SECDNS_CONFIG",
    help="TOML configuration file (see secdns.toml(5)); default $SECDNS_CONFIG.",
)

KEY_HELP = (
    "Use the TSIG key NAME from the config's [keys] (-c, else $SECDNS_CONFIG, else ./secdns.toml)."
)


def make_tsig_options(key_help: str = KEY_HELP) -> F:
    """--tsig, -k and --key; a command whose --key means something else says so."""
    return _compose(
        click.option(
            "--tsig",
            "tsig",
            metavar="[ALG:]NAME:SECRET",
            help="TSIG key, as dig -y (algorithm defaults to hmac-sha256).",
        ),
        click.option(
            "-k",
            "--keyfile",
            "keyfile",
            type=click.Path(dir_okay=False),
            help="TSIG key file in BIND format, as dig -k / nsupdate -k.",
        ),
        click.option(
            "--key",
            "key_name",
            metavar="NAME",
            expose_value=False,
            callback=_remember_key_name,
            shell_complete=complete_keys,
            help=key_help,
        ),
    )


tsig_options = make_tsig_options()

network_options = _compose(
    click.option(
        "--timeout",
        type=click.FloatRange(min=0.01),
        default=10.0,
        show_default=True,
        help="Seconds to wait for each message from a server.",
    ),
    click.option(
        "--lifetime",
        type=click.FloatRange(min=0.01),
        default=3600.0,
        show_default=True,
        help="Seconds a whole transfer may take.",
    ),
)

JSON_META = "secdns.json"
"""Set in the context's meta when --json is given: an error that ends the command
before its document is printed is then a JSON document too (:class:`SecdnsGroup`)."""


def _note_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_META] = True
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_note_json,
    help="Print one JSON document instead of text.",
)


def make_verbosity_options(levels: str = "-vv: debug") -> Callable[[F], F]:
    """-v (counted) and -q; ``levels``: what each -v adds, as the command's --help says."""
    return _compose(
        click.option("-v", "--verbose", count=True, help=f"More log detail on stderr ({levels})."),
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors."),
    )


verbosity_options = make_verbosity_options()


def make_force_option(
    help: str = "Accept a serial that is not newer; override safety refusals.",
) -> F:
    return click.option("--force", is_flag=True, help=help)


force_option = make_force_option()


def resolve_key(
    tsig: str | None,
    keyfile: str | None,
    key_name: str | None = None,
    config: Config | str | Path | None = None,
) -> TsigKey | None:
    """The TSIG key from ``--tsig``, ``-k`` or ``--key NAME`` (one of them at most).

    ``key_name`` defaults to the ``--key`` of the current click command; it is
    looked up in ``config`` (a :class:`~secdns.config.Config` or a path), else in
    the config the command line refers to (:func:`find_config_path`).
    """
    ctx = click.get_current_context(silent=True)
    if key_name is None and ctx is not None:
        key_name = ctx.meta.get(KEY_NAME_META)
    if tsig and keyfile:
        raise click.UsageError("use either --tsig or -k, not both")
    if key_name is not None and (tsig or keyfile):
        raise click.UsageError(f"use either --key or {'--tsig' if tsig else '-k'}, not both")
    if tsig:
        return parse_tsig_option(tsig)
    if keyfile:
        return parse_key_file(keyfile)[0]
    if key_name is not None:
        return _configured_key(key_name, config, ctx)
    return None


def _configured_key(
    name: str, config: Config | str | Path | None, ctx: click.Context | None
) -> TsigKey:
    if not isinstance(config, Config):
        path = Path(config) if config is not None else find_config_path(ctx)
        if path is None:
            raise UsageError(
                f"--key {name}: no config to find it in (give -c FILE, set "
                f"${CONFIG_ENVVAR} or create ./{DEFAULT_CONFIG})"
            )
        config = load_config(path)
    key = config.keys.get(name)
    if key is None:
        known = ", ".join(sorted(config.keys)) or "none"
        raise UsageError(f"--key: no key {name!r} in {config.path} (known: {known})")
    return key


def config_zones(
    config_path: str,
    zones: list[str],
    servers: list[Endpoint],
    *,
    output_given: bool,
    directory: str | None,
) -> tuple[Config, list[ZoneConfig], str | None]:
    """The secondary zones of a config that ``pull -c`` / ``watch -c`` work on (all, or
    those named), and the store directory (``-d`` or ``[server] directory``)."""
    if servers:
        raise UsageError("with -c the primaries come from the config; drop the @SERVER arguments")
    config = load_config(config_path)
    wanted = [parse_zone_name(z) for z in zones]
    missing = [str(w) for w in wanted if config.zone(w) is None]
    if missing:
        raise UsageError(f"zone(s) not in {config_path}: {', '.join(missing)}")
    selected = [z for z in config.zones if z.primaries and (not wanted or z.name in wanted)]
    if not selected and (wanted or not config.catalogs):
        raise UsageError(f"no secondary zones (with primaries) in {config_path}")
    if output_given and len(selected) > 1:
        raise UsageError("-o works with one zone; use -d (or [server] directory) for many")
    store_dir = directory or (str(config.server.directory) if config.server.directory else None)
    if store_dir is None and not output_given:
        raise UsageError(f"{config_path} sets no [server] directory: give -d DIR or -o FILE")
    return config, selected, store_dir


TLS_META = "secdns.tls"
"""``ctx.meta`` slot for the ``--tls*`` options, so commands need no extra arguments."""


def _remember_tls(ctx: click.Context, param: click.Parameter, value: object) -> object:
    if value not in (None, False):
        ctx.meta.setdefault(TLS_META, {})[param.name] = value
    return value


def _tls_option(*decls: str, **attrs: Any) -> F:
    return click.option(*decls, expose_value=False, callback=_remember_tls, **attrs)


tls_options = _compose(
    _tls_option("--tls", is_flag=True, help="Zone transfer over TLS (XoT, RFC 9103); port 853."),
    _tls_option(
        "--tls-ca",
        type=click.Path(exists=True, dir_okay=False),
        metavar="FILE",
        help="PEM CA bundle to verify the server with (default: the system store).",
    ),
    _tls_option(
        "--tls-hostname",
        metavar="NAME",
        help="Name to verify in the certificate (default: the server as given).",
    ),
    _tls_option(
        "--tls-pin",
        metavar="BASE64",
        help="SHA-256 of the server key's SubjectPublicKeyInfo, as kdig +tls-pin; "
        "replaces CA verification.",
    ),
    _tls_option(
        "--tls-insecure", is_flag=True, help="TLS without any verification (opportunistic)."
    ),
)


def resolve_tls() -> TlsSettings | None:
    """The XoT settings of the current command's ``--tls*`` options (None: plain DNS)."""
    ctx = click.get_current_context()
    given = ctx.meta.get(TLS_META, {})
    return make_settings(
        bool(given.get("tls")),
        given.get("tls_ca"),
        given.get("tls_hostname"),
        given.get("tls_pin"),
        bool(given.get("tls_insecure")),
    )


def split_args(args: tuple[str, ...], port: int = 53) -> tuple[list[str], list[Endpoint]]:
    """Separate zone names from ``@SERVER`` arguments (``port`` unless one is given)."""
    zones = [a for a in args if not a.startswith("@")]
    servers = [parse_endpoint(a, port) for a in args if a.startswith("@")]
    return zones, servers


def zones_and_servers(
    args: tuple[str, ...], config_path: str | None
) -> tuple[TlsSettings | None, list[str], list[Endpoint], str | None]:
    """The ``--tls*`` settings, the ZONEs and @SERVERs of ``[ZONE] [@SERVER...]`` (on
    the XoT port with --tls), and the config that still applies: $SECDNS_CONFIG does
    not override @SERVERs typed on the command line, a ``-c`` does."""
    tls = resolve_tls()
    zones, servers = split_args(args, default_port(tls))
    source = click.get_current_context().get_parameter_source("config_path")
    if config_path and servers and source is not ParameterSource.COMMANDLINE:
        config_path = None
    return tls, zones, servers, config_path


def set_by_user(name: str) -> bool:
    """Whether the current command's parameter ``name`` was given (on the command
    line or by its SECDNS_* variable), not left to its default: a config's [server]
    timeout and lifetime apply to pull -c and watch -c where the user set neither."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
