"""The histograms aggregated in process export what the SDK's histograms export (real SDK)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN, Span

from costrouter.otel import semconv as sc
from costrouter.otel.exporters import _views
from costrouter.otel.histograms import CARDINALITY_LIMIT
from costrouter.otel.metric_producer import in_process_histograms
from costrouter.otel.telemetry import Telemetry

NAME, UNIT, DESCRIPTION = sc.METRIC_TOKEN_USAGE, sc.METRIC_TOKEN_USAGE_UNIT, "Tokens."
BUCKETS = tuple(float(bound) for bound in sc.TOKEN_USAGE_BUCKETS)
A = {sc.ROUTER_GROUP: "fast", sc.GEN_AI_TOKEN_TYPE: "input"}
B = {sc.ROUTER_GROUP: "fast", sc.GEN_AI_TOKEN_TYPE: "output"}
C = {sc.ROUTER_GROUP: "capable", sc.GEN_AI_TOKEN_TYPE: "input"}
STEPS: list[list[tuple[float, dict[str, str], bool]]] = [
    [(12, A, True), (300, B, False), (4, A, False), (0, A, False)],
    [(70000, C, True), (1, A, True), (-3, A, False)],
    [],
    [(2.5, C, False), (1e9, B, True)],
]
"""(value, attributes, under the sampled span) per collection; -3 is dropped as the SDK drops it."""


def reader_for(temporality: AggregationTemporality) -> InMemoryMetricReader:
    return InMemoryMetricReader(preferred_temporality={SdkHistogram: temporality})


def exported(reader: InMemoryMetricReader) -> list[tuple[Any, ...]]:
    """Each histogram as a backend sees it, times left out (they differ by when each ran)."""
    data = reader.get_metrics_data()
    out: list[tuple[Any, ...]] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert isinstance(metric.data, Histogram)
                points = {
                    frozenset((point.attributes or {}).items()): (
                        point.count,
                        point.sum,
                        type(point.sum),
                        point.bucket_counts,
                        tuple(point.explicit_bounds),
                        point.min,
                        point.max,
                        [(e.value, e.span_id, e.trace_id, e.filtered_attributes) for e in point.exemplars],
                    )
                    for point in metric.data.data_points
                }
                temporality = metric.data.aggregation_temporality
                out.append((scope.scope.name, metric.name, metric.unit, metric.description, temporality, points))
    return out


def starts(reader: InMemoryMetricReader) -> list[tuple[int, int]]:
    data = reader.get_metrics_data()
    return [
        (point.start_time_unix_nano, point.time_unix_nano)
        for resource in data.resource_metrics
        if data
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]


def test_in_process_histogram_exports_the_sdk_histogram_data_cumulative_and_delta() -> None:
    span: Span = TracerProvider().get_tracer("test").start_span("call")
    scope = InstrumentationScope("costrouter", "1")
    for temporality in (AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA):
        ours_reader, sdk_reader = reader_for(temporality), reader_for(temporality)
        ours_provider = MeterProvider(metric_readers=[ours_reader], shutdown_on_exit=False)
        sdk_provider = MeterProvider(metric_readers=[sdk_reader], shutdown_on_exit=False)
        histograms = in_process_histograms(ours_provider, scope, [(NAME, UNIT, DESCRIPTION, BUCKETS)])
        assert histograms is not None
        ours = histograms[NAME]
        sdk = sdk_provider.get_meter("costrouter", "1").create_histogram(
            NAME, unit=UNIT, description=DESCRIPTION, explicit_bucket_boundaries_advisory=list(BUCKETS)
        )
        for batch in STEPS:
            for value, attributes, sampled in batch:
                ours.record(value, attributes, span if sampled else INVALID_SPAN)
                context = trace.set_span_in_context(span if sampled else INVALID_SPAN)
                sdk.record(value, attributes, context)
            assert exported(ours_reader) == exported(sdk_reader), temporality
        ours_provider.shutdown()
        sdk_provider.shutdown()


def test_delta_points_start_where_the_last_collection_ended() -> None:
    reader = reader_for(AggregationTemporality.DELTA)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    histograms = in_process_histograms(provider, InstrumentationScope("costrouter"), [(NAME, UNIT, "", BUCKETS)])
    assert histograms is not None
    histograms[NAME].record(1, A)
    ((_, first_end),) = starts(reader)
    histograms[NAME].record(2, A)
    ((second_start, _),) = starts(reader)
    assert second_start == first_end
    provider.shutdown()


def test_attribute_sets_past_the_limit_share_the_overflow_point_as_in_the_sdk() -> None:
    ours_reader, sdk_reader = InMemoryMetricReader(), InMemoryMetricReader()
    ours_provider = MeterProvider(metric_readers=[ours_reader], shutdown_on_exit=False)
    sdk_provider = MeterProvider(metric_readers=[sdk_reader], shutdown_on_exit=False)
    histograms = in_process_histograms(ours_provider, InstrumentationScope("costrouter"), [(NAME, UNIT, "", BUCKETS)])
    assert histograms is not None
    sdk = sdk_provider.get_meter("costrouter").create_histogram(
        NAME, unit=UNIT, description="", explicit_bucket_boundaries_advisory=list(BUCKETS)
    )
    for index in range(CARDINALITY_LIMIT + 5):
        histograms[NAME].record(index, {"n": index})
        sdk.record(index, {"n": index})
    assert exported(ours_reader) == exported(sdk_reader)
    ours_provider.shutdown()
    sdk_provider.shutdown()


def test_the_exporters_bucket_views_keep_the_in_process_path() -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()], views=_views(), shutdown_on_exit=False)
    specs = [(NAME, UNIT, "", BUCKETS), (sc.METRIC_OPERATION_DURATION, "s", "", sc.OPERATION_DURATION_BUCKETS)]
    assert in_process_histograms(provider, InstrumentationScope("costrouter"), specs) is not None
    provider.shutdown()


def test_a_provider_with_a_view_of_its_own_keeps_the_sdk_histograms() -> None:
    reader = InMemoryMetricReader()
    views = [View(instrument_name=NAME, name="tokens", aggregation=ExplicitBucketHistogramAggregation((1.0, 10.0)))]
    provider = MeterProvider(metric_readers=[reader], views=views, shutdown_on_exit=False)
    telemetry = Telemetry(meter_provider=provider)
    telemetry.metrics.token_usage(5, A, INVALID_SPAN)
    ((scope, name, *_, points),) = exported(reader)
    assert (scope, name) == ("costrouter", "tokens")
    assert points[frozenset(A.items())][3] == (0, 1, 0)
    provider.shutdown()


def test_a_reader_added_later_gets_the_points_recorded_after_it_was_added_as_in_the_sdk() -> None:
    first = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first], shutdown_on_exit=False)
    telemetry = Telemetry(meter_provider=provider)
    telemetry.metrics.token_usage(5, A, INVALID_SPAN)
    later = InMemoryMetricReader()
    provider.add_metric_reader(later)
    telemetry.metrics.token_usage(7, A, INVALID_SPAN)
    ((*_, points),) = exported(later)
    assert points[frozenset(A.items())][:2] == (1, 7)
    ((*_, points),) = exported(first)
    assert points[frozenset(A.items())][:2] == (2, 12)
    provider.remove_metric_reader(later)
    telemetry.metrics.token_usage(1, A, INVALID_SPAN)
    ((*_, points),) = exported(first)
    assert points[frozenset(A.items())][:2] == (3, 13)
    provider.shutdown()
