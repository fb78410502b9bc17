"""A budget refusal as the proxy answers it: 429, the OpenAI error shape, the budget's figures."""

from __future__ import annotations

from costrouter.errors import BudgetExceededError
from costrouter.proxy.refusal import ERROR_TYPE, refusal_exception


def test_the_refusal_names_the_budget_limit_window_and_remaining() -> None:
    error = BudgetExceededError(
        scope="session",
        scope_id="s-1",
        budget="per-session",
        limit_usd=0.002,
        spent_usd=0.0012,
        held_usd=0.0003,
        estimate_usd=0.0006,
        window="total",
    )

    exception = refusal_exception(error)

    assert exception.code == "429"
    body = exception.to_dict()
    assert body["type"] == ERROR_TYPE
    assert "window total, remaining $0.000500" in body["message"]
    assert body["provider_specific_fields"] == {
        "costrouter": {
            "budget": "per-session",
            "scope": "session",
            "scope_id": "s-1",
            "limit_usd": 0.002,
            "window": "total",
            "spent_usd": 0.0012,
            "held_usd": 0.0003,
            "remaining_usd": 0.0005,
            "estimate_usd": 0.0006,
        }
    }


def test_remaining_is_never_negative() -> None:
    error = BudgetExceededError(
        scope="user", scope_id="u", budget="b", limit_usd=1.0, spent_usd=1.5, held_usd=0.0, estimate_usd=0.1
    )

    assert refusal_exception(error).to_dict()["provider_specific_fields"]["costrouter"]["remaining_usd"] == 0.0
