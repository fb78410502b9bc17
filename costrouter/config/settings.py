"""Settings from the environment (``COSTROUTER_*``) and an optional ``.env`` file.

An explicit argument wins over a setting, a setting over the default. The standard
``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``
variables are read by the OpenTelemetry SDK itself and keep their usual meaning.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from costrouter.config.redaction import masked_repr_args

BackendName = Literal["arthur", "langsmith", "fiddler", "signoz", "phoenix", "langfuse", "datadog", "collector"]
"""The names ``COSTROUTER_BACKEND`` accepts."""

_OTLP_PROTOCOLS = ("http/protobuf", "grpc")
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


def _from_otel(variable: str, parse: Callable[[str], Any], fallback: Any) -> Callable[[], Any]:
    """A default read from the standard ``OTEL_*`` variable when the ``COSTROUTER_*`` one is unset."""

    def default() -> Any:
        raw = os.environ.get(variable, "").strip()
        if not raw:
            return fallback
        try:
            return parse(raw)
        except ValueError as exc:
            message = f"{variable}={raw!r}: {exc}"
            raise ValueError(message) from exc

    return default


def _protocol(raw: str) -> str:
    if raw not in _OTLP_PROTOCOLS:
        message = f"costrouter exports OTLP as {' or '.join(_OTLP_PROTOCOLS)}"
        raise ValueError(message)
    return raw


def _otlp_protocol() -> Any:
    traces = _from_otel("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", _protocol, None)()
    return traces or _from_otel("OTEL_EXPORTER_OTLP_PROTOCOL", _protocol, "http/protobuf")()


def _sampling_ratio() -> Any:
    if os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_traceidratio").strip() not in _RATIO_SAMPLERS:
        return 1.0
    return _from_otel("OTEL_TRACES_SAMPLER_ARG", float, 1.0)()


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
            "file (spans as OTLP JSON lines in export_file; no metrics) or none."
        ),
    )
    backend: BackendName | None = Field(
        default=None,
        description=(
            "A backend preset (arthur, langsmith, fiddler, signoz, phoenix, langfuse, datadog, collector): "
            "its endpoint layout, signals, headers and resource attributes from its own environment "
            "variables, and the span attributes it reads. Every OTEL_* variable still wins, but the preset's "
            "secret headers go only to its own host (see preset_headers_to_otel_endpoint)."
        ),
    )
    preset_headers_to_otel_endpoint: bool = Field(
        default=False,
        description=(
            "Let a backend preset's secret headers (API keys) go to an OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT on "
            "another host than the preset names. Off: such a configuration is refused with a ConfigError."
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
        description="The OTLP JSON-lines file the `file` exporter appends spans to (`costrouter report` reads it).",
    )
    otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        default_factory=_otlp_protocol,
        validate_default=True,
        description=(
            "OTLP transport; grpc needs the `grpc` extra (opentelemetry-exporter-otlp-proto-grpc). "
            "Unset: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf."
        ),
    )
    service_name: str | None = Field(
        default=None,
        description=(
            "service.name (default `costrouter`); OTEL_SERVICE_NAME or a service.name in "
            "OTEL_RESOURCE_ATTRIBUTES wins when set."
        ),
    )
    sampling_ratio: float = Field(
        default_factory=_sampling_ratio,
        validate_default=True,
        ge=0.0,
        le=1.0,
        description=(
            "Parent-based TraceIdRatio sampler: share of new traces kept. Unset: OTEL_TRACES_SAMPLER_ARG "
            "(when OTEL_TRACES_SAMPLER is unset or a traceidratio sampler), else 1."
        ),
    )
    capture_content: bool = Field(
        default=False,
        description="Record prompts and completions as gen_ai.input/output.messages (personal data!).",
    )
    content_max_chars: int = Field(default=4096, ge=0, description="Truncate captured content to this.")
    genai_cost_attributes: bool = Field(
        default=False,
        description=(
            "Also write the cost as gen_ai.usage.cost.amount/.currency/.source, the names proposed in "
            "semantic-conventions-genai PR #443 (not merged). Off by default: Langfuse reads every numeric "
            "gen_ai.usage.* key as a token count and drops the call's usage when one is fractional."
        ),
    )
    project_name: str | None = Field(
        default=None,
        description="openinference.project.name resource attribute: the Phoenix project spans land in.",
    )
    export_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Time one OTLP export (with its retries) may take; unset: OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT "
            "or the SDK's 10 s."
        ),
    )
    max_queue_size: int = Field(
        default_factory=_from_otel("OTEL_BSP_MAX_QUEUE_SIZE", int, 2048),
        validate_default=True,
        gt=0,
        description="Ended spans buffered for export; past it, spans are dropped and counted. Unset: "
        "OTEL_BSP_MAX_QUEUE_SIZE, else 2048.",
    )
    metric_export_interval_seconds: float = Field(
        default_factory=_from_otel("OTEL_METRIC_EXPORT_INTERVAL", lambda raw: float(raw) / 1000.0, 15.0),
        validate_default=True,
        gt=0,
        description="How often metrics are exported. Unset: OTEL_METRIC_EXPORT_INTERVAL (milliseconds), else 15 s.",
    )
    shutdown_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="The most shutdown() and the exit hook wait for pending spans and metrics.",
    )

    def __repr_args__(self) -> list[tuple[str | None, Any]]:
        return masked_repr_args(super().__repr_args__())
