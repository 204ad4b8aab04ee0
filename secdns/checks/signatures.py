"""RRSIG checks of a signed zone: validity windows and signatures, on every core.

Each signed RRset is checked on its own: every RRSIG over it against ``now``
(``dnssec.rrsig-validity``), and against the apex DNSKEY set at a time inside
its window (``dnssec.signature``), so that an expired but otherwise good
signature is reported once, as expired.  The signed data is RFC 4034 section
3.1.8.1's: the RRSIG rdata up to the signer, then each record of the RRset in
canonical form and order (section 6), with the owner replaced by a wildcard when
the RRSIG's label count says it was synthesised (RFC 4035 section 5.3.2).

This mirrors ``dns.dnssec.validate_rrsig`` decision for decision (candidate keys
by algorithm and key tag, the ZONE flag, protocol 3, revoked keys only for the
DNSKEY RRset, dnspython's default algorithm policy, its error messages), with
two differences that make it fast: the canonical octets are written straight
from the records' text (:mod:`secdns.checks.canonical`), and each DNSKEY's public
key object is built once, not once per signature.

Signatures are independent of each other, so a large zone's are checked by a
pool of forked processes, one per core, each taking chunks of RRsets.  The
records are not sent to the workers: they inherit them when forked (the job is
a module global set just before the pool starts), and receive only the bounds
of their chunk; they send back findings.
"""

from __future__ import annotations

import dataclasses
import datetime
import multiprocessing
import os
import struct
from collections.abc import Sequence

import dns.dnssec
import dns.dnssecalgs
import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
from cryptography.exceptions import InvalidSignature

from secdns import checks, wire
from secdns.checks import Finding
from secdns.checks.canonical import CanonicalWire, Rrsig, owner_wire
from secdns.checks.zoneindex import Key, ZoneIndex

DNSKEY = dns.rdatatype.DNSKEY
DAY = 86400
_ZONE_FLAG = 0x0100  # RFC 4034 2.1.1
_REVOKE_FLAG = 0x0080  # RFC 5011 2.1
_RR_FIXED = struct.Struct("!HHI")
_U16 = struct.Struct("!H")

PARALLEL_MIN_SIGNATURES = 4096
"""Fewer signatures than this are checked in-process: a pool would cost more than it saves."""
CHUNK_SIGNATURES = 2048
"""About this many signatures to a chunk (a chunk is whole RRsets)."""


@dataclasses.dataclass(slots=True)
class ZoneKey:
    """One apex DNSKEY, ready to verify with: its public key object is built once."""

    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY
    usable: bool  # ZONE flag set, protocol 3
    revoked: bool
    allowed: bool  # by dnspython's default policy (RFC 8624 / 9904)
    public: dns.dnssecalgs.base.GenericPublicKey | None  # None: invalid or unsupported
    unsupported: dns.dnssec.UnsupportedAlgorithm | None

    @classmethod
    def make(cls, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> ZoneKey:
        public = None
        unsupported = None
        try:
            algorithm_cls = dns.dnssecalgs.get_algorithm_cls_from_dnskey(dnskey)
            public = algorithm_cls.public_cls.from_dnskey(dnskey)
        except dns.dnssec.UnsupportedAlgorithm as err:
            unsupported = err
        except (ValueError, dns.exception.DNSException):
            pass  # dnspython: "invalid public key", and the next candidate is tried
        return cls(
            dnskey,
            usable=bool(dnskey.flags & _ZONE_FLAG) and dnskey.protocol == 3,
            revoked=bool(dnskey.flags & _REVOKE_FLAG),
            allowed=dns.dnssec.default_policy.ok_to_validate(dnskey),
            public=public,
            unsupported=unsupported,
        )


@dataclasses.dataclass(slots=True)
class SignatureJob:
    """Everything the RRSIG checks of one zone read; workers inherit it when forked."""

    index: ZoneIndex
    cuts: set[Key]
    rrsets: dict[tuple[Key, int], list[wire.Record]]
    signed: list[tuple[tuple[Key, int], list[wire.Record]]]  # the RRSIG records of each RRset
    keys: dict[tuple[int, int], list[ZoneKey]] | None  # by (algorithm, key tag); None: no DNSKEY
    algorithms: list[int]  # of the apex DNSKEY set
    now: float
    warn_seconds: float
    validity: bool
    signatures: bool

    def authoritative(self, key: Key) -> bool:
        """Is ``key`` authoritative data of this zone (not at or below a cut; cuts count)?"""
        for end in range(len(self.index.origin_key) + 1, len(key)):
            if key[:end] in self.cuts:
                return False
        return True


def check_rrsigs(job: SignatureJob, workers: int | None = None) -> list[Finding]:
    """The validity and signature findings of every signed RRset of ``job``."""
    chunks = _chunks(job.signed)
    if workers is None:
        workers = available_cores()
    total = sum(len(sigs) for _, sigs in job.signed)
    if workers < 2 or len(chunks) < 2 or total < PARALLEL_MIN_SIGNATURES:
        findings, windows = _check_chunk(job, 0, len(job.signed))
        return findings + _window_findings(windows, job)
    global _JOB
    _JOB = job
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(chunks))) as pool:
            findings = []
            windows = []
            for found, outside in pool.imap_unordered(_check_inherited, chunks):
                findings += found
                windows += outside
            return findings + _window_findings(windows, job)
    finally:
        _JOB = None


EXPIRING_LINES = 10
"""A key's signatures that expire within ``--sig-warn-days`` are a warning each up to this
many; more are one warning, for the first to expire, with how many more there are (a
stranger's zone signed for 2 h made 10,040 lines, one a signature).  So too those
already expired, or not valid yet, as errors (another's zone signed in 2020 made 47)."""

Window = tuple[str, int, int, str, str]
"""A signature outside its validity window, or about to leave it: the kind (``expired``,
``early``: not valid yet, ``expiring``), its expiration (inception when early), key tag,
owner, "RRSIG TYPE"."""


def _window_findings(windows: list[Window], job: SignatureJob) -> list[Finding]:
    """The errors for signatures expired or not valid yet and the warnings for those
    about to expire, by kind and key (:data:`EXPIRING_LINES`)."""
    by_key: dict[tuple[str, int], list[Window]] = {}
    for item in windows:
        by_key.setdefault((item[0], item[2]), []).append(item)
    findings = []
    for (kind, tag), items in sorted(by_key.items()):
        items.sort()
        shown = items if len(items) <= EXPIRING_LINES else items[:1]
        for _kind, moment, _tag, owner, type_text in shown:
            if kind == "expiring":
                days = (moment - job.now) / DAY
                said = f"signature (key tag {tag}) expires in {days:.1f} days, {_when(moment)}"
            else:
                when = "expired" if kind == "expired" else "not valid before"
                said = f"signature (key tag {tag}) {when} {_when(moment)}"
            if len(shown) < len(items) and kind == "expiring":
                window = job.warn_seconds / DAY
                said += (
                    f"; {len(items) - 1} more signatures by this key expire within "
                    f"{window:g} days (--sig-warn-days), the last {_when(items[-1][1])}"
                )
            elif len(shown) < len(items):
                what = "expired" if kind == "expired" else "not valid yet"
                said += f"; {len(items) - 1} more signatures by this key {what} too"
            check = checks.RRSIG_VALIDITY
            finding = check.warning if kind == "expiring" else check.error
            findings.append(finding(owner, type_text, said))
    return findings


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_JOB: SignatureJob | None = None


def _check_inherited(bounds: tuple[int, int]) -> tuple[list[Finding], list[Window]]:
    """A worker's task: the chunk ``bounds`` of the job it inherited when forked."""
    assert _JOB is not None, "the worker was not forked from check_rrsigs"
    return _check_chunk(_JOB, *bounds)


def _chunks(signed: Sequence[tuple[object, list[wire.Record]]]) -> list[tuple[int, int]]:
    bounds = []
    start = count = 0
    for position, (_, sigs) in enumerate(signed):
        count += len(sigs)
        if count >= CHUNK_SIGNATURES:
            bounds.append((start, position + 1))
            start, count = position + 1, 0
    if start < len(signed):
        bounds.append((start, len(signed)))
    return bounds


def _check_chunk(job: SignatureJob, start: int, end: int) -> tuple[list[Finding], list[Window]]:
    """The findings of RRsets ``start`` to ``end``, and the signatures outside their
    validity window or about to leave it."""
    checker = _Checker(job)
    for (key, covered), records in job.signed[start:end]:
        checker.check_rrset(key, covered, records)
    return checker.findings, checker.windows


class _Checker:
    """The checks of one chunk of RRsets (in a worker, or in-process for a small zone)."""

    def __init__(self, job: SignatureJob) -> None:
        self.job = job
        self.index = job.index
        self.origin_wire = job.index.origin.to_digestable()
        self.canonical = CanonicalWire(job.index.origin)
        self.findings: list[Finding] = []
        self.windows: list[Window] = []  # said by kind and key: _window_findings

    def check_rrset(self, key: Key, covered: int, records: list[wire.Record]) -> None:
        job = self.job
        sigs = [(rec, rrsig) for rec in records if (rrsig := self.canonical.rrsig(rec))]
        if job.validity:
            for rec, rrsig in sigs:
                self.check_window(rec, rrsig)
        if not job.signatures or job.keys is None or not sigs:
            return
        owner = self.index.absolute(sigs[0][0].owner)
        type_text = wire.type_text(covered)
        rrset = job.rrsets.get((key, covered))
        if not rrset:
            self.findings.append(
                checks.SIGNATURE.error(
                    owner,
                    type_text,
                    f"RRSIG covers {type_text} but the name has no {type_text} records",
                )
            )
            return
        rdatas = sorted(
            {rdata for rec in rrset if (rdata := self.canonical.rdata(rec)) is not None}
        )
        rdclass = rrset[0].rdclass
        for _, rrsig in sigs:
            self.validate(owner, type_text, key, rdclass, rdatas, rrsig)
        signed_with = {rrsig.algorithm for _, rrsig in sigs}
        missing = [a for a in job.algorithms if a not in signed_with]
        if missing and job.authoritative(key):
            names = ", ".join(dns.dnssec.algorithm_to_text(a) for a in missing)
            self.findings.append(
                checks.SIGNATURE.error(
                    owner,
                    type_text,
                    f"not signed with every algorithm of the DNSKEY set (missing {names})",
                    "RFC 4035 2.2",
                )
            )

    def check_window(self, rec: wire.Record, rrsig: Rrsig) -> None:
        owner = self.index.absolute(rec.owner)
        type_text = f"RRSIG {wire.type_text(rrsig.covered)}"
        tag, now = rrsig.key_tag, self.job.now
        if rrsig.expiration < now:
            self.windows.append(("expired", rrsig.expiration, tag, owner, type_text))
        elif rrsig.inception > now:
            self.windows.append(("early", rrsig.inception, tag, owner, type_text))
        elif rrsig.expiration - now < self.job.warn_seconds:
            self.windows.append(("expiring", rrsig.expiration, tag, owner, type_text))

    def validate(
        self,
        owner: str,
        type_text: str,
        key: Key,
        rdclass: int,
        rdatas: list[bytes],
        rrsig: Rrsig,
    ) -> None:
        """One signature over one RRset, as ``dns.dnssec.validate_rrsig`` decides it."""
        algorithm = dns.dnssec.algorithm_to_text(rrsig.algorithm)
        what = f"signature by key tag {rrsig.key_tag} ({algorithm})"
        if rrsig.signer != self.origin_wire:
            signer = dns.name.from_wire(rrsig.signer, 0)[0]
            self.findings.append(
                checks.SIGNATURE.error(
                    owner, type_text, f"{what} names the signer {signer}, not the zone"
                )
            )
            return
        assert self.job.keys is not None
        candidates = self.job.keys.get((rrsig.algorithm, rrsig.key_tag))
        if candidates is None:
            self.findings.append(
                checks.SIGNATURE.error(
                    owner, type_text, f"{what}: no such key in the apex DNSKEY set"
                )
            )
            return
        usable = [k for k in candidates if k.usable and (not k.revoked or rrsig.covered == DNSKEY)]
        if not usable:
            return self.failed(owner, type_text, what, "unknown key")
        data = self.signed_data(key, rdclass, rdatas, rrsig)
        if isinstance(data, str):
            return self.failed(owner, type_text, what, data)
        for zone_key in usable:
            if not zone_key.allowed:
                continue
            if zone_key.unsupported is not None:
                self.findings.append(
                    checks.SIGNATURE.warning(
                        owner, type_text, f"{what} cannot be checked here: {zone_key.unsupported}"
                    )
                )
                return
            if zone_key.public is None:
                continue  # an invalid public key
            try:
                zone_key.public.verify(rrsig.signature, data)
                return
            except (InvalidSignature, dns.dnssec.ValidationFailure):
                continue
        self.failed(owner, type_text, what, "verify failure")

    def failed(self, owner: str, type_text: str, what: str, reason: str) -> None:
        if reason == "verify failure":
            message = f"{what} does not validate: the data or the signature was changed"
        else:
            message = f"{what} does not validate: {reason}"
        self.findings.append(checks.SIGNATURE.error(owner, type_text, message))

    def signed_data(self, key: Key, rdclass: int, rdatas: list[bytes], rrsig: Rrsig) -> bytes | str:
        """RFC 4034 3.1.8.1's signed data, or why there is none (dnspython's words)."""
        labels = len(key)
        wild = labels > 0 and key[-1] == b"*"
        if wild and rrsig.labels != labels - 1:
            return "wild owner name has wrong label length"
        if labels < rrsig.labels:
            return "owner name longer than RRSIG labels"
        if rrsig.labels < labels:
            owner = b"\x01*" + owner_wire(key[: rrsig.labels])
        else:
            owner = owner_wire(key)
        fixed = owner + _RR_FIXED.pack(rrsig.covered, rdclass, rrsig.original_ttl)
        parts = [rrsig.header]
        for rdata in rdatas:
            parts += (fixed, _U16.pack(len(rdata)), rdata)
        return b"".join(parts)


def _when(timestamp: int) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")
