"""Cost reports from recorded spans: read a span file, aggregate routed calls, format the result.

The input is what the ``file`` exporter writes (one :class:`~costrouter.exporters.SpanRecord`
a line). A routed call is its parent span ``router.completion/{group}``: it carries the
cost, the tokens, the latency and who paid. Its attempt spans ``router.attempt/{deployment}``
say which deployment each provider request went to.

Dimensions (``--by``):

* ``group``: the model group that served the call (after fallbacks and budget downgrades;
  the requested group when none served it);
* ``requested``: the model group the caller asked for;
* ``deployment``: the deployment that answered (``(none)`` when none did);
* ``session``, ``user``, ``team``: who the call was charged to.

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
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from rich import box
from rich.table import Table

from costrouter import semconv as sc
from costrouter.exporters import SpanRecord, read_span_records

__all__ = [
    "DIMENSIONS",
    "NONE_LABEL",
    "Breakdown",
    "CallSummary",
    "ReportRow",
    "aggregate",
    "breakdown_title",
    "build_report",
    "calls_from_records",
    "load_span_records",
    "parse_breakdowns",
    "report_csv",
    "report_json",
    "report_table",
]

Dimension = Literal["group", "requested", "deployment", "session", "user", "team", "operation"]
DIMENSIONS: Final[tuple[Dimension, ...]] = ("group", "requested", "deployment", "session", "user", "team", "operation")
"""Every dimension a report can group by."""
DEFAULT_BREAKDOWNS: Final = "group,deployment,session,user"
NONE_LABEL: Final = "(none)"
"""How a missing value (a call without a session, a call no deployment answered) is shown."""

_ATTEMPT_DIMENSIONS: Final = frozenset({"group", "deployment"})


@dataclass(frozen=True)
class AttemptSummary:
    """One provider request of a routed call."""

    group: str | None
    deployment: str | None
    kind: str
    succeeded: bool


@dataclass(frozen=True)
class CallSummary:
    """What a report needs from one routed call's span."""

    trace_id: str
    span_id: str
    group: str | None
    requested: str | None
    deployment: str | None
    session: str | None
    user: str | None
    team: str | None
    outcome: Literal["ok", "failed", "rejected"]
    cost_usd: float
    input_tokens: int
    output_tokens: int
    latency_ms: float
    attempts: tuple[AttemptSummary, ...]
    operation: str | None = None
    """The call's ``gen_ai.operation.name`` (``chat``, ``embeddings``, ``generate_content`` …)."""

    def value(self, dimension: Dimension) -> str | None:
        """The value of ``dimension`` for this call."""
        values: dict[str, str | None] = {
            "group": self.group,
            "requested": self.requested,
            "deployment": self.deployment,
            "session": self.session,
            "user": self.user,
            "team": self.team,
            "operation": self.operation,
        }
        return values[dimension]


@dataclass
class ReportRow:
    """The totals of the calls (and attempts) that share one key."""

    key: tuple[str | None, ...]
    calls: int = 0
    ok: int = 0
    failed: int = 0
    rejected: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    retries: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    costs: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        """The summed cost, without float drift."""
        return math.fsum(self.costs)

    @property
    def latency_ms_mean(self) -> float | None:
        """Mean latency of the calls that reached a provider (rejected calls never did)."""
        return math.fsum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else None

    @property
    def latency_ms_p95(self) -> float | None:
        """95th percentile latency (nearest rank) of the calls that reached a provider."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def as_dict(self, dimensions: Sequence[Dimension]) -> dict[str, Any]:
        """A JSON-ready mapping: the key values, then the totals."""
        data: dict[str, Any] = dict(zip(dimensions, self.key, strict=True))
        data.update(
            calls=self.calls,
            ok=self.ok,
            failed=self.failed,
            rejected=self.rejected,
            attempts=self.attempts,
            failed_attempts=self.failed_attempts,
            retries=self.retries,
            fallbacks=self.fallbacks,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=round(self.cost_usd, 9),
            latency_ms_mean=_round_or_none(self.latency_ms_mean),
            latency_ms_p95=_round_or_none(self.latency_ms_p95),
        )
        return data


@dataclass(frozen=True)
class Breakdown:
    """Rows grouped by one or more dimensions, largest cost first."""

    dimensions: tuple[Dimension, ...]
    rows: tuple[ReportRow, ...]

    @property
    def name(self) -> str:
        """``group`` or ``group+session``."""
        return "+".join(self.dimensions)


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ---- reading -------------------------------------------------------------------------------
def load_span_records(path: str) -> list[SpanRecord]:
    """Every span record of a span file; ``OSError`` / ``ValueError`` name what is wrong."""
    return list(read_span_records(path))


def _text(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return None if value is None or value == "" else str(value)


def _int(attributes: Mapping[str, Any], name: str) -> int:
    value = attributes.get(name)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _float(attributes: Mapping[str, Any], name: str) -> float:
    value = attributes.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _outcome(record: SpanRecord) -> Literal["ok", "failed", "rejected"]:
    attributes = record.get("attributes") or {}
    if attributes.get(sc.BUDGET_OUTCOME) == "rejected" or attributes.get(sc.ERROR_TYPE) == "BudgetExceededError":
        return "rejected"
    status = record.get("status") or {}
    if status.get("code") == "ERROR" or sc.ERROR_TYPE in attributes:
        return "failed"
    return "ok"


def _latency_ms(record: SpanRecord) -> float:
    attributes = record.get("attributes") or {}
    if isinstance(attributes.get(sc.LLM_LATENCY_MS), (int, float)):
        return float(attributes[sc.LLM_LATENCY_MS])
    return max(0, int(record.get("end_time_ns") or 0) - int(record.get("start_time_ns") or 0)) / 1e6


def calls_from_records(records: Iterable[SpanRecord]) -> list[CallSummary]:
    """One :class:`CallSummary` per routed-call span, with its attempts, in file order."""
    records = list(records)
    attempts: dict[tuple[str, str], list[tuple[int, AttemptSummary]]] = {}
    for record in records:
        if not str(record.get("name", "")).startswith(f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/"):
            continue
        attributes = record.get("attributes") or {}
        parent = (str(record.get("trace_id", "")), str(record.get("parent_span_id") or ""))
        attempt = AttemptSummary(
            group=_text(attributes, sc.ROUTER_MODEL_GROUP),
            deployment=_text(attributes, sc.ROUTER_DEPLOYMENT_ID),
            kind=str(attributes.get(sc.ATTEMPT_KIND, "first")),
            succeeded=attributes.get(sc.ATTEMPT_OUTCOME) == "success",
        )
        attempts.setdefault(parent, []).append((_int(attributes, sc.ATTEMPT_INDEX), attempt))
    calls = []
    for record in records:
        if not str(record.get("name", "")).startswith(sc.CALL_SPAN_NAME_PREFIXES):
            continue
        attributes = record.get("attributes") or {}
        key = (str(record.get("trace_id", "")), str(record.get("span_id", "")))
        requested = _text(attributes, sc.ROUTER_MODEL_GROUP)
        calls.append(
            CallSummary(
                trace_id=key[0],
                span_id=key[1],
                group=_text(attributes, sc.ROUTER_SERVED_GROUP) or requested,
                requested=requested,
                deployment=_text(attributes, sc.ROUTER_DEPLOYMENT_ID),
                session=_text(attributes, sc.SESSION_ID),
                user=_text(attributes, sc.USER_ID),
                team=_text(attributes, sc.TEAM_ID),
                outcome=_outcome(record),
                cost_usd=_float(attributes, sc.LLM_USAGE_COST_USD),
                input_tokens=_int(attributes, sc.GEN_AI_USAGE_INPUT_TOKENS),
                output_tokens=_int(attributes, sc.GEN_AI_USAGE_OUTPUT_TOKENS),
                latency_ms=_latency_ms(record),
                attempts=tuple(attempt for _, attempt in sorted(attempts.get(key, []), key=lambda item: item[0])),
                operation=_text(attributes, sc.GEN_AI_OPERATION_NAME),
            )
        )
    return calls


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


def _row(rows: dict[tuple[str | None, ...], ReportRow], key: tuple[str | None, ...]) -> ReportRow:
    if key not in rows:
        rows[key] = ReportRow(key)
    return rows[key]


def _add_call(row: ReportRow, call: CallSummary) -> None:
    row.calls += 1
    if call.outcome == "ok":
        row.ok += 1
    elif call.outcome == "failed":
        row.failed += 1
    else:
        row.rejected += 1
    row.input_tokens += call.input_tokens
    row.output_tokens += call.output_tokens
    row.costs.append(call.cost_usd)
    if call.outcome != "rejected":
        row.latencies_ms.append(call.latency_ms)


def _attempt_key(call: CallSummary, attempt: AttemptSummary, dimensions: Sequence[Dimension]) -> tuple[str | None, ...]:
    own = {"group": attempt.group, "deployment": attempt.deployment}
    return tuple(own[dimension] if dimension in own else call.value(dimension) for dimension in dimensions)


def aggregate(calls: Sequence[CallSummary], dimensions: Sequence[Dimension]) -> Breakdown:
    """Totals of ``calls`` per key of ``dimensions``; rows sorted by cost, then calls, then key."""
    dims = tuple(dimensions)
    rows: dict[tuple[str | None, ...], ReportRow] = {}
    by_attempt = bool(_ATTEMPT_DIMENSIONS.intersection(dims))
    for call in calls:
        _add_call(_row(rows, tuple(call.value(dimension) for dimension in dims)), call)
        for attempt in call.attempts:
            key = _attempt_key(call, attempt, dims) if by_attempt else tuple(call.value(d) for d in dims)
            row = _row(rows, key)
            row.attempts += 1
            row.failed_attempts += 0 if attempt.succeeded else 1
            row.retries += attempt.kind == "retry"
            row.fallbacks += attempt.kind == "fallback"
    ordered = sorted(
        rows.values(),
        key=lambda row: (-row.cost_usd, -row.calls, tuple(value or "" for value in row.key)),
    )
    return Breakdown(dims, tuple(ordered))


def total(calls: Sequence[CallSummary]) -> ReportRow:
    """Every call in one row (key ``()``)."""
    return aggregate(calls, ()).rows[0] if calls else ReportRow(())


@dataclass(frozen=True)
class Report:
    """Breakdowns of one set of calls, and their total."""

    source: str
    spans: int
    calls: tuple[CallSummary, ...]
    breakdowns: tuple[Breakdown, ...]
    total: ReportRow


def build_report(source: str, records: Sequence[SpanRecord], breakdowns: Sequence[Sequence[Dimension]]) -> Report:
    """Aggregate ``records`` along each breakdown."""
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
        "calls": len(report.calls),
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
                [breakdown.name, *(data.get(name) or "" for name in DIMENSIONS), *(_csv(data[c]) for c in _COLUMNS)]
            )
    totals = report.total.as_dict(())
    writer.writerow(["total", *("" for _ in DIMENSIONS), *(_csv(totals[c]) for c in _COLUMNS)])
    return buffer.getvalue()


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.9f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def format_usd(value: float) -> str:
    """``$0.012345``: six decimals, enough for the micro-dollar."""
    return f"${value:,.6f}"


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
        table.add_row(*(value or NONE_LABEL for value in row.key), *(cell(row) for _, cell in _TABLE_COLUMNS))
    return table
