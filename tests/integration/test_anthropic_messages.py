"""Anthropic-native messages through the router; the sync twin awaits LiteLLM's coroutine on a loop thread."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import litellm
import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.provider import anthropic_usage
from tests.calltypes import (
    CLAUDE_CACHE_READ_PRICE,
    CLAUDE_PRICES,
    budgeted_router,
    call_attributes,
    open_router,
    store_config,
)

MESSAGES = [{"role": "user", "content": "summarise the storm log"}]


def price(input_tokens: int, output_tokens: int, share: float = 1.0) -> float:
    return share * (input_tokens * CLAUDE_PRICES[0] + output_tokens * CLAUDE_PRICES[1])


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


async def test_a_message_is_a_span_with_its_usage_and_cost(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("claude-x", Reply(prompt_tokens=10, completion_tokens=6))

    response = await router.aroute_messages("claude", messages=MESSAGES, max_tokens=50, session_id="s-msg")

    assert response["type"] == "message"
    assert "metadata" not in provider.requests[0].body  # costrouter's call id never reaches the provider
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.messages/claude"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "claude-primary"
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 10
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 6
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(10, 6))


async def test_cache_reads_are_priced_as_anthropic_bills_them(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    usage = anthropic_usage(cache_read_tokens=40)
    provider.script("claude-x", Reply(prompt_tokens=50, completion_tokens=2, usage_details=usage))

    await router.aroute_messages("claude", messages=MESSAGES, max_tokens=50)

    attributes = call_attributes(capture)
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 50  # 10 fresh + 40 read, as LiteLLM counts a prompt
    expected = 10 * CLAUDE_PRICES[0] + 40 * CLAUDE_CACHE_READ_PRICE + 2 * CLAUDE_PRICES[1]
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected)


async def test_a_message_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("claude-x", Fail(429, retry_after=0.01), Reply(prompt_tokens=10, completion_tokens=3))

    await router.aroute_messages("claude", messages=MESSAGES, max_tokens=50)

    attributes = call_attributes(capture)
    assert provider.request_count("claude-x") == 2
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(10, 3))


async def test_a_message_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("claude-x", Fail(500))
    provider.script("claude-backup-x", Reply(prompt_tokens=10, completion_tokens=8))

    await router.aroute_messages("claude", messages=MESSAGES, max_tokens=50)

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "claude-backup"
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(price(10, 8, 0.5))


async def test_a_budget_refuses_a_message_before_the_provider(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = budgeted_router(provider, capture, 0.01, {"backend": "memory"})

    with pytest.raises(BudgetExceededError):  # 1,000 output tokens at 15 micro-dollars each
        await router.aroute_messages("claude", messages=MESSAGES, max_tokens=1000, session_id="s-big")

    assert provider.request_count() == 0
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_message_settles_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    store = store_config(backend, request)
    router = budgeted_router(provider, capture, 1.0, store)
    provider.script("claude-x", Reply(prompt_tokens=10, completion_tokens=6))

    await router.aroute_messages("claude", messages=MESSAGES, max_tokens=50, session_id="s-settle")

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-settle")
    assert status.spent_units == 10 * 3_000 + 6 * 15_000  # $0.00012: hand-computed, in nano-dollars
    assert status.held_units == 0
    router.shutdown()


async def test_concurrent_messages_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("claude-x", Reply(completion_tokens=2, delay=0.02))

    async def one(n: int) -> None:
        await router.aroute_messages(
            "claude", messages=[{"role": "user", "content": "w " * n}], max_tokens=5, session_id=f"s{n}"
        )

    await asyncio.gather(*(one(n) for n in range(1, 9)))

    spans = capture.call_spans()
    assert len(spans) == 8
    inputs = {
        dict(span.attributes or {})[sc.SESSION_ID]: dict(span.attributes or {})[sc.GEN_AI_USAGE_INPUT_TOKENS]
        for span in spans
    }
    assert [inputs[f"s{n}"] for n in range(1, 9)] == sorted(inputs.values())  # each its own prompt
    assert len(set(inputs.values())) == 8
    for span in spans:
        (attempt,) = capture.attempt_spans(span)
        assert attempt.attributes[sc.ATTEMPT_OUTCOME] == "success"  # type: ignore[index]


def test_the_sync_twin_retries_and_settles_like_the_async_one(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = budgeted_router(provider, capture, 1.0, {"backend": "memory"})
    provider.script("claude-x", Fail(429, retry_after=0.01), Reply(prompt_tokens=10, completion_tokens=6))

    response = router.route_messages("claude", messages=MESSAGES, max_tokens=50, session_id="s-sync")

    assert response["type"] == "message"
    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-sync")
    assert status.spent_units == 10 * 3_000 + 6 * 15_000  # $0.00012: hand-computed, in nano-dollars
    router.shutdown()


def test_the_sync_twin_passes_litellm_errors_through_unchanged(router: CostRouter, provider: ProviderDouble) -> None:
    provider.set_default("claude-backup-x", Fail(400, message="bad request"))

    with pytest.raises(litellm.BadRequestError, match="bad request"):
        router.route_messages("claude-backup", messages=MESSAGES, max_tokens=50)
