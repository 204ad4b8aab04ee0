"""The DNSSEC canonical wire form of records held as text (RFC 4034 section 6.2).

A signature covers the canonical wire form of an RRset, so verifying one needs
each record's rdata as octets.  Records (:class:`secdns.wire.Record`) carry their
rdata as the text dnspython renders (``to_text(origin, relativize=True)``);
building a dnspython rdata object from that text only to ask it for its wire form
costs far more than the signature check itself.  :class:`CanonicalWire` writes the
octets straight from the text for the types a signed zone is made of (A, AAAA,
NS, CNAME, PTR, MX, SRV, TXT, SOA, DNSKEY, DS, NSEC), with caches for the names
and type bitmaps they repeat, and hands every other type, and any text it is
unsure about (escapes, non-ASCII), to dnspython's ``to_digestable``.  The result
is dnspython's by construction, which ``tests/test_signatures.py`` checks record
by record: names in NS, CNAME, PTR, MX, SRV and SOA rdata are lowercased, the
next name of an NSEC is not (RFC 6840 section 5.1).

:func:`parse_rrsig` reads an RRSIG's fields from the same text, the signer as
canonical octets, for the signature data of RFC 4034 section 3.1.8.1.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import socket
import struct
from collections.abc import Callable

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG

from secdns import wire
from secdns.dnssecwire import RRSIG_HEAD, sig_time, type_bitmap

_IN = dns.rdataclass.IN
_CACHE_LIMIT = 1 << 16
_U16 = struct.Struct("!H")
_U16X3 = struct.Struct("!HHH")
_U32X5 = struct.Struct("!IIIII")
_KEY_HEAD = struct.Struct("!HBB")  # DNSKEY flags, protocol, algorithm; DS key tag, algorithm, type

# The errors that mean "this text is not the plain rendering the fast path expects".
_NOT_PLAIN = (ValueError, KeyError, IndexError, struct.error, binascii.Error, OverflowError)


@dataclasses.dataclass(frozen=True, slots=True)
class Rrsig:
    """An RRSIG's fields, with what the signature data needs as octets."""

    covered: int
    algorithm: int
    labels: int
    original_ttl: int
    expiration: int
    inception: int
    key_tag: int
    signer: bytes  # canonical (lowercased) wire form
    signature: bytes
    header: bytes  # the rdata without the signature: the start of the signed data

    @classmethod
    def make(
        cls,
        covered: int,
        algorithm: int,
        labels: int,
        original_ttl: int,
        expiration: int,
        inception: int,
        key_tag: int,
        signer: bytes,
        signature: bytes,
    ) -> Rrsig:
        fields = (covered, algorithm, labels, original_ttl, expiration, inception, key_tag)
        header = RRSIG_HEAD.pack(*fields) + signer
        return cls(*fields, signer, signature, header)


def owner_wire(key: tuple[bytes, ...]) -> bytes:
    """The canonical wire form of the name whose key (reversed lowercased labels) is ``key``."""
    return b"".join([bytes((len(label),)) + label for label in reversed(key)]) + b"\0"


class CanonicalWire:
    """Canonical rdata octets from record text, for one zone (relative names need its origin)."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.origin_lower = origin.to_digestable()
        self.origin_raw = origin.to_wire() or b""
        self.lower_names: dict[str, bytes] = {}
        self.raw_names: dict[str, bytes] = {}
        self.types: dict[str, int] = {}
        self.times: dict[str, int] = {}
        t = dns.rdatatype
        self.fast: dict[int, Callable[[str], bytes]] = {
            t.A: self._a,
            t.AAAA: self._aaaa,
            t.NS: self._name_rdata,
            t.CNAME: self._name_rdata,
            t.PTR: self._name_rdata,
            t.MX: self._mx,
            t.SRV: self._srv,
            t.TXT: self._txt,
            t.SOA: self._soa,
            t.DNSKEY: self._dnskey,
            t.DS: self._ds,
            t.NSEC: self._nsec,
        }

    # -- rdata

    def rdata(self, rec: wire.Record) -> bytes | None:
        """The canonical rdata of ``rec``; None if it is not valid rdata at all."""
        if rec.rdclass == _IN:
            convert = self.fast.get(rec.rdtype)
            if convert is not None:
                try:
                    return convert(rec.rdata)
                except _NOT_PLAIN:
                    pass  # not the plain rendering after all: let dnspython read it
        try:
            rdata = dns.rdata.from_text(
                dns.rdataclass.RdataClass.make(rec.rdclass),
                dns.rdatatype.RdataType.make(rec.rdtype),
                rec.rdata,
                origin=self.origin,
                relativize=False,
            )
            return rdata.to_digestable(self.origin)
        except (dns.exception.DNSException, ValueError):
            return None  # already reported by whoever parsed the zone

    def _a(self, text: str) -> bytes:
        return socket.inet_pton(socket.AF_INET, text)

    def _aaaa(self, text: str) -> bytes:
        return socket.inet_pton(socket.AF_INET6, text)

    def _name_rdata(self, text: str) -> bytes:
        if " " in text:
            raise ValueError("one name expected")
        return self.name(text)

    def _mx(self, text: str) -> bytes:
        preference, exchange = text.split(" ")
        return _U16.pack(int(preference)) + self.name(exchange)

    def _srv(self, text: str) -> bytes:
        priority, weight, port, target = text.split(" ")
        return _U16X3.pack(int(priority), int(weight), int(port)) + self.name(target)

    def _txt(self, text: str) -> bytes:
        if "\\" in text or not text.isascii() or len(text) < 2 or text[0] != '"' or text[-1] != '"':
            raise ValueError("not a plain TXT rendering")
        out = []
        for string in text[1:-1].split('" "'):
            if '"' in string or len(string) > 255:
                raise ValueError("not a plain TXT rendering")
            out.append(bytes((len(string),)) + string.encode("ascii"))
        return b"".join(out)

    def _soa(self, text: str) -> bytes:
        mname, rname, *numbers = text.split(" ")
        return self.name(mname) + self.name(rname) + _U32X5.pack(*map(int, numbers))

    def _dnskey(self, text: str) -> bytes:
        flags, protocol, algorithm, *key = text.split(" ")
        head = _KEY_HEAD.pack(int(flags), int(protocol), int(algorithm))
        return head + base64.b64decode("".join(key), validate=True)

    def _ds(self, text: str) -> bytes:
        tag, algorithm, digest_type, *digest = text.split(" ")
        return _KEY_HEAD.pack(int(tag), int(algorithm), int(digest_type)) + bytes.fromhex(
            "".join(digest)
        )

    def _nsec(self, text: str) -> bytes:
        following, _, types = text.partition(" ")
        return self.name(following, lower=False) + type_bitmap(types)

    # -- names, types, times

    def name(self, text: str, *, lower: bool = True) -> bytes:
        """The wire form of a name as rdata text writes it (relative to the origin, or absolute)."""
        cache = self.lower_names if lower else self.raw_names
        octets = cache.get(text)
        if octets is None:
            octets = self._name(text, lower)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[text] = octets
        return octets

    def _name(self, text: str, lower: bool) -> bytes:
        if text == "@":
            return self.origin_lower if lower else self.origin_raw
        if "\\" in text or not text.isascii():
            try:
                name = dns.name.from_text(text, self.origin)
            except dns.exception.DNSException as err:
                raise ValueError(f"not a domain name: {text!r}") from err
            return name.to_digestable() if lower else name.to_wire() or b""
        if text == ".":
            return b"\0"
        absolute = text.endswith(".")
        labels = (text[:-1] if absolute else text).encode("ascii").split(b".")
        if lower:
            labels = [label.lower() for label in labels]
        if not all(0 < len(label) < 64 for label in labels):
            raise ValueError(f"not a domain name: {text!r}")
        suffix = b"\0" if absolute else self.origin_lower if lower else self.origin_raw
        octets = b"".join([bytes((len(label),)) + label for label in labels]) + suffix
        if len(octets) > 255:
            raise ValueError(f"name too long: {text!r}")
        return octets

    def rdtype(self, text: str) -> int:
        rdtype = self.types.get(text)
        if rdtype is None:
            rdtype = self.types[text] = dns.rdatatype.from_text(text)
        return rdtype

    def time(self, text: str) -> int:
        value = self.times.get(text)
        if value is None:
            value = sig_time(text)
            if len(self.times) >= _CACHE_LIMIT:
                self.times.clear()
            self.times[text] = value
        return value

    # -- RRSIG

    def covered(self, rec: wire.Record) -> int | None:
        """The type an RRSIG record covers (its first field); None if that is not a type."""
        try:
            return self.rdtype(rec.rdata.partition(" ")[0])
        except dns.exception.DNSException:
            return None

    def rrsig(self, rec: wire.Record) -> Rrsig | None:
        """The fields of an RRSIG record; None if it is not a valid RRSIG."""
        if rec.rdclass == _IN:
            try:
                covered, algorithm, labels, ttl, expiration, inception, tag, signer, *sig = (
                    rec.rdata.split(" ")
                )
                return Rrsig.make(
                    self.rdtype(covered),
                    int(algorithm),
                    int(labels),
                    int(ttl),
                    self.time(expiration),
                    self.time(inception),
                    int(tag),
                    self.name(signer),
                    base64.b64decode("".join(sig), validate=True),
                )
            except (*_NOT_PLAIN, dns.exception.DNSException):
                pass
        try:
            rdata = dns.rdata.from_text(
                dns.rdataclass.RdataClass.make(rec.rdclass),
                dns.rdatatype.RRSIG,
                rec.rdata,
                origin=self.origin,
                relativize=False,
            )
        except (dns.exception.DNSException, ValueError):
            return None
        if not isinstance(rdata, dns.rdtypes.ANY.RRSIG.RRSIG):
            return None
        try:
            return Rrsig.make(
                rdata.type_covered,
                rdata.algorithm,
                rdata.labels,
                rdata.original_ttl,
                rdata.expiration,
                rdata.inception,
                rdata.key_tag,
                rdata.signer.to_digestable(self.origin),
                rdata.signature,
            )
        except struct.error:
            return None  # a time past 2106 has no wire form
