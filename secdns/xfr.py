"""Zone transfer protocol logic with no I/O: serial arithmetic, TSIG checking of a
message stream, and the AXFR/IXFR response state machine.

:class:`XfrReader` is fed decoded messages (:class:`secdns.wire.Message`) one by
one and checks everything before the caller stores anything: records inside the
zone, the zone's class, first and last SOA matching, IXFR deltas chaining from
the serial we asked for, and the configured size limits.  Once the answer is a
full zone, the decoder puts the ordinary records of each message straight into
the reader's rows (:meth:`XfrReader.rows`, :mod:`secdns.wirescan`) and only the
records that need a decision (an SOA, another class, an owner outside the zone)
reach :meth:`XfrReader.feed` as records.  An AXFR is a full zone from its first
record on: the decoder gives the first message's opening SOA as a record, which
the reader takes before the rows that follow it (a small zone is one message).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig

from secdns import wire, wirescan
from secdns.errors import BadDataError, LimitExceeded, RefusedError, TsigError
from secdns.zonefile import FullZone

SOA = 6
IN = dns.rdataclass.IN
# Entries in the table that lets records share equal TTL and rdata objects; it is
# emptied when full, so unique rdata (signatures, keys) costs at most this much.
_SHARED_LIMIT = 50_000


class XfrKind(enum.Enum):
    AXFR = "AXFR"
    IXFR = "IXFR"
    NONE = "none"  # no transfer: the zone was already up to date


# --- RFC 1982 serial number arithmetic ---------------------------------------------------------


def serial_compare(a: int, b: int) -> int | None:
    """-1 if a < b, 0 if equal, 1 if a > b, None when RFC 1982 leaves it undefined."""
    a &= 0xFFFFFFFF
    b &= 0xFFFFFFFF
    if a == b:
        return 0
    half = 1 << 31
    if (a < b and b - a < half) or (a > b and a - b > half):
        return -1
    if (a < b and b - a > half) or (a > b and a - b < half):
        return 1
    return None


def serial_newer(new: int, old: int) -> bool:
    """True when ``new`` is strictly newer than ``old``."""
    return serial_compare(new, old) == 1


# --- TSIG over a multi-message stream ------------------------------------------------------------


class TsigVerifier:
    """Verifies the TSIG of each message of a response stream (RFC 8945 5.3.1).

    The first and last messages must be signed; at most 99 unsigned messages may
    come in between.  An unsigned answer to a signed query is an error, never
    accepted silently.
    """

    MAX_UNSIGNED = 99

    def __init__(self, key: dns.tsig.Key, request_mac: bytes) -> None:
        self.key = key
        self.request_mac = request_mac
        self.ctx: object | None = None
        self.unsigned = 0
        self.first = True

    def verify(self, raw: bytes, message: wire.Message) -> None:
        if message.tsig_rdata is None or message.tsig_start is None:
            if self.first:
                raise TsigError(
                    "the answer is not TSIG-signed although the query was",
                    hint="the server may not know the key",
                )
            self.unsigned += 1
            if self.unsigned > self.MAX_UNSIGNED:
                raise TsigError(f"more than {self.MAX_UNSIGNED} unsigned messages in a row")
            self.ctx.update(raw)  # type: ignore[union-attr]  # ctx is set by the first signed message
            return
        try:
            self.ctx = dns.tsig.validate(
                raw,
                self.key,
                message.tsig_owner,
                message.tsig_rdata,
                int(time.time()),
                self.request_mac if self.first else None,
                message.tsig_start,
                None if self.first else self.ctx,
                True,
            )
        except dns.exception.DNSException as err:
            raise tsig_error(err) from err
        self.first = False
        self.unsigned = 0

    def finish(self) -> None:
        if self.unsigned:
            raise TsigError("the last message of the transfer is not TSIG-signed")


def tsig_error(err: Exception) -> TsigError:
    """A one-line explanation of a dnspython TSIG exception."""
    if isinstance(err, dns.tsig.PeerBadKey):
        return TsigError(
            "the server does not know this TSIG key (BADKEY)",
            hint="check the key name and algorithm",
        )
    if isinstance(err, dns.tsig.PeerBadSignature):
        return TsigError(
            "the server says our TSIG signature is wrong (BADSIG)", hint="check the secret"
        )
    if isinstance(err, dns.tsig.PeerBadTime):
        return TsigError("the server says our clock is off (BADTIME)")
    if isinstance(err, dns.tsig.PeerError):
        return TsigError(f"the server rejected our TSIG: {err}")
    if isinstance(err, dns.tsig.BadTime):
        return TsigError("TSIG time check failed: clocks differ by more than the fudge")
    if isinstance(err, dns.tsig.BadSignature | dns.tsig.BadKey | dns.tsig.BadAlgorithm):
        return TsigError(
            f"the answer's TSIG does not verify ({type(err).__name__})",
            hint="wrong secret or key name",
        )
    if "TSIG" in str(err) or "tsig" in type(err).__name__.lower():
        return TsigError(f"TSIG check failed: {err}")
    return TsigError(f"bad TSIG record: {err}")


# --- the response state machine ------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Delta:
    """One IXFR difference sequence: ``serial_from`` -> ``serial_to``.

    ``deleted`` and ``added`` include the old and the new SOA record.
    """

    serial_from: int
    serial_to: int
    deleted: list[wire.Record]
    added: list[wire.Record]


class _State(enum.Enum):
    FIRST_SOA = 1
    SECOND = 2  # deciding: AXFR-style or incremental
    AXFR = 3
    DELETING = 4
    ADDING = 5
    DONE = 6


RCODE_HINTS: dict[int, str] = {
    dns.rcode.REFUSED: "the server does not allow transfers to this host, or needs a TSIG key",
    dns.rcode.NOTAUTH: "the server's transfer ACL does not allow this host or key "
    "(Knot answers so), the TSIG key is wrong, or the server is not authoritative",
    dns.rcode.NOTIMP: "the server does not implement this request",
    dns.rcode.SERVFAIL: "the server has no usable copy of the zone",
    dns.rcode.NXDOMAIN: "the server does not know the zone",
    dns.rcode.FORMERR: "the server could not parse our request",
}


# The same rcodes to the SOA query (before any transfer is asked for) say something else.
SOA_RCODE_HINTS: dict[int, str] = {
    **RCODE_HINTS,
    dns.rcode.REFUSED: "the server refuses queries for this zone: "
    "it is probably not authoritative for it",
    dns.rcode.NOTAUTH: "the server is not authoritative for this zone",
    dns.rcode.NXDOMAIN: "the server is not authoritative for this zone "
    "(it says the name does not exist)",
}


def rcode_error(rcode: int, what: str, hints: dict[int, str] = RCODE_HINTS) -> RefusedError:
    name = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    return RefusedError(f"{name} to {what}", hint=hints.get(rcode))


class XfrReader:
    """The AXFR/IXFR answer state machine (RFC 5936, RFC 1995).

    After :meth:`feed` returns True, exactly one of these holds:
    ``up_to_date`` (IXFR answered with the current SOA only), ``records``
    (a full zone: AXFR, or IXFR answered AXFR-style), or ``deltas``.
    """

    def __init__(
        self,
        origin: dns.name.Name,
        kind: XfrKind,
        *,
        query_id: int,
        serial: int | None = None,
        max_records: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.origin = origin
        self.origin_key = tuple(label.lower() for label in reversed(origin.labels[:-1]))
        self.kind = kind
        self.query_id = query_id
        self.serial = serial
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.state = _State.FIRST_SOA
        self.soa: wire.Record | None = None
        self.new_serial: int | None = None
        self.zone: FullZone | None = None  # a full zone (AXFR, or IXFR answered AXFR-style)
        # where parse_message puts the zone's records: an AXFR's from its first message
        # on, after the opening SOA (``lead``); an IXFR's once it is answered AXFR-style
        self.sink: wirescan.Rows | None = wirescan.Rows(lead=1) if kind is XfrKind.AXFR else None
        self.deltas: list[Delta] = []
        self.up_to_date = False
        self.axfr_style = False
        self.count = 0
        self.bytes = 0
        self._text = 0  # owner and rdata text of records not in the sink
        self.messages = 0
        self._current_serial: int | None = None
        self._shared: dict[int | str, Any] = {}
        self._owners: dict[str, wire.Record] = {}

    @property
    def done(self) -> bool:
        return self.state is _State.DONE

    @property
    def records(self) -> list[wire.Record] | None:
        """The full zone as record objects (for verify and catalogs; a pull writes
        ``zone`` as it is), or None when the answer was not a full zone."""
        return self.zone.records() if self.zone is not None else None

    @property
    def text_bytes(self) -> int:
        """Owner and rdata text held, the size of the rendered zone."""
        return self._text + (self.sink.text if self.sink is not None else 0)

    def rows(self) -> wirescan.Rows | None:
        """For :func:`wire.parse_message`: where the next message's records go
        while the answer is a full zone (an AXFR's from its first message on, the
        opening SOA left to :meth:`feed`), else None."""
        state = self.state
        return self.sink if state is _State.AXFR or state is _State.FIRST_SOA else None

    def _full_zone(self, soa: wire.Record, first: wire.Record | None = None) -> None:
        if self.sink is None:
            self.sink = wirescan.Rows()
        self.sink.lead = 0  # the zone's SOA is taken: rows from the next record on
        self.zone = FullZone(soa, self.sink.rows)
        if first is not None:
            self._keep(first)
        self.state = _State.AXFR

    def _keep(self, rec: wire.Record) -> None:
        assert self.sink is not None
        self.sink.rows.append((rec.key, rec.owner, rec.ttl, rec.rdtype, rec.rdata))

    def _check_header(self, message: wire.Message) -> None:
        if message.id != self.query_id:
            raise BadDataError(f"answer ID {message.id} does not match query ID {self.query_id}")
        if not message.flags & 0x8000:
            raise BadDataError("the server sent a query, not an answer")
        opcode = (message.flags >> 11) & 0xF
        if opcode != 0:
            raise BadDataError(f"answer has opcode {opcode}, expected QUERY")
        if message.flags & 0x0200:
            raise BadDataError("answer truncated (TC) on TCP")
        if message.rcode != dns.rcode.NOERROR:
            raise rcode_error(message.rcode, f"{self.kind.value} of {self.origin}")
        if message.qname is not None:
            qkey = tuple(label.lower() for label in reversed(message.qname))
            if qkey != self.origin_key:
                raise BadDataError(
                    "answer is for another zone: question "
                    f"{b'.'.join(message.qname).decode(errors='replace')}"
                )

    def _check_record(self, rec: wire.Record) -> None:
        if rec.key[: len(self.origin_key)] != self.origin_key:
            raise BadDataError(
                f"out-of-zone record {rec.owner} {wire.type_text(rec.rdtype)} "
                "in the transfer (refusing it, not dropping it)"
            )
        if rec.rdclass != dns.rdataclass.IN:
            rdclass = dns.rdataclass.to_text(dns.rdataclass.RdataClass.make(rec.rdclass))
            raise BadDataError(
                f"record {rec.owner} {wire.type_text(rec.rdtype)} has class "
                f"{rdclass}, the zone's class is IN"
            )

    def _is_apex_soa(self, rec: wire.Record) -> bool:
        return rec.rdtype == SOA and rec.key == self.origin_key

    def admit(self, answers: int) -> None:
        """Refuse a message of ``answers`` records (its header's count, checked before
        it is decoded) that would take the zone past ``max_records``.  The zone's
        records are counted as a user counts them, its SOA once: an AXFR carries one
        record more (the closing SOA), an IXFR two (its first SOA and the last)."""
        if self.max_records is None:
            return
        extra = 1 if self.kind is XfrKind.AXFR else 2
        if self.count + answers > self.max_records + extra:
            raise LimitExceeded(
                f"the zone has more than {self.max_records} records "
                f"(--max-records {self.max_records}, [server] max_records)"
            )

    def feed(self, message: wire.Message, size: int) -> bool:
        """Take one decoded message of ``size`` bytes; True when the transfer is complete."""
        if self.state is _State.DONE:
            raise BadDataError("data after the end of the transfer")
        self.messages += 1
        self._check_header(message)
        self.bytes += size
        if self.max_bytes is not None and self.bytes > self.max_bytes:
            raise LimitExceeded(
                f"transfer exceeds the limit of {self.max_bytes} bytes",
                hint="raise it with pull --max-bytes, or max_bytes in [server]",
            )
        if not message.records and self.state is _State.FIRST_SOA:
            raise BadDataError("empty answer: no SOA")
        answers = message.kept + len(message.records)
        self.admit(answers)
        self.count += answers
        records = message.records
        lead = message.lead
        if message.kept and lead:
            # an AXFR's first message: its opening SOA, then the rows the decoder has
            # put in the sink, then the rest (the closing SOA, what the scan left)
            self._take(records[:lead])
            if self.state is not _State.AXFR:
                raise AssertionError(f"rows in the sink in state {self.state.name}")
            self._take(records[lead:])
        else:
            self._take(records)
        if self.max_bytes is not None and self.text_bytes > self.max_bytes:
            # rendered text can be 4 times the wire size (binary TXT as \ddd): the
            # limit holds for both, so memory stays bounded whatever the records
            raise LimitExceeded(
                f"transfer exceeds the limit of {self.max_bytes} bytes (as text)",
                hint="raise it with pull --max-bytes, or max_bytes in [server]",
            )
        if (
            self.state is _State.SECOND
            and self.messages == 1
            and len(message.records) == 1
            and (self.serial is None or not serial_newer(self.new_serial, self.serial))  # type: ignore[arg-type]  # set by the first SOA
        ):
            # A first message holding only an SOA that is not newer than ours: up to
            # date (RFC 1995 section 2).  A newer one alone is how PowerDNS starts a
            # full zone sent AXFR-style (messages of 1, n and 1 records): read on.
            self.up_to_date = True
            self.state = _State.DONE
        return self.state is _State.DONE

    def _take(self, records: list[wire.Record]) -> None:
        """Check records of a message and step the state machine through them, in order."""
        shared = self._shared
        owners = self._owners
        if len(shared) > _SHARED_LIMIT:
            shared.clear()
        if len(owners) > _SHARED_LIMIT:
            owners.clear()
        text = self._text
        for rec in records:
            if self.state is _State.DONE:
                raise BadDataError("records after the final SOA")
            self._check_record(rec)
            # one object for each repeated TTL, rdata (NS and MX targets, common
            # addresses) and owner: 28 bytes a record for the TTL, ~60 for a repeated
            # rdata, ~160 for an owner the message did not compress
            rec.ttl = shared.setdefault(rec.ttl, rec.ttl)
            rec.rdata = shared.setdefault(rec.rdata, rec.rdata)
            first = owners.setdefault(rec.owner, rec)
            if first is not rec:  # an owner seen before (another message, no pointer)
                rec.owner = first.owner
                rec.key = first.key
            text += len(rec.owner) + len(rec.rdata)
            self._step(rec)
        self._text = text

    def _step(self, rec: wire.Record) -> None:
        state = self.state
        if state is _State.AXFR:
            if rec.rdtype == SOA and self._is_apex_soa(rec):
                assert self.soa is not None
                if rec.rdata != self.soa.rdata:
                    raise BadDataError(
                        f"last SOA (serial {rec.serial}) differs from the first "
                        f"(serial {self.soa.serial})"
                    )
                self.state = _State.DONE
                return
            if rec.rdtype == SOA:
                raise BadDataError(f"SOA record at {rec.owner}, not at the zone apex")
            self._keep(rec)
            return
        if state is _State.FIRST_SOA:
            if not self._is_apex_soa(rec):
                raise BadDataError(
                    f"transfer does not start with the zone's SOA "
                    f"(got {rec.owner} {wire.type_text(rec.rdtype)})"
                )
            self.soa = rec
            self.new_serial = rec.serial
            if self.kind is XfrKind.AXFR:
                self._full_zone(rec)
            else:
                self.state = _State.SECOND
            return
        if state is _State.SECOND:
            assert self.soa is not None
            if rec.rdtype == SOA and self._is_apex_soa(rec):
                if rec.serial == self.serial and rec.rdata != self.soa.rdata:
                    self.state = _State.DELETING
                    self._current_serial = rec.serial
                    self.deltas.append(Delta(rec.serial, rec.serial, [rec], []))  # type: ignore[arg-type]  # an SOA has a serial
                    return
                if rec.rdata == self.soa.rdata:
                    # a zone holding only its SOA, sent AXFR-style
                    self._full_zone(self.soa)
                    self.axfr_style = True
                    self.state = _State.DONE
                    return
                raise BadDataError(
                    f"IXFR answer starts at serial {rec.serial}, we asked from {self.serial}"
                )
            # not an SOA: the whole zone, AXFR-style (RFC 1995 section 4)
            if rec.rdtype == SOA:
                raise BadDataError(f"SOA record at {rec.owner}, not at the zone apex")
            self.axfr_style = True
            self._full_zone(self.soa, rec)
            return
        delta = self.deltas[-1]
        if state is _State.DELETING:
            if self._is_apex_soa(rec):
                delta.serial_to = rec.serial  # type: ignore[assignment]  # an SOA has a serial
                delta.added.append(rec)
                self.state = _State.ADDING
                return
            if rec.rdtype == SOA:
                raise BadDataError(f"SOA record at {rec.owner}, not at the zone apex")
            delta.deleted.append(rec)
            return
        if state is _State.ADDING:
            if self._is_apex_soa(rec):
                if rec.serial == self.new_serial and delta.serial_to == self.new_serial:
                    if rec.rdata != self.soa.rdata:  # type: ignore[union-attr]  # soa is set by the first record
                        raise BadDataError("final SOA of the IXFR differs from the first")
                    self.state = _State.DONE
                    return
                if rec.serial != delta.serial_to:
                    raise BadDataError(
                        f"IXFR delta starts at serial {rec.serial}, expected {delta.serial_to}"
                    )
                self.deltas.append(Delta(rec.serial, rec.serial, [rec], []))
                self.state = _State.DELETING
                return
            if rec.rdtype == SOA:
                raise BadDataError(f"SOA record at {rec.owner}, not at the zone apex")
            delta.added.append(rec)
            return
        raise AssertionError(state)

    def finish(self) -> None:
        """Called at end of stream: the transfer must be complete."""
        if self.state is not _State.DONE:
            raise BadDataError(
                f"the transfer ended before its final SOA ({self.count} records received)"
            )
