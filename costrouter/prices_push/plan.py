"""What a price push would change: the prices per model name, their conflicts, and the diff.

Backends that price spans themselves (Phoenix) match a span to a price by its model name
(``llm.model_name``), so prices are pushed per model name, not per deployment. Two
deployments that share a model name at different prices conflict: neither price is pushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from costrouter.config.groups import RouterConfig
from costrouter.config.redaction import mask_url
from costrouter.money import per_million
from costrouter.otel.models import model_facts

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class ModelPrice:
    """The prices (USD per token, LiteLLM's names) costrouter charges for one model name."""

    model: str
    rates: Mapping[str, float]
    deployments: tuple[str, ...]
    provider: str | None = None
    """LiteLLM's provider of the first deployment (``openai/gpt-4o`` -> ``openai``), if it names one."""


@dataclass(frozen=True)
class Conflict:
    """Deployments that share a model name at different prices."""

    model: str
    rates_by_deployment: Mapping[str, Mapping[str, float]]

    def message(self) -> str:
        """Name the conflict and the way out."""
        names = ", ".join(sorted(self.rates_by_deployment))
        return (
            f"model {self.model!r}: deployments {names} share this model name at different prices, so a "
            f"backend pricing by model name cannot tell them apart; nothing is pushed for it. Give each "
            f"deployment a distinct `model_name` in the router file (spans then carry it as llm.model_name)."
        )


@dataclass(frozen=True)
class Change:
    """One model's entry in a backend: what is there, what costrouter would write."""

    action: Action
    model: str
    before: Mapping[str, float] | None
    after: Mapping[str, float]


@dataclass
class PushPlan:
    """The changes a push makes to one backend, and what it cannot push."""

    target: str
    url: str
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[Change]:
        """Changes that write something (an applied plan has none left)."""
        return [change for change in self.changes if change.action != "unchanged"]

    def render(self) -> str:
        """A diff a person reads before ``--apply``: ``+`` create, ``~`` update, ``=`` unchanged."""
        lines = [f"{self.target} at {mask_url(self.url)}:"]
        marks = {"create": "+", "update": "~", "unchanged": "="}
        for change in self.changes:
            lines.append(f"  {marks[change.action]} {change.model}")
            keys = sorted(set(change.after) | set(change.before or {}))
            for key in keys:
                old = (change.before or {}).get(key)
                new = change.after.get(key)
                if change.action == "update" and old != new:
                    lines.append(f"      {key}: {_per_million(old)} -> {_per_million(new)} USD/1M")
                elif change.action == "create":
                    lines.append(f"      {key}: {_per_million(new)} USD/1M")
        lines.extend(f"  ! {conflict.message()}" for conflict in self.conflicts)
        lines.extend(f"  note: {note}" for note in self.notes)
        if not self.changes and not self.conflicts and not self.notes:
            lines.append("  nothing to push")
        return "\n".join(lines)


def _per_million(value: float | None) -> str:
    return "-" if value is None else f"{per_million(value):.6g}"


def model_prices(config: RouterConfig) -> tuple[list[ModelPrice], list[Conflict]]:
    """Every priced deployment's prices grouped by the model name its spans carry."""
    from costrouter.pricing.prices import PriceBook  # noqa: PLC0415 - imports LiteLLM; the command must start without it

    book = PriceBook.from_config(config)
    by_model: dict[str, dict[str, dict[str, float]]] = {}
    providers: dict[str, str] = {}
    for _, deployment_id, deployment in config.deployments():
        price = book.prices[deployment_id]
        if price is None:
            continue
        rates = {key: value for key, value, _ in price.dimensions()}
        model = model_facts(deployment, None).model
        by_model.setdefault(model, {})[deployment_id] = rates
        if "/" in deployment.model:
            providers.setdefault(model, deployment.model.split("/", 1)[0])
    prices: list[ModelPrice] = []
    conflicts: list[Conflict] = []
    for model, rates_by_deployment in sorted(by_model.items()):
        distinct = {tuple(sorted(rates.items())) for rates in rates_by_deployment.values()}
        if len(distinct) > 1:
            conflicts.append(Conflict(model, rates_by_deployment))
        else:
            rates = next(iter(rates_by_deployment.values()))
            prices.append(ModelPrice(model, rates, tuple(rates_by_deployment), providers.get(model)))
    return prices, conflicts


def same_rates(left: Mapping[str, float], right: Mapping[str, float]) -> bool:
    """Equal to a part in 10^9: a backend that stores per-million floats reads back what it was sent."""
    if set(left) != set(right):
        return False
    return all(abs(left[key] - right[key]) <= 1e-9 * max(abs(left[key]), abs(right[key]), 1e-18) for key in left)


def unchanged_or(action: Action, model: str, before: Mapping[str, float] | None, after: Mapping[str, float]) -> Change:
    """``unchanged`` when ``before`` already holds ``after``, else a change of ``action``."""
    if before is not None and same_rates(before, after):
        return Change("unchanged", model, before, after)
    return Change(action, model, before, after)
