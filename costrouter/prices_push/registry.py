"""The backends ``costrouter prices push`` knows, by name; one module per backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from costrouter.config.groups import RouterConfig
from costrouter.errors import ConfigError
from costrouter.prices_push.langfuse import LangfuseTarget
from costrouter.prices_push.phoenix import PhoenixTarget
from costrouter.prices_push.plan import ModelPrice, PushPlan, model_prices
from costrouter.prices_push.signoz import SignozTarget


class PriceTarget(Protocol):
    """A backend that prices spans itself: reads what it holds, writes costrouter's prices."""

    name: str

    def plan(self, prices: list[ModelPrice], plan: PushPlan) -> None:
        """Add to ``plan`` what a push would change (reads the backend, writes nothing)."""

    def apply(self, plan: PushPlan) -> None:
        """Write the plan's pending changes."""

    def close(self) -> None:
        """Release connections."""


TARGETS: dict[str, Callable[[str], PriceTarget]] = {
    "phoenix": PhoenixTarget,
    "langfuse": LangfuseTarget,
    "signoz": SignozTarget,
}
"""Target name -> factory taking the backend's URL (secrets come from the environment)."""


def register_target(name: str, factory: Callable[[str], PriceTarget]) -> None:
    """Add (or replace) a target, e.g. another backend's module."""
    TARGETS[name] = factory


def push_prices(config: RouterConfig, target: str, url: str, *, apply: bool = False) -> PushPlan:
    """Plan (and with ``apply``, write) every deployment's prices to ``target`` at ``url``.

    Dry-run by default: the returned plan's :meth:`~PushPlan.render` is the diff. Applying twice
    writes nothing the second time. Conflicting prices for one model name are in ``plan.conflicts``
    and are not pushed.
    """
    factory = TARGETS.get(target)
    if factory is None:
        known = ", ".join(sorted(TARGETS))
        raise ConfigError.single("prices push", "target", f"unknown target {target!r}; known: {known}")
    prices, conflicts = model_prices(config)
    plan = PushPlan(target, url, conflicts=conflicts)
    backend = factory(url)
    try:
        backend.plan(prices, plan)
        if apply and plan.pending:
            backend.apply(plan)
    finally:
        backend.close()
    return plan
