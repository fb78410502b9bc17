"""Cost reports from recorded spans: read a span file, aggregate routed calls, format the result.

The input is what the ``file`` exporter writes (one :class:`~costrouter.span_file.SpanRecord`
a line). A routed call is its parent span ``router.completion/{group}``: it carries the
cost, the tokens, the latency and who paid. Its attempt spans ``router.attempt/{deployment}``
say which deployment each provider request went to.

Dimensions (``--by``):

* ``group``: the model group that served the call (after fallbacks and budget downgrades;
  the requested group when none served it);
* ``requested``: the model group the caller asked for;
* ``deployment``: the deployment that answered (``(none)`` when none did);
* ``session``, ``user``, ``team``: who the call was charged to;
* ``tag``: each tag of the call (a call with two tags counts in both rows, so the rows of
  this breakdown can add up to more than the total; a call without tags is ``(none)``);
* ``model``: the model that answered (``gen_ai.response.model``, else the requested one).

Reading is streaming (:mod:`costrouter.report_read`): memory grows with the number of rows,
not of spans. Costs are summed as integers of 1e-12 USD, exactly; p95 latencies are exact
up to :data:`EXACT_LATENCIES` calls a row, then within 1 % (a log-bucket histogram).

Attempts (and their kinds: ``retry``, ``fallback``) are counted where they went: by
``group`` and ``deployment``, each attempt span counts for its own group and deployment (the
failed tries of ``fast-primary`` stay with ``fast`` even when ``local`` answered the call
as a fallback); by the other dimensions, attempts follow their call. Cost, tokens and
latency are the call's, counted where the call is.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rich import box
from rich.table import Table

from costrouter.otel.span_file import SpanRecord, read_span_records
from costrouter.report.records import (
    DIMENSIONS,
    AttemptSummary,
    CallSummary,
    Dimension,
    calls_from_records,
)
from costrouter.report.rows import (
    Aggregator,
    Breakdown,
    CallCounts,
    ReportRow,
    ordered_breakdown,
)
from costrouter.report.terminal import cell as terminal_cell
from costrouter.report.terminal import printable
from costrouter.report.times import Timeline

__all__ = [
    "DIMENSIONS",
    "NONE_LABEL",
    "Aggregator",
    "AttemptSummary",
    "Breakdown",
    "CallCounts",
    "CallSummary",
    "Dimension",
    "Report",
    "ReportRow",
    "aggregate",
    "breakdown_title",
    "build_report",
    "calls_from_records",
    "load_span_records",
    "neutralise_cell",
    "ordered_breakdown",
    "parse_breakdowns",
    "report_csv",
    "report_json",
    "report_table",
]

DEFAULT_BREAKDOWNS: Final = "group,deployment,session,user"
NONE_LABEL: Final = "(none)"
"""How a missing value (a call without a session, a call no deployment answered) is shown."""


# ---- reading -------------------------------------------------------------------------------
def load_span_records(path: str) -> list[SpanRecord]:
    """Every span record of a span file; ``OSError`` / ``ValueError`` name what is wrong."""
    return list(read_span_records(path))


# ---- aggregation ---------------------------------------------------------------------------
def parse_breakdowns(text: str) -> list[tuple[Dimension, ...]]:
    """``"group,session+user"`` → ``[("group",), ("session", "user")]``; ``ValueError`` when unknown."""
    breakdowns: list[tuple[Dimension, ...]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        dimensions: list[Dimension] = []
        for name in (part.strip() for part in item.split("+")):
            matched = [dimension for dimension in DIMENSIONS if dimension == name]
            if not matched:
                known = ", ".join(DIMENSIONS)
                message = f"unknown dimension {name!r} in --by (known: {known}; join two with '+')"
                raise ValueError(message)
            dimensions.append(matched[0])
        breakdowns.append(tuple(dimensions))
    if not breakdowns:
        message = "--by names no dimension"
        raise ValueError(message)
    return breakdowns


def aggregate(calls: Iterable[CallSummary], dimensions: Sequence[Dimension]) -> Breakdown:
    """Totals of ``calls`` per key of ``dimensions``; rows sorted by cost, then calls, then key."""
    aggregator = Aggregator(dimensions)
    for call in calls:
        aggregator.add_call(call)
    return aggregator.breakdown()


def total(calls: Iterable[CallSummary]) -> ReportRow:
    """Every call in one row (key ``()``)."""
    rows = aggregate(calls, ()).rows
    return rows[0] if rows else ReportRow(())


@dataclass(frozen=True)
class Report:
    """Breakdowns of one set of calls, their total, and what was skipped on the way.

    ``calls`` holds the calls themselves only when the report was built from records in
    memory (:func:`build_report`); a report streamed from a file keeps totals only.
    """

    source: str
    spans: int
    calls: tuple[CallSummary, ...]
    breakdowns: tuple[Breakdown, ...]
    total: ReportRow
    skipped: int = 0
    problems: tuple[str, ...] = ()
    orphan_attempts: int = 0
    timeline: Timeline | None = None
    since_ns: int | None = None
    until_ns: int | None = None


def build_report(source: str, records: Sequence[SpanRecord], breakdowns: Sequence[Sequence[Dimension]]) -> Report:
    """Aggregate ``records`` (in memory) along each breakdown."""
    calls = calls_from_records(records)
    return Report(
        source=source,
        spans=len(records),
        calls=tuple(calls),
        breakdowns=tuple(aggregate(calls, dimensions) for dimensions in breakdowns),
        total=total(calls),
    )


# ---- formats -------------------------------------------------------------------------------
_COLUMNS: Final = (
    "calls",
    "ok",
    "failed",
    "rejected",
    "attempts",
    "failed_attempts",
    "retries",
    "fallbacks",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms_mean",
    "latency_ms_p95",
)


def report_json(report: Report) -> str:
    """The report as one JSON document (``null`` for a missing key value)."""
    document = {
        "source": report.source,
        "spans": report.spans,
        "calls": report.total.calls,
        "skipped": report.skipped,
        "problems": list(report.problems),
        "orphan_attempts": report.orphan_attempts,
        "total": report.total.as_dict(()),
        "breakdowns": {
            breakdown.name: [row.as_dict(breakdown.dimensions) for row in breakdown.rows]
            for breakdown in report.breakdowns
        },
    }
    return json.dumps(document, indent=2)


def report_csv(report: Report) -> str:
    """The report as CSV: a ``by`` column, one column per dimension (empty when not part of it).

    The last row has ``by`` = ``total``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["by", *DIMENSIONS, *_COLUMNS])
    for breakdown in report.breakdowns:
        for row in breakdown.rows:
            data = row.as_dict(breakdown.dimensions)
            writer.writerow(
                [
                    breakdown.name,
                    *(neutralise_cell(data.get(name) or "") for name in DIMENSIONS),
                    *(_csv(data[c]) for c in _COLUMNS),
                ]
            )
    totals = report.total.as_dict(())
    writer.writerow(["total", *("" for _ in DIMENSIONS), *(_csv(totals[c]) for c in _COLUMNS)])
    return buffer.getvalue()


_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run and a terminal will not obey.

    One starting with ``= + - @``, tab or CR gets a ``'`` (OWASP's advice for CSV injection;
    the csv module quotes the cell when it needs to); control characters are then escaped
    (:func:`~costrouter.report.terminal.printable`), so ``cat report.csv`` is safe too.
    """
    return printable(f"'{value}" if value.startswith(_FORMULA_STARTS) else value)


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.9f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def format_usd(value: float) -> str:
    """``$0.012345``: six decimals, nine (the nano-dollar) when a figure has finer digits (``$0.000000480``)."""
    if abs(value - round(value, 6)) < 1e-12:
        return f"${value:,.6f}"
    return f"${value:,.9f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


_TABLE_COLUMNS: Final[tuple[tuple[str, Callable[[ReportRow], str]], ...]] = (
    ("calls", lambda row: str(row.calls)),
    ("ok", lambda row: str(row.ok)),
    ("failed", lambda row: str(row.failed)),
    ("rejected", lambda row: str(row.rejected)),
    ("attempts", lambda row: str(row.attempts)),
    ("retries", lambda row: str(row.retries)),
    ("fallbacks", lambda row: str(row.fallbacks)),
    ("tokens in", lambda row: f"{row.input_tokens:,}"),
    ("tokens out", lambda row: f"{row.output_tokens:,}"),
    ("cost USD", lambda row: format_usd(row.cost_usd)),
    ("latency ms mean", lambda row: _ms(row.latency_ms_mean)),
    ("p95", lambda row: _ms(row.latency_ms_p95)),
)


def breakdown_title(breakdown: Breakdown) -> str:
    """``Cost by session and user``."""
    return f"Cost by {' and '.join(breakdown.dimensions)}"


def report_table(breakdown: Breakdown, total_row: ReportRow, *, ascii_only: bool = False) -> Table:
    """A rich table of one breakdown, with a total row (the title is :func:`breakdown_title`)."""
    table = Table(box=box.ASCII if ascii_only else box.ROUNDED, show_footer=True)
    for index, dimension in enumerate(breakdown.dimensions):
        table.add_column(dimension, footer="total" if index == 0 else "", no_wrap=True)
    for name, cell in _TABLE_COLUMNS:
        table.add_column(name, footer=cell(total_row), justify="right", no_wrap=True)
    for row in breakdown.rows:
        table.add_row(
            *(terminal_cell(value or NONE_LABEL) for value in row.key), *(cell(row) for _, cell in _TABLE_COLUMNS)
        )
    return table
