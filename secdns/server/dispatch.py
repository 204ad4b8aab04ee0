"""What one query's bytes get back: the server's answering side, mixed into
:class:`secdns.server.server.Server`.

A UDP query tries, in order: the answer cache, the prepared owner forms
(:mod:`secdns.server.prepared`), a COOKIE query's cached shape, the learned negative
answers (:mod:`secdns.server.fastpath`), then the front (:mod:`secdns.server.front`),
which classifies the opcode once.  A NOTIFY goes to :func:`secdns.notify.answer_notify`
and wakes the zone's refresher; AXFR/IXFR go to :mod:`secdns.server.xfrout` after
allow_transfer and ``transfer_transport``.  No sockets here (:mod:`secdns.server.listeners`)
and no lifecycle (:mod:`secdns.server.server`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig

from secdns import notify
from secdns.replies import make_response
from secdns.server import front, xfrout
from secdns.server.fastpath import split_cookie
from secdns.server.render import EDNS_PAYLOAD
from secdns.unreachable import notify_ports

if TYPE_CHECKING:
    from secdns.config import Config
    from secdns.control import Operations
    from secdns.server.fastpath import NegativeAnswers
    from secdns.server.listeners import Listeners
    from secdns.server.prepared import PreparedAnswers
    from secdns.server.udp import AnswerCache
    from secdns.server.zone import ZoneTable
    from secdns.server.zones import ZoneRuntime
    from secdns.unreachable import Unreachable

log = logging.getLogger("secdns.server.server")
query_log = logging.getLogger("secdns.query")


class QueryDispatch:
    """Answering for :class:`~secdns.server.server.Server`, which sets these attributes."""

    config: Config
    log_queries: bool
    table: ZoneTable
    runtimes: dict[dns.name.Name, ZoneRuntime]
    cache: AnswerCache
    negative: NegativeAnswers
    prepared: PreparedAnswers
    keyring: dict[dns.name.Name, dns.tsig.Key]
    _key_names: dict[str, dns.name.Name]  # [keys.NAME] table name -> TSIG key name
    notify_refusals: notify.RefusalLog
    tsig_refusals: notify.RefusalLog  # queries and transfers whose TSIG does not verify
    operations: Operations
    listeners: Listeners
    _loop: asyncio.AbstractEventLoop | None  # where a NOTIFY from a UDP thread wakes a zone
    unreachable: Unreachable | None  # primaries held after timeouts (a NOTIFY clears one)

    def answer_udp(self, data: bytes, source: str, looked_up: bool = False) -> bytes | None:
        """Answer a UDP query; ``looked_up``: the caller already missed the answer cache.

        A query whose only EDNS option is a COOKIE gets the answer cached for its shape
        (under "C" and the query without the option) with a fresh server cookie added."""
        key = b"U" + data[2:]
        cached = None if looked_up else self.cache.get(key)
        if cached is not None:
            if self.log_queries:
                self._log_query(data, source, "udp", cached=True)
            return data[:2] + cached
        prepared = self.prepared.answer(data)  # the first ask of a name: prepared owner forms
        if prepared is not None:
            self.cache.put(key, prepared[1], prepared[0][2:])
            if self.log_queries:
                self._log_query(data, source, "udp")
            return prepared[0]
        split = split_cookie(data)
        if split is not None:
            stripped, client_cookie = split
            cached = self.cache.get(b"C" + stripped[2:])
            answer = data[:2] + cached if cached is not None else self.negative.answer(stripped)
            if answer is not None:
                out = front.add_cookie(answer, front.cookie_option(client_cookie, source))
                if out is not None:
                    if self.log_queries:
                        self._log_query(data, source, "udp", cached=True)
                    return out
        else:
            fast = self.negative.answer(data) or self.negative.refusal(data)
            if fast is not None:
                if self.log_queries:
                    self._log_query(data, source, "udp")
                return fast
        reply = front.handle(
            data,
            self.table,
            tcp=False,
            keyring=self.keyring,
            client=source,
            idle_timeout=self.config.server.tcp_idle_timeout,
        )
        if reply.kind == "query":
            if reply.wire is not None and reply.cacheable and reply.zone is not None:
                if not reply.cookie:
                    self.cache.put(key, reply.zone, reply.wire[2:])
                    self.negative.learn(data, reply.wire, reply.zone)
                elif split is not None:
                    bare = reply.wire[2 : -(reply.cookie + 2)] + b"\x00\x00"
                    self.cache.put(b"C" + split[0][2:], reply.zone, bare)
            elif reply.wire is not None and split is None:
                self.negative.learn_refusal(data, reply.wire)
            if self.log_queries:
                self._log_query(data, source, "udp")
            return reply.wire
        if reply.kind == "notify":
            return self._notify_in(data, source)
        if reply.kind == "xfr" and reply.query is not None:
            return self._xfr_over_udp(reply.query)
        if reply.kind == "tsig":
            self._tsig_refused(source, "udp", reply)
        return reply.wire

    def answer_tcp(
        self, data: bytes, source: str, tls: bool = False, port: int = 0
    ) -> Iterable[bytes]:
        key = b"T" + data[2:]
        cached = self.cache.get(key)
        if cached is not None:
            return (data[:2] + cached,)
        fast = self.negative.answer(data)
        if fast is not None:
            return (fast,)
        reply = front.handle(
            data,
            self.table,
            tcp=True,
            keyring=self.keyring,
            client=source,
            idle_timeout=self.config.server.tcp_idle_timeout,
        )
        if reply.kind == "query":
            cacheable = reply.cacheable and not reply.cookie
            if reply.wire is not None and cacheable and reply.zone is not None:
                self.cache.put(key, reply.zone, reply.wire[2:])
            if self.log_queries:
                self._log_query(data, source, "tcp")
            return (reply.wire,) if reply.wire is not None else ()
        if reply.kind == "notify":
            out = self._notify_in(data, source)
            return (out,) if out else ()
        if reply.kind == "xfr" and reply.query is not None:
            return self._xfr(reply.query, source, tls, port)
        if reply.kind == "tsig":
            self._tsig_refused(source, "tls" if tls else "tcp", reply)
        return (reply.wire,) if reply.wire is not None else ()

    def _tsig_refused(self, source: str, transport: str, reply: front.Reply) -> None:
        """A query or transfer whose TSIG does not verify (answered NOTAUTH): a warning,
        at most once a minute per source and key (a downstream with the wrong key was
        seen nowhere but in secdns_queries_total{rcode="NOTAUTH"})."""
        self.tsig_refusals.said(
            source,
            reply.signer,
            f"{reply.detail} from {source} over {transport}: answered NOTAUTH",
        )

    def _notify_in(self, data: bytes, source: str) -> bytes | None:
        def lookup(zone: dns.name.Name) -> notify.NotifyAcl | None:
            runtime = self.runtimes.get(zone)
            return runtime.notify_acl if runtime is not None and runtime.is_secondary else None

        decision = notify.answer_notify(data, source, lookup, self.keyring)
        self.operations.notify_received(decision)
        if decision.zone is not None:
            runtime = self.runtimes[decision.zone]
            if log.isEnabledFor(logging.INFO):  # (the primaries it tries, in order)
                primaries = ", ".join(map(str, runtime.config.primaries))
                log.info(
                    "notify: zone=%s from %s: checking %s now", runtime.name, source, primaries
                )
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._notified, runtime, source, decision.serial)
            else:
                self._notified(runtime, source, decision.serial)
        elif decision.tsig_error is not None:  # a warning, as for queries (wrong key)
            self.tsig_refusals.said(
                source,
                str(decision.signer),
                f"NOTIFY of {decision.qname or '?'} signed with key {decision.signer}: "
                f"{decision.tsig_error} from {source}: answered NOTAUTH",
            )
        else:
            self.notify_refusals.refused(source, str(decision.qname or "?"), decision.reason)
        return decision.response

    def _notified(self, runtime: ZoneRuntime, source: str, serial: int | None = None) -> None:
        """A zone's NOTIFY was accepted (on the loop): its sender is up, check now
        (``serial``: the one it announced, checked for: :meth:`Refresher.wake`)."""
        if self.unreachable is not None:
            self.unreachable.forget(source, notify_ports(source, runtime.primary_addresses))
        runtime.refresher.wake(serial, notified=True)

    def _xfr_over_udp(self, parsed: dns.message.Message) -> bytes | None:
        """IXFR over UDP: answer with the SOA only, so the client uses TCP (RFC 1995)."""
        response = make_response(parsed, our_payload=EDNS_PAYLOAD)
        question = parsed.question[0]
        runtime = self.runtimes.get(question.name)
        if question.rdtype == dns.rdatatype.AXFR or runtime is None:
            response.set_rcode(dns.rcode.FORMERR if runtime else dns.rcode.NOTAUTH)
            return response.to_wire()
        if runtime.zone.servfail or runtime.zone.version is None:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        response.flags |= dns.flags.AA
        response.answer.append(runtime.zone.version.soa_rrset())
        return response.to_wire()

    def _xfr(
        self, parsed: dns.message.Message, source: str, tls: bool = False, port: int = 0
    ) -> Iterator[bytes]:
        question = parsed.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        runtime = self.runtimes.get(question.name)
        if runtime is None:
            log.info(
                "xfr: %s of %s from %s: not a zone of ours (NOTAUTH)", kind, question.name, source
            )
            yield xfrout.error_response(parsed, dns.rcode.NOTAUTH)
            return
        key_name = parsed.keyname if parsed.had_tsig else None
        if not xfrout.transfer_allowed(
            runtime.config.allow_transfer, source, key_name, self._key_names
        ):
            why = xfrout.refusal_reason(
                runtime.config.allow_transfer, source, key_name, self._key_names
            )
            log.warning(
                "xfr: zone=%s %s from %s%s refused by allow_transfer%s",
                runtime.name,
                kind,
                source,
                f" (key {key_name})" if key_name else "",
                f": {why}" if why else "",
            )
            yield xfrout.error_response(parsed, dns.rcode.REFUSED)
            return
        if runtime.config.transfer_transport == "tls" and not tls:
            log.warning(
                'xfr: zone=%s %s from %s refused: transfer_transport = "tls", and this is '
                "not a TLS 1.3 session on tls_listen",
                runtime.name,
                kind,
                source,
            )
            yield xfrout.error_response(parsed, dns.rcode.REFUSED)
            return
        version = runtime.zone.version
        if version is None or runtime.zone.servfail:
            yield xfrout.error_response(parsed, dns.rcode.SERVFAIL)
            return
        self.listeners.transferred(source)  # (a secondary's share of TCP connections)
        expire = None
        if any(option.otype == front.EXPIRE for option in parsed.options):
            expire = front.expire_seconds(runtime.zone)
        sent = {"as": "axfr"}
        if question.rdtype == dns.rdatatype.IXFR:
            messages = xfrout.ixfr_messages(parsed, version, list(runtime.journal), expire, sent)
        else:
            messages = xfrout.axfr_messages(parsed, version, expire)
        client = f"{source}#{port}" if port else source
        if tls:
            client += " over TLS"
        yield from self._sent(runtime.name, kind, parsed, client, version.serial, messages, sent)

    def _sent(
        self,
        zone: str,
        kind: str,
        parsed: dns.message.Message,
        client: str,
        serial: int,
        messages: Iterator[bytes],
        sent: dict[str, str],
    ) -> Iterator[bytes]:
        """``messages`` passed on, then one line of what went out (and the metrics):
        the client and its key, the serials, messages, bytes and time, and an IXFR
        answered with the whole zone said so (a stranger could not tell two downstreams
        on one address apart, nor an IXFR from a full zone); ``client``: its address, port
        and " over TLS" for an XoT session."""
        started = time.monotonic()
        count = size = 0
        key = f" key {parsed.keyname}" if parsed.had_tsig else ""
        try:
            for message in messages:
                count += 1
                size += len(message)
                yield message
        except GeneratorExit:  # the client went away (or serve stops)
            log.info(
                "xfr: zone=%s %s to %s%s cut short after %d messages, %d bytes",
                zone,
                kind,
                client,
                key,
                count,
                size,
            )
            cut = "ixfr-full" if kind == "IXFR" and sent["as"] == "axfr" else sent["as"]
            self.operations.metrics.count_transfer_out(cut, "cut")
            raise
        how = sent["as"]
        counted = "ixfr-full" if kind == "IXFR" and how == "axfr" else how
        if kind == "IXFR":
            had = xfrout.client_serial(parsed)
            serials = f"serial {had if had is not None else '-'} -> {serial}"
            if how == "axfr":
                serials += " as the whole zone (the journal does not reach its serial)"
            elif how == "current" and had is not None and had != serial:  # (RFC 1982 newer)
                serials = f"serial {had}, ahead of ours {serial}: our SOA alone"
            elif how == "current":
                serials += " (up to date)"
        else:
            serials = f"serial {serial}"
        log.info(
            "xfr: zone=%s %s to %s%s %s: %d messages, %d bytes, %.2f s",
            zone,
            kind,
            client,
            key,
            serials,
            count,
            size,
            time.monotonic() - started,
        )
        self.operations.metrics.count_transfer_out(counted, "ok")

    def _log_query(self, data: bytes, source: str, transport: str, cached: bool = False) -> None:
        try:
            query = dns.message.from_wire(data, keyring=False, ignore_trailing=True)
            question = query.question[0]
            query_log.info(
                "query: %s %s %s from %s/%s%s",
                question.name,
                dns.rdatatype.to_text(question.rdtype),
                dns.rdataclass.to_text(question.rdclass),
                source,
                transport,
                " (cached)" if cached else "",
            )
        except Exception:
            query_log.info("query: unparsable from %s/%s", source, transport)
