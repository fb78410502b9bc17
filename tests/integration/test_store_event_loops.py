"""The Redis store's coroutines from more than one event loop: a second ``asyncio.run``, another thread's loop.

An async Redis connection belongs to the loop it was made in. Before, the store's async client
served only the loop that first used it, and a second ``asyncio.run`` on the same router (a script,
a notebook cell, a job runner) failed every routed call with ``RuntimeError: Event loop is closed``.
Now the loop that first uses the store keeps the async client, and any other loop goes through the
sync client in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest

from costrouter import CostRouter
from costrouter.budget.redis import RedisBudgetStore
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, TelemetryCapture
from tests.integration.budget_backends import REDIS_KINDS, Backend, make_backend, ref
from tests.routing import router_config


@pytest.fixture(params=REDIS_KINDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from make_backend(request)


async def _spend(store: RedisBudgetStore, call_id: str, amount: int) -> int:
    """Reserve, settle and read back one call's amount, every coroutine of the store on the running loop."""
    budget = ref(10_000)
    granted = await store.areserve(budget, call_id, amount, enforce=True)
    assert granted.granted
    assert await store.arenew(budget, call_id)
    settled = await store.asettle(budget, call_id, amount)
    assert settled.state == "settled"
    return (await store.astatus(budget)).spent_units


def test_each_asyncio_run_and_a_threads_loop_get_a_working_store(backend: Backend) -> None:
    store = backend.store()
    assert isinstance(store, RedisBudgetStore)

    spent = [asyncio.run(_spend(store, f"run-{i}", 10)) for i in range(3)]
    assert spent == [10, 20, 30]
    epoch = asyncio.run(store.aepoch("e1", None))
    assert (epoch.epoch, epoch.lost) == ("e1", False)

    from_thread: list[Any] = []

    def other_loop() -> None:
        try:
            from_thread.append(asyncio.run(_spend(store, "thread", 100)))
        except BaseException as exc:  # handed to the main thread's assertions
            from_thread.append(exc)

    async def both() -> int:
        thread = threading.Thread(target=other_loop)
        thread.start()
        mine = await _spend(store, "main", 1000)
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        return mine

    asyncio.run(both())
    assert len(from_thread) == 1
    assert isinstance(from_thread[0], int), from_thread
    final = store.status(ref(10_000))
    assert (final.spent_units, final.held_units, final.active_holds) == (30 + 100 + 1000, 0, 0)

    asyncio.run(store.areset(ref(10_000)))
    assert store.status(ref(10_000)).spent_units == 0


MESSAGES = [{"role": "user", "content": "hello"}]


def test_a_router_on_the_per_call_store_serves_a_second_asyncio_run(
    redis_url: str, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.reset()
    policy = {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": "loops", "lease": {"enabled": False}},
        "budgets": [{"scope": "session", "limit_usd": 10, "window": "total"}],
    }
    router = CostRouter(
        router_config(provider.base_url),
        budgets=policy,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    try:

        async def call() -> Any:
            return await router.aroute_completion("fast", MESSAGES, session_id="loops-1", max_tokens=5)

        for _ in range(3):
            asyncio.run(call())
        budgets = router.budgets
        assert budgets is not None
        (status,) = budgets.status("session", "loops-1")
    finally:
        router.shutdown()
    spans = capture.call_spans()
    assert [span.status.is_ok for span in spans] == [True, True, True]
    charged = sum(usd_to_units(float(cast(float, span.attributes[sc.LLM_USAGE_COST_USD]))) for span in spans)  # type: ignore[index]
    assert (status.spent_units, status.held_units, status.active_holds) == (charged, 0, 0)
    assert charged > 0
