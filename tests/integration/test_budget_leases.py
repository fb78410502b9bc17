"""Leases on Redis budgets: calls served from memory, books exact, no limit crossed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from costrouter import CostRouter
from costrouter.budget import store_from_config
from costrouter.budget.lease_message import spare_room
from costrouter.budget.leases import LeasedStore
from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budget_ref import GLOBAL_SCOPE_ID, BudgetRef
from costrouter.config.budgets import LeaseSettings, StoreConfig
from costrouter.config.windows import parse_window
from costrouter.money import MAX_COUNTER_UNITS
from costrouter.testing import ProviderDouble
from tests.integration import lease_runs
from tests.integration.budget_backends import ref
from tests.integration.faults import private_redis
from tests.routing import router_config
from tests.workers import lease_then_die

ROOT = Path(__file__).resolve().parents[2]
LEASE = LeaseSettings(enabled=True)
_OUTAGE_WAIT_SECONDS = 120.0  # a safety net so that a broken flush fails the test instead of hanging it


def _store(url: str, prefix: str, **lease: object) -> LeasedStore:
    settings = LeaseSettings(enabled=True, **lease)  # type: ignore[arg-type]
    config = StoreConfig(backend="redis", key_prefix=prefix, lease=settings, journal_dir=None)
    return LeasedStore(RedisBudgetStore(config, url=url))


def _two_calls(store: LeasedStore, budget: BudgetRef) -> None:
    """Two calls of 1000 estimated and 600 spent: a lease of more than one call (a session's lingers)."""
    for index in range(2):
        assert store.reserve(budget, f"c{index}", 1000, enforce=True).granted
        store.settle(budget, f"c{index}", 600)


def test_calls_after_the_first_send_no_message(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budget = ref(1_000_000)
    store = _store(redis_url, prefix)
    try:
        for index in range(10):
            assert store.reserve(budget, f"c{index}", 1000, enforce=True).granted
            store.settle(budget, f"c{index}", 600)
        assert store.messages == 1
        status = store.status(budget)
        assert status.spent_units == 0  # not carried yet
        assert status.held_units == 1000 + 16 * 1000  # the lease shows as held: the call's need and its spare room
    finally:
        store.close()
    with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url) as plain:
        status = plain.status(budget)
    assert (status.spent_units, status.held_units) == (6000, 0)


def test_the_spare_room_of_a_large_budget_is_the_python_rule_to_the_unit(redis_url: str) -> None:
    # $9M in nano-dollars: room x fraction (in millionths) passes 2^53, where a Lua double rounds.
    prefix = f"t{uuid.uuid4().hex[:10]}"
    limit, need = MAX_COUNTER_UNITS - 3, 10**13  # $10,000 a call; a double rounds room x 333,333 up past a unit
    budget = ref(limit)
    settings = LeaseSettings(enabled=True, max_calls=100_000, fraction=0.333333)
    store = _store(redis_url, prefix, max_calls=100_000, fraction=0.333333)
    try:
        assert store.reserve(budget, "a", need, enforce=True).granted
        expected = need + spare_room(settings, need, limit - need)
        assert store.status(budget).held_units == expected
    finally:
        store.close()


def test_near_the_limit_every_call_reserves_for_itself(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budget = ref(3000)
    store = _store(redis_url, prefix)
    try:
        assert store.reserve(budget, "a", 1000, enforce=True).granted
        assert store.status(budget).held_units == 1000  # a spare of 0.25 x 2000 is below 2 estimates: none
        assert store.reserve(budget, "b", 1000, enforce=True).granted
        assert store.reserve(budget, "c", 1000, enforce=True).granted
        assert not store.reserve(budget, "d", 1000, enforce=True).granted
        store.release(budget, "c")
        assert store.reserve(budget, "d", 1000, enforce=True).granted  # the lease had its room back
        assert store.messages == 4
    finally:
        store.close()


def test_a_refusal_needs_the_other_process_lease_to_be_short(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budget = ref(100_000)
    first, second = _store(redis_url, prefix), _store(redis_url, prefix)
    try:
        assert first.reserve(budget, "a", 1000, enforce=True).granted  # holds 1000 + spare 16 000
        taken = 1
        while second.reserve(budget, f"b{taken}", 1000, enforce=True).granted:
            taken += 1
        # The second process was refused while the first one's spare room was idle: no more than that is lost.
        unleased = 100_000 - taken * 1000 - first.status(budget).held_units + 0
        assert unleased < 1000
        assert 100_000 - taken * 1000 < 1000 + 16 * 1000
    finally:
        first.close()
        second.close()


_DIE_WITH_A_LEASE = """
import os, sys
from costrouter.budget.lease_message import spare_room
from costrouter.budget.leases import LeasedStore
from costrouter.config.budgets import LeaseSettings, StoreConfig
from costrouter.money import MAX_COUNTER_UNITS
from costrouter.budget.redis import RedisBudgetStore
from tests.integration.budget_backends import ref
config = StoreConfig(backend="redis", key_prefix=sys.argv[2], lease=LeaseSettings(enabled=True, ttl_seconds=3))
store = LeasedStore(RedisBudgetStore(config, url=sys.argv[1]))
assert store.reserve(ref(100_000), "a", 1000, enforce=True).granted
os._exit(0)
"""


def test_a_dead_process_lease_returns_to_the_budget(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budget = ref(100_000)
    subprocess.run([sys.executable, "-c", _DIE_WITH_A_LEASE, redis_url, prefix], check=True, timeout=120)
    with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url) as inner:
        assert inner.status(budget).held_units == 17_000
        deadline = time.monotonic() + 30
        while inner.status(budget).held_units and time.monotonic() < deadline:
            time.sleep(0.2)
        assert inner.status(budget).held_units == 0


@pytest.mark.parametrize("mode", ["unsent", "carried"])
def test_a_dead_process_leased_spend_is_charged_once(mode: str, redis_url: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "tests.workers.lease_then_die", redis_url, prefix, str(tmp_path), mode]
    worker = subprocess.run(command, capture_output=True, env=environment, cwd=ROOT, timeout=240, check=False)
    assert worker.returncode == -9, worker.stderr.decode()[-3000:]
    died = json.loads(worker.stdout.decode().strip().splitlines()[-1])
    cost = sum(died["priced"])
    # Settles no message carried (or whose done marks were lost) wait in the dead process's journal.
    assert died["pending"] >= 2
    assert 0 < died["pending_units"] <= 2 * cost

    budgets = lease_then_die.policy(redis_url, prefix, str(tmp_path))
    with ProviderDouble() as provider:
        router = CostRouter(router_config(provider.base_url), budgets=budgets)  # adopts and replays the dead file
        assert router.guard is not None
        assert router.guard.pending() == (0, 0)
        view = router.budgets
        assert view is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            view.status(*scope)[0].held_units for scope in (("session", "dying"), ("global",))
        ):
            time.sleep(0.2)  # the dead process's leases return by their TTL
        for scope in (("session", "dying"), ("global",)):
            status = view.status(*scope)[0]
            assert (status.spent_units, status.held_units) == (cost, 0), scope
        router.shutdown()


@pytest.mark.parametrize("scope", ["session", "global"])
@pytest.mark.parametrize("limit_calls", [5, 50, 500, 5000])
def test_four_processes_never_overspend(redis_url: str, scope: str, limit_calls: int) -> None:
    books = lease_runs.run(redis_url, scope, limit_calls, lease=LEASE)
    print(f"\n{scope} {limit_calls}: {books}")
    assert books.spent <= books.limit
    assert books.spent == books.charged
    assert books.held == 0
    assert books.refused == books.processes * 50  # every task ran until refused
    assert books.false_refusals <= books.false_refusal_bound


def test_alerts_fire_once_when_a_message_carries_the_spend(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budget = ref(10_000, alert_at=(0.5, 0.9))
    store = _store(redis_url, prefix)
    fired: list[tuple[float, int, str]] = []
    store.alert_sink = lambda _budget, threshold, spent, window: fired.append((threshold, spent, window))
    try:
        for index in range(6):
            assert store.reserve(budget, f"c{index}", 1000, enforce=True).granted
            store.settle(budget, f"c{index}", 1000)
        store.drain()
        # Fired by the message that carried the spend past half the limit, once; 0.9 never reached.
        assert [threshold for threshold, _, _ in fired] == [0.5]
        assert 5000 <= fired[0][1] <= 6000
        assert store.status(budget).spent_units == 6000
    finally:
        store.close()


def test_leases_on_a_redis_cluster(redis_cluster_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budget = ref(1_000_000)
    config = StoreConfig(
        backend="redis", key_prefix=prefix, cluster=True, lease=LeaseSettings(enabled=True), journal_dir=None
    )
    store = LeasedStore(RedisBudgetStore(config, url=redis_cluster_url))
    try:
        for index in range(5):
            assert store.reserve(budget, f"c{index}", 1000, enforce=True).granted
            store.settle(budget, f"c{index}", 700)
        assert store.messages == 1
        store.drain()
        status = store.status(budget)
        assert (status.spent_units, status.held_units) == (3500, 0)
        assert store.top(budget, 3) == [(budget.scope_id, 3500)]
    finally:
        store.close()


def _settled(plain: RedisBudgetStore, budgets: list[BudgetRef], spent: int) -> bool:
    statuses = [plain.status(budget) for budget in budgets]
    return all((status.spent_units, status.held_units) == (spent, 0) for status in statuses)


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
def test_one_call_sessions_pay_one_message_each_and_close_in_background_pipelines(
    kind: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = StoreConfig(backend="redis", key_prefix=prefix, cluster=kind == "redis-cluster", journal_dir=None)
    store = store_from_config(config, redis_url=url)  # the defaults: leases
    assert isinstance(store, LeasedStore)
    sessions = [ref(1_000_000, scope_id=f"s{index}") for index in range(40)]
    plain = RedisBudgetStore(config.model_copy(update={"lease": LeaseSettings(enabled=False)}), url=url)
    try:
        for index, budget in enumerate(sessions):
            assert store.reserve(budget, f"c{index}", 1000, enforce=True).granted
            store.settle(budget, f"c{index}", 600)
        assert store.waits == 40  # the session's first call: one message, which opened its lease
        for _ in range(600):  # the background thread charges and gives back each lease: poll, no time asserted
            if _settled(plain, sessions, 600):
                break
            time.sleep(0.05)
        assert _settled(plain, sessions, 600)
        assert store.messages == 80  # and one more each: the settle and the give-back together
        assert store.batches <= 10  # carried many at a time, not one round trip a session
        assert store.waits == 40
    finally:
        store.close()
        plain.close()


def test_a_session_that_calls_again_keeps_its_lease(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = StoreConfig(backend="redis", key_prefix=prefix, journal_dir=None)
    store = store_from_config(config, redis_url=redis_url)
    assert isinstance(store, LeasedStore)
    budget = ref(1_000_000)
    try:
        _two_calls(store, budget)
        with RedisBudgetStore(config, url=redis_url) as plain:
            for _ in range(600):
                if plain.status(budget).spent_units == 1200:
                    break
                time.sleep(0.05)
            status = plain.status(budget)
        assert status.spent_units == 1200  # carried by a flush
        assert status.held_units > 0  # which kept the lease: the session's next call waits for nothing
        assert store.reserve(budget, "c2", 1000, enforce=True).granted
        assert store.waits == 1
    finally:
        store.close()


def test_a_session_that_calls_again_after_its_lease_closed_keeps_the_next_one(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = StoreConfig(backend="redis", key_prefix=prefix, journal_dir=None)
    store = store_from_config(config, redis_url=redis_url)  # the defaults: leases
    assert isinstance(store, LeasedStore)
    budget = ref(1_000_000)
    plain = RedisBudgetStore(config.model_copy(update={"lease": LeaseSettings(enabled=False)}), url=redis_url)

    def closed_after(spent: int) -> None:
        for _ in range(600):  # the background thread's message: poll, no time asserted
            status = plain.status(budget)
            if (status.spent_units, status.held_units) == (spent, 0):
                return
            time.sleep(0.05)
        raise AssertionError(f"the lease was not closed: {plain.status(budget)}")

    try:
        assert store.reserve(budget, "c0", 1000, enforce=True).granted
        store.settle(budget, "c0", 600)
        closed_after(600)  # one call: charged and given back in one message
        assert store.reserve(budget, "c1", 1000, enforce=True).granted  # the session calls again: it opens again
        store.settle(budget, "c1", 600)
        assert store.waits == 2
        for _ in range(600):
            if plain.status(budget).spent_units == 1200:
                break
            time.sleep(0.05)
        status = plain.status(budget)
        assert status.spent_units == 1200  # carried by a flush...
        assert status.held_units > 0  # ...that kept this lease: a session of many calls
        assert store.reserve(budget, "c2", 1000, enforce=True).granted
        assert store.waits == 2  # its next call waits for nothing
    finally:
        store.close()
        plain.close()


def _until(plain: RedisBudgetStore, budget: BudgetRef, spent: int, held: int | None) -> int:
    """Wait until Redis shows ``budget`` at ``spent`` and ``held`` (``None``: any hold above 0), the
    background thread's messages; returns the hold."""
    for _ in range(600):  # poll, no time asserted
        status = plain.status(budget)
        if status.spent_units == spent and (status.held_units == held or (held is None and status.held_units > 0)):
            return status.held_units
        time.sleep(0.02)
    raise AssertionError(f"wanted spent {spent} held {held}: {plain.status(budget)}")


def _held_here(store: LeasedStore, budget: BudgetRef, held: int) -> None:
    """Wait until this process's lease holds ``held`` (the reply Redis answered is applied a moment later)."""
    for _ in range(600):
        if store.lease_hold(budget) == held:
            return
        time.sleep(0.02)
    raise AssertionError(f"this process's lease holds {store.lease_hold(budget)}, not {held}")


def test_a_chat_whose_next_turn_comes_after_idle_seconds_finds_its_lingering_lease(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    # Short periods so the test runs in seconds; park_seconds as the default's rule, scaled down.
    store = _store(redis_url, prefix, flush_seconds=0.1, idle_seconds=0.5, park_seconds=2)
    budget = ref(1_000_000, scope_id="chat")
    plain = RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url)
    try:
        _two_calls(store, budget)  # a session of more than one call: its lease lingers
        assert store.waits == 1
        room = _until(plain, budget, 1200, None)  # flushed with nothing in flight: its whole room kept
        assert room > 1000
        messages = store.messages
        time.sleep(0.7)  # longer than idle_seconds: a parked lease would have shrunk to one estimate by now
        assert store.messages == messages  # no park message, and no renewal before it
        assert plain.status(budget).held_units == room
        # The chat's next turn, after the pause: an agent's two calls, both from the room kept.
        for index in (2, 3):
            assert store.reserve(budget, f"c{index}", 1000, enforce=True).granted
        for index in (2, 3):
            store.settle(budget, f"c{index}", 600)
        assert store.waits == 1
        assert _until(plain, budget, 2400, None) > 1000  # the turn's spend carried, the room still kept...
        # ...by the flush alone: no refill before it, no park after it (two flushes only if the thread woke
        # between the two settles).
        assert store.messages - messages in (1, 2)
        _until(plain, budget, 2400, 0)  # no call for idle_seconds + park_seconds: given back
        _held_here(store, budget, 0)
        assert store.reserve(budget, "c4", 1000, enforce=True).granted
        assert store.waits == 2  # the pause outlived the lease: this call opened a new one
    finally:
        store.close()
        plain.close()


def test_a_shared_budget_whose_next_call_comes_after_idle_seconds_takes_its_parked_lease(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    # Short periods so the test runs in seconds; park_seconds as the default's rule, scaled down.
    store = _store(redis_url, prefix, flush_seconds=0.1, idle_seconds=0.5, park_seconds=2)
    budget = BudgetRef("everyone", "global", GLOBAL_SCOPE_ID, parse_window("total"), 1_000_000)
    plain = RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url)
    try:
        _two_calls(store, budget)
        assert store.waits == 1
        _until(plain, budget, 1200, 1000)  # idle: parked, one estimate held and nothing spare
        _held_here(store, budget, 1000)
        messages = store.messages
        assert store.reserve(budget, "c2", 1000, enforce=True).granted  # the chat's next turn, after the pause
        assert store.waits == 1  # before parking: given back when idle, this call opened a lease again
        store.settle(budget, "c2", 600)
        _until(plain, budget, 1800, 1000)  # refilled off the call's path, its spend carried, parked again
        assert store.messages >= messages + 2  # the refill and the park at least (the flush may ride the refill)
        _until(plain, budget, 1800, 0)  # no call for park_seconds: given back
        _held_here(store, budget, 0)
        assert store.reserve(budget, "c3", 1000, enforce=True).granted
        assert store.waits == 2  # the pause outlived the parked lease: this call opened a new one
    finally:
        store.close()
        plain.close()


def test_a_chat_whose_turns_all_come_after_pauses_pays_a_round_trip_on_its_first_two_only(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = _store(redis_url, prefix, flush_seconds=0.1, idle_seconds=0.3, park_seconds=30)
    budget = ref(1_000_000, scope_id="chat")
    plain = RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url)

    try:
        for turn in range(4):
            assert store.reserve(budget, f"c{turn}", 1000, enforce=True).granted
            store.settle(budget, f"c{turn}", 600)
            # The pause: the first turn's lease closes (one call); from the second on, the lease lingers.
            _until(plain, budget, 600 * (turn + 1), 0 if turn == 0 else None)
            time.sleep(0.4)  # longer than idle_seconds (the window a closed session counted as returning)
        assert store.waits == 2  # before: the second turn's lease closed after it too, and every turn waited
    finally:
        store.close()
        plain.close()


@pytest.mark.parametrize("scope", ["session", "global"])
def test_a_lease_idle_near_the_limit_goes_back_and_the_next_call_reserves_for_itself(
    redis_url: str, scope: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = _store(redis_url, prefix, flush_seconds=0.1, idle_seconds=0.3, park_seconds=60)
    budget = (
        ref(2_000, scope_id="chat")
        if scope == "session"
        else BudgetRef("everyone", "global", GLOBAL_SCOPE_ID, parse_window("total"), 2_000)
    )
    plain = RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=redis_url)
    try:
        _two_calls(store, budget)
        # 800 left, less than one estimate: the park is refused and the lease goes; a chat's lease keeps
        # no room (its spare slice is below min_calls estimates)
        for _ in range(600):
            if store.live_leases == 0 and plain.status(budget).spent_units == 1200:
                break
            time.sleep(0.02)
        assert (plain.status(budget).spent_units, plain.status(budget).held_units) == (1200, 0)
        # Holding nothing, the lease went (a chat's flushed one was kept for the process's life before).
        assert store.live_leases == 0
        assert not store.reserve(budget, "c2", 1000, enforce=True).granted  # no parked hold, no overspend
    finally:
        store.close()
        plain.close()


def test_a_shared_instance_keeps_its_lease_after_one_call(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = StoreConfig(backend="redis", key_prefix=prefix, journal_dir=None)
    store = store_from_config(config, redis_url=redis_url)
    assert isinstance(store, LeasedStore)
    everyone = BudgetRef("everyone", "global", GLOBAL_SCOPE_ID, parse_window("total"), 1_000_000)
    try:
        assert store.reserve(everyone, "c0", 1000, enforce=True).granted
        store.settle(everyone, "c0", 600)
        with RedisBudgetStore(config, url=redis_url) as plain:
            for _ in range(600):
                if plain.status(everyone).spent_units == 600:
                    break
                time.sleep(0.05)
            status = plain.status(everyone)
        assert status.spent_units == 600  # flushed...
        assert status.held_units > 0  # ...not closed: the next session's call finds the lease
        assert store.reserve(everyone, "c1", 1000, enforce=True).granted
        assert store.waits == 1
    finally:
        store.close()


def test_a_down_store_is_warned_of_once_then_once_a_minute_and_its_return_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = ref(1_000_000)

    def lines(text: str) -> list[str]:
        return [record.getMessage() for record in caplog.records if text in record.getMessage()]

    with private_redis() as server, caplog.at_level(logging.WARNING, logger="costrouter.budget"):
        store = _store(server.url, f"t{uuid.uuid4().hex[:10]}", flush_seconds=0.01)
        try:
            assert store.reserve(budget, "c0", 1000, enforce=True).granted
            server.shutdown_keeping_data()
            store.settle(budget, "c0", 600)  # settled in the lease: its flush is due, and fails from now on
            deadline = time.monotonic() + _OUTAGE_WAIT_SECONDS
            while store.messages < 30:  # the background flush retries every 10 ms: many failed sends
                assert time.monotonic() < deadline, f"only {store.messages} lease messages went out"
                time.sleep(0.05)
            failing = lines("lease messages")
            assert len(failing) == 1, failing
            assert "could not send 1 budget lease messages" in failing[0]
            assert "retrying every 0.01s" in failing[0]
            server.start()
            while not lines("go through again"):
                assert time.monotonic() < deadline + _OUTAGE_WAIT_SECONDS, "the flush never went through again"
                time.sleep(0.05)
            assert len(lines("lease messages")) == 2
        finally:
            store.close()
        prefix = store.inner.config.key_prefix
        with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=server.url) as plain:
            assert plain.status(budget).spent_units == 600


def test_a_pipeline_of_lease_messages_reloads_scripts_a_flushed_redis_lost(redis_url: str) -> None:
    """The background pipeline sends EVALSHA alone (no SCRIPT EXISTS first): a NOSCRIPT reply runs again, loaded."""
    import redis  # noqa: PLC0415

    prefix = f"t{uuid.uuid4().hex[:10]}"
    budgets = [BudgetRef("b", "user", f"u{index}", parse_window("total"), 1_000_000) for index in range(3)]
    store = _store(redis_url, prefix, flush_seconds=60, idle_seconds=3600)
    client = redis.Redis.from_url(redis_url)
    try:
        for index, budget in enumerate(budgets):
            assert store.reserve(budget, f"c{index}", 1000, enforce=True).granted
            store.settle(budget, f"c{index}", 100 * (index + 1))
        client.script_flush()
        assert store.flush() == 3  # one pipeline of three messages, each answered
        assert store.batches == 1
        assert [store.status(budget).spent_units for budget in budgets] == [100, 200, 300]
        for budget, amount in ((budgets[0], 7), (budgets[1], 8)):  # loaded again: the next pipeline goes through
            assert store.reserve(budget, "late", 1000, enforce=True).granted
            store.settle(budget, "late", amount)
        assert store.flush() == 2
        assert [store.status(budget).spent_units for budget in budgets[:2]] == [107, 208]
    finally:
        client.close()
        store.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_lease_message_that_times_out_is_sent_again_within_the_call(mode: str) -> None:
    """A reply later than ``timeout_seconds`` (a loaded machine, a slow store) costs the call a wait, not a refusal.

    ``CLIENT PAUSE WRITE`` holds every script past the default 1 s timeout; the message is sent
    again on a new connection and answered when the pause ends (or, had the first run, replayed).
    """
    import asyncio  # noqa: PLC0415

    import redis  # noqa: PLC0415

    budget = ref(1_000_000)
    with private_redis() as server:
        prefix = f"t{uuid.uuid4().hex[:10]}"
        store = _store(server.url, prefix, flush_seconds=60, idle_seconds=3600)
        client = redis.Redis.from_url(server.url)
        try:
            assert store.reserve(budget, "c0", 1000, enforce=True).granted  # the lease opens
            store.settle(budget, "c0", 300)
            big = 200_000  # more than the lease's spare room: this reserve needs a message
            client.client_pause(1800, all=False)  # WRITE: scripts wait, this client's own commands do not
            if mode == "sync":
                outcome = store.reserve(budget, "c1", big, enforce=True)
            else:
                outcome = asyncio.run(store.areserve(budget, "c1", big, enforce=True))
            assert outcome.granted
            assert store.resends == 1
            store.settle(budget, "c1", 150_000)
            assert store.flush() == 1
            status = store.status(budget)
            assert status.spent_units == 150_300  # each settle charged once, the resent message's too
        finally:
            client.close()
            store.close()
        with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=server.url) as plain:
            assert (plain.status(budget).spent_units, plain.status(budget).held_units) == (150_300, 0)


def test_one_look_gives_what_is_due_and_how_long_the_thread_sleeps(redis_url: str) -> None:
    store = _store(redis_url, f"t{uuid.uuid4().hex[:10]}", flush_seconds=2, idle_seconds=3600)
    store._start = lambda: None  # type: ignore[method-assign]  # this test looks in the thread's place
    settled, unsettled = ref(1_000_000, scope_id="a"), ref(1_000_000, scope_id="b")
    try:
        for budget in (settled, unsettled):
            assert store.reserve(budget, "c", 1000, enforce=True).granted
        store.settle(settled, "c", 600)
        sent, sleep = store.tend()
        assert sent == 0
        assert 0.5 <= sleep <= 2.0  # the settled lease's flush, 2 s after its message (the other: renew, later)
        time.sleep(sleep)
        sent, sleep = store.tend()  # the flush is due within the slack: it goes, and the next wake is later
        assert sent == 1
        assert store.status(settled).spent_units == 600
        assert 0.5 <= sleep <= 2.0
    finally:
        store.close()
