"""Budgets through the routed call: reserve before, settle after, on memory and on real Redis."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from opentelemetry.trace import StatusCode

from costrouter import BudgetExceededError, BudgetStoreError, ConfigError, CostRouter
from costrouter.budget import BudgetPolicy
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.provider import count_prompt_tokens
from costrouter.testing.redis_server import RedisServer
from tests.routing import expected_cost, router_config

MESSAGES = [{"role": "user", "content": "summarise the quarterly report in three bullets"}]
PROMPT_TOKENS = count_prompt_tokens(MESSAGES)
BACKENDS = [pytest.param("memory", id="memory"), pytest.param("redis", id="redis")]


@pytest.fixture(params=BACKENDS)
def store_section(request: pytest.FixtureRequest) -> dict[str, Any]:
    section: dict[str, Any] = {"backend": request.param, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    if request.param == "redis":
        section["redis_url"] = request.getfixturevalue("redis_url")
        # The per-call path (leases are the default): these tests read each hold and settle in Redis
        # as the call makes it; test_budget_leases.py and the fault invariants cover leases.
        section["lease"] = {"enabled": False}
    return section


class Harness:
    """Builds routers on one provider double with a budget policy and captures telemetry."""

    def __init__(self, provider: ProviderDouble, capture: TelemetryCapture, store: dict[str, Any]) -> None:
        self.provider = provider
        self.capture = capture
        self.store = store
        self.routers: list[CostRouter] = []

    def router(self, *budgets: dict[str, Any], **store: Any) -> CostRouter:
        policy = {"store": {**self.store, **store}, "budgets": list(budgets)}
        router = CostRouter(
            router_config(self.provider.base_url),
            budgets=policy,
            tracer_provider=self.capture.tracer_provider,
            meter_provider=self.capture.meter_provider,
        )
        self.routers.append(router)
        return router

    def close(self) -> None:
        for router in self.routers:
            router.shutdown()


@pytest.fixture
def harness(provider: ProviderDouble, capture: TelemetryCapture, store_section: dict[str, Any]) -> Iterator[Harness]:
    provider.reset()
    made = Harness(provider, capture, store_section)
    yield made
    made.close()


def session_ref(router: CostRouter, session_id: str):  # type: ignore[no-untyped-def]
    assert isinstance(router.policy, BudgetPolicy)
    return next(ref for ref in router.policy.budgets_for(session_id=session_id) if ref.scope == "session")


def test_allowed_call_holds_then_settles_the_actual_cost(harness: Harness) -> None:
    router = harness.router({"scope": "session", "limit_usd": 1.0, "window": "total"})

    router.route_completion("fast", MESSAGES, max_tokens=40, session_id="sess-ok")

    (span,) = harness.capture.call_spans()
    attributes = dict(span.attributes or {})
    cost = expected_cost("fast-primary", PROMPT_TOKENS, 8)
    assert attributes[sc.BUDGET_OUTCOME] == "allowed"
    assert list(attributes[sc.BUDGET_SCOPES]) == ["session"]  # type: ignore[arg-type]
    assert attributes[sc.BUDGET_LIMIT_USD] == 1.0
    assert attributes[sc.BUDGET_SPENT_BEFORE_USD] == 0.0
    assert float(attributes[sc.BUDGET_ESTIMATE_USD]) >= cost  # type: ignore[arg-type]
    assert attributes[sc.BUDGET_SETTLED_USD] == pytest.approx(cost)
    assert attributes[sc.BUDGET_REMAINING_USD] == pytest.approx(1.0 - cost)
    assert router.store is not None
    status = router.store.status(session_ref(router, "sess-ok"))
    assert status.spent_units == usd_to_units(cost)
    assert status.held_units == 0


def test_settled_costs_on_spans_sum_to_the_counter_exactly(harness: Harness) -> None:
    router = harness.router({"scope": "session", "limit_usd": 5.0, "window": "total"})
    for tokens in (1, 7, 13, 29, 3):
        harness.provider.script("fast-model", Reply(completion_tokens=tokens))
        router.route_completion("fast", MESSAGES, max_tokens=40, session_id="sess-sum")
    settled = sum(
        usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
        for span in harness.capture.call_spans()
    )
    assert router.store is not None
    assert router.store.status(session_ref(router, "sess-sum")).spent_units == settled


def test_reject_raises_before_any_provider_is_called(harness: Harness) -> None:
    router = harness.router({"scope": "session", "limit_usd": 0.0001, "window": "total"})

    with pytest.raises(BudgetExceededError) as raised:
        router.route_completion("capable", MESSAGES, max_tokens=400, session_id="sess-poor")

    error = raised.value
    assert (error.scope, error.scope_id, error.limit_usd) == ("session", "sess-poor", 0.0001)
    assert error.spent_usd == 0.0
    assert error.estimate_usd > error.limit_usd
    assert harness.provider.request_count() == 0
    (span,) = harness.capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.status.status_code == StatusCode.ERROR
    assert attributes[sc.BUDGET_OUTCOME] == "rejected"
    assert attributes[sc.ERROR_TYPE] == "BudgetExceededError"
    assert attributes[sc.ROUTER_ATTEMPTS] == 0
    decisions = {a[sc.BUDGET_OUTCOME] for a, _ in harness.capture.metric_points(sc.METRIC_BUDGET_DECISIONS)}
    assert decisions == {"rejected"}
    assert router.store is not None
    status = router.store.status(session_ref(router, "sess-poor"))
    assert (status.spent_units, status.held_units) == (0, 0)


def test_every_applicable_budget_is_checked_and_a_refusal_releases_the_others(harness: Harness) -> None:
    router = harness.router(
        {"scope": "session", "limit_usd": 1.0, "window": "total"},
        {"scope": "user", "limit_usd": 0.0001, "window": "daily"},
        {"scope": "global", "limit_usd": 100, "window": "30d"},
    )
    with pytest.raises(BudgetExceededError) as raised:
        router.route_completion("fast", MESSAGES, max_tokens=200, session_id="s-multi", user_id="u-multi")
    assert raised.value.scope == "user"
    assert router.store is not None
    assert router.policy is not None
    for ref in router.policy.budgets_for(session_id="s-multi", user_id="u-multi"):
        status = router.store.status(ref)
        assert (status.spent_units, status.held_units) == (0, 0), ref.name


def test_downgrade_routes_to_the_cheaper_group(harness: Harness) -> None:
    router = harness.router(
        {"scope": "user", "limit_usd": 0.004, "window": "daily", "on_exceeded": "downgrade", "downgrade_to": "fast"}
    )

    router.route_completion("capable", MESSAGES, max_tokens=400, user_id="u-down")

    assert harness.provider.request_count("capable-model") == 0
    assert harness.provider.request_count("fast-model") == 1
    (span,) = harness.capture.call_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.BUDGET_OUTCOME] == "downgraded"
    assert attributes[sc.BUDGET_DOWNGRADED_TO] == "fast"
    assert attributes[sc.ROUTER_MODEL_GROUP] == "capable"
    assert attributes[sc.ROUTER_SERVED_GROUP] == "fast"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(expected_cost("fast-primary", PROMPT_TOKENS, 8))


def test_warn_lets_the_call_through_and_records_it(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    router = harness.router({"scope": "session", "limit_usd": 0.00002, "window": "total", "on_exceeded": "warn"})

    with caplog.at_level(logging.WARNING, logger="costrouter"):
        router.route_completion("fast", MESSAGES, max_tokens=40, session_id="s-warn")

    (span,) = harness.capture.call_spans()
    assert span.attributes[sc.BUDGET_OUTCOME] == "warned"  # type: ignore[index]
    assert any(event.name == sc.EVENT_BUDGET_WARNING for event in span.events)
    assert "over its limit" in caplog.text
    assert harness.provider.request_count("fast-model") == 1


def test_a_failed_call_releases_its_hold(harness: Harness) -> None:
    router = harness.router({"scope": "session", "limit_usd": 1.0, "window": "total"})
    harness.provider.set_default("slow-model", Fail(500))

    with pytest.raises(litellm.InternalServerError):
        router.route_completion("slow", MESSAGES, max_tokens=10, session_id="s-fail")

    assert router.store is not None
    status = router.store.status(session_ref(router, "s-fail"))
    assert (status.spent_units, status.held_units) == (0, 0)
    (span,) = harness.capture.call_spans()
    assert span.attributes[sc.BUDGET_SETTLED_USD] == 0.0  # type: ignore[index]


def test_stream_settles_on_early_close(harness: Harness) -> None:
    router = harness.router({"scope": "session", "limit_usd": 1.0, "window": "total"})
    harness.provider.set_default("fast-model", Reply(completion_tokens=50))

    stream = router.route_completion("fast", MESSAGES, stream=True, max_tokens=60, session_id="s-stream")
    for index, _ in enumerate(stream):
        if index == 2:
            break
    stream.close()

    (span,) = harness.capture.call_spans()
    settled = usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
    assert settled > 0
    assert router.store is not None
    status = router.store.status(session_ref(router, "s-stream"))
    assert (status.spent_units, status.held_units) == (settled, 0)


async def test_async_calls_settle_too(harness: Harness) -> None:
    router = harness.router({"scope": "session", "limit_usd": 1.0, "window": "total"})
    await router.aroute_completion("fast", MESSAGES, max_tokens=40, session_id="s-async")
    stream = await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=40, session_id="s-async")
    async for _ in stream:
        pass
    settled = sum(
        usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
        for span in harness.capture.call_spans()
    )
    assert router.store is not None
    assert (await router.store.astatus(session_ref(router, "s-async"))).spent_units == settled


def test_alerts_fire_once_per_window(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    router = harness.router({"scope": "session", "limit_usd": 0.001, "window": "total", "alert_at": [0.01, 0.02]})
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        for _ in range(3):
            router.route_completion("fast", MESSAGES, max_tokens=5, session_id="s-alert")
    alerts = [event for span in harness.capture.call_spans() for event in span.events if event.name == "budget.alert"]
    assert sorted(event.attributes["threshold"] for event in alerts) == [0.01, 0.02]  # type: ignore[index]
    assert caplog.text.count("of its limit") == 2


def test_without_max_tokens_the_cap_is_passed_to_the_provider(harness: Harness) -> None:
    router = harness.router({"scope": "session", "limit_usd": 1000, "window": "total"})
    router.route_completion("fast", MESSAGES, session_id="s-cap")
    assert harness.provider.requests[-1].body["max_tokens"] == 4096  # the policy default


def test_without_a_policy_nothing_is_enforced_and_spend_is_traced(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = CostRouter(router_config(provider.base_url), tracer_provider=capture.tracer_provider)
    router.route_completion("fast", MESSAGES, session_id="free")
    (span,) = capture.call_spans()
    assert span.attributes[sc.BUDGET_OUTCOME] == "unbudgeted"  # type: ignore[index]
    assert float(span.attributes[sc.LLM_USAGE_COST_USD]) > 0  # type: ignore[arg-type,index]
    assert "max_tokens" not in provider.requests[-1].body


# ---- the store going down (real Redis only) ----------------------------------------------


@pytest.fixture
def down_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    if not redis_server.can_restart:
        pytest.skip("REDIS_URL points at a server this suite did not start and cannot restart")
    redis_server.ensure_running()
    yield redis_server
    redis_server.ensure_running()


def redis_policy(url: str, mode: str) -> dict[str, Any]:
    return {
        "store": {
            "backend": "redis",
            "redis_url": url,
            "key_prefix": f"t{uuid.uuid4().hex[:10]}",
            "on_store_error": mode,
            "timeout_seconds": 0.2,
            "lease": {"enabled": False},  # a round trip per call: each call meets the outage
            # The server comes back empty (no persistence): these tests are about the outage, not the
            # lost data, which fail_closed (the default) would refuse; tests/integration/test_store_faults.py.
            "on_store_lost": "warn",
        },
        "budgets": [{"scope": "session", "limit_usd": 1.0, "window": "total"}],
    }


def test_store_down_fail_closed_raises_a_costrouter_error(
    provider: ProviderDouble, capture: TelemetryCapture, down_redis: RedisServer
) -> None:
    provider.reset()
    router = CostRouter(
        router_config(provider.base_url),
        budgets=redis_policy(down_redis.url, "fail_closed"),
        tracer_provider=capture.tracer_provider,
    )
    down_redis.kill()
    with pytest.raises(BudgetStoreError) as raised:
        router.route_completion("fast", MESSAGES, max_tokens=10, session_id="s-down")
    assert raised.value.__cause__ is not None
    assert provider.request_count() == 0
    (span,) = capture.call_spans()
    assert span.attributes[sc.BUDGET_OUTCOME] == "store_error"  # type: ignore[index]
    assert span.status.status_code == StatusCode.ERROR

    down_redis.restart()
    router.route_completion("fast", MESSAGES, max_tokens=10, session_id="s-down")
    assert router.store is not None
    assert router.store.status(session_ref(router, "s-down")).spent_units > 0
    router.shutdown()


def test_store_down_fail_open_proceeds_records_and_counts_right_once_back(
    provider: ProviderDouble, capture: TelemetryCapture, down_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    provider.reset()
    router = CostRouter(
        router_config(provider.base_url),
        budgets=redis_policy(down_redis.url, "fail_open"),
        tracer_provider=capture.tracer_provider,
    )
    down_redis.kill()
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        router.route_completion("fast", MESSAGES, max_tokens=10, session_id="s-open")
    assert provider.request_count() == 1
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.BUDGET_OUTCOME] == "store_error"
    assert sc.BUDGET_STORE_ERROR in attributes
    assert span.status.status_code == StatusCode.OK  # the call succeeded; the store error is on the span
    assert any(event.name == sc.EVENT_STORE_ERROR for event in span.events)
    assert "budget store failed (fail_open)" in caplog.text

    down_redis.restart()
    router.route_completion("fast", MESSAGES, max_tokens=10, session_id="s-open")
    # The first call's settle waited in the journal; the second call's store ops wake its replay.
    settled = sum(
        usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
        for span in capture.call_spans()
    )
    assert router.guard is not None
    deadline = time.monotonic() + 60
    while router.guard.pending() != (0, 0):
        assert time.monotonic() < deadline, "the journaled settle was never replayed"
        time.sleep(0.05)
    assert router.store is not None
    status = router.store.status(session_ref(router, "s-open"))
    assert (status.spent_units, status.held_units) == (settled, 0)
    router.shutdown()


def test_budgets_view_reads_status_top_and_resets_by_scope_and_id(harness: Harness) -> None:
    router = harness.router(
        {"scope": "session", "limit_usd": 1.0, "window": "total"},
        {"scope": "user", "limit_usd": 2.0, "window": "daily"},
        {"scope": "global", "limit_usd": 10.0, "window": "30d"},
    )
    for session, user in (("s-a", "u-1"), ("s-b", "u-1"), ("s-c", "u-2")):
        router.route_completion("fast", MESSAGES, max_tokens=10, session_id=session, user_id=user)
    view = router.budgets
    assert view is not None
    (session_status,) = view.status("session", "s-a")
    cost = usd_to_units(expected_cost("fast-primary", PROMPT_TOKENS, 8))
    assert (session_status.budget, session_status.spent_units, session_status.held_units) == (
        "session-total",
        cost,
        0,
    )
    assert session_status.remaining_units == 1_000_000_000 - cost  # $1 in nano-dollars
    (user_status,) = view.status("user", "u-1")
    assert user_status.spent_units == 2 * cost
    (global_status,) = view.status("global")
    assert global_status.spent_units == 3 * cost
    assert view.top("user", 5)["user-daily"] == [("u-1", 2 * cost), ("u-2", cost)]
    assert view.reset("user", "u-1") == ["user-daily"]
    assert view.status("user", "u-1")[0].spent_units == 0
    with pytest.raises(ValueError, match="unknown scope 'planet'"):
        view.status("planet", "x")


def test_a_downgrade_target_must_be_a_group(provider: ProviderDouble) -> None:
    policy = {"budgets": [{"scope": "user", "limit_usd": 1, "on_exceeded": "downgrade", "downgrade_to": "cheap"}]}
    with pytest.raises(ConfigError, match=r"budgets\[0\].downgrade_to: unknown model group 'cheap'"):
        CostRouter(router_config(provider.base_url), budgets=policy)
