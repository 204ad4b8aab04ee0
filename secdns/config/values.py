"""The configuration's values: frozen dataclasses and their defaults.

What :func:`secdns.config.parse_config` builds and every command reads; no parsing
here beyond :func:`parse_zone_name`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import dns.exception
import dns.name

from secdns.endpoints import Endpoint, parse_endpoint
from secdns.errors import ConfigError
from secdns.keys import TsigKey
from secdns.unreachable import DEFAULT_HOLD
from secdns.xot import TlsSettings

DEFAULT_LISTEN = ("127.0.0.1:5353",)
DEFAULT_CONCURRENCY = 8
DEFAULT_NOTIFY_LIMIT = 32
"""NOTIFYs in flight at once to one target (secdns.notifysend.NotifySender)."""
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
    notify_key_required: bool = False  # a NOTIFY must be signed (the zone's key, a key:NAME)
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
    tcp_clients_per_source: int = 128
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
    # serve's store writes: "fsync" (files and directory fsynced before a write counts as
    # done) or "none" (renamed into place unsynced, as Knot's zonefile-sync; a crash of the
    # system may lose or damage the last writes, which the next start detects and
    # transfers again)
    store_sync: str = "fsync"
    # where serve builds the answers of a zone loaded or fully transferred before they are
    # asked (secdns.server.readyfill): "fork" (zones of 20,000 names or more in a forked
    # child at nice 10: off the answering core, but its copied pages cost up to the zone's
    # size again while it runs), "thread" (in the server's process, a share of the CPU
    # while queries arrive) or "off" (answers made on their first ask only)
    ready_answers: str = "fork"
    # zones of fewer than 1,000 names get their ready answers too, once serve has loaded
    # its zones (~1.2 ms of CPU and ~26 KiB of memory a 20-record zone: first asks across
    # 10,000 such zones ~5x faster); false: they are learnt on their first ask
    ready_small_zones: bool = True
    # a transfer's TCP connection kept (2 s, at most 8 a primary) for the next transfer
    # from the same primary (serve, pull -c, watch -c: secdns.tcpstream.IdleConnections)
    keep_connections: bool = True
    # NOTIFYs in flight at once to one target (secdns.notifysend.NotifySender)
    notify_limit: int = DEFAULT_NOTIFY_LIMIT
    # a primary address whose tries time out twice in a row is not tried again for 30 s,
    # doubling up to this many seconds, unless it NOTIFYs (secdns.unreachable); 0: off
    unreachable_hold: float = DEFAULT_HOLD


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogConfig:
    """A catalog zone (RFC 9432) to follow: its members come from the same primaries."""

    name: dns.name.Name
    primaries: tuple[Endpoint, ...]
    key: str | None = None
    tls: TlsSettings | None = None
    max_members: int = DEFAULT_MAX_MEMBERS
    # serve: who may transfer the catalog and its members from us, whom to NOTIFY (a
    # member's [groups.NAME] settings, when it has some, win)
    allow_transfer: tuple[str, ...] = ()
    notify: tuple[Endpoint, ...] = ()

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
    # NOTIFY targets written "HOST[:PORT] key:NAME": (the target, the [keys.NAME])
    notify_keys: tuple[tuple[Endpoint, str], ...] = ()

    def notify_key(self, target: Endpoint) -> TsigKey | None:
        """The key a NOTIFY to ``target`` is signed with, if its entry names one."""
        for endpoint, name in self.notify_keys:
            if endpoint == target and name in self.keys:
                return self.keys[name]
        return None

    def zone(self, name: str | dns.name.Name) -> ZoneConfig | None:
        wanted = name if isinstance(name, dns.name.Name) else parse_zone_name(name)
        for zone in self.zones:
            if zone.name == wanted:
                return zone
        return None

    def key_for(self, zone: ZoneConfig | CatalogConfig | GroupConfig) -> TsigKey | None:
        return self.keys[zone.key] if zone.key else None


_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")
"""A name of plain LDH (and ``_``) labels: dns.name.from_text's reading of it is its
labels as they are, so it is built directly (~4x cheaper: 10,000 [[zone]] tables)."""


def parse_zone_name(text: str) -> dns.name.Name:
    """A zone name as typed by a user: relative names are taken as absolute, and the
    name is in lower case (``pull Z01.TEST.`` wrote ``$ORIGIN Z01.TEST.``: a file whose
    text hung on how the name was typed; Knot lower-cases its zone names too)."""
    if len(text) < 254 and _PLAIN_NAME.fullmatch(text) is not None:
        labels = text.rstrip(".").lower().encode("ascii").split(b".")
        return dns.name.Name([*labels, b""])  # (Name checks the lengths again)
    try:
        return dns.name.from_text(text).canonicalize()
    except dns.exception.DNSException as err:
        raise ConfigError(f"bad zone name {text!r}: {err}") from err
