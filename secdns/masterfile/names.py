"""Names in master files: the current ``$ORIGIN`` and owner/target name tokens.

A name token becomes ``(key, text)``: *key* is the name's lowercased labels,
root first (the order :class:`secdns.wire.Record` sorts by), or with
``text_keys`` the key a served zone looks owners up by (its lowercased
absolute text: :func:`secdns.server.zone.name_key`), and *text* is
what dnspython renders for it relative to the zone's origin (``@`` for the
origin itself; an absolute name, ending in a dot, outside the zone).  The
common tokens (one plain label under the zone's origin, or plain dotted
names) are handled directly; anything else goes through
``dns.name.from_text``.  Results are cached per origin.

A name in rdata (:meth:`Names.target`, :meth:`Names.name_text`) is written
relative only when its zone part has the zone origin's exact case, else
absolute, as :mod:`secdns.wire` writes it from what a primary sent (so that
``WWW.D-UPPER.TEST.`` does not become ``WWW`` and reload as
``WWW.d-upper.test.``).  Owner names are always relative to the zone.
"""

from __future__ import annotations

import re
from typing import Any

import dns.exception
import dns.name

from secdns import wire
from secdns.masterfile.lexer import BadSyntax, ascii_escape, message

Owner = tuple[Any, str]
"""(key, text): the key a tuple of bytes labels, or with ``text_keys`` a str."""

NAME_CACHE_LIMIT = 1 << 10
"""Tokens each cache keeps before it is emptied.  Small on purpose: a file repeats a
name close to where it first wrote it (an owner's records, its glue a few lines on,
the targets most records share), and a cache that fits the processor's cache beats
one that remembers more: reading genzone's 1M-record zone took 10-13% longer with
131,072 (every look-up of a new owner missed in a table of tens of megabytes)."""

# A token that dnspython renders unchanged as a name: printable ASCII without
# the characters dns.name escapes ('"().;\@$') and without a backslash escape.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#%&'*+,\-./:<=>?\[\]^_`{|}~]+").fullmatch


class Names:
    """The origin relative names are read against, and a cache of the tokens read."""

    def __init__(
        self, zone_origin: dns.name.Name, origin: dns.name.Name, text_keys: bool = False
    ) -> None:
        self.zone_origin = zone_origin
        self.text_keys = text_keys
        zone_text = zone_origin.to_text()
        self.zone_key = zone_text.lower()
        self.key_suffix = "." + zone_text if zone_text != "." else "."
        self.okey = tuple(label.lower() for label in reversed(zone_origin.labels[:-1]))
        self.zone_texts = tuple(wire.label_text(label) for label in zone_origin.labels[:-1])
        # Cleared, never replaced, when the origin changes: readers keep a reference.
        self.cache: dict[str, Owner] = {}
        self.targets: dict[str, str] = {}  # rdata name text by token
        self.set_origin(origin)

    def set_origin(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.origin_key = tuple(label.lower() for label in reversed(origin.labels[:-1]))
        self.origin_texts = tuple(wire.label_text(label) for label in origin.labels[:-1])
        self.origin_wire = sum(map(len, self.origin_key)) + len(self.origin_key) + 1
        self.at_zone_origin = self.origin_key == self.okey
        # Do relative names get the zone part in the zone origin's case?
        depth = len(self.okey)
        self.exact_origin = (
            self.origin_key[:depth] != self.okey
            or self.origin_texts[len(self.origin_texts) - depth :] == self.zone_texts
        )
        self.cache.clear()
        self.targets.clear()

    def entry(self, token: str) -> Owner:
        """``(key, text)`` of the name *token* read relative to the current origin."""
        entry = self.cache.get(token)
        if entry is None:
            entry = self.resolve(token)
            if len(self.cache) >= NAME_CACHE_LIMIT:
                self.cache.clear()
            self.cache[token] = entry
        return entry

    def resolve(self, token: str) -> Owner:
        """``(key, text)`` of the name *token*, not cached; :class:`BadSyntax` if it is none."""
        if (
            self.at_zone_origin
            and len(token) < 64
            and token[-1] != "."
            and token != "@"
            and token.isascii()
            # (plain labels joined by dots, before the general test: a regex call costs
            # more than the replace; the three are one test)
            and (token.isalnum() or token.replace(".", "").isalnum() or _PLAIN_NAME(token))
        ):
            # The usual owners: plain labels under the zone's origin (``www``,
            # ``www.dept``); the text is the token itself (what _relative would join).
            if self.text_keys and not (".." in token or token[0] == "."):
                if self.origin_wire + len(token) + 1 > 255:
                    raise BadSyntax(f"bad name {token!r}: the name is longer than 255 octets")
                return (token + self.key_suffix).lower(), token
            raw = token.lower().encode()
            labels = raw.split(b".") if "." in token else [raw]
            if b"" not in labels:  # (else _parts says which label is empty)
                if self.origin_wire + len(token) + 1 > 255:
                    raise BadSyntax(f"bad name {token!r}: the name is longer than 255 octets")
                labels.reverse()
                return self.okey + tuple(labels), token
        key, texts = self._parts(token)
        text = self._relative(key, texts)
        if self.text_keys:
            return self.text_key(text), text
        return key, text

    def text_key(self, text: str) -> str:
        """The served zone's key of an owner written *text* (relative to the zone, or
        absolute outside it), as :meth:`secdns.server.zone.ZoneVersion.from_lines`
        makes it from a line."""
        if text == "@":
            return self.zone_key
        if text[-1] == ".":
            return text.lower()
        return (text + self.key_suffix).lower()

    def _parts(self, token: str) -> tuple[tuple[bytes, ...], tuple[str, ...] | list[str]]:
        """The key of the name *token* and the text of its labels (most specific first)."""
        if token == "@":
            return self.origin_key, self.origin_texts
        if _PLAIN_NAME(token):
            absolute = token[-1] == "."
            parts = token[:-1].split(".") if absolute else token.split(".")
            if parts == [""] and absolute:
                parts = []
            for part in parts:
                if not part or len(part) > 63:
                    raise BadSyntax(
                        f"bad name {token!r}: "
                        + ("a label is empty" if not part else "a label is too long")
                    )
            own = tuple([part.lower().encode() for part in reversed(parts)])
            texts: tuple[str, ...] | list[str] = parts
            if absolute:
                key = own
            else:
                key, texts = self.origin_key + own, tuple(parts) + self.origin_texts
            if sum(map(len, key)) + len(key) + 1 > 255:
                raise BadSyntax(f"bad name {token!r}: the name is longer than 255 octets")
            return key, texts
        labels = self.name(token).labels[:-1]
        return (
            tuple(label.lower() for label in reversed(labels)),
            tuple([wire.label_text(label) for label in labels]),
        )

    def _relative(self, key: tuple[bytes, ...], texts: tuple[str, ...] | list[str]) -> str:
        """Text relative to the zone origin (case-insensitively), or absolute outside it."""
        depth = len(self.okey)
        if key[:depth] == self.okey:
            relative = len(key) - depth
            return ".".join(texts[:relative]) if relative else "@"
        return ".".join(texts) + "." if texts else "."

    def _exact(self, key: tuple[bytes, ...], texts: tuple[str, ...] | list[str]) -> str:
        """As :meth:`_relative`, but absolute when the zone part is in another case."""
        depth = len(self.okey)
        if (
            depth
            and key[:depth] == self.okey
            and tuple(texts[len(texts) - depth :]) != self.zone_texts
        ):
            return ".".join(texts) + "."
        return self._relative(key, texts)

    def target(self, token: str) -> str:
        """The text of the name *token* in rdata (see the module docstring); cached."""
        text = self.targets.get(token)
        if text is None:
            if self.exact_origin and token[-1] != ".":
                text = self.entry(token)[1]  # relative: the zone part is the origin's
            else:
                text = self._exact(*self._parts(token))
            if len(self.targets) >= NAME_CACHE_LIMIT:
                self.targets.clear()
            self.targets[token] = text
        return text

    def name_text(self, name: dns.name.Name) -> str:
        """The text of an absolute *name* in rdata (see the module docstring)."""
        labels = name.labels[:-1]
        key = tuple(label.lower() for label in reversed(labels))
        return self._exact(key, [wire.label_text(label) for label in labels])

    def name(self, token: str) -> dns.name.Name:
        """A dns.name.Name for *token* (for $ORIGIN, $INCLUDE and unusual names), case kept."""
        if token[0] == '"':
            raise BadSyntax(f"a quoted string cannot be a name: {token}")
        text = token if token.isascii() else ascii_escape(token)
        try:
            return dns.name.from_text(text, self.origin)
        except dns.exception.DNSException as err:
            raise BadSyntax(f"bad name {token!r}: {message(err)}") from err
