"""The TOML configuration shared by ``pull``, ``watch`` and ``serve``.

Read with :mod:`tomllib` into frozen dataclasses.  Every problem in a file is
reported at once, each naming the file and the key; nothing here touches the
network.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import tomli_w

from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import ConfigError, LocalIOError, SecdnsError
from secdns.keys import TsigKey, make_key, warn_if_exposed
from secdns.xot import TlsSettings, parse_pin

DEFAULT_LISTEN = ("127.0.0.1:5353",)
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 10.0
DEFAULT_LIFETIME = 3600.0
# Defaults that keep one transfer (in flight, then sorted and written) near 1 GiB of
# memory whatever a hostile primary sends: ~470 bytes a record measured for a
# 1M-record pull, and max_bytes bounds the wire size and the text size alike.
# Larger zones need these raised (pull --max-records/--max-bytes, [server]).
DEFAULT_MAX_RECORDS = 2_000_000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 100_000  # members of one catalog zone


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one transfer may bring, so a hostile primary cannot exhaust us."""

    max_records: int = DEFAULT_MAX_RECORDS
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclasses.dataclass(frozen=True, slots=True)
class ZoneConfig:
    name: dns.name.Name
    primaries: tuple[Endpoint, ...] = ()
    key: str | None = None
    file: Path | None = None
    allow_transfer: tuple[str, ...] = ()
    notify: tuple[Endpoint, ...] = ()
    allow_notify: tuple[str, ...] = ()
    request_ixfr: bool = True  # False: AXFR only, as BIND's request-ixfr no
    tls: TlsSettings | None = None  # transport = "tls": XoT from the primaries
    transfer_transport: str = "any"  # "tls": AXFR/IXFR out only over serve's tls_listen

    @property
    def text(self) -> str:
        return self.name.to_text()


@dataclasses.dataclass(frozen=True, slots=True)
class GroupConfig:
    """``[groups.NAME]``: settings for catalog members with that ``group`` property."""

    name: str
    primaries: tuple[Endpoint, ...] = ()
    key: str | None = None
    allow_transfer: tuple[str, ...] = ()
    notify: tuple[Endpoint, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    directory: Path | None = None
    listen: tuple[Endpoint, ...] = tuple(parse_endpoint(e) for e in DEFAULT_LISTEN)
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    lifetime: float = DEFAULT_LIFETIME
    limits: Limits = Limits()
    # serve's TCP limits (secdns.server.tcp) and CH TXT identity (helper "answer")
    tcp_clients: int = 512
    tcp_clients_per_source: int = 32
    tcp_idle_timeout: float = 10.0
    identity: str | None = None
    version: str | None = None
    control: Path | None = None  # the control socket; None: secdns.ctl in the directory
    metrics_listen: Endpoint | None = None  # HTTP /metrics, /healthz, /readyz; None: off
    # the catalog serve publishes of every zone it serves (RFC 9432, helper "catserve")
    catalog: dns.name.Name | None = None
    catalog_allow_transfer: tuple[str, ...] = ()
    catalog_notify: tuple[Endpoint, ...] = ()
    # XoT out (RFC 9103) and DNS over TLS (RFC 7858): serve's TLS listeners
    tls_listen: tuple[Endpoint, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_handshake_timeout: float = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogConfig:
    """A catalog zone (RFC 9432) to follow: its members come from the same primaries."""

    name: dns.name.Name
    primaries: tuple[Endpoint, ...]
    key: str | None = None
    tls: TlsSettings | None = None
    max_members: int = DEFAULT_MAX_MEMBERS

    @property
    def text(self) -> str:
        return self.name.to_text()


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    path: Path | None
    server: ServerConfig
    keys: dict[str, TsigKey]
    zones: tuple[ZoneConfig, ...]
    catalogs: tuple[CatalogConfig, ...] = ()
    groups: dict[str, GroupConfig] = dataclasses.field(default_factory=dict)

    def zone(self, name: str | dns.name.Name) -> ZoneConfig | None:
        wanted = name if isinstance(name, dns.name.Name) else parse_zone_name(name)
        for zone in self.zones:
            if zone.name == wanted:
                return zone
        return None

    def key_for(self, zone: ZoneConfig | CatalogConfig | GroupConfig) -> TsigKey | None:
        return self.keys[zone.key] if zone.key else None


def parse_zone_name(text: str) -> dns.name.Name:
    """A zone name as typed by a user: relative names are taken as absolute."""
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as err:
        raise ConfigError(f"bad zone name {text!r}: {err}") from err


class _Problems:
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


def _str_list(value: Any, key: str, problems: _Problems) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(key, "expected a list of strings")
        return []
    return list(value)


def _endpoints(value: Any, key: str, problems: _Problems, port: int = 53) -> tuple[Endpoint, ...]:
    result = []
    for item in _str_list(value, key, problems):
        try:
            result.append(parse_endpoint(item, port))
        except SecdnsError as err:
            problems.add(key, err.message)
    return tuple(result)


def _acl(value: Any, key: str, keys: dict[str, Any], problems: _Problems) -> tuple[str, ...]:
    result = []
    for item in _str_list(value, key, problems):
        if item.startswith("key:"):
            if item[4:] not in keys:
                problems.add(key, f"unknown key {item[4:]!r} (define it under [keys.{item[4:]}])")
        else:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                problems.add(key, f"{item!r} is neither a CIDR/address nor key:NAME")
        result.append(item)
    return tuple(result)


def _number(
    table: dict[str, Any],
    name: str,
    default: float,
    key: str,
    problems: _Problems,
    *,
    integer: bool = False,
) -> Any:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        problems.add(f"{key}.{name}", "expected a positive number")
        return default
    if integer and not isinstance(value, int):
        problems.add(f"{key}.{name}", "expected a positive integer")
        return default
    return value


_SERVER_KEYS = {
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
}
_TLS_KEYS = {"transport", "tls_ca", "tls_hostname", "tls_pin"}
_ZONE_KEYS = {
    "name",
    "primaries",
    "key",
    "file",
    "allow_transfer",
    "notify",
    "allow_notify",
    "request_ixfr",
    "transfer_transport",
} | _TLS_KEYS


def _unknown_key(name: str, section: str) -> str:
    """ "unknown key", with the closest known key of this section (or of the other:
    ``listen_on`` in a [[zone]] is most likely [server] listen) when there is one."""
    import difflib

    sections = {"server": _SERVER_KEYS, "zone": _ZONE_KEYS}
    own = difflib.get_close_matches(name, sorted(sections[section]), n=1, cutoff=0.6)
    if own:
        return f"unknown key (did you mean {own[0]!r}?)"
    for other, keys in sections.items():
        close = difflib.get_close_matches(name, sorted(keys), n=1, cutoff=0.6)
        if other != section and close:
            where = "[server]" if other == "server" else "[[zone]]"
            return f"unknown key (did you mean {close[0]!r} under {where}?)"
    return "unknown key"


def _serve_keys(server_doc: dict[str, Any], problems: _Problems) -> dict[str, Any]:
    """[server] keys of serve's TCP limits and CH TXT answers (see ServerConfig)."""
    out: dict[str, Any] = {}
    for name, default in (("tcp_clients", 512), ("tcp_clients_per_source", 32)):
        out[name] = _number(server_doc, name, default, "server", problems, integer=True)
    out["tcp_idle_timeout"] = float(
        _number(server_doc, "tcp_idle_timeout", 10.0, "server", problems)
    )
    for name in ("identity", "version"):
        value = server_doc.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            problems.add(f"server.{name}", "expected a string of at most 255 characters")
            value = None
        out[name] = value
    return out


def _transport(
    table: dict[str, Any], where: str, base: Path, problems: _Problems
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


def parse_config(doc: dict[str, Any], path: str = "<config>", base: Path | None = None) -> Config:
    """Build a :class:`Config` from a parsed TOML document; report every problem at once."""
    problems = _Problems(path)
    base = base or Path(".")
    for top in doc:
        if top not in ("server", "keys", "zone", "catalog", "groups"):
            problems.add(
                top,
                "unknown section (expected [server], [keys.NAME], [[zone]], [[catalog]], "
                "[groups.NAME])",
            )

    server_doc = doc.get("server", {})
    if not isinstance(server_doc, dict):
        problems.add("server", "expected a table [server]")
        server_doc = {}
    for name in server_doc:
        if name not in _SERVER_KEYS:
            problems.add(f"server.{name}", _unknown_key(name, "server"))
    directory = server_doc.get("directory")
    if directory is not None and not isinstance(directory, str):
        problems.add("server.directory", "expected a path string")
        directory = None
    listen = _endpoints(server_doc.get("listen", list(DEFAULT_LISTEN)), "server.listen", problems)
    control = server_doc.get("control")
    if control is not None and (not isinstance(control, str) or not control):
        problems.add("server.control", "expected a path string (the control socket)")
        control = None
    metrics_listen = None
    if "metrics_listen" in server_doc:
        found = _endpoints(server_doc["metrics_listen"], "server.metrics_listen", problems)
        if len(found) == 1 and found[0].is_address:
            metrics_listen = found[0]
        elif found:
            problems.add("server.metrics_listen", "expected one ADDR:PORT with an IP address")
    server = ServerConfig(
        directory=(base / directory) if directory else None,
        listen=listen,
        concurrency=_number(
            server_doc, "concurrency", DEFAULT_CONCURRENCY, "server", problems, integer=True
        ),
        timeout=float(_number(server_doc, "timeout", DEFAULT_TIMEOUT, "server", problems)),
        lifetime=float(_number(server_doc, "lifetime", DEFAULT_LIFETIME, "server", problems)),
        limits=Limits(
            max_records=_number(
                server_doc, "max_records", DEFAULT_MAX_RECORDS, "server", problems, integer=True
            ),
            max_bytes=_number(
                server_doc, "max_bytes", DEFAULT_MAX_BYTES, "server", problems, integer=True
            ),
        ),
        **_serve_keys(server_doc, problems),
        control=(base / control) if control else None,
        metrics_listen=metrics_listen,
    )

    keys: dict[str, TsigKey] = {}
    keys_doc = doc.get("keys", {})
    if not isinstance(keys_doc, dict):
        problems.add("keys", "expected tables [keys.NAME]")
        keys_doc = {}
    for key_name, key_doc in keys_doc.items():
        where = f"keys.{key_name}"
        if not isinstance(key_doc, dict):
            problems.add(where, "expected a table with algorithm and secret")
            continue
        for name in key_doc:
            if name not in ("algorithm", "secret", "name"):
                problems.add(f"{where}.{name}", "unknown key")
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

    zones: list[ZoneConfig] = []
    zones_doc = doc.get("zone", [])
    if not isinstance(zones_doc, list):
        problems.add("zone", "expected an array of tables [[zone]]")
        zones_doc = []
    seen: set[dns.name.Name] = set()
    for index, zone_doc in enumerate(zones_doc):
        where = f"zone[{index}]"
        if not isinstance(zone_doc, dict):
            problems.add(where, "expected a table")
            continue
        for name in zone_doc:
            if name not in _ZONE_KEYS:
                problems.add(f"{where}.{name}", _unknown_key(name, "zone"))
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
        if zone_name is not None and zone_name in seen:
            problems.add(f"{where}.name", "zone defined twice")
        if zone_name is not None:
            seen.add(zone_name)
        tls = _transport(zone_doc, where, base, problems)
        primaries = _endpoints(
            zone_doc.get("primaries"), f"{where}.primaries", problems, 853 if tls else 53
        )
        file_value = zone_doc.get("file")
        if file_value is not None and not isinstance(file_value, str):
            problems.add(f"{where}.file", "expected a path string")
            file_value = None
        if primaries and file_value:
            problems.add(where, "set either primaries (a secondary zone) or file (a primary zone)")
        if not primaries and not file_value:
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
        if zone_name is None:
            continue
        zones.append(
            ZoneConfig(
                name=zone_name,
                primaries=primaries,
                key=key if isinstance(key, str) else None,
                file=(base / file_value) if file_value else None,
                allow_transfer=_acl(
                    zone_doc.get("allow_transfer"), f"{where}.allow_transfer", keys_doc, problems
                ),
                notify=_endpoints(zone_doc.get("notify"), f"{where}.notify", problems),
                allow_notify=_acl(
                    zone_doc.get("allow_notify"), f"{where}.allow_notify", keys_doc, problems
                ),
                request_ixfr=request_ixfr,
                tls=tls,
                transfer_transport=transfer_transport,
            )
        )
    catalogs = _catalogs(doc.get("catalog", []), keys_doc, {z.name for z in zones}, base, problems)
    groups = _groups(doc.get("groups", {}), keys_doc, problems)
    server = dataclasses.replace(server, **_serve_catalog_tls(server_doc, keys_doc, base, problems))
    if server.catalog is not None and (
        server.catalog in seen or any(c.name == server.catalog for c in catalogs)
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
    )


_GROUP_KEYS = ("primaries", "key", "allow_transfer", "notify")


def _groups(value: Any, keys_doc: dict[str, Any], problems: _Problems) -> dict[str, GroupConfig]:
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
            if item not in _GROUP_KEYS:
                problems.add(f"{where}.{item}", "unknown key")
        key = table.get("key")
        if key is not None and (not isinstance(key, str) or key not in keys_doc):
            problems.add(f"{where}.key", f"unknown key {key!r} (define it under [keys.{key}])")
        result[name] = GroupConfig(
            name=name,
            primaries=_endpoints(table.get("primaries"), f"{where}.primaries", problems),
            key=key if isinstance(key, str) else None,
            allow_transfer=_acl(
                table.get("allow_transfer"), f"{where}.allow_transfer", keys_doc, problems
            ),
            notify=_endpoints(table.get("notify"), f"{where}.notify", problems),
        )
    return result


def _serve_catalog_tls(
    server_doc: dict[str, Any], keys_doc: dict[str, Any], base: Path, problems: _Problems
) -> dict[str, Any]:
    """[server] keys of the published catalog and of the TLS listeners (helper "catserve")."""
    out: dict[str, Any] = {}
    catalog = server_doc.get("catalog")
    if catalog is not None:
        if not isinstance(catalog, str):
            problems.add("server.catalog", "expected a zone name")
        else:
            try:
                out["catalog"] = parse_zone_name(catalog)
            except SecdnsError as err:
                problems.add("server.catalog", err.message)
    out["catalog_allow_transfer"] = _acl(
        server_doc.get("catalog_allow_transfer"),
        "server.catalog_allow_transfer",
        keys_doc,
        problems,
    )
    out["catalog_notify"] = _endpoints(
        server_doc.get("catalog_notify"), "server.catalog_notify", problems
    )
    out["tls_listen"] = _endpoints(server_doc.get("tls_listen"), "server.tls_listen", problems, 853)
    for name in ("tls_cert", "tls_key"):
        value = server_doc.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            problems.add(f"server.{name}", "expected a path string")
            continue
        out[name] = base / value
        if not out[name].is_file():
            problems.add(f"server.{name}", f"no such file {out[name]}")
    if out["tls_listen"] and not ("tls_cert" in out and "tls_key" in out):
        problems.add("server.tls_listen", "needs tls_cert and tls_key (PEM files)")
    out["tls_handshake_timeout"] = float(
        _number(server_doc, "tls_handshake_timeout", 10.0, "server", problems)
    )
    return out


_CATALOG_KEYS = {"name", "primaries", "key", "max_members"} | _TLS_KEYS


def _catalogs(
    value: Any,
    keys_doc: dict[str, Any],
    zones: set[dns.name.Name],
    base: Path,
    problems: _Problems,
) -> tuple[CatalogConfig, ...]:
    """The ``[[catalog]]`` tables: name, primaries, key, transport settings, max_members."""
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
            if name not in _CATALOG_KEYS:
                problems.add(f"{where}.{name}", "unknown key")
        try:
            catalog_name = parse_zone_name(table["name"])
        except SecdnsError as err:
            problems.add(f"{where}.name", err.message)
            continue
        if catalog_name in zones or any(c.name == catalog_name for c in result):
            problems.add(f"{where}.name", "defined twice (as a zone or a catalog)")
        tls = _transport(table, where, base, problems)
        primaries = _endpoints(
            table.get("primaries"), f"{where}.primaries", problems, 853 if tls else 53
        )
        if not primaries:
            problems.add(f"{where}.primaries", "a catalog needs primaries")
        key = table.get("key")
        if key is not None and (not isinstance(key, str) or key not in keys_doc):
            problems.add(f"{where}.key", f"unknown key {key!r} (define it under [keys.{key}])")
        limit = _number(table, "max_members", DEFAULT_MAX_MEMBERS, where, problems, integer=True)
        result.append(
            CatalogConfig(
                catalog_name, primaries, key if isinstance(key, str) else None, tls, limit
            )
        )
    return tuple(result)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; relative paths are relative to its folder."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise LocalIOError(f"cannot read config {path}: {err.strerror}") from err
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    config = parse_config(doc, str(path), base=path.parent)
    if config.keys:
        warn_if_exposed(path)
    return config


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
