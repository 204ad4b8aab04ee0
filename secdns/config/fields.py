"""Reading one TOML value with every problem collected: the pieces each table's
reader (``server_table``, ``zone_table``, ``catalog_table``) is made of, and the
keys each table knows (for "unknown key, did you mean").

A reader adds a problem naming the file and the key, returns a usable default and
goes on, so that :class:`Problems` can report them all at once.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from pathlib import Path
from typing import Any

from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import ConfigError, SecdnsError
from secdns.xot import TlsSettings, parse_pin


class Problems:
    """Collects every problem in a config file before failing once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{self.path}: {key}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(
                "; ".join(self.items)
                if len(self.items) == 1
                else f"{len(self.items)} problems:\n  " + "\n  ".join(self.items)
            )


def str_list(value: Any, key: str, problems: Problems) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(key, "expected a list of strings")
        return []
    return list(value)


@functools.lru_cache(maxsize=4096)
def _endpoint(item: str, port: int) -> Endpoint:
    """One (frozen) Endpoint for the many zones that name the same primary."""
    return parse_endpoint(item, port)


def endpoints(value: Any, key: str, problems: Problems, port: int = 53) -> tuple[Endpoint, ...]:
    result = []
    for item in str_list(value, key, problems):
        try:
            result.append(_endpoint(item, port))
        except SecdnsError as err:
            problems.add(key, err.message)
    return tuple(result)


def acl(
    value: Any, key: str, keys: dict[str, Any], problems: Problems, *, both: bool = True
) -> tuple[str, ...]:
    """An ``allow_transfer`` list: CIDRs/addresses, ``key:NAME``, and ``CIDR key:NAME``
    (both must match: :func:`secdns.server.xfrout.transfer_allowed`), written back
    with one space between the two; ``both`` False (``allow_notify``): not the last."""
    result = []
    for item in str_list(value, key, problems):
        parts = item.split()
        if len(parts) == 2 and parts[1].startswith("key:") and not parts[0].startswith("key:"):
            if not both:
                problems.add(key, f"{item!r}: here an address or a key allows, not both at once")
                continue
            network, key_item = parts
        elif len(parts) == 1:
            network, key_item = ("", parts[0]) if parts[0].startswith("key:") else (parts[0], "")
        else:
            problems.add(key, f"{item!r} is neither a CIDR/address, key:NAME nor 'CIDR key:NAME'")
            continue
        if key_item and key_item[4:] not in keys:
            name = key_item[4:]
            problems.add(key, f"unknown key {name!r} (define it under [keys.{name}])")
        if network:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                problems.add(
                    key, f"{network!r} is neither a CIDR/address, key:NAME nor 'CIDR key:NAME'"
                )
        result.append(" ".join(part for part in (network, key_item) if part))
    return tuple(result)


def number(
    table: dict[str, Any],
    name: str,
    default: float,
    key: str,
    problems: Problems,
    *,
    integer: bool = False,
    zero_off: bool = False,
) -> Any:
    """``table[name]``, a positive finite number (``zero_off``: or 0, which turns the
    setting off), else ``default`` with the problem noted."""
    value = table.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)  # (TOML has inf and nan)
        or value < 0
        or (value == 0 and not zero_off)
    ):
        wanted = "seconds, 0 or more (0: off)" if zero_off else "a positive number"
        problems.add(f"{key}.{name}", f"expected {wanted}")
        return default
    if integer and not isinstance(value, int):
        problems.add(f"{key}.{name}", "expected a positive integer")
        return default
    return value


SERVER_KEYS = {
    "directory",
    "listen",
    "concurrency",
    "timeout",
    "lifetime",
    "max_records",
    "max_bytes",
    "tcp_clients",
    "tcp_clients_per_source",
    "tcp_idle_timeout",
    "identity",
    "version",
    "control",
    "metrics_listen",
    "catalog",
    "catalog_allow_transfer",
    "catalog_notify",
    "tls_listen",
    "tls_cert",
    "tls_key",
    "tls_handshake_timeout",
    "store_sync",
    "ready_answers",
    "ready_small_zones",
    "keep_connections",
    "unreachable_hold",
    "notify_limit",
}
TLS_KEYS = {"transport", "tls_ca", "tls_hostname", "tls_pin"}
ZONE_KEYS = {
    "name",
    "primaries",
    "key",
    "file",
    "allow_transfer",
    "notify",
    "allow_notify",
    "notify_key_required",
    "request_ixfr",
    "transfer_transport",
    "group",
} | TLS_KEYS
CATALOG_KEYS = {"name", "primaries", "key", "max_members", "allow_transfer", "notify"} | TLS_KEYS
GROUP_KEYS = ("primaries", "key", "allow_transfer", "notify")


def unknown_key(name: str, section: str) -> str:
    """ "unknown key", with the closest known key of this section (or of the other:
    ``listen_on`` in a [[zone]] is most likely [server] listen) when there is one;
    ``section``: server, zone, catalog, group or keys (a stranger's [[catalog]]
    ``primary`` had no hint where [[zone]]'s had one)."""
    import difflib

    sections = {"server": SERVER_KEYS, "zone": ZONE_KEYS}
    known = {
        **sections,
        "catalog": CATALOG_KEYS,
        "group": set(GROUP_KEYS),
        "keys": {"algorithm", "secret", "name"},
    }
    own = difflib.get_close_matches(name, sorted(known[section]), n=1, cutoff=0.6)
    if own:
        return f"unknown key (did you mean {own[0]!r}?)"
    if section not in sections:
        return "unknown key"
    for other, keys in sections.items():  # (closer: bogus_key is no [server] tls_key)
        close = difflib.get_close_matches(name, sorted(keys), n=1, cutoff=0.8)
        if other != section and close:
            where = "[server]" if other == "server" else "[[zone]]"
            return f"unknown key (did you mean {close[0]!r} under {where}?)"
    return "unknown key"


def transport(
    table: dict[str, Any], where: str, base: Path, problems: Problems
) -> TlsSettings | None:
    """``transport = "tls"`` with ``tls_ca``, ``tls_hostname``, ``tls_pin`` (XoT, RFC 9103)."""
    transport = table.get("transport", "tcp")
    if transport not in ("tcp", "tls"):
        problems.add(f"{where}.transport", f'expected "tcp" or "tls", not {transport!r}')
        return None
    values: dict[str, Any] = {}
    for name in ("tls_ca", "tls_hostname", "tls_pin"):
        value = table.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            problems.add(f"{where}.{name}", "expected a string")
        elif transport != "tls":
            problems.add(f"{where}.{name}", 'needs transport = "tls"')
        else:
            values[name] = value
    if transport != "tls":
        return None
    pin = None
    if "tls_pin" in values:
        try:
            pin = parse_pin(values["tls_pin"])
        except SecdnsError as err:
            problems.add(f"{where}.tls_pin", err.message.replace("--tls-pin ", ""))
    ca_file = base / values["tls_ca"] if "tls_ca" in values else None
    if ca_file is not None and not ca_file.is_file():
        problems.add(f"{where}.tls_ca", f"no such file {ca_file}")
    return TlsSettings(ca_file=ca_file, hostname=values.get("tls_hostname"), pin=pin)


def take_notify_keys(
    doc: dict[str, Any], keys_doc: dict[str, Any], problems: Problems
) -> tuple[dict[str, Any], tuple[tuple[Endpoint, str], ...]]:
    """``doc`` with each ``notify`` entry written ``"HOST[:PORT] key:NAME"`` (every
    ``notify`` list: ``[[zone]]``, ``[groups.NAME]``, ``[[catalog]]``, ``[server]
    catalog_notify``) cut to its target, and the targets' keys: ``(target, NAME)``
    pairs, the NOTIFYs to that target signed with ``[keys.NAME]`` (NSD's usual
    ``allow-notify: ADDR KEY`` refuses unsigned ones; BIND's ``server { keys }``: one
    key a target, parsed once here).  A copy where anything is cut; the caller's doc is
    not changed.  A target that does not parse is left for the ``notify`` list's own
    reading to report."""
    found: dict[Endpoint, str] = {}

    def cut(entries: Any, where: str) -> Any:
        if not isinstance(entries, list) or not any(
            isinstance(e, str) and " key:" in e for e in entries
        ):
            return entries
        out = []
        for entry in entries:
            if not isinstance(entry, str) or " key:" not in entry:
                out.append(entry)
                continue
            target, _, name = entry.partition(" key:")
            target, name = target.strip(), name.strip()
            out.append(target)
            try:
                endpoint = parse_endpoint(target)
            except SecdnsError:
                continue
            if name not in keys_doc:
                problems.add(where, f"unknown key {name!r} (define it under [keys.{name}])")
            elif found.get(endpoint, name) != name:
                problems.add(where, f"{target} is given two keys ({found[endpoint]}, {name})")
            else:
                found[endpoint] = name
        return out

    copy = dict(doc)
    for section in ("zone", "catalog"):  # ([[zone]] and [[catalog]]: arrays of tables)
        if isinstance(doc.get(section), list):
            copy[section] = [
                {**t, "notify": cut(t["notify"], f"{section}[{i}].notify")}
                if isinstance(t, dict) and "notify" in t
                else t
                for i, t in enumerate(doc[section])
            ]
    if isinstance(doc.get("groups"), dict):
        copy["groups"] = {
            n: {**g, "notify": cut(g["notify"], f"groups.{n}.notify")}
            if isinstance(g, dict) and "notify" in g
            else g
            for n, g in doc["groups"].items()
        }
    server = doc.get("server")
    if isinstance(server, dict) and "catalog_notify" in server:
        copy["server"] = {
            **server,
            "catalog_notify": cut(server["catalog_notify"], "server.catalog_notify"),
        }
    return copy, tuple(found.items())
