"""``costrouter.exporters``, the documented path of :func:`configure_telemetry`.

Its home is :mod:`costrouter.otel.exporters`; this path stays importable.
"""

from __future__ import annotations

from costrouter.otel.exporters import TelemetrySetup, configure_telemetry, read_span_records

__all__ = ["TelemetrySetup", "configure_telemetry", "read_span_records"]
