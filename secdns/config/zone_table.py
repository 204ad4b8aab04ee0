"""``[[zone]]``: each zone's primaries or file, key, ACLs, NOTIFY targets and XoT
settings (:class:`~secdns.config.values.ZoneConfig`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.name

from secdns.config.fields import (
    GROUP_KEYS,
    ZONE_KEYS,
    Problems,
    acl,
    endpoints,
    transport,
    unknown_key,
)
from secdns.config.values import ZoneConfig, parse_zone_name
from secdns.errors import SecdnsError


def zone_tables(
    value: Any,
    keys_doc: dict[str, Any],
    base: Path,
    problems: Problems,
    groups_doc: Any = None,
) -> list[ZoneConfig]:
    """The ``[[zone]]`` array; a zone without a usable name is left out (and reported).
    A zone's ``group = "NAME"`` takes each of ``[groups.NAME]``'s settings (primaries,
    key, allow_transfer, notify) that the zone does not set itself (a stranger's 2,000
    zones took 12,010 lines of the same three settings; BIND and Knot have templates)."""
    if not isinstance(value, list):
        problems.add("zone", "expected an array of tables [[zone]]")
        return []
    groups = groups_doc if isinstance(groups_doc, dict) else {}
    zones: list[ZoneConfig] = []
    seen: dict[tuple[bytes, ...], int] = {}  # each name's lowercased labels: its index
    for index, zone_doc in enumerate(value):
        if not isinstance(zone_doc, dict):
            problems.add(f"zone[{index}]", "expected a table")
            continue
        if "group" in zone_doc:
            zone_doc = _with_group(index, zone_doc, groups, problems)
        zone = _zone_table(index, zone_doc, seen, keys_doc, base, problems)
        if zone is not None:
            zones.append(zone)
    return zones


def _with_group(
    index: int, zone_doc: dict[str, Any], groups: dict[str, Any], problems: Problems
) -> dict[str, Any]:
    """``zone_doc`` with its group's settings where it has none of its own (a zone with
    a ``file`` takes no primaries from it)."""
    name = zone_doc["group"]
    group = groups.get(name) if isinstance(name, str) else None
    if not isinstance(group, dict):
        problems.add(f"zone[{index}].group", f"unknown group {name!r} (define [groups.{name}])")
        return zone_doc
    merged = dict(zone_doc)
    for key in GROUP_KEYS:
        if key in group and key not in zone_doc and not (key == "primaries" and "file" in zone_doc):
            merged[key] = group[key]
    return merged


def _zone_name(
    index: int, zone_doc: dict[str, Any], seen: dict[tuple[bytes, ...], int], problems: Problems
) -> tuple[str, dns.name.Name | None]:
    """Where the zone's problems are reported (``zone[3] (example.com)``) and its name."""
    where = f"zone[{index}]"
    raw_name = zone_doc.get("name")
    zone_name: dns.name.Name | None = None
    if not isinstance(raw_name, str) or not raw_name:
        problems.add(f"{where}.name", "missing zone name")  # and go on: report it all
    else:
        where = f"zone[{index}] ({raw_name})"
        try:
            zone_name = parse_zone_name(raw_name)
        except SecdnsError as err:
            problems.add(f"{where}.name", err.message)
    # (a Name's hash is a Python loop over its bytes; its lowercased labels, as Name
    # equality compares them, hash in C: 10,000 [[zone]] tables)
    key = tuple(map(bytes.lower, zone_name.labels)) if zone_name is not None else None
    if key is not None and key in seen:
        problems.add(f"{where}.name", f"zone defined twice (first as zone[{seen[key]}])")
    elif key is not None:
        seen[key] = index
    return where, zone_name


def _zone_table(
    index: int,
    zone_doc: dict[str, Any],
    seen: dict[tuple[bytes, ...], int],
    keys_doc: dict[str, Any],
    base: Path,
    problems: Problems,
) -> ZoneConfig | None:
    where, zone_name = _zone_name(index, zone_doc, seen, problems)
    for name in zone_doc:
        if name not in ZONE_KEYS:  # (where names the zone: zone[51] (x.test).bogus_key)
            problems.add(f"{where}.{name}", unknown_key(name, "zone"))
    tls = transport(zone_doc, where, base, problems)
    primaries = endpoints(
        zone_doc.get("primaries"), f"{where}.primaries", problems, 853 if tls else 53
    )
    file_value = zone_doc.get("file")
    if file_value is not None and not isinstance(file_value, str):
        problems.add(f"{where}.file", "expected a path string")
        file_value = None
    if primaries and file_value:
        problems.add(where, "set either primaries (a secondary zone) or file (a primary zone)")
    if not primaries and not file_value and not zone_doc.get("primaries"):  # (given, but
        # each one wrong: those are the problems said, not a missing setting too)
        problems.add(where, "needs primaries (a secondary zone) or file (a primary zone)")
    transfer_transport = zone_doc.get("transfer_transport", "any")
    if transfer_transport not in ("any", "tls"):
        problems.add(f"{where}.transfer_transport", 'expected "any" or "tls"')
        transfer_transport = "any"
    request_ixfr = zone_doc.get("request_ixfr", True)
    if not isinstance(request_ixfr, bool):
        problems.add(f"{where}.request_ixfr", "expected true or false")
        request_ixfr = True
    key = zone_doc.get("key")
    if key is not None and (not isinstance(key, str) or key not in keys_doc):
        problems.add(f"{where}.key", f"unknown key {key!r} (define it under [keys.{key}])")
    allow_notify = acl(
        zone_doc.get("allow_notify"), f"{where}.allow_notify", keys_doc, problems, both=False
    )
    notify_key_required = zone_doc.get("notify_key_required", False)
    if not isinstance(notify_key_required, bool):
        problems.add(f"{where}.notify_key_required", "expected true or false")
        notify_key_required = False
    elif notify_key_required and not key and not any(a.startswith("key:") for a in allow_notify):
        problems.add(
            f"{where}.notify_key_required",
            'no key could sign a NOTIFY: set the zone\'s key, or allow_notify = ["key:NAME"]',
        )
    if zone_name is None:
        return None
    return ZoneConfig(
        name=zone_name,
        primaries=primaries,
        key=key if isinstance(key, str) else None,
        file=(base / file_value) if file_value else None,
        allow_transfer=acl(
            zone_doc.get("allow_transfer"), f"{where}.allow_transfer", keys_doc, problems
        ),
        notify=endpoints(zone_doc.get("notify"), f"{where}.notify", problems),
        allow_notify=allow_notify,
        notify_key_required=notify_key_required,
        request_ixfr=request_ixfr,
        tls=tls,
        transfer_transport=transfer_transport,
    )
