"""The master-file reader: records, TTL and class state, and directives.

:class:`Reader` holds what a master file and the files it ``$INCLUDE``\\ s
share: the records read so far, BIND's TTL state, the zone's class, the
include stack, and the :class:`~secdns.masterfile.names.Names`,
:class:`~secdns.masterfile.rdata.RdataText` and
:class:`~secdns.masterfile.lexer.Kinds` helpers.  :meth:`Reader.read` is the
hot loop (about a microsecond a record): it keeps its state in local
variables and hands anything unusual (directives, SOA records, parentheses
and quotes, uncommon types) to the helpers.  The rules it follows are in the
docstring of :mod:`secdns.masterfile`.  With an :data:`Emit` function it hands each
record's fields to it instead of making :class:`secdns.wire.Record` objects, and
its owner keys are the served zone's (``serve`` groups a file's lines by owner as
they are read: :mod:`secdns.server.load`).
"""

from __future__ import annotations

import itertools
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.name
import dns.rdataclass
import dns.rdatatype

from secdns import wire
from secdns.errors import ZoneFileError
from secdns.masterfile import lexer
from secdns.masterfile.generate import parse_generate
from secdns.masterfile.lexer import (
    KIND_CLASS,
    KIND_TTL,
    KIND_TYPE,
    MAX_TTL,
    BadSyntax,
    Kinds,
    chunks,
    ttl_value,
    unquote,
)
from secdns.masterfile.names import NAME_CACHE_LIMIT, Names, Owner
from secdns.masterfile.rdata import RdataText

STDIN = "<stdin>"
MAX_INCLUDE_DEPTH = 20


def _open_nonblocking(path: str, flags: int) -> int:
    """``open`` that does not wait: a FIFO opens at once (and is then refused)."""
    return os.open(path, flags | os.O_NONBLOCK)


_IN = int(dns.rdataclass.IN)  # plain ints: the hot loop compares them with ints
_SOA = int(dns.rdatatype.SOA)

# The origin used while looking for the real one (see read_master); no name
# in a real zone file ends with this label.
UNKNOWN_LABEL = b"\x00origin-unknown"
UNKNOWN_ORIGIN = dns.name.Name((UNKNOWN_LABEL, b""))


Emit = Callable[[str, str, int, int, int, str, "int | None"], None]
"""Where a reader in emitting mode sends each record instead of making a
:class:`secdns.wire.Record`: ``(key, owner, ttl, rdclass, rdtype, rdata, serial)``,
the Record's fields in its order (the SOA's serial, else None), but the key the
served zone's (:meth:`secdns.masterfile.names.Names.text_key`)."""


class OriginFound(Exception):
    """Raised while discovering the origin, once it is known."""

    def __init__(self, origin: dns.name.Name) -> None:
        super().__init__(origin.to_text())
        self.origin = origin


def _class_text(rdclass: int) -> str:
    return dns.rdataclass.to_text(dns.rdataclass.RdataClass.make(rdclass))


class Reader:
    """State shared by a master file and the files it includes."""

    def __init__(
        self,
        zone_origin: dns.name.Name,
        origin: dns.name.Name,
        default_ttl: int | None,
        base: Path | None,
        max_records: int | None,
        emit: Emit | None = None,
    ) -> None:
        if emit is not None and max_records is not None:
            raise ValueError("an emitting reader does not count records: no max_records")
        self.zone_origin = zone_origin
        self.emit = emit
        self.records: list[wire.Record] = []  # (stays empty when emitting)
        self.limit = max_records if max_records is not None else 1 << 62
        self.max_records = max_records
        self.base = base
        self.stack: list[str] = []
        self.discovering = False
        self.zclass: int | None = None
        # BIND's TTL state (lib/dns/master.c: ttl, ttl_known, default_ttl...).
        self.last_ttl = 0
        self.ttl_known = False
        if default_ttl is not None:
            if not 0 <= default_ttl <= 0xFFFFFFFF:
                raise ValueError(f"default_ttl out of range: {default_ttl}")
            self.default_ttl = default_ttl if default_ttl <= MAX_TTL else 0
            self.default_known = True
        else:
            self.default_ttl = 0
            self.default_known = False
        self.kinds = Kinds()
        self.names = Names(zone_origin, origin, text_keys=emit is not None)
        self.rdata = RdataText(self.names)

    def check_class(self, rdclass: int) -> int:
        """The zone's class: the first record's; every record must share it."""
        if self.zclass is None:
            self.zclass = rdclass
            self.rdata.set_class(rdclass)
        elif rdclass != self.zclass:
            raise BadSyntax(
                f"class {_class_text(rdclass)} differs from the zone's class "
                f"{_class_text(self.zclass)}"
            )
        return rdclass

    def state(self) -> tuple[object, ...]:
        """What reading a line that names its owner depends on besides the line: the
        origin's labels as written, the zone's class, the default TTL, the include
        stack and, last, the previous TTL (None while a default is known, when it is
        not used).  Two readers in equal states read such a line alike; the previous
        TTL does not matter to a line that states its TTL, nor to the lines after it
        (:mod:`secdns.server.loadsplit` compares states where it splits a file)."""
        default = self.default_ttl if self.default_known else None
        previous = None if self.default_known else (self.ttl_known, self.last_ttl)
        return (self.names.origin.labels, self.zclass, default, tuple(self.stack), previous)

    # -- files -------------------------------------------------------------

    def read_top(self, text: str, filename: str) -> None:
        if filename != STDIN:
            self.stack.append(os.path.realpath(filename))
        self.read(text, filename, None)

    def read(self, text: str, filename: str, owner: Owner | None) -> None:
        """Read one file's text; *owner* is the including file's current owner.

        One function, about 150 lines, because it is the hot loop: every
        record passes here, and the state it needs lives in local variables
        (the attributes are written back around the calls that use them).
        """
        records = self.records
        append = records.append
        new_record = wire.Record
        emit = self.emit
        inet_pton = socket.inet_pton
        af_inet = socket.AF_INET
        kinds = self.kinds.cache
        kind_of = self.kinds.kind_of
        limit = self.limit
        limited = self.max_records is not None
        names = self.names.cache
        resolve = self.names.resolve
        rdata_text = self.rdata.text
        logical_tokens = lexer.logical_tokens
        zclass = self.zclass
        fast = self.rdata.fast
        is_in = zclass == _IN
        last_ttl = self.last_ttl
        ttl_known = self.ttl_known
        default_ttl = self.default_ttl
        default_known = self.default_known
        key: Any = ()  # see Names: labels, or with an emit the served zone's key
        otext = ""  # no owner yet (a real owner's text is never empty)
        if owner is not None:
            key, otext = owner
        previous = None  # the last owner token, whose (key, text) is current
        # Most files have no backslash or parenthesis at all: then a line needs
        # the tokenizer only if it has a quote.
        plain_file = not ("\\" in text or "(" in text or ")" in text)
        # Split the text a megabyte at a time: a list of every line of a large
        # file would cost a fifth of the peak memory.
        lines = itertools.chain.from_iterable(chunk.split("\n") for chunk in chunks(text))
        numbered = enumerate(lines, 1)
        lineno = 0
        for lineno, line in numbered:  # noqa: B007 (numbered is also advanced inside)
            if not line:
                continue
            first = line[0]
            if first == ";":
                continue
            start_line = lineno
            try:
                if (
                    '"' in line
                    if plain_file
                    else '"' in line or "\\" in line or "(" in line or ")" in line
                ):
                    tokens, lineno = logical_tokens(line, lineno, numbered)
                else:
                    semicolon = line.find(";")
                    tokens = (line[:semicolon] if semicolon >= 0 else line).split()
                if not tokens:
                    continue
                if first == " " or first == "\t":
                    if not otext:
                        raise BadSyntax("no owner name: the first record has a blank owner")
                    i = 0
                else:
                    token = tokens[0]
                    if token != previous:
                        if token[0] == "$":
                            self.last_ttl, self.ttl_known = last_ttl, ttl_known
                            self.zclass = zclass
                            self.directive(
                                tokens, filename, start_line, (key, otext) if otext else None
                            )
                            zclass, fast = self.zclass, self.rdata.fast
                            is_in = zclass == _IN
                            last_ttl, ttl_known = self.last_ttl, self.ttl_known
                            default_ttl, default_known = self.default_ttl, self.default_known
                            previous = None
                            continue
                        entry = names.get(token)
                        if entry is None:
                            entry = resolve(token)
                            if len(names) >= NAME_CACHE_LIMIT:
                                names.clear()
                            names[token] = entry
                        key, otext = entry
                        previous = token
                    i = 1

                # [class] [ttl] [class] type, as BIND reads them
                rdclass = 0
                ttl = -1
                try:
                    token = tokens[i]
                    kind, value = kinds.get(token) or kind_of(token)
                    if kind == KIND_CLASS:
                        rdclass = value
                        i += 1
                        token = tokens[i]
                        kind, value = kinds.get(token) or kind_of(token)
                    if kind == KIND_TTL:
                        ttl = value
                        i += 1
                        token = tokens[i]
                        kind, value = kinds.get(token) or kind_of(token)
                        if kind == KIND_CLASS and not rdclass:
                            rdclass = value
                            i += 1
                            token = tokens[i]
                            kind, value = kinds.get(token) or kind_of(token)
                except IndexError:
                    raise BadSyntax("incomplete record: no type") from None
                if kind != KIND_TYPE:
                    self.kinds.type_of(token)  # raises the right error
                rdtype = value
                if rdclass != zclass:
                    if rdclass == 0:
                        if zclass is None:
                            zclass = self.check_class(_IN)
                    else:
                        zclass = self.check_class(rdclass)
                    fast = self.rdata.fast
                    is_in = zclass == _IN
                if ttl >= 0:
                    last_ttl = ttl
                    ttl_known = True
                elif default_known:
                    ttl = default_ttl
                elif ttl_known:
                    ttl = last_ttl
                elif rdtype != _SOA:
                    raise BadSyntax("no TTL specified, no $TTL and no previous TTL")

                start = i + 1
                if rdtype == 1 and is_in and len(tokens) == start + 1:
                    rdata = tokens[start]
                    try:
                        inet_pton(af_inet, rdata)
                    except (OSError, ValueError):
                        rdata = rdata_text(rdtype, tokens, start)
                    if emit is None:
                        append(new_record(key, otext, ttl, zclass, rdtype, rdata, None))
                    else:
                        emit(key, otext, ttl, zclass, rdtype, rdata, None)
                elif rdtype == _SOA:
                    self.last_ttl, self.ttl_known = last_ttl, ttl_known
                    self.zclass = zclass
                    self.soa(key, otext, ttl, tokens, start)
                    last_ttl, ttl_known = self.last_ttl, self.ttl_known
                    default_ttl, default_known = self.default_ttl, self.default_known
                else:
                    convert = fast.get(rdtype)
                    direct = convert(tokens, start) if convert is not None else None
                    rdata = rdata_text(rdtype, tokens, start) if direct is None else direct
                    if emit is None:
                        append(new_record(key, otext, ttl, zclass, rdtype, rdata, None))
                    else:
                        emit(key, otext, ttl, zclass, rdtype, rdata, None)
                if limited and len(records) > limit:
                    raise BadSyntax(f"more than {self.max_records} records")
            except BadSyntax as err:
                where = start_line if err.line is None else err.line
                raise ZoneFileError(str(err), filename=filename, line=where) from err.__cause__
        self.last_ttl, self.ttl_known = last_ttl, ttl_known
        self.zclass = zclass

    def soa(self, key: Any, otext: str, ttl: int, tokens: list[str], start: int) -> None:
        text, serial, minimum = self.rdata.soa(tokens, start)
        if ttl < 0:
            # BIND: "no TTL specified; using SOA MINTTL instead", and it becomes the default.
            ttl = minimum if minimum <= MAX_TTL else 0
            self.default_ttl = self.last_ttl = ttl
            self.default_known = True
        assert self.zclass is not None
        self.record(key, otext, ttl, self.zclass, _SOA, text, serial)
        if self.discovering:
            if key[:1] == (UNKNOWN_LABEL,):
                raise BadSyntax(
                    "the zone's origin is unknown: the SOA owner is relative and no "
                    "$ORIGIN comes before it"
                )
            raise OriginFound(dns.name.from_text(otext))

    def record(
        self,
        key: Any,  # see Names: labels, or with an emit the served zone's key
        otext: str,
        ttl: int,
        rdclass: int,
        rdtype: int,
        rdata: str,
        serial: int | None,
    ) -> None:
        """One record the hot loop does not make itself (SOA, ``$GENERATE``)."""
        if self.emit is None:
            self.records.append(wire.Record(key, otext, ttl, rdclass, rdtype, rdata, serial))
        else:
            self.emit(key, otext, ttl, rdclass, rdtype, rdata, serial)

    # -- directives --------------------------------------------------------

    def directive(self, tokens: list[str], filename: str, lineno: int, owner: Owner | None) -> None:
        word = tokens[0].upper()
        args = tokens[1:]
        if word == "$ORIGIN":
            if len(args) != 1:
                raise BadSyntax("$ORIGIN needs exactly one name")
            origin = self.names.name(args[0])
            if self.discovering:
                if origin.labels[-2:-1] == (UNKNOWN_LABEL,):
                    raise BadSyntax(f"relative $ORIGIN {args[0]} but the origin is unknown")
                if origin != dns.name.root:
                    raise OriginFound(origin)
            self.names.set_origin(origin)
        elif word == "$TTL":
            if len(args) != 1:
                raise BadSyntax("$TTL needs exactly one TTL")
            ttl = ttl_value(args[0])
            if ttl < 0:
                raise BadSyntax(f"bad $TTL value {args[0]!r}")
            self.default_ttl = self.last_ttl = ttl
            self.default_known = True
        elif word == "$INCLUDE":
            self.include(args, filename, owner)
        elif word == "$GENERATE":
            self.generate(args)
        elif word == "$DATE":
            if len(args) != 1 or not (args[0].isdigit() and len(args[0]) == 14):
                raise BadSyntax("$DATE needs one YYYYMMDDHHMMSS time")
        else:
            raise BadSyntax(f"unknown directive {tokens[0]}")

    def include(self, args: list[str], filename: str, owner: Owner | None) -> None:
        if not args:
            raise BadSyntax("$INCLUDE needs a file name")
        if len(args) > 2:
            raise BadSyntax(
                "$INCLUDE takes a file name and an optional origin; extra tokens follow"
            )
        if self.base is None:
            raise BadSyntax(
                "$INCLUDE is refused when reading standard input "
                "(no directory to resolve it against)"
            )
        name = unquote(args[0])
        if not name:
            raise BadSyntax("$INCLUDE needs a file name")
        origin = self.names.name(args[1]) if len(args) == 2 else self.names.origin
        path = Path(name)
        if not path.is_absolute():
            path = self.base / path
        real = os.path.realpath(path)
        if real in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(real) :], real])
            raise BadSyntax(f"$INCLUDE {name}: include loop ({chain})")
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise BadSyntax(f"$INCLUDE {name}: includes nested more than {MAX_INCLUDE_DEPTH} deep")
        try:
            # a regular file only: a FIFO would wait for a writer for ever (a stranger's
            # pull -o, verify and diff hung on one), a device never end
            with open(path, "rb", opener=_open_nonblocking) as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise BadSyntax(f"$INCLUDE {name}: {path} is not a regular file")
                text = handle.read().decode("utf-8", errors="surrogateescape")
        except FileNotFoundError:
            raise BadSyntax(f"$INCLUDE {name}: no such file ({path})") from None
        except IsADirectoryError:
            raise BadSyntax(f"$INCLUDE {name}: {path} is not a regular file") from None
        except OSError as err:
            raise BadSyntax(f"$INCLUDE {name}: cannot read {path}: {err.strerror}") from None
        saved = self.names.origin
        self.stack.append(real)
        self.names.set_origin(origin)
        try:
            self.read(text, str(path), owner)
        finally:
            self.stack.pop()
        self.names.set_origin(saved)

    def generate(self, args: list[str]) -> None:
        """``$GENERATE``: its records, with the TTL and class rules of other records.

        The generated owners do not become the current owner for a following
        blank-owner line (BIND).
        """
        spec = parse_generate(args, self.kinds)
        ttl = spec.ttl
        if ttl >= 0:
            self.last_ttl = ttl
            self.ttl_known = True
        elif self.default_known:
            ttl = self.default_ttl
        elif self.ttl_known:
            ttl = self.last_ttl
        else:
            raise BadSyntax("no TTL specified, no $TTL and no previous TTL")
        zclass = self.check_class(spec.rdclass or self.zclass or _IN)
        rdtype = spec.rdtype
        records = self.records
        for counter in spec.counters():
            key, otext = self.names.resolve(spec.owner(counter))
            tokens = spec.rdata(counter)
            serial: int | None = None
            if rdtype == _SOA:
                text, serial, _ = self.rdata.soa(tokens, 0)
            else:
                text = self.rdata.text(rdtype, tokens, 0)
            self.record(key, otext, ttl, zclass, rdtype, text, serial)
            if len(records) > self.limit:
                raise BadSyntax(f"more than {self.max_records} records")
