"""costrouter's own log records as OpenTelemetry logs, joined to the routed call's trace.

Budget alerts, budget-store errors and export drops are logged on the ``costrouter`` logger.
With the ``otlp`` exporter (and ``COSTROUTER_EXPORT_LOGS``, on by default), a handler on that
logger emits each record through the OpenTelemetry SDK's logs API (a ``LoggerProvider`` with a
batch processor and the OTLP log exporter) with the current context, so a record logged during
a routed call carries that call's trace and span ids. The application's own loggers and the
root logger are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from costrouter._version import __version__

LOGGER_NAME: Final = "costrouter"
"""The logger whose records are exported."""

_SEVERITY: Final = (
    (logging.CRITICAL, SeverityNumber.FATAL, "FATAL"),
    (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
    (logging.WARNING, SeverityNumber.WARN, "WARN"),
    (logging.INFO, SeverityNumber.INFO, "INFO"),
    (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG"),
)


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    for threshold, number, text in _SEVERITY:
        if levelno >= threshold:
            return number, text
    return SeverityNumber.TRACE, "TRACE"


class OtelLogHandler(logging.Handler):
    """Emit ``logging`` records as OpenTelemetry log records, in the caller's context."""

    def __init__(self, provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._logger = provider.get_logger(LOGGER_NAME, __version__)

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record; a failure is handled as ``logging`` handles any handler's."""
        try:
            number, text = _severity(record.levelno)
            attributes: dict[str, Any] = {
                "code.function.name": record.funcName,
                "code.line.number": record.lineno,
                "logger.name": record.name,
            }
            self._logger.emit(
                timestamp=int(record.created * 1e9),
                context=otel_context.get_current(),
                severity_number=number,
                severity_text=text,
                body=record.getMessage(),
                attributes=attributes,
            )
        except Exception:
            self.handleError(record)


class GuardedLogExporter(LogRecordExporter):
    """Calls ``on_failure`` for every failed batch; never lets an exception out."""

    def __init__(self, inner: LogRecordExporter, on_failure: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_failure = on_failure

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export through the inner exporter; count what failed."""
        try:
            result = self._inner.export(batch)
        except Exception:  # an exporter bug must not reach the worker
            result = LogRecordExportResult.FAILURE
        if result is not LogRecordExportResult.SUCCESS:
            self._on_failure(len(batch))
        return result

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self._inner.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner exporter."""
        return bool(self._inner.force_flush(timeout_millis))


class LogExport:
    """The logger provider and the handler on the ``costrouter`` logger; :meth:`shutdown` removes it."""

    def __init__(self, exporter: LogRecordExporter, resource: Resource) -> None:
        self.provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self.provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        self.handler = OtelLogHandler(self.provider)
        logging.getLogger(LOGGER_NAME).addHandler(self.handler)

    def force_flush(self, timeout_millis: int) -> bool:
        """Export what is queued."""
        return bool(self.provider.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Detach the handler, then flush and close the provider."""
        logging.getLogger(LOGGER_NAME).removeHandler(self.handler)
        self.provider.shutdown()
