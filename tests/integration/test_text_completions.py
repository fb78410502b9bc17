"""Legacy text completions through the router; the sync twin awaits LiteLLM's async call (its sync one is broken)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import litellm
import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import TEXT_PRICES, budgeted_router, call_attributes, open_router, store_config

PROMPT = "once upon a time a lighthouse"
PROMPT_TOKENS = len(PROMPT.split())  # the double bills one token a word


def price(prompt_tokens: int, completion_tokens: int, share: float = 1.0) -> float:
    return share * (prompt_tokens * TEXT_PRICES[0] + completion_tokens * TEXT_PRICES[1])


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


async def test_a_text_completion_is_a_span_with_its_usage_and_cost(
    router: CostRouter, capture: TelemetryCapture
) -> None:
    response = await router.aroute_text_completion("text", prompt=PROMPT, max_tokens=20, session_id="s-text")

    assert isinstance(response, litellm.TextCompletionResponse)
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.text_completion/text"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "text_completion"
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(PROMPT_TOKENS, 8))


async def test_a_text_completion_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("tc-model", Fail(429, retry_after=0.01), Reply(completion_tokens=3))

    await router.aroute_text_completion("text", prompt=PROMPT, max_tokens=20)

    attributes = call_attributes(capture)
    assert provider.request_count("tc-model") == 2
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(PROMPT_TOKENS, 3))


async def test_a_text_completion_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("tc-model", Fail(500))

    await router.aroute_text_completion("text", prompt=PROMPT, max_tokens=20)

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "text-backup"
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(PROMPT_TOKENS, 8, 0.5))


async def test_a_budget_holds_every_prompt_of_a_list(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    router = budgeted_router(provider, capture, 0.001, {"backend": "memory"})

    # one prompt: 100 x 4 micro-dollars of output fits; four prompts x 2 choices: 3,200 do not
    await router.aroute_text_completion("text", prompt=PROMPT, max_tokens=100, session_id="s-one")
    with pytest.raises(BudgetExceededError):
        await router.aroute_text_completion("text", prompt=[PROMPT] * 4, n=2, max_tokens=100, session_id="s-many")

    assert provider.request_count() == 1
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_text_completion_settles_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    store = store_config(backend, request)
    router = budgeted_router(provider, capture, 1.0, store)

    await router.aroute_text_completion("text", prompt=PROMPT, max_tokens=20, session_id="s-settle")

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-settle")
    assert status.spent_units == PROMPT_TOKENS * 3_000 + 8 * 4_000  # 6 x 3 + 8 x 4 micro-dollars, in nano-dollars
    assert status.held_units == 0
    router.shutdown()


async def test_concurrent_text_completions_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("tc-model", Reply(completion_tokens=2, delay=0.02))

    await asyncio.gather(
        *(router.aroute_text_completion("text", prompt="w " * n, max_tokens=5, session_id=f"s{n}") for n in range(1, 9))
    )

    spans = capture.call_spans()
    assert len(spans) == 8
    for span in spans:
        attributes = dict(span.attributes or {})
        words = int(str(attributes[sc.SESSION_ID])[1:])
        assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == words
        (attempt,) = capture.attempt_spans(span)
        assert attempt.attributes[sc.ATTEMPT_OUTCOME] == "success"  # type: ignore[index]


async def test_a_prompt_of_the_wrong_type_is_refused(router: CostRouter) -> None:
    with pytest.raises(TypeError, match="prompt must be a string or a list of strings"):
        await router.aroute_text_completion("text", prompt=42)


def test_the_sync_twin_retries_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("tc-model", Fail(429, retry_after=0.01), Reply(completion_tokens=3))

    response = router.route_text_completion("text", prompt=PROMPT, max_tokens=20)

    assert isinstance(response, litellm.TextCompletionResponse)
    attributes = call_attributes(capture)
    assert provider.request_count("tc-model") == 2
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(PROMPT_TOKENS, 3))


def test_the_sync_twin_falls_back_and_settles_to_the_unit(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    router = budgeted_router(provider, capture, 1.0, {"backend": "memory"})
    provider.set_default("tc-model", Fail(500))

    router.route_text_completion("text", prompt=PROMPT, max_tokens=20, session_id="s-sync")

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "text-backup"
    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-sync")
    assert status.spent_units == PROMPT_TOKENS * 1_500 + 8 * 2_000  # the backup's half prices: 25 micro-dollars
    router.shutdown()


async def test_a_stream_is_refused_rather_than_under_charged(router: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match="does not route streams yet"):
        router.route_text_completion("text", prompt=PROMPT, max_tokens=20, stream=True)
    with pytest.raises(ValueError, match="does not route streams yet"):
        await router.aroute_text_completion("text", prompt=PROMPT, max_tokens=20, stream=True)

    assert provider.request_count() == 0
