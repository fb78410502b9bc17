"""The in-process histograms' place in an SDK provider's collections.

The Python SDK has no metric-producer interface yet, so the points of
:mod:`costrouter.otel.histograms` join each reader's collection where the SDK's own come
out: the provider's measurement consumer is wrapped (:class:`_ProducingConsumer`) and every
reader's collect callback points at the wrapper. A provider whose histograms this cannot
reproduce exactly (a view that renames, filters or re-aggregates these instruments, a reader
preferring another histogram aggregation, an exemplar filter of its own, not the SDK) keeps
the SDK's histograms (:func:`in_process_histograms` returns ``None``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from time import time_ns
from typing import Any, Final, cast

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics import Histogram as SdkHistogramInstrument
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics._internal.instrument import _Histogram
from opentelemetry.sdk.metrics._internal.view import _default_reservoir_factory
from opentelemetry.sdk.metrics.export import (
    Metric,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.view import DefaultAggregation, ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from costrouter.otel.histograms import InProcessHistogram


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
