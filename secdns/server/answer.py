"""Answering queries from the served zones, as an authoritative server: the map.

The answer path is four modules, each one layer, no I/O in any:

* :mod:`secdns.server.front`: bytes in, a :class:`~secdns.server.front.Reply`
  out (:func:`~secdns.server.front.handle`): header and opcode, parsing (the
  common query fast, shared with :mod:`secdns.server.fastpath`), FORMERR,
  NOTIMP, BADVERS and TSIG errors, the one builder of header-only error
  replies.
* :mod:`secdns.server.lookup`: RFC 1034 4.3.2 as BIND 9.18 answers it: CNAME
  chains, wildcards, DNAME, referrals and glue, DS, minimal ANY, additional
  data (:func:`~secdns.server.lookup.answer` for dnspython messages).
* :mod:`secdns.server.denial`: the per-version index (parsed nodes, NSEC
  owners, NSEC3 hashes) and the NXDOMAIN/NODATA/wildcard proofs.
* :mod:`secdns.server.render`: the wire writer, BIND's compression and
  truncation; also the writer of zone transfers out.

This module keeps the names callers used before the split.
"""

from __future__ import annotations

from secdns.server.front import Reply, handle
from secdns.server.lookup import answer
from secdns.server.render import EDNS_PAYLOAD

__all__ = ["EDNS_PAYLOAD", "Reply", "answer", "handle"]
