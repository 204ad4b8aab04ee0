"""secdns_transfers_total from plain counts (secdns.metrics.TransferCounts) exposes what
the prometheus Counter it replaced did, byte for byte (its _created times aside, which
are the moments each label set was first counted)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, generate_latest

from secdns.metrics import TransferCounts

INCS = [
    ("a.example.", "axfr", "ok"),
    ("b.example.", "ixfr", "failed"),
    ("a.example.", "axfr", "ok"),
    ("a.example.", "ixfr", "ok"),
    ('odd"\\name.', "axfr", "failed"),
]


def _without_created_values(text: str) -> str:
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)


def test_transfer_counts_expose_what_a_counter_did():
    old_registry = CollectorRegistry(auto_describe=True)
    counter = Counter(
        "secdns_transfers",
        "Zone transfers in, by kind and result",
        ["zone", "kind", "result"],
        registry=old_registry,
    )
    new_registry = CollectorRegistry(auto_describe=True)
    counts = TransferCounts()
    new_registry.register(counts)
    assert generate_latest(new_registry) == generate_latest(old_registry)  # none yet
    for labels in INCS:
        counter.labels(*labels).inc()
        counts.inc(*labels)
    old, new = generate_latest(old_registry).decode(), generate_latest(new_registry).decode()
    assert _without_created_values(new) == _without_created_values(old)
    assert 'secdns_transfers_total{kind="axfr",result="ok",zone="a.example."} 2.0' in new


def test_created_is_the_first_count():
    counts = TransferCounts()
    counts.inc("z.", "axfr", "ok")
    first = counts.counts[("z.", "axfr", "ok")][1]
    counts.inc("z.", "axfr", "ok")
    assert counts.counts[("z.", "axfr", "ok")] == [2.0, first]
