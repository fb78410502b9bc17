"""Presets of the backends whose span names live in :mod:`costrouter.telemetry` itself.

Phoenix (``PHOENIX_COLLECTOR_ENDPOINT``, Bearer ``PHOENIX_API_KEY``, resource
``openinference.project.name``), Langfuse (``/api/public/otel``, Basic auth from the key pair),
Datadog LLM Observability (``https://otlp.{DD_SITE}``, ``dd-api-key``, ``dd-otlp-source: llmobs``)
and a plain OpenTelemetry Collector (every signal, the standard variables alone).

What each writes (:mod:`costrouter.otel.conventions`; costrouter's own names always): Phoenix reads
OpenInference names (``openinference.span.kind``, ``llm.*``, ``session.id``, ``user.id``), so its
preset writes no GenAI or LiteLLM names; Langfuse reads its own names, the GenAI ones and
``gen_ai.usage.cost`` (``OtelIngestionProcessor``), and types an observation from
``langfuse.observation.type`` first (``ObservationTypeMapper``), so its preset writes those and marks
the call span ``generation`` and attempt spans ``chain`` (which ``openinference.span.kind`` did);
Datadog LLM Observability maps the GenAI conventions (its OTel instrumentation page), so no
OpenInference or LiteLLM names; a collector forwards to anything, so it writes every convention.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from opentelemetry.util.types import AttributeValue

from costrouter.otel.backends.base import Attributes, Backend, bearer, from_env
from costrouter.otel.conventions import reads

LANGFUSE_OBSERVATION_TYPE = "langfuse.observation.type"


def _langfuse_auth(environ: Mapping[str, str]) -> dict[str, str]:
    public, secret = environ.get("LANGFUSE_PUBLIC_KEY"), environ.get("LANGFUSE_SECRET_KEY")
    if not public or not secret:
        return {}
    return {"authorization": "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()}


def _langfuse_generation(_: Attributes) -> dict[str, AttributeValue]:
    return {LANGFUSE_OBSERVATION_TYPE: "generation"}


def _langfuse_chain(_: Attributes) -> dict[str, AttributeValue]:
    return {LANGFUSE_OBSERVATION_TYPE: "chain"}


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
    conventions=reads("openinference"),
)
LANGFUSE = Backend(
    "langfuse",
    base_env="LANGFUSE_HOST",
    default_base="https://cloud.langfuse.com",
    paths={"traces": "/api/public/otel/v1/traces"},
    headers=_langfuse_auth,
    llm_span=_langfuse_generation,
    step_span=_langfuse_chain,
    conventions=reads("genai", "langfuse"),
)
DATADOG = Backend(
    "datadog",
    base_env="DD_OTLP_ENDPOINT",
    default_base="https://otlp.datadoghq.com",
    paths={"traces": "/v1/traces"},
    headers=_datadog_headers,
    resource=_datadog_base,
    conventions=reads("genai"),
)
COLLECTOR = Backend("collector")
"""Every signal to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK's default when unset)."""
