"""SigNoz pricing rules from the router's own prices, so SigNoz's cost is costrouter's.

SigNoz prices an LLM span itself: it matches ``gen_ai.request.model`` against each rule's
``modelPattern`` and multiplies ``gen_ai.usage.input_tokens`` / ``output_tokens`` (and the cache
token counts) by the rule's per-million prices (SigNoz ``pkg/types/llmpricingruletypes``;
signoz.io/docs/ai-observability-model-pricing). Rules are written in one batch with
``PUT {SIGNOZ_URL}/api/v1/llm_pricing_rules`` (``{"rules": [...]}``), marked ``isOverride`` so
SigNoz's own catalogue sync leaves them alone.

A rule is keyed by model, a price by deployment: two deployments of one model at different
prices cannot both be expressed, and are reported as a conflict rather than pushed. Prices
SigNoz has no field for (reasoning, audio, image, per request, tiers above a threshold) are
reported too: SigNoz's cost misses them, costrouter's does not.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from costrouter import price_fields as pf
from costrouter.config import RouterConfig
from costrouter.pricing import PriceBook
from costrouter.telemetry import model_name

PATH: Final = "/api/v1/llm_pricing_rules"
"""SigNoz's pricing-rule batch endpoint (PUT)."""
_PER_MILLION: Final = 1_000_000
_SIGNOZ_FIELDS: Final = frozenset({pf.INPUT, pf.OUTPUT, pf.CACHE_READ, pf.CACHE_CREATION})


@dataclass(frozen=True)
class RulePlan:
    """The rules to push, and what SigNoz cannot be told (each a sentence naming deployments)."""

    rules: list[dict[str, Any]]
    conflicts: list[str]
    not_expressible: list[str]


def pricing_rule(model: str, provider: str, rates: Mapping[str, float]) -> dict[str, Any]:
    """One SigNoz rule for ``model`` from per-token ``rates`` under LiteLLM's price names."""
    pricing: dict[str, Any] = {
        "input": rates[pf.INPUT] * _PER_MILLION,
        "output": rates[pf.OUTPUT] * _PER_MILLION,
    }
    if pf.CACHE_READ in rates or pf.CACHE_CREATION in rates:
        # costrouter's input tokens include the cached ones (OpenAI-style): SigNoz's "subtract" mode.
        pricing["cache"] = {
            "mode": "subtract",
            "read": rates.get(pf.CACHE_READ, rates[pf.INPUT]) * _PER_MILLION,
            "write": rates.get(pf.CACHE_CREATION, rates[pf.INPUT]) * _PER_MILLION,
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


def pricing_rules(config: RouterConfig) -> RulePlan:
    """One rule per model the router's deployments serve, from the prices costrouter charges."""
    book = PriceBook.from_config(config)
    by_model: dict[str, tuple[str, str, Mapping[str, float]]] = {}
    conflicts: list[str] = []
    not_expressible: list[str] = []
    for _, deployment_id, deployment in config.deployments():
        price = book.prices.get(deployment_id)
        if price is None:
            not_expressible.append(f"{deployment_id}: no price known, no rule pushed")
            continue
        model = model_name(deployment.model)
        provider = deployment.model.split("/", 1)[0] if "/" in deployment.model else "unknown"
        rates = {key: value for key, value in price.rates.items() if pf.parse_threshold(key) is None}
        extra = sorted(key for key, value in price.rates.items() if key not in _SIGNOZ_FIELDS and value)
        if extra:
            not_expressible.append(f"{deployment_id}: SigNoz has no price for {', '.join(extra)}")
        seen = by_model.get(model)
        if seen is None:
            by_model[model] = (deployment_id, provider, rates)
        elif {k: v for k, v in seen[2].items() if k in _SIGNOZ_FIELDS} != {
            k: v for k, v in rates.items() if k in _SIGNOZ_FIELDS
        }:
            conflicts.append(f"{seen[0]} and {deployment_id} serve {model} at different prices")
    rules = [pricing_rule(model, provider, rates) for model, (_, provider, rates) in by_model.items()]
    return RulePlan(rules, conflicts, not_expressible)


def push(plan: RulePlan, url: str, api_key: str, *, timeout: float = 10.0) -> int:
    """PUT the rules to ``{url}/api/v1/llm_pricing_rules`` with ``SIGNOZ-API-KEY``; the HTTP status.

    Raises ``ValueError`` for a URL that is not http(s).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"SigNoz URL must be http(s)://host[:port], not {url!r}")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(
            "PUT",
            parts.path.rstrip("/") + PATH,
            body=json.dumps({"rules": plan.rules}),
            headers={"content-type": "application/json", "SIGNOZ-API-KEY": api_key},
        )
        response = connection.getresponse()
        response.read()
        return int(response.status)
    finally:
        connection.close()
