"""The NSEC3 owners that prove a name's absence, found by key (RFC 5155), for the
prepared path (:mod:`secdns.server.prepared`).

The general path (:class:`secdns.server.denial.Proofs`) hashes a dnspython name with
``dns.dnssec.nsec3_hash`` and looks the hash up in the zone version's NSEC3 index
(:meth:`secdns.server.denial.Index.nsec3_chain`: the sorted hashes, each hash's owner
key, the chain's parameters).  Here a served key (lowercased absolute text) is hashed
from its wire form directly, SHA-1 being the only NSEC3 hash algorithm, and the same
index answers which owner matches it and which covers it, so a DO NXDOMAIN or NODATA
of an NSEC3 zone parses no dnspython name.  Hashes are kept (bounded): the wildcard of
a zone's apex, hashed for most NXDOMAIN proofs, once.
"""

from __future__ import annotations

import bisect
import hashlib

from secdns.dnssecwire import base32hex
from secdns.server.denial import Index

_SHA1 = 1
_LIMIT = 1 << 16
_hashes: dict[tuple[str, bytes, int], str] = {}


def hashed(key: str, salt: bytes, iterations: int) -> str | None:
    """The NSEC3 hash of the name ``key`` (lowercased absolute text, as served zones key
    their owners) in lowercase base32hex, as the index keeps them; None for a key with
    escapes (the general path reads those)."""
    found = _hashes.get((key, salt, iterations))
    if found is not None:
        return found
    if "\\" in key:
        return None
    wire = b"".join(bytes((len(label),)) + label for label in key.encode().split(b".")[:-1])
    digest = hashlib.sha1(wire + b"\x00" + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    text = base32hex(digest)
    if len(_hashes) >= _LIMIT:
        _hashes.clear()
    _hashes[(key, salt, iterations)] = text
    return text


def matching(index: Index, key: str) -> str | None:
    """The key of the NSEC3 owner whose hash is ``key``'s (``Index.nsec3_match``), or None
    (none matches, no NSEC3 chain, or another hash algorithm)."""
    chain = index.nsec3_chain()  # (built once a version)
    if chain is None or chain[2] != _SHA1:
        return None
    digest = hashed(key, chain[4], chain[3])
    return None if digest is None else chain[1].get(digest)


def covering(index: Index, key: str) -> str | None:
    """The key of the NSEC3 owner matching or covering ``key`` (the one at or before its
    hash, wrapping to the last: ``Index.nsec3_cover``), or None."""
    chain = index.nsec3_chain()
    if chain is None or chain[2] != _SHA1 or not chain[0]:
        return None
    digest = hashed(key, chain[4], chain[3])
    if digest is None:
        return None
    hashes = chain[0]
    return chain[1][hashes[bisect.bisect_right(hashes, digest) - 1]]
