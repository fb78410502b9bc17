"""Invoice-exact cost end to end: each provider's real usage shape, priced from its published
price sheet by hand, must come out the same on the span, in the split, in the metric and in
the budget counter, exactly, for responses and streams."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import litellm
import pytest

from costrouter import CostRouter
from costrouter.budget import BudgetPolicy
from costrouter.budget.factory import leased_store_of
from costrouter.money import UNITS_PER_USD, usd_to_units
from costrouter.otel import semconv as sc
from costrouter.pricing.cost import COMPONENTS
from costrouter.testing import ProviderDouble, TelemetryCapture
from costrouter.testing.provider import Reply, anthropic_usage, gemini_usage, openai_usage

MESSAGES = [{"role": "user", "content": "price this call to the micro-dollar"}]
PER_M = 1e-6  # published price sheets quote USD per million tokens
ROOT = "{double root}"  # the double's address without /v1, for an anthropic/ deployment

# Published price sheets (USD per 1M tokens), as each provider lists them.
# OpenAI gpt-4o: input 2.50, cached input 1.25, output 10.00 (LiteLLM's map has the same).
# OpenAI o3-mini: input 1.10, cached input 0.55, output 4.40; reasoning billed as output.
SONNET_4_5 = {  # Anthropic Claude Sonnet 4.5: input 3, 5-min cache write 3.75, cache hit 0.30, output 15
    "input_cost_per_token": 3 * PER_M,
    "cache_creation_input_token_cost": 3.75 * PER_M,
    "cache_read_input_token_cost": 0.30 * PER_M,
    "output_cost_per_token": 15 * PER_M,
}  # and a 1-hour cache write at 6, from LiteLLM's map in the native case below
GEMINI_2_5_PRO = {  # Google Gemini 2.5 Pro: input 1.25 / 2.50 above 200k, output (thinking included) 10 / 15
    "input_cost_per_token": 1.25 * PER_M,
    "input_cost_per_token_above_200k_tokens": 2.50 * PER_M,
    "output_cost_per_token": 10 * PER_M,
    "output_cost_per_token_above_200k_tokens": 15 * PER_M,
}


@dataclass(frozen=True)
class Case:
    """One call: the deployment, what the provider answers, and the invoice worked out by hand."""

    name: str
    model: str  # what the double sees
    deployment: dict[str, Any]
    reply: Reply
    invoice_micros: int
    components: dict[str, int]
    tokens: dict[str, int] = field(default_factory=dict)


CASES = [
    Case(
        # 2,000 prompt tokens, 1,536 of them cached; 300 output tokens; prices from LiteLLM's map.
        # 464 x 2.50 + 1,536 x 1.25 + 300 x 10.00 = 1,160 + 1,920 + 3,000 = 6,080 micro-dollars
        "openai-gpt-4o-cached",
        "gpt-4o",
        {"model": "openai/gpt-4o"},
        Reply(completion_tokens=300, prompt_tokens=2_000, usage_details=openai_usage(cached_tokens=1_536)),
        6_080,
        {"input": 1_160, "cache_read": 1_920, "output": 3_000},
        {sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1_536, sc.LLM_TOKEN_COUNT_PROMPT_CACHE_READ: 1_536},
    ),
    Case(
        # 1,000 prompt tokens; 200 visible + 800 reasoning output tokens, all at 4.40.
        # 1,000 x 1.10 + 200 x 4.40 + 800 x 4.40 = 1,100 + 880 + 3,520 = 5,500 micro-dollars
        "openai-o3-mini-reasoning",
        "o3-mini",
        {"model": "openai/o3-mini"},
        Reply(completion_tokens=200, prompt_tokens=1_000, usage_details=openai_usage(reasoning_tokens=800)),
        5_500,
        {"input": 1_100, "output": 880, "reasoning": 3_520},
        {sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 800, sc.LLM_TOKEN_COUNT_COMPLETION_REASONING: 800},
    ),
    Case(
        # 10,000 prompt tokens: 2,000 plain, 3,000 written to the cache, 5,000 read from it; 500 output.
        # 2,000 x 3 + 3,000 x 3.75 + 5,000 x 0.30 + 500 x 15 = 6,000 + 11,250 + 1,500 + 7,500 = 26,250
        "anthropic-sonnet-4.5-cache",
        "claude-sonnet-4-5",
        {"model": "openai/claude-sonnet-4-5", **SONNET_4_5},
        Reply(
            completion_tokens=500,
            prompt_tokens=10_000,
            usage_details=anthropic_usage(cache_creation_tokens=3_000, cache_read_tokens=5_000),
        ),
        26_250,
        {"input": 6_000, "cache_creation": 11_250, "cache_read": 1_500, "output": 7_500},
        {
            sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 3_000,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 5_000,
            sc.LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE: 3_000,
        },
    ),
    Case(
        # The same call through LiteLLM's own Anthropic provider (the double speaks /v1/messages);
        # prices from LiteLLM's map, which matches the sheet.
        "anthropic-native-sonnet-4.5-cache",
        "claude-sonnet-4-5",
        {"model": "anthropic/claude-sonnet-4-5", "api_base": ROOT},
        Reply(
            completion_tokens=500,
            prompt_tokens=10_000,
            usage_details=anthropic_usage(cache_creation_tokens=3_000, cache_read_tokens=5_000),
        ),
        26_250,
        {"input": 6_000, "cache_creation": 11_250, "cache_read": 1_500, "output": 7_500},
        {sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 3_000, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 5_000},
    ),
    Case(
        # Anthropic's split of cache writes by lifetime: 1,000 for five minutes, 2,000 for an hour.
        # 2,000 x 3 + 1,000 x 3.75 + 2,000 x 6 + 5,000 x 0.30 + 500 x 15
        #   = 6,000 + 3,750 + 12,000 + 1,500 + 7,500 = 30,750 micro-dollars
        "anthropic-native-sonnet-4.5-1h-cache",
        "claude-sonnet-4-5",
        {"model": "anthropic/claude-sonnet-4-5", "api_base": ROOT},
        Reply(
            completion_tokens=500,
            prompt_tokens=10_000,
            usage_details=anthropic_usage(
                cache_creation_tokens=3_000, cache_read_tokens=5_000, cache_creation_1h_tokens=2_000
            ),
        ),
        30_750,
        {"input": 6_000, "cache_creation": 3_750, "cache_creation_1h": 12_000, "cache_read": 1_500, "output": 7_500},
        {sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 3_000, sc.LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE: 3_000},
    ),
    Case(
        # 1,000 prompt tokens; 50 visible + 150 thinking output tokens at 10 (below 200k).
        # 1,000 x 1.25 + 50 x 10 + 150 x 10 = 1,250 + 500 + 1,500 = 3,250 micro-dollars
        "gemini-2.5-pro-thinking",
        "gemini-2.5-pro",
        {"model": "openai/gemini-2.5-pro", **GEMINI_2_5_PRO},
        Reply(completion_tokens=50, prompt_tokens=1_000, usage_details=gemini_usage(thinking_tokens=150)),
        3_250,
        {"input": 1_250, "output": 500, "reasoning": 1_500},
        {sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 150},
    ),
    Case(
        # A 250,000-token prompt: every token at the above-200k prices. 100 visible + 900 thinking.
        # 250,000 x 2.50 + 100 x 15 + 900 x 15 = 625,000 + 1,500 + 13,500 = 640,000 micro-dollars
        "gemini-2.5-pro-above-200k",
        "gemini-2.5-pro-long",
        {"model": "openai/gemini-2.5-pro-long", **GEMINI_2_5_PRO},
        Reply(completion_tokens=100, prompt_tokens=250_000, usage_details=gemini_usage(thinking_tokens=900)),
        640_000,
        {"input": 625_000, "output": 1_500, "reasoning": 13_500},
    ),
]


def _config(base_url: str, case: Case, model: str | None = None) -> dict[str, Any]:
    deployment = {"id": "d", "api_base": base_url, "api_key": "k", **case.deployment}
    if deployment["api_base"] == ROOT:
        deployment["api_base"] = base_url.removesuffix("/v1")
    if model is not None:
        deployment["model"] = model
    return {"router": {"num_retries": 0}, "groups": {"g": {"deployments": [deployment]}}}


@dataclass
class Harness:
    provider: ProviderDouble
    capture: TelemetryCapture
    store: dict[str, Any]
    routers: list[CostRouter] = field(default_factory=list)

    def router(self, config: Any, **policy: Any) -> CostRouter:
        budgets = {"store": self.store, "budgets": [{"scope": "session", "limit_usd": 10, "window": "total"}], **policy}
        router = CostRouter(
            config,
            budgets=budgets,
            tracer_provider=self.capture.tracer_provider,
            meter_provider=self.capture.meter_provider,
        )
        self.routers.append(router)
        return router

    def call(self, router: CostRouter, *, stream: bool, session_id: str) -> Any:
        response = router.route_completion("g", MESSAGES, session_id=session_id, max_tokens=2_000, stream=stream)
        if stream:
            for _ in response:
                pass
        return response

    def spent_units(self, router: CostRouter, session_id: str) -> int:
        assert isinstance(router.policy, BudgetPolicy)
        assert router.store is not None
        (ref,) = router.policy.budgets_for(session_id=session_id)
        leased = leased_store_of(router.store)
        if leased is not None:
            leased.flush()  # leases carry settled spend in the background: carry it now
        return router.store.status(ref).spent_units


@pytest.fixture(params=["memory", "redis", "redis-leases"])
def harness(request: pytest.FixtureRequest, provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[Harness]:
    provider.reset()
    backend = "memory" if request.param == "memory" else "redis"
    store: dict[str, Any] = {"backend": backend, "key_prefix": f"inv{uuid.uuid4().hex[:8]}"}
    if backend == "redis":
        store["redis_url"] = request.getfixturevalue("redis_url")
    if request.param == "redis":  # the per-call path; "redis-leases" is the default
        store["lease"] = {"enabled": False}
    made = Harness(provider, capture, store)
    yield made
    for router in made.routers:
        router.shutdown()


MICRO = UNITS_PER_USD // 1_000_000
"""The invoices below are worked out by hand in micro-dollars; counters count nano-dollars."""


def _micros(attributes: dict[str, Any], name: str) -> int:
    """An attribute in whole micro-dollars (every figure here is one: the exact product, not rounded)."""
    units = usd_to_units(float(attributes[name]))
    assert units % MICRO == 0, (name, attributes[name])
    return units // MICRO


def _component_units(attributes: dict[str, Any], name: str) -> int:
    """A token component is always written; a unit one only on a call billed by that unit."""
    key = f"{sc.ROUTER_COST_PREFIX}{name}"
    if name in sc.USAGE_UNIT_ATTRIBUTES:
        return _micros(attributes, key) if key in attributes else 0
    return _micros(attributes, key)


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_span_split_metric_and_budget_equal_the_invoice(harness: Harness, case: Case, stream: bool) -> None:
    harness.provider.set_default(case.model, case.reply)
    router = harness.router(_config(harness.provider.base_url, case))
    session = f"s-{uuid.uuid4().hex[:8]}"

    response = harness.call(router, stream=stream, session_id=session)

    (span,) = harness.capture.call_spans()
    attributes = dict(span.attributes or {})
    assert _micros(attributes, sc.LLM_USAGE_COST_USD) == case.invoice_micros
    assert _micros(attributes, sc.LLM_COST_TOTAL) == case.invoice_micros
    assert _micros(attributes, sc.LLM_COST_PROMPT) + _micros(attributes, sc.LLM_COST_COMPLETION) == case.invoice_micros
    components = {name: _component_units(attributes, name) for name in COMPONENTS}
    assert {name: value for name, value in components.items() if value} == case.components
    assert sum(components.values()) == case.invoice_micros
    for name, value in case.tokens.items():
        assert attributes[name] == value
    assert attributes[sc.ROUTER_COST_SOURCE] == "computed"
    # LiteLLM's own figure in a stream's usage.cost is not taken for the provider's.
    assert sc.ROUTER_COST_PROVIDER_USD not in attributes
    (cost_point,) = [point for _, point in harness.capture.metric_points(sc.METRIC_COST)]
    assert usd_to_units(cost_point.value) == case.invoice_micros * MICRO
    assert harness.spent_units(router, session) == case.invoice_micros * MICRO
    if not stream:
        # The prices reached LiteLLM's Router too: its own response_cost agrees.
        assert usd_to_units(response._hidden_params["response_cost"]) == case.invoice_micros * MICRO


def test_token_usage_histogram_has_cache_and_reasoning_types(harness: Harness) -> None:
    case = CASES[2]
    harness.provider.set_default(case.model, case.reply)
    router = harness.router(_config(harness.provider.base_url, case))
    harness.call(router, stream=False, session_id="s-hist")
    points = {
        attributes[sc.GEN_AI_TOKEN_TYPE]: point.sum
        for attributes, point in harness.capture.metric_points(sc.METRIC_TOKEN_USAGE)
    }
    assert points == {"input": 10_000, "output": 500, "cache_read": 5_000, "cache_creation": 3_000}


# ---- the same prices written three ways ----------------------------------------------------------
def _proxy(base_url: str, where: str) -> dict[str, Any]:
    params: dict[str, Any] = {"model": "openai/claude-sonnet-4-5", "api_base": base_url, "api_key": "k"}
    model_info: dict[str, Any] = {"id": "d"}
    (params if where == "litellm_params" else model_info).update(SONNET_4_5)
    return {"model_list": [{"model_name": "g", "litellm_params": params, "model_info": model_info}]}


@pytest.mark.parametrize("where", ["native", "litellm_params", "model_info"])
def test_proxy_prices_in_model_info_or_litellm_params_cost_as_the_native_file(harness: Harness, where: str) -> None:
    case = CASES[2]
    harness.provider.set_default(case.model, case.reply)
    base_url = harness.provider.base_url
    config = _config(base_url, case) if where == "native" else _proxy(base_url, where)
    router = harness.router(config)
    harness.call(router, stream=False, session_id=f"s-{where}")
    (span,) = harness.capture.call_spans()
    attributes = dict(span.attributes or {})
    components = {name: _component_units(attributes, name) for name in COMPONENTS}
    assert {name: value for name, value in components.items() if value} == case.components
    assert _micros(attributes, sc.LLM_USAGE_COST_USD) == case.invoice_micros
    assert harness.spent_units(router, f"s-{where}") == case.invoice_micros * MICRO


# ---- provider-reported cost ---------------------------------------------------------------------
CACHED = anthropic_usage(cache_creation_tokens=3_000, cache_read_tokens=5_000)  # the 26,250 invoice above
OPENROUTER = "openrouter/claude-sonnet-4-5"  # OpenRouter bills in usage.cost


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
@pytest.mark.parametrize(
    ("model", "reply", "source", "settled_units", "mismatch"),
    [
        # OpenRouter's usage.cost agrees with the computed 26,250 within the 1% tolerance: computed settles.
        (
            OPENROUTER,
            Reply(completion_tokens=500, prompt_tokens=10_000, usage_details={**CACHED, "cost": 0.02626}),
            "computed",
            26_250,
            False,
        ),
        # The policy prefers the provider: its figure settles, and the gap is flagged.
        (
            OPENROUTER,
            Reply(completion_tokens=500, prompt_tokens=10_000, usage_details={**CACHED, "cost": 0.03}),
            "provider",
            30_000,
            True,
        ),
        # A LiteLLM proxy's header.
        (
            "openai/claude-sonnet-4-5",
            Reply(
                completion_tokens=500,
                prompt_tokens=10_000,
                usage_details=CACHED,
                headers={"x-litellm-response-cost": "0.031"},
            ),
            "provider",
            31_000,
            True,
        ),
    ],
    ids=["openrouter-agrees", "openrouter-settles", "proxy-header-settles"],
)
def test_provider_reported_cost_is_recorded_and_may_settle(
    harness: Harness, model: str, reply: Reply, source: str, settled_units: int, mismatch: bool, stream: bool
) -> None:
    harness.provider.set_default("claude-sonnet-4-5", reply)
    config = _config(harness.provider.base_url, CASES[2], model)
    router = harness.router(config, cost={"source": source})
    harness.call(router, stream=stream, session_id="s-provider")
    (span,) = harness.capture.call_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.ROUTER_COST_SOURCE] == source
    assert _micros(attributes, sc.ROUTER_COST_COMPUTED_USD) == 26_250
    assert _micros(attributes, sc.ROUTER_COST_PROVIDER_USD) > 0
    assert attributes[sc.ROUTER_COST_MISMATCH] is mismatch
    assert [event.name for event in span.events if event.name == sc.EVENT_COST_MISMATCH] == (
        [sc.EVENT_COST_MISMATCH] if mismatch else []
    )
    assert _micros(attributes, sc.LLM_USAGE_COST_USD) == settled_units
    assert harness.spent_units(router, "s-provider") == settled_units * MICRO


# ---- a stream cut mid-way: the same cost function over the counted tokens -------------------------
def test_a_cut_stream_is_priced_by_the_same_function(harness: Harness) -> None:
    case = CASES[2]  # Sonnet 4.5 at the sheet's prices
    harness.provider.set_default(case.model, Reply(completion_tokens=40, cut_after=10))
    router = harness.router(_config(harness.provider.base_url, case))
    stream = router.route_completion("g", MESSAGES, session_id="s-cut", max_tokens=100, stream=True)
    with pytest.raises(litellm.APIConnectionError):
        for _ in stream:
            pass
    (span,) = harness.capture.call_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "counted"
    prompt, completion = int(attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]), int(attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS])
    # Worked by hand: counted prompt tokens x $3/M + received tokens x $15/M.
    invoice = prompt * 3 + completion * 15
    assert _micros(attributes, f"{sc.ROUTER_COST_PREFIX}input") == prompt * 3
    assert _micros(attributes, f"{sc.ROUTER_COST_PREFIX}output") == completion * 15
    assert _micros(attributes, sc.LLM_USAGE_COST_USD) == invoice
    assert harness.spent_units(router, "s-cut") == invoice * MICRO
