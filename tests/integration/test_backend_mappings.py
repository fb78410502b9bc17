"""What Langfuse and Datadog read from a routed call's spans, checked on real spans.

Neither backend runs here, so each test restates the backend's own ingestion rule (cited) and
applies it to the spans costrouter writes for a call with a retry and a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from costrouter import CostRouter
from costrouter.config.settings import Settings
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "what is the capital of France"}]


def langfuse_observation_type(attributes: Mapping[str, Any]) -> str:
    """Langfuse's ``ObservationTypeMapperRegistry`` (packages/shared/src/server/otel/ObservationTypeMapper.ts).

    In priority order: ``langfuse.observation.type``, ``openinference.span.kind`` (LLM -> GENERATION,
    CHAIN -> CHAIN), ``gen_ai.operation.name`` (chat -> GENERATION), then any model attribute
    (``gen_ai.request.model``, ``gen_ai.response.model``, ``llm.model_name``) -> GENERATION; else SPAN.
    """
    openinference = {"LLM": "GENERATION", "CHAIN": "CHAIN", "TOOL": "TOOL", "AGENT": "AGENT"}
    if attributes.get("openinference.span.kind") in openinference:
        return openinference[attributes["openinference.span.kind"]]
    if attributes.get("gen_ai.operation.name") in {"chat", "completion", "text_completion", "generate_content"}:
        return "GENERATION"
    if any(attributes.get(key) for key in ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")):
        return "GENERATION"
    return "SPAN"


def langfuse_usage_parses(attributes: Mapping[str, Any]) -> bool:
    """Langfuse's ``extractUsageDetails`` + ``RawUsageDetails`` (OtelIngestionProcessor.ts, ingestion types).

    Every ``gen_ai.usage.*`` key but ``gen_ai.usage.cost`` and every ``llm.token_count.*`` key that is a
    number becomes a usage entry, and the whole usage is dropped unless each is a non-negative integer.
    """
    keys = [
        key
        for key in attributes
        if (key.startswith("gen_ai.usage.") and key != "gen_ai.usage.cost") or key.startswith("llm.token_count")
    ]
    values = [attributes[key] for key in keys if isinstance(attributes[key], (int, float))]
    return all(isinstance(value, int) and value >= 0 for value in values)


@pytest.fixture
def routed(router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture) -> ReadableSpan:
    """The call span of one routed call that retried once and then fell back to another group."""
    provider.set_default("flaky-model", Fail(500))
    router.route_completion("flaky", MESSAGES, max_tokens=30, session_id="sess-lf", user_id="user-lf")
    (span,) = capture.call_spans()
    return span


def test_langfuse_sees_one_generation_with_costrouters_cost(routed: ReadableSpan, capture: TelemetryCapture) -> None:
    attributes = dict(routed.attributes or {})
    assert langfuse_observation_type(attributes) == "GENERATION"
    attempts = capture.attempt_spans(routed)
    assert len(attempts) == 3
    assert [langfuse_observation_type(dict(a.attributes or {})) for a in attempts] == ["CHAIN"] * 3
    # extractCostDetails: gen_ai.usage.cost -> {"total": ...}; provided cost wins over Langfuse's own
    # price table, so no price push is needed for Langfuse.
    assert attributes["gen_ai.usage.cost"] == attributes[sc.LLM_USAGE_COST_USD]
    assert langfuse_usage_parses(attributes)
    assert attributes["session.id"] == "sess-lf"  # TRACE_SESSION_ID
    assert attributes["user.id"] == "user-lf"  # TRACE_USER_ID


def test_the_proposed_genai_cost_names_are_opt_in_because_langfuse_would_drop_the_usage(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.reset()
    router = CostRouter(
        router_config(provider.base_url),
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
        settings=Settings(genai_cost_attributes=True),
    )
    provider.script("fast-model", Reply(completion_tokens=8))
    router.route_completion("fast", MESSAGES, max_tokens=30)
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == attributes[sc.LLM_USAGE_COST_USD]
    assert attributes[sc.GEN_AI_USAGE_COST_CURRENCY] == "USD"
    assert attributes[sc.GEN_AI_USAGE_COST_SOURCE] == "local"
    assert not langfuse_usage_parses(attributes)  # why the default leaves them out


def test_default_spans_leave_the_proposed_names_out(routed: ReadableSpan) -> None:
    attributes = dict(routed.attributes or {})
    assert sc.GEN_AI_USAGE_COST_AMOUNT not in attributes


def test_datadog_llm_observability_sees_one_llm_span(routed: ReadableSpan, capture: TelemetryCapture) -> None:
    """Datadog's OTel GenAI mapping (docs.datadoghq.com/llm_observability/instrumentation/otel_instrumentation).

    A span is an LLM span from ``gen_ai.operation.name`` (chat); model, provider and tokens come from
    the GenAI names; ``ml_app`` is ``service.name``; the exporter must send ``dd-otlp-source: llmobs``.
    Datadog maps no cost attribute: it prices from the model name itself.
    """
    attributes = dict(routed.attributes or {})
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[sc.GEN_AI_REQUEST_MODEL] == "fast-model"  # the real model, not the group alias
    assert attributes[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert isinstance(attributes[sc.GEN_AI_USAGE_INPUT_TOKENS], int)
    assert isinstance(attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS], int)
    for attempt in capture.attempt_spans(routed):
        assert sc.GEN_AI_OPERATION_NAME not in (attempt.attributes or {})
        assert sc.GEN_AI_REQUEST_MODEL not in (attempt.attributes or {})
