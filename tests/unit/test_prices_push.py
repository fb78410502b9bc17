"""Which prices a push sends, and the conflicts it refuses to guess at."""

from __future__ import annotations

from typing import Any

import pytest

from costrouter.config.groups import parse_router_config
from costrouter.errors import ConfigError
from costrouter.prices_push import model_prices, push_prices
from costrouter.prices_push.phoenix import name_pattern, phoenix_rates


def _deployment(deployment_id: str, model: str, input_price: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": deployment_id,
        "model": model,
        "input_cost_per_token": input_price,
        "output_cost_per_token": 2 * input_price,
        **extra,
    }


def test_deployments_sharing_a_model_name_at_one_price_push_once() -> None:
    config = parse_router_config(
        {
            "groups": {
                "a": {"deployments": [_deployment("a-1", "openai/gpt-x", 1e-6)]},
                "b": {"deployments": [_deployment("b-1", "azure/gpt-x", 1e-6)]},
            }
        }
    )
    prices, conflicts = model_prices(config)
    assert conflicts == []
    assert [(price.model, price.deployments) for price in prices] == [("gpt-x", ("a-1", "b-1"))]


def test_different_prices_for_one_model_name_are_named_with_the_way_out() -> None:
    config = parse_router_config(
        {
            "groups": {
                "a": {"deployments": [_deployment("a-1", "openai/gpt-x", 1e-6)]},
                "b": {"deployments": [_deployment("b-1", "azure/gpt-x", 3e-6)]},
            }
        }
    )
    prices, conflicts = model_prices(config)
    assert prices == []
    (conflict,) = conflicts
    assert conflict.model == "gpt-x"
    assert "a-1, b-1" in conflict.message()
    assert "model_name" in conflict.message()


def test_a_distinct_model_name_resolves_the_conflict() -> None:
    config = parse_router_config(
        {
            "groups": {
                "a": {"deployments": [_deployment("a-1", "openai/gpt-x", 1e-6)]},
                "b": {"deployments": [_deployment("b-1", "azure/gpt-x", 3e-6, model_name="gpt-x-azure")]},
            }
        }
    )
    prices, conflicts = model_prices(config)
    assert conflicts == []
    assert sorted(price.model for price in prices) == ["gpt-x", "gpt-x-azure"]


def test_phoenix_token_prices_and_pattern() -> None:
    ours = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "cache_read_input_token_cost": 1e-7}
    rates = phoenix_rates(ours)
    assert rates == {"prompt.input": 1e-6, "completion.output": 2e-6, "prompt.cache_read": 1e-7}
    assert name_pattern("gpt-4.1") == r"^gpt\-4\.1$"


def test_an_unknown_target_is_a_config_error() -> None:
    config = parse_router_config({"groups": {"a": {"deployments": [_deployment("a-1", "openai/gpt-x", 1e-6)]}}})
    with pytest.raises(ConfigError, match="unknown target 'nope'; known: langfuse, phoenix"):
        push_prices(config, "nope", "http://127.0.0.1:9")


def test_langfuse_needs_no_push_and_says_why() -> None:
    config = parse_router_config({"groups": {"a": {"deployments": [_deployment("a-1", "openai/gpt-x", 1e-6)]}}})
    plan = push_prices(config, "langfuse", "http://127.0.0.1:9", apply=True)
    assert plan.pending == []
    assert "gen_ai.usage.cost" in plan.render()
