"""Issue 25, finding 1: one absurd usage block must not wrap a counter, vanish, or open a budget.

The red team's repro: a provider answers ``completion_tokens: 1e20``; on Redis the session's
``spent`` became -9,223,372,036,854,775,808 and every later call was admitted (20 of 20); with
leases on, the charge vanished. Here the provider double answers that (and other hostile
figures) to a real router on a real Redis, with and without leases.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from packaging.version import Version

from costrouter import BudgetExceededError, CostRouter
from costrouter.budget.factory import leased_store_of
from costrouter.budget.memory import MemoryBudgetStore
from costrouter.budget.redis import RedisBudgetStore, _Call
from costrouter.budget.store import BudgetStore
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import BudgetPolicy, StoreConfig
from costrouter.money import MAX_COUNTER_UNITS, usd_to_units
from costrouter.otel import semconv as sc
from costrouter.routing.needs import litellm_version
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "a call whose answer lies about its usage"}]
LIMIT_USD = 0.0003


@pytest.fixture
def capture() -> Iterator[TelemetryCapture]:
    telemetry = TelemetryCapture()
    yield telemetry
    telemetry.shutdown()


def _budgets(store: dict[str, Any]) -> dict[str, Any]:
    return {"store": store, "budgets": [{"scope": "session", "limit_usd": LIMIT_USD, "window": "total"}]}


def _router(provider: ProviderDouble, capture: TelemetryCapture, store: dict[str, Any]) -> CostRouter:
    return CostRouter(
        router_config(provider.base_url, num_retries=0),
        budgets=_budgets(store),
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )


def _micros(span_attributes: Any, name: str) -> int:
    return usd_to_units(float(span_attributes[name]))


def _spent(store: dict[str, Any], session: str) -> int:
    policy = BudgetPolicy.model_validate(_budgets(store))
    (ref,) = policy.budgets_for(session_id=session)
    config = StoreConfig.model_validate({**store, "lease": {"enabled": False}})
    if config.backend == "memory":
        raise AssertionError("read a memory store through its router")
    with RedisBudgetStore(config) as reader:
        return reader.status(ref).spent_units


@pytest.mark.parametrize("leases", [False, True], ids=["per-call", "leases"])
def test_an_absurd_completion_count_is_charged_its_hold_and_the_budget_still_refuses(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str, leases: bool, caplog: pytest.LogCaptureFixture
) -> None:
    provider.reset()
    provider.script("fast-model", Reply(completion_tokens=5, usage_details={"completion_tokens": 10**20}))
    provider.set_default("fast-model", Reply(completion_tokens=5))
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"h{uuid.uuid4().hex[:10]}"}
    store["lease"] = {"enabled": leases}
    router = _router(provider, capture, store)
    admitted = 0
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        router.route_completion("fast", MESSAGES, max_tokens=5, session_id="s")
        for _ in range(20):
            try:
                router.route_completion("fast", MESSAGES, max_tokens=5, session_id="s")
            except BudgetExceededError:
                continue
            admitted += 1
    router.shutdown()  # with leases: carries every settled amount to Redis

    first, *rest = capture.call_spans()
    attributes = dict(first.attributes or {})
    assert attributes[sc.ROUTER_USAGE_IMPLAUSIBLE] == ("completion_tokens",)
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "estimated"
    hold = _micros(attributes, sc.BUDGET_ESTIMATE_USD)
    assert _micros(attributes, sc.LLM_USAGE_COST_USD) == hold
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] <= 2**31  # held at its bound, never 1e20 on a span
    charged = [_micros(span.attributes, sc.LLM_USAGE_COST_USD) for span in rest if span.attributes]
    spent = _spent(store, "s")
    assert spent == hold + sum(charged)  # never wrapped, never dropped: the books add up
    assert 0 < spent <= usd_to_units(LIMIT_USD)
    assert admitted < 20  # the budget still refuses
    assert "answered implausible completion_tokens" in caplog.text
    ((labels, point),) = capture.metric_points(sc.METRIC_IMPLAUSIBLE_USAGE)
    assert (labels, point.value) == ({sc.ROUTER_DEPLOYMENT_ID: "fast-primary"}, 1)


def _litellm_refuses_huge_details() -> bool:
    """LiteLLM 1.110 on raises OverflowError on a usage detail past 64 bits, before costrouter reads it."""
    version = litellm_version()
    return version is not None and version >= Version("1.110.0")


HOSTILE = [
    pytest.param({"prompt_tokens": 10**20}, ("prompt_tokens",), id="prompt-1e20"),
    pytest.param({"completion_tokens": -5}, ("completion_tokens",), id="negative"),
    pytest.param(
        {"completion_tokens_details": {"reasoning_tokens": 10**20}},
        ("completion_tokens", "total_tokens", "reasoning_tokens"),
        id="detail-1e20",
    ),
]


@pytest.mark.parametrize(("usage", "flagged"), HOSTILE)
@pytest.mark.parametrize("backend", ["memory", "redis", "redis-leases"])
def test_every_hostile_figure_is_flagged_and_charged_the_hold(
    provider: ProviderDouble,
    capture: TelemetryCapture,
    redis_url: str,
    backend: str,
    usage: dict[str, Any],
    flagged: tuple[str, ...],
) -> None:
    provider.reset()
    provider.script("fast-model", Reply(completion_tokens=5, usage_details=usage))
    store: dict[str, Any] = {"backend": backend.split("-", maxsplit=1)[0], "key_prefix": f"h{uuid.uuid4().hex[:10]}"}
    if backend != "memory":
        store["redis_url"] = redis_url
        store["lease"] = {"enabled": backend == "redis-leases"}
    router = _router(provider, capture, store)
    litellm_raises = "reasoning_tokens" in flagged and _litellm_refuses_huge_details()
    try:
        if litellm_raises:  # LiteLLM 1.110's Rust router core cannot hold the figure and raises itself
            with pytest.raises(OverflowError):
                router.route_completion("fast", MESSAGES, max_tokens=5, session_id="s")
        else:
            router.route_completion("fast", MESSAGES, max_tokens=5, session_id="s")
        leased = leased_store_of(router.store)
        if leased is not None:
            leased.flush()  # carry the leased spend now, not within flush_seconds
        (status,) = router.budgets.status("session", "s")  # type: ignore[union-attr]
    finally:
        router.shutdown()
    attributes = dict(capture.call_spans()[-1].attributes or {})
    if litellm_raises:  # LiteLLM's own exception passes through; the books hold no more than the hold
        assert attributes[sc.ERROR_TYPE] == "OverflowError"
        assert 0 <= status.spent_units <= _micros(attributes, sc.BUDGET_ESTIMATE_USD)
        return
    assert attributes[sc.ROUTER_USAGE_IMPLAUSIBLE] == flagged
    assert (
        status.spent_units == _micros(attributes, sc.BUDGET_ESTIMATE_USD) == _micros(attributes, sc.LLM_USAGE_COST_USD)
    )


def test_a_billion_dollar_cost_header_is_flagged_and_charged_the_hold(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str
) -> None:
    provider.reset()
    provider.script("fast-model", Reply(completion_tokens=5, headers={"x-litellm-response-cost": "1e30"}))
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"h{uuid.uuid4().hex[:10]}"}
    router = _router(provider, capture, store)
    try:
        router.route_completion("fast", MESSAGES, max_tokens=5, session_id="s")
    finally:
        router.shutdown()
    attributes = dict(capture.call_spans()[-1].attributes or {})
    assert attributes[sc.ROUTER_USAGE_IMPLAUSIBLE] == ("provider_cost",)
    assert _spent(store, "s") == _micros(attributes, sc.BUDGET_ESTIMATE_USD)


# ---- the counters themselves saturate -----------------------------------------------------------
def _ref() -> BudgetRef:
    policy = BudgetPolicy.model_validate({"budgets": [{"scope": "session", "limit_usd": 1, "window": "total"}]})
    (ref,) = policy.budgets_for(session_id="s")
    return ref


def _store(backend: str, redis_url: str) -> BudgetStore:
    prefix = f"h{uuid.uuid4().hex[:10]}"
    if backend == "memory":
        return MemoryBudgetStore(StoreConfig(key_prefix=prefix))
    return RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_counter_saturates_at_the_ceiling_instead_of_wrapping(backend: str, redis_url: str) -> None:
    ref = _ref()
    with _store(backend, redis_url) as store:
        assert store.settle(ref, "c1", 10**30).spent_units == MAX_COUNTER_UNITS
        assert store.settle(ref, "c2", MAX_COUNTER_UNITS).spent_units == MAX_COUNTER_UNITS
        assert not store.reserve(ref, "c3", 1, enforce=True).granted
        assert store.reserve(ref, "c4", 10**30, enforce=False).held_units == 0
        assert store.status(ref).held_units == MAX_COUNTER_UNITS


def test_the_scripts_saturate_an_amount_given_past_the_ceiling(redis_url: str) -> None:
    # The scripts do not rely on the client's check: an argument of 1e30 micro-dollars saturates.
    ref = _ref()
    config = StoreConfig(backend="redis", key_prefix=f"h{uuid.uuid4().hex[:10]}")
    with RedisBudgetStore(config, url=redis_url) as store:
        call = _Call(config, ref)
        args = call.settle("c1", 0, release=False)
        args[2] = str(10**30)
        reply = store.run_script("settle", "settle", call.settle_keys(), args)
        assert (reply[1], reply[2]) == (MAX_COUNTER_UNITS, MAX_COUNTER_UNITS)
        lease = ["l", "owner", "", "1", str(10**30), "0", "0", "1", "0", "0", "0", "60", "total", "0", "60", "60"]
        lease += [str(ref.limit_units), ref.scope_id]
        reply = store.run_script("lease", "lease", call.settle_keys(), [call.base, *lease[1:]])
        assert reply[2] == MAX_COUNTER_UNITS  # spent: saturated, the message applied (HINCRBY failed it)
        client = redis.Redis.from_url(redis_url)
        assert client.hget(f"{call.base}:w:total", "spent") == str(MAX_COUNTER_UNITS).encode()
        client.close()


@pytest.mark.parametrize("mode", ["stream", "async"])
def test_a_stream_or_an_async_call_is_bounded_the_same_way(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str, mode: str
) -> None:
    provider.reset()
    provider.script("fast-model", Reply(completion_tokens=5, usage_details={"completion_tokens": 10**20}))
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"h{uuid.uuid4().hex[:10]}"}
    router = _router(provider, capture, store)
    try:
        if mode == "stream":
            for _ in router.route_completion("fast", MESSAGES, max_tokens=5, session_id="s", stream=True):
                pass
        else:
            asyncio.run(router.aroute_completion("fast", MESSAGES, max_tokens=5, session_id="s"))
    finally:
        router.shutdown()
    attributes = dict(capture.call_spans()[-1].attributes or {})
    assert "completion_tokens" in attributes[sc.ROUTER_USAGE_IMPLAUSIBLE]  # a stream's details say it too
    assert (
        _spent(store, "s") == _micros(attributes, sc.BUDGET_ESTIMATE_USD) == _micros(attributes, sc.LLM_USAGE_COST_USD)
    )
