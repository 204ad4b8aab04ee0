"""Rdata objects from a signed zone's record text, faster than dnspython's parser.

:class:`RdataReader` builds RRSIG, NSEC3 and NSEC rdata straight from the
canonical text (what ``secdns.wire`` and ``secdns.masterfile`` write) and lets
dnspython read anything else.
"""

from __future__ import annotations

import base64
import binascii

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.util

from secdns import wire
from secdns.checks.canonical import CanonicalWire

RRSIG = dns.rdatatype.RRSIG
NSEC = dns.rdatatype.NSEC
NSEC3 = dns.rdatatype.NSEC3

# NSEC3 hashes are base32hex (RFC 4648 7); Python reads and writes base32
HEX_TO_B32 = str.maketrans("0123456789ABCDEFGHIJKLMNOPQRSTUV", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
B32_TO_HEX = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV")


class RdataReader:
    """Rdata objects from record text, as ``dns.rdata.from_text`` makes them.

    dnspython's tokenizer reads a character at a time, which makes the long
    RRSIG and NSEC3 records of a signed zone slow to parse; these, and NSEC, are
    built here straight from the canonical text (``secdns.wire`` and
    ``secdns.masterfile`` both write dnspython's rendering), with caches for the
    names, types and timestamps they repeat.  Anything unexpected falls back to
    dnspython.
    """

    def __init__(self, canonical: CanonicalWire) -> None:
        self.origin = canonical.origin
        self.canonical = canonical  # its caches of types and times serve both
        self.names: dict[str, dns.name.Name] = {}

    def rdata(self, rec: wire.Record) -> dns.rdata.Rdata | None:
        try:
            if rec.rdclass == dns.rdataclass.IN:
                if rec.rdtype == RRSIG:
                    return self.rrsig(rec.rdata)
                if rec.rdtype == NSEC3:
                    return self.nsec3(rec.rdata)
                if rec.rdtype == NSEC:
                    return self.nsec(rec.rdata)
        except (ValueError, KeyError, IndexError, binascii.Error, dns.exception.DNSException):
            pass  # not the canonical rendering after all: let dnspython read it
        try:
            return dns.rdata.from_text(
                dns.rdataclass.RdataClass.make(rec.rdclass),
                dns.rdatatype.RdataType.make(rec.rdtype),
                rec.rdata,
                origin=self.origin,
                relativize=False,
            )
        except (dns.exception.DNSException, ValueError):
            return None  # already reported by whoever parsed the zone

    def name(self, text: str) -> dns.name.Name:
        name = self.names.get(text)
        if name is None:
            name = self.names[text] = dns.name.from_text(text, self.origin)
        return name

    def bitmap(self, fields: list[str]) -> list[tuple[int, bytes]]:
        types = [dns.rdatatype.RdataType.make(self.canonical.rdtype(f)) for f in fields]
        return list(dns.rdtypes.util.Bitmap.from_rdtypes(types).windows)

    def rrsig(self, text: str) -> dns.rdtypes.ANY.RRSIG.RRSIG:
        fields = text.split(" ")
        covered, algorithm, labels, ttl, expiration, inception, tag, signer = fields[:8]
        return dns.rdtypes.ANY.RRSIG.RRSIG(
            dns.rdataclass.IN,
            dns.rdatatype.RRSIG,
            self.canonical.rdtype(covered),
            int(algorithm),
            int(labels),
            int(ttl),
            self.canonical.time(expiration),
            self.canonical.time(inception),
            int(tag),
            self.name(signer),
            base64.b64decode("".join(fields[8:]), validate=True),
        )

    def nsec3(self, text: str) -> dns.rdtypes.ANY.NSEC3.NSEC3:
        fields = text.split(" ")
        algorithm, flags, iterations, salt, following = fields[:5]
        padded = following.upper().translate(HEX_TO_B32)
        padded += "=" * (-len(padded) % 8)
        return dns.rdtypes.ANY.NSEC3.NSEC3(
            dns.rdataclass.IN,
            dns.rdatatype.NSEC3,
            int(algorithm),
            int(flags),
            int(iterations),
            b"" if salt == "-" else bytes.fromhex(salt),
            base64.b32decode(padded),
            self.bitmap(fields[5:]),
        )

    def nsec(self, text: str) -> dns.rdtypes.ANY.NSEC.NSEC:
        fields = text.split(" ")
        return dns.rdtypes.ANY.NSEC.NSEC(
            dns.rdataclass.IN, dns.rdatatype.NSEC, self.name(fields[0]), self.bitmap(fields[1:])
        )
