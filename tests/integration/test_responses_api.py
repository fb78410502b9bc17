"""The Responses API through the router: a span, the deployment's price, budgets; streams end their call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.trace import StatusCode

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.pricing.tokens import count_text_tokens
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import ANSWER_PRICES, budgeted_router, call_attributes, open_router, store_config

QUESTION = "which ships passed the headland last night"
INPUT_TOKENS = len(QUESTION.split())  # the double bills one token a word


def price(input_tokens: int, output_tokens: int, share: float = 1.0) -> float:
    return share * (input_tokens * ANSWER_PRICES[0] + output_tokens * ANSWER_PRICES[1])


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


def test_a_response_is_a_span_with_its_usage_and_cost(router: CostRouter, capture: TelemetryCapture) -> None:
    response = router.route_response("answer", input=QUESTION, max_output_tokens=50, session_id="s-resp")

    assert response.status == "completed"
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.responses/answer"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "generate_content"
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_TOKENS
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(INPUT_TOKENS, 8))
    assert attributes[sc.SESSION_ID] == "s-resp"
    operations = {p[0].get(sc.GEN_AI_OPERATION_NAME) for p in capture.metric_points(sc.METRIC_OPERATION_DURATION)}
    assert operations == {"generate_content"}


async def test_a_response_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("resp-model", Fail(429, retry_after=0.01), Reply(completion_tokens=3))

    await router.aroute_response("answer", input=QUESTION, max_output_tokens=50)

    attributes = call_attributes(capture)
    assert provider.request_count("resp-model") == 2
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(INPUT_TOKENS, 3))


async def test_a_response_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("resp-model", Fail(500))

    await router.aroute_response("answer", input=QUESTION, max_output_tokens=50)

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "answer-backup"
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(INPUT_TOKENS, 8, 0.5))
    assert provider.request_count("resp-backup-model") == 1


def test_the_call_id_never_reaches_the_provider(router: CostRouter, provider: ProviderDouble) -> None:
    router.route_response("answer", input=QUESTION, max_output_tokens=50)

    assert "metadata" not in provider.requests[0].body


def test_litellm_sync_responses_neither_retries_nor_falls_back(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    """Measured on LiteLLM 1.106: ``Router.responses`` (sync) makes one attempt; the README says so."""
    provider.script("resp-model", Fail(429, retry_after=0.01), Reply(completion_tokens=3))

    with pytest.raises(Exception, match="scripted failure"):
        router.route_response("answer", input=QUESTION, max_output_tokens=50)

    assert provider.request_count() == 1
    (span,) = capture.call_spans()
    assert span.status.status_code == StatusCode.ERROR


def test_a_budget_refuses_a_response_before_the_provider(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    router = budgeted_router(provider, capture, 0.001, {"backend": "memory"})

    with pytest.raises(BudgetExceededError):  # 1,000 output tokens at 5 micro-dollars each
        router.route_response("answer", input=QUESTION, max_output_tokens=1000, session_id="s-big")

    assert provider.request_count() == 0
    assert call_attributes(capture)[sc.BUDGET_OUTCOME] == "rejected"
    router.shutdown()


def test_without_max_output_tokens_the_policy_cap_is_sent(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    router = budgeted_router(provider, capture, 1.0, {"backend": "memory"})

    router.route_response("answer", input=QUESTION, session_id="s-cap")

    assert router.policy is not None
    assert provider.requests[0].body["max_output_tokens"] == router.policy.defaults.max_output_tokens
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_streamed_response_settles_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    store = store_config(backend, request)
    router = budgeted_router(provider, capture, 1.0, store)
    provider.script("resp-model", Reply(completion_tokens=4))

    events = list(router.route_response("answer", input=QUESTION, max_output_tokens=50, stream=True, session_id="s1"))

    assert events[-1].type == "response.completed"
    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s1")
    assert status.spent_units == INPUT_TOKENS * 2_000 + 4 * 5_000  # 7 x 2 + 4 x 5 micro-dollars, in nano-dollars
    assert status.held_units == 0
    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "completed"
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "reported"
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    router.shutdown()


def test_a_stream_closed_early_ends_its_call(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("resp-model", Reply(completion_tokens=20, chunk_delay=0.01))

    stream = router.route_response("answer", input=QUESTION, max_output_tokens=50, stream=True)
    for _, _event in zip(range(3), stream, strict=False):
        pass
    stream.close()

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "closed_early"
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "counted"
    # the input counted as one user message (cl100k): 6 tokens a call, 6 a message, 1 for the role
    counted = attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]
    assert counted == 6 + 6 + 1 + count_text_tokens(QUESTION)
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] >= 2


def test_a_stream_cut_by_the_provider_ends_its_call_as_failed(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("resp-model", Reply(completion_tokens=20, cut_after=3))

    with pytest.raises(Exception):  # noqa: B017, PT011  # whichever error LiteLLM raises for a cut stream
        list(router.route_response("answer", input=QUESTION, max_output_tokens=50, stream=True))

    (span,) = capture.call_spans()
    assert dict(span.attributes or {})[sc.ROUTER_STREAM_OUTCOME] == "failed"
    assert span.status.status_code == StatusCode.ERROR


async def test_concurrent_async_streams_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("resp-model", Reply(completion_tokens=5, chunk_delay=0.005))

    async def one(words: int) -> None:
        stream = await router.aroute_response("answer", input="w " * words, stream=True, session_id=f"s{words}")
        async for _event in stream:
            pass

    await asyncio.gather(*(one(words) for words in range(1, 9)))

    spans = capture.call_spans()
    assert len(spans) == 8
    for span in spans:
        attributes = dict(span.attributes or {})
        words = int(str(attributes[sc.SESSION_ID])[1:])
        assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == words
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(words, 5))
        (attempt,) = capture.attempt_spans(span)
        assert attempt.attributes[sc.ATTEMPT_OUTCOME] == "success"  # type: ignore[index]


def test_a_response_on_an_embedding_group_is_a_clear_error(router: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match=r"'embed' serves embed-primary \(embedding\): not a responses call"):
        router.route_response("embed", input=QUESTION)

    assert provider.request_count() == 0
