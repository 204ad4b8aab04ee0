"""``secdns verify``'s checks: findings as data, and the catalogue of every check.

A check is a pure function over a zone's records (or, for the consistency family,
over what servers answered) that returns :class:`Finding` values; nothing here
does I/O.  The catalogue (:data:`CHECKS`) lists every check once, so that a
report can say which checks passed, not only which failed, and JUnit output can
carry one test case per check.

    integrity.*    the data of one copy of a zone (RFC 1034/1035/2181...)
    dnssec.*       signatures, the NSEC/NSEC3 chain and ZONEMD, when present
    consistency.*  what several servers say about the zone
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable


class Severity(enum.Enum):
    """How bad a finding is: an error fails the check, a warning only with --strict."""

    ERROR = "error"
    WARNING = "warning"


class Family(enum.Enum):
    INTEGRITY = "integrity"
    DNSSEC = "dnssec"
    CONSISTENCY = "consistency"


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One problem found by one check.

    ``owner`` is an absolute name (``www.example.com.``); ``rdtype`` the type
    mnemonic the finding is about, if any; ``source`` which copy of the zone
    (a file, ``-``, a store directory, a server address) it was found in.
    """

    check: str
    severity: Severity
    owner: str
    rdtype: str | None
    message: str
    rfc: str
    source: str | None = None

    def with_source(self, source: str) -> Finding:
        return dataclasses.replace(self, source=source)

    def sort_key(self) -> tuple[int, str, str, str, str]:
        return (
            CHECK_ORDER.get(self.check, len(CHECK_ORDER)),
            self.source or "",
            self.owner.lower(),
            self.rdtype or "",
            self.message,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "severity": self.severity.value,
            "owner": self.owner,
            "type": self.rdtype,
            "message": self.message,
            "rfc": self.rfc,
            "source": self.source,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """An entry of the catalogue: a stable id, what it checks, and where that is specified."""

    id: str
    title: str
    rfc: str

    @property
    def family(self) -> Family:
        return Family(self.id.split(".", 1)[0])

    def error(
        self, owner: str, rdtype: str | None, message: str, rfc: str | None = None
    ) -> Finding:
        return Finding(self.id, Severity.ERROR, owner, rdtype, message, rfc or self.rfc)

    def warning(
        self, owner: str, rdtype: str | None, message: str, rfc: str | None = None
    ) -> Finding:
        return Finding(self.id, Severity.WARNING, owner, rdtype, message, rfc or self.rfc)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "family": self.family.value, "title": self.title, "rfc": self.rfc}


# --- the catalogue ---------------------------------------------------------------------------

PARSE = Check("integrity.parse", "The zone file parses", "RFC 1035 5.1")
STORE = Check(
    "integrity.store",
    "A store's copy is the file secdns wrote (the SHA-256 in its state)",
    "secdns.toml(5)",
)
SOA = Check("integrity.soa", "Exactly one SOA record, at the apex", "RFC 1035 5.2")
SOA_TIMERS = Check(
    "integrity.soa-timers",
    "SOA timers are sane (retry < refresh < expire, expire long enough)",
    "RFC 1912 2.2",
)
APEX_NS = Check("integrity.apex-ns", "NS records at the apex", "RFC 1034 4.2.1")
CNAME_AND_OTHER_DATA = Check(
    "integrity.cname-and-other-data", "A CNAME is alone at its name, and single", "RFC 2181 10.1"
)
DNAME = Check("integrity.dname", "A DNAME is single and not beside a CNAME", "RFC 6672 2.4")
CNAME_LOOP = Check("integrity.cname-loop", "CNAME chains inside the zone end", "RFC 1034 3.6.2")
TARGET_IS_CNAME = Check(
    "integrity.target-is-cname", "NS, MX and SRV targets are not CNAMEs", "RFC 2181 10.3"
)
TARGET_ADDRESS = Check(
    "integrity.target-address",
    "In-zone NS, MX and SRV targets have address records",
    "RFC 1034 4.2.1",
)
MISSING_GLUE = Check(
    "integrity.missing-glue", "In-zone name servers of delegations have glue", "RFC 9471"
)
OCCLUDED = Check(
    "integrity.occluded", "No data occluded by a delegation or a DNAME", "RFC 1034 4.2.1"
)
OUT_OF_ZONE = Check("integrity.out-of-zone", "No data outside the zone", "RFC 1034 4.2")
TTL_MISMATCH = Check(
    "integrity.ttl-mismatch", "The records of an RRset share one TTL", "RFC 2181 5.2"
)
DS_PLACEMENT = Check("integrity.ds", "DS records only at delegations", "RFC 4035 2.4")
WILDCARD = Check(
    "integrity.wildcard", "Wildcards are terminal and own no NS or DNAME", "RFC 4592 4"
)
HOSTNAME = Check(
    "integrity.hostname",
    "Host names (address owners, NS/MX/SRV targets, SOA MNAME) are valid and not addresses",
    "RFC 1123 2.1",
)
SPF = Check("integrity.spf", "SPF policies are published as TXT", "RFC 7208 3.1")

RRSIG_VALIDITY = Check(
    "dnssec.rrsig-validity",
    "Signatures are inside their validity window, not about to expire",
    "RFC 4034 3.1.5",
)
SIGNATURE = Check(
    "dnssec.signature",
    "Every authoritative RRset is signed, and signatures validate against the apex DNSKEY set",
    "RFC 4035 5.3",
)
DENIAL_CHAIN = Check(
    "dnssec.nsec-chain", "The NSEC or NSEC3 chain is present and closed", "RFC 4035 2.3"
)
ZONEMD = Check("dnssec.zonemd", "The ZONEMD digest verifies", "RFC 8976 4")

SERIAL = Check("consistency.serial", "Every server has the same SOA serial", "RFC 1034 4.3.5")
AUTHORITATIVE = Check(
    "consistency.authoritative",
    "Every server answers authoritatively (no lame delegation)",
    "RFC 9499 7",
)
REACHABLE = Check("consistency.reachable", "Every server answers", "RFC 2182 3")
CONTENT = Check(
    "consistency.content", "Every server transfers the same zone content (--deep)", "RFC 1034 4.3.5"
)

CHECKS: dict[str, Check] = {
    check.id: check
    for check in (
        PARSE,
        STORE,
        SOA,
        SOA_TIMERS,
        APEX_NS,
        CNAME_AND_OTHER_DATA,
        DNAME,
        CNAME_LOOP,
        TARGET_IS_CNAME,
        TARGET_ADDRESS,
        MISSING_GLUE,
        OCCLUDED,
        OUT_OF_ZONE,
        TTL_MISMATCH,
        DS_PLACEMENT,
        WILDCARD,
        HOSTNAME,
        SPF,
        RRSIG_VALIDITY,
        SIGNATURE,
        DENIAL_CHAIN,
        ZONEMD,
        SERIAL,
        AUTHORITATIVE,
        REACHABLE,
        CONTENT,
    )
}
"""Every check, in report order."""

CHECK_ORDER: dict[str, int] = {check_id: index for index, check_id in enumerate(CHECKS)}


class UnknownCheck(ValueError):
    """A --check/--skip argument that names no check and no family."""


def select(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> frozenset[str]:
    """The ids of the checks to run: ``include`` (every check if empty) minus ``exclude``.

    Each argument is a check id (``integrity.soa``) or a family (``dnssec``).
    """

    def expand(spec: str) -> set[str]:
        spec = spec.strip().lower()
        if spec in CHECKS:
            return {spec}
        family = {check_id for check_id in CHECKS if check_id.split(".", 1)[0] == spec}
        if not family:
            raise UnknownCheck(
                f"unknown check {spec!r} (families: integrity, dnssec, "
                "consistency; `secdns verify --list-checks` lists every id)"
            )
        return family

    chosen: set[str] = set()
    for spec in include:
        chosen |= expand(spec)
    if not chosen:
        chosen = set(CHECKS)
    for spec in exclude:
        chosen -= expand(spec)
    return frozenset(chosen)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in a stable order: catalogue order, then source, owner, type, message."""
    return sorted(findings, key=Finding.sort_key)
