"""Stream a span file into a report: one pass, memory in proportion to the rows, never to the spans.

Each line is parsed on its own (orjson); a line that is not a span record, or a call or
attempt span with a field a report cannot count, is skipped and counted, and the first
few are named (``file:line: reason``). A last line cut short (the writer died) is one of them.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from orjson import JSONDecodeError, loads

from costrouter.otlp_json import otlp_json_records
from costrouter.report import Aggregator, CallCounts, Report, ReportRow
from costrouter.report_records import AttemptSummary, BadRecordError, CallJoiner, CallSummary, Dimension
from costrouter.report_time import Timeline

__all__ = ["MAX_PROBLEMS_SHOWN", "stream_report"]

MAX_PROBLEMS_SHOWN: Final = 20
"""How many skipped lines a report names; the rest are only counted."""


@dataclass
class _Run:
    """The state of one pass over a file."""

    source: str
    aggregators: list[Aggregator]
    total: Aggregator
    timeline: Timeline
    since_ns: int | None
    until_ns: int | None
    spans: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def accept(self, call: CallSummary) -> bool:
        if self.since_ns is not None and call.start_time_ns < self.since_ns:
            return False
        return self.until_ns is None or call.start_time_ns < self.until_ns

    def on_call(self, call: CallSummary) -> None:
        counts = CallCounts.of(call)
        self.total.add_call(call, counts)
        for aggregator in self.aggregators:
            aggregator.add_call(call, counts)
        self.timeline.add(call.group or "(none)", call.start_time_ns, counts.cost_pico)

    def on_late_attempt(self, call: CallSummary, attempt: AttemptSummary) -> None:
        self.total.add_attempt(call, attempt)
        for aggregator in self.aggregators:
            aggregator.add_attempt(call, attempt)

    def problem(self, number: int, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS_SHOWN:
            self.problems.append(f"{self.source}:{number}: {reason}")


def _always(_call: CallSummary) -> bool:
    return True


def _record(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if not line.endswith(b"\n"):
            raise BadRecordError("the last line is cut short (its writer stopped mid-line)") from exc
        raise BadRecordError(f"not a JSON span record: {exc}") from exc


def _otlp_spans(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The span records of an OTLP JSON ``TracesData`` line (the Collector's file exporter writes these)."""
    try:
        return otlp_json_records(document)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BadRecordError(f"not an OTLP JSON traces object: {exc}") from exc


def _read(path: str | Path, add: Callable[[dict[str, Any]], None], run: _Run) -> int:
    """Feed each line of ``path`` to ``add``; the number of lines that were not blank."""
    spans = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line or line.isspace():
                continue
            spans += 1
            try:
                try:
                    record = loads(line)
                except JSONDecodeError:
                    record = _record(line)  # raises, naming the problem
                if record.__class__ is not dict:
                    raise BadRecordError(f"not a JSON span record: a {type(record).__name__}, not an object")
                if "resourceSpans" in record:
                    for span in _otlp_spans(record):
                        add(span)
                else:
                    add(record)
            except BadRecordError as exc:
                run.problem(number, str(exc))
    return spans


def stream_report(
    path: str | Path,
    breakdowns: Sequence[Sequence[Dimension]],
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> Report:
    """Read ``path`` once and aggregate the routed calls that started in ``[since, until)``.

    ``OSError`` when the file cannot be read; bad lines never raise (see the module).
    """
    source = str(path)
    run = _Run(
        source=source,
        aggregators=[Aggregator(dimensions) for dimensions in breakdowns],
        total=Aggregator(()),
        timeline=Timeline(),
        since_ns=since_ns,
        until_ns=until_ns,
    )
    accept = run.accept if since_ns is not None or until_ns is not None else _always
    joiner = CallJoiner(run.on_call, run.on_late_attempt, accept)
    add = joiner.add
    collecting = gc.isenabled()
    gc.disable()  # a report makes no reference cycles; the collector's passes over its rows cost a fifth
    try:
        spans = _read(path, add, run)
    finally:
        if collecting:
            gc.enable()
    run.spans = spans
    totals = run.total.breakdown().rows
    return Report(
        source=source,
        spans=run.spans,
        calls=(),
        breakdowns=tuple(aggregator.breakdown() for aggregator in run.aggregators),
        total=totals[0] if totals else ReportRow(()),
        skipped=run.skipped,
        problems=tuple(run.problems),
        orphan_attempts=joiner.orphans(),
        timeline=run.timeline,
        since_ns=since_ns,
        until_ns=until_ns,
    )
