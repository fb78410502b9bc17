"""Service tiers end to end: flex and priority calls against provider-shaped responses, at LiteLLM's tier prices."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import litellm
import pytest

from costrouter import CostRouter
from costrouter.money import UNITS_PER_USD, units_to_usd, usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.provider import count_prompt_tokens

MESSAGES = [{"role": "user", "content": "summarise the harbour log for the night shift"}]
PROMPT_TOKENS = count_prompt_tokens(MESSAGES)
GPT5 = litellm.model_cost["gpt-5"]
"""LiteLLM's own price-map entry: the prices every test here expects."""


def tier_cost(tier: str | None, prompt_tokens: int, completion_tokens: int) -> float:
    """The cost at LiteLLM's price of ``tier`` (``None``: the standard price), as the span carries it.

    Exact, then to the budget unit (micro-dollars, half up) as every cost is today.
    """
    suffix = f"_{tier}" if tier else ""
    input_price = Decimal(repr(GPT5[f"input_cost_per_token{suffix}"]))
    output_price = Decimal(repr(GPT5[f"output_cost_per_token{suffix}"]))
    exact = prompt_tokens * input_price + completion_tokens * output_price
    return units_to_usd(int((exact * UNITS_PER_USD).to_integral_value(ROUND_HALF_UP)))


def config(base_url: str, **litellm_params: Any) -> dict[str, Any]:
    """One group on ``openai/gpt-5`` at the double, every price from LiteLLM's price map."""
    deployment = {"id": "gpt5", "model": "openai/gpt-5", "api_base": base_url, "api_key": "test-key"}
    if litellm_params:
        deployment["litellm_params"] = litellm_params
    return {"router": {"num_retries": 0}, "groups": {"gpt5": {"deployments": [deployment]}}}


POLICY = {"store": {"backend": "memory"}, "budgets": [{"scope": "session", "limit_usd": 10.0, "window": "total"}]}


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    provider.reset()
    made = CostRouter(
        config(provider.base_url),
        budgets=POLICY,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    yield made
    made.shutdown()


def spent(router: CostRouter, session_id: str) -> int:
    assert router.budgets is not None
    (status,) = router.budgets.status("session", session_id)
    return status.spent_units


def test_the_price_map_carries_flex_and_priority_for_gpt5() -> None:
    assert GPT5["input_cost_per_token_flex"] < GPT5["input_cost_per_token"] < GPT5["input_cost_per_token_priority"]


@pytest.mark.parametrize("tier", ["flex", "priority", "default"])
def test_a_call_is_charged_the_price_of_the_tier_it_was_served_at(
    tier: str, router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router.route_completion("gpt5", MESSAGES, max_tokens=40, service_tier=tier, session_id=f"s-{tier}")

    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    cost = tier_cost(None if tier == "default" else tier, PROMPT_TOKENS, 8)
    assert provider.requests[0].body["service_tier"] == tier
    assert attributes[sc.ROUTER_SERVICE_TIER] == tier
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(cost, rel=1e-9)
    assert spent(router, f"s-{tier}") == usd_to_units(cost)


def test_a_priority_request_served_at_standard_is_charged_standard_but_held_at_priority(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    # OpenAI serves a priority request at standard once the priority ramp is exceeded, and says so.
    provider.script("gpt-5", Reply(service_tier="default"))

    router.route_completion("gpt5", MESSAGES, max_tokens=40, service_tier="priority", session_id="s-ramp")
    router.route_completion("gpt5", MESSAGES, max_tokens=40, session_id="s-plain")

    priority, plain = (dict(span.attributes or {}) for span in capture.call_spans())
    assert priority[sc.ROUTER_SERVICE_TIER] == "default"
    assert priority[sc.LLM_USAGE_COST_USD] == pytest.approx(tier_cost(None, PROMPT_TOKENS, 8), rel=1e-9)
    # The hold covered the dearest tier the request allowed: every output token at the priority price
    # (the whole of a standard hold of this small prompt stays below that).
    assert float(priority[sc.BUDGET_ESTIMATE_USD]) >= 40 * GPT5["output_cost_per_token_priority"]
    assert float(plain[sc.BUDGET_ESTIMATE_USD]) < 40 * GPT5["output_cost_per_token_priority"]
    assert sc.ROUTER_SERVICE_TIER not in plain  # neither asked for nor reported: no tier on the span


def test_a_flex_request_is_held_at_the_flex_price(router: CostRouter, capture: TelemetryCapture) -> None:
    router.route_completion("gpt5", MESSAGES, max_tokens=40, service_tier="flex", session_id="s-flex")
    router.route_completion("gpt5", MESSAGES, max_tokens=40, session_id="s-standard")

    flex, standard = (dict(span.attributes or {}) for span in capture.call_spans())
    # Flex is served at flex or refused, never upgraded: its hold is below the standard output alone.
    assert float(flex[sc.BUDGET_ESTIMATE_USD]) < 40 * GPT5["output_cost_per_token"]
    assert float(flex[sc.BUDGET_ESTIMATE_USD]) >= 40 * GPT5["output_cost_per_token_flex"]
    assert float(standard[sc.BUDGET_ESTIMATE_USD]) >= 40 * GPT5["output_cost_per_token"]


def test_a_stream_is_charged_the_tier_its_chunks_report(router: CostRouter, capture: TelemetryCapture) -> None:
    stream = router.route_completion(
        "gpt5", MESSAGES, max_tokens=40, service_tier="flex", stream=True, session_id="s-stream"
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.ROUTER_SERVICE_TIER] == "flex"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(tier_cost("flex", PROMPT_TOKENS, 8), rel=1e-9)
    assert spent(router, "s-stream") == usd_to_units(tier_cost("flex", PROMPT_TOKENS, 8))


@pytest.mark.parametrize("stream", [False, True])
def test_a_responses_call_is_charged_the_tier_the_response_reports(
    stream: bool, router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("gpt-5", Reply(service_tier="priority"))
    question = "which ships passed the headland last night"

    result = router.route_response("gpt5", input=question, max_output_tokens=40, stream=stream, session_id="s-r")
    if stream:
        for _event in result:
            pass

    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    cost = tier_cost("priority", len(question.split()), 8)  # the double bills one token a word
    assert attributes[sc.ROUTER_SERVICE_TIER] == "priority"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(cost, rel=1e-9)
    assert spent(router, "s-r") == usd_to_units(cost)


def test_a_deployment_that_asks_for_priority_is_held_and_charged_at_priority(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.reset()
    router = CostRouter(
        config(provider.base_url, service_tier="priority"),
        budgets=POLICY,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    try:
        router.route_completion("gpt5", MESSAGES, max_tokens=40, session_id="s-dep")
    finally:
        router.shutdown()

    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert provider.requests[0].body["service_tier"] == "priority"  # LiteLLM sends the deployment's parameter
    assert attributes[sc.ROUTER_SERVICE_TIER] == "priority"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(tier_cost("priority", PROMPT_TOKENS, 8), rel=1e-9)
    assert float(attributes[sc.BUDGET_ESTIMATE_USD]) >= tier_cost("priority", PROMPT_TOKENS, 40)
