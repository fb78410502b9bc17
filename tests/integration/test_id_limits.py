"""Issue 25, finding 9: a 1 MiB session or user id cost 10.1 MiB of Redis per call, kept for ever.

Ids longer than ``MAX_ID_BYTES`` of UTF-8, or holding a control character, are refused before
any hold and any provider call, from explicit arguments and from ``costrouter.context`` alike.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import costrouter
from costrouter import CostRouter
from costrouter.budget.factory import leased_store_of
from costrouter.context import MAX_ID_BYTES
from costrouter.testing import ProviderDouble, TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "hi"}]
MIB = 1024 * 1024


@pytest.fixture
def prefix() -> str:
    return f"ids{uuid.uuid4().hex[:10]}"


@pytest.fixture
def on_redis(provider: ProviderDouble, capture: TelemetryCapture, redis_url: str, prefix: str) -> Iterator[CostRouter]:
    provider.reset()
    router = CostRouter(
        router_config(provider.base_url),
        budgets={
            "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
            "budgets": [
                {"scope": "session", "limit_usd": 10, "window": "total"},
                {"scope": "user", "limit_usd": 10, "window": "total"},
                {"scope": "team", "limit_usd": 10},
                {"scope": "tag", "limit_usd": 10},
            ],
        },
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    yield router
    router.shutdown()


def _bytes_under(redis_url: str, prefix: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(client.memory_usage(key) or 0 for key in client.scan_iter(match=f"*{prefix}*", count=1000))
    finally:
        client.close()


HUGE = "s" * MIB

CALLS: dict[str, Callable[[CostRouter], Any]] = {
    "session_id": lambda router: router.route_completion("fast", MESSAGES, max_tokens=5, session_id=HUGE),
    "user_id": lambda router: router.route_completion("fast", MESSAGES, max_tokens=5, user_id="u" * MIB),
    "team_id": lambda router: router.route_completion("fast", MESSAGES, max_tokens=5, team_id="t" * MIB),
    "tags[1]": lambda router: router.route_completion("fast", MESSAGES, max_tokens=5, tags=["ok", "g" * MIB]),
}


@pytest.mark.parametrize("argument", sorted(CALLS))
def test_a_one_mebibyte_id_is_refused_before_any_hold_or_provider(
    argument: str, on_redis: CostRouter, provider: ProviderDouble, redis_url: str, prefix: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{argument} is 1,048,576 bytes")):
        CALLS[argument](on_redis)
    assert provider.request_count() == 0
    assert _bytes_under(redis_url, prefix) < MIB  # the red team measured 10.1 MiB per call here


def test_a_huge_id_from_the_context_is_refused_too(on_redis: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match="session_id is 1,048,576 bytes"), costrouter.context(session_id=HUGE):
        on_redis.route_completion("fast", MESSAGES, max_tokens=5)
    assert provider.request_count() == 0


async def test_the_async_path_refuses_before_the_provider(on_redis: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match="user_id is"):
        await on_redis.aroute_completion("fast", MESSAGES, max_tokens=5, user_id="ü" * MAX_ID_BYTES)
    assert provider.request_count() == 0


def test_the_limit_counts_utf8_bytes_and_an_id_at_the_limit_is_charged(
    on_redis: CostRouter, provider: ProviderDouble
) -> None:
    at_limit = "😀" * (MAX_ID_BYTES // 4)  # 4 bytes each
    on_redis.route_completion("fast", MESSAGES, max_tokens=5, session_id=at_limit)
    assert provider.request_count() == 1
    assert on_redis.budgets is not None
    leased = leased_store_of(on_redis.store)
    assert leased is not None  # the default Redis store
    leased.flush()  # carried now rather than within flush_seconds
    (status,) = on_redis.budgets.status("session", at_limit)
    assert status.spent_units > 0
    with pytest.raises(ValueError, match=f"at most {MAX_ID_BYTES}"):
        on_redis.route_completion("fast", MESSAGES, max_tokens=5, session_id=at_limit + "a")
    assert provider.request_count() == 1


@pytest.mark.parametrize("hostile", ["sess\x1b]0;pwned\x07", "line\nbreak", "tab\there", "nul\x00", "c1\x9b31m"])
def test_control_characters_in_an_id_are_refused(hostile: str, on_redis: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match="control character"):
        on_redis.route_completion("fast", MESSAGES, max_tokens=5, session_id=hostile)
    with pytest.raises(ValueError, match="control character"), costrouter.context(user_id=hostile):
        pass
    assert provider.request_count() == 0
