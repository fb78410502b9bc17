"""Reachable groups over fallback chains: computed once, equal to walking the chain per group."""

from __future__ import annotations

import random

import pytest

from costrouter.config.groups import parse_router_config
from costrouter.config.reachability import components, reachable_group_sets
from costrouter.pricing.prices import Price, PriceBook


def config_of(fallbacks: dict[str, list[str]], prices: dict[str, tuple[float, float]]) -> dict[str, object]:
    return {
        "groups": {
            name: {
                "deployments": [
                    {
                        "model": f"openai/{name}",
                        "input_cost_per_token": prices[name][0],
                        "output_cost_per_token": prices[name][1],
                        "max_output_tokens": int(prices[name][0] * 1e9) + 1,
                    }
                ],
                "fallbacks": targets,
            }
            for name, targets in fallbacks.items()
        }
    }


def test_components_of_a_ring_and_a_tail() -> None:
    component_of, found = components({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": []})
    assert component_of["a"] == component_of["b"] == component_of["c"]
    assert component_of["d"] > component_of["a"]  # a successor's component is numbered first
    assert sorted(map(sorted, found)) == [["a", "b", "c"], ["d"], ["e"]]


def test_a_ring_of_ten_thousand_groups_is_one_component() -> None:
    size = 10_000
    component_of, found = components({f"g{i}": [f"g{(i + 1) % size}"] for i in range(size)})
    assert len(found) == 1
    assert len(component_of) == size


@pytest.mark.parametrize("seed", range(20))
def test_reachable_sets_equal_walking_the_fallbacks(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"g{i}" for i in range(30)]
    fallbacks = {name: rng.sample(names, rng.randint(0, 3)) for name in names}
    for targets in fallbacks.values():
        targets[:] = list(dict.fromkeys(targets))
    for name, targets in fallbacks.items():
        if name in targets:
            targets.remove(name)
    prices = {name: (rng.uniform(1e-7, 1e-5), rng.uniform(1e-7, 1e-5)) for name in names}
    config = parse_router_config(config_of(fallbacks, prices))
    book = PriceBook.from_config(config)
    fast = reachable_group_sets(config.fallback_graph())
    for name in names:
        assert fast[name] == frozenset(config.reachable_groups(name))
        assert book.worst_case(fast[name], None).max_output_tokens == (
            book.worst_case(config.reachable_groups(name), None).max_output_tokens
        )


def test_reachable_groups_can_stop_early() -> None:
    config = parse_router_config(config_of({"a": ["b"], "b": ["c"], "c": ["a"]}, dict.fromkeys("abc", (1e-6, 1e-6))))
    assert config.reachable_groups("a") == ["a", "b", "c"]
    assert config.reachable_groups("b", limit=2) == ["b", "c"]
    assert config.reachable_groups("nope") == []


def test_unpriced_deployments_count_at_the_default() -> None:
    config = parse_router_config({"groups": {"a": {"deployments": [{"model": "openai/no-such-model-xyz"}]}}})
    book = PriceBook.from_config(config)
    default = Price(1.0, 2.0, None, "default")
    reach = reachable_group_sets(config.fallback_graph())
    assert book.worst_case(reach["a"], default).prices == (default,)
