"""SigNoz pricing rules from the router's own prices, so SigNoz's cost is costrouter's.

SigNoz prices an LLM span itself: it matches ``gen_ai.request.model`` against each rule's
``modelPattern`` and multiplies ``gen_ai.usage.input_tokens`` / ``output_tokens`` (and the cache
token counts) by the rule's per-million prices (SigNoz ``pkg/types/llmpricingruletypes``;
signoz.io/docs/ai-observability-model-pricing). Rules are written in one batch with
``PUT {url}/api/v1/llm_pricing_rules`` (``{"rules": [...]}``), marked ``isOverride`` so
SigNoz's own catalogue sync leaves them alone; the key is ``SIGNOZ_API_KEY``.

:class:`SignozTarget` is the target ``costrouter prices push signoz URL`` uses (registered in
:mod:`costrouter.prices_push.registry`). Prices SigNoz has no field for (reasoning, audio and
image tokens at their own price, per request, tiers above a threshold) are named in the plan's
notes: SigNoz's cost misses them, costrouter's does not.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from costrouter.config import price_fields as pf
from costrouter.config.outbound import url_problem
from costrouter.errors import PushError
from costrouter.money import per_million
from costrouter.prices_push.plan import Change, ModelPrice, PushPlan
from costrouter.prices_push.transport import DEFAULT_TIMEOUT_SECONDS, excerpt, exchange, where

PATH: Final = "/api/v1/llm_pricing_rules"
"""SigNoz's pricing-rule batch endpoint (PUT)."""
API_KEY_ENV: Final = "SIGNOZ_API_KEY"
"""The environment variable holding the SigNoz API key the push sends as ``SIGNOZ-API-KEY``."""
_SIGNOZ_FIELDS: Final = frozenset({pf.INPUT, pf.OUTPUT, pf.CACHE_READ, pf.CACHE_CREATION})


def pricing_rule(model: str, provider: str, rates: Mapping[str, float]) -> dict[str, Any]:
    """One SigNoz rule for ``model`` from per-token ``rates`` under LiteLLM's price names."""
    pricing: dict[str, Any] = {
        "input": per_million(rates[pf.INPUT]),
        "output": per_million(rates[pf.OUTPUT]),
    }
    if pf.CACHE_READ in rates or pf.CACHE_CREATION in rates:
        # costrouter's input tokens include the cached ones (OpenAI-style): SigNoz's "subtract" mode.
        pricing["cache"] = {
            "mode": "subtract",
            "read": per_million(rates.get(pf.CACHE_READ, rates[pf.INPUT])),
            "write": per_million(rates.get(pf.CACHE_CREATION, rates[pf.INPUT])),
        }
    return {
        "modelName": model,
        "provider": provider,
        "modelPattern": [model],
        "unit": "per_million_tokens",
        "pricing": pricing,
        "isOverride": True,
        "enabled": True,
    }


def signoz_rates(rates: Mapping[str, float]) -> dict[str, float]:
    """The part of costrouter's rates a SigNoz rule holds."""
    return {key: value for key, value in rates.items() if key in _SIGNOZ_FIELDS}


def inexpressible(rates: Mapping[str, float]) -> list[str]:
    """Prices SigNoz has no field for: those that differ from the input/output price they refine."""
    extra: list[str] = []
    for key, value in sorted(rates.items()):
        if key in _SIGNOZ_FIELDS or not value:
            continue
        base = rates.get(pf.OUTPUT if key.startswith("output") else pf.INPUT)
        if pf.parse_threshold(key) is not None or key == pf.REQUEST or value != base:
            extra.append(key)
    return extra


def rules_for(prices: list[ModelPrice]) -> list[dict[str, Any]]:
    """One SigNoz rule per model name (those without an input and output price are left out)."""
    return [
        pricing_rule(price.model, price.provider or "unknown", signoz_rates(price.rates))
        for price in prices
        if pf.INPUT in price.rates and pf.OUTPUT in price.rates
    ]


class SignozTarget:
    """SigNoz as a ``costrouter prices push`` target: one batch PUT of override rules.

    SigNoz's rule batch is written whole, so the plan does not read the backend back: every
    priced model is a ``create`` (an upsert of the override rule) and ``--apply`` sends them all.
    """

    name = "signoz"

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        problem = url_problem(url)
        if problem is not None:
            raise PushError(f"signoz: {problem} (it must be http(s)://host[:port])")
        self.url = url
        self.timeout = timeout
        self._rules: list[dict[str, Any]] = []

    def close(self) -> None:
        """Nothing held open between calls."""

    def plan(self, prices: list[ModelPrice], plan: PushPlan) -> None:
        """A ``create`` per priced model, and a note for each price SigNoz cannot hold."""
        self._rules = rules_for(prices)
        pushed = {rule["modelName"] for rule in self._rules}
        for price in prices:
            if price.model not in pushed:
                plan.notes.append(f"model {price.model!r}: no input and output price, no SigNoz rule")
                continue
            plan.changes.append(Change("create", price.model, None, signoz_rates(price.rates)))
            extra = inexpressible(price.rates)
            if extra:
                plan.notes.append(f"model {price.model!r}: SigNoz has no price for {', '.join(extra)}")

    def apply(self, plan: PushPlan) -> None:
        """PUT the planned rules with ``SIGNOZ-API-KEY``; :class:`PushError` when SigNoz refuses."""
        key = os.environ.get(API_KEY_ENV)
        if not key:
            raise PushError(f"signoz: set {API_KEY_ENV} to push to {where('signoz', plan.url)}")
        pending = {change.model for change in plan.pending}
        rules = [rule for rule in self._rules if rule["modelName"] in pending]
        answer = exchange(
            "signoz",
            self.url,
            "PUT",
            PATH,
            payload={"rules": rules},
            headers={"SIGNOZ-API-KEY": key},
            timeout=self.timeout,
        )
        if answer.status >= 300:
            detail = f": {excerpt(answer.body)!r}" if answer.body else ""
            raise PushError(f"{where('signoz', self.url)}: push refused with HTTP {answer.status}{detail}")
