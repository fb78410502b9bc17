"""Settings from the environment (``COSTROUTER_*``) and an optional ``.env`` file.

An explicit argument wins over a setting, a setting over the default. The standard
``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``
variables are read by the OpenTelemetry SDK itself and keep their usual meaning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from costrouter.backends import BackendName


class Settings(BaseSettings):
    """costrouter's settings; each field is read from ``COSTROUTER_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="COSTROUTER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    config: Path = Field(default=Path("configs/router.yaml"), description="The model-group YAML.")
    budgets: Path | None = Field(default=None, description="The budget policy YAML (none: no limits).")
    redis_url: str | None = Field(default=None, description="Overrides the policy's store.redis_url.")

    exporter: Literal["console", "otlp", "file", "none"] = Field(
        default="none",
        description=(
            "Where spans and metrics go when costrouter sets up telemetry itself: console, otlp, "
            "file (spans as JSON lines in export_file; no metrics) or none."
        ),
    )
    backend: BackendName | None = Field(
        default=None,
        description=(
            "A backend preset (arthur, langsmith, fiddler, signoz, phoenix, langfuse, datadog, collector): "
            "its endpoint layout, signals, headers and resource attributes from its own environment "
            "variables, and the span attributes it reads. Every OTEL_* variable still wins."
        ),
    )
    export_logs: bool = Field(
        default=True,
        description=(
            "With the otlp exporter, send costrouter's own log records (budget alerts, store errors, "
            "export drops) as OpenTelemetry logs carrying the call's trace id, where the backend has a logs route."
        ),
    )
    export_file: Path = Field(
        default=Path("costrouter-spans.jsonl"),
        description="The JSON-lines file the `file` exporter appends spans to (`costrouter report` reads it).",
    )
    otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        default="http/protobuf",
        description="OTLP transport; grpc needs the `grpc` extra (opentelemetry-exporter-otlp-proto-grpc).",
    )
    service_name: str | None = Field(
        default=None,
        description=(
            "service.name (default `costrouter`); OTEL_SERVICE_NAME or a service.name in "
            "OTEL_RESOURCE_ATTRIBUTES wins when set."
        ),
    )
    sampling_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Parent-based TraceIdRatio sampler: share of new traces kept."
    )
    capture_content: bool = Field(
        default=False,
        description="Record prompts and completions as gen_ai.input/output.messages (personal data!).",
    )
    content_max_chars: int = Field(default=4096, ge=0, description="Truncate captured content to this.")
    export_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Time one OTLP export (with its retries) may take; unset: OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT "
            "or the SDK's 10 s."
        ),
    )
    max_queue_size: int = Field(
        default=2048, gt=0, description="Ended spans buffered for export; past it, spans are dropped and counted."
    )
    metric_export_interval_seconds: float = Field(default=15.0, gt=0, description="How often metrics are exported.")
    shutdown_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="The most shutdown() and the exit hook wait for pending spans and metrics.",
    )
