"""The price model: where each price comes from, range checks, and the estimate as an upper bound."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import litellm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costrouter.config import price_fields as pf
from costrouter.config.groups import parse_router_config
from costrouter.errors import ConfigError
from costrouter.money import usd_to_units_ceil
from costrouter.pricing.cost import TokenUsage, compute_cost
from costrouter.pricing.prices import Price, PriceBook, WorstCase, deployment_price, estimate_usd
from costrouter.pricing.service_tiers import servable_tiers
from costrouter.routing.building import build_model_list
from tests.unit.test_cost import prices, tiered_prices


def one(deployment: dict[str, Any]) -> dict[str, Any]:
    return {"groups": {"g": {"deployments": [{"id": "d", **deployment}]}}}


def price_of(deployment: dict[str, Any]) -> Price:
    config = parse_router_config(one(deployment))
    price = deployment_price(config.groups["g"].deployments[0])
    assert price is not None
    return price


def test_precedence_top_level_then_litellm_params_then_model_info_then_price_map() -> None:
    price = price_of(
        {
            "model": "openai/gpt-4o-mini",
            "input_cost_per_token": 1e-6,
            "litellm_params": {"input_cost_per_token": 2e-6, "output_cost_per_token": 3e-6},
            "model_info": {"output_cost_per_token": 4e-6, "cache_creation_input_token_cost": 5e-6},
        }
    )
    assert price.rates[pf.INPUT] == 1e-6
    assert price.sources[pf.INPUT] == "deployment"
    assert price.rates[pf.OUTPUT] == 3e-6
    assert price.sources[pf.OUTPUT] == "litellm_params"
    assert price.rates[pf.CACHE_CREATION] == 5e-6
    assert price.sources[pf.CACHE_CREATION] == "model_info"
    # Field by field: the cache read price the file leaves out comes from the public map.
    assert price.rates[pf.CACHE_READ] == 7.5e-08
    assert price.sources[pf.CACHE_READ] == "price_map"


def test_every_dimension_is_listed_with_its_source() -> None:
    price = price_of({"model": "openai/unknown-model", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6})
    rows = {key: (value, source) for key, value, source in price.dimensions()}
    assert rows[pf.INPUT] == (1e-6, "deployment")
    assert rows[pf.CACHE_READ] == (1e-6, "derived")  # no cache price: billed as input, as LiteLLM does
    assert rows[pf.REASONING] == (2e-6, "derived")
    assert rows[pf.REQUEST] == (0.0, "derived")


def test_proxy_model_info_prices_are_read() -> None:
    proxy = {
        "model_list": [
            {
                "model_name": "g",
                "litellm_params": {"model": "openai/gpt-4o-mini"},
                "model_info": {"id": "d", "input_cost_per_token": 2.3e-05, "output_cost_per_token": 4.6e-05},
            }
        ]
    }
    config = parse_router_config(proxy)
    price = deployment_price(config.groups["g"].deployments[0])
    assert price is not None
    assert (price.input_per_token, price.sources[pf.INPUT]) == (2.3e-05, "model_info")


def test_gemini_threshold_prices_come_from_the_map() -> None:
    price = price_of({"model": "gemini/gemini-2.5-pro"})
    assert price.thresholds == (200_000,)
    assert price.tier(200_001)[pf.INPUT] == 2.5e-06
    assert price.tier(200_000)[pf.INPUT] == 1.25e-06


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        ({"input_cost_per_token": 1e-6}, "output_cost_per_token: the deployment sets input_cost_per_token but not"),
        (
            {"litellm_params": {"output_cost_per_token": 1e-6}},
            "sets output_cost_per_token but not input_cost_per_token",
        ),
        ({"input_cost_per_token": -1e-6, "output_cost_per_token": 1e-6}, "input_cost_per_token"),
        ({"input_cost_per_token": 3.0, "output_cost_per_token": 1e-6}, "input_cost_per_token"),
        ({"input_cost_per_token": float("inf"), "output_cost_per_token": 1e-6}, "input_cost_per_token"),
        (
            {"litellm_params": {"cache_read_input_token_cost": 5, "input_cost_per_token": 1e-6}},
            "litellm_params.cache_read_input_token_cost: 5 is above the sane limit",
        ),
        ({"model_info": {"input_cost_per_token": "lots"}}, "model_info.input_cost_per_token: must be a number"),
        ({"input_cost_per_request": 1000}, "input_cost_per_request"),
    ],
)
def test_bad_prices_are_config_errors(deployment: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_router_config(one({"model": "openai/m", **deployment}), "router.yaml")


def test_an_incomplete_price_may_take_the_rest_from_the_map_when_the_file_says_so() -> None:
    price = price_of({"model": "openai/gpt-4o-mini", "input_cost_per_token": 1e-6, "prices_from_price_map": True})
    assert (price.input_per_token, price.output_per_token) == (1e-6, 6e-07)
    assert price.sources[pf.OUTPUT] == "price_map"


def test_the_router_gets_every_resolved_price() -> None:
    config = parse_router_config(
        one(
            {
                "model": "openai/m",
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "cache_read_input_token_cost": 1e-7,
            }
        )
    )
    (entry,) = build_model_list(config)
    assert entry["model_info"]["id"] == "d"
    assert entry["model_info"][pf.CACHE_READ] == 1e-7
    assert entry["model_info"][pf.INPUT] == 1e-6


@st.composite
def consistent_usages(draw: st.DrawFn, prompt_tokens: int, max_output: int) -> TokenUsage:
    """A usage the provider may report for a prompt of ``prompt_tokens`` within ``max_output``."""
    completion = draw(st.integers(0, max_output))
    reasoning = draw(st.integers(0, completion))
    out_audio = draw(st.integers(0, completion - reasoning))
    out_image = draw(st.integers(0, completion - reasoning - out_audio))
    cached = draw(st.integers(0, prompt_tokens))
    creation = draw(st.integers(0, prompt_tokens - cached))
    audio = draw(st.integers(0, prompt_tokens - cached - creation))
    image = draw(st.integers(0, prompt_tokens - cached - creation - audio))
    return TokenUsage(
        prompt_tokens,
        completion,
        cache_read_tokens=cached,
        cache_creation_tokens=creation,
        prompt_audio_tokens=audio,
        prompt_image_tokens=image,
        reasoning_tokens=reasoning,
        completion_audio_tokens=out_audio,
        completion_image_tokens=out_image,
    )


@settings(max_examples=400, deadline=None)
@given(data=st.data(), price=prices(), prompt=st.integers(0, 400_000), cap=st.integers(1, 100_000))
def test_the_estimate_is_an_upper_bound_under_every_dimension(
    data: st.DataObject, price: Price, prompt: int, cap: int
) -> None:
    usage = data.draw(consistent_usages(prompt, cap))
    other = data.draw(prices())
    hold = usd_to_units_ceil(estimate_usd(prompt, cap, WorstCase((price, other), None)))
    assert hold >= compute_cost(price, usage).total_units
    assert hold >= compute_cost(other, usage).total_units


def test_worst_case_counts_unpriced_deployments_at_the_default() -> None:
    config = parse_router_config(one({"model": "openai/no-such-model-anywhere"}))
    book = PriceBook.from_config(config)
    assert book.unpriced() == ["d"]
    worst = book.worst_case(["g"], Price(1e-5, 3e-5, None, "default"))
    assert estimate_usd(100, 10, worst) == pytest.approx(100 * 1e-5 + 10 * 3e-5)


def test_base_model_prices_the_deployment_litellm_params_first() -> None:
    both = price_of(
        {
            "model": "azure/o_series/prod",
            "litellm_params": {"base_model": "o3"},  # no provider: the deployment's, as LiteLLM prefixes it
            "model_info": {"base_model": "azure/o1"},
        }
    )
    assert both.base_model == "azure/o3"
    assert both.rates[pf.INPUT] == litellm.model_cost["azure/o3"][pf.INPUT]
    assert both.sources[pf.INPUT] == "price_map"
    assert not both.suspect_free
    info_only = price_of({"model": "azure/o_series/prod", "model_info": {"base_model": "azure/o1"}})
    assert (info_only.base_model, info_only.rates[pf.OUTPUT]) == ("azure/o1", litellm.model_cost["azure/o1"][pf.OUTPUT])


def test_the_files_own_prices_come_before_the_base_model() -> None:
    price = price_of(
        {
            "model": "azure/o_series/prod",
            "input_cost_per_token": 1e-6,
            "prices_from_price_map": True,
            "model_info": {"base_model": "azure/o1"},
        }
    )
    assert price.rates[pf.INPUT] == 1e-6
    assert price.rates[pf.OUTPUT] == litellm.model_cost["azure/o1"][pf.OUTPUT]


@pytest.mark.parametrize(
    ("deployment", "suspect"),
    [
        ({"model": "azure/o_series/o1"}, True),  # LiteLLM makes up a $0 entry for the name
        ({"model": "azure/o_series/o1", "model_info": {"base_model": "azure/o_series/o1"}}, True),
        ({"model": "ollama/llama3.2"}, False),  # self-hosted: $0 on purpose
        ({"model": "azure/o_series/o1", "input_cost_per_token": 0, "output_cost_per_token": 0}, False),
        ({"model": "azure/o_series/o1", "prices_from_price_map": True}, False),
    ],
)
def test_a_made_up_zero_price_is_suspect(deployment: dict[str, Any], suspect: bool) -> None:
    assert price_of(deployment).suspect_free is suspect


def test_a_base_model_must_be_a_name() -> None:
    with pytest.raises(ConfigError, match="base_model: must be a model name"):
        parse_router_config(one({"model": "azure/x", "model_info": {"base_model": ""}}))


def test_service_tier_prices_come_from_the_map_and_the_file() -> None:
    gpt5 = litellm.model_cost["gpt-5"]
    price = price_of({"model": "openai/gpt-5", "litellm_params": {"output_cost_per_token_flex": 4e-6}})
    assert price.service_tiers == ("flex", "priority")
    assert price.tier(10, "flex")[pf.INPUT] == gpt5["input_cost_per_token_flex"]
    assert price.tier(10, "flex")[pf.OUTPUT] == 4e-6  # the file's, field by field
    assert price.tier(10, "flex")[pf.REASONING] == 4e-6  # a tier pricing output apart prices reasoning alike
    assert price.tier(10, "priority")[pf.CACHE_READ] == gpt5["cache_read_input_token_cost_priority"]
    assert price.tier(10, "balanced") == price.tier(10)  # no price of its own: standard
    rows = {key for key, _, _ in price.dimensions()}
    assert {"input_cost_per_token_flex", "output_cost_per_token_priority"} <= rows


def test_a_tiers_own_threshold_price_applies_above_the_threshold() -> None:
    price = Price(
        1e-6,
        2e-6,
        None,
        "deployment",
        {
            "input_cost_per_token_priority": 2e-6,
            "input_cost_per_token_above_272k_tokens": 3e-6,
            "input_cost_per_token_above_272k_tokens_priority": 5e-6,
        },
    )
    assert price.tier(272_001)[pf.INPUT] == 3e-6
    assert price.tier(272_001, "priority")[pf.INPUT] == 5e-6
    assert price.tier(272_000, "priority")[pf.INPUT] == 2e-6
    assert price.tier(272_001, "flex")[pf.INPUT] == 3e-6


@settings(max_examples=200, deadline=None)
@given(
    price=tiered_prices(),
    data=st.data(),
    requested=st.sampled_from([None, "auto", "flex", "priority", "balanced", "ultrafast"]),
)
def test_the_estimate_covers_every_tier_the_request_may_be_served_at(
    price: Price, data: st.DataObject, requested: str | None
) -> None:
    prompt_tokens = data.draw(st.integers(0, 300_000))
    max_output = data.draw(st.integers(0, 40_000))
    usage = data.draw(consistent_usages(prompt_tokens, max_output))
    bound = usd_to_units_ceil(
        estimate_usd(prompt_tokens, max_output, WorstCase((price,), None), service_tier=requested)
    )
    for served in servable_tiers(requested):
        assert compute_cost(price, replace(usage, service_tier=served)).total_units <= bound


def test_a_file_price_finer_than_an_atto_dollar_is_rounded_and_named() -> None:
    price = Price(1.0000000000000001e-07, 2e-7, None, "deployment", {pf.REQUEST: 1.5e-18})
    assert price.atto_tier(0)[pf.INPUT] == 10**11  # 1e-7 and 1e-22 more: the 1e-22 rounds away
    assert price.atto_tier(0)[pf.REQUEST] == 2  # 1.5 atto-dollars, half to even
    assert set(price.inexact) == {pf.INPUT, pf.REQUEST}
    book = PriceBook({"d": price, "exact": Price(1e-7, 2e-7, None, "deployment")}, {"g": ["d", "exact"]})
    (warning,) = book.inexact()
    assert warning.startswith("deployment d: ")
    assert "more than 18 decimal places" in warning
