"""Ids that used to bypass a budget: a string tag, an empty session id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.testing import ProviderDouble, TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def budgeted(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    provider.reset()
    router = CostRouter(
        router_config(provider.base_url),
        budgets={
            "budgets": [
                {"scope": "tag", "id": "batch", "limit_usd": 0.00001},
                {"scope": "session", "limit_usd": 0.00001},
            ]
        },
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    yield router
    router.shutdown()


def test_a_string_tag_is_held_to_its_tag_budget(budgeted: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(BudgetExceededError) as raised:
        budgeted.route_completion("fast", MESSAGES, max_tokens=100, tags="batch")
    assert (raised.value.scope, raised.value.scope_id) == ("tag", "batch")
    assert provider.request_count() == 0


def test_an_empty_session_id_is_refused_before_any_provider(budgeted: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match="session_id must not be empty"):
        budgeted.route_completion("fast", MESSAGES, max_tokens=100, session_id="")
    assert provider.request_count() == 0


async def test_an_int_session_id_is_held_to_its_session_budget(budgeted: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(BudgetExceededError) as raised:
        await budgeted.aroute_completion("fast", MESSAGES, max_tokens=100, session_id=42)
    assert (raised.value.scope, raised.value.scope_id) == ("session", "42")
    assert provider.request_count() == 0
