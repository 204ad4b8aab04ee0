"""The TOML configuration shared by ``pull``, ``watch`` and ``serve``.

Read with :mod:`tomllib` into frozen dataclasses.  Every problem in a file is
reported at once, each naming the file and the key; nothing here touches the
network.  The rooms:

* ``values.py``: the frozen dataclasses and defaults (re-exported here: import
  them from ``secdns.config``);
* ``fields.py``: reading one value, collecting problems, the keys each table knows;
* ``server_table.py``, ``zone_table.py``, ``catalog_table.py`` (with ``[groups]``):
  one reader per table; ``[keys.NAME]`` is read here, with the order of it all.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.name
import tomli_w

from secdns.config.catalog_table import catalog_tables, group_tables
from secdns.config.fields import Problems, take_notify_keys, unknown_key
from secdns.config.server_table import catalog_and_tls, server_table
from secdns.config.values import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LIFETIME,
    DEFAULT_LISTEN,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_RECORDS,
    DEFAULT_NOTIFY_LIMIT,
    DEFAULT_TIMEOUT,
    CatalogConfig,
    Config,
    GroupConfig,
    Limits,
    ServerConfig,
    ZoneConfig,
    parse_zone_name,
)
from secdns.config.zone_table import zone_tables
from secdns.errors import ConfigError, LocalIOError, SecdnsError
from secdns.keys import TsigKey, make_key, warn_if_exposed

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LIFETIME",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_NOTIFY_LIMIT",
    "DEFAULT_TIMEOUT",
    "CatalogConfig",
    "Config",
    "GroupConfig",
    "Limits",
    "ServerConfig",
    "ZoneConfig",
    "load_config",
    "server_settings",
    "parse_config",
    "parse_zone_name",
    "starter_config",
]

SECTIONS = ("server", "keys", "zone", "catalog", "groups")


def parse_config(doc: dict[str, Any], path: str = "<config>", base: Path | None = None) -> Config:
    """Build a :class:`Config` from a parsed TOML document; report every problem at once."""
    problems = Problems(path)
    base = base or Path(".")
    for top in doc:
        if top not in SECTIONS:
            problems.add(
                top,
                "unknown section (expected [server], [keys.NAME], [[zone]], [[catalog]], "
                "[groups.NAME])",
            )
    keys_doc = doc.get("keys", {})
    if not isinstance(keys_doc, dict):
        problems.add("keys", "expected tables [keys.NAME]")
        keys_doc = {}
    doc, notify_keys = take_notify_keys(doc, keys_doc, problems)
    server, server_doc = server_table(doc, base, problems)
    keys = _key_tables(keys_doc, path, problems)
    zones = zone_tables(doc.get("zone", []), keys_doc, base, problems, doc.get("groups"))
    zone_names = {z.name for z in zones}
    catalogs = catalog_tables(doc.get("catalog", []), keys_doc, zone_names, base, problems)
    groups = group_tables(doc.get("groups", {}), keys_doc, problems)
    server = dataclasses.replace(server, **catalog_and_tls(server_doc, keys_doc, base, problems))
    if server.catalog is not None and (
        server.catalog in zone_names or any(c.name == server.catalog for c in catalogs)
    ):
        problems.add("server.catalog", "names a [[zone]] or [[catalog]]: publish it under another")
    problems.raise_if_any()
    return Config(
        path=Path(path),
        server=server,
        keys=keys,
        zones=tuple(zones),
        catalogs=catalogs,
        groups=groups,
        notify_keys=notify_keys,
    )


def _key_tables(keys_doc: dict[str, Any], path: str, problems: Problems) -> dict[str, TsigKey]:
    """``[keys.NAME]``: algorithm, secret and (optionally) the key's name on the wire."""
    keys: dict[str, TsigKey] = {}
    for key_name, key_doc in keys_doc.items():
        where = f"keys.{key_name}"
        if not isinstance(key_doc, dict):
            problems.add(where, "expected a table with algorithm and secret")
            continue
        for name in key_doc:
            if name not in ("algorithm", "secret", "name"):
                problems.add(f"{where}.{name}", unknown_key(name, "keys"))
        secret = key_doc.get("secret")
        if not isinstance(secret, str):
            problems.add(f"{where}.secret", "missing (base64 string)")
            continue
        try:
            keys[key_name] = make_key(
                str(key_doc.get("name", key_name)),
                str(key_doc.get("algorithm", "hmac-sha256")),
                secret,
                where=f"{path}: {where}",
            )
        except SecdnsError as err:
            problems.items.append(err.message)
    _same_wire_name(keys, path)
    return keys


def _wire_name_conflicts(keys: dict[str, TsigKey]) -> Iterator[tuple[str, str, dns.name.Name]]:
    """(an earlier table, a table, their key's name on the wire) for each table whose key
    has the name of an earlier one's but another secret or algorithm."""
    by_wire: dict[dns.name.Name, tuple[str, TsigKey]] = {}
    for table, key in keys.items():
        wire = dns.name.from_text(key.name)
        earlier = by_wire.get(wire)
        by_wire[wire] = (table, key)
        if earlier is not None and (earlier[1].secret, earlier[1].algorithm) != (
            key.secret,
            key.algorithm,
        ):
            yield earlier[0], table, wire


def _same_wire_name(keys: dict[str, TsigKey], path: str) -> None:
    """Two tables whose keys have one name on the wire but another secret or algorithm
    (a secret being rolled: ``pull --key`` picks one by its table): said, since a keyring
    holds one key a name and serve checks what is signed with it against the last table
    (a stranger's two tables were taken without a word); serve and watch refuse them
    (:func:`keyring_conflicts`)."""
    for earlier, table, wire in _wire_name_conflicts(keys):
        # (it said serve verified against the last table, before serve's reload refused
        # the config: a stranger read the two as contradicting each other)
        log.warning(
            "warning: %s: [keys.%s] and [keys.%s] name one key, %s, with two secrets: "
            "pull --key picks one by its table; serve and watch refuse the config",
            path,
            earlier,
            table,
            wire,
        )


def keyring_conflicts(config: Config) -> list[str]:
    """Key tables naming one key on the wire with two secrets or algorithms: a problem
    for serve and watch, which check what is signed (a NOTIFY, a transfer request)
    against a keyring of one key a name, as BIND and Knot refuse a key declared twice
    (a stranger's second table, for one zone's test, had every other zone's NOTIFY
    answered NOTAUTH, BADSIG); ``pull -c --key`` picks one by its table, so the loader
    only warns (:func:`_same_wire_name`)."""
    return [
        f"[keys.{table}] names the key {config.keys[table].name} as [keys.{earlier}] does, "
        "with another secret or algorithm: one name on the wire has one secret (give one "
        "of them another name, or drop one)"
        for earlier, table, _wire in _wire_name_conflicts(config.keys)
    ]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise LocalIOError(f"cannot read config {path}: {err.strerror}") from err
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; relative paths are relative to its folder."""
    path = Path(path)
    doc = _read_toml(path)
    config = parse_config(doc, str(path), base=path.parent)
    if config.keys:
        warn_if_exposed(path)
    return config


def server_settings(path: str | Path) -> ServerConfig:
    """The ``[server]`` table of a config file as far as it reads, its problems and those
    of the rest of the file left unsaid: ``ctl`` finds a running serve's control
    socket while the file is being edited (serve runs on the config it loaded).
    :class:`ConfigError` only when the file is no TOML at all."""
    path = Path(path)
    doc = _read_toml(path)
    server, _doc = server_table(doc, path.parent, Problems(str(path)))
    if doc.get("keys"):  # (as load_config warns: the file holds TSIG secrets)
        warn_if_exposed(path)
    return server


def starter_config(
    zones: list[tuple[str, list[str]]],
    directory: str,
    key: TsigKey | None = None,
    listen: list[str] | None = None,
) -> str:
    """A starter config as TOML text (written with tomli-w)."""
    doc: dict[str, Any] = {
        "server": {"directory": directory, "listen": listen or list(DEFAULT_LISTEN)}
    }
    if key is not None:
        doc["keys"] = {key.name: {"algorithm": key.algorithm, "secret": key.secret}}
    doc["zone"] = []
    for name, primaries in zones:
        zone: dict[str, Any] = {"name": name, "primaries": primaries}
        if key is not None:
            zone["key"] = key.name
        zone["allow_transfer"] = []
        doc["zone"].append(zone)
    return tomli_w.dumps(doc)
