"""Host names in a zone, as BIND's check-names sees them: the owners of address
records, NS/MX/SRV targets and the SOA MNAME must be host names (letters, digits,
hyphens; RFC 952, RFC 1123 2.1), and a target must not be an IPv4 address written
as a name.

A big zone's names are settled by one scan of their joined text
(:func:`plain_hostnames`, :func:`invalid_hostnames`); only what the scan finds odd
is matched name by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from secdns import checks, wire
from secdns.checks.survey import ADDRESS_TYPES
from secdns.checks.zoneindex import is_absolute_text

if TYPE_CHECKING:
    from secdns.checks.survey import Survey, Target

_LDH_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"(?:\*\.)?{_LDH_LABEL}(?:\.{_LDH_LABEL})*\.?|\*")
LDH_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.\n"
DOTTED_QUAD = re.compile(r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\.")


def check_hostnames(survey: Survey) -> None:
    """The owners of address records, the apex included, must be host names."""
    for text in invalid_hostnames(survey.address_owners):
        absolute = survey.index.absolute(text)
        group = survey.index.group(survey.index.name_key(absolute))
        rdtype = next((wire.type_text(r.rdtype) for r in group if r.rdtype in ADDRESS_TYPES), None)
        survey.findings.append(
            checks.HOSTNAME.warning(
                absolute,
                rdtype,
                "the owner of an address record is not a valid host name "
                "(letters, digits, hyphens)",
            )
        )
    if "@" in survey.address_owners and not HOSTNAME.fullmatch(survey.index.origin_text):
        survey.findings.append(
            checks.HOSTNAME.warning(
                survey.index.origin_text,
                None,
                "the owner of an address record is not a "
                "valid host name (letters, digits, hyphens)",
            )
        )


def hostname_target(survey: Survey, target: Target, rdtype: str, field: str = "target") -> None:
    """One NS/MX/SRV target or SOA MNAME must be a host name, not an address (a good
    one is remembered in ``survey.good_hostnames``)."""
    text = target.text
    if text == "@" or text == "." or text in survey.good_hostnames:
        return
    if is_absolute_text(text) and DOTTED_QUAD.fullmatch(text):
        survey.findings.append(
            checks.HOSTNAME.warning(
                survey.owner(target.record),
                rdtype,
                f"{rdtype} {field} {text} is an IPv4 address written as a name; it must name "
                "a host",
            )
        )
        return
    absolute = survey.index.absolute(text)
    if not HOSTNAME.fullmatch(absolute) or absolute.startswith("*"):
        survey.findings.append(
            checks.HOSTNAME.warning(
                survey.owner(target.record),
                rdtype,
                f"{rdtype} {field} {absolute} is not a valid host name (letters, digits, hyphens)",
            )
        )
    else:
        survey.good_hostnames.add(text)


def plain_hostnames(texts: Iterable[str]) -> set[str]:
    """Target texts (as records write them) that one scan shows to be valid host
    names, relative ones given an origin that is one; empty if the scan finds
    anything unusual (a '*', an odd hyphen, an empty label...), and never a text
    that starts with a digit (an absolute one may be an address written as a name).
    Each text left out is checked alone by :func:`hostname_target`."""
    unique = set(texts)
    unique.discard("@")
    unique.discard(".")
    blob = "\n".join(unique).encode("ascii", "replace")
    if (
        not blob
        or blob.translate(None, LDH_BYTES)
        or b".." in blob
        or b"\n." in blob
        or blob.startswith((b".", b"-", b"\n"))
        or blob.endswith((b"-", b"\n"))
        or b"-." in blob
        or b".-" in blob
        or b"\n-" in blob
        or b"-\n" in blob
        or b"\n\n" in blob
    ):
        return set()
    return {text for text in unique if not text[0].isdigit()}


def invalid_hostnames(owners: list[str]) -> list[str]:
    """Owner texts (relative, as records write them) that are not host names.

    One scan of the joined text settles the usual all-clean case; only if it finds
    something suspicious are the names matched one by one.
    """
    texts = [text for text in owners if text != "@"]
    blob = "\n".join(texts).encode("ascii", "replace")
    stars = blob.count(b"*")
    suspicious = (
        bool(blob.translate(None, LDH_BYTES).replace(b"*", b""))
        or (
            b"-" in blob
            and (
                b"-." in blob
                or b".-" in blob
                or b"\n-" in blob
                or b"-\n" in blob
                or blob.startswith(b"-")
                or blob.endswith(b"-")
            )
        )
        or (
            stars
            and stars
            != (
                blob.count(b"\n*.")
                + blob.count(b"\n*\n")
                + blob.startswith(b"*.")
                + blob.startswith(b"*\n")
                + blob.endswith(b"\n*")
                + (blob == b"*")
            )
        )
    )
    if not suspicious:
        return []
    return [text for text in texts if not HOSTNAME.fullmatch(text)]
