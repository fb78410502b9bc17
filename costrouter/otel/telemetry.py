"""Spans, attributes and metrics of routed calls, written from one place.

The library depends on the OpenTelemetry API only: providers come from the caller
or the globals. Every name lives in :mod:`costrouter.semconv`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from costrouter._version import __version__
from costrouter.context import Caller
from costrouter.otel import semconv as sc
from costrouter.otel.attempts import CallRecord
from costrouter.otel.backends.base import NO_BACKEND, Backend
from costrouter.otel.cost_attributes import breakdown_attributes, settled_attributes
from costrouter.otel.metrics import CallMetrics
from costrouter.otel.models import ModelFacts
from costrouter.otel.outcome import Outcome
from costrouter.otel.span_attributes import BareStart, plain, set_attributes

INSTRUMENTATION_NAME = "costrouter"
_MAX_METADATA_VALUE = 256
_OK = Status(StatusCode.OK)
_STR_ONLY: Final = frozenset({str})
_MAX_START_BASES = 1024
"""Start-attribute bases kept (a wildcard group's models come from callers); then the cache starts over."""


class Telemetry:
    """The tracer and the metric instruments of one CostRouter."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        capture_content: bool = False,
        content_max_chars: int = 4096,
        backend: Backend | None = None,
        genai_cost: bool = False,
    ) -> None:
        self.backend = backend or NO_BACKEND
        self.tracer_provider = tracer_provider or trace.get_tracer_provider()
        self.meter_provider = meter_provider or metrics.get_meter_provider()
        self.tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_NAME, __version__)
        meter = self.meter_provider.get_meter(INSTRUMENTATION_NAME, __version__)
        self.capture_content = capture_content
        self.content_max_chars = content_max_chars
        self.genai_cost = genai_cost
        scope = getattr(meter, "_instrumentation_scope", None)
        if not isinstance(scope, InstrumentationScope):
            scope = InstrumentationScope(INSTRUMENTATION_NAME, __version__)
        self.metrics = CallMetrics(self.meter_provider, meter, scope)
        self.budget_decisions = self.metrics.budget_decisions
        self.budget_unheld_settles = self.metrics.budget_unheld_settles
        self.start_attributes: dict[str, AttributeValue] = {}
        """Attributes every call span starts with (``budget.outcome=unbudgeted`` on a router without budgets)."""
        self._start_bare = BareStart(self.tracer)
        self._start_bases: dict[tuple[object, ...], dict[str, AttributeValue]] = {}
        self.no_exemplar = trace.set_span_in_context(INVALID_SPAN, Context())
        """The context of every measurement but the duration: no span, so no exemplar offered.

        With the SDK's default trace-based exemplar filter each measurement taken while the
        call's span is current samples an exemplar; one per call (the duration) links the
        metrics to the trace, the others would repeat it at ~20 % of each measurement's cost.
        """

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
        model: ModelFacts | None = None,
        operation: tuple[str, str] = ("completion", "chat"),
    ) -> Span:
        """Start ``router.<operation>/{group}``, the routed call's one LLM span.

        ``model`` is the group's first-priority deployment; the serving one replaces it at the end.
        ``operation`` is the span's operation and its ``gen_ai.operation.name``.
        """
        attributes = self._start_base(group, operation[1], model).copy()
        _write_call_attributes(attributes, messages, caller, request, call_id, stream=stream)
        if self.capture_content:
            attributes.update(input_message_attributes(messages, self.content_max_chars))
        if self.backend is not NO_BACKEND:
            own = self.backend.llm_span_attributes(attributes)
            attributes = self.backend.written(attributes)
            attributes.update(own)
        name = f"{sc.CALL_SPAN_PREFIX}{operation[0]}/{group}"
        if not self._start_bare():
            return self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT)
        # Without a backend's own attributes every value here is built plain (checked ids, the file's facts).
        set_attributes(span, attributes, plain_values=self.backend is NO_BACKEND)
        return span

    def _start_base(self, group: str, operation: str, model: ModelFacts | None) -> dict[str, AttributeValue]:
        """The start attributes every call of ``group`` naming ``model`` shares, built once (then copied)."""
        key = (group, operation, model, tuple(self.start_attributes.items()))
        base = self._start_bases.get(key)
        if base is None:
            base = {
                sc.ROUTER_GROUP: group,
                sc.ROUTER_MODEL_GROUP: group,
                sc.GEN_AI_OPERATION_NAME: operation,
                sc.OPENINFERENCE_SPAN_KIND: "LLM",
                **self.start_attributes,
            }
            if model is not None:  # the response model is written once, at the end (the provider may name another)
                base.update(model_attributes(model, response_model=False))
            if len(self._start_bases) >= _MAX_START_BASES:
                self._start_bases.clear()
            self._start_bases[key] = base
        return base

    def end_call_span(
        self,
        span: Span,
        outcome: Outcome,
        record: CallRecord,
        latency_s: float,
        caller: Caller | None = None,
        *,
        started_model: ModelFacts | None = None,
    ) -> None:
        """Write the outcome and the attempts onto ``span`` and end it.

        A call whose one attempt succeeded carries that attempt's ``router.attempt.*`` attributes
        itself; any other call gets one child span per attempt (the first included), with each
        attempt's own start and end.

        ``started_model`` is the model :meth:`start_call_span` wrote: when the same deployment
        served, its attributes are not written again (the caller's were written at the start too).
        """
        attributes = outcome_attributes(outcome, record, latency_s, written_model=started_model)
        if self.genai_cost:
            attributes.update(proposed_cost_attributes(outcome))
        if self.backend.adds_span_attributes:
            # A backend maps what the span carries: the start's model and caller included.
            seen = dict(attributes)
            if caller is not None:
                seen = {**who_attributes(caller), **seen}
            if outcome.model is not None:
                seen = {**model_attributes(outcome.model), **seen}
            own = self.backend.llm_span_attributes(seen)
            attributes = self.backend.written(attributes)
            attributes.update(own)
        elif self.backend is not NO_BACKEND:
            attributes = self.backend.written(attributes)
        attempts = record.attempts
        single = len(attempts) == 1 and attempts[0].outcome == "success"
        answered_model = None
        if single:  # the one attempt that answered: carried on the parent, no child span
            attempt = attempts[0]
            answered_model = attempt.model
            attributes[sc.ATTEMPT_INDEX] = attempt.index
            attributes[sc.ATTEMPT_KIND] = attempt.kind
            attributes[sc.ATTEMPT_OUTCOME] = "success"
            attributes[sc.ATTEMPT_WAIT_MS] = attempt.wait_ns / 1e6
            attributes[sc.ATTEMPT_MODEL] = answered_model
        # Without a backend's own attributes, the only values not built plain are those the answer decides.
        set_attributes(
            span,
            attributes,
            plain_values=self.backend is NO_BACKEND and _answer_plain(outcome, answered_model),
        )
        if outcome.settled is not None and outcome.settled.mismatch:
            span.add_event(sc.EVENT_COST_MISMATCH, settled_attributes(outcome.settled))
        if self.capture_content and outcome.output_text is not None:
            set_attributes(span, self.backend.written(output_message_attributes(outcome, self.content_max_chars)))
        if not single:
            self._attempt_spans(span, record, caller)
        if outcome.error is not None:
            span.record_exception(outcome.error)
            span.set_status(Status(StatusCode.ERROR, f"{type(outcome.error).__name__}: {outcome.error}"[:1024]))
        else:
            span.set_status(_OK)
        span.end()

    def _attempt_spans(self, parent: Span, record: CallRecord, caller: Caller | None) -> None:
        context = trace.set_span_in_context(parent)
        who = who_attributes(caller) if caller is not None else {}
        for attempt in record.attempts:
            attributes: dict[str, AttributeValue] = {
                **who,
                sc.ATTEMPT_INDEX: attempt.index,
                sc.ATTEMPT_KIND: attempt.kind,
                sc.ATTEMPT_OUTCOME: attempt.outcome if attempt.outcome != "pending" else "failure",
                sc.ATTEMPT_WAIT_MS: attempt.wait_ns / 1e6,
                sc.ATTEMPT_MODEL: attempt.model,
                sc.ROUTER_GROUP: attempt.model_group,
                sc.ROUTER_MODEL_GROUP: attempt.model_group,
                sc.ROUTER_DEPLOYMENT_ID: attempt.deployment_id,
                # A step of the routed call, never a model call of its own (Phoenix, Langfuse and
                # Datadog count a span carrying gen_ai.request.model or kind LLM as one).
                sc.OPENINFERENCE_SPAN_KIND: "CHAIN",
            }
            if attempt.error_type is not None:
                attributes[sc.ERROR_TYPE] = attempt.error_type
            own = self.backend.step_span_attributes(attributes)
            attributes = self.backend.written(attributes)
            attributes.update(own)
            child = self.tracer.start_span(
                f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/{attempt.deployment_id}",
                context=context,
                kind=SpanKind.INTERNAL,
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
        """Metrics of one routed call (:meth:`costrouter.metrics.CallMetrics.record`)."""
        self.metrics.record(group, outcome, record, latency_s, result, operation)


def _write_call_attributes(
    attributes: dict[str, AttributeValue],
    messages: Sequence[Mapping[str, Any]],
    caller: Caller,
    request: Mapping[str, Any],
    call_id: str,
    *,
    stream: bool,
) -> None:
    """The attributes of this one call: its id, its request's parameters, who pays (all plain values)."""
    attributes[sc.ROUTER_MESSAGE_COUNT] = len(messages)
    attributes[sc.ROUTER_CALL_ID] = call_id
    attributes[sc.ROUTER_STREAM] = stream
    max_tokens = request.get("max_tokens")
    if max_tokens.__class__ is int:
        attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    temperature = request.get("temperature")
    if isinstance(temperature, (int, float)):
        attributes[sc.GEN_AI_REQUEST_TEMPERATURE] = float(temperature)
    _write_who(attributes, caller)
    if caller.team_id is not None:
        attributes[sc.TEAM_ID] = caller.team_id
    if caller.tags:
        attributes[sc.ROUTER_TAGS] = attributes[sc.TAG_TAGS] = tuple(caller.tags)
    if caller.metadata:
        attributes[sc.METADATA] = json.dumps(dict(caller.metadata), default=str, sort_keys=True)
        for key, value in caller.metadata.items():
            attributes[f"{sc.ROUTER_METADATA_PREFIX}{key}"] = _attribute_value(value)


def who_attributes(caller: Caller) -> dict[str, AttributeValue]:
    """The session and the user, as every span of the call carries them."""
    attributes: dict[str, AttributeValue] = {}
    _write_who(attributes, caller)
    return attributes


def _write_who(attributes: dict[str, AttributeValue], caller: Caller) -> None:
    if caller.session_id is not None:
        attributes[sc.SESSION_ID] = attributes[sc.GEN_AI_CONVERSATION_ID] = caller.session_id
    if caller.user_id is not None:
        attributes[sc.USER_ID] = caller.user_id


def model_attributes(model: ModelFacts, *, response_model: bool = True) -> dict[str, AttributeValue]:
    """The real model, provider and server of the routed call (never the group alias).

    ``response_model=False`` leaves out ``gen_ai.response.model`` (known only at the end).
    """
    attributes: dict[str, AttributeValue] = {sc.GEN_AI_REQUEST_MODEL: model.model}
    if response_model:
        attributes[sc.GEN_AI_RESPONSE_MODEL] = model.model
    attributes[sc.LLM_MODEL_NAME] = model.model
    if model.provider:
        attributes[sc.GEN_AI_PROVIDER_NAME] = model.provider
        attributes[sc.GEN_AI_SYSTEM] = model.provider
    if model.server_address:
        attributes[sc.SERVER_ADDRESS] = model.server_address
    if model.server_port is not None:
        attributes[sc.SERVER_PORT] = model.server_port
    return attributes


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return None


def input_message_attributes(messages: Sequence[Mapping[str, Any]], max_chars: int) -> dict[str, AttributeValue]:
    """Prompts as GenAI ``gen_ai.input.messages`` (JSON with ``parts``) and OpenInference's flat names."""
    genai: list[dict[str, Any]] = []
    attributes: dict[str, AttributeValue] = {}
    for index, message in enumerate(messages):
        role = str(message.get("role", "user"))
        text = (_text_of(message.get("content")) or "")[:max_chars]
        genai.append({"role": role, "parts": [{"type": "text", "content": text}]})
        prefix = f"{sc.LLM_INPUT_MESSAGES_PREFIX}.{index}.message"
        attributes[f"{prefix}.role"] = role
        attributes[f"{prefix}.content"] = text
    attributes[sc.GEN_AI_INPUT_MESSAGES] = json.dumps(genai)
    return attributes


def output_message_attributes(outcome: Outcome, max_chars: int) -> dict[str, AttributeValue]:
    """The completion as GenAI ``gen_ai.output.messages`` (with ``finish_reason``) and OpenInference's names."""
    text = (outcome.output_text or "")[:max_chars]
    finish_reason = outcome.finish_reasons[0] if outcome.finish_reasons else "stop"
    output = [{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": finish_reason}]
    prefix = f"{sc.LLM_OUTPUT_MESSAGES_PREFIX}.0.message"
    return {
        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(output),
        f"{prefix}.role": "assistant",
        f"{prefix}.content": text,
    }


def proposed_cost_attributes(outcome: Outcome) -> dict[str, AttributeValue]:
    """The cost under the names semantic-conventions-genai PR #443 proposes (not merged).

    Off by default: Langfuse's OTel ingest reads every numeric ``gen_ai.usage.*`` key but
    ``gen_ai.usage.cost`` as an integer token count and drops the whole usage when one is not.
    """
    source = "provider" if outcome.settled is not None and outcome.settled.source == "provider" else "local"
    return {
        sc.GEN_AI_USAGE_COST_AMOUNT: outcome.cost_usd,
        sc.GEN_AI_USAGE_COST_CURRENCY: "USD",
        sc.GEN_AI_USAGE_COST_SOURCE: source,
    }


def _attribute_value(value: Any) -> AttributeValue:
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str)[:_MAX_METADATA_VALUE]


_TEXT_OR_NONE: Final = (str, type(None))
_COUNT_OR_NONE: Final = (int, type(None))


def _answer_plain(outcome: Outcome, attempt_model: object) -> bool:
    """Whether the end write's values that come from the provider's answer or LiteLLM are plain.

    Every other value :func:`outcome_attributes` writes is built plain: the file's facts, costrouter's
    own counts and constants, floats of integer money. These are the rest; one of another type sends
    the whole write through the SDK's checks (:func:`~costrouter.otel.span_attributes.set_attributes`).
    """
    model = outcome.model
    return (
        outcome.response_model.__class__ in _TEXT_OR_NONE
        and outcome.response_id.__class__ in _TEXT_OR_NONE
        and outcome.deployment_id.__class__ in _TEXT_OR_NONE
        and outcome.prompt_tokens.__class__ in _COUNT_OR_NONE
        and outcome.completion_tokens.__class__ in _COUNT_OR_NONE
        and attempt_model.__class__ in _TEXT_OR_NONE
        and (model is None or model.model.__class__ is str)
        and (not outcome.finish_reasons or set(map(type, outcome.finish_reasons)) <= _STR_ONLY)
        and (not outcome.extra or plain(outcome.extra))
    )


def _write_served(attributes: dict[str, AttributeValue], outcome: Outcome) -> None:
    """Where the call was served and what it cost each side, where known (``None`` is left out)."""
    if outcome.served_group is not None:
        attributes[sc.ROUTER_SERVED_GROUP] = outcome.served_group
    if outcome.deployment_id is not None:
        attributes[sc.ROUTER_DEPLOYMENT_ID] = outcome.deployment_id
    if outcome.provider is not None:
        attributes[sc.LLM_PROVIDER] = attributes[sc.LLM_SYSTEM] = outcome.provider
    if outcome.response_id is not None:
        attributes[sc.GEN_AI_RESPONSE_ID] = outcome.response_id
    if outcome.usage_source is not None:
        attributes[sc.ROUTER_USAGE_SOURCE] = outcome.usage_source
    if outcome.prompt_cost_usd is not None:
        attributes[sc.LLM_COST_PROMPT] = attributes[sc.GEN_AI_COST_PROMPT] = outcome.prompt_cost_usd
    if outcome.completion_cost_usd is not None:
        attributes[sc.LLM_COST_COMPLETION] = attributes[sc.GEN_AI_COST_COMPLETION] = outcome.completion_cost_usd


def outcome_attributes(
    outcome: Outcome, record: CallRecord, latency_s: float, *, written_model: ModelFacts | None = None
) -> dict[str, AttributeValue]:
    """Attributes known when the call ends: attempts, model, tokens, cost, latency.

    The serving model's attributes are left out when they are ``written_model``'s (already on the span).
    """
    cost = outcome.cost_usd
    attributes: dict[str, AttributeValue] = {
        sc.ROUTER_ATTEMPTS: len(record.attempts),
        sc.ROUTER_RETRIES: record.retries,
        sc.ROUTER_FALLBACKS: record.fallbacks,
        sc.LLM_LATENCY_MS: latency_s * 1000.0,
        sc.LLM_USAGE_COST_USD: cost,
        sc.LLM_COST_TOTAL: cost,
        sc.GEN_AI_USAGE_COST: cost,
        sc.GEN_AI_COST_TOTAL: cost,
    }
    if outcome.extra:
        attributes.update(outcome.extra)
    if outcome.model is not None and outcome.model is not written_model:
        attributes.update(model_attributes(outcome.model, response_model=False))
    served = outcome.model or written_model
    # the model the provider says answered, when it says so; else the deployment's
    response_model = outcome.response_model or (served.model if served is not None else None)
    if response_model:
        attributes[sc.GEN_AI_RESPONSE_MODEL] = response_model
    _write_served(attributes, outcome)
    if outcome.implausible:
        attributes[sc.ROUTER_USAGE_IMPLAUSIBLE] = tuple(outcome.implausible)
    if outcome.finish_reasons:
        attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(outcome.finish_reasons)
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
