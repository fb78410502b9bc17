"""A call still running when ``shutdown()`` gives back the leases is charged in Redis, not left in a journal.

When Redis refuses that late settle, the spend is left in a journal file for the next start, not lost.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from costrouter import CostRouter
from costrouter.budget import BudgetPolicy
from costrouter.budget.journal import journal_dir_for, read_pending
from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budgets import StoreConfig
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.redis_server import RedisServer
from tests.integration.faults import refuse_scripts
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "summarise the quarterly report in three bullets"}]


def _router(provider: ProviderDouble, capture: TelemetryCapture, url: str, prefix: str, journal: str) -> CostRouter:
    policy: dict[str, Any] = {
        "store": {"backend": "redis", "redis_url": url, "key_prefix": prefix, "journal_dir": journal},
        "budgets": [
            {"scope": "session", "limit_usd": 1.0, "window": "total"},
            {"scope": "global", "limit_usd": 10.0, "window": "total"},
        ],
    }
    return CostRouter(
        router_config(provider.base_url),
        budgets=policy,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )


def _spent(url: str, prefix: str, router: CostRouter, session: str) -> tuple[int, int, int]:
    assert isinstance(router.policy, BudgetPolicy)
    session_ref, global_ref = router.policy.budgets_for(session_id=session)
    with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=url) as plain:
        one, every = plain.status(session_ref), plain.status(global_ref)
    return one.spent_units, every.spent_units, one.held_units + every.held_units


def _settled_units(capture: TelemetryCapture) -> int:
    return sum(
        usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
        for span in capture.call_spans()
    )


def test_a_call_in_flight_at_shutdown_is_charged_in_redis(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str, tmp_path: Any
) -> None:
    provider.reset()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    router = _router(provider, capture, redis_url, prefix, str(tmp_path))
    router.route_completion("fast", MESSAGES, max_tokens=40, session_id="s-1")  # the leases open
    provider.script("fast-model", Reply(completion_tokens=9, delay=1.5))
    answered: list[Any] = []
    call = threading.Thread(
        target=lambda: answered.append(router.route_completion("fast", MESSAGES, max_tokens=40, session_id="s-1"))
    )
    call.start()
    time.sleep(0.5)  # the call holds from its leases and waits for the provider
    router.shutdown()  # gives the leases back while the call is out
    call.join(timeout=30)
    assert answered, "the call in flight did not finish"
    settled = _settled_units(capture)
    assert _spent(redis_url, prefix, router, "s-1") == (settled, settled, 0)  # the lease's hold went back too
    assert not list(tmp_path.rglob("journal-*"))  # nothing left for a later process to replay
    assert not any(event.name == sc.EVENT_UNHELD_SETTLE for span in capture.call_spans() for event in span.events)


async def test_an_async_call_in_flight_at_shutdown_and_a_call_after_it_are_charged_in_redis(
    provider: ProviderDouble, capture: TelemetryCapture, redis_url: str, tmp_path: Any
) -> None:
    provider.reset()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    router = _router(provider, capture, redis_url, prefix, str(tmp_path))
    await router.aroute_completion("fast", MESSAGES, max_tokens=40, session_id="s-2")
    provider.script("fast-model", Reply(completion_tokens=9, delay=1.5), Reply(completion_tokens=5))
    in_flight = asyncio.ensure_future(router.aroute_completion("fast", MESSAGES, max_tokens=40, session_id="s-2"))
    await asyncio.sleep(0.5)
    await asyncio.to_thread(router.shutdown)
    await in_flight
    await router.aroute_completion("fast", MESSAGES, max_tokens=40, session_id="s-2")  # after shutdown: per call
    assert len(capture.call_spans()) == 3
    settled = _settled_units(capture)
    assert _spent(redis_url, prefix, router, "s-2") == (settled, settled, 0)
    assert not list(tmp_path.rglob("journal-*"))


@pytest.fixture(scope="module")
def refusing_redis() -> Iterator[RedisServer]:
    """A private redis-server whose scripts this module refuses (ACL), so the shared one stays untouched."""
    with RedisServer() as private:
        yield private


def test_a_call_that_outlives_shutdown_while_redis_refuses_is_left_for_the_next_start(
    provider: ProviderDouble, capture: TelemetryCapture, refusing_redis: RedisServer, tmp_path: Path
) -> None:
    provider.reset()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    router = _router(provider, capture, refusing_redis.url, prefix, str(tmp_path))
    router.route_completion("fast", MESSAGES, max_tokens=40, session_id="s-3")
    provider.script("fast-model", Reply(completion_tokens=9, delay=1.5))
    answered: list[Any] = []
    call = threading.Thread(
        target=lambda: answered.append(router.route_completion("fast", MESSAGES, max_tokens=40, session_id="s-3"))
    )
    call.start()
    time.sleep(0.5)
    router.shutdown()
    refuse_scripts(refusing_redis, refuse=True)  # the late call's settle meets a store that refuses it
    try:
        call.join(timeout=60)
        assert answered, "the call in flight did not finish"
    finally:
        refuse_scripts(refusing_redis, refuse=False)
    directory = journal_dir_for(tmp_path, refusing_redis.url, prefix)
    left = read_pending(directory)
    second = capture.call_spans()[-1]
    late = usd_to_units(float(second.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
    assert sorted(entry.amount_units for entry in left) == [late, late]  # the session's and the global budget's
    before = _spent(refusing_redis.url, prefix, router, "s-3")
    assert before[0] == before[1] == _settled_units(capture) - late

    later = _router(provider, capture, refusing_redis.url, prefix, str(tmp_path))  # adopts and replays the file
    try:
        assert read_pending(directory) == []
        spent_session, spent_global, _ = _spent(refusing_redis.url, prefix, later, "s-3")
        assert spent_session == spent_global == _settled_units(capture)
    finally:
        later.shutdown()
