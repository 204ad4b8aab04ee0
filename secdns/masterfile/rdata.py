"""Rdata tokens to the text dnspython renders, directly for the common types.

:meth:`RdataText.text` returns exactly what
``dns.rdata.from_text(...).to_text(origin=zone_origin, relativize=True)``
would.  For A, AAAA and SRV in class IN, and NS, CNAME, DNAME, PTR, MX, TXT,
SPF, RRSIG, NSEC and DNSKEY (:mod:`secdns.dnssectext`) in any class, it builds
that text itself (:attr:`RdataText.fast`, one function a type, each returning
None when unsure: then dnspython decides, and words any error).  Every other
type and class goes through dnspython, so the output is dnspython's by
construction.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA

from secdns import dnssectext, wire
from secdns.masterfile.lexer import BadSyntax, ascii_escape, message
from secdns.masterfile.names import Names

_IN = dns.rdataclass.IN

FastText = Callable[[list[str], int], "str | None"]


class RdataText:
    """Rdata text for the zone at *names*' zone origin, read against its current origin."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.targets = names.targets  # cleared, never replaced, by Names.set_origin
        self.rdclass: int = _IN
        # The direct renderings, by type: for class IN only (see set_class).
        self.fast: dict[int, FastText] = {
            dns.rdatatype.AAAA: self._aaaa,
            dns.rdatatype.NS: self._name,
            dns.rdatatype.CNAME: self._name,
            dns.rdatatype.DNAME: self._name,
            dns.rdatatype.PTR: self._name,
            dns.rdatatype.MX: self._mx,
            dns.rdatatype.SRV: self._srv,
            dns.rdatatype.TXT: self._txt,
            dns.rdatatype.SPF: self._txt,
            dns.rdatatype.RRSIG: functools.partial(dnssectext.rrsig, target=self._relative),
            dns.rdatatype.NSEC: functools.partial(dnssectext.nsec, target=self._relative),
            dns.rdatatype.NSEC3: functools.partial(dnssectext.nsec3, target=self._relative),
            dns.rdatatype.DNSKEY: functools.partial(dnssectext.dnskey, target=self._relative),
        }

    def set_class(self, rdclass: int) -> None:
        """The zone's class.  AAAA and SRV are rendered directly in class IN only
        (elsewhere dnspython knows them as unknown types); the others, class-less
        in dnspython too, in every class, so that names in their rdata are written
        alike whichever class (see :mod:`secdns.masterfile.names`)."""
        self.rdclass = rdclass
        if rdclass != _IN:
            self.fast.pop(dns.rdatatype.AAAA, None)
            self.fast.pop(dns.rdatatype.SRV, None)

    def rdata(self, rdtype: int, tokens: list[str], start: int) -> dns.rdata.Rdata:
        """``tokens[start:]`` as a dnspython rdata; :class:`BadSyntax` saying why not."""
        text = " ".join(tokens[start:])
        if not text.isascii():
            text = ascii_escape(text)
        try:
            return dns.rdata.from_text(
                dns.rdataclass.RdataClass.make(self.rdclass),
                dns.rdatatype.RdataType.make(rdtype),
                text,
                origin=self.names.origin,
                relativize=False,
            )
        except Exception as err:  # dnspython raises many types for bad rdata
            # the text that did not parse, as named-checkzone shows it
            shown = text if len(text) <= 80 else text[:77] + "..."
            said = f"bad {wire.type_text(rdtype)} rdata {shown!r}: {message(err)}"
            raise BadSyntax(said) from err

    def soa(self, tokens: list[str], start: int) -> tuple[str, int, int]:
        """An SOA's text (as dnspython's, with names as :meth:`Names.name_text` writes
        them), serial and minimum."""
        rdata = self.rdata(dns.rdatatype.SOA, tokens, start)
        assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)  # what from_text makes for SOA
        names = self.names
        text = (
            f"{names.name_text(rdata.mname)} {names.name_text(rdata.rname)} {rdata.serial} "
            f"{rdata.refresh} {rdata.retry} {rdata.expire} {rdata.minimum}"
        )
        return text, rdata.serial, rdata.minimum

    def text(self, rdtype: int, tokens: list[str], start: int) -> str:
        """Canonical rdata text: directly for common types, else through dnspython."""
        convert = self.fast.get(rdtype)
        if convert is not None:
            text = convert(tokens, start)
            if text is not None:
                return text
        if rdtype == dns.rdatatype.A and self.rdclass == _IN and len(tokens) == start + 1:
            try:
                socket.inet_pton(socket.AF_INET, tokens[start])
                return tokens[start]
            except (OSError, ValueError):
                pass
        return self._to_text(self.rdata(rdtype, tokens, start))

    def _to_text(self, rdata: dns.rdata.Rdata) -> str:
        return wire.rdata_text(rdata, self.names.zone_origin)

    # -- the direct renderings: None when dnspython should decide ----------

    def _target(self, token: str) -> str | None:
        text = self.targets.get(token)
        if text is None:
            if token[0] == '"':
                return None
            try:
                text = self.names.target(token)
            except BadSyntax:
                return None  # let dnspython word the error
        return text

    def _relative(self, token: str) -> str | None:
        """A name relative to the zone as dnspython writes it (case-insensitively): the
        RRSIG signer and NSEC next name, which :mod:`secdns.wire` leaves to dnspython."""
        if token[0] == '"':
            return None
        try:
            return self.names.entry(token)[1]
        except BadSyntax:
            return None

    def _name(self, tokens: list[str], start: int) -> str | None:
        if len(tokens) != start + 1:
            return None
        return self._target(tokens[start])

    def _aaaa(self, tokens: list[str], start: int) -> str | None:
        if len(tokens) != start + 1:
            return None
        try:
            return wire.ipv6_text(socket.inet_pton(socket.AF_INET6, tokens[start]))
        except (OSError, ValueError):
            return None

    def _mx(self, tokens: list[str], start: int) -> str | None:
        return self._numbers_and_name(tokens, start, 1)

    def _srv(self, tokens: list[str], start: int) -> str | None:
        return self._numbers_and_name(tokens, start, 3)

    def _numbers_and_name(self, tokens: list[str], start: int, count: int) -> str | None:
        """*count* 16-bit numbers, then a name: MX (1) and SRV (3)."""
        if len(tokens) != start + count + 1:
            return None
        numbers = _numbers(tokens[start : start + count])
        target = self._target(tokens[start + count]) if numbers else None
        return None if target is None else f"{numbers} {target}"

    def _txt(self, tokens: list[str], start: int) -> str | None:
        if len(tokens) == start:
            return None
        parts = []
        for token in tokens[start:]:
            if token[0] == '"':
                token = token[1:-1]
            if (
                "\\" in token
                or '"' in token
                or len(token) > 255
                or not token.isascii()
                or not token.isprintable()
            ):
                return None
            parts.append('"' + token + '"')
        return " ".join(parts)


def _numbers(tokens: list[str]) -> str:
    """16-bit decimal *tokens* as dnspython writes them (``010`` is ``10``), or ``""``."""
    for number in tokens:
        if not (number.isdigit() and number.isascii()) or int(number) > 0xFFFF:
            return ""
    return " ".join([str(int(number)) for number in tokens])
