"""The routed call against a real HTTP provider double and the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import urlsplit

import litellm
import pytest
from opentelemetry.trace import StatusCode

from costrouter import CostRouter, context
from costrouter.config.settings import Settings
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.provider import count_prompt_tokens
from tests.routing import expected_cost, router_config

MESSAGES = [{"role": "user", "content": "what is the capital of France"}]
PROMPT_TOKENS = count_prompt_tokens(MESSAGES)


def only_call_span(capture: TelemetryCapture):  # type: ignore[no-untyped-def]
    spans = capture.call_spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def test_success_span_carries_tokens_cost_model_and_caller(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    response = router.route_completion(
        "fast",
        MESSAGES,
        max_tokens=30,
        session_id="sess-1",
        user_id="user-42",
        tags=["search"],
        metadata={"feature": "autocomplete"},
    )

    assert isinstance(response, litellm.ModelResponse)
    span = only_call_span(capture)
    attributes = dict(span.attributes or {})
    cost = expected_cost("fast-primary", PROMPT_TOKENS, 8)
    assert span.name == "router.completion/fast"
    assert span.status.status_code == StatusCode.OK
    assert attributes[sc.ROUTER_GROUP] == "fast"
    assert attributes[sc.ROUTER_MODEL_GROUP] == "fast"  # the deprecated name, kept for one release
    assert attributes[sc.ROUTER_MESSAGE_COUNT] == 1
    assert attributes[sc.ROUTER_ATTEMPTS] == 1
    assert attributes[sc.ROUTER_RETRIES] == 0
    assert attributes[sc.ROUTER_FALLBACKS] == 0
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "fast-primary"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(cost)
    for name in (sc.LLM_COST_TOTAL, sc.GEN_AI_USAGE_COST, sc.GEN_AI_COST_TOTAL):
        assert attributes[name] == pytest.approx(cost)
    assert attributes[sc.LLM_COST_PROMPT] == pytest.approx(PROMPT_TOKENS * 1e-6)
    assert attributes[sc.LLM_COST_COMPLETION] == pytest.approx(8 * 2e-6)
    assert attributes[sc.LLM_TOKEN_COUNT_PROMPT] == PROMPT_TOKENS
    assert attributes[sc.LLM_TOKEN_COUNT_COMPLETION] == 8
    assert attributes[sc.LLM_TOKEN_COUNT_TOTAL] == PROMPT_TOKENS + 8
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    # The real model, never the group alias (Phoenix prices llm.model_name; GenAI wants a model).
    assert attributes[sc.GEN_AI_REQUEST_MODEL] == "fast-model"
    assert attributes[sc.ROUTER_GROUP] == "fast"
    assert attributes[sc.GEN_AI_RESPONSE_MODEL] == "fast-model"
    assert attributes[sc.LLM_MODEL_NAME] == "fast-model"
    assert attributes[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attributes[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[sc.SERVER_PORT] == urlsplit(provider.base_url).port
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[sc.GEN_AI_RESPONSE_ID] == response.id
    assert list(attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]  # type: ignore[arg-type]
    assert attributes[sc.LLM_FINISH_REASON] == "stop"
    assert attributes[sc.LLM_LATENCY_MS] > 0  # type: ignore[operator]
    assert attributes[sc.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert attributes[sc.SESSION_ID] == "sess-1"
    assert attributes[sc.GEN_AI_CONVERSATION_ID] == "sess-1"
    assert attributes[sc.USER_ID] == "user-42"
    assert list(attributes[sc.TAG_TAGS]) == ["search"]  # type: ignore[arg-type]
    assert attributes["router.metadata.feature"] == "autocomplete"
    assert sc.GEN_AI_INPUT_MESSAGES not in attributes  # content capture is off by default
    # The one attempt, a success, rides on the call span: no child span.
    assert capture.attempt_spans(span) == [span]
    assert [s.name for s in capture.spans()] == ["router.completion/fast"]
    assert attributes[sc.ATTEMPT_INDEX] == 0
    assert attributes[sc.ATTEMPT_KIND] == "first"
    assert attributes[sc.ATTEMPT_OUTCOME] == "success"
    assert attributes[sc.ATTEMPT_WAIT_MS] == 0.0
    assert attributes[sc.ATTEMPT_MODEL] == "fast-model"
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "fast-primary"


def test_attempt_spans_are_steps_not_model_calls(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("capable-model", Fail(429, retry_after=0.01), Reply(completion_tokens=5))

    router.route_completion("capable", MESSAGES, max_tokens=30)

    span = only_call_span(capture)
    assert span.attributes[sc.OPENINFERENCE_SPAN_KIND] == "LLM"  # type: ignore[index]
    for attempt_span in capture.attempt_spans(span):
        attempt = dict(attempt_span.attributes or {})
        assert attempt[sc.OPENINFERENCE_SPAN_KIND] == "CHAIN"  # a step, not a second model call
        assert attempt[sc.ATTEMPT_MODEL] == "capable-model"
        assert attempt[sc.ROUTER_GROUP] == "capable"
        assert sc.GEN_AI_REQUEST_MODEL not in attempt
        assert sc.GEN_AI_OPERATION_NAME not in attempt


def test_span_names_the_first_priority_model_before_the_call_ends(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Fail(500))

    router.route_completion("fast", MESSAGES, max_tokens=5)

    span = only_call_span(capture)
    # The served deployment (fast-backup) replaced the first-priority model written at the start.
    assert span.attributes[sc.GEN_AI_REQUEST_MODEL] == "fast-backup-model"  # type: ignore[index]
    assert span.attributes[sc.LLM_MODEL_NAME] == "fast-backup-model"  # type: ignore[index]


def test_response_is_litellms_own_and_kwargs_pass_through(router: CostRouter, provider: ProviderDouble) -> None:
    router.route_completion("fast", MESSAGES, max_tokens=17, temperature=0.2, top_p=0.9)
    body = provider.requests[-1].body
    assert body["max_tokens"] == 17
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9


def test_metrics_follow_genai_conventions_without_session_or_user(
    router: CostRouter, capture: TelemetryCapture
) -> None:
    router.route_completion("fast", MESSAGES, max_tokens=30, session_id="sess-1", user_id="user-42")

    tokens = capture.metric_points(sc.METRIC_TOKEN_USAGE)
    by_type = {attrs[sc.GEN_AI_TOKEN_TYPE]: point.sum for attrs, point in tokens}
    assert by_type == {"input": PROMPT_TOKENS, "output": 8}
    durations = capture.metric_points(sc.METRIC_OPERATION_DURATION)
    assert len(durations) == 1
    assert durations[0][1].count == 1
    cost = capture.metric_points(sc.METRIC_COST)
    assert cost[0][0] == {
        sc.ROUTER_GROUP: "fast",
        sc.ROUTER_MODEL_GROUP: "fast",
        sc.ROUTER_DEPLOYMENT_ID: "fast-primary",
        sc.GEN_AI_RESPONSE_MODEL: "fast-model",
    }
    assert cost[0][1].value == pytest.approx(expected_cost("fast-primary", PROMPT_TOKENS, 8))
    for name in (sc.METRIC_TOKEN_USAGE, sc.METRIC_OPERATION_DURATION, sc.METRIC_COST, sc.METRIC_CALLS):
        for attrs, _ in capture.metric_points(name):
            assert sc.SESSION_ID not in attrs
            assert sc.USER_ID not in attrs
            assert "sess-1" not in attrs.values()


def test_retry_after_429_is_an_attempt_span_with_its_error(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("capable-model", Fail(429, retry_after=0.01), Reply(completion_tokens=5))

    router.route_completion("capable", MESSAGES, max_tokens=30)

    span = only_call_span(capture)
    attributes = dict(span.attributes or {})
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.ROUTER_FALLBACKS] == 0
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("capable-primary", PROMPT_TOKENS, 5))
    first, second = capture.attempt_spans(span)
    assert first.attributes[sc.ATTEMPT_KIND] == "first"  # type: ignore[index]
    assert first.attributes[sc.ATTEMPT_OUTCOME] == "failure"  # type: ignore[index]
    assert first.attributes[sc.ERROR_TYPE] == "RateLimitError"  # type: ignore[index]
    assert first.status.status_code == StatusCode.ERROR
    assert second.attributes[sc.ATTEMPT_KIND] == "retry"  # type: ignore[index]
    assert second.attributes[sc.ATTEMPT_OUTCOME] == "success"  # type: ignore[index]
    assert second.attributes[sc.ATTEMPT_WAIT_MS] >= 0  # type: ignore[index,operator]
    assert provider.request_count("capable-model") == 2


def test_500_then_fallback_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("flaky-model", Fail(500))

    router.route_completion("flaky", MESSAGES, max_tokens=30)

    span = only_call_span(capture)
    attributes = dict(span.attributes or {})
    assert span.status.status_code == StatusCode.OK  # a fallback that succeeded is not an error
    assert attributes[sc.ROUTER_GROUP] == "flaky"
    assert attributes[sc.ROUTER_SERVED_GROUP] == "fast"
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "fast-primary"
    assert attributes[sc.ROUTER_ATTEMPTS] == 3
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    kinds = [a.attributes[sc.ATTEMPT_KIND] for a in capture.attempt_spans(span)]  # type: ignore[index]
    assert kinds == ["first", "retry", "fallback"]
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("fast-primary", PROMPT_TOKENS, 8))
    assert provider.request_count("flaky-model") == 2


def test_the_call_span_is_the_one_llm_call_and_names_the_serving_model(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    """One LLM span per routed call, named by the real model; attempts are steps with the session."""
    provider.set_default("flaky-model", Fail(500))

    router.route_completion("flaky", MESSAGES, max_tokens=30, session_id="s-llm", user_id="u-llm")

    span = only_call_span(capture)
    attributes = dict(span.attributes or {})
    assert attributes[sc.ROUTER_GROUP] == "flaky"
    assert attributes[sc.GEN_AI_REQUEST_MODEL] == "fast-model"  # the serving deployment's, not "flaky"
    assert attributes[sc.LLM_MODEL_NAME] == "fast-model"
    assert attributes[sc.OPENINFERENCE_SPAN_KIND] == "LLM"
    for attempt in capture.attempt_spans(span):
        step = dict(attempt.attributes or {})
        assert step[sc.OPENINFERENCE_SPAN_KIND] == "CHAIN"
        assert sc.GEN_AI_REQUEST_MODEL not in step
        assert sc.GEN_AI_OPERATION_NAME not in step
        assert step[sc.ATTEMPT_MODEL]
        assert step[sc.SESSION_ID] == "s-llm"
        assert step[sc.USER_ID] == "u-llm"


def test_priority_orders_deployments_within_a_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    for _ in range(5):
        router.route_completion("fast", MESSAGES, max_tokens=5)
    assert provider.request_count("fast-model") == 5
    assert provider.request_count("fast-backup-model") == 0
    provider.set_default("fast-model", Fail(500))
    router.route_completion("fast", MESSAGES, max_tokens=5)
    assert provider.request_count("fast-backup-model") == 1
    last = capture.call_spans()[-1]
    assert last.attributes[sc.ROUTER_DEPLOYMENT_ID] == "fast-backup"  # type: ignore[index]


def test_failed_call_is_an_error_span_and_litellms_exception_reaches_the_caller(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("slow-model", Reply(delay=1.5))

    with pytest.raises(litellm.Timeout):
        router.route_completion("slow", MESSAGES, max_tokens=5)

    span = only_call_span(capture)
    attributes = dict(span.attributes or {})
    assert span.status.status_code == StatusCode.ERROR
    assert attributes[sc.ERROR_TYPE] == "Timeout"
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.LLM_USAGE_COST_USD] == 0.0
    assert any(event.name == "exception" for event in span.events)
    assert all(a.attributes[sc.ERROR_TYPE] == "Timeout" for a in capture.attempt_spans(span))  # type: ignore[index]
    outcomes = {attrs[sc.CALL_OUTCOME] for attrs, _ in capture.metric_points(sc.METRIC_CALLS)}
    assert outcomes == {"error"}


def test_unknown_group_is_a_clear_error(router: CostRouter) -> None:
    with pytest.raises(ValueError, match="unknown model group 'nope'"):
        router.route_completion("nope", MESSAGES)


def test_context_block_attributes_calls_and_explicit_arguments_win(
    router: CostRouter, capture: TelemetryCapture
) -> None:
    with context(session_id="sess-ctx", user_id="user-ctx", tags=["a"]), context(tags=["b"]):
        router.route_completion("fast", MESSAGES, max_tokens=5)
        router.route_completion("fast", MESSAGES, max_tokens=5, user_id="user-explicit")
    router.route_completion("fast", MESSAGES, max_tokens=5)
    first, second, third = (dict(span.attributes or {}) for span in capture.call_spans())
    assert first[sc.SESSION_ID] == "sess-ctx"
    assert first[sc.USER_ID] == "user-ctx"
    assert list(first[sc.TAG_TAGS]) == ["a", "b"]  # type: ignore[arg-type]
    assert second[sc.USER_ID] == "user-explicit"
    assert sc.SESSION_ID not in third


def test_application_spans_and_the_call_nest(router: CostRouter, capture: TelemetryCapture) -> None:
    tracer = capture.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle-request") as app_span:
        router.route_completion("fast", MESSAGES, max_tokens=5)
    span = only_call_span(capture)
    assert span.parent is not None
    assert span.parent.span_id == app_span.get_span_context().span_id


def test_content_capture_when_enabled(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    router = CostRouter(
        router_config(provider.base_url),
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
        settings=Settings(capture_content=True, content_max_chars=10),
    )
    router.route_completion("fast", MESSAGES, max_tokens=5)
    attributes = dict(only_call_span(capture).attributes or {})
    # The GenAI JSON shape (parts; finish_reason on outputs), which Phoenix's validator requires.
    assert json.loads(str(attributes[sc.GEN_AI_INPUT_MESSAGES])) == [
        {"role": "user", "parts": [{"type": "text", "content": "what is th"}]}
    ]
    output = json.loads(str(attributes[sc.GEN_AI_OUTPUT_MESSAGES]))
    assert output == [
        {"role": "assistant", "parts": [{"type": "text", "content": "tok0 tok1 "}], "finish_reason": "stop"}
    ]
    # OpenInference's flat names, which Phoenix shows as the call's messages.
    assert attributes["llm.input_messages.0.message.role"] == "user"
    assert attributes["llm.input_messages.0.message.content"] == "what is th"
    assert attributes["llm.output_messages.0.message.role"] == "assistant"
    assert attributes["llm.output_messages.0.message.content"] == "tok0 tok1 "


async def test_async_call_with_retry(router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture) -> None:
    provider.script("capable-model", Fail(429, retry_after=0.01), Reply(completion_tokens=3))

    response = await router.aroute_completion("capable", MESSAGES, max_tokens=10, session_id="sess-a")

    assert isinstance(response, litellm.ModelResponse)
    attributes = dict(only_call_span(capture).attributes or {})
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.SESSION_ID] == "sess-a"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("capable-primary", PROMPT_TOKENS, 3))


async def test_200_concurrent_async_calls_never_mix_attributes(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    # Each session gets its own completion length, so its cost is its own too.
    provider.set_default("fast-model", Reply(completion_tokens=1))

    async def one(index: int) -> None:
        messages = [{"role": "user", "content": " ".join(["word"] * (index % 40 + 1))}]
        await router.aroute_completion("fast", messages, max_tokens=50, session_id=f"sess-{index}")

    await asyncio.gather(*(one(index) for index in range(200)))

    spans = capture.call_spans()
    assert len(spans) == 200
    sessions = set()
    for span in spans:
        attributes = dict(span.attributes or {})
        index = int(str(attributes[sc.SESSION_ID]).removeprefix("sess-"))
        sessions.add(index)
        prompt_tokens = index % 40 + 1 + 3
        assert attributes[sc.LLM_TOKEN_COUNT_PROMPT] == prompt_tokens
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("fast-primary", prompt_tokens, 1))
        assert attributes[sc.ROUTER_ATTEMPTS] == 1
        assert len(capture.attempt_spans(span)) == 1
    assert sessions == set(range(200))


def test_concurrent_threads_never_mix_attributes(router: CostRouter, capture: TelemetryCapture) -> None:
    def worker(index: int) -> None:
        messages = [{"role": "user", "content": " ".join(["w"] * (index + 1))}]
        router.route_completion("fast", messages, max_tokens=5, session_id=f"t-{index}")

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for span in capture.call_spans():
        attributes = dict(span.attributes or {})
        index = int(str(attributes[sc.SESSION_ID]).removeprefix("t-"))
        assert attributes[sc.LLM_TOKEN_COUNT_PROMPT] == index + 1 + 3


def test_a_group_skipped_while_cooling_down_counts_as_a_fallback(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("capable-model", Fail(404, message="model not found"))
    router.route_completion("capable", MESSAGES, max_tokens=5)
    router.route_completion("capable", MESSAGES, max_tokens=5)

    for span in capture.call_spans():
        attributes = dict(span.attributes or {})
        assert attributes[sc.ROUTER_SERVED_GROUP] == "fast"
        assert attributes[sc.ROUTER_FALLBACKS] == 1
        kinds = [a.attributes[sc.ATTEMPT_KIND] for a in capture.attempt_spans(span)]  # type: ignore[index]
        assert kinds[-1] == "fallback"
