"""Presets of the backends whose span names live in :mod:`costrouter.telemetry` itself.

Phoenix (``PHOENIX_COLLECTOR_ENDPOINT``, Bearer ``PHOENIX_API_KEY``, resource
``openinference.project.name``), Langfuse (``/api/public/otel``, Basic auth from the key pair),
Datadog LLM Observability (``https://otlp.{DD_SITE}``, ``dd-api-key``, ``dd-otlp-source: llmobs``)
and a plain OpenTelemetry Collector (every signal, the standard variables alone). Only the
export layout is set here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from costrouter.otel.backends.base import Backend, bearer, from_env


def _langfuse_auth(environ: Mapping[str, str]) -> dict[str, str]:
    public, secret = environ.get("LANGFUSE_PUBLIC_KEY"), environ.get("LANGFUSE_SECRET_KEY")
    if not public or not secret:
        return {}
    return {"authorization": "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()}


def _datadog_headers(environ: Mapping[str, str]) -> dict[str, str]:
    headers = {"dd-otlp-source": "llmobs"}
    if environ.get("DD_API_KEY"):
        headers["dd-api-key"] = environ["DD_API_KEY"]
    return headers


def _datadog_base(environ: Mapping[str, str]) -> dict[str, str]:
    return {"service.name": environ["DD_LLMOBS_ML_APP"]} if environ.get("DD_LLMOBS_ML_APP") else {}


PHOENIX = Backend(
    "phoenix",
    base_env="PHOENIX_COLLECTOR_ENDPOINT",
    default_base="http://localhost:6006",
    paths={"traces": "/v1/traces"},
    headers=bearer("PHOENIX_API_KEY"),
    resource=from_env({"openinference.project.name": "PHOENIX_PROJECT_NAME"}),
)
LANGFUSE = Backend(
    "langfuse",
    base_env="LANGFUSE_HOST",
    default_base="https://cloud.langfuse.com",
    paths={"traces": "/api/public/otel/v1/traces"},
    headers=_langfuse_auth,
)
DATADOG = Backend(
    "datadog",
    base_env="DD_OTLP_ENDPOINT",
    default_base="https://otlp.datadoghq.com",
    paths={"traces": "/v1/traces"},
    headers=_datadog_headers,
    resource=_datadog_base,
)
COLLECTOR = Backend("collector")
"""Every signal to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK's default when unset)."""
