"""Data a resolver can never get from this zone: data at or below a zone cut that is
not NS, DS or glue (the child zone answers for it), data below a DNAME (RFC 6672
2.4), and records outside the zone (BIND: ignoring out-of-zone data).

Names below the cuts are found per blocker depth (:func:`below_some`), not by
walking every depth of every name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from secdns import checks, wire
from secdns.checks.survey import ADDRESS_TYPES, AT_CUT_TYPES
from secdns.checks.zoneindex import Key

if TYPE_CHECKING:
    from secdns.checks.survey import Survey


def check_occluded(survey: Survey) -> None:
    """Data at or below a zone cut that is not glue, and data below a DNAME."""
    if not survey.cuts and not survey.dnames:
        return
    blockers = survey.cuts | survey.dnames
    glue = {target.key for target in survey.ns}
    shortest = min(len(key) for key in blockers)
    first = survey.index.first
    groups = survey.index.groups
    only_cuts = not survey.dnames
    for key in below_some(first, blockers, survey.depth):
        if only_cuts and key in glue and survey.has_only_addresses(key):
            continue  # (glue: most names below the cuts of a big zone)
        above = None
        for end in range(shortest, len(key)):
            if key[:end] in blockers:
                above = key[:end]
                break
        if above is None:
            continue
        group = groups.get(key) or (first[key],)
        if above in survey.dnames and above not in survey.cuts:
            for rdtype in _types(group):
                survey.findings.append(
                    checks.OCCLUDED.error(
                        survey.owner(group[0]),
                        wire.type_text(rdtype),
                        f"data below the DNAME at {survey.index.key_text(above)}: "
                        "it can never be answered",
                        "RFC 6672 2.4",
                    )
                )
            continue
        for rdtype in _types(group):
            if rdtype in ADDRESS_TYPES and key in glue:
                continue
            survey.findings.append(
                checks.OCCLUDED.warning(
                    survey.owner(group[0]),
                    wire.type_text(rdtype),
                    f"data below the delegation at {survey.index.key_text(above)} "
                    "is not glue: the child zone answers for this name",
                )
            )
    for key in survey.cuts:
        if survey.enclosing(key, blockers, inclusive=False) is None:
            at_cut(survey, key, survey.index.group(key), glue)


def at_cut(survey: Survey, key: Key, group: Sequence[wire.Record], glue: set[Key]) -> None:
    for rdtype in _types(group):
        if rdtype in AT_CUT_TYPES or (rdtype in ADDRESS_TYPES and key in glue):
            continue
        survey.findings.append(
            checks.OCCLUDED.warning(
                survey.owner(group[0]),
                wire.type_text(rdtype),
                "data at a delegation point other than NS, DS and glue: the child zone "
                "answers for this name",
            )
        )


def check_out_of_zone(survey: Survey) -> None:
    seen: set[tuple[Key, int]] = set()
    for rec in survey.index.out_of_zone:
        if (rec.key, rec.rdtype) in seen:
            continue
        seen.add((rec.key, rec.rdtype))
        survey.findings.append(
            checks.OUT_OF_ZONE.warning(
                survey.owner(rec),
                wire.type_text(rec.rdtype),
                f"outside the zone {survey.index.origin_text}: ignored (BIND: ignoring "
                "out-of-zone data)",
            )
        )


def child_labels(blockers: set[Key], depth: int) -> frozenset[bytes] | None:
    """The labels of ``blockers`` below the apex if they all are children of the apex
    (``depth`` labels deep), else None."""
    if all(len(key) == depth + 1 for key in blockers):
        return frozenset(key[depth] for key in blockers)
    return None


def below_some(keys: Iterable[Key], blockers: set[Key], depth: int) -> list[Key]:
    """The in-zone keys strictly below some key of ``blockers``, in their order.

    One comprehension per depth that blockers have (usually one: the delegations
    one label below the apex, ``depth`` labels deep, when a label is enough),
    instead of a loop over every depth for every name."""
    labels = child_labels(blockers, depth)
    if labels is not None:
        return [key for key in keys if len(key) > depth + 1 and key[depth] in labels]
    depths = sorted({len(key) for key in blockers})
    if len(depths) == 1:
        depth = depths[0]
        return [key for key in keys if len(key) > depth and key[:depth] in blockers]
    keys = list(keys)
    below: set[Key] = set()
    for depth in depths:
        below.update(key for key in keys if len(key) > depth and key[:depth] in blockers)
    return [key for key in keys if key in below]


def _types(group: Sequence[wire.Record]) -> list[int]:
    """The distinct types of a name's records, in order of first appearance."""
    return list(dict.fromkeys(rec.rdtype for rec in group))
