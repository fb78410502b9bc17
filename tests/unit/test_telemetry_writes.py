"""Each call-span attribute written once; usage read without exceptions; the tracker's hooks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import litellm
import pytest
from litellm.types.utils import Usage
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.util.types import AttributeValue

from costrouter.context import Caller
from costrouter.otel import semconv as sc
from costrouter.otel import span_attributes
from costrouter.otel.attempts import CallRecord, attempt_tracker
from costrouter.otel.models import ModelFacts
from costrouter.otel.outcome import Outcome
from costrouter.otel.telemetry import Telemetry
from costrouter.pricing.cost import token_usage
from costrouter.pricing.fields import field_of, is_mapping


class _Writes(SpanProcessor):
    """Every attribute write of the spans, from the start attributes and each ``set_attributes``."""

    def __init__(self) -> None:
        self.started: dict[str, AttributeValue] = {}
        self.ended: dict[str, Any] = {}

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.started = dict(span.attributes or {})

    def on_end(self, span: ReadableSpan) -> None:
        self.ended = dict(span.attributes or {})


MODEL = ModelFacts(model="gpt-4o-mini", provider="openai", server_address="api.openai.com", server_port=443)


def _span_writes(outcome: Outcome) -> _Writes:
    writes = _Writes()
    provider = TracerProvider()
    provider.add_span_processor(writes)
    telemetry = Telemetry(tracer_provider=provider)
    caller = Caller(session_id="s-1")
    span = telemetry.start_call_span(
        "fast", [{"role": "user", "content": "hi"}], caller, {}, "c1", stream=False, model=MODEL
    )
    telemetry.end_call_span(span, outcome, CallRecord("c1"), 0.01, caller, started_model=MODEL)
    return writes


def test_the_response_model_is_written_at_the_end_only_with_the_providers_name() -> None:
    writes = _span_writes(Outcome(response_model="gpt-4o-mini-2024-07-18", model=MODEL))
    assert sc.GEN_AI_RESPONSE_MODEL not in writes.started
    assert writes.started[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert writes.ended[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_the_response_model_is_the_deployments_when_the_provider_names_none() -> None:
    assert _span_writes(Outcome(model=MODEL)).ended[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert _span_writes(Outcome()).ended[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"  # the started model


class _CountingUsage(Usage):
    """LiteLLM's ``Usage``, counting the lookups that fall through to ``__getattr__`` (and raise)."""

    def __getattr__(self, name: str) -> Any:
        MISSES.append(name)
        return super().__getattr__(name)


MISSES: list[str] = []


def test_usage_is_read_without_a_single_attribute_miss() -> None:
    MISSES.clear()
    usage = _CountingUsage(prompt_tokens=10, completion_tokens=5, cache_read_input_tokens=3)
    tokens = token_usage(usage)
    assert (tokens.prompt_tokens, tokens.completion_tokens, tokens.cache_read_tokens) == (10, 5, 3)
    assert MISSES == []


def test_field_of_reads_mappings_models_and_plain_objects() -> None:
    class Plain:
        def __init__(self) -> None:
            self.a = 1

    assert field_of({"a": 1}, "a") == 1
    assert field_of(Plain(), "a") == 1
    assert field_of(Plain(), "b") is None
    assert field_of(None, "a") is None
    assert field_of(Usage(prompt_tokens=1, completion_tokens=2), "prompt_tokens") == 1
    assert is_mapping({})
    assert not is_mapping(Plain())
    assert not is_mapping(Plain())  # remembered for the type


def test_the_attempt_tracker_is_only_in_the_lists_of_the_hooks_it_implements() -> None:
    tracker = attempt_tracker()
    attempt_tracker()  # registered once however often asked
    for hooks in (litellm.input_callback, litellm.failure_callback, litellm._async_failure_callback):
        assert hooks.count(tracker) == 1
    for hooks in (litellm.callbacks, litellm.success_callback, litellm._async_success_callback):
        assert tracker not in hooks


_HOSTILE = [
    {"response_model": ["gpt", "4o"]},
    {"response_id": 12345},
    {"deployment_id": {"id": "x"}},
    {"prompt_tokens": 12.5},
    {"completion_tokens": True},
    {"finish_reasons": ("stop", 3)},
    {"extra": {"router.stream.outcome": ["cut"]}},
]


@pytest.mark.parametrize("hostile", _HOSTILE, ids=[next(iter(h)) for h in _HOSTILE])
def test_an_answer_value_of_another_type_takes_the_sdks_checks(
    hostile: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = Outcome(
        response_model="m", response_id="r", deployment_id="d", prompt_tokens=3, completion_tokens=4, model=MODEL
    )
    bad = replace(outcome, **hostile)
    direct = _span_writes(bad).ended
    monkeypatch.setattr(span_attributes, "_FAST", False)  # every write through the SDK's set_attributes
    assert direct == _span_writes(bad).ended
    assert _span_writes(outcome).ended != direct


def test_a_plain_answer_is_written_as_the_sdk_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = Outcome(
        response_model="m",
        response_id="r",
        deployment_id="d",
        prompt_tokens=3,
        completion_tokens=4,
        finish_reasons=("stop",),
        cost_usd=1e-6,
        model=MODEL,
    )
    direct = _span_writes(outcome).ended
    monkeypatch.setattr(span_attributes, "_FAST", False)
    assert direct == _span_writes(outcome).ended
