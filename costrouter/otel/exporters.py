"""Telemetry out of the process: SDK providers and exporters built from :class:`Settings`.

``configure_telemetry()`` is the one call that sets up where costrouter's spans and
metrics go. It builds an OpenTelemetry SDK ``TracerProvider`` and ``MeterProvider``
(``service.name`` ``costrouter`` unless ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``
or ``COSTROUTER_SERVICE_NAME`` says otherwise), with a bounded span queue of its own
(:mod:`costrouter.span_queue`) and a ``PeriodicExportingMetricReader``. The standard
``OTEL_EXPORTER_OTLP_*`` variables are read
by the SDK's own exporters. An SDK provider the application already installed globally is
used as it is, and nothing is added to it.

Failure isolation: a span that cannot leave the process (queue full, collector down, slow,
answering 429/500) is counted in :attr:`TelemetrySetup.dropped_spans`, never raised into the
caller, and logged once: one warning at the first drop, one summary at shutdown. The
routed call never waits for the exporter: spans are queued, and the queue is bounded.
A process that exits without :meth:`TelemetrySetup.shutdown` still flushes what is queued,
within ``shutdown_timeout_seconds``, from an ``atexit`` hook.

The ``file`` exporter appends OTLP JSON, one ``TracesData`` object (one batch) a line, as the
Collector's ``file`` exporter does; :func:`read_span_records` reads such a file (or one of the
older :class:`SpanRecord` lines) back as span records.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, cast

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from typing_extensions import override

from costrouter.config.settings import Settings
from costrouter.errors import ConfigError
from costrouter.otel import semconv as sc
from costrouter.otel.backends import BackendName
from costrouter.otel.backends import backend as backend_preset
from costrouter.otel.backends.export import exporter_options, preset_resource
from costrouter.otel.log_export import GuardedLogExporter, LogExport
from costrouter.otel.otlp_json import spans_to_otlp_json
from costrouter.otel.span_file import SpanEventRecord, SpanRecord, SpanStatusRecord, read_span_records
from costrouter.otel.span_queue import QueuedSpanProcessor

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "ExportStats",
    "JsonLinesSpanExporter",
    "SpanEventRecord",
    "SpanRecord",
    "SpanStatusRecord",
    "TelemetrySetup",
    "build_resource",
    "configure_telemetry",
    "read_span_records",
    "span_to_record",
]

_LOGGER = logging.getLogger("costrouter.exporters")

DEFAULT_SERVICE_NAME = "costrouter"
"""``service.name`` when neither OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES nor settings name one."""

_DEFAULT_BATCH_SIZE = 512
_GRPC_HINT = (
    "otlp_protocol 'grpc' needs the optional extra: pip install 'costrouter-litellm[grpc]' "
    "(the package opentelemetry-exporter-otlp-proto-grpc)"
)

# The SDK loggers on the export path. While costrouter owns an exporter, their per-batch
# records ("Failed to export span batch", "Queue full, dropping span", retries) are muted and
# kept at DEBUG on costrouter's logger: costrouter reports drops once, then in a summary.
_SDK_EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
    "opentelemetry.sdk._shared_internal",
)


# ---- the file format ---------------------------------------------------------------------
def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in (attributes or {}).items()}


def span_to_record(span: ReadableSpan) -> SpanRecord:
    """Return the JSON-ready record of one ended span."""
    context = span.context
    parent = span.parent
    return SpanRecord(
        name=span.name,
        trace_id=trace.format_trace_id(context.trace_id) if context is not None else "",
        span_id=trace.format_span_id(context.span_id) if context is not None else "",
        parent_span_id=trace.format_span_id(parent.span_id) if parent is not None else None,
        kind=span.kind.name,
        start_time_ns=span.start_time or 0,
        end_time_ns=span.end_time or 0,
        status=SpanStatusRecord(code=span.status.status_code.name, description=span.status.description),
        attributes=_plain(span.attributes),
        events=[
            SpanEventRecord(name=event.name, time_ns=event.timestamp, attributes=_plain(event.attributes))
            for event in span.events
        ],
        resource=_plain(span.resource.attributes),
        scope=span.instrumentation_scope.name if span.instrumentation_scope is not None else None,
    )


class JsonLinesSpanExporter(SpanExporter):
    """Append spans to a file as OTLP JSON, one ``TracesData`` object (one batch) a line.

    The Collector's ``file`` exporter writes the same format, so ``costrouter report`` reads
    either. Each batch is one ``write`` in append mode, so several processes can share a file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append ``spans``; a failure to write is a failed export, not an exception."""
        payload = spans_to_otlp_json(spans) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(payload)
        except OSError as exc:
            _SDK_LOG_FILTER.note(f"cannot write {self.path}: {exc}")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing is held open between batches."""

    @override
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Return True: every batch is written when exported."""
        return True


# ---- drop accounting -----------------------------------------------------------------------
@dataclass(frozen=True)
class ExportStats:
    """What failed to leave the process so far.

    ``dropped_spans`` counts spans lost for any reason, ``dropped_by_reason`` splits it
    (``queue full``, ``export failed: …``, ``not exported before shutdown`` …);
    ``failed_metric_exports`` counts metric exports that failed, ``dropped_log_records`` the log
    records of failed log exports.
    """

    dropped_spans: int = 0
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    failed_metric_exports: int = 0
    dropped_log_records: int = 0


class _DropLedger:
    """Counts drops; logs the first one as a warning and the rest only in a summary."""

    def __init__(self, exporter: str) -> None:
        self._exporter = exporter
        self._lock = threading.Lock()
        self._spans: Counter[str] = Counter()
        self._metric_failures = 0
        self._log_records = 0
        self._warned = False

    def _warn_once(self, what: str, reason: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        _LOGGER.warning(
            "costrouter telemetry (%s exporter) could not export %s (%s); routed calls go on, "
            "further drops are counted silently and summarised at shutdown",
            self._exporter,
            what,
            reason,
        )

    def record_spans(self, count: int, reason: str, detail: str = "") -> None:
        if count <= 0:
            return
        with self._lock:
            self._spans[reason] += count
        self._warn_once(f"{count} span(s)", f"{reason}: {detail}" if detail else reason)

    def record_metric_failure(self, detail: str) -> None:
        with self._lock:
            self._metric_failures += 1
        self._warn_once("metrics", f"metric export failed: {detail}")

    def record_log_failure(self, count: int) -> None:
        with self._lock:
            self._log_records += count
        self._warn_once(f"{count} log record(s)", "log export failed")

    def snapshot(self) -> ExportStats:
        with self._lock:
            return ExportStats(
                dropped_spans=sum(self._spans.values()),
                dropped_by_reason=dict(self._spans),
                failed_metric_exports=self._metric_failures,
                dropped_log_records=self._log_records,
            )

    def log_summary(self) -> None:
        stats = self.snapshot()
        if not stats.dropped_spans and not stats.failed_metric_exports and not stats.dropped_log_records:
            return
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.dropped_by_reason.items()))
        _LOGGER.warning(
            "costrouter telemetry (%s exporter) dropped %d span(s) in all (%s), %d metric export(s) failed "
            "and %d log record(s) were dropped",
            self._exporter,
            stats.dropped_spans,
            reasons or "none",
            stats.failed_metric_exports,
            stats.dropped_log_records,
        )


class _SdkExportLogFilter(logging.Filter):
    """Mutes the SDK's per-batch export logs while costrouter owns an exporter.

    The last muted message of the current thread is kept as the reason of the next drop.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._active = 0
        self._local = threading.local()

    def acquire(self) -> None:
        with self._lock:
            if self._active == 0:
                for name in _SDK_EXPORT_LOGGERS:
                    logging.getLogger(name).addFilter(self)
            self._active += 1

    def release(self) -> None:
        with self._lock:
            self._active = max(0, self._active - 1)
            if self._active == 0:
                for name in _SDK_EXPORT_LOGGERS:
                    logging.getLogger(name).removeFilter(self)

    def note(self, message: str) -> None:
        self._local.last = message

    def take(self, default: str) -> str:
        message = getattr(self._local, "last", None)
        self._local.last = None
        return message if isinstance(message, str) else default

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        self.note(message)
        _LOGGER.debug("OpenTelemetry SDK (%s): %s", record.name, message)
        return False


_SDK_LOG_FILTER = _SdkExportLogFilter()


class _GuardedSpanExporter(SpanExporter):
    """Counts the spans of every failed batch; never lets an exception out."""

    def __init__(self, inner: SpanExporter, ledger: _DropLedger) -> None:
        self._inner = inner
        self._ledger = ledger

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        _SDK_LOG_FILTER.take("")
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter bug must not reach the worker or the caller
            _SDK_LOG_FILTER.note(f"{type(exc).__name__}: {exc}")
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._ledger.record_spans(len(spans), "export failed", _SDK_LOG_FILTER.take("unknown error"))
        return result

    def shutdown(self) -> None:
        try:
            self._inner.shutdown()
        except Exception:
            _LOGGER.debug("span exporter shutdown failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return bool(self._inner.force_flush(timeout_millis))
        except Exception:
            _LOGGER.debug("span exporter flush failed", exc_info=True)
            return False


class _GuardedMetricExporter(MetricExporter):
    """Counts failed metric exports; keeps the inner exporter's temporality and aggregation."""

    def __init__(self, inner: MetricExporter, ledger: _DropLedger) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._ledger = ledger

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        _SDK_LOG_FILTER.take("")
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            _SDK_LOG_FILTER.note(f"{type(exc).__name__}: {exc}")
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            self._ledger.record_metric_failure(_SDK_LOG_FILTER.take("unknown error"))
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return bool(self._inner.force_flush(timeout_millis=timeout_millis))
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)
        except Exception:
            _LOGGER.debug("metric exporter shutdown failed", exc_info=True)


# ---- building ------------------------------------------------------------------------------
def build_resource(settings: Settings | None = None) -> Resource:
    """Return the resource costrouter's providers carry.

    The SDK reads ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``; when neither names
    the service, ``settings.service_name`` does, else ``costrouter``. ``settings.project_name``
    adds ``openinference.project.name`` (the Phoenix project) unless the environment sets it.
    """
    settings = settings if settings is not None else Settings()
    preset = preset_resource(backend_preset(settings.backend), os.environ)
    detected = Resource(preset).merge(Resource.create({}))
    named = detected.attributes.get(SERVICE_NAME)
    if not (isinstance(named, str) and named and not named.startswith("unknown_service")):
        service = settings.service_name or preset.get(SERVICE_NAME) or DEFAULT_SERVICE_NAME
        detected = detected.merge(Resource({SERVICE_NAME: service}))
    if settings.project_name and sc.OPENINFERENCE_PROJECT_NAME not in detected.attributes:
        detected = detected.merge(Resource({sc.OPENINFERENCE_PROJECT_NAME: settings.project_name}))
    return detected


def _http_exporters() -> tuple[type[Any], type[Any]]:
    # Loaded on first use: a router without OTLP export never imports the exporter (nor protobuf).
    traces = import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    metrics_module = import_module("opentelemetry.exporter.otlp.proto.http.metric_exporter")
    return traces.OTLPSpanExporter, metrics_module.OTLPMetricExporter


def _grpc_exporters() -> tuple[type[Any], type[Any]]:
    try:
        traces = import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
        metrics_module = import_module("opentelemetry.exporter.otlp.proto.grpc.metric_exporter")
    except ImportError as exc:
        raise ConfigError.single("settings", "otlp_protocol", _GRPC_HINT) from exc
    return traces.OTLPSpanExporter, metrics_module.OTLPMetricExporter


def _exporters(settings: Settings) -> tuple[SpanExporter, MetricExporter | None]:
    if settings.exporter == "console":
        return ConsoleSpanExporter(), ConsoleMetricExporter()
    if settings.exporter == "file":
        return JsonLinesSpanExporter(settings.export_file), None
    kwargs: dict[str, Any] = {}
    if settings.export_timeout_seconds is not None:
        kwargs["timeout"] = settings.export_timeout_seconds
    preset, grpc = backend_preset(settings.backend), settings.otlp_protocol == "grpc"
    anywhere = settings.preset_headers_to_otel_endpoint
    options = exporter_options(preset, "traces", os.environ, grpc=grpc, headers_to_otel_endpoint=anywhere)
    metric_options = (
        exporter_options(preset, "metrics", os.environ, grpc=grpc, headers_to_otel_endpoint=anywhere)
        if preset.exports("metrics")
        else None
    )
    span_cls, metric_cls = _grpc_exporters() if grpc else _http_exporters()
    spans = span_cls(**kwargs, **options)
    if metric_options is None:
        return cast(SpanExporter, spans), None
    metrics_exporter = metric_cls(**kwargs, **metric_options)
    return cast(SpanExporter, spans), cast(MetricExporter, metrics_exporter)


def _log_export(settings: Settings, resource: Resource, ledger: _DropLedger) -> LogExport | None:
    preset = backend_preset(settings.backend)
    if settings.exporter != "otlp" or not settings.export_logs or not preset.exports("logs"):
        return None
    grpc = settings.otlp_protocol == "grpc"
    module = (
        "opentelemetry.exporter.otlp.proto.grpc._log_exporter"
        if grpc
        else "opentelemetry.exporter.otlp.proto.http._log_exporter"
    )
    kwargs: dict[str, Any] = exporter_options(
        preset, "logs", os.environ, grpc=grpc, headers_to_otel_endpoint=settings.preset_headers_to_otel_endpoint
    )
    if settings.export_timeout_seconds is not None:
        kwargs["timeout"] = settings.export_timeout_seconds
    exporter = GuardedLogExporter(import_module(module).OTLPLogExporter(**kwargs), ledger.record_log_failure)
    return LogExport(exporter, resource)


def _views() -> list[View]:
    return [
        View(
            instrument_name=sc.METRIC_OPERATION_DURATION,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=sc.OPERATION_DURATION_BUCKETS),
        ),
        View(
            instrument_name=sc.METRIC_TOKEN_USAGE,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=[float(b) for b in sc.TOKEN_USAGE_BUCKETS]),
        ),
    ]


def _run_bounded(action: Callable[[], object], timeout: float) -> bool:
    """Run ``action`` on a helper thread; False when it fails or outlives ``timeout``."""
    outcome: list[bool] = []

    def run() -> None:
        try:
            outcome.append(action() is not False)
        except Exception:
            _LOGGER.debug("telemetry flush failed", exc_info=True)
            outcome.append(False)

    worker = threading.Thread(target=run, name="costrouter-telemetry-flush", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome) and outcome[0]


class TelemetrySetup:
    """The providers costrouter's spans and metrics go through, and their exporters' health.

    ``tracer_provider`` / ``meter_provider`` are OpenTelemetry API objects to hand to a
    ``CostRouter`` (or any instrumentation). ``owns_tracer_provider`` / ``owns_meter_provider``
    say whether costrouter built them (then :meth:`shutdown` shuts them down) or reused the
    application's (then the application shuts them down). Use it as a context manager, call
    :meth:`shutdown`, or let the exit hook flush.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        *,
        exporter: str,
        owns_tracer_provider: bool = False,
        owns_meter_provider: bool = False,
        shutdown_timeout_seconds: float = 5.0,
        _ledger: _DropLedger | None = None,
        _span_processor: QueuedSpanProcessor | None = None,
        _logs: LogExport | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.exporter = exporter
        self.owns_tracer_provider = owns_tracer_provider
        self.owns_meter_provider = owns_meter_provider
        self.shutdown_timeout_seconds = shutdown_timeout_seconds
        self._ledger = _ledger or _DropLedger(exporter)
        self._span_processor = _span_processor
        self.log_export = _logs
        self._closed = False
        self._lock = threading.Lock()
        self._filtering = False
        if owns_tracer_provider or owns_meter_provider:
            atexit.register(self._at_exit)
            if exporter == "otlp":
                _SDK_LOG_FILTER.acquire()
                self._filtering = True

    @property
    def stats(self) -> ExportStats:
        """Drops and failures so far."""
        return self._ledger.snapshot()

    @property
    def dropped_spans(self) -> int:
        """Spans that did not leave the process (queue full, failed export, left at shutdown)."""
        return self._ledger.snapshot().dropped_spans

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export what is pending now; False when that failed or took longer than ``timeout`` s."""
        limit = self.shutdown_timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + limit
        flushed = True
        if self.owns_tracer_provider:
            provider = cast(SdkTracerProvider, self.tracer_provider)
            flushed = _run_bounded(lambda: provider.force_flush(int(limit * 1000)), limit)
        if self.owns_meter_provider:
            meter_provider = cast(SdkMeterProvider, self.meter_provider)
            remaining = max(0.0, deadline - time.monotonic())
            flushed = _run_bounded(lambda: meter_provider.force_flush(remaining * 1000), remaining) and flushed
        if self.log_export is not None:
            logs, remaining = self.log_export, max(0.0, deadline - time.monotonic())
            flushed = _run_bounded(lambda: logs.force_flush(int(remaining * 1000)), remaining) and flushed
        return flushed

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and close the providers costrouter built, within ``timeout`` seconds.

        Logs the drop summary when anything was dropped. Returns True when no queued span
        was left behind. Calling it again does nothing.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        atexit.unregister(self._at_exit)
        limit = self.shutdown_timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + limit
        before = self._ledger.snapshot().dropped_by_reason.get("not exported before shutdown", 0)
        if self.owns_tracer_provider:
            if self._span_processor is not None:
                self._span_processor.shutdown_timeout_seconds = limit
            try:
                cast(SdkTracerProvider, self.tracer_provider).shutdown()
            except Exception:
                _LOGGER.debug("tracer provider shutdown failed", exc_info=True)
        if self.owns_meter_provider:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                cast(SdkMeterProvider, self.meter_provider).shutdown(timeout_millis=remaining * 1000)
            except Exception:
                _LOGGER.debug("meter provider shutdown failed", exc_info=True)
        self._ledger.log_summary()
        if self.log_export is not None:
            try:
                self.log_export.shutdown()
            except Exception:
                _LOGGER.debug("logger provider shutdown failed", exc_info=True)
        if self._filtering:
            _SDK_LOG_FILTER.release()
            self._filtering = False
        after = self._ledger.snapshot().dropped_by_reason.get("not exported before shutdown", 0)
        return after == before

    def _at_exit(self) -> None:
        self.shutdown(self.shutdown_timeout_seconds)

    def __enter__(self) -> TelemetrySetup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        owned = [
            name
            for name, flag in (("traces", self.owns_tracer_provider), ("metrics", self.owns_meter_provider))
            if flag
        ]
        return f"TelemetrySetup(exporter={self.exporter!r}, owns={owned}, dropped_spans={self.dropped_spans})"


def _app_tracer_provider() -> SdkTracerProvider | None:
    current = trace.get_tracer_provider()
    return current if isinstance(current, SdkTracerProvider) else None


def _app_meter_provider() -> SdkMeterProvider | None:
    current = metrics.get_meter_provider()
    return current if isinstance(current, SdkMeterProvider) else None


def configure_telemetry(
    settings: Settings | None = None, *, set_global: bool = True, backend: BackendName | None = None
) -> TelemetrySetup:
    """Build the tracer and meter providers costrouter exports through, from ``settings``.

    ``settings`` defaults to ``Settings()`` (the ``COSTROUTER_*`` environment and ``.env``).
    With ``exporter="none"`` the providers are OpenTelemetry's no-op ones and nothing is
    installed. With ``set_global=True`` an SDK provider the application already installed
    globally is reused untouched (per signal), and a provider costrouter builds becomes the
    global one; with ``set_global=False`` new providers are built and the globals are left
    alone. Raises :class:`~costrouter.errors.ConfigError` when ``otlp_protocol="grpc"`` and
    the gRPC exporter is not installed; never raises for an unreachable endpoint.

    ``backend`` (else ``settings.backend``, ``COSTROUTER_BACKEND``) picks a preset of
    :mod:`costrouter.backends`: endpoint layout, signals, headers and resource attributes. The
    span attributes a backend reads are written by the ``CostRouter``, from its own settings.
    """
    settings = settings if settings is not None else Settings()
    if backend is not None:
        settings = settings.model_copy(update={"backend": backend})
    if settings.exporter == "none":
        return TelemetrySetup(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), exporter="none")

    app_tracer = _app_tracer_provider() if set_global else None
    app_meter = _app_meter_provider() if set_global else None
    if app_tracer is not None and app_meter is not None:
        _LOGGER.debug("costrouter telemetry: using the application's tracer and meter providers")
        return TelemetrySetup(app_tracer, app_meter, exporter=settings.exporter)

    span_exporter, metric_exporter = _exporters(settings)
    ledger = _DropLedger(settings.exporter)
    resource = build_resource(settings)

    tracer_provider: trace.TracerProvider
    processor: QueuedSpanProcessor | None = None
    if app_tracer is None:
        sdk_tracer = SdkTracerProvider(
            resource=resource,
            sampler=ParentBased(TraceIdRatioBased(settings.sampling_ratio)),
            shutdown_on_exit=False,
        )
        processor = QueuedSpanProcessor(
            _GuardedSpanExporter(span_exporter, ledger),
            max_queue_size=settings.max_queue_size,
            on_drop=ledger.record_spans,
        )
        sdk_tracer.add_span_processor(processor)
        tracer_provider = sdk_tracer
    else:
        span_exporter.shutdown()
        tracer_provider = app_tracer

    meter_provider: metrics.MeterProvider
    if app_meter is None:
        readers: list[MetricReader] = []
        if metric_exporter is not None:
            readers.append(
                PeriodicExportingMetricReader(
                    _GuardedMetricExporter(metric_exporter, ledger),
                    export_interval_millis=settings.metric_export_interval_seconds * 1000,
                )
            )
        meter_provider = SdkMeterProvider(
            metric_readers=readers, resource=resource, shutdown_on_exit=False, views=_views()
        )
    else:
        if metric_exporter is not None:
            metric_exporter.shutdown()
        meter_provider = app_meter

    setup = TelemetrySetup(
        tracer_provider,
        meter_provider,
        exporter=settings.exporter,
        owns_tracer_provider=app_tracer is None,
        owns_meter_provider=app_meter is None,
        shutdown_timeout_seconds=settings.shutdown_timeout_seconds,
        _ledger=ledger,
        _span_processor=processor,
        _logs=_log_export(settings, resource, ledger) if app_tracer is None else None,
    )
    if set_global:
        if app_tracer is None:
            trace.set_tracer_provider(tracer_provider)
        if app_meter is None:
            metrics.set_meter_provider(meter_provider)
    return setup
