"""ZONEMD (RFC 8976): the digest at the apex must match the zone's content.

One digest per scheme and hash algorithm, at the SOA's serial; SIMPLE with SHA-384
or SHA-512 is verified (dnspython computes it over the zone's in-zone records),
other schemes and algorithms are reported as not verifiable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dns.exception
import dns.rdatatype
import dns.rdtypes.ANY.ZONEMD
import dns.zone
import dns.zonetypes

from secdns import checks, wire

if TYPE_CHECKING:
    from secdns.checks.dnssec import SignedZone

SOA = dns.rdatatype.SOA
ZONEMD = dns.rdatatype.ZONEMD
SUPPORTED = {
    (dns.zonetypes.DigestScheme.SIMPLE, dns.zonetypes.DigestHashAlgorithm.SHA384),
    (dns.zonetypes.DigestScheme.SIMPLE, dns.zonetypes.DigestHashAlgorithm.SHA512),
}


def check_zonemd(signed: SignedZone, records: list[wire.Record]) -> None:
    apex = signed.index.group(signed.apex)
    zonemds = [signed.rdata(rec) for rec in apex if rec.rdtype == ZONEMD]
    soa = next((rec for rec in apex if rec.rdtype == SOA), None)
    apex_text = signed.index.origin_text
    if soa is None:
        return  # integrity.soa says why
    serial = wire.soa_fields(soa)[0]
    zone: dns.zone.Zone | None = None
    seen: set[tuple[int, int]] = set()
    for zonemd in zonemds:
        if not isinstance(zonemd, dns.rdtypes.ANY.ZONEMD.ZONEMD):
            continue
        kind = (zonemd.scheme, zonemd.hash_algorithm)
        label = f"scheme {zonemd.scheme}, hash algorithm {zonemd.hash_algorithm}"
        if kind in seen:
            signed.findings.append(
                checks.ZONEMD.error(
                    apex_text, "ZONEMD", f"more than one ZONEMD with {label}", "RFC 8976 2"
                )
            )
            continue
        seen.add(kind)
        if zonemd.serial != serial:
            signed.findings.append(
                checks.ZONEMD.error(
                    apex_text,
                    "ZONEMD",
                    f"ZONEMD serial {zonemd.serial} is not the SOA serial "
                    f"{serial}: the digest is stale",
                )
            )
            continue
        if kind not in SUPPORTED:
            signed.findings.append(
                checks.ZONEMD.warning(
                    apex_text, "ZONEMD", f"ZONEMD with {label} cannot be verified (unsupported)"
                )
            )
            continue
        if zone is None:
            zone = build_zone(signed, records)
            if zone is None:
                return
        try:
            computed = zone.compute_digest(
                dns.zonetypes.DigestHashAlgorithm(zonemd.hash_algorithm),
                dns.zonetypes.DigestScheme(zonemd.scheme),
            )
        except (dns.exception.DNSException, ValueError) as err:
            signed.findings.append(
                checks.ZONEMD.error(apex_text, "ZONEMD", f"cannot compute the digest: {err}")
            )
            continue
        if computed.digest != zonemd.digest:
            algorithm = dns.zonetypes.DigestHashAlgorithm(zonemd.hash_algorithm).name
            signed.findings.append(
                checks.ZONEMD.error(
                    apex_text,
                    "ZONEMD",
                    f"{algorithm} digest does not match the zone's "
                    f"content (computed {computed.digest.hex()[:16]}..., ZONEMD has "
                    f"{zonemd.digest.hex()[:16]}...)",
                )
            )


def build_zone(signed: SignedZone, records: list[wire.Record]) -> dns.zone.Zone | None:
    lines = [wire.record_line(rec) for rec in records if signed.index.in_zone(rec.key)]
    try:
        return dns.zone.from_text(
            "\n".join(lines), origin=signed.origin, relativize=False, check_origin=False
        )
    except (dns.exception.DNSException, ValueError) as err:
        signed.findings.append(
            checks.ZONEMD.error(
                signed.index.origin_text, "ZONEMD", f"cannot compute the digest: {err}"
            )
        )
        return None
