"""Learned prompt-token ratios: kept by both stores, shared by every router on one Redis."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from costrouter import CostRouter
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.store import BudgetStore, token_ratio_key
from costrouter.config.budgets import StoreConfig
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.pricing.ratio_rule import RatioRule
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from tests.integration.budget_backends import BACKENDS, Backend, make_backend
from tests.routing import router_config


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from make_backend(request)


def _rule(decay: float) -> RatioRule:
    return RatioRule(prior=2.0, decay=decay, step=2.0, cap=8.0, half_life_seconds=None)


def _ratios(store: BudgetStore) -> dict[str, tuple[float, int]]:
    return {d: (learned.ratio, learned.observations) for d, learned in store.token_ratios().items()}


def test_a_ratio_learns_upward_by_bounded_steps_and_decays_by_evidence(backend: Backend) -> None:
    store = backend.store()
    assert store.token_ratios() == {}
    assert store.observe_token_ratio("dep-a", 1.25, _rule(0.5)) == 1.25
    assert store.observe_token_ratio("dep-a", 1.75, _rule(0.5)) == 1.75  # up: at once, within a step
    assert store.observe_token_ratio("dep-a", 0.75, _rule(0.5)) == 1.25  # down: half of the gap
    assert store.observe_token_ratio("dep-a", 0.75, _rule(0.0)) == 1.25  # decay 0: never down
    assert store.observe_token_ratio("dep-a", 1e9, _rule(0.5)) == 2.5  # an outlier: one step up
    assert store.observe_token_ratio("dep-a", 1e9, _rule(0.5)) == 5.0
    assert store.observe_token_ratio("dep-a", 1e9, _rule(0.5)) == 8.0  # never past the cap
    assert store.observe_token_ratio("dep-b", 0.5, _rule(0.5)) == 0.5
    assert _ratios(store) == {"dep-a": (8.0, 7), "dep-b": (0.5, 1)}
    assert all(learned.age_seconds >= 0 for learned in store.token_ratios().values())

    async def twins() -> tuple[float, dict[str, float]]:
        learned = await store.aobserve_token_ratio("dep-b", 3.0, _rule(0.5))
        ratios = await store.atoken_ratios()
        await store.aclose()
        return learned, {d: r.ratio for d, r in ratios.items()}

    assert asyncio.run(twins()) == (1.0, {"dep-a": 8.0, "dep-b": 1.0})


def test_a_ratio_is_forgotten_one_by_one_or_all_at_once(backend: Backend) -> None:
    store = backend.store()
    for deployment_id in ("a", "b", "c"):
        store.observe_token_ratio(deployment_id, 1.5, _rule(0.02))
    assert store.reset_token_ratios("b") == ["b"]
    assert store.reset_token_ratios("b") == []
    assert sorted(store.token_ratios()) == ["a", "c"]
    assert store.reset_token_ratios() == ["a", "c"]
    assert store.token_ratios() == {}


@pytest.mark.parametrize(("ratio", "decay"), [(0.0, 0.1), (-1.0, 0.1), (float("inf"), 0.1), (1.0, 1.5)])
def test_a_ratio_that_would_poison_estimates_is_refused(backend: Backend, ratio: float, decay: float) -> None:
    with pytest.raises(ValueError, match="token ratio"):
        backend.store().observe_token_ratio("dep", ratio, _rule(decay))


def test_redis_keeps_the_ratios_under_the_key_prefix_for_every_store(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = StoreConfig(backend="redis", key_prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    before = client.time()
    with RedisBudgetStore(config, url=redis_url) as one, RedisBudgetStore(config, url=redis_url) as other:
        one.observe_token_ratio("dep", 1.6, _rule(0.02))
        assert _ratios(other) == {"dep": (1.6, 1)}
    after = client.time()
    ratio, observations, at = client.hget(token_ratio_key(prefix), "dep").decode().split("|")
    assert (ratio, observations) == ("1.6000000000000001", "1")
    assert before[0] + before[1] / 1e6 <= float(at) <= after[0] + after[1] / 1e6  # the server's clock
    assert token_ratio_key(prefix).startswith("{" + prefix + ":")
    client.close()


def test_a_record_of_an_earlier_version_or_garbage_is_read_safely(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(redis_url)
    client.hset(token_ratio_key(prefix), mapping={"old": "3333333.5", "junk": "nan|x|y", "neg": "-2"})
    with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url) as store:
        assert _ratios(store) == {"old": (3333333.5, 0)}
        assert store.observe_token_ratio("old", 1.0, _rule(0.5)) == 8.0 - 7.0 * 0.5  # read within the cap first
        assert store.observe_token_ratio("junk", 1.5, _rule(0.5)) == 1.5  # garbage counts as no record
    client.close()


def _router(provider: ProviderDouble, capture: TelemetryCapture, store: dict[str, Any]) -> CostRouter:
    return CostRouter(
        router_config(provider.base_url, num_retries=0),
        budgets={"store": store, "budgets": [{"scope": "session", "limit_usd": 1000, "window": "total"}]},
        tracer_provider=capture.tracer_provider,
    )


def _estimate_and_settled(capture: TelemetryCapture) -> tuple[int, int]:
    span = capture.call_spans()[-1]
    attributes = dict(span.attributes or {})
    return (
        usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD])),  # type: ignore[arg-type]
        usd_to_units(float(attributes[sc.BUDGET_SETTLED_USD])),  # type: ignore[arg-type]
    )


def test_a_ratio_learned_by_one_router_bounds_the_next_call_of_another(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str
) -> None:
    # A provider counting 4x tiktoken: past the unlearned prior (2.0) and the safety factor (1.3).
    provider.reset()
    provider.set_prompt_token_factor("fast-model", 4.0)
    provider.set_default("fast-model", Reply(completion_tokens=5))
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    messages = [{"role": "user", "content": "Summarise the attached quarterly report in three short bullets. " * 20}]
    first, second = _router(provider, capture, store), _router(provider, capture, store)
    try:
        first.route_completion("fast", messages, max_tokens=5, session_id="a")
        cold_estimate, cold_settled = _estimate_and_settled(capture)
        assert cold_settled > cold_estimate  # what a fresh deployment with an unusual tokenizer costs once
        assert first.store_worker is not None
        assert first.store_worker.wait(60)  # the lesson went to Redis off the call's path; it has landed

        second.route_completion("fast", messages, max_tokens=5, session_id="b")
        warm_estimate, warm_settled = _estimate_and_settled(capture)
        assert warm_settled == cold_settled
        assert warm_settled <= warm_estimate  # the other router (its own store and cache) learned it
    finally:
        first.shutdown()
        second.shutdown()
        provider.set_prompt_token_factor("fast-model", None)


def test_after_the_first_read_ratios_make_no_round_trip_on_a_call_path(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str
) -> None:
    provider.reset()
    provider.set_prompt_token_factor("fast-model", 3.0)
    provider.set_default("fast-model", Reply(completion_tokens=5))
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    router = _router(provider, capture, store)
    on_path: list[str] = []
    budget_store = router.store
    assert budget_store is not None
    assert router.store_worker is not None
    for name in ("atoken_ratios", "aobserve_token_ratio", "token_ratios", "observe_token_ratio"):
        method = getattr(budget_store, name)

        def counted(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            if threading.current_thread().name.startswith("costrouter-store-worker"):
                return _method(*args, **kwargs)
            on_path.append(_name)
            return _method(*args, **kwargs)

        setattr(budget_store, name, counted)
    clock = [0.0]
    router.planner.ratios.clock = lambda: clock[0]
    messages = [{"role": "user", "content": "Summarise the attached quarterly report in three bullets. " * 10}]

    async def calls() -> None:
        for _ in range(4):
            await router.aroute_completion("fast", messages, max_tokens=5, session_id="s")
            clock[0] += 60  # every later call comes after a refresh period: a read and a lesson are due

    try:
        asyncio.run(calls())
        assert on_path == ["atoken_ratios"]  # the process's first read only
        assert router.store_worker.wait(60)
        learned = budget_store.token_ratios()["fast-primary"].ratio
        assert learned == router.planner.ratios.ratios["fast-primary"] > 2.0
    finally:
        router.shutdown()
        provider.set_prompt_token_factor("fast-model", None)
