"""Loading a served zone from a master file: read, grouped by owner, no global sort.

``serve`` answers from a :class:`~secdns.server.zone.ZoneVersion`, a hash map
from each owner's key to its canonical lines; it needs neither
:class:`secdns.wire.Record` objects nor the zone in canonical order.  The
master-file reader (:func:`secdns.masterfile.read_master`, the one reader of
every command) therefore hands each record to :class:`OwnerGroups` as it reads
it, which writes its canonical line (:func:`secdns.zonefile.sorted_lines`'s
``owner TTL IN TYPE rdata``) straight into its owner's group.

The version equals what ``ZoneVersion.from_lines(origin,
zonefile.canonical_lines(records))`` builds from the same file, line for line
and in the same order within each owner (tests/test_load.py compares them):
an owner's lines are in canonical order (SOA first, then by type number and
rdata text), exact duplicates dropped keeping the first, as the canonical sort
does.  A file lists most owners' records together and in that order already,
so only the owners whose records came out of order or repeated are sorted
afterwards, each on its own (an owner whose records are split over the file but
still come in order, as glue often does, needs none).

Before (issue 12, 1M-record zone): read into records, sort the million records
by owner, render their lines, group the lines by owner again: 13.2 s CPU, the
records and the lines both alive at the peak.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from pathlib import Path

import dns.name
import dns.rdataclass

from secdns import wire
from secdns.errors import LocalIOError, ZoneFileError, other_zone_words
from secdns.masterfile import Emit, read_master
from secdns.server.zone import Entry, ZoneVersion

_SOA = 6
_IN = 1


class OwnerGroups:
    """Each owner's canonical lines, keyed as :class:`ZoneVersion` keys them, built
    from records in file order (:attr:`emit`); :meth:`version` builds the zone.

    With *buckets* (a power of two), each owner goes straight into the bucket
    :class:`ZoneVersion` keeps it in, as its entry (its lines' tuple and a count below
    of 0), written when the next owner starts (:attr:`flush` writes the last): a
    large file read in pieces (:mod:`secdns.server.loadsplit`) then needs no second
    pass to put a million owners into buckets (0.3 s of each process's critical
    path on the 1M-record genzone zone).  :attr:`order` keeps the owners' keys in
    the order they first came, :attr:`records` their records."""

    def __init__(self, origin: dns.name.Name, buckets: int = 0) -> None:
        self.origin = origin
        self.groups: dict[str, list[str]] = {}
        self.buckets: list[dict[str, Entry]] = [{} for _ in range(buckets)]
        self.order: list[str] = []  # (with buckets) the keys, in the order they came
        self.unordered: set[str] = set()  # owners whose lines need sort + dedup
        self.type_orders: dict[str, int] = {}  # type text -> canonical position
        self._records = [0]  # (with buckets) the lines written into them
        self.emit, self.flush = self._emitter()

    @property
    def records(self) -> int:
        """(With buckets) the records in them, once :attr:`flush` has run."""
        return self._records[0]

    def take(self, head: OwnerGroups) -> None:
        """Start with *head*'s owners (read before the buckets' count was known),
        each put into its bucket; the next record read continues them."""
        for key, lines in head.finish().items():
            self._put(key, lines)
        self.type_orders.update(head.type_orders)

    def _put(self, key: str, lines: list[str]) -> None:
        self.buckets[hash(key) & (len(self.buckets) - 1)][key] = (tuple(lines), 0)
        self.order.append(key)
        self._records[0] += len(lines)

    def _emitter(self) -> tuple[Emit, Callable[[], None]]:
        """The per-record function, a closure: its state lives in cells, not attributes
        (it runs once a record, a million times for a large zone); and the function
        that writes the owner read last into its bucket."""
        groups = self.groups
        buckets = self.buckets if self.buckets else None
        mask = len(self.buckets) - 1
        seen = self.order
        counted = self._records
        unordered = self.unordered
        heads: dict[int, str] = {}  # "IN TYPE" by type, for class IN
        type_orders = self.type_orders  # (not self: no reference cycle through the closure)
        origin_text = self.origin.to_text()
        gkey = ""  # the current owner's key
        gbucket: dict[str, Entry] = {}  # (with buckets) its bucket
        group: list[str] = []
        last_order = -1
        last_rdata = ""

        def emit(
            key: str,
            owner: str,
            ttl: int,
            rdclass: int,
            rdtype: int,
            rdata: str,
            serial: int | None,
        ) -> None:
            nonlocal gkey, gbucket, group, last_order, last_rdata
            if key != gkey:
                if owner[-1] == ".":  # (the words ZoneVersion.from_lines uses)
                    if rdtype == _SOA:  # the usual cause: as sources.other_zone says it
                        raise ZoneFileError(
                            f"the file {other_zone_words(owner, origin_text)}: "
                            "wrong file or wrong zone name?"
                        )
                    line = f"{owner} {ttl} {_head(rdclass, rdtype, {})} {rdata}"
                    cut = line[:80] + ("..." if len(line) > 80 else "")
                    raise ZoneFileError(f"record outside the zone {origin_text}: {cut}")
                last_order = 0 if rdtype == _SOA else rdtype
                if buckets is None:
                    found = groups.get(key)
                    if found is None:
                        group = groups[key] = []
                    else:
                        group = found
                else:
                    if gkey:
                        gbucket[gkey] = (tuple(group), 0)
                        counted[0] += len(group)
                    gbucket = buckets[hash(key) & mask]
                    entry = gbucket.get(key)
                    if entry is None:
                        found = group = []
                        seen.append(key)
                    else:
                        found = group = list(entry[0])
                        counted[0] -= len(group)  # (counted again when it is written)
                gkey = key
                if found:  # the owner again, after others (glue: ns1 A, ns2 A, ns1 AAAA)
                    _owner, _ttl, _class, type_text, earlier = found[-1].split(" ", 4)
                    order = type_orders[type_text]
                    if last_order < order or (last_order == order and rdata <= earlier):
                        unordered.add(key)  # (else still in order: no sort needed)
            else:
                order = 0 if rdtype == _SOA else rdtype
                if order < last_order or (order == last_order and rdata <= last_rdata):
                    unordered.add(key)  # out of order, or a duplicate
                last_order = order
            last_rdata = rdata
            head = heads.get(rdtype) if rdclass == _IN else None
            if head is None:
                head = _head(rdclass, rdtype, type_orders)
                if rdclass == _IN:
                    heads[rdtype] = head
            group.append(f"{owner} {ttl} {head} {rdata}")

        def flush() -> None:
            nonlocal gkey
            if buckets is not None and gkey:
                gbucket[gkey] = (tuple(group), 0)
                counted[0] += len(group)
            gkey = ""  # (a record of the same owner next reopens it)

        return emit, flush

    def finish(self) -> dict[str, list[str]]:
        """The groups, each in canonical order without duplicates (without buckets)."""
        orders = self.type_orders
        groups = self.groups
        for gkey in self.unordered:
            groups[gkey] = canonical_group(groups[gkey], orders)
        self.unordered.clear()
        return groups

    def finish_buckets(self) -> list[dict[str, Entry]]:
        """(With buckets) the buckets, each owner's lines in canonical order without
        duplicates (:attr:`records` less those dropped)."""
        self.flush()
        orders = self.type_orders
        mask = len(self.buckets) - 1
        for gkey in self.unordered:
            bucket = self.buckets[hash(gkey) & mask]
            lines = bucket[gkey][0]
            kept = canonical_group(lines, orders)
            bucket[gkey] = (tuple(kept), 0)
            self._records[0] -= len(lines) - len(kept)
        self.unordered.clear()
        return self.buckets

    def version(self) -> ZoneVersion:
        """The zone; the groups are emptied (the version holds the lines as tuples)."""
        version = ZoneVersion.from_groups(self.origin, self.finish())
        self.groups.clear()
        return version


def canonical_group(lines: Iterable[str], type_orders: dict[str, int]) -> list[str]:
    """An owner's *lines* in canonical order (by type, then rdata text), exact duplicates
    dropped keeping the first; *type_orders*: each type text's position (:func:`_head`)."""
    keyed = []
    for line in lines:
        _owner, _ttl, _cls, type_text, rdata = line.split(" ", 4)
        keyed.append((type_orders[type_text], rdata, line))
    keyed.sort(key=lambda item: item[:2])  # stable: the first of equals stays first
    kept: list[str] = []
    previous: tuple[int, str] | None = None
    for order, rdata, line in keyed:
        if (order, rdata) != previous:
            previous = (order, rdata)
            kept.append(line)
    return kept


def _head(rdclass: int, rdtype: int, type_orders: dict[str, int]) -> str:
    """``CLASS TYPE`` of a line, as :func:`secdns.zonefile.sorted_lines` writes it;
    remembers the type's place in the canonical order (``type_orders``)."""
    type_text = wire.type_text(rdtype)
    type_orders[type_text] = 0 if rdtype == _SOA else rdtype
    if rdclass == _IN:
        return f"IN {type_text}"
    return f"{dns.rdataclass.to_text(dns.rdataclass.RdataClass.make(rdclass))} {type_text}"


def version_from_text(
    text: str, origin: dns.name.Name, filename: str, *, processes: int | None = None
) -> ZoneVersion:
    """The served version of master-file *text* (errors as :func:`read_master`'s).

    A large file is read in up to *processes* processes at once (default: the CPUs
    this process may use; :mod:`secdns.server.loadsplit`), falling back to one pass
    whenever that cannot be done exactly as one pass would.

    The cyclic garbage collector is paused meanwhile (as :func:`read_master` pauses
    it): the million lines and tuples of a large zone form no cycles, and its passes
    over them would cost seconds (a SIGHUP reload runs with it on)."""
    from secdns.server import loadsplit

    if processes is None:
        processes = loadsplit.processes_available()
    collecting = gc.isenabled()
    gc.disable()
    try:
        if processes > 1 and len(text) >= loadsplit.MIN_SPLIT_CHARS:
            version = loadsplit.read_split(text, origin, filename, processes)
            if version is not None:
                return version
        groups = OwnerGroups(origin)
        read_master(text, origin, filename=filename, emit=groups.emit)
        return groups.version()
    except ZoneFileError as err:  # named: the zone, and the file when the error is not
        if filename not in err.message:
            err.message = f"{filename}: {err.message}"
        err.with_context(zone=origin.to_text())
        raise
    finally:
        if collecting:
            gc.enable()


def version_from_file(
    path: str | Path, origin: dns.name.Name, *, processes: int | None = None
) -> ZoneVersion:
    """The served version of the master file at *path* (a ``file`` zone)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise LocalIOError(f"no such zone file: {path}") from None
    except OSError as err:
        raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
    return version_from_text(text, origin, str(path), processes=processes)
