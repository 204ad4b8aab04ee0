"""ZoneTable.served_below: the child zones served beneath a zone, kept per table generation."""

from __future__ import annotations

import random

import dns.name

from secdns.server.zone import ServedZone, ZoneTable


def naive(table: ZoneTable, apex: str) -> set[str]:
    if apex == ".":
        return {key for key in table.zones if key != "."}
    return {key for key in table.zones if key != apex and key.endswith("." + apex)}


def test_served_below_equals_the_scan_it_replaced_as_zones_come_and_go():
    rng = random.Random(12)
    labels = ["a", "b", "c", "example", "com", "net"]
    table = ZoneTable()
    for _ in range(400):
        name = ".".join(rng.choice(labels) for _ in range(rng.randint(1, 4))) + "."
        if rng.random() < 0.3 and table.zones:
            table.remove(rng.choice(list(table.zones)))
        elif name not in table.zones:
            table.add(ServedZone(dns.name.from_text(name)))
        for apex in rng.sample(list(table.zones), min(5, len(table.zones))):
            assert set(table.served_below(apex)) == naive(table, apex)
