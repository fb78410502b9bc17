"""A batching span processor on OpenTelemetry's public ``SpanProcessor`` interface only.

It replaces the SDK's ``BatchSpanProcessor`` so that costrouter keeps its export guarantees
without touching SDK internals: ending a span only appends to a bounded queue (never blocks
on the exporter); a full queue drops the oldest span and counts it; one worker thread exports
batches of ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` every ``OTEL_BSP_SCHEDULE_DELAY`` (or as soon as a
batch is full); shutdown exports what is queued within a bound and counts what is left.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from costrouter import forks

_DEFAULT_BATCH_SIZE = 512
_DEFAULT_SCHEDULE_DELAY_MS = 5000

DropCounter = Callable[[int, str], None]
"""Called with (number of spans, reason) for every span that will not be exported."""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class QueuedSpanProcessor(SpanProcessor):
    """Bounded, counted, never-blocking span export (see the module docstring)."""

    def __init__(self, exporter: SpanExporter, *, max_queue_size: int, on_drop: DropCounter) -> None:
        self._exporter = exporter
        self._max_queue_size = max_queue_size
        self._batch_size = max(1, min(_env_int(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, _DEFAULT_BATCH_SIZE), max_queue_size))
        self._delay_s = max(0, _env_int(OTEL_BSP_SCHEDULE_DELAY, _DEFAULT_SCHEDULE_DELAY_MS)) / 1000.0
        self._on_drop = on_drop
        self._queue: deque[ReadableSpan] = deque()
        self._condition = threading.Condition()
        self._export_lock = threading.Lock()
        self._closed = False
        self.shutdown_timeout_seconds = 5.0
        self._worker = threading.Thread(target=self._run, name="costrouter-span-export", daemon=True)
        self._worker.start()
        forks.renew_in_child(self)

    def renew_after_fork(self) -> None:
        """In a forked child: its own export thread; the spans the parent queued are the parent's to export."""
        self._queue = deque()
        self._condition = threading.Condition()
        self._export_lock = threading.Lock()
        if not self._closed:
            self._worker = threading.Thread(target=self._run, name="costrouter-span-export", daemon=True)
            self._worker.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a sampled span; a full queue pushes out (and counts) the oldest one."""
        if not (span.context is not None and span.context.trace_flags.sampled):
            return
        with self._condition:
            if self._closed:
                dropped_reason = "ended after shutdown"
            else:
                dropped_reason = "queue full" if len(self._queue) >= self._max_queue_size else ""
                if dropped_reason:
                    self._queue.popleft()
                self._queue.append(span)
                if len(self._queue) >= self._batch_size:
                    self._condition.notify()
        if dropped_reason:
            self._on_drop(1, dropped_reason)

    def queued(self) -> int:
        """Spans waiting for export."""
        with self._condition:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._condition:
                if not self._closed and len(self._queue) < self._batch_size:
                    self._condition.wait(self._delay_s)
                if self._closed:
                    return  # shutdown exports what is left, within its bound
            self._export_batch(None)

    def _export_batch(self, deadline: float | None) -> bool:
        """Export one batch; False when the export lock could not be had before ``deadline``."""
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._export_lock.acquire(timeout=timeout):
            return False
        try:
            with self._condition:
                batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
            if batch:
                self._exporter.export(batch)  # the exporter counts a failed batch itself
        finally:
            self._export_lock.release()
        return True

    def _drain(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.queued():
            if time.monotonic() >= deadline or not self._export_batch(deadline):
                return False
        return True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every queued span, within ``timeout_millis``."""
        return self._drain(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        """Export what is queued for at most ``shutdown_timeout_seconds``; count what is left."""
        with self._condition:
            if self._closed:
                return
            self._closed = True
            self._condition.notify_all()
        self._drain(self.shutdown_timeout_seconds)
        self._exporter.shutdown()
        with self._condition:
            left = len(self._queue)
            self._queue.clear()
        if left:
            self._on_drop(left, "not exported before shutdown")
