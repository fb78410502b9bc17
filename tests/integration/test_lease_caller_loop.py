"""A lease message an async call waits for goes out on the caller's own event loop.

Through a worker thread, every call that opened a lease paid two hand-overs of the GIL to a thread
that had to wait for a busy loop (throughput with one-call sessions fell to 0.78 of the bare Router,
``benchmarks/lease_throughput.py``). These tests hold what the loop path must keep: no thread, the
books exact when calls are cancelled mid-message, and a sync call made on a loop's own thread never
waiting for a message of that loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import threading
import uuid

import pytest

from costrouter.budget.leases import LeasedStore
from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budget_ref import GLOBAL_SCOPE_ID, BudgetRef
from costrouter.config.budgets import LeaseSettings, StoreConfig
from tests.integration.budget_backends import ref


def _stores(url: str) -> tuple[LeasedStore, RedisBudgetStore, StoreConfig]:
    config = StoreConfig(backend="redis", key_prefix=f"t{uuid.uuid4().hex[:10]}", journal_dir=None)
    plain = RedisBudgetStore(config.model_copy(update={"lease": LeaseSettings(enabled=False)}), url=url)
    return LeasedStore(RedisBudgetStore(config, url=url)), plain, config


def _lease_workers() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("costrouter-lease_")]


async def test_a_call_that_opens_a_lease_sends_its_message_from_its_own_loop(redis_url: str) -> None:
    store, plain, _ = _stores(redis_url)
    sessions = [ref(1_000_000, scope_id=f"s{index}") for index in range(30)]
    try:

        async def call(index: int, budget: BudgetRef) -> None:
            assert (await store.areserve(budget, f"c{index}", 1000, enforce=True)).granted
            await store.asettle(budget, f"c{index}", 700)

        await asyncio.gather(*(call(index, budget) for index, budget in enumerate(sessions)))
        assert store.waits == 30  # each session's first call opened its lease with a message it waited for
        assert _lease_workers() == []  # ... sent from this loop: no worker thread was ever started
    finally:
        await store.aclose()
    assert sum(plain.status(budget).spent_units for budget in sessions) == 30 * 700
    assert sum(plain.status(budget).held_units for budget in sessions) == 0
    plain.close()


async def test_calls_of_a_new_session_arriving_together_wait_for_its_opening_on_their_loop(redis_url: str) -> None:
    store, plain, _ = _stores(redis_url)
    budget = ref(1_000_000)
    try:

        async def call(index: int) -> None:
            assert (await store.areserve(budget, f"c{index}", 1000, enforce=True)).granted
            await store.asettle(budget, f"c{index}", 400)

        await asyncio.gather(*(call(index) for index in range(12)))
        assert store.waits == 1  # one opening message; the 11 others waited for it and took from the lease
        assert _lease_workers() == []  # ... on this loop, woken when it ended, with no thread in between
    finally:
        await store.aclose()
    status = plain.status(budget)
    assert (status.spent_units, status.held_units) == (12 * 400, 0)
    plain.close()


async def test_a_shared_lease_grows_to_a_burst_of_its_calls_instead_of_making_them_wait_in_turn(
    redis_url: str,
) -> None:
    """200 calls of one global budget at once: the lease's spare follows its demand (``spare_calls``).

    With the spare fixed at 16 estimates (``max_calls: 16``, the default before) the calls waited in turn
    for a message each 16 of them, and every waiter was woken at each one: at 256 concurrent calls,
    3.5 waits a call in ``benchmarks/lease_throughput.py``'s set-up against 0.9 now.
    """

    async def burst(store: LeasedStore, budget: BudgetRef, first: int) -> None:
        async def call(index: int) -> None:
            assert (await store.areserve(budget, f"c{index}", 1000, enforce=True)).granted
            await store.asettle(budget, f"c{index}", 300)

        await asyncio.gather(*(call(index) for index in range(first, first + 200)))

    waits: dict[str, int] = {}
    for name, lease in (("demand", LeaseSettings()), ("fixed 16", LeaseSettings(max_calls=16))):
        config = StoreConfig(backend="redis", key_prefix=f"t{uuid.uuid4().hex[:10]}", journal_dir=None, lease=lease)
        store = LeasedStore(RedisBudgetStore(config, url=redis_url))
        plain = RedisBudgetStore(config.model_copy(update={"lease": LeaseSettings(enabled=False)}), url=redis_url)
        budget = dataclasses.replace(ref(10**12, name="total"), scope="global", scope_id=GLOBAL_SCOPE_ID)
        try:
            await burst(store, budget, 0)
            await burst(store, budget, 200)
            waits[name] = store.waits
        finally:
            await store.aclose()
        status = plain.status(budget)
        assert (status.spent_units, status.held_units) == (400 * 300, 0)  # the books exact either way
        plain.close()
    assert waits["demand"] <= 3  # the opening (2 here), then one message holding room for every woken caller
    assert waits["fixed 16"] >= 6  # 8 here: a message each 16 calls, plus what its pool served meanwhile


async def test_calls_cancelled_while_their_lease_message_is_out_leave_the_books_exact(redis_url: str) -> None:
    store, plain, _ = _stores(redis_url)
    shared = ref(10**12, scope_id="shared", name="team-total")  # one lease, messages out while others wait on it
    sessions = [ref(1_000_000, scope_id=f"s{index}") for index in range(60)]
    settled: dict[str, int] = {}
    rng = random.Random(7)
    try:

        async def call(index: int, budget: BudgetRef) -> None:
            call_id = f"c{index}"
            try:
                for target in (budget, shared):
                    assert (await store.areserve(target, call_id, 5000, enforce=True)).granted
                await asyncio.sleep(0)
            except asyncio.CancelledError:  # as a routed call's flow does: release, shielded, then end
                for target in (budget, shared):
                    await asyncio.shield(store.arelease(target, call_id))
                raise
            for target in (budget, shared):
                await store.asettle(target, call_id, 1000 + index)
            settled[call_id] = 1000 + index

        tasks = [asyncio.create_task(call(index, budget)) for index, budget in enumerate(sessions)]
        for task in rng.sample(tasks, 30):  # at different points: opening, waiting on the shared lease, after
            for _ in range(rng.randrange(0, 6)):
                await asyncio.sleep(0)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A cancelled call settled nothing (it never reached its settle) or everything (cancelled after it).
        assert 0 < len(settled) < len(sessions)
    finally:
        await store.aclose()  # resends what went unanswered, charges what was settled, gives every lease back
    spent = {budget.scope_id: plain.status(budget).spent_units for budget in sessions}
    assert sum(spent.values()) == sum(settled.values())
    assert plain.status(shared).spent_units == sum(settled.values())
    assert sum(plain.status(budget).held_units for budget in [*sessions, shared]) == 0
    plain.close()


async def test_a_sync_call_on_the_loop_thread_reserves_per_call_instead_of_waiting_for_that_loop(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store, plain, _ = _stores(redis_url)
    budget = ref(1_000_000)
    try:
        opening = asyncio.create_task(store.areserve(budget, "async-call", 1000, enforce=True))
        await asyncio.sleep(0)  # the task took the new lease's io and awaits its message's reply
        with caplog.at_level(logging.WARNING, logger="costrouter.budget"):
            # A sync reserve made inside this coroutine, on the loop's thread: waiting for the lease
            # would wait for `opening`, which cannot run until this returns.
            outcome = store.reserve(budget, "sync-call", 2000, enforce=True)
            second = store.reserve(budget, "sync-call-2", 2000, enforce=True)
        assert outcome.granted
        assert second.granted
        assert (await opening).granted
        warnings = [record for record in caplog.records if "reserves per call" in record.getMessage()]
        assert len(warnings) == 1  # said once, not per call
        store.settle(budget, "sync-call", 1500)  # per call: in Redis at once, not waiting for a lease message
        assert plain.status(budget).spent_units == 1500
        store.settle(budget, "sync-call-2", 0)
        await store.asettle(budget, "async-call", 800)
    finally:
        await store.aclose()
    status = plain.status(budget)
    assert (status.spent_units, status.held_units) == (1500 + 800, 0)
    plain.close()


def test_a_store_used_from_one_event_loop_after_another_keeps_working(redis_url: str) -> None:
    # A router used across several asyncio.run calls (a script, a notebook): the async client belongs
    # to the first loop, closed by the time the next one runs; later loops send through a worker thread.
    store, plain, _ = _stores(redis_url)
    sessions = [ref(1_000_000, scope_id=f"s{index}") for index in range(3)]

    async def call(index: int) -> bool:
        granted = (await store.areserve(sessions[index], f"c{index}", 1000, enforce=True)).granted
        await store.asettle(sessions[index], f"c{index}", 500)
        return granted

    try:
        assert [asyncio.run(call(index)) for index in range(3)] == [True, True, True]
    finally:
        store.close()
    assert [plain.status(budget).spent_units for budget in sessions] == [500, 500, 500]
    assert sum(plain.status(budget).held_units for budget in sessions) == 0
    plain.close()
