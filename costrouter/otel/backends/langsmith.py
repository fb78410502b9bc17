"""LangSmith: OTLP/HTTP at ``{LANGSMITH_ENDPOINT}/otel/v1/traces``, traces only.

Read against docs.langchain.com/langsmith/trace-with-opentelemetry, /cost-tracking and
/threads: the run type comes from ``langsmith.span.kind`` (before ``openinference.span.kind``
or ``gen_ai.operation.name``); ``langsmith.metadata.{key}`` becomes run metadata (``ls_model_name``,
``ls_provider`` price the run; ``session_id`` groups runs into a thread, and only runs that carry
it join the thread); cost is taken from ``langsmith.usage_metadata`` (``input_cost``,
``output_cost``, ``total_cost``) rather than LangSmith's own price table. The project is the
``Langsmith-Project`` header, the key ``x-api-key``. Besides its own names the preset writes the GenAI
ones (the run type falls back to ``gen_ai.operation.name``), no OpenInference or LiteLLM ones.
"""

from __future__ import annotations

import json
from typing import Final

from opentelemetry.util.types import AttributeValue

from costrouter.otel import semconv as sc
from costrouter.otel.backends.base import Attributes, Backend, from_env
from costrouter.otel.conventions import reads

SPAN_KIND: Final = "langsmith.span.kind"
USAGE_METADATA: Final = "langsmith.usage_metadata"
METADATA_PREFIX: Final = "langsmith.metadata."


def _who(attributes: Attributes) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    session = attributes.get(sc.SESSION_ID)
    if session is not None:
        out[f"{METADATA_PREFIX}session_id"] = session
    user = attributes.get(sc.USER_ID)
    if user is not None:
        out[f"{METADATA_PREFIX}user_id"] = user
    return out


def _usage(attributes: Attributes) -> dict[str, object] | None:
    prompt = attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS)
    completion = attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    usage: dict[str, object] = {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": prompt + completion,
        "total_cost": attributes.get(sc.LLM_USAGE_COST_USD, 0.0),
    }
    if sc.LLM_COST_PROMPT in attributes:
        usage["input_cost"] = attributes[sc.LLM_COST_PROMPT]
    if sc.LLM_COST_COMPLETION in attributes:
        usage["output_cost"] = attributes[sc.LLM_COST_COMPLETION]
    details = {
        "cache_read": attributes.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        "cache_creation": attributes.get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
    }
    if any(details.values()):
        usage["input_token_details"] = {key: value for key, value in details.items() if value}
    reasoning = attributes.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)
    if reasoning:
        usage["output_token_details"] = {"reasoning": reasoning}
    return usage


def llm_span(attributes: Attributes) -> dict[str, AttributeValue]:
    """Run type ``llm``, the model and provider as ``ls_*`` metadata, usage and cost, the session."""
    out: dict[str, AttributeValue] = {SPAN_KIND: "llm", **_who(attributes)}
    model = attributes.get(sc.LLM_MODEL_NAME)
    if model is not None:
        out[f"{METADATA_PREFIX}ls_model_name"] = model
    provider = attributes.get(sc.GEN_AI_PROVIDER_NAME)
    if provider is not None:
        out[f"{METADATA_PREFIX}ls_provider"] = provider
    usage = _usage(attributes)
    if usage is not None:
        out[USAGE_METADATA] = json.dumps(usage, sort_keys=True)
    return out


def step_span(attributes: Attributes) -> dict[str, AttributeValue]:
    """Run type ``chain`` and the session, so the step joins the thread and is never priced."""
    return {SPAN_KIND: "chain", **_who(attributes)}


LANGSMITH = Backend(
    "langsmith",
    base_env="LANGSMITH_ENDPOINT",
    default_base="https://api.smith.langchain.com",
    paths={"traces": "/otel/v1/traces"},
    headers=from_env({"x-api-key": "LANGSMITH_API_KEY", "Langsmith-Project": "LANGSMITH_PROJECT"}),
    llm_span=llm_span,
    step_span=step_span,
    conventions=reads("genai"),
)
"""``LANGSMITH_ENDPOINT`` (default the US cloud), ``LANGSMITH_API_KEY``, ``LANGSMITH_PROJECT``."""
