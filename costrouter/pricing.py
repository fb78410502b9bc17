"""Prices per deployment, the worst-case estimate before a call, the actual cost after it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import litellm

from costrouter.config import Deployment, RouterConfig

PriceSource = Literal["config", "price_map", "default"]


@dataclass(frozen=True)
class Price:
    """USD per token for one deployment, and its largest possible output."""

    input_per_token: float
    output_per_token: float
    max_output_tokens: int | None
    source: PriceSource

    def cost(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, float]:
        """``(prompt cost, completion cost)`` in USD."""
        return prompt_tokens * self.input_per_token, completion_tokens * self.output_per_token


def _price_map_entry(model: str) -> Mapping[str, Any] | None:
    try:
        info = litellm.get_model_info(model)
    except Exception:  # LiteLLM raises a bare Exception for unmapped models
        return None
    return info


def deployment_price(deployment: Deployment) -> Price | None:
    """The file's prices, else the public price map's, else ``None`` (unpriced)."""
    entry = _price_map_entry(deployment.model)
    map_max_output = None
    if entry is not None:
        map_max_output = entry.get("max_output_tokens") or entry.get("max_tokens")
    max_output = deployment.max_output_tokens or map_max_output
    if deployment.input_cost_per_token is not None and deployment.output_cost_per_token is not None:
        return Price(deployment.input_cost_per_token, deployment.output_cost_per_token, max_output, "config")
    if entry is not None and entry.get("input_cost_per_token") is not None:
        return Price(
            float(entry["input_cost_per_token"]),
            float(entry.get("output_cost_per_token") or 0.0),
            max_output,
            "price_map",
        )
    return None


@dataclass(frozen=True)
class PriceBook:
    """Every deployment's price and which deployments each group holds."""

    prices: Mapping[str, Price | None]
    group_deployments: Mapping[str, Sequence[str]]

    @classmethod
    def from_config(cls, config: RouterConfig) -> PriceBook:
        """Look every deployment's price up once, when the router is built."""
        prices: dict[str, Price | None] = {}
        groups: dict[str, list[str]] = {}
        for group, deployment_id, deployment in config.deployments():
            prices[deployment_id] = deployment_price(deployment)
            groups.setdefault(group, []).append(deployment_id)
        return cls(prices, groups)

    def unpriced(self) -> list[str]:
        """Deployments with no price in the file nor in the price map."""
        return [deployment_id for deployment_id, price in self.prices.items() if price is None]

    def worst_case(self, groups: Iterable[str], default: Price | None) -> Price:
        """The highest input and output price, and the largest output, over ``groups``.

        An unpriced deployment counts at ``default`` (a policy price); with no default
        it counts as free, which the router reports at build time.
        """
        input_price = output_price = 0.0
        max_output: int | None = None
        for group in groups:
            for deployment_id in self.group_deployments.get(group, ()):
                price = self.prices.get(deployment_id) or default
                if price is None:
                    continue
                input_price = max(input_price, price.input_per_token)
                output_price = max(output_price, price.output_per_token)
                if price.max_output_tokens is not None:
                    max_output = max(max_output or 0, price.max_output_tokens)
        return Price(input_price, output_price, max_output, "config")


def output_cap(requested: int | None, worst: Price, policy_default: int) -> int:
    """The most output tokens a call can produce: ``max_tokens``, else a capped default."""
    if requested is not None:
        return requested
    if worst.max_output_tokens is not None:
        return min(policy_default, worst.max_output_tokens)
    return policy_default


def estimate_usd(prompt_tokens: int, max_output_tokens: int, worst: Price) -> float:
    """Worst-case cost: every prompt token and every possible output token at the top prices."""
    return prompt_tokens * worst.input_per_token + max_output_tokens * worst.output_per_token


def response_cost_usd(response: Any) -> float | None:
    """The cost LiteLLM computed for ``response`` with the deployment's own prices."""
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    return float(cost) if isinstance(cost, (int, float)) else None
