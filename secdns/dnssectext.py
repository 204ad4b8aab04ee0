"""Direct renderings of RRSIG, NSEC, NSEC3 and DNSKEY rdata for the master-file reader.

A signed zone is mostly RRSIG and NSEC records, and ``dns.rdata.from_text``
reads them a character at a time: parsing them through dnspython took two
thirds of the time to read a signed zone.  These functions turn the tokens of
one record into exactly the text dnspython renders
(``rdata.to_text(origin=zone_origin, relativize=True)``), with caches for the
type mnemonics and timestamps a zone repeats, and return None for anything
they are unsure about (a TTL with units, an algorithm mnemonic, base64 that
does not decode strictly...), which then goes through dnspython as before.
``tests/test_signatures.py`` compares them with dnspython record by record.

Each takes the record's tokens, the index of the first rdata token, and
``target``: the reader's function from a name token to the text dnspython
renders for it relative to the zone (None if it is not a plain name).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import dns.exception
import dns.rdatatype
import dns.rdtypes.rrsigbase

Target = Callable[[str], str | None]

_CACHE_LIMIT = 1 << 12
_type_texts: dict[str, tuple[int, str]] = {}
_sig_times: dict[str, str] = {}


def _number(token: str, limit: int) -> str | None:
    if not token.isdigit() or not token.isascii():
        return None
    value = int(token)
    return str(value) if value <= limit else None


def _type(token: str) -> tuple[int, str] | None:
    found = _type_texts.get(token)
    if found is None:
        try:
            rdtype = dns.rdatatype.from_text(token)
        except dns.exception.DNSException:
            return None
        if len(_type_texts) >= _CACHE_LIMIT:
            _type_texts.clear()
        found = _type_texts[token] = (int(rdtype), dns.rdatatype.to_text(rdtype))
    return found


def _sig_time(token: str) -> str | None:
    text = _sig_times.get(token)
    if text is None:
        if not token.isdigit() or not token.isascii():
            return None
        try:
            posix = dns.rdtypes.rrsigbase.sigtime_to_posixtime(token)
            text = dns.rdtypes.rrsigbase.posixtime_to_sigtime(posix)
        except (dns.exception.DNSException, ValueError, OverflowError, OSError):
            return None
        if len(_sig_times) >= _CACHE_LIMIT:
            _sig_times.clear()
        _sig_times[token] = text
    return text


def _base64(tokens: list[str]) -> str | None:
    try:
        data = base64.b64decode("".join(tokens), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data:
        return None
    encoded = base64.b64encode(data).decode("ascii")
    return " ".join(encoded[i : i + 32] for i in range(0, len(encoded), 32))


def rrsig(tokens: list[str], start: int, target: Target) -> str | None:
    """``TYPE algorithm labels original-ttl expiration inception key-tag signer signature``."""
    if len(tokens) < start + 9:
        return None
    covered = _type(tokens[start])
    algorithm = _number(tokens[start + 1], 255)
    labels = _number(tokens[start + 2], 255)
    ttl = _number(tokens[start + 3], 0xFFFFFFFF)
    expiration = _sig_time(tokens[start + 4])
    inception = _sig_time(tokens[start + 5])
    tag = _number(tokens[start + 6], 0xFFFF)
    signer = target(tokens[start + 7])
    signature = _base64(tokens[start + 8 :])
    fields = (covered, algorithm, labels, ttl, expiration, inception, tag, signer, signature)
    if any(field is None for field in fields):
        return None
    assert covered is not None
    return (
        f"{covered[1]} {algorithm} {labels} {ttl} {expiration} {inception} {tag} "
        f"{signer} {signature}"
    )


def nsec(tokens: list[str], start: int, target: Target) -> str | None:
    """``next-name TYPE...`` (the types sorted, each once, as dnspython writes them)."""
    if len(tokens) < start + 1:
        return None
    following = target(tokens[start])
    types = _types(tokens[start + 1 :])
    return None if following is None or types is None else following + types


def _types(tokens: list[str]) -> str | None:
    """A type bitmap's mnemonics as dnspython writes them: sorted by number, each once,
    each after a space; None for an unknown mnemonic or type 0."""
    types: dict[int, str] = {}
    for token in tokens:
        found = _type(token)
        if found is None or found[0] == 0:
            return None
        types[found[0]] = found[1]
    return "".join(" " + types[rdtype] for rdtype in sorted(types))


_BASE32HEX = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUV")


def nsec3(tokens: list[str], start: int, target: Target) -> str | None:
    """``algorithm flags iterations salt next-hashed TYPE...``: the salt in lowercase hex
    (``-`` for none), the next hashed owner in lowercase base32hex without padding (only
    its canonical spelling: RFC 4648 3.5), the types as :func:`nsec` writes them."""
    if len(tokens) < start + 5:
        return None
    algorithm = _number(tokens[start], 255)
    flags = _number(tokens[start + 1], 255)
    iterations = _number(tokens[start + 2], 0xFFFF)
    salt = tokens[start + 3]
    if algorithm is None or flags is None or iterations is None:
        return None
    if salt != "-":
        if not salt.isascii() or not salt.isalnum():
            return None
        try:
            raw = bytes.fromhex(salt)
        except ValueError:
            return None
        if not raw or len(raw) > 255:
            return None
        salt = raw.hex()
    following = tokens[start + 4].upper()
    if not following or not _BASE32HEX.issuperset(following):
        return None
    try:
        hashed = base64.b32hexdecode(following + "=" * (-len(following) % 8))
    except (binascii.Error, ValueError):
        return None
    if not hashed or len(hashed) > 255:
        return None
    if base64.b32hexencode(hashed).rstrip(b"=").decode() != following:
        return None  # (a spelling dnspython refuses)
    types = _types(tokens[start + 5 :])
    if types is None:
        return None
    return f"{algorithm} {flags} {iterations} {salt} {following.lower()}{types}"


def dnskey(tokens: list[str], start: int, target: Target) -> str | None:
    """``flags protocol algorithm key``."""
    if len(tokens) < start + 4:
        return None
    flags = _number(tokens[start], 0xFFFF)
    protocol = _number(tokens[start + 1], 255)
    algorithm = _number(tokens[start + 2], 255)
    key = _base64(tokens[start + 3 :])
    if flags is None or protocol is None or algorithm is None or key is None:
        return None
    return f"{flags} {protocol} {algorithm} {key}"
