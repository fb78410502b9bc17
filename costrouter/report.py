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
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any, Final, NamedTuple

from rich import box
from rich.table import Table

from costrouter.exporters import SpanRecord, read_span_records
from costrouter.report_records import (
    DIMENSIONS,
    PICO,
    AttemptSummary,
    CallSummary,
    Dimension,
    calls_from_records,
)
from costrouter.report_time import Timeline

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

_ATTEMPT_DIMENSIONS: Final = frozenset({"group", "deployment"})
EXACT_LATENCIES: Final = 512
"""A row keeps this many latencies exactly; past it, a histogram of 1 % wide buckets."""
_GAMMA: Final = 1.02  # bucket i holds (GAMMA**(i-1), GAMMA**i]: the midpoint is within 1 %
_LOG_GAMMA: Final = math.log(_GAMMA)
_ZERO_BUCKET: Final = -(10**9)
_LATENCY_SHIFT: Final = 60
LATENCY_UNITS: Final = float(1 << _LATENCY_SHIFT)
"""Units of a latency sum per ms: a float latency times this is exact (down to 2**-8 ms), and so is the sum."""


def latency_units(value_ms: float) -> int:
    """``value_ms`` in units of :data:`LATENCY_UNITS` (exact for any latency from 2**-8 ms up)."""
    return int(value_ms * LATENCY_UNITS) if value_ms < 1e200 else int(value_ms) << _LATENCY_SHIFT


def latency_bucket(value_ms: float) -> int:
    """The histogram bucket of a latency."""
    return math.ceil(math.log(value_ms) / _LOG_GAMMA) if value_ms > 0 else _ZERO_BUCKET


@dataclass(slots=True)
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
    cost_pico: int = 0
    latency_count: int = 0
    latency_sum_units: int = 0
    """Latencies summed in units of 2**-60 ms (:data:`LATENCY_UNITS`): exact in any order, so rows merge exactly."""
    latencies_ms: list[float] = field(default_factory=list)
    latency_buckets: dict[int, int] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float:
        """The summed cost: exact to 1e-12 USD, whatever the number of calls."""
        return self.cost_pico / PICO

    def add_latency(self, value_ms: float, bucket: int | None = None) -> None:
        """Count one call's latency (exactly while the row is small); ``bucket`` if already known."""
        self.latency_count += 1
        self.latency_sum_units += latency_units(value_ms)
        buckets = self.latency_buckets
        if buckets:
            index = latency_bucket(value_ms) if bucket is None else bucket
            buckets[index] = buckets.get(index, 0) + 1
            return
        self.latencies_ms.append(value_ms)
        if len(self.latencies_ms) > EXACT_LATENCIES:
            self._spill()

    def _spill(self) -> None:
        """Turn the exact latencies into histogram buckets (the row grew past :data:`EXACT_LATENCIES`)."""
        buckets = self.latency_buckets
        for kept in self.latencies_ms:
            index = latency_bucket(kept)
            buckets[index] = buckets.get(index, 0) + 1
        self.latencies_ms = []

    def merge(self, other: ReportRow) -> None:
        """Add ``other`` (the same key, counted over other spans): the result is what one pass would hold."""
        self.calls += other.calls
        self.ok += other.ok
        self.failed += other.failed
        self.rejected += other.rejected
        self.attempts += other.attempts
        self.failed_attempts += other.failed_attempts
        self.retries += other.retries
        self.fallbacks += other.fallbacks
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_pico += other.cost_pico
        self.latency_count += other.latency_count
        self.latency_sum_units += other.latency_sum_units
        self.latencies_ms.extend(other.latencies_ms)
        if other.latency_buckets or self.latency_buckets or len(self.latencies_ms) > EXACT_LATENCIES:
            buckets = self.latency_buckets
            for index, count in other.latency_buckets.items():
                buckets[index] = buckets.get(index, 0) + count
            self._spill()

    @property
    def latency_ms_mean(self) -> float | None:
        """Mean latency of the calls that reached a provider (rejected calls never did)."""
        return self.latency_sum_units / (self.latency_count << _LATENCY_SHIFT) if self.latency_count else None

    @property
    def latency_ms_p95(self) -> float | None:
        """95th percentile latency (nearest rank) of the calls that reached a provider."""
        if not self.latency_count:
            return None
        rank = max(0, math.ceil(0.95 * self.latency_count) - 1)
        if not self.latency_buckets:
            return sorted(self.latencies_ms)[rank]
        seen = 0
        for index in sorted(self.latency_buckets):
            seen += self.latency_buckets[index]
            if seen > rank:
                return 0.0 if index == _ZERO_BUCKET else 2 * _GAMMA**index / (1 + _GAMMA)
        return None  # unreachable: the buckets hold latency_count values

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


class CallCounts(NamedTuple):
    """What one call adds to each of its rows, worked out once for all breakdowns."""

    ok: int
    failed: int
    rejected: int
    input_tokens: int
    output_tokens: int
    cost_pico: int
    latency_ms: float | None
    """``None`` for a rejected call: it never reached a provider."""
    bucket: int
    attempts: int
    failed_attempts: int
    retries: int
    fallbacks: int
    latency_units: int = 0
    """The latency in units of 2**-60 ms."""

    @classmethod
    def of(cls, call: CallSummary) -> CallCounts:
        """The counts of ``call`` and its attempts."""
        attempts = call.attempts
        failed = retries = fallbacks = 0
        for attempt in attempts:
            if not attempt.succeeded:
                failed += 1
            kind = attempt.kind
            if kind == "retry":
                retries += 1
            elif kind == "fallback":
                fallbacks += 1
        outcome = call.outcome
        if outcome == "rejected":
            latency = None
            bucket = units = 0
        else:
            latency = call.latency_ms
            bucket = latency_bucket(latency)
            units = int(latency * LATENCY_UNITS) if latency < 1e200 else latency_units(latency)
        return _new_counts(
            (
                outcome == "ok",
                outcome == "failed",
                latency is None,
                call.input_tokens,
                call.output_tokens,
                round(call.cost_usd * PICO),
                latency,
                bucket,
                len(attempts),
                failed,
                retries,
                fallbacks,
                units,
            )
        )


_new_counts: Callable[[tuple[Any, ...]], CallCounts] = partial(tuple.__new__, CallCounts)


class Aggregator:
    """Running totals of calls along one breakdown; calls are added one at a time, then forgotten."""

    def __init__(self, dimensions: Sequence[Dimension]) -> None:
        self.dimensions = tuple(dimensions)
        self.rows: dict[tuple[str | None, ...], ReportRow] = {}
        self._by_attempt = bool(_ATTEMPT_DIMENSIONS.intersection(self.dimensions))
        self._keys: Callable[[CallSummary], Iterable[tuple[str | None, ...]]] = partial(
            CallSummary.keys, dimensions=self.dimensions
        )
        if not self.dimensions:
            self._keys = lambda _call: ((),)
        elif len(self.dimensions) == 1 and self.dimensions[0] != "tag":
            getter = attrgetter(self.dimensions[0])
            self._keys = lambda call: ((getter(call),),)
        elif self.dimensions == ("tag",):
            self._keys = lambda call: [(tag,) for tag in call.tags] or [(None,)]
        elif "tag" not in self.dimensions:
            getters = attrgetter(*self.dimensions)
            self._keys = lambda call: (getters(call),)

        self._attempt_key: Callable[[CallSummary, AttemptSummary], tuple[str | None, ...]] = partial(
            _attempt_key, dimensions=self.dimensions
        )
        if self.dimensions == ("group",):
            self._attempt_key = lambda _call, attempt: (attempt.group,)
        elif self.dimensions == ("deployment",):
            self._attempt_key = lambda _call, attempt: (attempt.deployment,)

    def _row(self, key: tuple[str | None, ...]) -> ReportRow:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = ReportRow(key)
        return row

    def add_call(self, call: CallSummary, counts: CallCounts | None = None) -> None:
        """Count ``call`` and its attempts (``counts``: its :class:`CallCounts`, when already known)."""
        if counts is None:
            counts = CallCounts.of(call)
        rows = self.rows
        ok, failed_call, rejected, input_tokens, output_tokens, cost, latency, bucket = counts[:8]
        attempts, failed, retries, fallbacks, latency_units = counts[8:]
        fold = attempts and not self._by_attempt
        for key in self._keys(call):
            row = rows.get(key)
            if row is None:
                row = rows[key] = ReportRow(key)
            row.calls += 1
            row.input_tokens += input_tokens
            row.output_tokens += output_tokens
            row.cost_pico += cost
            row.ok += ok
            row.failed += failed_call
            row.rejected += rejected
            if latency is not None:
                row.latency_count += 1
                row.latency_sum_units += latency_units
                buckets = row.latency_buckets
                if buckets:
                    buckets[bucket] = buckets.get(bucket, 0) + 1
                else:
                    values = row.latencies_ms
                    values.append(latency)
                    if len(values) > EXACT_LATENCIES:
                        row._spill()
            if fold:
                row.attempts += attempts
                row.failed_attempts += failed
                row.retries += retries
                row.fallbacks += fallbacks
        if attempts and self._by_attempt:
            for attempt in call.attempts:
                self.add_attempt(call, attempt)

    def add_attempt(self, call: CallSummary, attempt: AttemptSummary) -> None:
        """Count one attempt of ``call`` (also one that arrives after its call was counted)."""
        if self._by_attempt:
            _add_attempt(self._row(self._attempt_key(call, attempt)), attempt)
            return
        for key in self._keys(call):
            _add_attempt(self._row(key), attempt)

    def breakdown(self) -> Breakdown:
        """The rows so far, sorted by cost, then calls, then key."""
        return ordered_breakdown(self.dimensions, self.rows)


def ordered_breakdown(dimensions: Sequence[Dimension], rows: Mapping[tuple[str | None, ...], ReportRow]) -> Breakdown:
    """``rows`` sorted by cost, then calls, then key (a total order: the same rows always print the same)."""
    if len(dimensions) == 1:
        ordered = sorted(rows.values(), key=lambda row: (-row.cost_pico, -row.calls, row.key[0] or ""))
    else:
        ordered = sorted(
            rows.values(), key=lambda row: (-row.cost_pico, -row.calls, tuple(value or "" for value in row.key))
        )
    return Breakdown(tuple(dimensions), tuple(ordered))


def _add_attempt(row: ReportRow, attempt: AttemptSummary) -> None:
    row.attempts += 1
    if not attempt.succeeded:
        row.failed_attempts += 1
    kind = attempt.kind
    if kind == "retry":
        row.retries += 1
    elif kind == "fallback":
        row.fallbacks += 1


def _attempt_key(call: CallSummary, attempt: AttemptSummary, dimensions: Sequence[Dimension]) -> tuple[str | None, ...]:
    own = {"group": attempt.group, "deployment": attempt.deployment}
    return tuple(own[dimension] if dimension in own else call.value(dimension) for dimension in dimensions)


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
    """A CSV cell a spreadsheet will not run: one starting with ``= + - @``, tab or CR gets a ``'``.

    OWASP's advice for CSV injection; the csv module quotes the cell when it needs to.
    """
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


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
