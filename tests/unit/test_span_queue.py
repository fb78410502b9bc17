"""The span processor costrouter exports through, on the SDK's public interfaces only."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from costrouter.otel.span_queue import QueuedSpanProcessor


class RecordingExporter(SpanExporter):
    """Keeps each batch; optionally holds every export until released."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.hold = hold
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait()
        self.batches.append([span.name for span in spans])
        return SpanExportResult.SUCCESS


def _provider(processor: QueuedSpanProcessor) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider


def test_batches_follow_otel_bsp_max_export_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")  # only a full batch or a flush exports
    exporter = RecordingExporter()
    drops: list[tuple[int, str]] = []
    processor = QueuedSpanProcessor(exporter, max_queue_size=100, on_drop=lambda n, why: drops.append((n, why)))
    tracer = _provider(processor).get_tracer("t")
    for index in range(7):
        tracer.start_span(f"s{index}").end()
    assert processor.force_flush(10_000)
    assert [name for batch in exporter.batches for name in batch] == [f"s{index}" for index in range(7)]
    assert all(len(batch) <= 3 for batch in exporter.batches)
    processor.shutdown()
    assert drops == []


def test_a_full_queue_drops_the_oldest_and_shutdown_counts_what_is_left() -> None:
    hold = threading.Event()
    exporter = RecordingExporter(hold)
    drops: list[tuple[int, str]] = []
    processor = QueuedSpanProcessor(exporter, max_queue_size=4, on_drop=lambda n, why: drops.append((n, why)))
    tracer = _provider(processor).get_tracer("t")
    for index in range(4):
        tracer.start_span(f"first{index}").end()
    assert exporter.entered.wait(10)  # a full batch woke the worker; its export is held
    for index in range(6):
        tracer.start_span(f"later{index}").end()  # never blocks, though the exporter is held
    assert sum(n for n, why in drops if why == "queue full") == 2
    processor.shutdown_timeout_seconds = 0.2
    processor.shutdown()  # the held export keeps the lock: what is queued is counted, not waited for
    assert (4, "not exported before shutdown") in drops
    tracer.start_span("too late").end()
    assert (1, "ended after shutdown") in drops
    hold.set()
