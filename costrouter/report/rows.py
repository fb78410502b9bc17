"""Rows of a report, and how each routed call (and attempt) is added to them: exactly, in any order.

A row's counts are integers (cost in 1e-12 USD, latency sums in 2**-60 ms), so rows counted
over different parts of a file :meth:`~ReportRow.merge` into the rows of one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any, Final, NamedTuple

from costrouter.report.records import PICO, AttemptSummary, CallSummary, Dimension

__all__ = [
    "EXACT_LATENCIES",
    "LATENCY_UNITS",
    "Aggregator",
    "Breakdown",
    "CallCounts",
    "ReportRow",
    "latency_bucket",
    "latency_units",
    "ordered_breakdown",
]

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
            self.spill()

    def spill(self) -> None:
        """Turn the exact latencies into histogram buckets (the row grew past :data:`EXACT_LATENCIES`)."""
        buckets = self.latency_buckets
        for kept in self.latencies_ms:
            index = latency_bucket(kept)
            buckets[index] = buckets.get(index, 0) + 1
        self.latencies_ms = []

    def count(self, counts: CallCounts, with_attempts: bool) -> None:
        """Add one call (its :class:`CallCounts`); its attempts too when ``with_attempts``."""
        (ok, failed_call, rejected, input_tokens, output_tokens, cost, latency, bucket) = counts[:8]
        self.calls += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_pico += cost
        if ok:
            self.ok += 1
        else:
            self.failed += failed_call
            self.rejected += rejected
        if latency is not None:
            self.latency_count += 1
            self.latency_sum_units += counts[12]
            buckets = self.latency_buckets
            if buckets:
                buckets[bucket] = buckets.get(bucket, 0) + 1
            else:
                values = self.latencies_ms
                values.append(latency)
                if len(values) > EXACT_LATENCIES:
                    self.spill()
        if with_attempts and counts[8]:
            attempts, failed, retries, fallbacks = counts[8:12]
            self.attempts += attempts
            if failed or retries or fallbacks:
                self.failed_attempts += failed
                self.retries += retries
                self.fallbacks += fallbacks

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
            self.spill()

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
        values: tuple[Any, ...] = call  # by index: cheaper than by name, a million times
        attempts = values[_ATTEMPTS]
        if len(attempts) == 1 and attempts[0][_SUCCEEDED] and attempts[0][_KIND] == "first":
            failed = retries = fallbacks = 0
        else:
            failed, retries, fallbacks = _attempt_tally(attempts)
        outcome = values[_OUTCOME]
        if outcome == "rejected":
            latency = None
            bucket = units = 0
        else:
            latency = values[_LATENCY]
            bucket = latency_bucket(latency)
            units = int(latency * LATENCY_UNITS) if latency < 1e200 else latency_units(latency)
        return _new_counts(
            (
                outcome == "ok",
                outcome == "failed",
                latency is None,
                values[_INPUT_TOKENS],
                values[_OUTPUT_TOKENS],
                round(values[_COST] * PICO),
                latency,
                bucket,
                len(attempts),
                failed,
                retries,
                fallbacks,
                units,
            )
        )


def _attempt_tally(attempts: Iterable[AttemptSummary]) -> tuple[int, int, int]:
    """Failed attempts, retries and fallbacks among ``attempts``."""
    failed = retries = fallbacks = 0
    for attempt in attempts:
        if not attempt.succeeded:
            failed += 1
        kind = attempt.kind
        if kind == "retry":
            retries += 1
        elif kind == "fallback":
            fallbacks += 1
    return failed, retries, fallbacks


_ATTEMPTS: Final = CallSummary._fields.index("attempts")
_OUTCOME: Final = CallSummary._fields.index("outcome")
_LATENCY: Final = CallSummary._fields.index("latency_ms")
_INPUT_TOKENS: Final = CallSummary._fields.index("input_tokens")
_OUTPUT_TOKENS: Final = CallSummary._fields.index("output_tokens")
_COST: Final = CallSummary._fields.index("cost_usd")
_KIND: Final = AttemptSummary._fields.index("kind")
_SUCCEEDED: Final = AttemptSummary._fields.index("succeeded")
_new_counts: Callable[[tuple[Any, ...]], CallCounts] = partial(tuple.__new__, CallCounts)


class Aggregator:
    """Running totals of calls along one breakdown; calls are added one at a time, then forgotten."""

    def __init__(self, dimensions: Sequence[Dimension]) -> None:
        self.dimensions = tuple(dimensions)
        self.rows: dict[tuple[str | None, ...], ReportRow] = {}
        self.by_attempt = bool(_ATTEMPT_DIMENSIONS.intersection(self.dimensions))
        self.keys_of: Callable[[CallSummary], Iterable[tuple[str | None, ...]]] = partial(
            CallSummary.keys, dimensions=self.dimensions
        )
        if not self.dimensions:
            self.keys_of = lambda _call: ((),)
        elif len(self.dimensions) == 1 and self.dimensions[0] != "tag":
            getter = attrgetter(self.dimensions[0])
            self.keys_of = lambda call: ((getter(call),),)
        elif self.dimensions == ("tag",):
            self.keys_of = lambda call: [(tag,) for tag in call.tags] or [(None,)]
        elif "tag" not in self.dimensions:
            getters = attrgetter(*self.dimensions)
            self.keys_of = lambda call: (getters(call),)

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
        with_attempts = not self.by_attempt
        for key in self.keys_of(call):
            row = rows.get(key)
            if row is None:
                row = rows[key] = ReportRow(key)
            row.count(counts, with_attempts)
        if counts.attempts and self.by_attempt:
            for attempt in call.attempts:
                self.add_attempt(call, attempt)

    def add_attempt(self, call: CallSummary, attempt: AttemptSummary) -> None:
        """Count one attempt of ``call`` (also one that arrives after its call was counted)."""
        if self.by_attempt:
            count_attempt(self._row(self._attempt_key(call, attempt)), attempt)
            return
        for key in self.keys_of(call):
            count_attempt(self._row(key), attempt)

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


def count_attempt(row: ReportRow, attempt: AttemptSummary) -> None:
    """Count one attempt (and whether it failed, retried or fell back) in ``row``."""
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
