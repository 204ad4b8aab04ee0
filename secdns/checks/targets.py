"""The targets of NS, MX and SRV records: a target inside the zone must own
address records and must not be a CNAME (RFC 2181 10.3, RFC 2782, RFC 5321 5.1);
a name server inside a delegation needs glue.  BIND refuses a zone whose own
name servers are broken, and warns about a delegation's: so do these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from secdns import checks, wire
from secdns.checks import hostnames, occlusion
from secdns.checks.survey import SRV
from secdns.checks.zoneindex import Key

if TYPE_CHECKING:
    from secdns.checks.survey import Survey, Target


def check_targets(survey: Survey) -> None:
    """NS, MX and SRV targets: CNAMEs, addresses, glue, host name syntax."""
    apex = survey.index.origin_key
    survey.cut_labels = occlusion.child_labels(survey.cuts, survey.depth)
    good = survey.good_hostnames
    origin = survey.index.origin_text
    if "*" not in origin and hostnames.HOSTNAME.fullmatch(origin):
        good |= hostnames.plain_hostnames(t.text for t in (*survey.ns, *survey.mx_srv))
    for target in survey.ns:
        if target.text not in good:
            hostnames.hostname_target(survey, target, "NS")
        if not survey.index.in_zone(target.key):
            continue
        at_apex = target.record.key == apex
        cut = survey.cut_of(target.key)
        if cut is not None:
            if not survey.has_address(target.key):
                missing_glue(survey, target, cut, at_apex)
            continue
        if target.key in survey.cname_target:
            problem = f"name server {survey.shown(target)} is a CNAME"
            check = checks.TARGET_IS_CNAME
        elif not survey.redirected(target.key) and not survey.has_address(target.key):
            problem = f"name server {survey.shown(target)} has no address records (A or AAAA)"
            check = checks.TARGET_ADDRESS
        else:
            continue
        owner = survey.owner(target.record)
        # BIND refuses a zone whose own name servers are broken; a delegation's, it warns.
        survey.findings.append(
            check.error(owner, "NS", problem) if at_apex else check.warning(owner, "NS", problem)
        )
    for target in survey.mx_srv:
        rdtype = wire.type_text(target.record.rdtype)
        if target.text not in good:
            hostnames.hostname_target(survey, target, rdtype)
        if not survey.index.in_zone(target.key):
            continue
        if survey.cut_of(target.key) or survey.redirected(target.key):
            continue  # the name lives in a child zone, or is redirected
        rfc = "RFC 2782" if target.record.rdtype == SRV else None
        if target.key in survey.cname_target:
            survey.findings.append(
                checks.TARGET_IS_CNAME.warning(
                    survey.owner(target.record),
                    rdtype,
                    f"{rdtype} target {survey.shown(target)} is a CNAME",
                    rfc,
                )
            )
        elif not survey.has_address(target.key):
            survey.findings.append(
                checks.TARGET_ADDRESS.warning(
                    survey.owner(target.record),
                    rdtype,
                    f"{rdtype} target {survey.shown(target)} has no address records (A or AAAA)",
                    rfc or "RFC 5321 5.1",
                )
            )


def missing_glue(survey: Survey, target: Target, cut: Key, at_apex: bool) -> None:
    delegation = target.record.key
    name = survey.shown(target)
    if not at_apex and (target.key == delegation or survey.index.is_below(target.key, delegation)):
        message = (
            f"name server {name} is inside the delegated zone but has no glue "
            "address records (A or AAAA)"
        )
    else:
        message = (
            f"name server {name} is inside the delegation "
            f"{survey.index.key_text(cut)} and has no glue address records (A or AAAA)"
        )
    survey.findings.append(checks.MISSING_GLUE.warning(survey.owner(target.record), "NS", message))
