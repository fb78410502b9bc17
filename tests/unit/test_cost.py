"""The cost function: agreement with LiteLLM's calculator, exact splits, usage shapes, cost source."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token
from litellm.types.utils import Usage
from packaging.version import Version

from costrouter.budget import load_policy
from costrouter.config import price_fields as pf
from costrouter.errors import ConfigError
from costrouter.money import ATTOS_PER_UNIT, attos_to_usd
from costrouter.otel.cost_attributes import OPENINFERENCE_COST, breakdown_attributes
from costrouter.pricing.cost import (
    COMPONENTS,
    UPSTREAM_USAGE_COST,
    TokenUsage,
    compute_cost,
    provider_reported_cost,
    settle_cost,
    token_usage,
)
from costrouter.pricing.prices import UNITS, Price
from costrouter.pricing.service_tiers import call_tier
from costrouter.routing.needs import litellm_version

rates_ = st.floats(min_value=0, max_value=1e-4, allow_nan=False, allow_infinity=False)
tokens_ = st.integers(min_value=0, max_value=300_000)
small_ = st.integers(min_value=0, max_value=60_000)
UNATTRIBUTED_WRITES_BILLED_SINCE = Version("1.109.0")
"""LiteLLM bills cache writes its lifetime split does not cover at the base write rate from 1.109;
before, it dropped them. costrouter bills them (``billed_tokens``) on every LiteLLM."""
OPTIONAL = tuple(key for key in pf.PER_TOKEN_FIELDS if key not in (pf.INPUT, pf.OUTPUT))
"""The per-token prices a deployment may set beside input and output."""


def _price_rounding_slack(raw: Mapping[str, Any]) -> float:
    """The most the load-time rounding of every rate to a whole atto-dollar can move a bill (docs/cost.md).

    Each rate moves by at most half an atto-dollar a token, and every token is billed at one rate; the
    raw usage's counts (details included, which overlap) bound the tokens billed.
    """
    return max(1e-15, sum(_token_counts(raw)) * 0.5e-18)


def _token_counts(raw: Mapping[str, Any]) -> list[int]:
    counts: list[int] = []
    for value in raw.values():
        if isinstance(value, Mapping):
            counts.extend(_token_counts(value))
        elif isinstance(value, int):
            counts.append(value)
    return counts


@st.composite
def prices(draw: st.DrawFn) -> Price:
    """A price with any subset of the dimensions, up to two threshold tiers and a request fee."""
    rates: dict[str, float] = {key: draw(rates_) for key in OPTIONAL if draw(st.booleans())}
    for threshold in draw(st.lists(st.sampled_from(["128k", "200k", "272k", "1000"]), max_size=2, unique=True)):
        for key in pf.TIERED_FIELDS:
            if draw(st.booleans()):
                rates[f"{key}_above_{threshold}_tokens"] = draw(rates_)
    if draw(st.booleans()):
        rates[pf.REQUEST] = draw(st.floats(min_value=0, max_value=0.05))
    return Price(draw(rates_), draw(rates_), None, "deployment", rates)


@st.composite
def usages(draw: st.DrawFn) -> dict[str, Any]:
    """A usage block as a provider sends it, details possibly overlapping (LiteLLM's edge cases)."""
    prompt_details = {
        key: draw(small_)
        for key in ("cached_tokens", "audio_tokens", "image_tokens", "text_tokens")
        if draw(st.booleans())
    }
    completion_details = {
        key: draw(small_)
        for key in ("reasoning_tokens", "audio_tokens", "image_tokens", "text_tokens")
        if draw(st.booleans())
    }
    if draw(st.booleans()):  # Anthropic's split of cache writes by lifetime
        prompt_details["cache_creation_token_details"] = {
            "ephemeral_5m_input_tokens": draw(small_),
            "ephemeral_1h_input_tokens": draw(small_),
        }
    usage: dict[str, Any] = {"prompt_tokens": draw(tokens_), "completion_tokens": draw(tokens_)}
    if prompt_details:
        usage["prompt_tokens_details"] = prompt_details
    if completion_details:
        usage["completion_tokens_details"] = completion_details
    if draw(st.booleans()):
        usage["cache_creation_input_tokens"] = draw(small_)
    return usage


@settings(max_examples=600, deadline=None)
@given(price=prices(), raw=usages())
def test_agrees_with_litellm_and_adds_up(price: Price, raw: dict[str, Any]) -> None:
    usage = Usage(**raw)
    prompt_usd, completion_usd = generic_cost_per_token(
        model="any",
        usage=usage,
        custom_llm_provider="openai",
        model_info=dict(price.rates),  # type: ignore[arg-type]
    )
    read = token_usage(usage)
    breakdown = compute_cost(price, read)
    prompt_usd = _as_litellm_109_bills(prompt_usd, read, price.atto_tier(usage.prompt_tokens))

    attos = breakdown.components_attos
    # LiteLLM bills no per-request fee: compare the rest, in floats (LiteLLM's arithmetic).
    ours_prompt = attos_to_usd(breakdown.prompt_attos - attos["request"])
    assert math.isclose(ours_prompt, prompt_usd, rel_tol=1e-9, abs_tol=_price_rounding_slack(raw))
    assert math.isclose(attos_to_usd(breakdown.completion_attos), completion_usd, rel_tol=1e-9, abs_tol=1e-12)
    # Every component is an exact integer of atto-dollars: they add up to the total exactly.
    assert sum(attos.values()) == breakdown.total_attos
    assert breakdown.prompt_attos + breakdown.completion_attos == breakdown.total_attos
    assert all(value >= 0 for value in attos.values())
    # The total is each token at its integer price; the counter takes it rounded half to even.
    expected = sum(breakdown.tokens[n] * price.atto_tier(usage.prompt_tokens)[r] for n, r in _INPUT_RATES)
    assert breakdown.prompt_attos - attos["request"] == expected
    assert breakdown.total_units == round(Fraction(breakdown.total_attos, ATTOS_PER_UNIT))
    assert breakdown.total_usd == breakdown.total_attos / 10**18


def _as_litellm_109_bills(prompt_usd: float, read: TokenUsage, rates: Mapping[str, int]) -> float:
    """LiteLLM's prompt cost as 1.109 on bills it: before, it dropped the writes its split does not cover."""
    version = litellm_version()
    if version is not None and version < UNATTRIBUTED_WRITES_BILLED_SINCE:
        prompt_usd += attos_to_usd(_unattributed_writes(read) * rates[pf.CACHE_CREATION])
    return prompt_usd


def _litellm_110_on() -> bool:
    version = litellm_version()
    return version is not None and version >= Version("1.110.0")


def _threshold_1h_writes(price: Price, usage: Usage) -> bool:
    """Whether one-hour cache writes meet a threshold price of the file (``..._above_1hr_above_N_tokens``)."""
    details = getattr(usage.prompt_tokens_details, "cache_creation_token_details", None)
    writes = getattr(details, "ephemeral_1h_input_tokens", None) or 0
    return writes > 0 and any("_above_1hr_above_" in key for key in price.rates)


def _unattributed_writes(usage: TokenUsage) -> int:
    """Cache writes that a lifetime split, when there is one, does not cover."""
    if usage.cache_creation_5m_tokens is None and usage.cache_creation_1h_tokens is None:
        return 0
    split = (usage.cache_creation_5m_tokens or 0) + (usage.cache_creation_1h_tokens or 0)
    return max(usage.cache_creation_tokens - split, 0)


def test_cache_writes_the_lifetime_split_does_not_cover_bill_at_the_base_write_rate() -> None:
    price = Price(1e-6, 4e-6, None, "deployment", {pf.CACHE_CREATION: 2e-6, pf.CACHE_CREATION_1H: 3e-6})
    usage = Usage(
        prompt_tokens=1_000,
        completion_tokens=0,
        cache_creation_input_tokens=600,
        prompt_tokens_details={
            "cache_creation_token_details": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}
        },
    )
    breakdown = compute_cost(price, token_usage(usage))
    assert breakdown.tokens["cache_creation"] == 100 + 300  # the 5-minute writes and the 300 unattributed
    assert breakdown.tokens["cache_creation_1h"] == 200
    assert breakdown.component_usd("cache_creation") == 0.0008
    assert breakdown.component_usd("cache_creation_1h") == 0.0006


_INPUT_RATES = (
    ("input", pf.INPUT),
    ("cache_read", pf.CACHE_READ),
    ("cache_creation", pf.CACHE_CREATION),
    ("cache_creation_1h", pf.CACHE_CREATION_1H),
    ("input_audio", pf.INPUT_AUDIO),
    ("input_image", pf.INPUT_IMAGE),
)


def test_issue_example_cache_read_split_adds_up() -> None:
    # 10,000 prompt tokens, 8,000 of them from the cache, 1,000 completion tokens.
    price = Price(1e-6, 4e-6, None, "deployment", {pf.CACHE_READ: 1e-7})
    usage = token_usage(
        Usage(prompt_tokens=10_000, completion_tokens=1_000, prompt_tokens_details={"cached_tokens": 8_000})
    )
    breakdown = compute_cost(price, usage)
    assert breakdown.component_usd("input") == 0.002  # 2,000 uncached x $1/M
    assert breakdown.component_usd("cache_read") == 0.0008  # 8,000 x $0.1/M
    assert breakdown.component_usd("output") == 0.004
    assert (breakdown.prompt_attos, breakdown.completion_attos) == (2_800 * 10**12, 4_000 * 10**12)
    assert breakdown.total_units == 6_800_000


def test_a_cheap_call_is_exact_and_reaches_the_counter_rounded_half_to_even() -> None:
    # The issue's example: 7 + 8 tokens at $1e-7 is $1.5e-6 (rounded to micro-dollars it was $2e-6),
    # and 24 embedding tokens at $2e-8 are $4.8e-7 (it was $0).
    chat = compute_cost(Price(1e-7, 1e-7, None, "deployment"), TokenUsage(7, 8))
    assert (chat.total_usd, chat.total_units) == (1.5e-6, 1_500)
    embedding = compute_cost(Price(2e-8, 0.0, None, "deployment"), TokenUsage(24, 0))
    assert (embedding.total_usd, embedding.total_units) == (4.8e-7, 480)
    # Three components of 0.4 nano-dollars: exact in atto-dollars, 1.2 units reach a counter as 1.
    tiny = compute_cost(
        Price(4e-10, 4e-10, None, "deployment", {pf.REASONING: 4e-10}), TokenUsage(1, 2, reasoning_tokens=1)
    )
    assert [tiny.components_attos[name] for name in ("input", "output", "reasoning")] == [4 * 10**8] * 3
    assert (tiny.total_attos, tiny.total_units) == (12 * 10**8, 1)
    assert set(tiny.components_attos) == set(COMPONENTS)
    half = compute_cost(Price(2.5e-9, 0.0, None, "deployment"), TokenUsage(1, 0))
    assert half.total_units == 2  # 2.5 units: half to even


def test_threshold_price_applies_past_the_threshold_only() -> None:
    price = Price(1.25e-6, 1e-5, None, "deployment", {"input_cost_per_token_above_200k_tokens": 2.5e-6})
    at = compute_cost(price, TokenUsage(200_000, 0))
    past = compute_cost(price, TokenUsage(200_001, 0))
    assert at.total_usd == 0.25
    assert past.total_usd == 0.5000025  # every prompt token at the higher price (200,001 x $2.5/M)


def test_xai_bills_the_higher_tier_at_the_threshold() -> None:
    rates = {"input_cost_per_token_above_128k_tokens": 4e-6}
    price = Price(2e-6, 1e-5, None, "deployment", rates, inclusive_threshold=True)
    assert compute_cost(price, TokenUsage(128_000, 0)).total_usd == 0.512


def test_request_fee_is_a_prompt_side_component() -> None:
    price = Price(1e-6, 1e-6, None, "deployment", {pf.REQUEST: 0.005})
    breakdown = compute_cost(price, TokenUsage(1_000, 0))
    assert breakdown.component_usd("request") == 0.005
    assert breakdown.prompt_attos == breakdown.total_attos == 6 * 10**15


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {
                "prompt_tokens": 1_000,
                "completion_tokens": 50,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 700,
            },
            TokenUsage(1_000, 50, cache_read_tokens=700, cache_creation_tokens=200),
            id="anthropic-mapping",
        ),
        pytest.param(
            {
                "prompt_tokens": 1_000,
                "completion_tokens": 50,
                "prompt_tokens_details": {"cached_tokens": 500, "audio_tokens": 10},
                "completion_tokens_details": {"reasoning_tokens": 40},
            },
            TokenUsage(1_000, 50, cache_read_tokens=500, prompt_audio_tokens=10, reasoning_tokens=40),
            id="openai-mapping",
        ),
    ],
)
def test_token_usage_reads_provider_mappings(raw: dict[str, Any], expected: TokenUsage) -> None:
    assert token_usage(raw) == expected
    assert token_usage(Usage(**raw)) == expected


def test_provider_cost_from_usage_or_proxy_header() -> None:
    assert provider_reported_cost({"cost": 0.0123}, {}, "openrouter") == 0.0123
    # LiteLLM writes its own computed cost into other providers' stream usage: not a provider's figure.
    assert provider_reported_cost({"cost": 0.0123}, {}, "openai") is None
    header = {"additional_headers": {"llm_provider-x-litellm-response-cost": "0.5"}}
    assert provider_reported_cost(None, header, "openai") == 0.5
    assert provider_reported_cost(None, {"additional_headers": {"x-litellm-response-cost": "nan"}}, "openai") is None
    assert provider_reported_cost({"cost": -1}, {}, "openrouter") is None
    assert provider_reported_cost(None, {}, None) is None


def test_the_provider_cost_litellm_kept_aside_wins_over_its_own_bill_in_usage() -> None:
    # LiteLLM 1.109 on: a stream's last chunk carries LiteLLM's bill in usage.cost, OpenRouter's aside.
    assert provider_reported_cost({"cost": 0.018}, {UPSTREAM_USAGE_COST: 0.03}, "openrouter") == 0.03
    assert provider_reported_cost({"cost": 0.018}, {UPSTREAM_USAGE_COST: None}, "openrouter") is None
    # Before 1.109 (no such key) usage.cost is the provider's own figure.
    assert provider_reported_cost({"cost": 0.03}, {}, "openrouter") == 0.03


def test_settle_cost_follows_the_policy_and_flags_mismatch() -> None:
    close = settle_cost(0.0100, 0.0101, prefer="computed", tolerance_usd=1e-6, tolerance_ratio=0.02)
    assert (close.usd, close.source, close.mismatch) == (0.0100, "computed", False)
    far = settle_cost(0.0100, 0.0200, prefer="provider", tolerance_usd=1e-6, tolerance_ratio=0.02)
    assert (far.usd, far.source, far.mismatch) == (0.0200, "provider", True)
    none = settle_cost(0.0100, None, prefer="provider", tolerance_usd=1e-6, tolerance_ratio=0.02)
    assert (none.usd, none.source, none.mismatch) == (0.0100, "computed", False)
    unpriced = settle_cost(None, 0.3, prefer="computed", tolerance_usd=1e-6, tolerance_ratio=0.02)
    assert (unpriced.usd, unpriced.source) == (0.3, "provider")


@pytest.mark.parametrize(
    ("section", "field"),
    [({"source": "invoice"}, "cost.source"), ({"tolerance_ratio": -0.1}, "cost.tolerance_ratio")],
)
def test_the_policy_cost_section_is_checked(tmp_path: Path, section: dict[str, Any], field: str) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(json.dumps({"cost": section}))
    with pytest.raises(ConfigError, match=field):
        load_policy(path)
    path.write_text(json.dumps({"cost": {"source": "provider"}}))
    assert load_policy(path).cost.source == "provider"


@st.composite
def tiered_prices(draw: st.DrawFn) -> Price:
    """A price (:func:`prices`) plus any service tier's own prices, flat and above thresholds."""
    base = draw(prices())
    rates = dict(base.rates)
    for tier in draw(st.lists(st.sampled_from(pf.SERVICE_TIERS), max_size=2, unique=True)):
        for key in pf.SERVICE_TIERED_FIELDS:
            if draw(st.booleans()):
                rates[f"{key}_{tier}"] = draw(rates_)
        for threshold in draw(st.lists(st.sampled_from(["200k", "272k"]), max_size=1)):
            for key in pf.TIERED_FIELDS:
                if key != pf.CACHE_CREATION_1H and draw(st.booleans()):
                    rates[f"{key}_above_{threshold}_tokens_{tier}"] = draw(rates_)
    return Price(base.input_per_token, base.output_per_token, None, "deployment", rates)


@settings(max_examples=600, deadline=None)
@given(price=tiered_prices(), raw=usages(), tier=st.sampled_from([None, *pf.SERVICE_TIERS, "fast", "default"]))
def test_a_service_tier_is_billed_as_litellm_bills_it(price: Price, raw: dict[str, Any], tier: str | None) -> None:
    usage = Usage(**raw)
    # LiteLLM 1.110 on a tier prices a one-hour cache write past a token threshold at the input
    # rate, ignoring the file's threshold price for it. costrouter follows the published threshold
    # price, as LiteLLM 1.106 does: a cache write is never billed at the input rate by a provider
    # (Anthropic bills one-hour writes at twice the input price), and a budget must not under-count.
    # So on 1.110 that corner is no agreement to test; docs/cost.md names the divergence.
    assume(not (_litellm_110_on() and tier is not None and _threshold_1h_writes(price, usage)))
    prompt_usd, completion_usd = generic_cost_per_token(
        model="any",
        usage=usage,
        custom_llm_provider="openai",
        model_info=dict(price.rates),  # type: ignore[arg-type]
        service_tier=tier,
    )
    billed = call_tier(tier, None)
    breakdown = compute_cost(price, replace(token_usage(usage), service_tier=billed))
    rates = price.atto_tier(usage.prompt_tokens, billed)
    prompt_usd = _as_litellm_109_bills(prompt_usd, token_usage(usage), rates)
    ours_prompt = attos_to_usd(breakdown.prompt_attos - breakdown.components_attos["request"])
    assert math.isclose(ours_prompt, prompt_usd, rel_tol=1e-9, abs_tol=_price_rounding_slack(raw))
    assert math.isclose(attos_to_usd(breakdown.completion_attos), completion_usd, rel_tol=1e-9, abs_tol=1e-12)
    assert sum(breakdown.components_attos.values()) == breakdown.total_attos


class _SlottedDetails:
    __slots__ = ("cached_tokens",)

    def __init__(self, cached_tokens: object) -> None:
        self.cached_tokens = cached_tokens


class _PlainUsage:
    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            _PlainUsage(prompt_tokens=100, completion_tokens=5.0, prompt_tokens_details=_SlottedDetails(30)),
            TokenUsage(100, 5, cache_read_tokens=30),
            id="plain-objects",
        ),
        pytest.param(
            Usage(prompt_tokens=100, completion_tokens=5, cache_read_input_tokens=40),
            TokenUsage(100, 5, cache_read_tokens=40),
            id="pydantic-extra-field",
        ),
        pytest.param(
            {"prompt_tokens": True, "completion_tokens": "7", "prompt_tokens_details": {"cached_tokens": [3]}},
            TokenUsage(0, 0),
            id="non-numbers-read-as-zero",
        ),
        pytest.param(None, TokenUsage(0, 0), id="no-usage"),
    ],
)
def test_token_usage_reads_any_shape_without_raising(usage: object, expected: TokenUsage) -> None:
    assert token_usage(usage) == expected


def test_openinference_cost_details_sum_the_components_they_name() -> None:
    rates = {pf.CACHE_READ: 1e-7, pf.CACHE_CREATION: 2e-6, pf.CACHE_CREATION_1H: 3e-6, pf.INPUT_AUDIO: 5e-6}
    price = Price(1e-6, 4e-6, None, "deployment", {**rates, pf.REASONING: 6e-6, pf.OUTPUT_AUDIO: 7e-6})
    usage = TokenUsage(
        5_000,
        900,
        cache_read_tokens=1_000,
        cache_creation_tokens=600,
        cache_creation_5m_tokens=100,
        cache_creation_1h_tokens=200,
        prompt_audio_tokens=50,
        reasoning_tokens=300,
        completion_audio_tokens=20,
        completion_text_tokens=580,
    )
    breakdown = compute_cost(price, usage)
    attributes = breakdown_attributes(breakdown)
    for name, components in OPENINFERENCE_COST.items():
        assert attributes[name] == sum(breakdown.components_attos[c] for c in components) / 10**18, name
    assert all(attributes[name] > 0 for name in OPENINFERENCE_COST)


def test_every_token_component_is_written_as_its_cost() -> None:
    price = Price(1e-6, 4e-6, None, "deployment", {pf.CACHE_READ: 1e-7, pf.REQUEST: 1e-3})
    breakdown = compute_cost(price, TokenUsage(5_000, 900, cache_read_tokens=1_000))
    attributes = breakdown_attributes(breakdown)
    written = {
        key.removeprefix("router.cost."): value for key, value in attributes.items() if key.startswith("router.cost.")
    }
    assert written == {name: attos / 10**18 for name, attos in breakdown.components_attos.items() if name not in UNITS}
