"""Names in master files: the current ``$ORIGIN`` and owner/target name tokens.

A name token becomes ``(key, text)``: *key* is the name's lowercased labels,
root first (the order :class:`secdns.wire.Record` sorts by), and *text* is
what dnspython renders for it relative to the zone's origin (``@`` for the
origin itself; an absolute name, ending in a dot, outside the zone).  The
common tokens (one plain label under the zone's origin, or plain dotted
names) are handled directly; anything else goes through
``dns.name.from_text``.  Results are cached per origin.
"""

from __future__ import annotations

import re

import dns.exception
import dns.name

from secdns import wire
from secdns.masterfile.lexer import BadSyntax, ascii_escape, message

Owner = tuple[tuple[bytes, ...], str]

NAME_CACHE_LIMIT = 1 << 17

# A token that dnspython renders unchanged as a name: printable ASCII without
# the characters dns.name escapes ('"().;\@$') and without a backslash escape.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#%&'*+,\-./:<=>?\[\]^_`{|}~]+").fullmatch


class Names:
    """The origin relative names are read against, and a cache of the tokens read."""

    def __init__(self, zone_origin: dns.name.Name, origin: dns.name.Name) -> None:
        self.zone_origin = zone_origin
        self.okey = tuple(label.lower() for label in reversed(zone_origin.labels[:-1]))
        # Cleared, never replaced, when the origin changes: readers keep a reference.
        self.cache: dict[str, Owner] = {}
        self.set_origin(origin)

    def set_origin(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.origin_key = tuple(label.lower() for label in reversed(origin.labels[:-1]))
        self.origin_texts = tuple(wire.label_text(label) for label in origin.labels[:-1])
        self.origin_wire = sum(map(len, self.origin_key)) + len(self.origin_key) + 1
        self.at_zone_origin = self.origin_key == self.okey
        self.cache.clear()

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
            and "." not in token
            and len(token) < 64
            and token != "@"
            and (token.isalnum() and token.isascii() or _PLAIN_NAME(token))
        ):
            # The usual owner: one plain label under the zone's origin.
            if self.origin_wire + len(token) + 1 > 255:
                raise BadSyntax(f"bad name {token!r}: the name is longer than 255 octets")
            return self.okey + (token.lower().encode(),), token
        if token == "@":
            key = self.origin_key
            texts: tuple[str, ...] | list[str] = self.origin_texts
        elif _PLAIN_NAME(token):
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
            if absolute:
                key, texts = own, parts
            else:
                key, texts = self.origin_key + own, tuple(parts) + self.origin_texts
            if sum(map(len, key)) + len(key) + 1 > 255:
                raise BadSyntax(f"bad name {token!r}: the name is longer than 255 octets")
        else:
            labels = self.name(token).labels[:-1]
            key = tuple(label.lower() for label in reversed(labels))
            texts = [wire.label_text(label) for label in labels]
        depth = len(self.okey)
        if key[:depth] == self.okey:
            relative = len(key) - depth
            return key, ".".join(texts[:relative]) if relative else "@"
        return key, ".".join(texts) + "." if texts else "."

    def name(self, token: str) -> dns.name.Name:
        """A dns.name.Name for *token* (for $ORIGIN, $INCLUDE and unusual names), case kept."""
        if token[0] == '"':
            raise BadSyntax(f"a quoted string cannot be a name: {token}")
        text = token if token.isascii() else ascii_escape(token)
        try:
            return dns.name.from_text(text, self.origin)
        except dns.exception.DNSException as err:
            raise BadSyntax(f"bad name {token!r}: {message(err)}") from err
