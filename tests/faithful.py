"""The rdata text secdns writes, in terms of dnspython's: the reference for the
equivalence tests of secdns.wire and secdns.masterfile.

secdns writes what dnspython's ``rdata.to_text(origin=origin, relativize=True)``
writes, with two departures that keep the text faithful to what was sent (see
the docstring of secdns.wire): a name in the rdata of NS, CNAME, PTR, DNAME, MX,
SOA (any class) and SRV (class IN) is written absolute when its zone part is not
in the origin's exact case, and empty unknown-type rdata is ``\\# 0`` without a
trailing space.
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

# The name fields of the types secdns renders itself, and their place in the text.
_NAME_FIELDS = {
    dns.rdatatype.NS: (("target", 0),),
    dns.rdatatype.CNAME: (("target", 0),),
    dns.rdatatype.PTR: (("target", 0),),
    dns.rdatatype.DNAME: (("target", 0),),
    dns.rdatatype.MX: (("exchange", 1),),
    dns.rdatatype.SOA: (("mname", 0), ("rname", 1)),
}
_SRV_IN = (("target", 3),)


def faithful_text(rdata: dns.rdata.Rdata, origin: dns.name.Name) -> str:
    if isinstance(rdata, dns.rdata.GenericRdata) and not rdata.data:
        return "\\# 0"
    tokens = rdata.to_text(origin=origin, relativize=True).split(" ")
    fields = _NAME_FIELDS.get(rdata.rdtype, ())
    if rdata.rdtype == dns.rdatatype.SRV and rdata.rdclass == dns.rdataclass.IN:
        fields = _SRV_IN
    depth = len(origin) - 1
    for field, place in fields:
        name: dns.name.Name = getattr(rdata, field)
        if depth and name.is_subdomain(origin) and name.labels[-depth - 1 :] != origin.labels:
            tokens[place] = name.to_text()
    return " ".join(tokens)
