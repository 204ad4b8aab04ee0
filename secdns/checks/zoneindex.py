"""One pass over a zone's records that every check shares: records grouped by owner.

Records (:class:`secdns.wire.Record`) carry their owner's canonical key (lowercased
labels, most significant first), so grouping costs one dictionary operation per
record and names are never parsed.  Names inside rdata are turned into keys only
for the few types a check needs (:func:`name_key`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import dns.exception
import dns.name

from secdns import wire

Key = tuple[bytes, ...]


def origin_key(origin: dns.name.Name) -> Key:
    return tuple(label.lower() for label in reversed(origin.labels[:-1]))


@dataclasses.dataclass(slots=True)
class ZoneIndex:
    """A zone's records grouped by owner; out-of-zone records set apart.

    Most owners of a large zone have one record, so the index keeps every owner's
    first record in ``first`` and builds a list only for owners with more
    (``groups``, which then holds all of that owner's records, the first included).
    """

    origin: dns.name.Name
    origin_key: Key
    origin_text: str
    first: dict[Key, wire.Record]
    groups: dict[Key, list[wire.Record]]
    out_of_zone: list[wire.Record]

    @classmethod
    def build(cls, origin: dns.name.Name, records: list[wire.Record]) -> ZoneIndex:
        okey = origin_key(origin)
        depth = len(okey)
        first: dict[Key, wire.Record] = {}
        extra: list[wire.Record] = []
        out_of_zone: list[wire.Record] = []
        keep_first = first.setdefault
        for rec in records:
            key = rec.key
            # Owners outside the zone are written absolute (ending in a dot); the
            # key decides, the text only spares the slice for the usual case.
            if rec.owner[-1:] == "." and depth and key[:depth] != okey:
                out_of_zone.append(rec)
            elif keep_first(key, rec) is not rec:
                extra.append(rec)
        groups: dict[Key, list[wire.Record]] = {}
        for rec in extra:
            group = groups.get(rec.key)
            if group is None:
                groups[rec.key] = [first[rec.key], rec]
            else:
                group.append(rec)
        return cls(origin, okey, origin.to_text(), first, groups, out_of_zone)

    def group(self, key: Key) -> Sequence[wire.Record]:
        """Every record owned by ``key`` (empty if it owns none)."""
        group = self.groups.get(key)
        if group is not None:
            return group
        rec = self.first.get(key)
        return () if rec is None else (rec,)

    def owners(self) -> Iterator[tuple[Key, Sequence[wire.Record]]]:
        """Every in-zone owner with its records."""
        groups = self.groups
        for key, rec in self.first.items():
            group = groups.get(key)
            yield key, (rec,) if group is None else group

    def absolute(self, owner: str) -> str:
        """The absolute text of a name written relative to the origin (as records are)."""
        if owner == "@":
            return self.origin_text
        if is_absolute_text(owner):
            return owner
        if self.origin_text == ".":
            return owner + "."
        return f"{owner}.{self.origin_text}"

    def key_text(self, key: Key) -> str:
        """The absolute text of a name given by its key (display only: lowercase)."""
        if not key:
            return "."
        return ".".join(wire.label_text(label) for label in reversed(key)) + "."

    def name_key(self, text: str) -> Key:
        return name_key(text, self.origin_key, self.origin)

    def is_below(self, key: Key, ancestor: Key) -> bool:
        """Is ``key`` strictly below ``ancestor``?"""
        return len(key) > len(ancestor) and key[: len(ancestor)] == ancestor

    def in_zone(self, key: Key) -> bool:
        depth = len(self.origin_key)
        return key[:depth] == self.origin_key


def is_absolute_text(text: str) -> bool:
    """Does name text end with an unescaped dot?"""
    if not text.endswith("."):
        return False
    backslashes = len(text) - 1 - len(text[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def name_key(text: str, okey: Key, origin: dns.name.Name) -> Key:
    """The key of a name as rdata text writes it (relative to the origin, or absolute).

    Plain ASCII names are split by hand; names with escapes go through dnspython.
    Raises ValueError for text that is not a name.
    """
    if text == "@":
        return okey
    if "\\" not in text:
        try:
            raw = text.lower().encode("ascii")
        except UnicodeEncodeError:
            raw = None
        if raw is not None:
            if raw == b".":
                return ()
            absolute = raw.endswith(b".")
            labels = (raw[:-1] if absolute else raw).split(b".")
            if b"" not in labels:
                labels.reverse()
                return tuple(labels) if absolute else okey + tuple(labels)
    try:
        name = dns.name.from_text(text, origin)
    except dns.exception.DNSException as err:
        raise ValueError(f"not a domain name: {text!r}") from err
    return tuple(label.lower() for label in reversed(name.labels[:-1]))
