"""The checksum line that ends a master file ``pull -o`` writes.

A store's zone file is checked against the SHA-256 in its state; a ``pull -o FILE``
has no state beside it.  Its last line says the SHA-256 of the lines between its
first (the ``; zone Z serial N`` header) and itself, so that the next ``pull -o``
finds a FILE edited since (a stranger's ``sed -i`` of one record was reported
``up-to-date``) and transfers the zone again.  A comment line: ``named-checkzone``,
NSD, Knot and secdns's own reader skip it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

PREFIX = b"; sha256 "
_LINE = re.compile(rb"; sha256 ([0-9a-f]{64}) ")
_TAIL = 512  # octets held back from the hash: the last line is in them


def sealed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` of a master file (its first line the header), then its checksum line."""
    digest = hashlib.sha256()
    header = True
    for chunk in chunks:
        if header:
            end = chunk.find(b"\n")
            if end < 0:  # (the header goes on into the next chunk)
                yield chunk
                continue
            digest.update(memoryview(chunk)[end + 1 :])
            header = False
        else:
            digest.update(chunk)
        yield chunk
    yield PREFIX + digest.hexdigest().encode() + b" (of the lines after the first)\n"


def seal_problem(path: Path) -> str | None:
    """Why the file at ``path`` is not as :func:`sealed` wrote it (no checksum line,
    or one that does not match: edited since), or None.  Reads it whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.readline()  # the header: not hashed
        tail = b""
        while chunk := handle.read(1 << 20):
            data = tail + chunk
            cut = len(data) - _TAIL
            if cut > 0:
                digest.update(memoryview(data)[:cut])
                tail = data[cut:]
            else:
                tail = data
    start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
    match = _LINE.match(tail, start)
    if match is None:
        return "has no checksum line (written by an older secdns, or edited)"
    digest.update(tail[:start])
    if digest.hexdigest().encode() != match.group(1):
        return "was changed since secdns wrote it (its checksum does not match)"
    return None
