"""TSIG keys: ``--tsig [ALG:]NAME:SECRET`` (as ``dig -y``) and BIND key files (as ``dig -k``)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
import stat
from pathlib import Path

import dns.name
import dns.tsig

from secdns.errors import LocalIOError, UsageError

log = logging.getLogger(__name__)

DEFAULT_ALGORITHM = "hmac-sha256"

ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-md5.sig-alg.reg.int": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha256-128": dns.tsig.HMAC_SHA256_128,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha384-192": dns.tsig.HMAC_SHA384_192,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha512-256": dns.tsig.HMAC_SHA512_256,
}


@dataclasses.dataclass(frozen=True, slots=True)
class TsigKey:
    """A named TSIG key.  ``repr`` never shows the secret."""

    name: str
    algorithm: str
    secret: str = dataclasses.field(repr=False)

    def to_dnspython(self) -> dns.tsig.Key:
        return dns.tsig.Key(dns.name.from_text(self.name), self.secret, ALGORITHMS[self.algorithm])


def make_key(name: str, algorithm: str, secret: str, where: str = "key") -> TsigKey:
    """Validate the parts of a key and build it (every problem said at once: a stranger's
    bad algorithm hid its bad secret until it was fixed)."""
    problems = []
    alg = algorithm.lower().rstrip(".")
    if alg not in ALGORITHMS:
        known = ", ".join(sorted(set(ALGORITHMS) - {"hmac-md5.sig-alg.reg.int"}))
        problems.append(f"unknown TSIG algorithm {algorithm!r} (known: {known})")
    if not name:
        problems.append("empty key name")
    else:
        try:
            dns.name.from_text(name)
        except dns.exception.DNSException as err:
            problems.append(f"bad key name {name!r}: {err}")
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"the secret of key {name!r} is not valid base64")
    if problems:
        raise UsageError(f"{where}: " + "; ".join(problems))
    return TsigKey(name=name, algorithm=alg, secret=secret)


_warned: set[str] = set()


def warn_if_exposed(path: str | Path) -> None:
    """Warn once per file, as ssh does for private keys, when a file that holds a
    TSIG secret is readable by group or others."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return
    key = str(Path(path).resolve())
    if key in _warned:
        return
    _warned.add(key)
    who = " and ".join(
        name for bit, name in ((stat.S_IRGRP, "group"), (stat.S_IROTH, "others")) if mode & bit
    )
    log.warning(
        "warning: %s holds a TSIG secret and is readable by %s (mode %04o); run: chmod 600 %s",
        path,
        who,
        stat.S_IMODE(mode),
        path,
    )


def parse_tsig_option(text: str) -> TsigKey:
    """Parse ``[ALG:]NAME:SECRET``."""
    parts = text.split(":")
    if len(parts) == 2:
        alg, (name, secret) = DEFAULT_ALGORITHM, parts
    elif len(parts) == 3:
        alg, name, secret = parts
    else:
        raise UsageError("--tsig: expected [ALG:]NAME:SECRET")
    return make_key(name, alg, secret, where="--tsig")


_KEY_RE = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{(?P<body>[^}]*)\}\s*;', re.IGNORECASE | re.DOTALL
)
_ALG_RE = re.compile(r'algorithm\s+"?(?P<alg>[A-Za-z0-9.-]+)"?\s*;', re.IGNORECASE)
_COMMENT_RE = re.compile(r'("[^"]*")|/\*.*?\*/|(?://|#)[^\n]*', re.DOTALL)
_SECRET_RE = re.compile(r'secret\s+"(?P<secret>[^"]*)"\s*;', re.IGNORECASE)


def parse_key_file(path: str | Path) -> list[TsigKey]:
    """Every key in a BIND-style key file (``tsig-keygen`` / ``ddns-confgen`` output)."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise LocalIOError(f"cannot read key file {path}: {err.strerror}") from err
    # strip comments (//, # and /* */) outside quoted strings: a base64 secret may
    # hold "//" (about one tsig-keygen secret in a hundred)
    text = _COMMENT_RE.sub(lambda found: found[1] or "", text)
    keys = []
    for match in _KEY_RE.finditer(text):
        body = match.group("body")
        alg = _ALG_RE.search(body)
        secret = _SECRET_RE.search(body)
        where = f"{path}: key {match.group('name')!r}"
        if secret is None:
            raise UsageError(f"{where}: no secret")
        keys.append(
            make_key(
                match.group("name"),
                alg.group("alg") if alg else DEFAULT_ALGORITHM,
                secret.group("secret"),
                where=where,
            )
        )
    if not keys:
        raise UsageError(f'{path}: no \'key "NAME" {{ algorithm ...; secret "..."; }};\' found')
    warn_if_exposed(path)
    return keys
