"""The Redis store on a real Redis Cluster under concurrency, with a master killed mid-run.

Invariant after a failover: nothing is counted twice (a settle retried after an error
replays), and the only settles a failover may lose are those the replicas did not
confirm within ``settle_wait_ms``, each of which the store logs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis.cluster

from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budget_ref import BudgetRef, budget_key
from costrouter.config.budgets import StoreConfig
from costrouter.errors import BudgetStoreError
from costrouter.testing.redis_cluster import RedisClusterNodes
from tests.integration.budget_backends import ref

THREADS = 8
TASKS = 64
AMOUNT = 7
HOLD = 10
LIMIT = 10**9
AFTER = 100
"""Settles acknowledged before the kill, and again after the promotion."""


@pytest.fixture
def private_cluster() -> Iterator[RedisClusterNodes]:
    """A cluster of this test's own: it loses a master, which the session's cluster must not."""
    with RedisClusterNodes() as cluster:
        yield cluster


class Ledger:
    """What the callers saw: settles acknowledged, settles that raised (to retry), store errors."""

    def __init__(self) -> None:
        self.acked: set[str] = set()
        self.to_retry: set[str] = set()
        self.lock = threading.Lock()

    def record(self, call_id: str, *, acked: bool) -> None:
        with self.lock:
            (self.acked if acked else self.to_retry).add(call_id)


def _one_call(store: RedisBudgetStore, budget: BudgetRef, call_id: str, ledger: Ledger) -> None:
    try:
        if not store.reserve(budget, call_id, HOLD, enforce=True).granted:
            return
    except BudgetStoreError:
        return  # refused (fail_closed): the provider is never called, nothing to settle
    try:
        store.settle(budget, call_id, AMOUNT)
    except BudgetStoreError:
        ledger.record(call_id, acked=False)
    else:
        ledger.record(call_id, acked=True)


def _unconfirmed(caplog: pytest.LogCaptureFixture) -> set[str]:
    """The call ids whose settle the store logged as not confirmed by a replica."""
    return {
        str(record.args[0])  # type: ignore[index]
        for record in caplog.records
        if record.name == "costrouter.budget.redis_durable" and isinstance(record.args, tuple)
    }


def _lost(url: str, store: RedisBudgetStore, budget: BudgetRef, call_ids: set[str]) -> set[str]:
    """The acknowledged settles that the cluster (reached through a live node's ``url``) no longer has as settled."""
    client = redis.cluster.RedisCluster.from_url(url, decode_responses=True)
    fields = [f"c:{call_id}" for call_id in sorted(call_ids)]
    records = client.hmget(f"{budget_key(store.config.key_prefix, budget)}:c", fields)
    client.close()
    return {call_id for call_id, record in zip(sorted(call_ids), records, strict=True) if "settled" not in str(record)}


def _wait_for(ledger: Ledger, count: int) -> None:
    while len(ledger.acked) < count:
        threading.Event().wait(0.01)


def _check(
    cluster: RedisClusterNodes,
    store: RedisBudgetStore,
    budget: BudgetRef,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lost = _lost(cluster.url, store, budget, ledger.acked)
    unconfirmed = _unconfirmed(caplog)
    for call_id in sorted(ledger.to_retry):  # what a caller (or the settle journal) does after an error
        store.settle(budget, call_id, AMOUNT)
    settled = ledger.acked | ledger.to_retry
    spent = store.status(budget).spent_units
    print(
        f"\nfailover: {len(settled)} settled calls ({len(ledger.to_retry)} retried after an error), "
        f"counter {spent} of {AMOUNT * len(settled)} units; {len(unconfirmed)} settles unconfirmed "
        f"by a replica (after the failover its shard has none), {len(lost)} lost"
    )
    assert len(ledger.acked) >= 2 * AFTER
    assert lost <= unconfirmed  # a settle a replica confirmed survived the failover
    assert spent == AMOUNT * (len(settled) - len(lost))  # nothing counted twice, nothing else missing


def test_threads_keep_exact_books_through_a_failover(
    private_cluster: RedisClusterNodes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="costrouter.budget.redis_durable")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    config = StoreConfig(backend="redis", cluster=True, key_prefix=prefix)
    budget = ref(LIMIT, scope_id="shared")
    ledger = Ledger()
    stop = threading.Event()
    with RedisBudgetStore(config, url=private_cluster.url) as store:

        def run(worker: int) -> None:
            index = 0
            while not stop.is_set():
                _one_call(store, budget, f"w{worker}-c{index}", ledger)
                index += 1

        threads = [threading.Thread(target=run, args=(worker,)) for worker in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            _wait_for(ledger, AFTER)
            private_cluster.kill_master(f"{budget_key(prefix, budget)}:c")  # mid-run, the budget's own slot
            _wait_for(ledger, len(ledger.acked) + AFTER)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        _check(private_cluster, store, budget, ledger, caplog)


def test_async_tasks_keep_exact_books_through_a_failover(
    private_cluster: RedisClusterNodes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="costrouter.budget.redis_durable")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    config = StoreConfig(backend="redis", cluster=True, key_prefix=prefix)
    budget = ref(LIMIT, scope_id="shared")
    ledger = Ledger()
    target = [AFTER]
    reached = asyncio.Event()

    async def one(store: RedisBudgetStore, call_id: str) -> None:
        await asyncio.sleep(0)  # a failing store may answer without suspending: let the rest of the loop run
        try:
            if not (await store.areserve(budget, call_id, HOLD, enforce=True)).granted:
                return
        except BudgetStoreError:
            return
        try:
            await store.asettle(budget, call_id, AMOUNT)
        except BudgetStoreError:
            ledger.record(call_id, acked=False)
        else:
            ledger.record(call_id, acked=True)
            if len(ledger.acked) >= target[0]:
                reached.set()

    async def acked(count: int) -> None:
        target[0] = count
        reached.clear()
        if len(ledger.acked) < count:
            await reached.wait()

    async def run() -> None:
        async with RedisBudgetStore(config, url=private_cluster.url) as store:
            stop = asyncio.Event()

            async def worker(number: int) -> None:
                index = 0
                while not stop.is_set():
                    await one(store, f"t{number}-c{index}")
                    index += 1

            workers = [asyncio.create_task(worker(number)) for number in range(TASKS)]
            try:
                await acked(AFTER)
                await asyncio.to_thread(private_cluster.kill_master, f"{budget_key(prefix, budget)}:c")
                await acked(len(ledger.acked) + AFTER)
            finally:
                stop.set()
                await asyncio.gather(*workers)

    asyncio.run(run())
    with RedisBudgetStore(config, url=private_cluster.url) as store:
        _check(private_cluster, store, budget, ledger, caplog)


def test_a_node_whose_port_was_taken_moves_to_a_free_one() -> None:
    """Another process binding a node's port between the pick and the start costs a retry, not the test run."""
    nodes = RedisClusterNodes()
    taken = nodes.ports[0]
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", taken))
    squatter.listen()
    try:
        with nodes as cluster:
            assert taken not in cluster.ports
            assert len(set(cluster.ports)) == 6
            client = redis.cluster.RedisCluster.from_url(cluster.url)
            try:
                client.set("moved", "1")
                assert client.get("moved") == b"1"
            finally:
                client.close()
    finally:
        squatter.close()
