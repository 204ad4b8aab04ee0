"""``secdns verify``: check a zone's data, its DNSSEC, and what its servers say.

Parse, call :func:`secdns.verify.verify_zone`, render.  The renderers below take
a :class:`~secdns.verify_report.VerifyReport` and a stream, as ``secdns.output``'s do,
and belong there once that module grows a verify section.
"""

from __future__ import annotations

import asyncio
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

import click
import dns.name
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from secdns import output
from secdns.checks import CHECKS, Finding, Severity, UnknownCheck, select
from secdns.cli.options import (
    complete_zones,
    config_option,
    json_option,
    network_options,
    resolve_key,
    resolve_tls,
    split_list,
    tls_options,
    tsig_options,
    verbosity_options,
)
from secdns.config import parse_zone_name
from secdns.errors import UsageError
from secdns.store import atomic_write
from secdns.verify import verify_zone
from secdns.verify_report import CheckStatus, VerifyOptions, VerifyReport


@click.command("verify")
@click.argument("zone", required=False, shell_complete=complete_zones)
@click.argument("sources", nargs=-1, metavar="[SOURCE...]")
@config_option
@click.option("--strict", is_flag=True, help="Fail on warnings too (exit 1).")
@click.option(
    "--sig-warn-days",
    type=click.FloatRange(min=0),
    default=7.0,
    show_default=True,
    help="Warn about RRSIGs that expire within this many days.",
)
@click.option(
    "--nameservers",
    type=click.Choice(["auto"]),
    default=None,
    help="auto: also query every IPv4/IPv6 address of every name in the zone's NS "
    "set, as the DNS has it.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also transfer the zone (AXFR) from every server address: run the data "
    "checks on each copy and diff the copies.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also write the results as JUnit XML, one test case per check.",
)
@click.option(
    "--check",
    "include",
    multiple=True,
    metavar="CHECK[,CHECK]",
    help="Run only these checks or families (integrity, dnssec, consistency); "
    "comma-separated or repeated.  One that finds nothing to check fails "
    "(--check dnssec on an unsigned zone).",
)
@click.option(
    "--skip",
    "exclude",
    multiple=True,
    metavar="CHECK[,CHECK]",
    help="Do not run these checks or families; comma-separated or repeated.",
)
@click.option("--list-checks", is_flag=True, help="List every check and exit.")
@click.option(
    "--catalog",
    "catalog_name",
    metavar="CATALOG",
    help="Check that the @SERVERs agree on the catalog zone CATALOG (RFC 9432) and on "
    "every member's serial.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Server addresses queried (or transferred from) at once.",
)
@tsig_options
@tls_options
@network_options
@json_option
@verbosity_options
def command(
    zone: str | None,
    sources: tuple[str, ...],
    config_path: str | None,  # where --key NAME is found: resolve_key reads it
    strict: bool,
    sig_warn_days: float,
    nameservers: str | None,
    deep: bool,
    junit_path: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    list_checks: bool,
    catalog_name: str | None,
    jobs: int,
    tsig: str | None,
    keyfile: str | None,
    timeout: float,
    lifetime: float,
    as_json: bool,
    verbose: int,
    quiet: bool,
) -> None:
    """Check a zone: its data, its DNSSEC and ZONEMD, and what its servers say.

    SOURCE is a zone file, '-' for stdin, a store directory (-d of pull), or
    @SERVER[:PORT].  Files are checked for integrity (what named-checkzone
    rejects is an error, what it warns about a warning) and, when signed, for
    DNSSEC and ZONEMD.  Each @SERVER address (and with --nameservers auto every
    address of every NS) is asked for the SOA: serials must agree, answers must
    be authoritative; --deep also transfers and checks every copy.  The SOA
    queries go unsigned: --tsig/-k signs the --deep transfers only.

    Exit status: 0 every check passed (warnings allowed unless --strict),
    1 a check failed, 2 and up the checks could not run (see secdns -h).

    \b
    Examples:
      secdns verify example.com example.com.zone
      secdns verify example.com - < example.com.zone --strict
      secdns verify example.com /var/lib/secdns          # the stored copy
      secdns verify example.com @ns1.example.net @ns2.example.net
      secdns verify example.com --nameservers auto --deep --junit verify.xml
      secdns verify example.com zone.db --skip integrity.hostname --json
      secdns verify --catalog catalog.example @ns1.example.net @ns2.example.net
    """
    from secdns.cli import setup_logging

    setup_logging(verbose, quiet)
    if list_checks:
        render_catalogue(sys.stdout, as_json=as_json)
        return
    if catalog_name is not None:  # every argument is then an @SERVER
        if junit_path is not None:
            raise UsageError("--junit does not go with --catalog")
        sources = (zone, *sources) if zone else sources
        zone = catalog_name
    if zone is None:
        raise UsageError(
            "usage: secdns verify ZONE [SOURCE...] (a file, '-', a store "
            "directory or @SERVER; or --nameservers auto)"
        )
    try:
        selected = select(split_list(include), split_list(exclude))
        required = tuple(select([spec]) for spec in split_list(include))
    except UnknownCheck as err:
        raise UsageError(str(err)) from None
    if not selected:
        raise UsageError("--check/--skip leave no check to run")
    origin = parse_zone_name(zone)
    options = VerifyOptions(
        key=resolve_key(tsig, keyfile),
        tls=resolve_tls(),
        timeout=timeout,
        lifetime=lifetime,
        sig_warn_days=sig_warn_days,
        deep=deep,
        nameservers_auto=nameservers == "auto",
        checks=selected,
        concurrency=jobs,
        required=required,
    )
    if catalog_name is not None:
        sys.exit(_verify_catalog(origin, list(sources), options, as_json, quiet, strict))
    report = asyncio.run(verify_zone(origin, list(sources), options))
    if junit_path is not None:
        atomic_write(Path(junit_path), junit_xml(report, strict=strict))
    render_verify(report, as_json=as_json, quiet=quiet, strict=strict)
    sys.exit(report.exit_code(strict))


def _verify_catalog(
    origin: dns.name.Name,
    sources: list[str],
    options: VerifyOptions,
    as_json: bool,
    quiet: bool,
    strict: bool,
) -> int:
    from secdns.catalog_verify import verify_catalog

    if not sources or not all(s.startswith("@") for s in sources):
        raise UsageError("usage: secdns verify --catalog CATALOG @SERVER [@SERVER...]")
    result = asyncio.run(verify_catalog(origin, sources, options))
    for finding in result.findings:
        click.echo(f"secdns: error: {finding.line()}", err=True)
    if as_json:
        output.emit_json(result.to_dict(strict))
    else:
        for report in result.reports:
            render_verify(report, as_json=False, quiet=quiet, strict=strict)
        # the outcome in one line, its records not used counted: a stranger's run had 58
        # lines of result=passed and exit 1 (why only on stderr and in --json)
        code = result.exit_code(strict)
        sys.stdout.write(
            output.kv_line(
                ("catalog", origin.to_text()),
                ("result", "failed" if code else "passed"),
                ("members", len(result.members)),
                ("catalog_findings", len(result.findings)),
            )
            + "\n"
        )
    return result.exit_code(strict)


# --- renderers ---------------------------------------------------------------------------------


def finding_line(finding: Finding, with_source: bool = False) -> str:
    """One stable line per finding: ``severity check owner TYPE: message (RFC)``."""
    what = f"{finding.owner} {finding.rdtype}" if finding.rdtype else finding.owner
    line = f"{finding.severity.value} {finding.check} {what}: {finding.message} ({finding.rfc})"
    if with_source and finding.source:
        line += f" [{finding.source}]"
    return line


def _fails(finding: Finding, strict: bool) -> bool:
    return finding.severity is Severity.ERROR or (strict and finding.severity is Severity.WARNING)


def summary_line(report: VerifyReport, strict: bool) -> str:
    statuses = [report.status(check.id, strict) for check in report.checks()]
    return (
        f"zone={report.zone} result={'failed' if report.failed(strict) else 'passed'} "
        f"errors={len(report.errors)} warnings={len(report.warnings)} "
        f"checks={len(statuses)} passed={statuses.count(CheckStatus.PASSED)} "
        f"skipped={statuses.count(CheckStatus.SKIPPED)} time={report.duration:.3f}s"
    )


def _several_sources(report: VerifyReport) -> bool:
    return len(report.sources) > 1


def plain_lines(report: VerifyReport, strict: bool = False) -> list[str]:
    """The piped rendering: findings, then one line per server address, then a summary."""
    with_source = _several_sources(report)
    lines = [finding_line(f, with_source) for f in report.findings]
    for answer in report.servers:
        serial = "-" if answer.serial is None else str(answer.serial)
        lines.append(
            f"server {answer.address} status={answer.status.value} serial={serial} "
            f"name={answer.server}"
        )
    lines.append(summary_line(report, strict))
    return lines


_STATUS_STYLE = {
    CheckStatus.PASSED: "green",
    CheckStatus.WARNING: "yellow",
    CheckStatus.FAILED: "bold red",
    CheckStatus.SKIPPED: "dim",
}
_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow"}


def check_tables(report: VerifyReport, strict: bool = False) -> list[Table]:
    """One table per check with findings, titled by the check: the findings grouped by check."""
    tables = []
    with_source = _several_sources(report)
    for check in report.checks():
        found = report.findings_of(check.id)
        if not found:
            continue
        status = report.status(check.id, strict)
        title = Text(check.id, style=_STATUS_STYLE[status])
        title.append(f"  {check.title}", style="default")
        table = Table(title=title, title_justify="left", expand=True)
        table.add_column("", no_wrap=True)
        table.add_column("owner", overflow="fold", ratio=2)
        table.add_column("type", no_wrap=True)
        table.add_column("finding", overflow="fold", ratio=3)
        table.add_column("RFC", no_wrap=True)
        for finding in found:
            message = finding.message
            if with_source and finding.source:
                message += f" [{finding.source}]"
            table.add_row(
                Text(finding.severity.value, style=_SEVERITY_STYLE[finding.severity]),
                finding.owner,
                finding.rdtype or "",
                message,
                finding.rfc,
            )
        tables.append(table)
    return tables


def servers_table(report: VerifyReport) -> Table:
    table = Table(title="servers", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("server", "left"),
        ("address", "left"),
        ("serial", "right"),
        ("status", "left"),
        ("time", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for answer in report.servers:
        style = "green" if answer.status.value == "ok" else "bold red"
        status = Text(answer.status.value, style=style)
        if answer.detail:
            status.append(f": {answer.detail}", style="dim")
        table.add_row(
            answer.server,
            answer.address,
            "-" if answer.serial is None else str(answer.serial),
            status,
            f"{answer.elapsed * 1000:.0f} ms",
        )
    return table


def render_verify(
    report: VerifyReport,
    *,
    as_json: bool,
    quiet: bool,
    strict: bool = False,
    stream: IO[str] | None = None,
    rich: bool | None = None,
    width: int | None = None,
) -> None:
    """Show a verify report: a JSON document, rich tables, or plain lines."""
    stream = stream or sys.stdout
    if as_json:
        output.emit_json(report.to_dict(strict), stream)
        return
    if quiet:  # nothing but what fails (-q: "nothing but errors"; it printed nothing)
        with_source = _several_sources(report)
        failing = [f for f in report.findings if _fails(f, strict)]
        stream.write("".join(finding_line(f, with_source) + "\n" for f in failing))
        stream.flush()
        return
    rich = output.use_rich(stream) if rich is None else rich
    if not rich:
        stream.write("".join(line + "\n" for line in plain_lines(report, strict)))
        stream.flush()
        return
    console = Console(file=stream, highlight=False, width=width)
    for table in check_tables(report, strict):
        console.print(table)
    if report.servers:
        console.print(servers_table(report))
    by_status: dict[CheckStatus, list[str]] = {}
    for check in report.checks():
        by_status.setdefault(report.status(check.id, strict), []).append(check.id)
    if by_status.get(CheckStatus.PASSED):
        console.print(Text(f"passed: {', '.join(by_status[CheckStatus.PASSED])}", style="green"))
    if by_status.get(CheckStatus.SKIPPED):
        console.print(
            Text(f"nothing to check: {', '.join(by_status[CheckStatus.SKIPPED])}", style="dim")
        )
    failed = report.failed(strict)
    summary = Text(f"{report.zone} ", style="bold")
    summary.append("failed" if failed else "passed", style="bold red" if failed else "bold green")
    summary.append(
        f": {len(report.errors)} errors, {len(report.warnings)} warnings, "
        f"{len(report.checks())} checks in {report.duration:.2f}s"
    )
    console.print(summary)


def render_catalogue(stream: IO[str], *, as_json: bool) -> None:
    if as_json:
        output.emit_json({"checks": [check.to_dict() for check in CHECKS.values()]}, stream)
        return
    width = max(len(check_id) for check_id in CHECKS)
    for check in CHECKS.values():
        stream.write(f"{check.id:<{width}}  {check.title} ({check.rfc})\n")


def junit_xml(report: VerifyReport, strict: bool = False) -> str:
    """JUnit XML: one test suite for the zone, one test case per selected check.

    A check with errors (or, with ``strict``, warnings) is a failure listing its
    findings; warnings otherwise go to the case's system-out; a check with
    nothing to look at is skipped.
    """
    statuses = {check.id: report.status(check.id, strict) for check in report.checks()}
    counts = {
        "tests": str(len(statuses)),
        "failures": str(sum(s is CheckStatus.FAILED for s in statuses.values())),
        "errors": "0",
        "skipped": str(sum(s is CheckStatus.SKIPPED for s in statuses.values())),
        "time": f"{report.duration:.3f}",
    }
    root = ET.Element("testsuites", {"name": "secdns verify", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": f"verify {report.zone}", **counts})
    with_source = _several_sources(report)
    for check in report.checks():
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"secdns.verify.{check.family.value}", "name": check.id, "time": "0"},
        )
        found = report.findings_of(check.id)
        lines = "\n".join(finding_line(f, with_source) for f in found)
        status = statuses[check.id]
        if status is CheckStatus.FAILED:
            errors = sum(f.severity is Severity.ERROR for f in found)
            warnings = len(found) - errors
            failure = ET.SubElement(
                case,
                "failure",
                {
                    "message": f"{check.title}: {errors} errors, {warnings} warnings",
                    "type": "error" if errors else "warning",
                },
            )
            failure.text = lines
        elif status is CheckStatus.SKIPPED:
            ET.SubElement(case, "skipped", {"message": "nothing to check"})
        elif found:
            ET.SubElement(case, "system-out").text = lines
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
