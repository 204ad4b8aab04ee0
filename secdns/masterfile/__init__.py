"""Fast reading of RFC 1035 master files into :class:`secdns.wire.Record` values.

:func:`read_master` turns master-file text into the same records the zone
transfer decoder (:func:`secdns.wire.parse_message`) produces from wire data,
so a zone read from a file and a zone pulled from a server compare record by
record.  Each record's ``rdata`` is exactly what dnspython renders with
``rdata.to_text(origin=origin, relativize=True)``, and its ``owner`` is
``name.relativize(origin).to_text()``.

The syntax is RFC 1035 section 5 as BIND reads it: ``$ORIGIN``, ``$TTL`` (with
units such as ``1h30m``), ``$INCLUDE file [origin]``, BIND's ``$GENERATE``,
parentheses across lines, ``;`` comments, quoted strings with escapes, blank
owners, ``@``, TTL and class in either order, ``TYPEnnn`` and RFC 3597
``\\# len hex`` rdata.  Where BIND and dnspython disagree, this module follows
BIND (``named-checkzone``), because the records must match what a BIND
primary serves:

* TTLs.  A record without a TTL takes the ``$TTL``; failing that, the TTL of
  the previous record (RFC 1035 section 5.1); failing that, an SOA record
  takes its MINIMUM, which then becomes the default for every later record
  without a TTL ("using SOA MINTTL instead"); any other record is an error.
  dnspython instead prefers the previous record's TTL over a default taken
  from the SOA.  TTLs above 2**31 - 1 are read as 0 (RFC 2181 section 8, and
  what :mod:`secdns.wire` does with such a TTL on the wire); a TTL that does
  not fit 32 bits is not a TTL at all, so ``4294967296`` is an unknown type.
* ``$INCLUDE`` shares the TTL state with the including file (a ``$TTL`` in an
  included file stays in force after it), while the origin and the current
  owner return to the including file's.  dnspython restores all of them.
  Relative paths resolve against *include_dir*, or else the directory of
  *filename*, for nested includes too, as BIND resolves them against its
  working directory; ``../`` is allowed, a loop or a missing file is an error.
* ``$GENERATE range lhs [class] [ttl] [class] type rhs``: the rdata is one
  token (quote it if it has spaces, e.g. ``MX "10 mx$"``; dnspython takes
  neither that nor a class before the TTL), and the generated owners do not
  become the current owner for a following blank-owner line.
* Owner names with non-ASCII characters are read as their UTF-8 octets (BIND);
  dnspython would IDNA-encode them.
* Names in the rdata of NS, CNAME, DNAME, PTR, MX, SOA and SRV keep their
  case: one whose zone part is not written in the zone origin's exact case is
  written absolute, as :mod:`secdns.wire` writes what a primary sent;
  dnspython relativizes it and loses the case.  Empty unknown-type rdata is
  ``\\# 0`` (dnspython adds a trailing space).
* Records are returned one per line, in file order, with the TTL each line
  states: nothing is merged, deduplicated or dropped.  BIND also gives every
  record of an RRset the TTL of the first one ("TTL set to prior TTL") and
  drops out-of-zone records; dnspython's zones keep the lowest TTL and drop
  out-of-zone records.  Here an out-of-zone record is kept with an absolute
  owner, for the caller to report.
* The zone's class is the first record's (IN unless it states another, such
  as CH or HS); a record of any other class is an error.

Not supported: quoted owner names, and quoted strings continued onto the
next line by a backslash-newline escape (both are errors).  ``$DATE`` is
accepted and ignored.

Speed comes from reading each physical line with ``str.split`` when it has no
quote, backslash or parenthesis; caching owner text; dictionaries for class
and type mnemonics; and rendering the common types (A, AAAA, SRV in class
IN; NS, CNAME, DNAME, PTR, MX, TXT, SPF in any class) directly.  Anything else, and any
value the direct path is unsure about, goes through
``dns.rdata.from_text(...)`` and ``to_text(...)``, so the output is dnspython's
by construction.  The cyclic garbage collector is paused while a file is read:
the millions of records never form cycles, and its passes over them cost a
fifth of the time.

The package's rooms: :mod:`.lexer` (lines, tokens, TTL values, what a token
is), :mod:`.names` (the origin and name tokens), :mod:`.rdata` (rdata text,
the direct renderings), :mod:`.generate` (``$GENERATE``), and :mod:`.reader`
(the reading loop, TTL and class state, directives).  This module is the
public API: :func:`read_master` and :class:`MasterZone`.
"""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import dns.name

from secdns import wire
from secdns.errors import ZoneFileError
from secdns.masterfile.reader import (
    MAX_INCLUDE_DEPTH,
    STDIN,
    UNKNOWN_ORIGIN,
    Emit,
    OriginFound,
    Reader,
)

__all__ = ["MAX_INCLUDE_DEPTH", "STDIN", "Emit", "MasterZone", "read_master"]


@dataclasses.dataclass(slots=True)
class MasterZone:
    """The records of a master file, in file order, relative to ``origin``."""

    origin: dns.name.Name
    records: list[wire.Record] = dataclasses.field(repr=False)


def read_master(
    text: str,
    origin: dns.name.Name | None = None,
    *,
    filename: str = STDIN,
    default_ttl: int | None = None,
    include_dir: Path | None = None,
    max_records: int | None = None,
    emit: Emit | None = None,
) -> MasterZone:
    """Read master-file *text* into records relative to *origin*.

    *origin* is also the initial ``$ORIGIN``.  When it is None, the zone's
    origin is the first ``$ORIGIN`` other than the root, or the owner of the
    SOA record if that comes first; a file with neither is an error.
    *default_ttl* acts as a ``$TTL`` before the first line.  ``$INCLUDE``
    paths resolve against *include_dir*, else the directory of *filename*;
    they are refused when *filename* is ``"<stdin>"`` and *include_dir* is
    None.  More than *max_records* records is an error.

    Every syntax error raises :class:`ZoneFileError` naming the file and the
    1-based line (for a record spanning lines, the line it starts on).

    With *emit*, each record's fields go to ``emit(key, owner, ttl, rdclass,
    rdtype, rdata, serial)`` in file order instead of into a
    :class:`~secdns.wire.Record` (the returned zone has no records; *max_records*
    must be None): serve groups a zone's lines by owner as they are read
    (:mod:`secdns.server.load`).
    """
    if origin is not None and not origin.is_absolute():
        raise ValueError(f"origin must be absolute: {origin}")
    if include_dir is not None:
        base: Path | None = Path(include_dir)
    elif filename != STDIN:
        base = Path(filename).parent
    else:
        base = None
    # The reader allocates millions of objects that never form cycles: the
    # cyclic garbage collector's passes over them would only cost time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        if origin is None:
            origin = _discover_origin(text, filename, default_ttl, base)
        reader = Reader(origin, origin, default_ttl, base, max_records, emit)
        reader.read_top(text, filename)
        # The rdata renderer holds its own bound methods (a cycle) and, through the
        # names, caches of up to 2 x 131,072 tuples: break the cycle, so that they go
        # by reference counting rather than wait for the collector to walk them
        # (0.5 s at 1M records in verify, which pauses the collector).
        reader.rdata.fast.clear()
    finally:
        if collecting:
            gc.enable()
    return MasterZone(origin, reader.records)


def _discover_origin(
    text: str, filename: str, default_ttl: int | None, base: Path | None
) -> dns.name.Name:
    """Read until the first non-root ``$ORIGIN`` or SOA record; return that name."""
    reader = Reader(dns.name.root, UNKNOWN_ORIGIN, default_ttl, base, None)
    reader.discovering = True
    try:
        reader.read_top(text, filename)
    except OriginFound as found:
        return found.origin
    raise ZoneFileError(
        "the zone's origin is unknown: the file has no $ORIGIN and no SOA record", filename=filename
    )
