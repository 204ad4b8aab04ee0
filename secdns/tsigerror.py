"""The TSIG record of an answer to a request whose TSIG does not verify (RFC 8945 5.3.2).

One function for the two places that answer such requests: serve's queries and
transfers (:func:`secdns.server.front.handle`) and NOTIFYs, serve's and watch's
(:func:`secdns.notify.answer_notify`).  The answer is NOTAUTH with a TSIG record
that carries the error: unsigned (no MAC) for BADKEY and BADSIG, signed with the
key for BADTIME, with the server's time in its other data, as BIND answers.
"""

from __future__ import annotations

import struct
import time

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

NAMES: dict[int, str] = {
    dns.rcode.BADSIG: "BADSIG",
    dns.rcode.BADKEY: "BADKEY",
    dns.rcode.BADTIME: "BADTIME",
}


def error_of(err: Exception) -> int:
    """The TSIG error code for what dnspython raised reading a signed request."""
    if isinstance(err, dns.tsig.BadTime):
        return dns.rcode.BADTIME
    if isinstance(err, dns.tsig.BadSignature):
        return dns.rcode.BADSIG
    return dns.rcode.BADKEY  # an unknown key or algorithm


def add_error(
    response: dns.message.Message,
    query: dns.message.Message,
    error: int,
    key: dns.tsig.Key | None,
) -> None:
    """Give ``response`` (NOTAUTH, to ``query``, read with ``keyring=False``) its TSIG
    record with ``error``: signed with ``key`` (BADTIME, the key known), else unsigned."""
    assert query.tsig is not None
    request = query.tsig[0]
    now = int(time.time())
    if key is not None:
        response.use_tsig(
            key,
            fudge=300,
            original_id=query.id,
            tsig_error=error,
            other_data=struct.pack("!Q", now)[2:],
        )
        response.request_mac = request.mac
        return
    rdata = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        dns.rdatatype.TSIG,
        request.algorithm,
        now,
        300,
        b"",
        query.id,
        error,
        b"",
    )
    response.tsig = dns.rrset.from_rdata(query.tsig.name, 0, rdata)
    response.want_tsig_sign = False
