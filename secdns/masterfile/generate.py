"""BIND's ``$GENERATE range lhs [class] [ttl] [class] type rhs`` directive.

:func:`parse_generate` reads the directive's arguments into a
:class:`Generate`; its methods give each generated owner text
and rdata tokens, substituting the counter as BIND's ``genname()``
(``lib/dns/master.c``) does: ``$``, ``$$`` for a dollar, ``\\$``, and
``${offset[,width[,base]]}`` with the bases d, o, x, X and BIND's nibble
modes n and N.  The rdata is one token (quote it if it has spaces, e.g.
``MX "10 mx$"``).  The reader applies TTL and class defaults and renders the
records; nothing here knows about names or rdata.
"""

from __future__ import annotations

import dataclasses
import re

from secdns.masterfile.lexer import KIND_CLASS, KIND_TTL, BadSyntax, Kinds, split_tokens, unquote

_RANGE = re.compile(r"([0-9]+)-([0-9]+)(?:/([0-9]+))?").fullmatch
_MODIFIER = re.compile(r"\{([+-]?[0-9]+)(?:,([0-9]+)(?:,([doxXnN]))?)?\}")
_MAX = 0x7FFFFFFF
_MAX_WIDTH = 127


@dataclasses.dataclass(frozen=True, slots=True)
class Generate:
    """One ``$GENERATE`` line: *rdclass* 0 and *ttl* -1 when the line states none."""

    start: int
    stop: int
    step: int
    lhs: str
    rdclass: int
    ttl: int
    rdtype: int
    rhs: str

    def counters(self) -> range:
        return range(self.start, self.stop + 1, self.step)

    def owner(self, counter: int) -> str:
        """The owner's text for *counter*."""
        return generate_text(self.lhs, counter)

    def rdata(self, counter: int) -> list[str]:
        """The rdata's tokens for *counter*."""
        return split_tokens(generate_text(self.rhs, counter))


def parse_generate(args: list[str], kinds: Kinds) -> Generate:
    """The arguments after ``$GENERATE``; :class:`BadSyntax` saying what is wrong."""
    if len(args) < 4:
        raise BadSyntax("$GENERATE needs a range, an owner, a type and rdata")
    match = _RANGE(args[0])
    if match is None:
        raise BadSyntax(f"bad $GENERATE range {args[0]!r} (start-stop[/step])")
    start, stop = int(match.group(1)), int(match.group(2))
    step = int(match.group(3)) if match.group(3) is not None else 1
    if stop < start or step < 1 or stop > _MAX:
        raise BadSyntax(f"bad $GENERATE range {args[0]!r}")
    lhs = args[1]
    if lhs[0] == '"':
        raise BadSyntax("the $GENERATE owner cannot be a quoted string")
    i = 2
    rdclass = 0
    ttl = -1
    kind, value = kinds.kind_of(args[i])
    if kind == KIND_CLASS:
        rdclass = value
        i += 1
    if i < len(args):
        kind, value = kinds.kind_of(args[i])
        if kind == KIND_TTL:
            ttl = value
            i += 1
    if not rdclass and i < len(args):
        kind, value = kinds.kind_of(args[i])
        if kind == KIND_CLASS:
            rdclass = value
            i += 1
    if len(args) < i + 2:
        raise BadSyntax("$GENERATE needs a type and rdata")
    if len(args) > i + 2:
        raise BadSyntax("extra tokens after the $GENERATE rdata (quote rdata with spaces)")
    rdtype = kinds.type_of(args[i])
    return Generate(start, stop, step, lhs, rdclass, ttl, rdtype, unquote(args[i + 1]))


def nibbles(value: int, width: int, upper: bool) -> str:
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


def generate_text(template: str, counter: int) -> str:
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
                match = _MODIFIER.match(template, i)
                if match is None:
                    raise BadSyntax(f"bad $GENERATE modifier in {template!r}")
                offset = int(match.group(1))
                if match.group(2) is not None:
                    width = int(match.group(2))
                    if width > _MAX_WIDTH:
                        raise BadSyntax(f"$GENERATE width {width} is too large")
                if match.group(3) is not None:
                    base = match.group(3)
                i = match.end()
            value = counter + offset
            if value > _MAX:
                raise BadSyntax(f"$GENERATE value {value} is out of range")
            if base in "nN":
                if value < 0:
                    raise BadSyntax("negative $GENERATE value in nibble mode")
                out.append(nibbles(value, width, base == "N"))
            else:
                out.append(format(value, base).zfill(width))
    return "".join(out)
