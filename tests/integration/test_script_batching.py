"""Scripts of concurrent tasks go to Redis in one pipeline per loop turn, each task with its own reply.

Against a real redis-server: a burst of 256 reserves opens a couple of connections, not a
pool's worth, and every reserve gets the answer Redis gave it; a script's error reaches only
its own caller; a restarted script cache is reloaded; a task cancelled before the flush
never sends its script.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
import redis.exceptions
from redis.commands.core import AsyncScript

from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.redis_batch import MAX_BATCH, ScriptBatcher
from costrouter.config.budgets import StoreConfig
from tests.integration.budget_backends import ref

INCREMENT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
FAIL = "return redis.error_reply('refused by the test script')"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield connection
    finally:
        await connection.aclose()


async def test_a_burst_of_reserves_shares_a_few_connections_and_each_gets_its_own_reply(redis_url: str) -> None:
    config = StoreConfig(backend="redis", key_prefix=f"t{uuid.uuid4().hex[:8]}", warm_connections=0)
    store = RedisBudgetStore(config, url=redis_url)
    budget = ref(100 * 7, scope_id="burst")
    try:
        outcomes = await asyncio.gather(*(store.areserve(budget, f"call-{i}", 7, enforce=True) for i in range(256)))
        granted = [outcome for outcome in outcomes if outcome.granted]
        assert len(granted) == 100  # exactly what the limit admits, none over
        # each reply is its own: the holds seen before each grant are every step from 0 to the limit
        assert sorted(outcome.held_units for outcome in granted) == [7 * i for i in range(100)]
        assert all(outcome.held_units == 700 for outcome in outcomes if not outcome.granted)
        # the first reserve goes out alone, the 255 that find it in flight share pipelines
        assert store.connections <= 1 + -(-255 // MAX_BATCH)
        status = await store.astatus(budget)
        assert (status.spent_units, status.held_units) == (0, 700)
    finally:
        await store.aclose()


async def test_a_scripts_error_reaches_only_its_own_caller(client: redis.asyncio.Redis) -> None:
    batcher = ScriptBatcher(client)
    key = f"t{uuid.uuid4().hex[:8]}"
    increment = AsyncScript(client, INCREMENT)
    failing = AsyncScript(client, FAIL)
    await client.script_load(INCREMENT)
    await client.script_load(FAIL)
    results = await asyncio.gather(
        batcher.run(increment, [key], ["2"]),
        batcher.run(failing, [key], []),
        batcher.run(increment, [key], ["3"]),
        return_exceptions=True,
    )
    assert results[0] == 2
    assert isinstance(results[1], redis.exceptions.ResponseError)
    assert "refused by the test script" in str(results[1])
    assert results[2] == 5
    assert await client.get(key) == "5"


async def test_a_flushed_script_cache_is_reloaded_and_the_scripts_run_once(client: redis.asyncio.Redis) -> None:
    batcher = ScriptBatcher(client)
    key = f"t{uuid.uuid4().hex[:8]}"
    increment = AsyncScript(client, INCREMENT)
    await client.script_flush()
    replies = await asyncio.gather(*(batcher.run(increment, [key], ["1"]) for _ in range(10)))
    assert sorted(replies) == list(range(1, 11))
    assert await client.get(key) == "10"


async def test_a_task_cancelled_before_the_flush_never_sends_its_script(client: redis.asyncio.Redis) -> None:
    batcher = ScriptBatcher(client)
    key = f"t{uuid.uuid4().hex[:8]}"
    increment = AsyncScript(client, INCREMENT)
    first = asyncio.create_task(batcher.run(increment, [f"{key}:first"], ["1"]))
    cancelled = asyncio.create_task(batcher.run(increment, [key], ["100"]))
    await asyncio.sleep(0)  # the first script is in flight; the second is queued, its flush not yet run
    cancelled.cancel()
    assert await first == 1
    assert await batcher.run(increment, [key], ["1"]) == 1
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await client.get(key) == "1"


async def test_more_scripts_than_one_pipeline_holds_are_split_and_all_answered(client: redis.asyncio.Redis) -> None:
    batcher = ScriptBatcher(client)
    key = f"t{uuid.uuid4().hex[:8]}"
    increment = AsyncScript(client, INCREMENT)
    await client.script_load(INCREMENT)
    calls = 3 * MAX_BATCH + 5
    replies = await asyncio.gather(*(batcher.run(increment, [key], ["1"]) for _ in range(calls)))
    assert sorted(replies) == list(range(1, calls + 1))
