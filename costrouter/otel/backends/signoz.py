"""SigNoz: OTLP at ``{SIGNOZ_ENDPOINT}/v1/{traces,metrics,logs}``, every signal.

Read against signoz.io/docs/ai-observability-telemetry-requirements and
/ai-observability-model-pricing: a span with ``gen_ai.request.model`` is an LLM call, and that
attribute drives the model filter and the pricing rule (SigNoz computes the cost itself, into
``signoz.gen_ai.usage.tokens.cost``, from ``gen_ai.usage.*`` tokens); ``gen_ai.provider.name``
splits cost by provider. The key is the ``signoz-ingestion-key`` header. costrouter's call span
names the real model there; ``costrouter prices push signoz`` writes the router's prices as
pricing rules so SigNoz's cost equals costrouter's. Logs carry the call's trace id, so the
trace view's logs tab fills. SigNoz reads the GenAI names: the preset writes no OpenInference or LiteLLM ones.
"""

from __future__ import annotations

from costrouter.otel.backends.base import Backend, from_env
from costrouter.otel.conventions import reads

SIGNOZ = Backend(
    "signoz",
    base_env="SIGNOZ_ENDPOINT",
    headers=from_env({"signoz-ingestion-key": "SIGNOZ_INGESTION_KEY"}),
    conventions=reads("genai"),
)
"""``SIGNOZ_ENDPOINT`` (e.g. ``https://ingest.us.signoz.cloud:443``), ``SIGNOZ_INGESTION_KEY``."""
