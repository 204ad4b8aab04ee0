"""The lexical layer of master files: lines, tokens, TTL values and token kinds.

A master file is read a megabyte of text at a time (:func:`chunks`), a line
at a time.  A line without quote, backslash or parenthesis is split with
``str.split`` by the reader itself; the others go through
:func:`logical_tokens`, which joins the lines of a parenthesised record (RFC
1035 section 5.1) and drops comments.  :class:`Kinds` says what a token that
may stand between the owner and the rdata is (class, TTL, type), as BIND reads
it, with a cache.  Nothing here knows about names or rdata.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import dns.exception
import dns.rdataclass
import dns.rdatatype

MAX_TTL = 0x7FFFFFFF
CHUNK = 1 << 20  # about how much text is split into lines at a time
DIGITS = "0123456789"

_TTL_UNITS = re.compile(r"(?:[0-9]+[wdhmsWDHMS])+").fullmatch
_TTL_PART = re.compile(r"([0-9]+)([wdhmsWDHMS])").findall
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_SECONDS.update({unit.upper(): seconds for unit, seconds in _UNIT_SECONDS.items()})

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

# What a token between the owner and the rdata is (see Kinds.kind_of).
KIND_CLASS = 0
KIND_TTL = 1
KIND_TYPE = 2
KIND_OTHER = 3
_KIND_CACHE_LIMIT = 1 << 14


class BadSyntax(Exception):
    """A syntax error; the reader adds the file name and, unless given, the record's line."""

    def __init__(self, text: str, line: int | None = None) -> None:
        super().__init__(text)
        self.line = line


def message(err: BaseException) -> str:
    """*err*'s text, or its docstring when it has none (dnspython's errors)."""
    text = str(err)
    if not text:
        text = (type(err).__doc__ or type(err).__name__).strip()
    return text


def ttl_value(token: str) -> int:
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
    return value if value <= MAX_TTL else 0


def ascii_escape(text: str) -> str:
    """Replace non-ASCII characters by ``\\DDD`` escapes of their UTF-8 octets."""

    def escape(match: re.Match[str]) -> str:
        slashes = match.group(1)
        if len(slashes) % 2:
            slashes = slashes[:-1]  # an escaped octet is the octet
        octets = match.group(2).encode("utf-8", "surrogateescape")
        return slashes + "".join([f"\\{octet:03d}" for octet in octets])

    return _NON_ASCII.sub(escape, text)


def unquote(token: str) -> str:
    """The text inside a quoted token, or the token itself."""
    return token[1:-1] if token[:1] == '"' else token


def chunks(text: str) -> Iterator[str]:
    """*text* in pieces of about :data:`CHUNK` characters that end where a line ends."""
    start = 0
    end_of_text = len(text)
    while start < end_of_text:
        end = text.find("\n", start + CHUNK)
        if end < 0:
            end = end_of_text
        yield text[start:end]
        start = end + 1


def _scan(line: str, depth: int, tokens: list[str], lineno: int | None) -> tuple[int, bool]:
    """Append the tokens of *line* to *tokens*, without comments or parentheses.

    *depth* is how many parentheses are open before the line.  Returns the
    depth after it, and whether a '(' opened at depth 0 on this line.
    """
    if '"' not in line and "\\" not in line and line.isascii():
        # no quote or escape (a signed zone's multi-line records): the tokens are the
        # runs between white space and parentheses, up to a comment, as _TOKEN reads them
        semicolon = line.find(";")
        body = line if semicolon < 0 else line[:semicolon]
        opening = body.find("(")
        closing = body.find(")")
        if opening < 0 and closing < 0:
            tokens += body.split()
            return depth, False
        if (
            body.count("(") <= 1
            and body.count(")") <= 1
            and (closing < 0 or depth or opening >= 0 and opening < closing)
        ):
            opened = (
                opening >= 0 and (depth if closing < 0 or opening < closing else depth - 1) == 0
            )
            tokens += body.replace("(", " ").replace(")", " ").split()
            return depth + (opening >= 0) - (closing >= 0), opened
    opened = False
    for token in _TOKEN(line):
        first = token[0]
        if first == ";":
            break
        if first == "(":
            opened = opened or depth == 0
            depth += 1
        elif first == ")":
            if depth == 0:
                raise BadSyntax("unbalanced parentheses: ')' without '('", lineno)
            depth -= 1
        elif token == '"':
            raise BadSyntax("unterminated quoted string", lineno)
        elif token == "\\":
            raise BadSyntax("backslash at the end of a line", lineno)
        else:
            tokens.append(token)
    return depth, opened


def split_tokens(text: str) -> list[str]:
    """Tokens of one line of text, without comments or parentheses."""
    tokens: list[str] = []
    if _scan(text, 0, tokens, None)[0]:
        raise BadSyntax("unbalanced parentheses: '(' without ')'")
    return tokens


def logical_tokens(
    line: str, lineno: int, numbered: Iterator[tuple[int, str]]
) -> tuple[list[str], int]:
    """Tokens of the record starting on *line*, reading on from *numbered* while a '(' is open.

    Returns the tokens and the number of the last line read.  Errors are
    :class:`BadSyntax` naming the line they are on.
    """
    if line.count('"') == 2 and not (";" in line or "\\" in line or "(" in line or ")" in line):
        # the common quoted line (one quoted string, e.g. a TXT record's, with white
        # space around it): split as _TOKEN would, without the regex
        opening = line.index('"')
        closing = line.index('"', opening + 1)
        if (opening == 0 or line[opening - 1] in " \t") and (
            closing + 1 == len(line) or line[closing + 1] in " \t\r"
        ):
            words = line[:opening].split()
            words.append(line[opening : closing + 1])
            words += line[closing + 1 :].split()
            return words, lineno
    tokens: list[str] = []
    depth, _ = _scan(line, 0, tokens, lineno)
    opened = lineno
    while depth:
        try:
            lineno, line = next(numbered)
        except StopIteration:
            raise BadSyntax(
                "unbalanced parentheses: '(' still open at the end of the file", opened
            ) from None
        depth, reopened = _scan(line, depth, tokens, lineno)
        if reopened:
            opened = lineno
    return tokens, lineno


class Kinds:
    """What a token where a class, TTL or type may stand is, as BIND reads it (cached)."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[int, int]] = {}

    def kind_of(self, token: str) -> tuple[int, int]:
        """``(kind, value)`` of *token*: a ``KIND_*`` and the class, TTL or type."""
        entry = self.cache.get(token)
        if entry is None:
            entry = (KIND_OTHER, 0)
            if token[0] in DIGITS:
                ttl = ttl_value(token)
                if ttl >= 0:
                    entry = (KIND_TTL, ttl)
            elif token[0] != '"':
                try:
                    rdclass = dns.rdataclass.from_text(token)
                    if rdclass and not dns.rdataclass.is_metaclass(rdclass):
                        entry = (KIND_CLASS, int(rdclass))
                except (dns.exception.DNSException, ValueError):
                    try:
                        rdtype = dns.rdatatype.from_text(token)
                        if rdtype and not dns.rdatatype.is_metatype(rdtype):
                            entry = (KIND_TYPE, int(rdtype))
                    except (dns.exception.DNSException, ValueError):
                        pass
            if len(self.cache) < _KIND_CACHE_LIMIT:
                self.cache[token] = entry
        return entry

    def type_of(self, token: str) -> int:
        """The type *token* names; raises :class:`BadSyntax` saying why if it names none."""
        kind, value = self.kind_of(token)
        if kind == KIND_TYPE:
            return value
        if token[0] == '"':
            raise BadSyntax(f"expected a type, got a quoted string {token}")
        try:
            value = int(dns.rdatatype.from_text(token))
        except (dns.exception.DNSException, ValueError):
            if kind == KIND_CLASS:
                raise BadSyntax(f"expected a type, got the class {token}") from None
            raise BadSyntax(f"unknown type {token!r}") from None
        raise BadSyntax(f"type {token} cannot appear in a zone file")
