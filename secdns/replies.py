"""Replies made from a parsed query, as every reply of secdns is begun.

:func:`make_response` is :func:`dns.message.make_response` with the query's DO bit
echoed: dnspython's reply carries an OPT when the query had one, but with its flags
clear, where RFC 3225 3 says the DO bit of the query MUST be copied in the response
(BIND copies it into every reply, NOTIMP and NOTIFY's included; a stranger saw ours
drop it).  The header-only error replies of the query path, made without parsing,
echo it in :func:`secdns.server.front.error_reply`.
"""

from __future__ import annotations

import dns.flags
import dns.message


def make_response(
    query: dns.message.Message, our_payload: int, fudge: int = 300
) -> dns.message.Message:
    """``dns.message.make_response(query, our_payload=..., fudge=...)``, DO echoed."""
    response = dns.message.make_response(query, our_payload=our_payload, fudge=fudge)
    if response.edns >= 0 and query.ednsflags & dns.flags.DO:
        response.ednsflags |= dns.flags.DO
    return response
