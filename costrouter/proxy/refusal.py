"""The answer to a request a budget refused: HTTP 429 in the OpenAI error shape, at once."""

from __future__ import annotations

from typing import Any

from litellm.proxy._types import ProxyException

from costrouter.errors import BudgetExceededError
from costrouter.money import UNITS_PER_USD, units_to_usd

ERROR_TYPE = "budget_exceeded"
"""The ``error.type`` of a refusal (LiteLLM's proxy uses the same for its own budgets)."""


def refusal_details(error: BudgetExceededError) -> dict[str, Any]:
    """The refused budget: name, scope, id, limit, window, spent, held, remaining and this call's estimate (USD)."""
    remaining = max(0.0, error.limit_usd - error.spent_usd - error.held_usd)
    return {
        "budget": error.budget,
        "scope": error.scope,
        "scope_id": error.scope_id,
        "limit_usd": error.limit_usd,
        "window": error.window,
        "spent_usd": error.spent_usd,
        "held_usd": error.held_usd,
        "remaining_usd": units_to_usd(round(remaining * UNITS_PER_USD)),
        "estimate_usd": error.estimate_usd,
    }


def refusal_exception(error: BudgetExceededError) -> ProxyException:
    """What the proxy answers: ``{"error": {"message", "type": "budget_exceeded", "code": "429", ...}}``.

    The refused budget's figures are in ``error.provider_specific_fields.costrouter``.
    """
    details = refusal_details(error)
    message = f"{error}; window {details['window']}, remaining ${details['remaining_usd']:.6f}"
    return ProxyException(
        message=message,
        type=ERROR_TYPE,
        param=None,
        code=429,
        provider_specific_fields={"costrouter": details},
    )
