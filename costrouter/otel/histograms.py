"""Explicit-bucket histograms aggregated in process, handed to the SDK's readers as finished points.

A synchronous ``Histogram.record`` costs about 130 k instructions inside the SDK (a
measurement object, the exemplar filter, a frozenset of the attributes, three locks, the
reservoir). Here a record is one bisect and a few additions under one lock, per reader.

The Python SDK has no metric-producer interface yet, so the points join each reader's
collection where the SDK's own come out: the provider's measurement consumer is wrapped
(:class:`_ProducingConsumer`) and every reader's collect callback points at the wrapper.
Each reader gets what the SDK would have given it for the same instrument: the same
buckets, its own temporality (cumulative or delta), the same attribute sets (with the
overflow set past the cardinality limit), min, max, sum and count, and one exemplar per
bucket under the provider's exemplar filter. A provider this cannot reproduce exactly (a
view that renames, filters or re-aggregates these instruments, a reader preferring another
histogram aggregation, an exemplar filter of its own, not the SDK) keeps the SDK's
histograms (:func:`in_process_histograms` returns ``None``).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import replace
from time import time_ns
from typing import Any, Final, cast

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Exemplar,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics import Histogram as SdkHistogramInstrument
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics._internal.instrument import _Histogram
from opentelemetry.sdk.metrics._internal.view import _default_reservoir_factory
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.view import DefaultAggregation, ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN, Span
from opentelemetry.util.types import AttributeValue

_Key = tuple[tuple[str, AttributeValue], ...]

CARDINALITY_LIMIT: Final = 2000
"""Attribute sets an instrument keeps, as the SDK's default cardinality limit; the rest add into one more."""
OVERFLOW_ATTRIBUTES: Final[Mapping[str, AttributeValue]] = {"otel.metric.overflow": True}
OVERFLOW_KEY: Final = tuple(OVERFLOW_ATTRIBUTES.items())


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
        key = tuple(attributes.items())
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


class _ProducingConsumer:
    """The provider's measurement consumer, whose collections carry the in-process histograms too."""

    def __init__(self, inner: Any, producer: _Producer) -> None:
        self._inner = inner
        self._producer = producer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def add_metric_reader(self, metric_reader: MetricReader) -> None:
        """The SDK's, then the histograms keep points for the reader from now on, as the SDK's storage does."""
        self._inner.add_metric_reader(metric_reader)
        self._producer.add_reader(metric_reader)

    def remove_metric_reader(self, metric_reader: MetricReader) -> None:
        """The SDK's, then the histograms forget the reader."""
        self._inner.remove_metric_reader(metric_reader)
        self._producer.remove_reader(metric_reader)

    def collect(self, metric_reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
        data: MetricsData | None = self._inner.collect(metric_reader, timeout_millis=timeout_millis)
        return self._producer.merge(metric_reader, data)


class _Producer:
    """The in-process histograms of one SDK provider, and their place in its collections."""

    def __init__(self, provider: SdkMeterProvider, scope: InstrumentationScope, sampling: str) -> None:
        self._resource = provider._sdk_config.resource
        self._consumer = provider._measurement_consumer
        self.scope = scope
        self.sampling = sampling
        self.histograms: dict[str, InProcessHistogram] = {}

    def readers(self) -> list[MetricReader]:
        """The provider's readers now."""
        return list(getattr(self._consumer, "_reader_storages", ()))

    def add_reader(self, reader: MetricReader) -> None:
        """Points for ``reader`` from now on, in every histogram."""
        for histogram in self.histograms.values():
            histogram.add_reader(reader, reader._instrument_class_temporality[_Histogram])

    def remove_reader(self, reader: MetricReader) -> None:
        """No more points for ``reader``."""
        for histogram in self.histograms.values():
            histogram.remove_reader(reader)

    def merge(self, reader: MetricReader, data: MetricsData | None) -> MetricsData | None:
        temporality = reader._instrument_class_temporality[_Histogram]
        now = time_ns()
        metrics: list[Metric] = []
        for histogram in self.histograms.values():
            histogram.add_reader(reader, temporality)  # no-op but for a reader the wrapper did not see added
            metric = histogram.collect(reader, now)
            if metric is not None:
                metrics.append(metric)
        if not metrics:
            return data
        if data is None or not data.resource_metrics:
            resource = self._resource
            mine = ScopeMetrics(scope=self.scope, metrics=metrics, schema_url=cast(str, self.scope.schema_url))
            return MetricsData(
                resource_metrics=[
                    ResourceMetrics(resource=resource, scope_metrics=[mine], schema_url=resource.schema_url)
                ]
            )
        first = data.resource_metrics[0]
        scopes = list(first.scope_metrics)
        for index, scope_metrics in enumerate(scopes):
            if scope_metrics.scope == self.scope:
                scopes[index] = replace(scope_metrics, metrics=[*scope_metrics.metrics, *metrics])
                break
        else:
            scopes.append(ScopeMetrics(scope=self.scope, metrics=metrics, schema_url=cast(str, self.scope.schema_url)))
        return MetricsData(resource_metrics=[replace(first, scope_metrics=scopes), *data.resource_metrics[1:]])


_PRODUCERS: weakref.WeakKeyDictionary[MeterProvider, _Producer | None] = weakref.WeakKeyDictionary()
_PRODUCERS_LOCK = threading.Lock()

_SAMPLING: Final[Mapping[type, str]] = {
    TraceBasedExemplarFilter: "trace",
    AlwaysOnExemplarFilter: "always",
    AlwaysOffExemplarFilter: "off",
}


def _bucket_view(view: View, names: Mapping[str, Sequence[float]]) -> bool:
    """Whether ``view`` leaves ``names`` alone or only sets their buckets to the ones given."""
    name = view._instrument_name
    if name is not None and name in names:
        aggregation = view._aggregation
        return (
            isinstance(aggregation, ExplicitBucketHistogramAggregation)
            and tuple(aggregation._boundaries or ()) == tuple(float(b) for b in names[name])
            and aggregation._record_min_max
            and view._name is None
            and view._description is None
            and view._attribute_keys is None
            and view._instrument_type in (None, SdkHistogramInstrument)
            and view._exemplar_reservoir_factory is _default_reservoir_factory
        )
    return name is not None and not any(char in name for char in "*?[")  # a view of other instruments only


def _producer(
    provider: MeterProvider, scope: InstrumentationScope, names: Mapping[str, Sequence[float]]
) -> _Producer | None:
    if type(provider) is not SdkMeterProvider:
        return None
    consumer = getattr(provider, "_measurement_consumer", None)
    config = getattr(provider, "_sdk_config", None)
    readers = getattr(consumer, "_reader_storages", None)  # the provider's readers, as keys
    if consumer is None or config is None or readers is None:
        return None
    sampling = _SAMPLING.get(type(config.exemplar_filter))
    if sampling is None or not all(_bucket_view(view, names) for view in config.views):
        return None
    for reader in list(readers):
        if not isinstance(reader._instrument_class_aggregation.get(_Histogram), DefaultAggregation):
            return None
    producer = _Producer(provider, scope, sampling)
    wrapped = _ProducingConsumer(consumer, producer)
    provider._measurement_consumer = cast(Any, wrapped)  # readers added later get the wrapper's collect
    for reader in list(readers):
        reader._set_collect_callback(wrapped.collect)
    return producer


def in_process_histograms(
    provider: MeterProvider, scope: InstrumentationScope, specs: Sequence[tuple[str, str, str, Sequence[float]]]
) -> dict[str, InProcessHistogram] | None:
    """The histograms ``specs`` (name, unit, description, buckets) aggregated here, or ``None``.

    ``None`` when the provider is not the SDK's or is configured in a way these points
    could not reproduce; the caller then records into the SDK's own histograms. Routers
    sharing a provider share its histograms, as they shared the SDK's instruments.
    """
    names = {name: buckets for name, _, _, buckets in specs}
    with _PRODUCERS_LOCK:
        try:
            if provider in _PRODUCERS:
                producer = _PRODUCERS[provider]
            else:
                producer = _PRODUCERS[provider] = _producer(provider, scope, names)
        except TypeError:  # a provider that cannot be a weak key
            return None
        if producer is None:
            return None
        for name, unit, description, buckets in specs:
            if name not in producer.histograms:
                histogram = InProcessHistogram(name, unit, description, buckets, producer.sampling)
                for reader in list(producer.readers()):
                    histogram.add_reader(reader, reader._instrument_class_temporality[_Histogram])
                producer.histograms[name] = histogram
        return {name: producer.histograms[name] for name, *_ in specs}
