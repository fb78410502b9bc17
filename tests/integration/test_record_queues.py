"""The per-call records hash (``{base}:c``): its hold and retention queues on a real Redis.

Holds expire after ``hold_ttl`` (a renewed one after its renewal), at most 16 a queue per script;
records are forgotten after their retention; a call of one session touches the records hash and its
window's hash only, and a settled hold leaves no queue entry behind.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budget_ref import budget_key
from costrouter.config.budgets import StoreConfig
from tests.integration.budget_backends import ref


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as connection:
        yield connection


def _store(redis_url: str, **config: int) -> RedisBudgetStore:
    settings = StoreConfig(backend="redis", key_prefix=f"q{uuid.uuid4().hex[:10]}", journal_dir=None, **config)
    return RedisBudgetStore(settings, url=redis_url)


def test_a_session_call_touches_two_keys_and_leaves_no_hold_entry(redis_url: str, client: redis.Redis) -> None:
    with _store(redis_url) as store:
        budget = ref(1000)
        store.reserve(budget, "c1", 400, enforce=True)
        store.settle(budget, "c1", 250)
        base = budget_key(store.config.key_prefix, budget)
        assert sorted(client.scan_iter(match=f"{base}*")) == [f"{base}:c", f"{base}:w:total"]
        fields = client.hgetall(f"{base}:c")
        # A queue's head lives in its state: one call's queues are two fields, whatever its TTLs.
        assert sorted(fields) == ["c:c1", "hq", "rq", "t"]
        assert fields["hq"].startswith("0|0|")  # the settled hold's entry went with it
        assert fields["rq"].startswith("0|1|")
        assert fields["rq"].endswith("|c1")


def test_more_due_holds_than_one_sweep_takes_all_expire(redis_url: str) -> None:
    with _store(redis_url, hold_ttl_seconds=1) as store:
        budget = ref(1000)
        for i in range(40):
            assert store.reserve(budget, f"c{i}", 10, enforce=True).granted
        time.sleep(1.3)
        # One script pops at most 16 due holds: three reads drop all 40.
        assert store.status(budget).held_units == (40 - 16) * 10
        assert store.status(budget).held_units == (40 - 32) * 10
        status = store.status(budget)
        assert (status.held_units, status.active_holds) == (0, 0)
        # An expired hold's late settle charges once, as a charge without a live hold.
        late = store.settle(budget, "c7", 9)
        assert (late.charged_units, late.unheld, late.replayed) == (9, True, False)
        assert store.settle(budget, "c7", 9).replayed
        assert store.status(budget).spent_units == 9


def test_a_renewed_hold_outlives_its_first_due(redis_url: str) -> None:
    with _store(redis_url, hold_ttl_seconds=1) as store:
        budget = ref(1000)
        store.reserve(budget, "long", 100, enforce=True)
        time.sleep(0.6)
        assert store.renew(budget, "long")
        time.sleep(0.6)  # past the first due, not the renewed one
        assert store.status(budget).held_units == 100
        time.sleep(0.7)
        assert store.status(budget).held_units == 0
        assert not store.renew(budget, "long")


def test_records_are_forgotten_after_their_retention(redis_url: str, client: redis.Redis) -> None:
    with _store(redis_url, hold_ttl_seconds=1, settle_record_ttl_seconds=1) as store:
        budget = ref(1000)
        base = budget_key(store.config.key_prefix, budget)
        for i in range(20):
            store.reserve(budget, f"c{i}", 10, enforce=True)
            store.settle(budget, f"c{i}", 10)
        assert store.settle(budget, "c3", 10).replayed  # within its retention: answered from its record
        time.sleep(2.2)  # a retention ends at the second after its ttl (rounded up)
        store.reserve(budget, "next", 10, enforce=True)  # pops 16 due records
        store.reserve(budget, "after", 10, enforce=True)  # and the last 4
        records = sorted(field for field in client.hgetall(f"{base}:c") if field.startswith("c:"))
        assert records == ["c:after", "c:next"]
        assert store.status(budget).spent_units == 200
