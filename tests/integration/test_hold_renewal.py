"""Long calls keep their hold: renewal while a call or stream runs, and visible unheld settles.

On the memory store (moved by a fake clock at the store level, the real clock through the
router) and on real Redis.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.budget import BudgetPolicy, BudgetRef, MemoryBudgetStore
from costrouter.budget.renewal import HoldRenewer
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from tests.integration.budget_backends import BACKENDS, Backend, make_backend, ref
from tests.routing import router_config

# ---- the store operation -------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from make_backend(request)


def test_a_renewed_hold_outlives_its_ttl(backend: Backend) -> None:
    store = backend.store(hold_ttl_seconds=1)
    budget = ref(100)
    assert store.reserve(budget, "long", 100, enforce=True).granted
    for _ in range(3):
        backend.advance(0.6)
        assert store.renew(budget, "long")
    # 1.8 s after the reserve, a second past the TTL: the hold still keeps the room.
    assert not store.reserve(budget, "other", 1, enforce=True).granted
    status = store.status(budget)
    assert (status.held_units, status.active_holds) == (100, 1)
    settled = store.settle(budget, "long", 60)
    assert (settled.spent_units, settled.held_units, settled.unheld) == (60, 0, False)


def test_renew_is_idempotent_and_never_revives_a_finished_hold(backend: Backend) -> None:
    store = backend.store()
    budget = ref(100)
    store.reserve(budget, "a", 10, enforce=True)
    store.reserve(budget, "b", 10, enforce=True)
    assert store.renew(budget, "a")
    assert store.renew(budget, "a")
    store.settle(budget, "a", 5)
    store.release(budget, "b")
    assert not store.renew(budget, "a")
    assert not store.renew(budget, "b")
    assert not store.renew(budget, "never-reserved")
    assert store.status(budget).held_units == 0


async def test_async_renew_matches_sync(backend: Backend) -> None:
    store = backend.store()
    budget = ref(100)
    await store.areserve(budget, "a", 10, enforce=True)
    assert await store.arenew(budget, "a")
    await store.arelease(budget, "a")
    assert not await store.arenew(budget, "a")
    await store.aclose()


def test_a_settle_after_the_hold_expired_still_charges_and_is_counted(backend: Backend) -> None:
    store = backend.store(hold_ttl_seconds=1)
    budget = ref(100)
    store.reserve(budget, "late", 100, enforce=True)
    backend.advance(1.5)
    assert store.reserve(budget, "other", 100, enforce=True).granted  # the expired hold was swept out
    assert not store.renew(budget, "late")
    late = store.settle(budget, "late", 70)
    on_time = store.settle(budget, "other", 50)
    assert (late.unheld, on_time.unheld) == (True, False)
    status = store.status(budget)
    assert (status.spent_units, status.unheld_settles) == (120, 1)  # over the limit, and it says so


def test_a_settle_with_no_hold_at_all_is_counted_as_unheld(backend: Backend) -> None:
    store = backend.store()
    budget = ref(100)
    assert store.settle(budget, "fail-open", 10).unheld
    assert not store.release(budget, "fail-open-2").unheld
    assert store.status(budget).unheld_settles == 1


# ---- through the router --------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "hi"}]
TTL = 2
ROUTER_BACKENDS = [pytest.param("memory", id="memory"), pytest.param("redis", id="redis")]


@pytest.fixture(params=ROUTER_BACKENDS)
def store_section(request: pytest.FixtureRequest) -> dict[str, Any]:
    section: dict[str, Any] = {
        "backend": request.param,
        "key_prefix": f"t{uuid.uuid4().hex[:10]}",
        "hold_ttl_seconds": TTL,
    }
    if request.param == "redis":
        section["redis_url"] = request.getfixturevalue("redis_url")
        # The per-call path (leases are the default): these tests read each hold and settle in Redis
        # as the call makes it; test_budget_leases.py and the fault invariants cover leases.
        section["lease"] = {"enabled": False}
    return section


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture, store_section: dict[str, Any]) -> Iterator[CostRouter]:
    provider.reset()
    # One hold of a `fast` call with max_tokens=50 (~0.0001) fits under the limit; two do not.
    made = CostRouter(
        router_config(provider.base_url),
        budgets={"store": store_section, "budgets": [{"scope": "session", "limit_usd": 0.00015}]},
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    yield made
    made.shutdown()


def session(router: CostRouter, session_id: str) -> BudgetRef:
    assert isinstance(router.policy, BudgetPolicy)
    (budget,) = router.policy.budgets_for(session_id=session_id)
    return budget


def spent_and_held(router: CostRouter, session_id: str) -> tuple[int, int]:
    assert router.store is not None
    status = router.store.status(session(router, session_id))
    return status.spent_units, status.held_units


async def await_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def settled_on(span: Any) -> int:
    return usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))


async def test_an_async_call_longer_than_the_ttl_keeps_its_hold(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(delay=2.5 * TTL))
    long_call = asyncio.create_task(router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-long"))
    await await_until(lambda: provider.request_count() == 1)
    await asyncio.sleep(1.5 * TTL)  # past the TTL: without renewal the hold would be gone
    with pytest.raises(BudgetExceededError):
        await router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-long")
    await long_call
    assert provider.request_count() == 1
    charged = [settled_on(span) for span in capture.call_spans() if sc.BUDGET_SETTLED_USD in (span.attributes or {})]
    assert len(charged) == 1
    assert spent_and_held(router, "s-long") == (charged[0], 0)
    assert charged[0] <= session(router, "s-long").limit_units


def test_a_sync_call_longer_than_the_ttl_keeps_its_hold(router: CostRouter, provider: ProviderDouble) -> None:
    provider.set_default("fast-model", Reply(delay=2.5 * TTL))
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(router.route_completion("fast", MESSAGES, max_tokens=50, session_id="s-sync"))
    )
    worker.start()
    deadline = time.monotonic() + 30
    while provider.request_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.5 * TTL)
    with pytest.raises(BudgetExceededError):
        router.route_completion("fast", MESSAGES, max_tokens=50, session_id="s-sync")
    worker.join()
    assert len(results) == 1
    assert provider.request_count() == 1
    spent, held = spent_and_held(router, "s-sync")
    assert held == 0
    assert 0 < spent <= session(router, "s-sync").limit_units


async def test_a_stream_longer_than_the_ttl_keeps_its_hold(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("fast-model", Reply(completion_tokens=12, chunk_delay=0.4 * TTL))
    stream = await router.aroute_completion("fast", MESSAGES, stream=True, max_tokens=50, session_id="s-stream")
    chunks = 0
    refused = False
    async for _ in stream:
        chunks += 1
        if chunks == 6 and not refused:  # about 2 TTLs into the stream
            with pytest.raises(BudgetExceededError):
                await router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-stream")
            refused = True
    assert refused
    spans = [span for span in capture.call_spans() if span.attributes[sc.ROUTER_STREAM] is True]  # type: ignore[index]
    (span,) = spans
    assert spent_and_held(router, "s-stream") == (settled_on(span), 0)


async def test_a_hold_lost_mid_call_is_visible_on_span_log_metric_and_status(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    provider.set_default("fast-model", Reply(delay=1.0))
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        call = asyncio.create_task(router.aroute_completion("fast", MESSAGES, max_tokens=50, session_id="s-lost"))
        await await_until(lambda: provider.request_count() == 1)
        assert router.budgets is not None
        router.budgets.reset("session", "s-lost")  # the live hold is dropped under the running call
        await call
    (span,) = capture.call_spans()
    (event,) = [event for event in span.events if event.name == sc.EVENT_UNHELD_SETTLE]
    assert event.attributes["scope_id"] == "s-lost"  # type: ignore[index]
    assert "with no live hold" in caplog.text
    assert [point.value for _, point in capture.metric_points(sc.METRIC_BUDGET_UNHELD_SETTLES)] == [1]
    assert router.store is not None
    status = router.store.status(session(router, "s-lost"))
    assert (status.unheld_settles, status.held_units) == (1, 0)
    assert status.spent_units == settled_on(span)


def test_shutdown_stops_the_renewer(router: CostRouter) -> None:
    router.route_completion("fast", MESSAGES, max_tokens=50, session_id="s-stop")
    renewer = router._planner.renewer
    assert renewer is not None
    assert renewer.running
    router.shutdown()
    assert not renewer.running
    renewer.track("late", [session(router, "s-stop")])
    assert renewer.live() == 0


def test_a_renewer_dropped_without_stop_lets_its_thread_end() -> None:
    store = MemoryBudgetStore()
    renewer = HoldRenewer(store, 1)
    renewer.track("c1", [ref(100)])
    thread = renewer._thread
    assert thread is not None
    del renewer
    gc.collect()
    thread.join(30)
    assert not thread.is_alive()
