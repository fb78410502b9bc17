"""One behaviour suite for every budget store (memory and a real Redis), then Redis specifics."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from typing import cast

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from costrouter.budget import store_from_config
from costrouter.budget.leases import LeasedStore
from costrouter.budget.memory import MemoryBudgetStore
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.store import BudgetStore
from costrouter.config.budget_ref import KEY_LAYOUT_VERSION, budget_key
from costrouter.config.budgets import StoreConfig
from costrouter.config.windows import parse_window, window_at
from costrouter.errors import BudgetStoreError
from costrouter.testing.redis_server import RedisServer
from tests.integration.budget_backends import BACKENDS, Backend, FakeClock, make_backend, ref, worker_context


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from make_backend(request)


@pytest.fixture
def store(backend: Backend) -> BudgetStore:
    return backend.store()


# --- reserve ---------------------------------------------------------------------------


def test_reserve_grants_up_to_the_limit_and_holds(store: BudgetStore) -> None:
    budget = ref(1000)
    first = store.reserve(budget, "c1", 600, enforce=True)
    assert (first.granted, first.spent_units, first.held_units, first.replayed) == (True, 0, 0, False)
    assert first.window_id == "total"
    refused = store.reserve(budget, "c2", 401, enforce=True)
    assert (refused.granted, refused.spent_units, refused.held_units) == (False, 0, 600)
    exact = store.reserve(budget, "c3", 400, enforce=True)
    assert (exact.granted, exact.held_units) == (True, 600)
    status = store.status(budget)
    assert (status.spent_units, status.held_units, status.active_holds, status.remaining_units) == (0, 1000, 2, 0)


def test_a_refused_reserve_holds_nothing(store: BudgetStore) -> None:
    budget = ref(100)
    assert not store.reserve(budget, "c1", 101, enforce=True).granted
    status = store.status(budget)
    assert (status.held_units, status.active_holds, status.remaining_units) == (0, 0, 100)


def test_without_enforcement_reserve_always_holds(store: BudgetStore) -> None:
    budget = ref(100)
    assert store.reserve(budget, "c1", 80, enforce=False).granted
    over = store.reserve(budget, "c2", 80, enforce=False)
    assert (over.granted, over.held_units) == (False, 80)
    assert store.status(budget).held_units == 160


def test_a_repeated_reserve_replays_the_decision_and_holds_once(store: BudgetStore) -> None:
    budget = ref(1000)
    first = store.reserve(budget, "c1", 700, enforce=True)
    again = store.reserve(budget, "c1", 700, enforce=True)
    assert again.replayed
    assert (again.granted, again.spent_units, again.held_units) == (first.granted, 0, 0)
    assert store.status(budget).held_units == 700
    refused = store.reserve(budget, "c2", 700, enforce=True)
    store.release(budget, "c1")
    replayed = store.reserve(budget, "c2", 700, enforce=True)
    assert not refused.granted
    assert (replayed.granted, replayed.replayed, replayed.held_units) == (False, True, 700)
    assert store.status(budget).held_units == 0


def test_amounts_must_be_non_negative_integers(store: BudgetStore) -> None:
    with pytest.raises(ValueError, match="non-negative integers"):
        store.reserve(ref(), "c1", -1, enforce=True)
    with pytest.raises(ValueError, match="non-negative integers"):
        store.settle(ref(), "c1", 1.5)  # type: ignore[arg-type]


# --- settle and release ------------------------------------------------------------------


def test_settle_replaces_the_hold_with_the_actual_amount(store: BudgetStore) -> None:
    budget = ref(1000)
    store.reserve(budget, "c1", 600, enforce=True)
    store.reserve(budget, "c2", 300, enforce=True)
    outcome = store.settle(budget, "c1", 250)
    assert (outcome.state, outcome.charged_units, outcome.spent_units, outcome.held_units) == (
        "settled",
        250,
        250,
        300,
    )
    assert (outcome.window_id, outcome.replayed, outcome.alerts) == ("total", False, ())
    status = store.status(budget)
    assert (status.spent_units, status.held_units, status.active_holds, status.remaining_units) == (250, 300, 1, 450)


def test_settle_counts_spend_above_the_limit_and_then_reserve_refuses(store: BudgetStore) -> None:
    budget = ref(1000)
    store.reserve(budget, "c1", 500, enforce=True)
    assert store.settle(budget, "c1", 1500).spent_units == 1500
    assert store.status(budget).remaining_units == 0
    assert not store.reserve(budget, "c2", 0, enforce=True).granted


def test_a_retried_settle_counts_once_and_replays_the_first_outcome(store: BudgetStore) -> None:
    budget = ref(1000, alert_at=(0.5,))
    store.reserve(budget, "c1", 900, enforce=True)
    first = store.settle(budget, "c1", 600)
    again = store.settle(budget, "c1", 999)
    assert again.replayed
    assert (again.charged_units, again.spent_units, again.held_units, again.alerts) == (600, 600, 0, (0.5,))
    assert store.status(budget).spent_units == 600
    assert first.alerts == (0.5,)


def test_a_settle_without_a_reserve_adds_the_spend(store: BudgetStore) -> None:
    budget = ref(1000, window="daily")
    outcome = store.settle(budget, "c1", 120)
    assert (outcome.state, outcome.spent_units, outcome.held_units) == ("settled", 120, 0)
    assert store.status(budget).spent_units == 120


def test_release_drops_the_hold_and_charges_nothing(store: BudgetStore) -> None:
    budget = ref(1000)
    store.reserve(budget, "c1", 400, enforce=True)
    store.settle(budget, "c0", 100)
    released = store.release(budget, "c1")
    assert (released.state, released.charged_units, released.spent_units, released.held_units) == (
        "released",
        0,
        100,
        0,
    )
    again = store.release(budget, "c1")
    assert (again.state, again.replayed) == ("released", True)
    late = store.settle(budget, "c1", 300)
    assert (late.state, late.replayed, late.spent_units) == ("released", True, 100)
    assert store.status(budget).spent_units == 100


def test_release_without_a_reserve_is_harmless(store: BudgetStore) -> None:
    outcome = store.release(ref(), "never-reserved")
    assert (outcome.state, outcome.charged_units, outcome.spent_units, outcome.held_units) == ("released", 0, 0, 0)


# --- holds expire ------------------------------------------------------------------------


def test_an_unsettled_hold_expires_after_its_ttl(backend: Backend) -> None:
    store = backend.store(hold_ttl_seconds=1)
    budget = ref(1000)
    store.reserve(budget, "c1", 700, enforce=True)
    assert store.status(budget).held_units == 700
    backend.advance(1.3)
    status = store.status(budget)
    assert (status.held_units, status.active_holds, status.spent_units) == (0, 0, 0)
    assert store.reserve(budget, "c2", 1000, enforce=True).granted


def test_a_settle_after_the_hold_expired_still_charges_once(backend: Backend) -> None:
    store = backend.store(hold_ttl_seconds=1)
    budget = ref(1000)
    store.reserve(budget, "c1", 700, enforce=True)
    backend.advance(1.3)
    store.reserve(budget, "c2", 200, enforce=True)
    outcome = store.settle(budget, "c1", 300)
    assert (outcome.state, outcome.spent_units, outcome.held_units) == ("settled", 300, 200)
    assert store.settle(budget, "c1", 300).replayed
    status = store.status(budget)
    assert (status.spent_units, status.held_units, status.active_holds) == (300, 200, 1)


# --- windows -----------------------------------------------------------------------------


def test_a_new_window_starts_empty_and_a_late_settle_lands_in_the_hold_window(backend: Backend) -> None:
    store = backend.store()
    budget = ref(1000, window="1s")
    held = store.reserve(budget, "c1", 900, enforce=True)
    backend.advance(1.1)
    fresh = store.reserve(budget, "c2", 900, enforce=True)
    assert fresh.granted
    assert fresh.window_id != held.window_id
    assert (fresh.spent_units, fresh.held_units) == (0, 0)
    late = store.settle(budget, "c1", 500)
    assert late.window_id == held.window_id
    assert (late.spent_units, late.held_units) == (500, 0)


def test_memory_calendar_windows_roll_over_at_utc_midnight() -> None:
    clock = FakeClock(1_717_199_999.5)  # 2024-05-31T23:59:59.5Z
    store = MemoryBudgetStore(StoreConfig(), clock=clock)
    daily, monthly = ref(1000, window="daily", name="d"), ref(1000, window="monthly", name="m")
    for budget in (daily, monthly):
        store.settle(budget, "c1", 400)
    assert (store.status(daily).window_id, store.status(monthly).window_id) == ("2024-05-31", "2024-05")
    clock.advance(1)
    assert (store.status(daily).window_id, store.status(daily).spent_units) == ("2024-06-01", 0)
    assert (store.status(monthly).window_id, store.status(monthly).spent_units) == ("2024-06", 0)


# --- alerts, reset, top -------------------------------------------------------------------


def test_each_alert_fires_once_per_window(store: BudgetStore) -> None:
    budget = ref(1000, alert_at=(0.5, 0.8, 1.0))
    assert store.settle(budget, "c1", 499).alerts == ()
    assert store.settle(budget, "c2", 1).alerts == (0.5,)
    assert store.settle(budget, "c3", 100).alerts == ()
    assert store.settle(budget, "c4", 500).alerts == (0.8, 1.0)
    assert store.settle(budget, "c5", 500).alerts == ()
    assert store.release(budget, "c6").alerts == ()
    store.reset(budget)
    assert store.settle(budget, "c7", 800).alerts == (0.5, 0.8)


def test_reset_clears_the_window_and_a_live_hold_still_settles_once(store: BudgetStore) -> None:
    budget = ref(1000)
    store.settle(budget, "c1", 600)
    store.reserve(budget, "c2", 300, enforce=True)
    store.reset(budget)
    status = store.status(budget)
    assert (status.spent_units, status.held_units, status.active_holds, status.remaining_units) == (0, 0, 0, 1000)
    outcome = store.settle(budget, "c2", 250)
    assert (outcome.spent_units, outcome.held_units) == (250, 0)
    assert store.status(budget).held_units == 0


@pytest.mark.parametrize("top_index", [False, True], ids=["scan", "index"])
def test_top_lists_the_largest_spenders_of_the_scope(backend: Backend, top_index: bool) -> None:
    store = backend.store(top_index=top_index)
    for scope_id, amount in (("a", 300), ("b", 900), ("c", 500), ("d", 0)):
        store.settle(ref(scope_id=scope_id), f"call-{scope_id}", amount)
    store.settle(ref(scope_id="a", name="other"), "x", 5000)
    assert store.top(ref(scope_id="ignored"), 2) == [("b", 900), ("c", 500)]
    assert store.top(ref(), 10) == [("b", 900), ("c", 500), ("a", 300)]
    store.reset(ref(scope_id="b"))
    assert store.top(ref(), 1) == [("c", 500)]
    assert store.top(ref(), 0) == []


# --- async twins -------------------------------------------------------------------------


def test_the_async_methods_behave_like_the_sync_ones(store: BudgetStore) -> None:
    budget = ref(1000, alert_at=(0.5,))

    async def scenario() -> None:
        async with store:
            granted = await store.areserve(budget, "c1", 800, enforce=True)
            refused = await store.areserve(budget, "c2", 800, enforce=True)
            settled = await store.asettle(budget, "c1", 600)
            released = await store.arelease(budget, "c2")
            status = await store.astatus(budget)
            top = await store.atop(budget, 5)
            await store.areset(budget)
            after = await store.astatus(budget)
        assert (granted.granted, refused.granted) == (True, False)
        assert (settled.spent_units, settled.alerts, released.state) == (600, (0.5,), "released")
        assert (status.spent_units, status.held_units, top) == (600, 0, [("s1", 600)])
        assert after.spent_units == 0

    asyncio.run(scenario())


def test_reserve_all_holds_in_order_and_stops_at_the_first_refusal(store: BudgetStore) -> None:
    wide, warn, narrow, after = ref(1000, name="a-wide"), ref(10, name="b-warn"), ref(50, name="c-narrow"), ref(1000)
    budgets = [wide, warn, narrow, after]
    outcomes = store.reserve_all(budgets, "c1", 40, [True, False, True, True])
    assert [o.granted for o in outcomes] == [True, False, True, True]
    assert [store.status(b).held_units for b in budgets] == [40, 40, 40, 40]
    refused = store.reserve_all(budgets, "c2", 40, [True, False, True, True])
    assert [o.granted for o in refused] == [True, False, False]  # stops at the narrow one; `after` untried
    assert (refused[2].held_units, store.status(after).held_units) == (40, 40)
    replayed = store.reserve_all(budgets, "c1", 40, [True, False, True, True])
    assert [(o.granted, o.replayed) for o in replayed] == [(True, True), (False, True), (True, True), (True, True)]
    assert [store.status(b).held_units for b in budgets] == [80, 80, 40, 40]  # c2 held in the first two only


def test_reserve_all_settles_like_separate_reserves(store: BudgetStore) -> None:
    budgets = [ref(1000, name="a-one"), ref(1000, name="b-two")]

    async def scenario() -> None:
        async with store:
            outcomes = await store.areserve_all(budgets, "c1", 300, [True, True])
            assert [o.granted for o in outcomes] == [True, True]
            for budget in budgets:
                settled = await store.asettle(budget, "c1", 120)
                assert (settled.spent_units, settled.held_units, settled.unheld) == (120, 0, False)

    asyncio.run(scenario())


# --- random sequences keep the books ------------------------------------------------------

operations = st.lists(
    st.tuples(st.sampled_from(["reserve", "warn", "settle", "release"]), st.integers(0, 5), st.integers(0, 400)),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_random_sequences_keep_spent_and_held_exact(store: BudgetStore, steps: list[tuple[str, int, int]]) -> None:
    budget = ref(1000, scope_id=uuid.uuid4().hex)
    live: dict[str, int] = {}
    done: set[str] = set()
    reserved: set[str] = set()
    spent = 0
    for operation, call, amount in steps:
        call_id = f"c{call}"
        if operation in ("reserve", "warn"):
            outcome = store.reserve(budget, call_id, amount, enforce=operation == "reserve")
            assert outcome.replayed == (call_id in reserved or call_id in done)
            if not outcome.replayed and (outcome.granted or operation == "warn"):
                live[call_id] = amount
            reserved.add(call_id)
        else:
            result = store.settle(budget, call_id, amount) if operation == "settle" else store.release(budget, call_id)
            assert result.replayed == (call_id in done)
            if not result.replayed:
                spent += result.charged_units
                live.pop(call_id, None)
                done.add(call_id)
        status = store.status(budget)
        assert status.spent_units == spent
        assert status.held_units == sum(live.values())
        assert status.active_holds == len(live)


# --- Redis only --------------------------------------------------------------------------


@pytest.fixture
def redis_backend(redis_url: str) -> Iterator[Backend]:
    backend = Backend("redis", redis_url=redis_url)
    try:
        yield backend
    finally:
        backend.close()


def test_the_factory_builds_the_configured_backend(redis_url: str) -> None:
    assert isinstance(store_from_config(StoreConfig()), MemoryBudgetStore)
    leased = store_from_config(StoreConfig(backend="redis"), redis_url=redis_url)
    assert isinstance(leased, LeasedStore)  # the default: leases
    assert isinstance(leased.inner, RedisBudgetStore)
    assert leased.url == redis_url
    leased.close()
    per_call = store_from_config(StoreConfig(backend="redis", lease={"enabled": False}), redis_url=redis_url)
    assert isinstance(per_call, RedisBudgetStore)
    per_call.close()


def test_keys_of_one_budget_share_a_hash_tag_and_expire(redis_backend: Backend) -> None:
    store = redis_backend.store(top_index=True)
    fixed, total = ref(1000, window="1h", name="hourly", scope_id="s{1}:x"), ref(1000)
    for budget in (fixed, total):
        store.reserve(budget, "c1", 100, enforce=True)
        store.settle(budget, "c2", 100)
    client = redis.Redis.from_url(redis_backend.redis_url or "", decode_responses=True)
    try:
        keys = sorted(client.scan_iter(match=f"*{redis_backend.prefix}*"))
        tag = budget_key(redis_backend.prefix, fixed)
        assert tag == "{" + f"{redis_backend.prefix}:{KEY_LAYOUT_VERSION}:hourly:session:s%7B1%7D%3Ax" + "}"
        window = store.status(fixed).window_id
        fixed_keys = [key for key in keys if key.startswith(tag)]
        assert sorted(fixed_keys) == sorted([f"{tag}:c", f"{tag}:w:{window}"])
        assert len({key_slot(key.encode()) for key in fixed_keys}) == 1
        assert 0 < cast("int", client.ttl(f"{tag}:w:{window}")) <= 3600 + 300
        # The records hash outlives its records' retention (24 h) by half of it at most.
        assert 86400 < cast("int", client.ttl(f"{tag}:c")) <= 86400 * 3 // 2 + 1
        total_tag = budget_key(redis_backend.prefix, total)
        assert client.ttl(f"{total_tag}:w:total") == -1
        # c2 was settled without a hold: counted as an unheld settle.
        expected = {"spent": "100", "held": "100", "holds": "1", "unheld": "1"}
        assert client.hgetall(f"{total_tag}:w:total") == expected
        assert f"{{{redis_backend.prefix}:{KEY_LAYOUT_VERSION}:top:hourly}}:{window}" in keys
    finally:
        client.close()


def test_holds_whose_call_index_is_gone_are_not_counted(redis_backend: Backend) -> None:
    # An evicted or deleted call index leaves no live hold behind: the window's hold counters
    # are stale, and status, a reserve and a settle heal them instead of counting them.
    store = redis_backend.store()
    budget = ref(1000)
    tag = budget_key(redis_backend.prefix, budget)
    client = redis.Redis.from_url(redis_backend.redis_url or "", decode_responses=True)
    try:
        for heals in ("status", "reserve", "settle"):
            assert store.reserve(budget, f"held-{heals}", 600, enforce=True).granted
            client.delete(f"{tag}:c")
            if heals == "status":
                status = store.status(budget)
                assert (status.held_units, status.active_holds) == (0, 0)
            elif heals == "reserve":
                assert store.reserve(budget, "next", 900, enforce=True).granted  # 600 stale + 900 > 1000
                store.release(budget, "next")
            else:
                store.settle(budget, "unheld", 0)
            assert client.hmget(f"{tag}:w:total", "held", "holds") == ["0", "0"], heals
    finally:
        client.close()


def test_scripts_are_reloaded_after_script_flush(redis_backend: Backend) -> None:
    store = redis_backend.store()
    budget = ref(1000)
    store.reserve(budget, "c1", 100, enforce=True)
    client = redis.Redis.from_url(redis_backend.redis_url or "")
    try:
        client.script_flush()
        assert store.reserve(budget, "c2", 100, enforce=True).granted

        async def flushed_async() -> int:
            async with store:
                await store.astatus(budget)
                client.script_flush()
                return (await store.areserve(budget, "c3", 100, enforce=True)).held_units

        assert asyncio.run(flushed_async()) == 200
    finally:
        client.close()


@pytest.mark.parametrize("window", ["total", "daily", "monthly", "1s", "7m", "1h", "5d", "30d", "365d"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now=st.floats(min_value=0, max_value=7_258_118_400, allow_nan=False))
def test_lua_and_python_agree_on_windows(redis_backend: Backend, window: str, now: float) -> None:
    store = redis_backend.store()
    assert isinstance(store, RedisBudgetStore)
    expected = window_at(parse_window(window), now)
    assert store.window_of(ref(window=window), now) == (expected.id, expected.end or 0)


def test_an_unreachable_store_raises_budget_store_error_then_recovers(
    redis_server: RedisServer, redis_backend: Backend
) -> None:
    if not redis_server.can_restart:
        pytest.skip("REDIS_URL names a server these tests may not kill")
    store = redis_backend.store(timeout_seconds=0.3)
    budget = ref(1000)
    assert store.reserve(budget, "c1", 100, enforce=True).granted
    redis_server.kill()
    try:
        for call in (
            lambda: store.reserve(budget, "c2", 100, enforce=True),
            lambda: store.settle(budget, "c1", 100),
            lambda: store.release(budget, "c1"),
            lambda: store.status(budget),
            lambda: store.reset(budget),
            lambda: store.top(budget, 3),
        ):
            with pytest.raises(BudgetStoreError) as caught:
                call()
            assert isinstance(caught.value.__cause__, redis.ConnectionError)

        async def down() -> None:
            async with store:
                with pytest.raises(BudgetStoreError):
                    await store.areserve(budget, "c3", 100, enforce=True)

        asyncio.run(down())
    finally:
        redis_server.restart()
    assert store.reserve(budget, "c4", 100, enforce=True).granted
    assert store.status(budget).held_units == 100


def test_a_server_that_never_answers_times_out_into_budget_store_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        store = RedisBudgetStore(StoreConfig(backend="redis", timeout_seconds=0.2), url=url)
        with pytest.raises(BudgetStoreError, match="reserve") as caught:
            store.reserve(ref(), "c1", 1, enforce=True)
        assert isinstance(caught.value.__cause__, redis.TimeoutError)
        store.close()


def hold_then_hang(url: str, prefix: str, scope_id: str, ready: Event) -> None:
    """Reserve, tell the test, then wait to be killed (in a worker process)."""
    store = RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix, hold_ttl_seconds=1), url=url)
    store.reserve(ref(1000, scope_id=scope_id), "doomed", 800, enforce=True)
    ready.set()
    threading.Event().wait()


def test_a_hold_left_by_a_killed_process_is_freed_after_its_ttl(redis_backend: Backend) -> None:
    scope_id = uuid.uuid4().hex
    context = worker_context()
    ready = context.Event()
    process = context.Process(
        target=hold_then_hang, args=(redis_backend.redis_url, redis_backend.prefix, scope_id, ready), daemon=True
    )
    process.start()
    try:
        assert ready.wait(timeout=60)
    finally:
        process.kill()
        process.join()
    assert process.exitcode == -signal.SIGKILL
    store = redis_backend.store(hold_ttl_seconds=1)
    budget = ref(1000, scope_id=scope_id)
    assert store.status(budget).held_units == 800
    assert not store.reserve(budget, "next", 800, enforce=True).granted
    redis_backend.advance(1.3)
    status = store.status(budget)
    assert (status.held_units, status.active_holds, status.spent_units) == (0, 0, 0)
    assert store.reserve(budget, "after", 800, enforce=True).granted


def test_the_memory_store_forgets_ended_windows_and_old_call_records() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore(StoreConfig(hold_ttl_seconds=1, settle_record_ttl_seconds=60), clock=clock)
    for session in range(3000):
        store.settle(ref(1000, scope_id=f"s{session}", window="1h"), "c1", 10)
    clock.advance(7200)
    for call in range(5000):
        store.settle(ref(1000, scope_id="busy", window="1h"), f"c{call}", 1)
    assert len(store._counters) == 1
    assert len(store._instances) == 1
    assert store.status(ref(1000, scope_id="busy", window="1h")).spent_units == 5000


@pytest.fixture
def cluster_backend(redis_cluster_url: str) -> Iterator[Backend]:
    backend = Backend("redis-cluster", redis_url=redis_cluster_url)
    yield backend
    backend.close()


def test_on_a_cluster_the_client_keeps_the_top_index(cluster_backend: Backend) -> None:
    store = cluster_backend.store(top_index=True)
    for scope_id, amount in (("a", 300), ("b", 900)):
        store.settle(ref(scope_id=scope_id), f"call-{scope_id}", amount)
    store.settle(ref(scope_id="a"), "call-a", 300)  # a replayed settle adds nothing
    assert store.top(ref(), 5) == [("b", 900), ("a", 300)]


@pytest.mark.parametrize("kind", ["redis_backend", "cluster_backend"])
def test_top_without_an_index_scans_the_window_hashes_and_counts_them(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store = request.getfixturevalue(kind).store()
    assert isinstance(store, RedisBudgetStore)
    odd = ("s:1", "{t}", "a*b", "100%")
    for number, scope_id in enumerate(odd, start=1):
        store.settle(ref(scope_id=scope_id, name="we[ird]*"), f"call-{number}", number * 100)
    store.settle(ref(scope_id="other", name="weird"), "x", 5000)  # another budget: not scanned
    scan = store.scan_top(ref(name="we[ird]*"), 3)
    assert scan.ranked == [("100%", 400), ("a*b", 300), ("{t}", 200)]
    assert (scan.scanned, scan.complete) == (4, True)
    assert store.last_top_scan == scan
