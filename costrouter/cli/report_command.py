"""``costrouter report``: cost, tokens, latency and attempts of the routed calls in a span file."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from costrouter.cli.output import EXIT_CODES, console_for, fail, heading
from costrouter.report.html import report_html
from costrouter.report.read import stream_report
from costrouter.report.summary import (
    DEFAULT_BREAKDOWNS,
    Dimension,
    Report,
    breakdown_title,
    parse_breakdowns,
    report_csv,
    report_json,
    report_table,
)
from costrouter.report.terminal import printable
from costrouter.report.times import parse_instant

if TYPE_CHECKING:
    pass


class ReportFormat(StrEnum):
    """Output formats of ``report``."""

    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


def _print_report(report: Report, output: ReportFormat, destination: Path | None) -> None:
    errors = console_for(stderr=True)
    for problem in report.problems:
        errors.print(f"warning: {printable(problem)}", markup=False)
    if report.skipped:
        errors.print(
            f"warning: skipped {report.skipped:,} of {report.spans:,} lines that are not countable span records"
            + (
                f" ({report.skipped - len(report.problems):,} not shown)"
                if report.skipped > len(report.problems)
                else ""
            ),
            markup=False,
        )
    if output is not ReportFormat.table:
        text = {
            ReportFormat.json: lambda: report_json(report) + "\n",
            ReportFormat.csv: lambda: report_csv(report),
            ReportFormat.html: lambda: report_html(report),
        }[output]()
        if destination is not None:
            destination.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return
    console = console_for()
    console.print(printable(f"{report.source}: {report.spans} spans, {report.total.calls} routed calls"), markup=False)
    for breakdown in report.breakdowns:
        heading(console, breakdown_title(breakdown))
        console.print(report_table(breakdown, report.total, ascii_only=not console.is_terminal))


def _instant(value: str | None, option: str) -> int | None:
    try:
        return None if value is None else parse_instant(value)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from error


REPORT_EPILOG = (
    "Examples:\n\n"
    "  costrouter report costrouter-spans.jsonl\n\n"
    "  costrouter report spans.jsonl --by group,session+user --since 24h\n\n"
    "  costrouter report spans.jsonl --format csv --by deployment,tag,model > cost.csv\n\n"
    "  costrouter report spans.jsonl --format html -o cost.html --since 2026-11-01 --until 2026-12-01\n\n"
    "Dimensions: group (that served the call), requested, deployment, session, user, team, tag, model.\n\n"
    "Lines that are not countable span records are skipped, named on stderr and counted.\n\n"
    f"{EXIT_CODES}"
)
"""The examples ``costrouter report --help`` ends with."""


def report(
    span_file: Annotated[Path, typer.Argument(help="A JSON-lines span file (COSTROUTER_EXPORTER=file).")],
    output: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="table, csv, json or html (one self-contained page).")
    ] = ReportFormat.table,
    by: Annotated[
        str, typer.Option(help="Comma-separated breakdowns; join dimensions with '+' (group+session).")
    ] = DEFAULT_BREAKDOWNS,
    since: Annotated[
        str | None, typer.Option(help="Only calls that started at or after this: ISO 8601 (UTC) or 24h, 7d back.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only calls that started before this (same forms).")] = None,
    destination: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write csv, json or html here instead of stdout.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes reading the file at once (default: one per usable CPU for a large file)."),
    ] = None,
) -> None:
    """Cost, tokens, latency and attempts of the routed calls in a span file, by group, deployment, session, user."""
    try:
        breakdowns = parse_breakdowns(by)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--by") from error
    since_ns, until_ns = _instant(since, "--since"), _instant(until, "--until")
    if output is ReportFormat.html:
        needed: list[tuple[Dimension, ...]] = [("group",), ("session",)]
        breakdowns += [dimensions for dimensions in needed if dimensions not in breakdowns]
    try:
        result = stream_report(span_file, breakdowns, since_ns=since_ns, until_ns=until_ns, workers=workers)
    except OSError as error:
        fail(f"cannot read {span_file}: {error.strerror or error}")
    if result.spans and result.skipped == result.spans:
        fail(f"{span_file} is not a span file: none of its {result.spans:,} lines is a span record")
    _print_report(result, output, destination)
