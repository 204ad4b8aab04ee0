"""``[server]``: where the store lives, what serve listens on, and the bounds of
every transfer (:class:`~secdns.config.values.ServerConfig`).

Read in two steps, as :func:`secdns.config.parse_config` reports problems in the
file's order of concern: :func:`server_table` first, then, once the keys are
known, :func:`catalog_and_tls` (the published catalog and the TLS listeners).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from secdns.config.fields import SERVER_KEYS, Problems, acl, endpoints, number, unknown_key
from secdns.config.values import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LIFETIME,
    DEFAULT_LISTEN,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_RECORDS,
    DEFAULT_NOTIFY_LIMIT,
    DEFAULT_TIMEOUT,
    Limits,
    ServerConfig,
    parse_zone_name,
)
from secdns.errors import SecdnsError
from secdns.unreachable import DEFAULT_HOLD

STORE_SYNC = ("fsync", "none")
READY_ANSWERS = ("fork", "thread", "off")
"""[server] ready_answers: where serve builds its ready answers (see ServerConfig)."""
"""[server] store_sync: how serve's store writes are made durable (see ServerConfig)."""


def server_table(
    doc: dict[str, Any], base: Path, problems: Problems
) -> tuple[ServerConfig, dict[str, Any]]:
    """The ``[server]`` table (without its catalog and TLS keys) and the raw table."""
    server_doc = doc.get("server", {})
    if not isinstance(server_doc, dict):
        problems.add("server", "expected a table [server]")
        server_doc = {}
    for name in server_doc:
        if name not in SERVER_KEYS:
            problems.add(f"server.{name}", unknown_key(name, "server"))
    directory = server_doc.get("directory")
    if directory is not None and not isinstance(directory, str):
        problems.add("server.directory", "expected a path string")
        directory = None
    listen = endpoints(server_doc.get("listen", list(DEFAULT_LISTEN)), "server.listen", problems)
    control = server_doc.get("control")
    if control is not None and (not isinstance(control, str) or not control):
        problems.add("server.control", "expected a path string (the control socket)")
        control = None
    metrics_listen = None
    if "metrics_listen" in server_doc:
        found = endpoints(server_doc["metrics_listen"], "server.metrics_listen", problems)
        if len(found) == 1 and found[0].is_address:
            metrics_listen = found[0]
        elif found:
            problems.add("server.metrics_listen", "expected one ADDR:PORT with an IP address")
    server = ServerConfig(
        directory=(base / directory) if directory else None,
        listen=listen,
        concurrency=number(
            server_doc, "concurrency", DEFAULT_CONCURRENCY, "server", problems, integer=True
        ),
        timeout=float(number(server_doc, "timeout", DEFAULT_TIMEOUT, "server", problems)),
        lifetime=float(number(server_doc, "lifetime", DEFAULT_LIFETIME, "server", problems)),
        limits=Limits(
            max_records=number(
                server_doc, "max_records", DEFAULT_MAX_RECORDS, "server", problems, integer=True
            ),
            max_bytes=number(
                server_doc, "max_bytes", DEFAULT_MAX_BYTES, "server", problems, integer=True
            ),
        ),
        **_serve_keys(server_doc, problems),
        control=(base / control) if control else None,
        metrics_listen=metrics_listen,
    )
    return server, server_doc


def _serve_keys(server_doc: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """[server] keys of serve's TCP limits, CH TXT answers and store sync (see ServerConfig)."""
    out: dict[str, Any] = {}
    for name, default in (
        ("tcp_clients", 512),
        ("tcp_clients_per_source", 128),
        ("notify_limit", DEFAULT_NOTIFY_LIMIT),
    ):
        out[name] = number(server_doc, name, default, "server", problems, integer=True)
    out["tcp_idle_timeout"] = float(
        number(server_doc, "tcp_idle_timeout", 10.0, "server", problems)
    )
    sync = server_doc.get("store_sync", "fsync")
    if sync not in STORE_SYNC:
        problems.add("server.store_sync", 'expected "fsync" or "none"')
        sync = "fsync"
    out["store_sync"] = sync
    ready = server_doc.get("ready_answers", "fork")
    if ready not in READY_ANSWERS:
        problems.add("server.ready_answers", 'expected "fork", "thread" or "off"')
        ready = "fork"
    out["ready_answers"] = ready
    small = server_doc.get("ready_small_zones", True)
    if not isinstance(small, bool):
        problems.add("server.ready_small_zones", "expected true or false")
        small = True
    out["ready_small_zones"] = small
    keep = server_doc.get("keep_connections", True)
    if not isinstance(keep, bool):
        problems.add("server.keep_connections", "expected true or false")
        keep = True
    out["keep_connections"] = keep
    hold = number(server_doc, "unreachable_hold", DEFAULT_HOLD, "server", problems, zero_off=True)
    out["unreachable_hold"] = float(hold)
    for name in ("identity", "version"):
        value = server_doc.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            problems.add(f"server.{name}", "expected a string of at most 255 characters")
            value = None
        out[name] = value
    return out


def catalog_and_tls(
    server_doc: dict[str, Any], keys_doc: dict[str, Any], base: Path, problems: Problems
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
    out["catalog_allow_transfer"] = acl(
        server_doc.get("catalog_allow_transfer"),
        "server.catalog_allow_transfer",
        keys_doc,
        problems,
    )
    out["catalog_notify"] = endpoints(
        server_doc.get("catalog_notify"), "server.catalog_notify", problems
    )
    out["tls_listen"] = endpoints(server_doc.get("tls_listen"), "server.tls_listen", problems, 853)
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
        number(server_doc, "tls_handshake_timeout", 10.0, "server", problems)
    )
    return out
