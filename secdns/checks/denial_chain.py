"""The NSEC or NSEC3 chain of a signed zone (``dnssec.denial-chain``).

NSEC (RFC 4034 4, RFC 4035 2.3): one record at every authoritative name (delegation
points included), each pointing to the next in canonical order, the last back to
the apex, its type bitmap listing the types present.  NSEC3 (RFC 5155 7.1): one
record per hashed authoritative name and empty non-terminal, with the apex's
NSEC3PARAM parameters, directly below the apex, chained in hash order; opt-out
lets unsigned delegations go without.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import dns.dnssec
import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM

from secdns import checks, wire
from secdns.checks.rdatareader import B32_TO_HEX
from secdns.checks.zoneindex import Key

if TYPE_CHECKING:
    from secdns.checks.dnssec import SignedZone

NS = dns.rdatatype.NS
DS = dns.rdatatype.DS
RRSIG = dns.rdatatype.RRSIG
NSEC = dns.rdatatype.NSEC
NSEC3 = dns.rdatatype.NSEC3
NSEC3PARAM = dns.rdatatype.NSEC3PARAM
NSEC3_OPT_OUT = 0x01


def check_denial(signed: SignedZone) -> None:
    apex_text = signed.index.origin_text
    if signed.rrsets.get((signed.apex, NSEC3PARAM)):
        check_nsec3(signed)
    elif any(rdtype == NSEC for (_key, rdtype) in signed.rrsets):
        check_nsec(signed)
    elif any(rdtype == NSEC3 for (_key, rdtype) in signed.rrsets):
        signed.findings.append(
            checks.DENIAL_CHAIN.error(
                apex_text,
                "NSEC3PARAM",
                "NSEC3 records but no NSEC3PARAM at the apex",
                "RFC 5155 4",
            )
        )
    else:
        signed.findings.append(
            checks.DENIAL_CHAIN.error(apex_text, None, "signed zone without an NSEC or NSEC3 chain")
        )


def chain_names(signed: SignedZone) -> list[Key]:
    """Authoritative names with data (delegation points included), canonical order."""
    found = []
    for key, group in signed.index.owners():
        if not signed.authoritative(key):
            continue
        if all(rec.rdtype in (NSEC3, RRSIG) for rec in group):
            continue  # an NSEC3 owner (or an orphan signature)
        found.append(key)
    found.sort()
    return found


def types_at(signed: SignedZone, key: Key) -> set[int]:
    types = {rec.rdtype for rec in signed.index.group(key)}
    if key in signed.cuts:
        types &= {NS, DS, NSEC, RRSIG}  # glue and occluded data are not the parent's
    return types


def check_nsec(signed: SignedZone) -> None:
    names = chain_names(signed)
    expected = set(names)
    nsec_at: dict[Key, list[wire.Record]] = {}
    for (key, rdtype), records in signed.rrsets.items():
        if rdtype == NSEC:
            nsec_at[key] = records
    for key, records in nsec_at.items():
        if key not in expected:
            signed.findings.append(
                checks.DENIAL_CHAIN.error(
                    signed.owner(records[0]),
                    "NSEC",
                    "NSEC record at a name that is not authoritative data of the zone",
                )
            )
    for position, key in enumerate(names):
        at_name = nsec_at.get(key)
        if not at_name:
            signed.findings.append(
                checks.DENIAL_CHAIN.error(
                    signed.index.key_text(key), "NSEC", "no NSEC record: the chain is broken here"
                )
            )
            continue
        owner = signed.owner(at_name[0])
        if len(at_name) > 1:
            signed.findings.append(
                checks.DENIAL_CHAIN.error(owner, "NSEC", f"{len(at_name)} NSEC records at one name")
            )
        fields = nsec_fields(signed, at_name[0])
        if fields is None:
            continue
        next_key, next_text, listed = fields
        following = names[(position + 1) % len(names)]
        if next_key != following:
            signed.findings.append(
                checks.DENIAL_CHAIN.error(
                    owner,
                    "NSEC",
                    f"next name is {next_text}, expected "
                    f"{signed.index.key_text(following)}: the chain is not closed",
                )
            )
        compare_bitmap(signed, owner, "NSEC", listed, types_at(signed, key))


def nsec_fields(signed: SignedZone, rec: wire.Record) -> tuple[Key, str, set[int]] | None:
    """An NSEC's next name (key and absolute text) and listed types, from its text.

    The text is dnspython's rendering, read here without building an rdata
    object (a signed zone has one NSEC a name); dnspython reads anything else.
    """
    if rec.rdclass == dns.rdataclass.IN:
        following, _, types = rec.rdata.partition(" ")
        try:
            listed = signed.bitmaps.get(types)
            if listed is None:
                listed = {signed.canonical.rdtype(t) for t in types.split(" ") if t}
                signed.bitmaps[types] = listed
            if "\\" not in following:
                return signed.index.name_key(following), signed.index.absolute(following), listed
        except (ValueError, dns.exception.DNSException):
            pass
    nsec = signed.rdata(rec)
    if not isinstance(nsec, dns.rdtypes.ANY.NSEC.NSEC):
        return None
    return _name_key(nsec.next), nsec.next.to_text(), _bitmap_types(nsec.windows)


def compare_bitmap(
    signed: SignedZone, owner: str, rdtype: str, listed: set[int], present: set[int]
) -> None:
    if listed == present:
        return
    extra = sorted(wire.type_text(t) for t in listed - present)
    missing = sorted(wire.type_text(t) for t in present - listed)
    parts = []
    if missing:
        parts.append(f"omits {', '.join(missing)}")
    if extra:
        parts.append(f"lists absent {', '.join(extra)}")
    signed.findings.append(
        checks.DENIAL_CHAIN.error(
            owner, rdtype, f"type bitmap {' and '.join(parts)}", "RFC 4034 4.1.2"
        )
    )


def check_nsec3(signed: SignedZone) -> None:
    apex_text = signed.index.origin_text
    param = signed.rdata(signed.rrsets[(signed.apex, NSEC3PARAM)][0])
    if not isinstance(param, dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM):
        return
    hashed: dict[str, tuple[wire.Record, dns.rdtypes.ANY.NSEC3.NSEC3]] = {}
    opt_out = False
    for (key, rdtype), records in signed.rrsets.items():
        if rdtype != NSEC3:
            continue
        for rec in records:
            nsec3 = signed.rdata(rec)
            if not isinstance(nsec3, dns.rdtypes.ANY.NSEC3.NSEC3):
                continue
            if (nsec3.algorithm, nsec3.iterations, nsec3.salt) != (
                param.algorithm,
                param.iterations,
                param.salt,
            ):
                signed.findings.append(
                    checks.DENIAL_CHAIN.error(
                        signed.owner(rec),
                        "NSEC3",
                        "NSEC3 parameters differ from the NSEC3PARAM at the apex",
                        "RFC 5155 7.2",
                    )
                )
                continue
            opt_out |= bool(nsec3.flags & NSEC3_OPT_OUT)
            if len(key) != len(signed.apex) + 1:
                signed.findings.append(
                    checks.DENIAL_CHAIN.error(
                        signed.owner(rec),
                        "NSEC3",
                        "NSEC3 record not directly below the apex",
                        "RFC 5155 7.1",
                    )
                )
                continue
            hashed[key[-1].decode("ascii", "replace").upper()] = (rec, nsec3)
    expected: dict[str, Key] = {}
    for key in nsec3_names(signed):
        if opt_out and key in signed.cuts and not signed.rrsets.get((key, DS)):
            continue  # an unsigned delegation may be opted out
        name = dns.name.Name([*reversed(key), b""])
        digest = dns.dnssec.nsec3_hash(name, param.salt, param.iterations, param.algorithm)
        expected[digest] = key
    for digest, key in expected.items():
        if digest not in hashed:
            signed.findings.append(
                checks.DENIAL_CHAIN.error(
                    signed.index.key_text(key),
                    "NSEC3",
                    f"no NSEC3 record for this name (hash {digest}): the chain is broken here",
                    "RFC 5155 7.1",
                )
            )
    for digest, (rec, _nsec3) in hashed.items():
        if digest not in expected and not opt_out:
            signed.findings.append(
                checks.DENIAL_CHAIN.error(
                    signed.owner(rec),
                    "NSEC3",
                    "NSEC3 record for a name that is not in the zone",
                    "RFC 5155 7.1",
                )
            )
    order = sorted(hashed)
    for position, digest in enumerate(order):
        rec, nsec3 = hashed[digest]
        following = order[(position + 1) % len(order)]
        next_hash = base64.b32encode(nsec3.next).decode().translate(B32_TO_HEX)
        if next_hash.rstrip("=") != following:
            signed.findings.append(
                checks.DENIAL_CHAIN.error(
                    signed.owner(rec),
                    "NSEC3",
                    f"next hashed owner is {next_hash}, expected "
                    f"{following}: the chain is not closed",
                    "RFC 5155 7.1",
                )
            )
        hashed_from = expected.get(digest)
        if hashed_from is not None:
            present = types_at(signed, hashed_from) - {NSEC}
            compare_bitmap(
                signed, signed.owner(rec), "NSEC3", _bitmap_types(nsec3.windows), present
            )
    if not hashed:
        signed.findings.append(
            checks.DENIAL_CHAIN.error(
                apex_text,
                "NSEC3",
                "NSEC3PARAM at the apex but no NSEC3 records",
                "RFC 5155 7.1",
            )
        )


def nsec3_names(signed: SignedZone) -> list[Key]:
    """Authoritative names and the empty non-terminals between them and the apex."""
    names = set(chain_names(signed))
    depth = len(signed.apex)
    for key in list(names):
        for end in range(depth + 1, len(key)):
            names.add(key[:end])
    return sorted(names)


def _name_key(name: dns.name.Name) -> Key:
    return tuple(label.lower() for label in reversed(name.labels[:-1]))


def _bitmap_types(windows: tuple[tuple[int, bytes], ...]) -> set[int]:
    types = set()
    for window, bitmap in windows:
        for index, octet in enumerate(bitmap):
            for bit in range(8):
                if octet & (0x80 >> bit):
                    types.add(window * 256 + index * 8 + bit)
    return types
