"""Count one byte range of a span file exactly as one pass over the whole file would count it.

A range starts and ends at line starts; its partial totals (:class:`Partial`) add up with
those of the other ranges to the totals of the whole file. Two joins cross range bounds,
and both are settled here, so that merging is plain addition:

* an attempt written *after* its call joins it while the call is among the last
  :data:`~costrouter.report_records.RECENT_CALLS` calls: a range that does not start the
  file first reads back to rebuild that window (the calls of the ranges before it);
* an attempt written *before* its call waits for it, however far: attempts still waiting at
  the end of a range are followed into the rest of the file, and counted by this range with
  the call that takes them (the range holding that call counts the call and its own attempts).

Each line is read on its own (:mod:`costrouter.report_lines`), and each span of a batch line
is counted before the next is decoded. A line that holds no span to read, a span of a batch
that cannot be read, and a call or attempt span with a field a report cannot count are each
skipped and counted once (the rest of their line is still read), and the first few are kept
with their line number within the range (and the span's place in a batch line).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, Final

from costrouter.report.file_lines import MAX_LINE_BYTES, LongLine, bounded_lines
from costrouter.report.lines import line_spans
from costrouter.report.records import (
    RECENT_CALLS,
    AttemptSummary,
    BadRecordError,
    CallJoiner,
    CallSummary,
    Dimension,
    call_from_record,
    span_kind,
)
from costrouter.report.rows import Aggregator, CallCounts, ReportRow, count_attempt
from costrouter.report.times import Timeline

__all__ = ["MAX_PROBLEMS_SHOWN", "Partial", "scan_range"]

MAX_PROBLEMS_SHOWN: Final = 20
"""How many skipped lines a report names; the rest are only counted."""
_BLOCK: Final = 1 << 20
_LITERAL_ID = re.compile(r"[0-9A-Za-z_-]+")
"""An id that any JSON line holding it as a string or an integer spells as is (when it has no escape)."""
_NOT_LITERAL: Final = frozenset({"True", "False", "None"})
_MAX_SEARCHED_IDS: Final = 16


@dataclass
class Partial:
    """The totals of one range, and what was skipped in it."""

    lines: int = 0
    """Every line of the range, blank ones included: the next range's line numbers start after them."""
    spans: int = 0
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    """``(line number within the range, reason)`` of the first skipped lines."""
    rows: list[dict[tuple[str | None, ...], ReportRow]] = field(default_factory=list)
    total: dict[tuple[str | None, ...], ReportRow] = field(default_factory=dict)
    timeline: Timeline = field(default_factory=Timeline)
    orphans: int = 0

    def __getstate__(self) -> dict[str, Any]:
        # A partial travels back from its worker process by pickle: its rows go as one list
        # per field (ints and lists that pickle in C), not as a hundred thousand objects.
        state = dict(self.__dict__)
        state["rows"] = [_columns(rows) for rows in self.rows]
        state["total"] = _columns(self.total)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["rows"] = [_rows(columns) for columns in state["rows"]]
        state["total"] = _rows(state["total"])
        self.__dict__.update(state)


_ROW_FIELDS: Final = tuple(item.name for item in fields(ReportRow))


def _columns(rows: dict[tuple[str | None, ...], ReportRow]) -> list[list[Any]]:
    values = list(rows.values())
    return [[getattr(row, name) for row in values] for name in _ROW_FIELDS]


def _rows(columns: list[list[Any]]) -> dict[tuple[str | None, ...], ReportRow]:
    return {row.key: row for row in map(ReportRow, *columns)}


class _Counter:
    """Totals along every breakdown, fed by the joiner.

    :meth:`on_call` adds a call to the rows of every breakdown in one pass (what
    :meth:`Aggregator.add_call <costrouter.report_rows.Aggregator.add_call>` does for one,
    with the same rows and keys): a million calls go through it, so each breakdown's key is
    built once, straight from the call tuple, and the counts of a plain call (ok, one
    first attempt that succeeded) skip the fields they would add zero to.
    """

    def __init__(self, breakdowns: Sequence[Sequence[Dimension]], since_ns: int | None, until_ns: int | None) -> None:
        self.aggregators = [Aggregator(dimensions) for dimensions in breakdowns]
        self.total = Aggregator(())
        self.timeline = Timeline()
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.accept: Callable[[CallSummary], bool] = (
            self._in_range if since_ns is not None or until_ns is not None else _always
        )
        # The total and the breakdowns by one dimension of few values are counted together,
        # in one row per combination of their values (a dozen or so), and split into their
        # own rows by :meth:`finish`: one row update a call instead of one per breakdown.
        self._combined = [self.total] + [
            aggregator
            for aggregator in self.aggregators
            if len(aggregator.dimensions) == 1 and aggregator.dimensions[0] in _FEW_VALUES
        ]
        self.combined_dimensions: tuple[Dimension, ...] = tuple(
            dict.fromkeys(aggregator.dimensions[0] for aggregator in self._combined[1:])
        )
        self.combined = Aggregator(self.combined_dimensions)
        self.combined.by_attempt = False  # attempts count with their call; by_attempt breakdowns fix that in finish
        combined_plan = _plan(self.combined)
        if combined_plan[1] in (_TAG, _TAGGED):  # the key holds the call's tags tuple as one value
            indices = [_FIELDS.index("tags" if name == "tag" else name) for name in self.combined_dimensions]
            getter: Callable[[CallSummary], tuple[Any, ...]] = itemgetter(*indices) if len(indices) > 1 else _tags_key
            combined_plan = (
                self.combined.rows,
                _SEVERAL,
                getter,
                False,
                None,
                self.combined,
            )
        self._plans = [combined_plan] + [
            _plan(aggregator) for aggregator in self.aggregators if aggregator not in self._combined
        ]
        self._own_attempts = [
            (aggregator.rows, _ATTEMPT_FIELDS.index(aggregator.dimensions[0]))
            for aggregator in self._combined
            if aggregator.by_attempt
        ]

    def _in_range(self, call: CallSummary) -> bool:
        if self.since_ns is not None and call.start_time_ns < self.since_ns:
            return False
        return self.until_ns is None or call.start_time_ns < self.until_ns

    def on_call(self, call: CallSummary) -> None:
        counts = CallCounts.of(call)
        attempts = counts[_COUNTED_ATTEMPTS]
        values: tuple[Any, ...] = call  # the key values, by index
        for rows, shape, index, by_attempt, _own, aggregator in self._plans:
            if shape is _SINGLE:
                keys: Iterable[tuple[str | None, ...]] = ((values[index],),)
            elif shape is _TOTAL:
                keys = _NO_KEYS
            elif shape is _TAG and len(call.tags) == 1:
                keys = (call.tags,)
            elif shape is _SEVERAL:
                keys = (index(call),)
            else:
                keys = aggregator.keys_of(call)  # one row per tag
            for key in keys:
                row = rows.get(key)
                if row is None:
                    row = rows[key] = ReportRow(key)
                row.count(counts, not by_attempt)
            if attempts and by_attempt:  # group+session and the like (group alone is counted combined)
                for attempt in call.attempts:
                    aggregator.add_attempt(call, attempt)
        if attempts:
            for rows, own in self._own_attempts:
                _add_own_attempts(rows, own, call.attempts)
        self.timeline.add(call.group or "(none)", call.start_time_ns, counts.cost_pico)

    def finish(self) -> None:
        """Split the rows counted together into the rows of the total and of each breakdown they stand for."""
        dimensions = self.combined_dimensions
        for combined_key, combined_row in self.combined.rows.items():
            for aggregator in self._combined:
                keys = _split_keys(aggregator.dimensions, dimensions, combined_key)
                rows = aggregator.rows
                for key in keys:
                    row = rows.get(key)
                    if row is None:
                        row = rows[key] = ReportRow(key)
                    _merge_call_counts(row, combined_row, not aggregator.by_attempt)
        self.combined.rows.clear()

    def on_late_attempt(self, call: CallSummary, attempt: AttemptSummary) -> None:
        self.total.add_attempt(call, attempt)
        for aggregator in self.aggregators:
            aggregator.add_attempt(call, attempt)


def _tags_key(call: CallSummary) -> tuple[Any, ...]:
    return (call.tags,)


def _split_keys(
    dimensions: Sequence[Dimension], combined: Sequence[Dimension], key: tuple[Any, ...]
) -> Iterable[tuple[str | None, ...]]:
    """The keys along ``dimensions`` (none, or one) of a row counted along ``combined``."""
    if not dimensions:
        return _NO_KEYS
    value = key[combined.index(dimensions[0])]
    if dimensions[0] == "tag":
        return [(tag,) for tag in value] or [(None,)]
    return ((value,),)


def _merge_call_counts(row: ReportRow, other: ReportRow, with_attempts: bool) -> None:
    """Add ``other`` to ``row``: all of it, or all but its attempts (counted apart, by their own group)."""
    if with_attempts:
        row.merge(other)
        return
    attempts = other.attempts, other.failed_attempts, other.retries, other.fallbacks
    other.attempts = other.failed_attempts = other.retries = other.fallbacks = 0
    row.merge(other)
    other.attempts, other.failed_attempts, other.retries, other.fallbacks = attempts


def _add_own_attempts(
    rows: dict[tuple[str | None, ...], ReportRow], own: int, attempts: Iterable[AttemptSummary]
) -> None:
    """Count attempts in the rows of their own group (or deployment): the breakdown's only dimension."""
    for attempt in attempts:
        values: tuple[Any, ...] = attempt
        key = (values[own],)
        row = rows.get(key)
        if row is None:
            row = rows[key] = ReportRow(key)
        count_attempt(row, attempt)


_FIELDS: Final = CallSummary._fields
_ATTEMPT_FIELDS: Final = AttemptSummary._fields
_TOTAL: Final = "total"
_SINGLE: Final = "single"
_SEVERAL: Final = "several"
_TAGGED: Final = "tagged"
_TAG: Final = "tag"
_FEW_VALUES: Final = frozenset({"group", "requested", "deployment", "tag", "model", "operation"})
"""Dimensions with a handful of values in any file: their breakdowns are counted together."""
_COUNTED_ATTEMPTS: Final = CallCounts._fields.index("attempts")
_NO_KEYS: Final = ((),)

_Plan = tuple[dict[tuple[str | None, ...], ReportRow], str, Any, bool, int | None, Aggregator]


def _plan(aggregator: Aggregator) -> _Plan:
    """How :meth:`_Counter.on_call` counts a call along one breakdown.

    Its rows; the shape of its keys and the index (or getter) of their value in a call;
    whether attempts count apart from their call, and the index of the attempt's own value
    when it is the breakdown's only dimension.
    """
    dimensions, rows, by_attempt = aggregator.dimensions, aggregator.rows, aggregator.by_attempt
    own = _ATTEMPT_FIELDS.index(dimensions[0]) if len(dimensions) == 1 and by_attempt else None
    if not dimensions:
        return rows, _TOTAL, None, by_attempt, own, aggregator
    if dimensions == ("tag",):
        return rows, _TAG, None, by_attempt, own, aggregator
    if "tag" in dimensions:
        return rows, _TAGGED, None, by_attempt, own, aggregator
    indices = [_FIELDS.index(dimension) for dimension in dimensions]
    if len(indices) == 1:
        return rows, _SINGLE, indices[0], by_attempt, own, aggregator
    return rows, _SEVERAL, itemgetter(*indices), by_attempt, own, aggregator


def _always(_call: CallSummary) -> bool:
    return True


def _read(handle: BinaryIO, start: int, end: int, add: Callable[[dict[str, Any]], None], partial: Partial) -> None:
    """Feed each span of the lines in ``[start, end)`` to ``add``, counting lines, spans and problems."""
    if start >= end:
        return
    handle.seek(start)
    position = start
    number = spans = 0
    for line in bounded_lines(handle):
        number += 1
        if isinstance(line, LongLine):
            position += line.length
            _skip(partial, number, f"longer than {MAX_LINE_BYTES:,} bytes: not read")
        else:
            position += len(line)
            if not line.isspace():
                spans += _count_line(line, number, add, partial)
        if position >= end:
            break
    partial.lines = number
    partial.spans = spans


def _skip(partial: Partial, number: int, reason: str) -> None:
    partial.skipped += 1
    if len(partial.problems) < MAX_PROBLEMS_SHOWN:
        partial.problems.append((number, reason))


def _count_line(line: bytes, number: int, add: Callable[[dict[str, Any]], None], partial: Partial) -> int:
    """Feed each span of one line to ``add``; the number of spans the line holds."""
    try:
        batch, records = line_spans(line)
    except BadRecordError as exc:
        _skip(partial, number, str(exc))
        return 1
    index = 0
    for record in records:  # each counted before the next is decoded
        index += 1
        try:
            if isinstance(record, BadRecordError):  # in the place of a span that cannot be read
                raise record
            add(record)
        except BadRecordError as exc:
            _skip(partial, number, f"span {index}: {exc}" if batch else str(exc))
    return index


# ---- across range bounds -------------------------------------------------------------------
def _calls_of_line(line: bytes) -> Iterator[tuple[tuple[str, str], Any]]:
    """``(key, record)`` of each call span a pass would count from ``line`` (it skips a broken span, as a pass does)."""
    try:
        _batch, records = line_spans(line)
    except BadRecordError:
        return
    for record in records:
        if isinstance(record, BadRecordError):
            continue
        try:
            kind = span_kind(record)
            if kind == "call":
                call = call_from_record(record)
                yield (call.trace_id, call.span_id), call
        except BadRecordError:
            continue


def _lines_backwards(handle: BinaryIO, start: int) -> Iterator[bytes]:
    """The lines before ``start`` (a line start), last first, without their newline.

    A line longer than :data:`MAX_LINE_BYTES` is passed over, as a forward read passes it over.
    """
    position, carry, first, carry_long = start, b"", True, False
    while position > 0:
        size = min(_BLOCK, position)
        position -= size
        handle.seek(position)
        parts = handle.read(size).split(b"\n")
        if carry_long:
            parts.pop()  # more of the long line: its start is at the newline before it, if any here
            if not parts:
                continue
            carry_long = False
        else:
            parts[-1] += carry
        if first:
            parts.pop()  # the empty text after the range's last newline
            first = False
        carry = parts.pop(0) if position > 0 and parts else b""
        if len(carry) > MAX_LINE_BYTES:
            carry, carry_long = b"", True
        yield from reversed(parts)
    if carry:
        yield carry


def window_before(
    handle: BinaryIO, start: int, accept: Callable[[CallSummary], bool], recent: int
) -> list[tuple[tuple[str, str], CallSummary | None]]:
    """The joiner's window of last calls as a pass reaches ``start``: oldest first."""
    found: dict[tuple[str, str], CallSummary | None] = {}
    if recent <= 0:
        return []
    for line in _lines_backwards(handle, start):
        if not line or line.isspace():
            continue
        for key, call in reversed(list(_calls_of_line(line))):
            if key not in found:
                found[key] = call if accept(call) else None
                if len(found) >= recent:
                    return list(reversed(found.items()))
    return list(reversed(found.items()))


def _searchable(pending: dict[tuple[str, str], list[tuple[int, AttemptSummary]]]) -> list[bytes] | None:
    """The awaited call span ids as bytes, when a line can be passed over for holding none of them."""
    if len(pending) > _MAX_SEARCHED_IDS:
        return None
    ids = [span_id for _, span_id in pending]
    if any(not _LITERAL_ID.fullmatch(span_id) or span_id in _NOT_LITERAL for span_id in ids):
        return None
    return [span_id.encode() for span_id in ids]


def follow_waiting(handle: BinaryIO, end: int, joiner: CallJoiner, counter: _Counter) -> None:
    """Find the call of each attempt still waiting at ``end`` in the rest of the file, and count them together."""
    pending = joiner.pending
    if not pending:
        return
    ids = _searchable(pending)
    handle.seek(end)
    for line in bounded_lines(handle):
        if isinstance(line, LongLine):
            continue
        if (
            ids is not None
            and b"\\" not in line
            and b"resourceSpans" not in line
            and not any(span_id in line for span_id in ids)
        ):
            continue
        for key, call in _calls_of_line(line):
            waiting = pending.pop(key, None)
            if waiting is None:
                continue
            if counter.accept(call):
                for _, attempt in waiting:
                    counter.on_late_attempt(call, attempt)
            if not pending:
                return
            ids = _searchable(pending)


# ---- one range -----------------------------------------------------------------------------
def scan_range(
    path: str | Path,
    start: int,
    end: int,
    breakdowns: Sequence[Sequence[Dimension]],
    since_ns: int | None = None,
    until_ns: int | None = None,
    recent: int = RECENT_CALLS,
) -> Partial:
    """The partial totals of the lines in ``[start, end)`` of ``path`` (both line starts)."""
    counter = _Counter(breakdowns, since_ns, until_ns)
    partial = Partial()
    collecting = gc.isenabled()
    gc.disable()  # a report makes no reference cycles; the collector's passes over its rows cost a fifth
    try:
        with open(path, "rb") as handle:
            window = window_before(handle, start, counter.accept, recent) if start > 0 else []
            joiner = CallJoiner(counter.on_call, counter.on_late_attempt, counter.accept, recent, window)
            _read(handle, start, end, joiner.add, partial)
            follow_waiting(handle, end, joiner, counter)
        counter.finish()
    finally:
        if collecting:
            gc.enable()
    partial.rows = [aggregator.rows for aggregator in counter.aggregators]
    partial.total = counter.total.rows
    partial.timeline = counter.timeline
    partial.orphans = joiner.orphans()
    return partial
