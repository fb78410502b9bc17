"""Capture costrouter's spans and metrics in memory, with the real OpenTelemetry SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costrouter.otel import semconv as sc


def _attempt_index(span: ReadableSpan) -> int:
    index = (span.attributes or {}).get(sc.ATTEMPT_INDEX, 0)
    return index if isinstance(index, int) else 0


class TelemetryCapture:
    """An SDK tracer provider and meter provider that keep everything in memory.

    >>> capture = TelemetryCapture()
    >>> router = CostRouter(config, tracer_provider=capture.tracer_provider,
    ...                     meter_provider=capture.meter_provider)
    >>> capture.call_spans()[0].attributes["llm.usage.cost_usd"]
    """

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])

    def spans(self) -> list[ReadableSpan]:
        """Every finished span, in end order."""
        return list(self.exporter.get_finished_spans())

    def call_spans(self) -> list[ReadableSpan]:
        """The parent spans of routed calls (``router.completion/…``)."""
        return [span for span in self.spans() if span.name.startswith(sc.CALL_SPAN_NAME_PREFIXES)]

    def attempt_spans(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The attempt spans under ``parent``, in attempt order.

        ``[parent]`` when the call's one attempt succeeded: the parent carries it (``router.attempt.*``).
        """
        if sc.ATTEMPT_INDEX in (parent.attributes or {}):
            return [parent]
        parent_id = parent.context.span_id if parent.context else None
        children = [
            span
            for span in self.spans()
            if span.name.startswith(f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/")
            and span.parent is not None
            and span.parent.span_id == parent_id
        ]
        return sorted(children, key=_attempt_index)

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self.exporter.clear()

    def metric_points(self, name: str) -> list[tuple[Mapping[str, Any], Any]]:
        """``(attributes, point)`` for every data point of metric ``name``."""
        data = self.metric_reader.get_metrics_data()
        points: list[tuple[Mapping[str, Any], Any]] = []
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend((dict(point.attributes or {}), point) for point in metric.data.data_points)
        return points

    def shutdown(self) -> None:
        """Shut both providers down."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
