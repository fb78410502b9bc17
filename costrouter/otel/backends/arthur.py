"""Arthur Engine: OTLP/HTTP protobuf at ``{ARTHUR_BASE_URL}/api/v1/traces``, traces only.

Read against arthur-engine (``genai-engine/src/routers/v1/trace_api_routes.py``, the trace
ingestion service, ``utils/trace.py``): the task comes from the resource attribute
``arthur.task`` (else ``service.name``); tokens and cost are read only from spans whose
``openinference.span.kind`` is ``LLM``, cost from ``llm.cost.*`` (else computed from
``llm.model_name``), and a trace's totals sum every LLM span. costrouter's call span is the
only LLM span of a routed call and carries ``llm.cost.*``; attempt spans are ``CHAIN``, so
nothing is counted twice. There is no metrics or logs route: neither is exported. Arthur reads
OpenInference names only: the preset writes no GenAI or LiteLLM names.
"""

from __future__ import annotations

from costrouter.otel.backends.base import Backend, bearer, from_env
from costrouter.otel.conventions import reads

ARTHUR = Backend(
    "arthur",
    base_env="ARTHUR_BASE_URL",
    paths={"traces": "/api/v1/traces"},
    headers=bearer("ARTHUR_API_KEY", "authorization"),
    resource=from_env({"arthur.task": "ARTHUR_TASK_ID"}),
    conventions=reads("openinference"),
)
"""``ARTHUR_BASE_URL``, ``ARTHUR_API_KEY`` (Bearer), ``ARTHUR_TASK_ID`` (resource ``arthur.task``)."""
