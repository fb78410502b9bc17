"""A refusal stays a refusal when releasing the holds it already took fails (real Redis, fail_open)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.budget import BudgetPolicy, RedisBudgetStore, SettleOutcome
from costrouter.config.budget_ref import BudgetRef
from costrouter.testing import ProviderDouble, TelemetryCapture
from costrouter.testing.redis_server import RedisServer
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "hi"}]


class DiesBeforeRelease(RedisBudgetStore):
    """The real Redis store, whose server is killed just before the first release reaches it."""

    def __init__(self, policy: BudgetPolicy, server: RedisServer) -> None:
        super().__init__(policy.store, url=server.url)
        self.server = server

    def release(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        self.server.kill()
        return super().release(budget, call_id)

    async def arelease(self, budget: BudgetRef, call_id: str) -> SettleOutcome:
        self.server.kill()
        return await super().arelease(budget, call_id)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def policy(url: str) -> BudgetPolicy:
    # Store keys order the budgets: the generous team budget holds first, then the session refuses.
    return BudgetPolicy.model_validate(
        {
            "store": {
                "backend": "redis",
                "redis_url": url,
                "key_prefix": f"t{uuid.uuid4().hex[:10]}",
                "on_store_error": "fail_open",
                "timeout_seconds": 0.2,
            },
            "budgets": [
                {"name": "a-team", "scope": "team", "limit_usd": 10.0},
                {"name": "b-session", "scope": "session", "limit_usd": 0.00005},
            ],
        }
    )


def router_on(provider: ProviderDouble, capture: TelemetryCapture, server: RedisServer) -> CostRouter:
    provider.reset()
    budgets = policy(server.url)
    return CostRouter(
        router_config(provider.base_url),
        budgets=budgets,
        store=DiesBeforeRelease(budgets, server),
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )


def test_sync_refusal_wins_over_a_failed_release(
    provider: ProviderDouble, capture: TelemetryCapture, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    router = router_on(provider, capture, own_redis)
    with caplog.at_level(logging.WARNING, logger="costrouter.budget"), pytest.raises(BudgetExceededError) as raised:
        router.route_completion("capable", MESSAGES, max_tokens=100, session_id="s1", team_id="t1")
    assert (raised.value.scope, raised.value.budget) == ("session", "b-session")
    assert provider.request_count() == 0
    assert "could not be released and expires by its TTL" in caplog.text
    (span,) = capture.call_spans()
    assert span.attributes["budget.outcome"] == "rejected"  # type: ignore[index]
    router.shutdown()


async def test_async_refusal_wins_over_a_failed_release(
    provider: ProviderDouble, capture: TelemetryCapture, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    router = router_on(provider, capture, own_redis)
    with caplog.at_level(logging.WARNING, logger="costrouter.budget"), pytest.raises(BudgetExceededError):
        await router.aroute_completion("capable", MESSAGES, max_tokens=100, session_id="s1", team_id="t1")
    assert provider.request_count() == 0
    assert "could not be released and expires by its TTL" in caplog.text
    assert router.store is not None
    await router.store.aclose()
    router.shutdown()
