"""Streams end their routed call when they finish, are closed early, or fail."""

from __future__ import annotations

import litellm
import pytest
from opentelemetry.trace import StatusCode

from costrouter import CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.provider import count_prompt_tokens
from tests.routing import expected_cost

MESSAGES = [{"role": "user", "content": "tell me a story about a lighthouse"}]
PROMPT_TOKENS = count_prompt_tokens(MESSAGES)


def attributes_of_only_call(capture: TelemetryCapture) -> dict[str, object]:
    spans = capture.call_spans()
    assert len(spans) == 1
    return dict(spans[0].attributes or {})


def test_sync_stream_with_provider_usage(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=6))

    stream = router.route_completion("fast", MESSAGES, stream=True, max_tokens=50, session_id="s-1")
    assert capture.call_spans() == []  # the span stays open while the stream is read
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == "tok0 tok1 tok2 tok3 tok4 tok5"
    attributes = attributes_of_only_call(capture)
    assert attributes[sc.ROUTER_STREAM] is True
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "completed"
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "reported"
    assert attributes[sc.LLM_TOKEN_COUNT_PROMPT] == PROMPT_TOKENS
    assert attributes[sc.LLM_TOKEN_COUNT_COMPLETION] == 6
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("fast-primary", PROMPT_TOKENS, 6))
    assert attributes[sc.LLM_FINISH_REASON] == "stop"
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "fast-primary"
    assert attributes[sc.SESSION_ID] == "s-1"
    assert provider.requests[-1].body["stream_options"] == {"include_usage": True}


def test_stream_without_provider_usage_is_counted_by_litellm(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=6, include_usage=False))

    for _ in router.route_completion("fast", MESSAGES, stream=True, max_tokens=50):
        pass

    # LiteLLM counts the tokens itself and sends them in its final usage chunk.
    attributes = attributes_of_only_call(capture)
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "reported"
    prompt = int(attributes[sc.LLM_TOKEN_COUNT_PROMPT])  # type: ignore[call-overload]
    completion = int(attributes[sc.LLM_TOKEN_COUNT_COMPLETION])  # type: ignore[call-overload]
    assert prompt >= PROMPT_TOKENS - 3
    assert completion >= 6
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("fast-primary", prompt, completion))


def test_stream_closed_early_ends_the_span(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=40))

    with router.route_completion("fast", MESSAGES, stream=True, max_tokens=50) as stream:
        for index, _ in enumerate(stream):
            if index == 3:
                break

    attributes = attributes_of_only_call(capture)
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "closed_early"
    assert 0 < int(attributes[sc.LLM_TOKEN_COUNT_COMPLETION]) < 40  # type: ignore[call-overload]
    assert float(attributes[sc.LLM_USAGE_COST_USD]) > 0  # type: ignore[arg-type]


def test_stream_cut_mid_way_is_an_error_with_consumed_cost(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=30, cut_after=5))

    stream = router.route_completion("fast", MESSAGES, stream=True, max_tokens=50)
    with pytest.raises(litellm.APIConnectionError) as raised:
        list(stream)

    spans = capture.call_spans()
    assert len(spans) == 1
    span = spans[0]
    attributes = dict(span.attributes or {})
    assert span.status.status_code == StatusCode.ERROR
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "failed"
    assert attributes[sc.ERROR_TYPE] == type(raised.value).__name__
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "counted"
    assert float(attributes[sc.LLM_USAGE_COST_USD]) > 0  # type: ignore[arg-type]


def test_stream_after_a_retry(router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture) -> None:
    provider.script("capable-model", Fail(429, retry_after=0.01), Reply(completion_tokens=4))

    chunks = list(router.route_completion("capable", MESSAGES, stream=True, max_tokens=50))

    assert chunks
    attributes = attributes_of_only_call(capture)
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("capable-primary", PROMPT_TOKENS, 4))


async def test_async_stream_with_usage(router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=5))

    stream = await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=50, user_id="u-1")
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]

    assert "".join(parts) == "tok0 tok1 tok2 tok3 tok4"
    attributes = attributes_of_only_call(capture)
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "completed"
    assert attributes[sc.USER_ID] == "u-1"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("fast-primary", PROMPT_TOKENS, 5))


async def test_async_stream_closed_early(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=40, include_usage=False))

    async with await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=50) as stream:
        async for _ in stream:
            break

    attributes = attributes_of_only_call(capture)
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "closed_early"
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "counted"


async def test_async_stream_without_usage(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=7, include_usage=False))

    stream = await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=50)
    async for _ in stream:
        pass

    attributes = attributes_of_only_call(capture)
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "reported"
    completion = int(attributes[sc.LLM_TOKEN_COUNT_COMPLETION])  # type: ignore[call-overload]
    prompt = int(attributes[sc.LLM_TOKEN_COUNT_PROMPT])  # type: ignore[call-overload]
    assert completion >= 7
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("fast-primary", prompt, completion))
