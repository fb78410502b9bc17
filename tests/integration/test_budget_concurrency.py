"""Many concurrent reserve/settle pairs on one budget never overspend and keep exact books."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from costrouter.budget.memory import MemoryBudgetStore
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.store import BudgetStore
from costrouter.config.budgets import StoreConfig
from tests.integration.budget_backends import ref, worker_context

PROCESSES = 4
CALLS_PER_PROCESS = 50
THREADS = 16
LIMIT = 20_000
HOLD = 500


def _actual(call_id: str) -> int:
    """A deterministic actual cost at or below the hold (a few calls cost nothing)."""
    return random.Random(call_id).randint(0, HOLD)


def _one_call(store: BudgetStore, scope_id: str, call_id: str) -> tuple[bool, int]:
    budget = ref(LIMIT, scope_id=scope_id)
    if not store.reserve(budget, call_id, HOLD, enforce=True).granted:
        return False, 0
    return True, store.settle(budget, call_id, _actual(call_id)).charged_units


async def _many_calls(url: str, prefix: str, scope_id: str, worker: int) -> list[tuple[bool, int]]:
    # The store's defaults: users run them on busy machines too.
    config = StoreConfig(backend="redis", key_prefix=prefix)
    budget = ref(LIMIT, scope_id=scope_id)
    async with RedisBudgetStore(config, url=url) as store:

        async def one(call_id: str) -> tuple[bool, int]:
            if not (await store.areserve(budget, call_id, HOLD, enforce=True)).granted:
                return False, 0
            await asyncio.sleep(0)
            return True, (await store.asettle(budget, call_id, _actual(call_id))).charged_units

        return await asyncio.gather(*(one(f"w{worker}-c{i}") for i in range(CALLS_PER_PROCESS)))


def _worker(arguments: tuple[str, str, str, int]) -> list[tuple[bool, int]] | str:
    """Run one worker's calls; an error comes back as text (some exceptions do not unpickle)."""
    try:
        return asyncio.run(_many_calls(*arguments))
    except Exception as exc:
        return repr(exc)


def _check(store: BudgetStore, scope_id: str, results: list[tuple[bool, int]]) -> None:
    granted = [charged for ok, charged in results if ok]
    refused = [ok for ok, _ in results if not ok]
    assert len(granted) + len(refused) == PROCESSES * CALLS_PER_PROCESS
    assert granted
    assert refused
    status = store.status(ref(LIMIT, scope_id=scope_id))
    assert status.spent_units == sum(granted)
    assert status.spent_units <= LIMIT
    assert (status.held_units, status.active_holds) == (0, 0)


def test_redis_processes_share_one_budget_without_overspending(redis_url: str) -> None:
    prefix, scope_id = f"t{uuid.uuid4().hex[:12]}", "shared"
    with worker_context().Pool(PROCESSES) as pool:
        per_worker = pool.map(_worker, [(redis_url, prefix, scope_id, worker) for worker in range(PROCESSES)])
    assert [result for result in per_worker if isinstance(result, str)] == []
    with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url) as store:
        _check(
            store, scope_id, [result for results in per_worker if not isinstance(results, str) for result in results]
        )


def test_memory_threads_share_one_budget_without_overspending() -> None:
    store = MemoryBudgetStore(StoreConfig())
    start = threading.Barrier(THREADS)

    def run(worker: int) -> list[tuple[bool, int]]:
        start.wait()
        return [_one_call(store, "shared", f"w{worker}-c{i}") for i in range(PROCESSES * CALLS_PER_PROCESS // THREADS)]

    with ThreadPoolExecutor(THREADS) as pool:
        per_thread = list(pool.map(run, range(THREADS)))
    results = [result for results in per_thread for result in results]
    results += [_one_call(store, "shared", f"rest-{i}") for i in range(PROCESSES * CALLS_PER_PROCESS - len(results))]
    _check(store, "shared", results)
