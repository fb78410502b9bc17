"""Explicit-bucket histograms aggregated in process, collected as finished SDK points.

A synchronous ``Histogram.record`` costs about 130 k instructions inside the SDK (a
measurement object, the exemplar filter, a frozenset of the attributes, three locks, the
reservoir). Here a record is one bisect and a few additions under one lock, per reader.
Each reader gets what the SDK would have given it for the same instrument: the same
buckets, its own temporality (cumulative or delta), the same attribute sets (with the
overflow set past the cardinality limit), min, max, sum and count, and one exemplar per
bucket under the provider's exemplar filter. :mod:`costrouter.otel.metric_producer` hands
the points to the provider's readers.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Final

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
)
from opentelemetry.trace import INVALID_SPAN, Span
from opentelemetry.util.types import AttributeValue

_Key = tuple[tuple[str, AttributeValue], ...]

CARDINALITY_LIMIT: Final = 2000
"""Attribute sets an instrument keeps, as the SDK's default cardinality limit; the rest add into one more."""
OVERFLOW_ATTRIBUTES: Final[Mapping[str, AttributeValue]] = {"otel.metric.overflow": True}
OVERFLOW_KEY: Final = tuple(OVERFLOW_ATTRIBUTES.items())


class AttributeSet(dict[str, AttributeValue]):
    """A metric attribute set built once and recorded many times, with its key computed once.

    Never changed after it is built: ``key`` is the tuple of its items that
    :meth:`InProcessHistogram.record` and the summed counters would otherwise build on every record.
    """

    __slots__ = ("key",)

    def __init__(self, attributes: Mapping[str, AttributeValue]) -> None:
        super().__init__(attributes)
        self.key: _Key = tuple(self.items())


def key_of(attributes: Mapping[str, AttributeValue]) -> _Key:
    """The cell key of ``attributes``: its items in order (kept on an :class:`AttributeSet`)."""
    return attributes.key if attributes.__class__ is AttributeSet else tuple(attributes.items())


class _Exemplar:
    __slots__ = ("attributes", "span_id", "time_ns", "trace_id", "value")

    def __init__(self, value: float, attributes: Mapping[str, AttributeValue], span: Span) -> None:
        self.value = value
        self.time_ns = time_ns()
        self.attributes = attributes
        context = span.get_span_context() if span is not INVALID_SPAN else None
        self.span_id = context.span_id if context is not None else None
        self.trace_id = context.trace_id if context is not None else None


class _Cell:
    """One attribute set's buckets, as the SDK's explicit-bucket aggregation keeps them."""

    __slots__ = ("attributes", "counts", "exemplars", "max", "min", "start_ns", "sum")

    def __init__(self, attributes: Mapping[str, AttributeValue], start_ns: int) -> None:
        self.attributes = attributes
        self.start_ns = start_ns
        self.counts: list[int] | None = None
        self.sum: float = 0
        self.min: float = math.inf
        self.max: float = -math.inf
        self.exemplars: dict[int, _Exemplar] = {}


class _ReaderState:
    """What one reader has not collected yet (delta) or everything (cumulative)."""

    def __init__(self, temporality: AggregationTemporality) -> None:
        self.delta = temporality is AggregationTemporality.DELTA
        self.temporality = temporality
        self.cells: dict[_Key, _Cell] = {}
        self.previous_ns: int | None = None
        """The start of the reader's last collection: the start of a set first seen after it (as the SDK's)."""


class InProcessHistogram:
    """An explicit-bucket histogram whose points go to every reader of one SDK provider.

    ``record`` has the meaning of the API's ``Histogram.record``; ``span`` is the span an
    exemplar would come from (``INVALID_SPAN``: none, as a measurement in a context without
    a span). Negative values are dropped, as the SDK drops them; NaN and infinity too (the SDK
    would add them into the sum, which no backend could read again).
    """

    def __init__(self, name: str, unit: str, description: str, boundaries: Sequence[float], sampling: str) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.boundaries = tuple(float(bound) for bound in boundaries)
        self._sampling = sampling
        self._lock = threading.Lock()
        self._states: dict[int, _ReaderState] = {}
        """By ``id`` of the reader: no reference that would keep a reader (and its provider) alive."""
        _ALL.add(self)

    def record(self, value: float, attributes: Mapping[str, AttributeValue], span: Span = INVALID_SPAN) -> None:
        """Add ``value`` to the set ``attributes`` of every reader."""
        if not value >= 0 or value == math.inf:
            return
        index = bisect_left(self.boundaries, value)
        sampling = self._sampling
        exemplar: _Exemplar | None = None
        if sampling == "always" or (
            sampling == "trace" and span is not INVALID_SPAN and span.get_span_context().trace_flags.sampled
        ):
            exemplar = _Exemplar(value, attributes, span)
        key = key_of(attributes)
        with self._lock:
            for state in self._states.values():
                cell = state.cells.get(key)
                if cell is None:
                    cell = self._new_cell(state, key, attributes)
                counts = cell.counts
                if counts is None:
                    counts = cell.counts = [0] * (len(self.boundaries) + 1)
                counts[index] += 1
                cell.sum += value
                cell.min = min(cell.min, value)
                cell.max = max(cell.max, value)
                if exemplar is not None:
                    cell.exemplars[index] = exemplar

    def _new_cell(self, state: _ReaderState, key: _Key, attributes: Mapping[str, AttributeValue]) -> _Cell:
        if len(state.cells) >= CARDINALITY_LIMIT:  # as the SDK does: the sets past the limit share one
            cell = state.cells.get(OVERFLOW_KEY)
            if cell is not None:
                return cell
            key, attributes = OVERFLOW_KEY, OVERFLOW_ATTRIBUTES
        cell = state.cells[key] = _Cell(dict(attributes), state.previous_ns or time_ns())
        return cell

    def add_reader(self, reader: MetricReader, temporality: AggregationTemporality) -> None:
        """Keep points for ``reader`` from now on (once per reader)."""
        with self._lock:
            if id(reader) not in self._states:
                self._states = {**self._states, id(reader): _ReaderState(temporality)}

    def remove_reader(self, reader: MetricReader) -> None:
        """Forget ``reader`` (removed from its provider)."""
        with self._lock:
            self._states = {key: state for key, state in self._states.items() if key != id(reader)}

    def collect(self, reader: MetricReader, now_ns: int) -> Metric | None:
        """The reader's points since its last collection (delta) or since the start (cumulative)."""
        with self._lock:
            state = self._states.get(id(reader))
            if state is None:
                return None
            points = [point for cell in state.cells.values() if (point := self._point(state, cell, now_ns))]
            state.previous_ns = now_ns
        if not points:
            return None
        return Metric(
            name=self.name,
            description=self.description,
            unit=self.unit,
            data=Histogram(data_points=points, aggregation_temporality=state.temporality),
        )

    def _point(self, state: _ReaderState, cell: _Cell, now_ns: int) -> HistogramDataPoint | None:
        counts = cell.counts
        if state.delta:
            if counts is None:
                return None
            start, cell.start_ns = cell.start_ns, now_ns
        else:
            start = cell.start_ns
            counts = counts or [0] * (len(self.boundaries) + 1)
        exemplars = [_sdk_exemplar(exemplar, cell.attributes) for _, exemplar in sorted(cell.exemplars.items())]
        point = HistogramDataPoint(
            attributes=cell.attributes,
            start_time_unix_nano=start,
            time_unix_nano=now_ns,
            count=sum(counts),
            sum=cell.sum,
            bucket_counts=tuple(counts),
            explicit_bounds=self.boundaries,
            min=cell.min,
            max=cell.max,
            exemplars=exemplars,
        )
        cell.exemplars = {}
        if state.delta:
            cell.counts, cell.sum, cell.min, cell.max = None, 0, math.inf, -math.inf
        return point

    def _after_fork(self) -> None:
        self._lock = threading.Lock()


def _sdk_exemplar(exemplar: _Exemplar, point_attributes: Mapping[str, AttributeValue]) -> Exemplar:
    filtered = (
        {k: v for k, v in exemplar.attributes.items() if k not in point_attributes} if exemplar.attributes else None
    )
    return Exemplar(filtered, exemplar.value, exemplar.time_ns, exemplar.span_id, exemplar.trace_id)


_ALL: weakref.WeakSet[InProcessHistogram] = weakref.WeakSet()


def _renew_locks() -> None:
    for histogram in list(_ALL):
        histogram._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks)
