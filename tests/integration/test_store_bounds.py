"""The largest numbers the policy accepts work in every store (real Redis included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from costrouter.config.budgets import MAX_LIMIT_USD, MAX_TTL_SECONDS, BudgetPolicy
from costrouter.money import usd_to_units
from tests.integration.budget_backends import BACKENDS, Backend, make_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from make_backend(request)


def test_the_largest_ttls_window_and_limit_reserve_and_settle(backend: Backend) -> None:
    store = backend.store(hold_ttl_seconds=MAX_TTL_SECONDS, settle_record_ttl_seconds=MAX_TTL_SECONDS)
    policy = BudgetPolicy.model_validate(
        {"budgets": [{"scope": "user", "limit_usd": MAX_LIMIT_USD, "window": f"{MAX_TTL_SECONDS // 86400}d"}]}
    )
    (budget,) = policy.budgets_for(user_id="big")
    limit = usd_to_units(MAX_LIMIT_USD)

    assert store.reserve(budget, "c1", limit, enforce=True).granted
    assert not store.reserve(budget, "c2", 1, enforce=True).granted
    settled = store.settle(budget, "c1", limit - 1)
    assert (settled.spent_units, settled.held_units) == (limit - 1, 0)
    assert store.reserve(budget, "c3", 1, enforce=True).granted
    assert store.status(budget).held_units == 1
