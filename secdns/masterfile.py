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
and type mnemonics; and rendering the common types (A, AAAA, NS, CNAME,
DNAME, PTR, MX, SRV, TXT, SPF in class IN) directly.  Anything else, and any
value the direct path is unsure about, goes through
``dns.rdata.from_text(...)`` and ``to_text(...)``, so the output is dnspython's
by construction.  The cyclic garbage collector is paused while a file is read:
the millions of records never form cycles, and its passes over them cost a
fifth of the time.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from secdns import wire
from secdns.errors import ZoneFileError

__all__ = ["MasterZone", "read_master"]

STDIN = "<stdin>"
MAX_INCLUDE_DEPTH = 20
_NAME_CACHE_LIMIT = 1 << 17
_CHUNK = 1 << 20
_MAX_TTL = 0x7FFFFFFF
_IN = dns.rdataclass.IN
_SOA = dns.rdatatype.SOA
_DIGITS = "0123456789"

_TTL_UNITS = re.compile(r"(?:[0-9]+[wdhmsWDHMS])+").fullmatch
_TTL_PART = re.compile(r"([0-9]+)([wdhmsWDHMS])").findall
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_SECONDS.update({unit.upper(): seconds for unit, seconds in _UNIT_SECONDS.items()})

# A token that dnspython renders unchanged as a name: printable ASCII without
# the characters dns.name escapes ('"().;\@$') and without a backslash escape.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#%&'*+,\-./:<=>?\[\]^_`{|}~]+").fullmatch

# One token of a line: a run of quoted strings and words (with backslash
# escapes) not separated by white space, kept together so that rdata such as
# SVCB's key="value" reaches dnspython as written; a comment; a parenthesis;
# or a lone quote or backslash (an error).
_TOKEN = re.compile(
    r'(?:"[^"\\]*(?:\\.[^"\\]*)*"|[^\s"();\\]+|\\.)+'
    r"|;.*"
    r"|[()]"
    r'|["\\]',
    re.S,
).findall

_NON_ASCII = re.compile(r"(\\*)([^\x00-\x7f]+)")
_GENERATE_RANGE = re.compile(r"([0-9]+)-([0-9]+)(?:/([0-9]+))?").fullmatch
_GENERATE_MODIFIER = re.compile(r"\{([+-]?[0-9]+)(?:,([0-9]+)(?:,([doxXnN]))?)?\}")
_GENERATE_MAX = 0x7FFFFFFF
_GENERATE_MAX_WIDTH = 127

# What a token between the owner and the rdata is (see _Reader.kind_of).
_KIND_CLASS = 0
_KIND_TTL = 1
_KIND_TYPE = 2
_KIND_OTHER = 3
_KIND_CACHE_LIMIT = 1 << 14

# The origin used while looking for the real one (see read_master); no name
# in a real zone file ends with this label.
_UNKNOWN_LABEL = b"\x00origin-unknown"
_UNKNOWN_ORIGIN = dns.name.Name((_UNKNOWN_LABEL, b""))


@dataclasses.dataclass(slots=True)
class MasterZone:
    """The records of a master file, in file order, relative to ``origin``."""

    origin: dns.name.Name
    records: list[wire.Record] = dataclasses.field(repr=False)


class _Bad(Exception):
    """A syntax error; the reader adds the file name and line number."""


class _OriginFound(Exception):
    """Raised while discovering the origin, once it is known."""

    def __init__(self, origin: dns.name.Name) -> None:
        super().__init__(origin.to_text())
        self.origin = origin


_Owner = tuple[tuple[bytes, ...], str]


def read_master(
    text: str,
    origin: dns.name.Name | None = None,
    *,
    filename: str = STDIN,
    default_ttl: int | None = None,
    include_dir: Path | None = None,
    max_records: int | None = None,
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
        reader = _Reader(origin, origin, default_ttl, base, max_records)
        reader.read_top(text, filename)
    finally:
        if collecting:
            gc.enable()
    return MasterZone(origin, reader.records)


def _discover_origin(
    text: str, filename: str, default_ttl: int | None, base: Path | None
) -> dns.name.Name:
    """Read until the first non-root ``$ORIGIN`` or SOA record; return that name."""
    reader = _Reader(dns.name.root, _UNKNOWN_ORIGIN, default_ttl, base, None)
    reader.discovering = True
    try:
        reader.read_top(text, filename)
    except _OriginFound as found:
        return found.origin
    raise ZoneFileError(
        "the zone's origin is unknown: the file has no $ORIGIN and no SOA record", filename=filename
    )


# --- small pure helpers ----------------------------------------------------


def _ttl_value(token: str) -> int:
    """The TTL *token* denotes as BIND reads it, or -1 if it is not a TTL."""
    if token.isdigit() and token.isascii():
        value = int(token)
    elif _TTL_UNITS(token):
        value = 0
        for number, unit in _TTL_PART(token):
            value += int(number) * _UNIT_SECONDS[unit]
    else:
        return -1
    if value > 0xFFFFFFFF:
        return -1
    return value if value <= _MAX_TTL else 0


def _ascii_escape(text: str) -> str:
    """Replace non-ASCII characters by ``\\DDD`` escapes of their UTF-8 octets."""

    def escape(match: re.Match[str]) -> str:
        slashes = match.group(1)
        if len(slashes) % 2:
            slashes = slashes[:-1]  # an escaped octet is the octet
        octets = match.group(2).encode("utf-8", "surrogateescape")
        return slashes + "".join([f"\\{octet:03d}" for octet in octets])

    return _NON_ASCII.sub(escape, text)


def _unquote(token: str) -> str:
    """The text inside a quoted token, or the token itself."""
    return token[1:-1] if token[:1] == '"' else token


def _class_text(rdclass: int) -> str:
    return dns.rdataclass.to_text(dns.rdataclass.RdataClass.make(rdclass))


def _message(err: BaseException) -> str:
    text = str(err)
    if not text:
        text = (type(err).__doc__ or type(err).__name__).strip()
    return text


def _chunks(text: str) -> Iterator[str]:
    """*text* in pieces of about a megabyte that end where a line ends."""
    start = 0
    end_of_text = len(text)
    while start < end_of_text:
        end = text.find("\n", start + _CHUNK)
        if end < 0:
            end = end_of_text
        yield text[start:end]
        start = end + 1


def _split_tokens(text: str) -> list[str]:
    """Tokens of one line of text, without comments or parentheses."""
    tokens: list[str] = []
    depth = 0
    for token in _TOKEN(text):
        first = token[0]
        if first == ";":
            break
        if first == "(":
            depth += 1
        elif first == ")":
            depth -= 1
            if depth < 0:
                raise _Bad("unbalanced parentheses: ')' without '('")
        elif token == '"':
            raise _Bad("unterminated quoted string")
        elif token == "\\":
            raise _Bad("backslash at the end of a line")
        else:
            tokens.append(token)
    if depth:
        raise _Bad("unbalanced parentheses: '(' without ')'")
    return tokens


def _nibbles(value: int, width: int, upper: bool) -> str:
    """BIND's ``${offset,width,n}``: hex nibbles, least significant first, dotted."""
    digits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    out: list[str] = []
    while True:
        out.append(digits[value & 0xF])
        value >>= 4
        if width > 0:
            width -= 1
        if width > 0 or value != 0:
            out.append(".")
            if width > 0:
                width -= 1
        if value == 0 and width == 0:
            return "".join(out)


def _generate_text(template: str, counter: int) -> str:
    """Substitute the ``$GENERATE`` counter into *template* as BIND's genname() does."""
    out: list[str] = []
    i = 0
    end = len(template)
    while i < end:
        char = template[i]
        if char == "\\":
            out.append(template[i : i + 2])
            i += 2
        elif char != "$":
            out.append(char)
            i += 1
        elif template.startswith("$", i + 1):
            out.append("$")
            i += 2
        else:
            i += 1
            offset, width, base = 0, 0, "d"
            if template.startswith("{", i):
                match = _GENERATE_MODIFIER.match(template, i)
                if match is None:
                    raise _Bad(f"bad $GENERATE modifier in {template!r}")
                offset = int(match.group(1))
                if match.group(2) is not None:
                    width = int(match.group(2))
                    if width > _GENERATE_MAX_WIDTH:
                        raise _Bad(f"$GENERATE width {width} is too large")
                if match.group(3) is not None:
                    base = match.group(3)
                i = match.end()
            value = counter + offset
            if value > _GENERATE_MAX:
                raise _Bad(f"$GENERATE value {value} is out of range")
            if base in "nN":
                if value < 0:
                    raise _Bad("negative $GENERATE value in nibble mode")
                out.append(_nibbles(value, width, base == "N"))
            else:
                out.append(format(value, base).zfill(width))
    return "".join(out)


# --- the reader ------------------------------------------------------------


class _Reader:
    """State shared by a master file and the files it includes."""

    def __init__(
        self,
        zone_origin: dns.name.Name,
        origin: dns.name.Name,
        default_ttl: int | None,
        base: Path | None,
        max_records: int | None,
    ) -> None:
        self.zone_origin = zone_origin
        self.okey = tuple(label.lower() for label in reversed(zone_origin.labels[:-1]))
        self.records: list[wire.Record] = []
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
            self.default_ttl = default_ttl if default_ttl <= _MAX_TTL else 0
            self.default_known = True
        else:
            self.default_ttl = 0
            self.default_known = False
        self.kinds: dict[str, tuple[int, int]] = {}
        self.fast: dict[int, Callable[[list[str], int], str | None]] = {
            dns.rdatatype.AAAA: self._fast_aaaa,
            dns.rdatatype.NS: self._fast_name,
            dns.rdatatype.CNAME: self._fast_name,
            dns.rdatatype.DNAME: self._fast_name,
            dns.rdatatype.PTR: self._fast_name,
            dns.rdatatype.MX: self._fast_mx,
            dns.rdatatype.SRV: self._fast_srv,
            dns.rdatatype.TXT: self._fast_txt,
            dns.rdatatype.SPF: self._fast_txt,
        }
        self.set_origin(origin)

    # -- origin and names --------------------------------------------------

    def set_origin(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.origin_key = tuple(label.lower() for label in reversed(origin.labels[:-1]))
        self.origin_texts = tuple(wire.label_text(label) for label in origin.labels[:-1])
        self.origin_wire = sum(map(len, self.origin_key)) + len(self.origin_key) + 1
        self.at_zone_origin = self.origin_key == self.okey
        self.names: dict[str, _Owner] = {}

    def name_entry(self, token: str) -> _Owner:
        """``(key, text)`` of the name *token* read relative to the current origin."""
        entry = self.names.get(token)
        if entry is None:
            entry = self._resolve(token)
            if len(self.names) >= _NAME_CACHE_LIMIT:
                self.names.clear()
            self.names[token] = entry
        return entry

    def _resolve(self, token: str) -> _Owner:
        if (
            self.at_zone_origin
            and "." not in token
            and len(token) < 64
            and token != "@"
            and (token.isalnum() and token.isascii() or _PLAIN_NAME(token))
        ):
            # The usual owner: one plain label under the zone's origin.
            if self.origin_wire + len(token) + 1 > 255:
                raise _Bad(f"bad name {token!r}: the name is longer than 255 octets")
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
                    raise _Bad(
                        f"bad name {token!r}: "
                        + ("a label is empty" if not part else "a label is too long")
                    )
            own = tuple([part.lower().encode() for part in reversed(parts)])
            if absolute:
                key, texts = own, parts
            else:
                key, texts = self.origin_key + own, tuple(parts) + self.origin_texts
            if sum(map(len, key)) + len(key) + 1 > 255:
                raise _Bad(f"bad name {token!r}: the name is longer than 255 octets")
        else:
            if token[0] == '"':
                raise _Bad(f"a quoted string cannot be a name: {token}")
            text = token if token.isascii() else _ascii_escape(token)
            try:
                name = dns.name.from_text(text, self.origin)
            except dns.exception.DNSException as err:
                raise _Bad(f"bad name {token!r}: {_message(err)}") from err
            labels = name.labels[:-1]
            key = tuple(label.lower() for label in reversed(labels))
            texts = [wire.label_text(label) for label in labels]
        depth = len(self.okey)
        if key[:depth] == self.okey:
            relative = len(key) - depth
            return key, ".".join(texts[:relative]) if relative else "@"
        return key, ".".join(texts) + "." if texts else "."

    def _name_from_token(self, token: str) -> dns.name.Name:
        """A dns.name.Name for *token* (for $ORIGIN and $INCLUDE), case kept."""
        if token[0] == '"':
            raise _Bad(f"a quoted string cannot be a name: {token}")
        text = token if token.isascii() else _ascii_escape(token)
        try:
            return dns.name.from_text(text, self.origin)
        except dns.exception.DNSException as err:
            raise _Bad(f"bad name {token!r}: {_message(err)}") from err

    # -- classes, types, rdata ---------------------------------------------

    def kind_of(self, token: str) -> tuple[int, int]:
        """``(kind, value)`` of a token where a class, TTL or type may stand (cached)."""
        entry = self.kinds.get(token)
        if entry is None:
            entry = (_KIND_OTHER, 0)
            if token[0] in _DIGITS:
                ttl = _ttl_value(token)
                if ttl >= 0:
                    entry = (_KIND_TTL, ttl)
            elif token[0] != '"':
                try:
                    rdclass = dns.rdataclass.from_text(token)
                    if rdclass and not dns.rdataclass.is_metaclass(rdclass):
                        entry = (_KIND_CLASS, int(rdclass))
                except (dns.exception.DNSException, ValueError):
                    try:
                        rdtype = dns.rdatatype.from_text(token)
                        if rdtype and not dns.rdatatype.is_metatype(rdtype):
                            entry = (_KIND_TYPE, int(rdtype))
                    except (dns.exception.DNSException, ValueError):
                        pass
            if len(self.kinds) < _KIND_CACHE_LIMIT:
                self.kinds[token] = entry
        return entry

    def type_of(self, token: str) -> int:
        """The type *token* names; raises :class:`_Bad` saying why if it names none."""
        kind, value = self.kind_of(token)
        if kind == _KIND_TYPE:
            return value
        if token[0] == '"':
            raise _Bad(f"expected a type, got a quoted string {token}")
        try:
            value = int(dns.rdatatype.from_text(token))
        except (dns.exception.DNSException, ValueError):
            if kind == _KIND_CLASS:
                raise _Bad(f"expected a type, got the class {token}") from None
            raise _Bad(f"unknown type {token!r}") from None
        raise _Bad(f"type {token} cannot appear in a zone file")

    def check_class(self, rdclass: int) -> int:
        """The zone's class: the first record's; every record must share it."""
        if self.zclass is None:
            self.zclass = rdclass
            if rdclass != _IN:
                self.fast = {}
        elif rdclass != self.zclass:
            raise _Bad(
                f"class {_class_text(rdclass)} differs from the zone's class "
                f"{_class_text(self.zclass)}"
            )
        return rdclass

    def rdata_object(self, rdtype: int, tokens: list[str], start: int) -> dns.rdata.Rdata:
        text = " ".join(tokens[start:])
        if not text.isascii():
            text = _ascii_escape(text)
        assert self.zclass is not None
        try:
            return dns.rdata.from_text(
                dns.rdataclass.RdataClass.make(self.zclass),
                dns.rdatatype.RdataType.make(rdtype),
                text,
                origin=self.origin,
                relativize=False,
            )
        except Exception as err:  # dnspython raises many types for bad rdata
            raise _Bad(f"bad {wire.type_text(rdtype)} rdata: {_message(err)}") from err

    def rdata_text(self, rdtype: int, tokens: list[str], start: int) -> str:
        """Canonical rdata text: directly for common types, else through dnspython."""
        convert = self.fast.get(rdtype)
        if convert is not None:
            text = convert(tokens, start)
            if text is not None:
                return text
        if rdtype == dns.rdatatype.A and self.zclass == _IN and len(tokens) == start + 1:
            try:
                socket.inet_pton(socket.AF_INET, tokens[start])
                return tokens[start]
            except (OSError, ValueError):
                pass
        return self.rdata_object(rdtype, tokens, start).to_text(
            origin=self.zone_origin, relativize=True
        )

    def _target(self, token: str) -> str | None:
        entry = self.names.get(token)
        if entry is None:
            if token[0] == '"':
                return None
            try:
                entry = self.name_entry(token)
            except _Bad:
                return None  # let dnspython word the error
        return entry[1]

    def _fast_name(self, tokens: list[str], start: int) -> str | None:
        if len(tokens) != start + 1:
            return None
        return self._target(tokens[start])

    def _fast_aaaa(self, tokens: list[str], start: int) -> str | None:
        if len(tokens) != start + 1:
            return None
        try:
            return wire.ipv6_text(socket.inet_pton(socket.AF_INET6, tokens[start]))
        except (OSError, ValueError):
            return None

    def _fast_mx(self, tokens: list[str], start: int) -> str | None:
        if len(tokens) != start + 2:
            return None
        preference = tokens[start]
        if not (preference.isdigit() and preference.isascii()) or int(preference) > 0xFFFF:
            return None
        target = self._target(tokens[start + 1])
        if target is None:
            return None
        return f"{int(preference)} {target}"

    def _fast_srv(self, tokens: list[str], start: int) -> str | None:
        if len(tokens) != start + 4:
            return None
        numbers = tokens[start : start + 3]
        for number in numbers:
            if not (number.isdigit() and number.isascii()) or int(number) > 0xFFFF:
                return None
        target = self._target(tokens[start + 3])
        if target is None:
            return None
        return f"{int(numbers[0])} {int(numbers[1])} {int(numbers[2])} {target}"

    def _fast_txt(self, tokens: list[str], start: int) -> str | None:
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

    # -- files -------------------------------------------------------------

    def read_top(self, text: str, filename: str) -> None:
        if filename != STDIN:
            self.stack.append(os.path.realpath(filename))
        self.read(text, filename, None)

    def read(self, text: str, filename: str, owner: _Owner | None) -> None:
        """Read one file's text; *owner* is the including file's current owner."""
        records = self.records
        append = records.append
        new_record = wire.Record
        inet_pton = socket.inet_pton
        af_inet = socket.AF_INET
        kinds = self.kinds
        kind_of = self.kind_of
        limit = self.limit
        limited = self.max_records is not None
        names = self.names
        zclass = self.zclass
        fast = self.fast
        is_in = zclass == _IN
        last_ttl = self.last_ttl
        ttl_known = self.ttl_known
        default_ttl = self.default_ttl
        default_known = self.default_known
        key: tuple[bytes, ...] = ()
        otext = ""  # no owner yet (a real owner's text is never empty)
        if owner is not None:
            key, otext = owner
        previous = None  # the last owner token, whose (key, text) is current
        resolve = self._resolve
        # Most files have no backslash or parenthesis at all: then a line needs
        # the tokenizer only if it has a quote.
        plain_file = not ("\\" in text or "(" in text or ")" in text)
        # Split the text a megabyte at a time: a list of every line of a large
        # file would cost a fifth of the peak memory.
        lines = itertools.chain.from_iterable(chunk.split("\n") for chunk in _chunks(text))
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
                    tokens, lineno = self._logical(line, lineno, numbered, filename)
                else:
                    semicolon = line.find(";")
                    tokens = (line[:semicolon] if semicolon >= 0 else line).split()
                if not tokens:
                    continue
                if first == " " or first == "\t":
                    if not otext:
                        raise _Bad("no owner name: the first record has a blank owner")
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
                            names, zclass, fast = self.names, self.zclass, self.fast
                            is_in = zclass == _IN
                            last_ttl, ttl_known = self.last_ttl, self.ttl_known
                            default_ttl, default_known = self.default_ttl, self.default_known
                            previous = None
                            continue
                        entry = names.get(token)
                        if entry is None:
                            entry = resolve(token)
                            if len(names) >= _NAME_CACHE_LIMIT:
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
                    if kind == _KIND_CLASS:
                        rdclass = value
                        i += 1
                        token = tokens[i]
                        kind, value = kinds.get(token) or kind_of(token)
                    if kind == _KIND_TTL:
                        ttl = value
                        i += 1
                        token = tokens[i]
                        kind, value = kinds.get(token) or kind_of(token)
                        if kind == _KIND_CLASS and not rdclass:
                            rdclass = value
                            i += 1
                            token = tokens[i]
                            kind, value = kinds.get(token) or kind_of(token)
                except IndexError:
                    raise _Bad("incomplete record: no type") from None
                if kind != _KIND_TYPE:
                    self.type_of(token)  # raises the right error
                rdtype = value
                if rdclass != zclass:
                    if rdclass == 0:
                        if zclass is None:
                            zclass = self.check_class(_IN)
                    else:
                        zclass = self.check_class(rdclass)
                    fast = self.fast
                    is_in = zclass == _IN
                if ttl >= 0:
                    last_ttl = ttl
                    ttl_known = True
                elif default_known:
                    ttl = default_ttl
                elif ttl_known:
                    ttl = last_ttl
                elif rdtype != _SOA:
                    raise _Bad("no TTL specified, no $TTL and no previous TTL")

                start = i + 1
                if rdtype == 1 and is_in and len(tokens) == start + 1:
                    rdata = tokens[start]
                    try:
                        inet_pton(af_inet, rdata)
                    except (OSError, ValueError):
                        rdata = self.rdata_text(rdtype, tokens, start)
                    append(new_record(key, otext, ttl, zclass, rdtype, rdata, None))
                elif rdtype == _SOA:
                    self.last_ttl, self.ttl_known = last_ttl, ttl_known
                    self.zclass = zclass
                    self.soa(key, otext, ttl, tokens, start)
                    last_ttl, ttl_known = self.last_ttl, self.ttl_known
                    default_ttl, default_known = self.default_ttl, self.default_known
                else:
                    convert = fast.get(rdtype)
                    direct = convert(tokens, start) if convert is not None else None
                    rdata = self.rdata_text(rdtype, tokens, start) if direct is None else direct
                    append(new_record(key, otext, ttl, zclass, rdtype, rdata, None))
                if limited and len(records) > limit:
                    raise _Bad(f"more than {self.max_records} records")
            except _Bad as err:
                raise ZoneFileError(str(err), filename=filename, line=start_line) from (
                    err.__cause__
                )
        self.last_ttl, self.ttl_known = last_ttl, ttl_known
        self.zclass = zclass

    def _logical(
        self, line: str, lineno: int, numbered: enumerate[str], filename: str
    ) -> tuple[list[str], int]:
        """Tokens of the record starting on *line*, reading on while a '(' is open."""
        tokens: list[str] = []
        depth = 0
        opened = lineno
        while True:
            for token in _TOKEN(line):
                first = token[0]
                if first == ";":
                    break
                if first == "(":
                    if depth == 0:
                        opened = lineno
                    depth += 1
                elif first == ")":
                    if depth == 0:
                        raise ZoneFileError(
                            "unbalanced parentheses: ')' without '('",
                            filename=filename,
                            line=lineno,
                        )
                    depth -= 1
                elif token == '"':
                    raise ZoneFileError(
                        "unterminated quoted string", filename=filename, line=lineno
                    )
                elif token == "\\":
                    raise ZoneFileError(
                        "backslash at the end of a line", filename=filename, line=lineno
                    )
                else:
                    tokens.append(token)
            if depth == 0:
                return tokens, lineno
            try:
                lineno, line = next(numbered)
            except StopIteration:
                raise ZoneFileError(
                    "unbalanced parentheses: '(' still open at the end of the file",
                    filename=filename,
                    line=opened,
                ) from None

    def soa(
        self, key: tuple[bytes, ...], otext: str, ttl: int, tokens: list[str], start: int
    ) -> None:
        rdata = self.rdata_object(_SOA, tokens, start)
        serial = rdata.serial  # type: ignore[attr-defined]
        if ttl < 0:
            # BIND: "no TTL specified; using SOA MINTTL instead", and it becomes the default.
            minimum = rdata.minimum  # type: ignore[attr-defined]
            ttl = minimum if minimum <= _MAX_TTL else 0
            self.default_ttl = self.last_ttl = ttl
            self.default_known = True
        text = rdata.to_text(origin=self.zone_origin, relativize=True)
        assert self.zclass is not None
        self.records.append(wire.Record(key, otext, ttl, self.zclass, _SOA, text, serial))
        if self.discovering:
            if key[:1] == (_UNKNOWN_LABEL,):
                raise _Bad(
                    "the zone's origin is unknown: the SOA owner is relative and no "
                    "$ORIGIN comes before it"
                )
            raise _OriginFound(dns.name.from_text(otext))

    # -- directives --------------------------------------------------------

    def directive(
        self, tokens: list[str], filename: str, lineno: int, owner: _Owner | None
    ) -> None:
        word = tokens[0].upper()
        args = tokens[1:]
        if word == "$ORIGIN":
            if len(args) != 1:
                raise _Bad("$ORIGIN needs exactly one name")
            origin = self._name_from_token(args[0])
            if self.discovering:
                if origin.labels[-2:-1] == (_UNKNOWN_LABEL,):
                    raise _Bad(f"relative $ORIGIN {args[0]} but the origin is unknown")
                if origin != dns.name.root:
                    raise _OriginFound(origin)
            self.set_origin(origin)
        elif word == "$TTL":
            if len(args) != 1:
                raise _Bad("$TTL needs exactly one TTL")
            ttl = _ttl_value(args[0])
            if ttl < 0:
                raise _Bad(f"bad $TTL value {args[0]!r}")
            self.default_ttl = self.last_ttl = ttl
            self.default_known = True
        elif word == "$INCLUDE":
            self.include(args, filename, owner)
        elif word == "$GENERATE":
            self.generate(args, lineno)
        elif word == "$DATE":
            if len(args) != 1 or not (args[0].isdigit() and len(args[0]) == 14):
                raise _Bad("$DATE needs one YYYYMMDDHHMMSS time")
        else:
            raise _Bad(f"unknown directive {tokens[0]}")

    def include(self, args: list[str], filename: str, owner: _Owner | None) -> None:
        if not args:
            raise _Bad("$INCLUDE needs a file name")
        if len(args) > 2:
            raise _Bad("$INCLUDE takes a file name and an optional origin; extra tokens follow")
        if self.base is None:
            raise _Bad(
                "$INCLUDE is refused when reading standard input "
                "(no directory to resolve it against)"
            )
        name = _unquote(args[0])
        if not name:
            raise _Bad("$INCLUDE needs a file name")
        origin = self._name_from_token(args[1]) if len(args) == 2 else self.origin
        path = Path(name)
        if not path.is_absolute():
            path = self.base / path
        real = os.path.realpath(path)
        if real in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(real) :], real])
            raise _Bad(f"$INCLUDE {name}: include loop ({chain})")
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise _Bad(f"$INCLUDE {name}: includes nested more than {MAX_INCLUDE_DEPTH} deep")
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            raise _Bad(f"$INCLUDE {name}: no such file ({path})") from None
        except OSError as err:
            raise _Bad(f"$INCLUDE {name}: cannot read {path}: {err.strerror}") from None
        saved = self.origin
        self.stack.append(real)
        self.set_origin(origin)
        try:
            self.read(text, str(path), owner)
        finally:
            self.stack.pop()
        self.set_origin(saved)

    def generate(self, args: list[str], lineno: int) -> None:
        """``$GENERATE range lhs [class] [ttl] [class] type rhs`` (BIND 9)."""
        if len(args) < 4:
            raise _Bad("$GENERATE needs a range, an owner, a type and rdata")
        match = _GENERATE_RANGE(args[0])
        if match is None:
            raise _Bad(f"bad $GENERATE range {args[0]!r} (start-stop[/step])")
        start, stop = int(match.group(1)), int(match.group(2))
        step = int(match.group(3)) if match.group(3) is not None else 1
        if stop < start or step < 1 or stop > _GENERATE_MAX:
            raise _Bad(f"bad $GENERATE range {args[0]!r}")
        lhs = args[1]
        if lhs[0] == '"':
            raise _Bad("the $GENERATE owner cannot be a quoted string")
        i = 2
        rdclass = 0
        ttl = -1
        kind, value = self.kind_of(args[i])
        if kind == _KIND_CLASS:
            rdclass = value
            i += 1
        if i < len(args):
            kind, value = self.kind_of(args[i])
            if kind == _KIND_TTL:
                ttl = value
                i += 1
        if not rdclass and i < len(args):
            kind, value = self.kind_of(args[i])
            if kind == _KIND_CLASS:
                rdclass = value
                i += 1
        if len(args) < i + 2:
            raise _Bad("$GENERATE needs a type and rdata")
        if len(args) > i + 2:
            raise _Bad("extra tokens after the $GENERATE rdata (quote rdata with spaces)")
        rdtype = self.type_of(args[i])
        rhs = _unquote(args[i + 1])
        if ttl >= 0:
            self.last_ttl = ttl
            self.ttl_known = True
        elif self.default_known:
            ttl = self.default_ttl
        elif self.ttl_known:
            ttl = self.last_ttl
        else:
            raise _Bad("no TTL specified, no $TTL and no previous TTL")
        zclass = self.check_class(rdclass or self.zclass or _IN)
        records = self.records
        for counter in range(start, stop + 1, step):
            owner = _generate_text(lhs, counter)
            key, otext = self._resolve(owner)
            tokens = _split_tokens(_generate_text(rhs, counter))
            if rdtype == _SOA:
                rdata = self.rdata_object(rdtype, tokens, 0)
                text = rdata.to_text(origin=self.zone_origin, relativize=True)
                serial: int | None = rdata.serial  # type: ignore[attr-defined]
            else:
                text = self.rdata_text(rdtype, tokens, 0)
                serial = None
            records.append(wire.Record(key, otext, ttl, zclass, rdtype, text, serial))
            if len(records) > self.limit:
                raise _Bad(f"more than {self.max_records} records")
