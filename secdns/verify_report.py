r"""What ``secdns verify`` found, as values every renderer reads (text, rich, JSON,
JUnit): :class:`VerifyReport` with its :class:`ServerAnswer`\ s and
:class:`CopySummary`\ s, and the :class:`VerifyOptions` a run takes.  No I/O.
"""

from __future__ import annotations

import dataclasses
import enum

import dns.asyncresolver

from secdns import checks, xot
from secdns.checks import CHECKS, Finding, Severity
from secdns.config import Limits
from secdns.endpoints import format_addr
from secdns.errors import ExitCode
from secdns.keys import TsigKey

INTEGRITY_CHECKS = frozenset(c for c in CHECKS if c.startswith("integrity."))
PROBE_CHECKS = frozenset({checks.SERIAL.id, checks.AUTHORITATIVE.id, checks.REACHABLE.id})


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyOptions:
    key: TsigKey | None = None
    timeout: float = 10.0
    lifetime: float = 3600.0
    limits: Limits = Limits()
    sig_warn_days: float = 7.0
    deep: bool = False
    nameservers_auto: bool = False
    checks: frozenset[str] = frozenset(CHECKS)
    concurrency: int = 16
    now: float | None = None  # the time signatures are judged at (default: now)
    resolver: dns.asyncresolver.Resolver | None = None  # for nameservers_auto
    tls: xot.TlsSettings | None = None  # ask @SERVERs over TLS (XoT)
    required: tuple[frozenset[str], ...] = ()
    """What --check named, each a check or a family's checks: one that finds nothing to
    check (all of a family's) is an error, as dnssec-verify fails an unsigned zone."""


class ProbeStatus(enum.Enum):
    OK = "ok"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    LAME = "lame"
    TSIG = "tsig"
    BAD_ANSWER = "bad-answer"


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One address of one server: ``server`` is how it was named (@spec or NS name)."""

    server: str
    address: str
    port: int

    @property
    def label(self) -> str:
        return format_addr(self.address, self.port)


@dataclasses.dataclass(frozen=True, slots=True)
class ServerAnswer:
    """What one address said to the SOA query."""

    server: str
    address: str
    status: ProbeStatus
    serial: int | None = None
    detail: str | None = None
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "address": self.address,
            "status": self.status.value,
            "serial": self.serial,
            "detail": self.detail,
            "elapsed": round(self.elapsed, 4),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CopySummary:
    """One copy of the zone that the data checks ran on."""

    source: str
    kind: str
    serial: int | None
    records: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "serial": self.serial,
            "records": self.records,
        }


class CheckStatus(enum.Enum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"  # selected, but nothing to look at (e.g. DNSSEC of an unsigned zone)


@dataclasses.dataclass(slots=True)
class VerifyReport:
    """Everything ``verify`` found, for every renderer."""

    zone: str
    selected: frozenset[str]
    ran: frozenset[str]
    findings: list[Finding]
    servers: list[ServerAnswer]
    copies: list[CopySummary]
    duration: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors) or (strict and bool(self.warnings))

    @property
    def unparsable(self) -> bool:
        """A zone file did not parse, so its checks could not run: exit 6, as diff."""
        return any(
            f.check == checks.PARSE.id and f.severity is Severity.ERROR for f in self.findings
        )

    def exit_code(self, strict: bool = False) -> int:
        if self.unparsable:
            return int(ExitCode.BAD_DATA)
        return int(ExitCode.DIFFERENT if self.failed(strict) else ExitCode.OK)

    @property
    def sources(self) -> list[str]:
        """Every copy and server address the findings can come from."""
        labels = [c.source for c in self.copies] + [s.address for s in self.servers]
        labels += [f.source for f in self.findings if f.source]
        return list(dict.fromkeys(labels))

    def findings_of(self, check_id: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check_id]

    def status(self, check_id: str, strict: bool = False) -> CheckStatus:
        found = self.findings_of(check_id)
        if any(f.severity is Severity.ERROR for f in found):
            return CheckStatus.FAILED
        if found:
            return CheckStatus.FAILED if strict else CheckStatus.WARNING
        if check_id not in self.ran:
            return CheckStatus.SKIPPED
        return CheckStatus.PASSED

    def checks(self) -> list[checks.Check]:
        """The selected checks, in catalogue order."""
        return [check for check_id, check in CHECKS.items() if check_id in self.selected]

    def to_dict(self, strict: bool = False) -> dict[str, object]:
        return {
            "zone": self.zone,
            "result": "failed" if self.failed(strict) else "passed",
            "strict": strict,
            "exit_code": self.exit_code(strict),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checks": [
                {
                    **check.to_dict(),
                    "status": self.status(check.id, strict).value,
                    "findings": len(self.findings_of(check.id)),
                }
                for check in self.checks()
            ],
            "findings": [f.to_dict() for f in self.findings],
            "servers": [s.to_dict() for s in self.servers],
            "copies": [c.to_dict() for c in self.copies],
            "duration": round(self.duration, 3),
        }
