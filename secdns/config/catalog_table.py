"""``[[catalog]]`` (catalog zones to follow, RFC 9432) and ``[groups.NAME]`` (settings
for catalog members with that ``group`` property)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.name

from secdns.config.fields import (
    CATALOG_KEYS,
    GROUP_KEYS,
    Problems,
    acl,
    endpoints,
    number,
    transport,
    unknown_key,
)
from secdns.config.values import DEFAULT_MAX_MEMBERS, CatalogConfig, GroupConfig, parse_zone_name
from secdns.errors import SecdnsError


def catalog_tables(
    value: Any,
    keys_doc: dict[str, Any],
    zones: set[dns.name.Name],
    base: Path,
    problems: Problems,
) -> tuple[CatalogConfig, ...]:
    """The ``[[catalog]]`` tables: name, primaries, key, transport settings, max_members,
    and for serve allow_transfer and notify (of the catalog and its members)."""
    if not isinstance(value, list):
        problems.add("catalog", "expected an array of tables [[catalog]]")
        return ()
    result: list[CatalogConfig] = []
    for index, table in enumerate(value):
        where = f"catalog[{index}]"
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            problems.add(where, "expected a table with a name")
            continue
        where = f"catalog[{index}] ({table['name']})"
        for name in table:
            if name not in CATALOG_KEYS:
                problems.add(f"{where}.{name}", unknown_key(name, "catalog"))
        try:
            catalog_name = parse_zone_name(table["name"])
        except SecdnsError as err:
            problems.add(f"{where}.name", err.message)
            continue
        if catalog_name in zones or any(c.name == catalog_name for c in result):
            problems.add(f"{where}.name", "defined twice (as a zone or a catalog)")
        tls = transport(table, where, base, problems)
        primaries = endpoints(
            table.get("primaries"), f"{where}.primaries", problems, 853 if tls else 53
        )
        if not primaries:
            problems.add(f"{where}.primaries", "a catalog needs primaries")
        key = table.get("key")
        if key is not None and (not isinstance(key, str) or key not in keys_doc):
            problems.add(f"{where}.key", f"unknown key {key!r} (define it under [keys.{key}])")
        limit = number(table, "max_members", DEFAULT_MAX_MEMBERS, where, problems, integer=True)
        result.append(
            CatalogConfig(
                catalog_name,
                primaries,
                key if isinstance(key, str) else None,
                tls,
                limit,
                allow_transfer=acl(
                    table.get("allow_transfer"), f"{where}.allow_transfer", keys_doc, problems
                ),
                notify=endpoints(table.get("notify"), f"{where}.notify", problems),
            )
        )
    return tuple(result)


def group_tables(
    value: Any, keys_doc: dict[str, Any], problems: Problems
) -> dict[str, GroupConfig]:
    """``[groups.NAME]``: primaries, key, allow_transfer, notify for catalog members."""
    if not isinstance(value, dict):
        problems.add("groups", "expected tables [groups.NAME]")
        return {}
    result = {}
    for name, table in value.items():
        where = f"groups.{name}"
        if not isinstance(table, dict):
            problems.add(where, "expected a table")
            continue
        for item in table:
            if item not in GROUP_KEYS:
                problems.add(f"{where}.{item}", unknown_key(item, "group"))
        key = table.get("key")
        if key is not None and (not isinstance(key, str) or key not in keys_doc):
            problems.add(f"{where}.key", f"unknown key {key!r} (define it under [keys.{key}])")
        result[name] = GroupConfig(
            name=name,
            primaries=endpoints(table.get("primaries"), f"{where}.primaries", problems),
            key=key if isinstance(key, str) else None,
            allow_transfer=acl(
                table.get("allow_transfer"), f"{where}.allow_transfer", keys_doc, problems
            ),
            notify=endpoints(table.get("notify"), f"{where}.notify", problems),
        )
    return result
