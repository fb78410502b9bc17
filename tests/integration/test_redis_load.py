"""The Redis store under load with its default settings: bursts, a CPU hog, a slow server.

The defaults must hold at 256 concurrent async calls per process on a busy 2-core
machine (another process keeping one core busy): every call reaches the store, and the
counters equal what the provider answered, priced. A slow store must still be detected
by the command timeout, not hidden behind the pool's wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from costrouter.budget import BudgetPolicy
from costrouter.budget.redis import SCRIPT_NAMES, RedisBudgetStore, script_source
from costrouter.config.budgets import StoreConfig
from costrouter.errors import BudgetStoreError
from costrouter.money import usd_to_units
from costrouter.testing import ProviderDouble, Reply
from costrouter.testing.provider import count_prompt_tokens
from costrouter.testing.redis_server import RedisServer
from tests.integration.budget_backends import ref
from tests.routing import expected_cost
from tests.workers.burst_calls import TEAM, burst_policy, session_of
from tests.workers.processes import run_workers

PROCESSES = 3
CALLS_PER_PROCESS = 256
COMPLETION_TOKENS = 10


@pytest.fixture
def cpu_hog() -> Iterator[None]:
    """Another process that keeps one core busy for the whole test."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A server of this test's own, so that its connections and DEBUG SLEEP touch nobody else."""
    with RedisServer() as server:
        yield server


def _run_workers(base_url: str, redis_url: str, prefix: str) -> list[dict[str, object]]:
    arguments = [base_url, redis_url, prefix, str(CALLS_PER_PROCESS)]
    return run_workers("tests.workers.burst_calls", arguments, PROCESSES)


@pytest.mark.usefixtures("cpu_hog")
def test_bursts_of_256_calls_per_process_beside_a_cpu_hog_hold_with_the_default_settings(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    with ProviderDouble() as provider:
        provider.set_default("fast-model", Reply(completion_tokens=COMPLETION_TOKENS, delay=0.05))
        results = _run_workers(provider.base_url, redis_url, prefix)
        answered = provider.requests

    store_errors = sum(int(result["store_errors"]) for result in results)  # type: ignore[call-overload]
    first_errors = [error for result in results for error in result["first_errors"]]  # type: ignore[attr-defined]
    completed = sum(int(result["completed"]) for result in results)  # type: ignore[call-overload]
    rejected = sum(int(result["rejected"]) for result in results)  # type: ignore[call-overload]
    settled = [amount for result in results for amount in result["settled_units"]]  # type: ignore[attr-defined]
    priced = [
        usd_to_units(expected_cost("fast-primary", count_prompt_tokens(request.body["messages"]), COMPLETION_TOKENS))
        for request in answered
    ]
    policy = BudgetPolicy.model_validate(burst_policy(redis_url, prefix))
    with RedisBudgetStore(policy.store) as store:
        sessions = [
            store.status(budget)
            for index in range(16)
            for budget in policy.budgets_for(session_id=session_of(prefix, index))
            if budget.scope == "session"
        ]
        (team,) = [b for b in policy.budgets_for(team_id=TEAM) if b.scope == "team"]
        (everyone,) = [b for b in policy.budgets_for() if b.scope == "global"]
        team_status, global_status = store.status(team), store.status(everyone)

    print(
        f"\nburst: {PROCESSES} x {CALLS_PER_PROCESS} calls beside a CPU hog: {completed} completed, "
        f"{rejected} rejected by a session budget, {store_errors} store errors; "
        f"provider answered {len(answered)} calls, priced {sum(priced)} micro-USD; "
        f"team counter {team_status.spent_units}, global {global_status.spent_units}"
    )
    assert (store_errors, first_errors) == (0, []), first_errors
    assert completed + rejected == PROCESSES * CALLS_PER_PROCESS
    assert completed == len(answered) == len(settled)
    assert rejected > 0  # the session limits bit
    assert sum(priced) == sum(settled) == team_status.spent_units == global_status.spent_units
    assert sum(status.spent_units for status in sessions) == sum(priced)
    assert all(status.spent_units <= status.limit_units for status in sessions)  # no overspend
    assert all(status.held_units == 0 for status in [*sessions, team_status, global_status])


def _sha(name: str) -> str:
    return hashlib.sha1(script_source(name).encode(), usedforsecurity=False).hexdigest()


def _client_count(server: RedisServer) -> int:
    with redis.Redis.from_url(server.url) as client:
        return int(client.info("clients")["connected_clients"]) - 1  # without this one


def test_a_burst_stays_within_the_pool_and_the_first_use_warms_it(private_redis: RedisServer) -> None:
    config = StoreConfig(backend="redis", key_prefix=f"t{uuid.uuid4().hex[:8]}")

    async def burst() -> tuple[int, int]:
        async with RedisBudgetStore(config, url=private_redis.url) as store:
            await store.areserve(ref(10**9), "first", 1, enforce=True)
            warmed = _client_count(private_redis)
            await asyncio.gather(*(store.areserve(ref(10**9), f"c{i}", 1, enforce=True) for i in range(200)))
            return warmed, _client_count(private_redis)

    warmed, after_burst = asyncio.run(burst())
    assert warmed >= config.warm_connections
    assert after_burst <= config.max_connections
    with redis.Redis.from_url(private_redis.url) as client:
        assert all(client.script_exists(*(_sha(name) for name in SCRIPT_NAMES)))


def test_a_burst_of_threads_stays_within_the_sync_pool(private_redis: RedisServer) -> None:
    config = StoreConfig(backend="redis", key_prefix=f"t{uuid.uuid4().hex[:8]}", max_connections=4)
    start = threading.Barrier(16)
    with RedisBudgetStore(config, url=private_redis.url) as store:

        def run(worker: int) -> None:
            start.wait()
            for i in range(20):
                store.reserve(ref(10**9), f"w{worker}-{i}", 1, enforce=True)

        threads = [threading.Thread(target=run, args=(worker,)) for worker in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert _client_count(private_redis) <= config.max_connections
        assert store.status(ref(10**9)).active_holds == 16 * 20


def test_a_slow_store_is_detected_by_the_command_timeout_not_the_pool_wait(private_redis: RedisServer) -> None:
    """Under CLIENT PAUSE every queued call fails with the command's timeout, one pool round after another."""
    config = StoreConfig(backend="redis", key_prefix=f"t{uuid.uuid4().hex[:8]}")
    calls = 2 * config.max_connections  # two rounds of the pool, each failing within connect + command timeout
    sends = 2  # a reserve that timed out is sent once more (redis.resent_once)
    rounds_seconds = calls / config.max_connections * sends * (config.timeout_seconds + config.connect_timeout_seconds)
    sleep_seconds = 3 * rounds_seconds  # a margin for a busy machine: no call may outlive the sleep

    async def during_sleep() -> list[object]:
        async with RedisBudgetStore(config, url=private_redis.url) as store:
            await store.areserve(ref(10**9), "warm", 1, enforce=True)
            with redis.Redis.from_url(private_redis.url) as admin:
                admin.client_pause(round(sleep_seconds * 1000), all=True)  # every command waits, none is refused
            try:
                return await asyncio.gather(
                    *(store.areserve(ref(10**9), f"c{i}", 1, enforce=True) for i in range(calls)),
                    return_exceptions=True,
                )
            finally:
                with redis.Redis.from_url(private_redis.url) as admin:
                    admin.client_unpause()

    outcomes = asyncio.run(during_sleep())
    assert all(isinstance(outcome, BudgetStoreError) for outcome in outcomes), outcomes[:3]
    causes = {type(outcome.__cause__) for outcome in outcomes if isinstance(outcome, BudgetStoreError)}
    assert causes == {redis.TimeoutError}, {str(o.__cause__) for o in outcomes if isinstance(o, BaseException)}


def _debug_sleep(url: str, seconds: float) -> None:
    with redis.Redis.from_url(url, socket_timeout=seconds + 10) as client:
        client.execute_command("DEBUG", "SLEEP", str(seconds))
