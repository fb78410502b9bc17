"""Router configurations pointed at a provider double, shared by the router tests."""

from __future__ import annotations

from typing import Any

PRICES = {
    "fast-primary": (1e-6, 2e-6),
    "fast-backup": (5e-7, 1e-6),
    "capable-primary": (1e-5, 3e-5),
    "flaky-only": (2e-6, 4e-6),
    "slow-only": (1e-6, 1e-6),
}


def deployment(deployment_id: str, model: str, base_url: str, **extra: Any) -> dict[str, Any]:
    input_price, output_price = PRICES.get(deployment_id, (1e-6, 1e-6))
    return {
        "id": deployment_id,
        "model": f"openai/{model}",
        "api_base": base_url,
        "api_key": "test-key",
        "input_cost_per_token": input_price,
        "output_cost_per_token": output_price,
        **extra,
    }


def router_config(base_url: str, **router: Any) -> dict[str, Any]:
    """Groups: fast (two priorities), capable (falls back to fast), flaky (falls back to
    fast), slow (a 0.3 s timeout, no fallback)."""
    return {
        "router": {"num_retries": 1, "retry_after": 0, **router},
        "groups": {
            "fast": {
                "deployments": [
                    deployment("fast-primary", "fast-model", base_url, priority=0),
                    deployment("fast-backup", "fast-backup-model", base_url, priority=1),
                ],
            },
            "capable": {
                "deployments": [deployment("capable-primary", "capable-model", base_url)],
                "fallbacks": ["fast"],
            },
            "flaky": {
                "deployments": [deployment("flaky-only", "flaky-model", base_url)],
                "fallbacks": ["fast"],
            },
            "slow": {"deployments": [deployment("slow-only", "slow-model", base_url, timeout=0.3)]},
        },
    }


def expected_cost(deployment_id: str, prompt_tokens: int, completion_tokens: int) -> float:
    input_price, output_price = PRICES[deployment_id]
    return prompt_tokens * input_price + completion_tokens * output_price
