"""Integrity of one copy of a zone's data: pure checks over its records.

Everything named-checkzone rejects is an error here, and what it warns about
is a warning (``tests/test_checks.py`` runs the real named-checkzone over the
broken-zone corpus to keep it so); a few things BIND lets pass silently
(CNAME loops, data below a DNAME, occluded data, SOA timers) are reported too.

The work is linear in the number of records: one grouping pass
(:class:`~secdns.checks.zoneindex.ZoneIndex`), one pass over the owners
(:class:`~secdns.checks.survey.Survey`, which also reports what a single record
or name shows), then the zone-wide checks, one family each: the apex (here: SOA
and its timers, apex NS, CNAME loops), :mod:`~secdns.checks.targets` (NS/MX/SRV
targets and glue), :mod:`~secdns.checks.occlusion` (data hidden by cuts and
DNAMEs, out-of-zone data) and :mod:`~secdns.checks.hostnames` (check-names).
"""

from __future__ import annotations

import dns.name

from secdns import checks, wire
from secdns.checks import Finding, hostnames, occlusion, targets
from secdns.checks.survey import NS_ONLY, Survey, Target
from secdns.checks.zoneindex import Key, ZoneIndex

# SOA sanity (RFC 1912 2.2 suggests an expire of 2-4 weeks).
MIN_EXPIRE = 7 * 86400


def check_integrity(
    origin: dns.name.Name, records: list[wire.Record], *, index: ZoneIndex | None = None
) -> list[Finding]:
    """Every integrity finding for the zone ``origin`` made of ``records``."""
    survey = Survey(index or ZoneIndex.build(origin, records))
    survey.run()
    check_soa(survey)
    check_apex_ns(survey)
    check_cname_loops(survey)
    targets.check_targets(survey)
    occlusion.check_occluded(survey)
    occlusion.check_out_of_zone(survey)
    hostnames.check_hostnames(survey)
    return survey.findings


def check_soa(survey: Survey) -> None:
    apex = survey.index.origin_text
    distinct = {rec.rdata.lower(): rec for rec in survey.apex_soa}
    if not distinct:
        survey.findings.append(checks.SOA.error(apex, "SOA", "no SOA record at the apex"))
        return
    if len(distinct) > 1:
        survey.findings.append(
            checks.SOA.error(
                apex, "SOA", f"{len(distinct)} SOA records at the apex; exactly one is allowed"
            )
        )
    soa = survey.apex_soa[0]
    try:
        _serial, refresh, retry, expire, _minimum = wire.soa_fields(soa)
    except ValueError:
        return
    mname = soa.rdata.split(" ", 1)[0]
    hostnames.hostname_target(survey, Target(soa, mname, ()), "SOA", "MNAME")
    problems = []
    if retry >= refresh:
        problems.append(f"retry ({retry}) is not shorter than refresh ({refresh})")
    if refresh >= expire:
        problems.append(f"refresh ({refresh}) is not shorter than expire ({expire})")
    if expire < MIN_EXPIRE:
        problems.append(
            f"expire ({expire}) is shorter than a week: secondaries drop the "
            "zone after that long without the primary (2-4 weeks suggested)"
        )
    for problem in problems:
        survey.findings.append(checks.SOA_TIMERS.warning(apex, "SOA", problem))


def check_apex_ns(survey: Survey) -> None:
    if not survey.has_type(survey.index.origin_key, NS_ONLY):
        survey.findings.append(
            checks.APEX_NS.error(survey.index.origin_text, "NS", "no NS records at the apex")
        )


def check_cname_loops(survey: Survey) -> None:
    targets = survey.cname_target
    done: set[Key] = set()
    for start in targets:
        path: list[Key] = []
        on_path: set[Key] = set()
        key: Key | None = start
        while key is not None and key in targets and key not in done:
            if key in on_path:
                loop = path[path.index(key) :]
                first = min(loop)
                turn = loop.index(first)
                loop = loop[turn:] + loop[:turn] + [first]
                chain = " -> ".join(survey.index.key_text(k) for k in loop)
                survey.findings.append(
                    checks.CNAME_LOOP.error(
                        survey.index.key_text(first), "CNAME", f"CNAME loop: {chain}"
                    )
                )
                break
            on_path.add(key)
            path.append(key)
            key = targets[key]
        done.update(path)
