"""Spans, attributes and metrics of routed calls, written from one place.

The library depends on the OpenTelemetry API only: providers come from the caller
or the globals. Every name lives in :mod:`costrouter.semconv`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from costrouter import semconv as sc
from costrouter._version import __version__
from costrouter.attempts import CallRecord
from costrouter.context import Caller
from costrouter.cost import CostBreakdown, SettledCost
from costrouter.cost_attributes import breakdown_attributes, detail_token_counts, settled_attributes

INSTRUMENTATION_NAME = "costrouter"
_MAX_METADATA_VALUE = 256


@dataclass(frozen=True)
class Outcome:
    """What is known about a routed call when it ends (success or not)."""

    served_group: str | None = None
    deployment_id: str | None = None
    provider: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float = 0.0
    prompt_cost_usd: float | None = None
    completion_cost_usd: float | None = None
    usage_source: str | None = None
    output_text: str | None = None
    error: BaseException | None = None
    extra: Mapping[str, AttributeValue] = field(default_factory=dict)
    breakdown: CostBreakdown | None = None
    settled: SettledCost | None = None


class Telemetry:
    """The tracer and the metric instruments of one CostRouter."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        capture_content: bool = False,
        content_max_chars: int = 4096,
    ) -> None:
        self.tracer_provider = tracer_provider or trace.get_tracer_provider()
        self.meter_provider = meter_provider or metrics.get_meter_provider()
        self.tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_NAME, __version__)
        meter = self.meter_provider.get_meter(INSTRUMENTATION_NAME, __version__)
        self.capture_content = capture_content
        self.content_max_chars = content_max_chars
        self.token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit=sc.METRIC_TOKEN_USAGE_UNIT,
            description="Tokens used per routed call, by token type.",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_USAGE_BUCKETS),
        )
        self.duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit=sc.METRIC_OPERATION_DURATION_UNIT,
            description="Duration of routed calls, retries and fallbacks included.",
            explicit_bucket_boundaries_advisory=list(sc.OPERATION_DURATION_BUCKETS),
        )
        self.cost = meter.create_counter(
            sc.METRIC_COST, unit=sc.METRIC_COST_UNIT, description="USD spent on routed calls."
        )
        self.calls = meter.create_counter(
            sc.METRIC_CALLS, unit=sc.METRIC_CALLS_UNIT, description="Routed calls by outcome."
        )
        self.attempts = meter.create_counter(
            sc.METRIC_ATTEMPTS, unit=sc.METRIC_ATTEMPTS_UNIT, description="Provider attempts by kind and outcome."
        )
        self.budget_decisions = meter.create_counter(
            sc.METRIC_BUDGET_DECISIONS,
            unit=sc.METRIC_BUDGET_DECISIONS_UNIT,
            description="Budget decisions by scope and outcome.",
        )
        self.budget_unheld_settles = meter.create_counter(
            sc.METRIC_BUDGET_UNHELD_SETTLES,
            unit=sc.METRIC_BUDGET_UNHELD_SETTLES_UNIT,
            description="Settles that charged a budget with no live hold for the call (expired, reset).",
        )

    # ---- the parent span -------------------------------------------------------------
    def start_call_span(
        self,
        group: str,
        messages: Sequence[Mapping[str, Any]],
        caller: Caller,
        request: Mapping[str, Any],
        call_id: str,
        *,
        stream: bool,
        operation: tuple[str, str] = ("completion", "chat"),
    ) -> Span:
        """Start ``router.<operation>/{group}`` with everything known before the call.

        ``operation`` is the span's operation and its ``gen_ai.operation.name``.
        """
        attributes = request_attributes(group, messages, caller, request, call_id, stream=stream)
        attributes[sc.GEN_AI_OPERATION_NAME] = operation[1]
        if self.capture_content:
            attributes[sc.GEN_AI_INPUT_MESSAGES] = json.dumps(
                [self._truncated_message(message) for message in messages], default=str
            )
        name = f"{sc.CALL_SPAN_PREFIX}{operation[0]}/{group}"
        return self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def _truncated_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        content = message.get("content")
        if isinstance(content, str):
            return {**message, "content": content[: self.content_max_chars]}
        return dict(message)

    def end_call_span(self, span: Span, outcome: Outcome, record: CallRecord, latency_s: float) -> None:
        """Write the outcome and the attempts onto ``span`` and end it."""
        span.set_attributes(outcome_attributes(outcome, record, latency_s))
        if outcome.settled is not None and outcome.settled.mismatch:
            span.add_event(sc.EVENT_COST_MISMATCH, settled_attributes(outcome.settled))
        if self.capture_content and outcome.output_text is not None:
            text = outcome.output_text[: self.content_max_chars]
            output = [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]
            span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps(output))
        self._attempt_spans(span, record)
        if outcome.error is not None:
            span.record_exception(outcome.error)
            span.set_status(Status(StatusCode.ERROR, f"{type(outcome.error).__name__}: {outcome.error}"[:1024]))
        span.end()

    def _attempt_spans(self, parent: Span, record: CallRecord) -> None:
        context = trace.set_span_in_context(parent)
        for attempt in record.attempts:
            attributes: dict[str, AttributeValue] = {
                sc.ATTEMPT_INDEX: attempt.index,
                sc.ATTEMPT_KIND: attempt.kind,
                sc.ATTEMPT_OUTCOME: attempt.outcome if attempt.outcome != "pending" else "failure",
                sc.ATTEMPT_WAIT_MS: attempt.wait_ns / 1e6,
                sc.ROUTER_MODEL_GROUP: attempt.model_group,
                sc.ROUTER_DEPLOYMENT_ID: attempt.deployment_id,
                sc.GEN_AI_REQUEST_MODEL: attempt.model,
            }
            if attempt.error_type is not None:
                attributes[sc.ERROR_TYPE] = attempt.error_type
            child = self.tracer.start_span(
                f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/{attempt.deployment_id}",
                context=context,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=attempt.start_ns,
            )
            if attempt.outcome != "success":
                child.set_status(Status(StatusCode.ERROR, attempt.error_message or attempt.error_type or "failed"))
            child.end(end_time=attempt.end_ns or attempt.start_ns)

    # ---- metrics ---------------------------------------------------------------------
    def record_metrics(
        self, group: str, outcome: Outcome, record: CallRecord, latency_s: float, result: str, operation: str = "chat"
    ) -> None:
        """Metrics of one routed call, by operation; never a session or user id as an attribute."""
        base: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.ROUTER_MODEL_GROUP: group,
        }
        if outcome.provider:
            base[sc.GEN_AI_PROVIDER_NAME] = outcome.provider
        if outcome.response_model:
            base[sc.GEN_AI_RESPONSE_MODEL] = outcome.response_model
        duration_attributes = dict(base)
        if outcome.error is not None:
            duration_attributes[sc.ERROR_TYPE] = type(outcome.error).__name__
        self.duration.record(latency_s, duration_attributes)
        self.calls.add(1, {sc.ROUTER_MODEL_GROUP: group, sc.CALL_OUTCOME: result, sc.GEN_AI_OPERATION_NAME: operation})
        if outcome.prompt_tokens is not None:
            self.token_usage.record(outcome.prompt_tokens, {**base, sc.GEN_AI_TOKEN_TYPE: "input"})
        if outcome.completion_tokens is not None:
            self.token_usage.record(outcome.completion_tokens, {**base, sc.GEN_AI_TOKEN_TYPE: "output"})
        if outcome.breakdown is not None:
            for token_type, count in detail_token_counts(outcome.breakdown).items():
                self.token_usage.record(count, {**base, sc.GEN_AI_TOKEN_TYPE: token_type})
        if outcome.cost_usd:
            self.cost.add(
                outcome.cost_usd,
                {
                    sc.ROUTER_MODEL_GROUP: outcome.served_group or group,
                    sc.ROUTER_DEPLOYMENT_ID: outcome.deployment_id or "",
                    sc.GEN_AI_RESPONSE_MODEL: outcome.response_model or "",
                },
            )
        for attempt in record.attempts:
            self.attempts.add(
                1,
                {
                    sc.ROUTER_MODEL_GROUP: attempt.model_group,
                    sc.ROUTER_DEPLOYMENT_ID: attempt.deployment_id,
                    sc.ATTEMPT_KIND: attempt.kind,
                    sc.ATTEMPT_OUTCOME: "success" if attempt.outcome == "success" else "failure",
                },
            )


def request_attributes(
    group: str,
    messages: Sequence[Mapping[str, Any]],
    caller: Caller,
    request: Mapping[str, Any],
    call_id: str,
    *,
    stream: bool,
) -> dict[str, AttributeValue]:
    """Attributes known before the call: group, request parameters, who pays."""
    attributes: dict[str, AttributeValue] = {
        sc.ROUTER_MODEL_GROUP: group,
        sc.ROUTER_MESSAGE_COUNT: len(messages),
        sc.ROUTER_CALL_ID: call_id,
        sc.ROUTER_STREAM: stream,
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: group,
        sc.OPENINFERENCE_SPAN_KIND: "LLM",
    }
    if isinstance(request.get("max_tokens"), int):
        attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = request["max_tokens"]
    if isinstance(request.get("temperature"), (int, float)):
        attributes[sc.GEN_AI_REQUEST_TEMPERATURE] = float(request["temperature"])
    if caller.session_id is not None:
        attributes[sc.SESSION_ID] = caller.session_id
        attributes[sc.GEN_AI_CONVERSATION_ID] = caller.session_id
    if caller.user_id is not None:
        attributes[sc.USER_ID] = caller.user_id
    if caller.team_id is not None:
        attributes[sc.TEAM_ID] = caller.team_id
    if caller.tags:
        attributes[sc.ROUTER_TAGS] = list(caller.tags)
        attributes[sc.TAG_TAGS] = list(caller.tags)
    if caller.metadata:
        attributes[sc.METADATA] = json.dumps(dict(caller.metadata), default=str, sort_keys=True)
        for key, value in caller.metadata.items():
            attributes[f"{sc.ROUTER_METADATA_PREFIX}{key}"] = _attribute_value(value)
    return attributes


def _attribute_value(value: Any) -> AttributeValue:
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str)[:_MAX_METADATA_VALUE]


def outcome_attributes(outcome: Outcome, record: CallRecord, latency_s: float) -> dict[str, AttributeValue]:
    """Attributes known when the call ends: attempts, model, tokens, cost, latency."""
    attributes: dict[str, AttributeValue] = {
        sc.ROUTER_ATTEMPTS: len(record.attempts),
        sc.ROUTER_RETRIES: record.retries,
        sc.ROUTER_FALLBACKS: record.fallbacks,
        sc.LLM_LATENCY_MS: latency_s * 1000.0,
        sc.LLM_USAGE_COST_USD: outcome.cost_usd,
        sc.LLM_COST_TOTAL: outcome.cost_usd,
        sc.GEN_AI_USAGE_COST: outcome.cost_usd,
        sc.GEN_AI_COST_TOTAL: outcome.cost_usd,
        **outcome.extra,
    }
    optional: dict[str, AttributeValue | None] = {
        sc.ROUTER_SERVED_GROUP: outcome.served_group,
        sc.ROUTER_DEPLOYMENT_ID: outcome.deployment_id,
        sc.GEN_AI_PROVIDER_NAME: outcome.provider,
        sc.GEN_AI_SYSTEM: outcome.provider,
        sc.LLM_PROVIDER: outcome.provider,
        sc.LLM_SYSTEM: outcome.provider,
        sc.GEN_AI_RESPONSE_MODEL: outcome.response_model,
        sc.LLM_MODEL_NAME: outcome.response_model,
        sc.GEN_AI_RESPONSE_ID: outcome.response_id,
        sc.ROUTER_USAGE_SOURCE: outcome.usage_source,
        sc.LLM_COST_PROMPT: outcome.prompt_cost_usd,
        sc.GEN_AI_COST_PROMPT: outcome.prompt_cost_usd,
        sc.LLM_COST_COMPLETION: outcome.completion_cost_usd,
        sc.GEN_AI_COST_COMPLETION: outcome.completion_cost_usd,
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    if outcome.finish_reasons:
        attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(outcome.finish_reasons)
        attributes[sc.LLM_FINISH_REASON] = outcome.finish_reasons[0]
    if outcome.prompt_tokens is not None:
        attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = outcome.prompt_tokens
        attributes[sc.LLM_TOKEN_COUNT_PROMPT] = outcome.prompt_tokens
    if outcome.completion_tokens is not None:
        attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = outcome.completion_tokens
        attributes[sc.LLM_TOKEN_COUNT_COMPLETION] = outcome.completion_tokens
    if outcome.prompt_tokens is not None and outcome.completion_tokens is not None:
        attributes[sc.LLM_TOKEN_COUNT_TOTAL] = outcome.prompt_tokens + outcome.completion_tokens
    if outcome.breakdown is not None:
        attributes.update(breakdown_attributes(outcome.breakdown))
    if outcome.settled is not None:
        attributes.update(settled_attributes(outcome.settled))
    if outcome.error is not None:
        attributes[sc.ERROR_TYPE] = type(outcome.error).__name__
    return attributes
