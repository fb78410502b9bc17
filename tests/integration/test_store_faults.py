"""Budgets whole through store faults: a slow Redis, a refusing one, a dead process, a Redis restarted empty.

Each test runs its own ``redis-server`` (restarts lose every key; DEBUG is enabled), the
provider double, a real CostRouter with the default timeouts, and a journal in a
temporary directory. The invariant: every budget counter equals the sum of what the
provider answered, priced, and no call that the provider answered fails.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from typer.testing import CliRunner

from costrouter import BudgetStoreError, CostRouter
from costrouter.budget import BudgetPolicy, BudgetRef, RedisBudgetStore, StoreConfig
from costrouter.budget.epoch_watch import EPOCH_CHECK_SECONDS
from costrouter.budget.factory import leased_store_of
from costrouter.budget.journal import SettleJournal, journal_dir_for, new_entry, read_pending
from costrouter.budget.layout import legacy_epoch_keys
from costrouter.budget.settling import StoreLostError
from costrouter.budget.store import epoch_keys
from costrouter.cli.commands import app
from costrouter.errors import StoreLayoutError
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.redis_server import RedisServer
from tests.integration.faults import admin, refuse_scripts
from tests.routing import expected_cost, router_config

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "count me once, whatever the store does"}]
_PATIENCE_SECONDS = 60.0  # a bound for polling on a loaded machine, not a measured time


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A private redis-server: these tests make it slow, refuse, and restart empty."""
    with RedisServer() as private:
        yield private


@pytest.fixture
def fault_redis(server: RedisServer) -> Iterator[RedisServer]:
    server.ensure_running()
    yield server
    server.ensure_running()
    refuse_scripts(server, refuse=False)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def policy(url: str, journal_dir: Path, prefix: str, **store: Any) -> dict[str, Any]:
    # The per-call path (leases are the default): each settle meets the fault as the call makes it.
    # The same faults with leases: test_fault_invariants.py and test_budget_leases.py.
    store = {"lease": {"enabled": False}, **store}
    return {
        "store": {"backend": "redis", "redis_url": url, "key_prefix": prefix, "journal_dir": str(journal_dir), **store},
        "budgets": [
            {"scope": "session", "limit_usd": 100.0},
            {"scope": "team", "limit_usd": 100.0},
            {"scope": "global", "limit_usd": 100.0},
        ],
    }


def make_router(provider: ProviderDouble, capture: TelemetryCapture, budgets: dict[str, Any]) -> CostRouter:
    return CostRouter(
        router_config(provider.base_url),
        budgets=budgets,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )


def priced(response: Any) -> int:
    usage = response.usage
    return usd_to_units(expected_cost("fast-primary", usage.prompt_tokens, usage.completion_tokens))


def refs(router: CostRouter, session_id: str, team_id: str | None = None) -> list[BudgetRef]:
    assert isinstance(router.policy, BudgetPolicy)
    return router.policy.budgets_for(session_id=session_id, team_id=team_id)


def spent_and_held(router: CostRouter, budget: BudgetRef) -> tuple[int, int]:
    assert router.store is not None
    status = router.store.status(budget)
    return status.spent_units, status.held_units


def journal_points(capture: TelemetryCapture) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attributes, point in capture.metric_points(sc.METRIC_SETTLE_JOURNAL):
        action = str(attributes[sc.BUDGET_JOURNAL_ACTION])
        counts[action] = counts.get(action, 0) + int(point.value)
    return counts


# ---- a slow store: DEBUG SLEEP past the timeout while six threads route calls ----------------
def test_settles_through_a_slow_store_are_journaled_then_land_exactly_once(
    provider: ProviderDouble, capture: TelemetryCapture, fault_redis: RedisServer, tmp_path: Path
) -> None:
    provider.reset()
    provider.set_default("fast-model", Reply(completion_tokens=8, delay=0.3))
    router = make_router(provider, capture, policy(fault_redis.url, tmp_path, f"t{uuid.uuid4().hex[:10]}"))
    answered: list[tuple[str, int]] = []
    refused: list[BudgetStoreError] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for _ in range(8):
            session = f"s{index % 3}"
            try:
                response = router.route_completion("fast", MESSAGES, max_tokens=20, session_id=session, team_id="t")
            except BudgetStoreError as error:  # fail_closed: a reserve during the sleep is refused
                with lock:
                    refused.append(error)
                continue
            with lock:
                answered.append((session, priced(response)))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    wait_until(lambda: provider.request_count() >= 6)
    admin(fault_redis, "DEBUG", "SLEEP", "4")  # longer than every try of a settle (3 x 0.5 s + backoff)
    for thread in threads:
        thread.join()
    assert router.guard is not None
    wait_until(lambda: router.guard is not None and router.guard.pending() == (0, 0))

    journaled = [
        event
        for span in capture.call_spans()
        for event in span.events
        if event.name == sc.EVENT_SETTLE_JOURNALED and (event.attributes or {}).get("state") == "settle"
    ]
    assert journaled, "the sleep should have sent some settles to the journal"
    for span in capture.call_spans():
        if any(event.name == sc.EVENT_SETTLE_JOURNALED for event in span.events):
            assert span.attributes[sc.BUDGET_SETTLE_JOURNALED] >= 1  # type: ignore[index,operator]
            if (span.attributes or {}).get(sc.BUDGET_OUTCOME) == "allowed":
                assert span.status.status_code != StatusCode.ERROR  # answered, so not a failure
    counts = journal_points(capture)
    assert counts["journaled"] >= len(journaled)
    assert counts["replayed"] == counts["journaled"]
    assert "dropped" not in counts

    total = sum(micros for _, micros in answered)
    print(f"\nslow store: {len(answered)} answered, {len(refused)} refused, {len(journaled)} settles journaled")
    for session in ("s0", "s1", "s2"):
        expected = sum(micros for owner, micros in answered if owner == session)
        for budget in refs(router, session, "t"):
            wanted = expected if budget.scope == "session" else total
            assert spent_and_held(router, budget) == (wanted, 0), (budget.name, budget.scope_id)
    router.shutdown()


# ---- a process that dies with journaled settles; the next start replays them ------------------
def test_a_process_that_died_with_journaled_settles_has_them_replayed_at_the_next_start(
    provider: ProviderDouble, capture: TelemetryCapture, fault_redis: RedisServer, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [
        sys.executable,
        "-m",
        "tests.workers.journal_then_die",
        fault_redis.url,
        prefix,
        str(tmp_path),
    ]
    worker = subprocess.run(command, capture_output=True, env=environment, cwd=ROOT, timeout=240, check=False)
    assert worker.returncode == -9, worker.stderr.decode()[-3000:]
    died = json.loads(worker.stdout.decode().strip().splitlines()[-1])
    (cost,) = died["priced"]
    assert (died["pending"], died["pending_units"]) == (2, 2 * cost)  # session + global, never settled

    refuse_scripts(fault_redis, refuse=False)
    provider.reset()
    budgets = policy(fault_redis.url, tmp_path, prefix)
    budgets["budgets"] = [{"scope": "session", "limit_usd": 1.0}, {"scope": "global", "limit_usd": 10.0}]
    directory = journal_dir_for(tmp_path, fault_redis.url, prefix)
    assert len(read_pending(directory)) == 2  # the dead process's file, left for the next start
    config = StoreConfig(backend="redis", key_prefix=prefix, journal_dir=None)
    with RedisBudgetStore(config, url=fault_redis.url) as store:
        for budget in BudgetPolicy.model_validate(budgets).budgets_for(session_id="dying"):
            status = store.status(budget)
            assert status.spent_units == 0  # the settle never landed: only the journal has it
            assert status.held_units > 0

    router = make_router(provider, capture, budgets)  # adopts the dead file and replays it before returning
    assert router.guard is not None
    assert router.guard.pending() == (0, 0)
    assert read_pending(directory) == []
    for budget in refs(router, "dying"):
        assert spent_and_held(router, budget) == (cost, 0), budget.name
    assert journal_points(capture) == {"replayed": 2}
    router.shutdown()


# ---- the journal's bound, and budget status while settles wait ----------------------------------
def test_a_full_journal_drops_loudly_and_budget_status_shows_what_waits(
    provider: ProviderDouble,
    capture: TelemetryCapture,
    fault_redis: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider.reset()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budgets = policy(fault_redis.url, tmp_path / "journal", prefix, on_store_error="fail_open", journal_max_entries=2)
    budgets["budgets"] = [{"scope": "session", "limit_usd": 1.0}]
    router = make_router(provider, capture, budgets)
    refuse_scripts(fault_redis, refuse=True)
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        costs = [priced(router.route_completion("fast", MESSAGES, max_tokens=20, session_id="full")) for _ in range(4)]
    assert router.guard is not None
    assert router.guard.pending() == (2, costs[0] + costs[1])
    assert journal_points(capture) == {"journaled": 2, "dropped": 2}
    kept = [
        (event.attributes or {}).get("kept")
        for span in capture.call_spans()
        for event in span.events
        if event.name == sc.EVENT_SETTLE_JOURNALED
    ]
    assert kept == [True, True, False, False]
    lost = [r for r in caplog.records if r.levelno == logging.ERROR and "LOST the settle" in r.getMessage()]
    assert len(lost) == 2

    policy_file = tmp_path / "budgets.json"  # JSON is YAML
    policy_file.write_text(json.dumps(budgets))
    runner = CliRunner()
    result = runner.invoke(app, ["budget", "status", "session", "full", "--budgets", str(policy_file)])
    assert result.exit_code == 3  # the store refuses its scripts
    assert "pending settles: 2 ($" in result.stdout

    refuse_scripts(fault_redis, refuse=False)
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="other")  # a store op that works: replay
    wait_until(lambda: router.guard is not None and router.guard.pending() == (0, 0))
    (budget,) = refs(router, "full")
    assert spent_and_held(router, budget) == (costs[0] + costs[1], 0)  # the two dropped settles are lost
    result = runner.invoke(app, ["budget", "status", "session", "full", "--budgets", str(policy_file)])
    assert result.exit_code == 0, result.output
    assert "pending settles: none" in result.stdout
    router.shutdown()


async def test_async_calls_journal_and_replay_through_the_same_flow(
    provider: ProviderDouble, capture: TelemetryCapture, fault_redis: RedisServer, tmp_path: Path
) -> None:
    provider.reset()
    budgets = policy(fault_redis.url, tmp_path, f"t{uuid.uuid4().hex[:10]}", on_store_error="fail_open")
    router = make_router(provider, capture, budgets)
    refuse_scripts(fault_redis, refuse=True)
    response = await router.aroute_completion("fast", MESSAGES, max_tokens=20, session_id="a", team_id="t")
    assert router.guard is not None
    assert router.guard.pending() == (3, 3 * priced(response))  # session, team, global
    assert router.budgets is not None
    assert len(router.budgets.pending_settles()) == 3
    refuse_scripts(fault_redis, refuse=False)
    await router.aroute_completion("fast", MESSAGES, max_tokens=20, session_id="b")
    wait_until(lambda: router.guard is not None and router.guard.pending() == (0, 0))
    for budget in refs(router, "a", "t"):
        wanted = priced(response) if budget.scope != "global" else 2 * priced(response)
        assert spent_and_held(router, budget) == (wanted, 0), budget.name
    router.shutdown()


# ---- a Redis restarted empty ---------------------------------------------------------------------
def test_a_redis_restarted_empty_is_refused_by_this_and_new_routers_until_accepted(
    provider: ProviderDouble, capture: TelemetryCapture, fault_redis: RedisServer, tmp_path: Path
) -> None:
    provider.reset()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budgets = policy(fault_redis.url, tmp_path / "journal", prefix)
    router = make_router(provider, capture, budgets)
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="before")

    fault_redis.restart()  # every key gone: the total windows would restart from zero
    with pytest.raises(BudgetStoreError) as raised:
        router.route_completion("fast", MESSAGES, max_tokens=20, session_id="before")
    assert isinstance(raised.value.__cause__, StoreLostError)
    assert "accept-loss" in str(raised.value)
    assert provider.request_count() == 1
    span = capture.call_spans()[-1]
    assert any(event.name == sc.EVENT_STORE_LOST for event in span.events)
    assert span.status.status_code == StatusCode.ERROR
    (point,) = capture.metric_points(sc.METRIC_STORE_LOST)
    assert point[1].value == 1
    for budget in refs(router, "before"):  # the call that met the empty store was released
        assert spent_and_held(router, budget) == (0, 0)

    restarted = make_router(provider, capture, budgets)  # another process: knows the epoch from its marker
    with pytest.raises(BudgetStoreError):
        restarted.route_completion("fast", MESSAGES, max_tokens=20, session_id="new")
    assert provider.request_count() == 1

    policy_file = tmp_path / "budgets.json"
    policy_file.write_text(json.dumps(budgets))
    result = CliRunner().invoke(app, ["budget", "accept-loss", "--budgets", str(policy_file)])
    assert result.exit_code == 0, result.output
    assert "accepted the store's epoch" in result.stdout
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="after")
    restarted.route_completion("fast", MESSAGES, max_tokens=20, session_id="after")
    assert provider.request_count() == 3
    router.shutdown()
    restarted.shutdown()


def leased_router(
    provider: ProviderDouble, capture: TelemetryCapture, server: RedisServer, tmp_path: Path
) -> tuple[str, CostRouter]:
    """A router on a key prefix of its own with the store's defaults (leases), and that prefix."""
    provider.reset()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return prefix, make_router(provider, capture, policy(server.url, tmp_path / "journal", prefix, lease={}))


def quiet_connections(router: CostRouter, session: str) -> None:
    """Route until every connection the store opened is one an epoch check saw, and nothing is out.

    A connection the background work opens (the lease thread, the store worker) makes the next
    call check the epoch on its own path, rightly: these tests want only the interval's check due.
    """
    assert router.store is not None
    assert router.guard is not None
    assert router.store_worker is not None
    leased = leased_store_of(router.store)
    for _ in range(20):
        router.store_worker.wait()
        if leased is not None:
            leased.flush()
        if router.guard.epoch.seen_connections == router.store.connections:
            return
        router.route_completion("fast", MESSAGES, max_tokens=20, session_id=session)
    raise AssertionError("the store kept opening connections")


def test_the_interval_epoch_check_leaves_the_call_path_and_a_loss_it_finds_refuses_the_next_call(
    provider: ProviderDouble, capture: TelemetryCapture, fault_redis: RedisServer, tmp_path: Path
) -> None:
    prefix, router = leased_router(provider, capture, fault_redis, tmp_path)
    assert router.store is not None
    assert router.guard is not None
    assert router.store_worker is not None
    store, watch = router.store, router.guard.epoch
    checks: list[str] = []  # the thread each epoch check ran on
    sync_epoch, async_epoch = store.epoch, store.aepoch

    def epoch(candidate: str, known: str | None) -> Any:
        checks.append(threading.current_thread().name)
        return sync_epoch(candidate, known)

    async def aepoch(candidate: str, known: str | None) -> Any:
        checks.append(threading.current_thread().name)
        return await async_epoch(candidate, known)

    store.epoch, store.aepoch = epoch, aepoch  # type: ignore[method-assign]
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")
    quiet_connections(router, "a")
    checks.clear()

    watch.checked_at -= EPOCH_CHECK_SECONDS  # the interval passed; nothing else is new
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")
    router.store_worker.wait()
    assert len(checks) == 1
    assert checks[0].startswith("costrouter-store-worker")  # on the caller's thread before the fix
    assert watch.lost is None

    # The store loses its data (its epoch key gone) behind connections that stay open: only the
    # interval's check can see it, and it runs in the background.
    quiet_connections(router, "a")
    admin(fault_redis, "DEL", *epoch_keys(prefix))
    watch.checked_at -= EPOCH_CHECK_SECONDS
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")
    router.store_worker.wait()
    assert watch.lost is not None
    (point,) = capture.metric_points(sc.METRIC_STORE_LOST)
    assert point[1].value == 1
    answered = provider.request_count()
    with pytest.raises(BudgetStoreError) as raised:  # fail_closed: the next call checks on its path, refuses
        router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")
    assert isinstance(raised.value.__cause__, StoreLostError)
    assert provider.request_count() == answered
    assert any(event.name == sc.EVENT_STORE_LOST for event in capture.call_spans()[-1].events)
    router.shutdown()


def test_a_0_2_process_a_background_epoch_check_finds_stops_the_next_call(
    provider: ProviderDouble, capture: TelemetryCapture, fault_redis: RedisServer, tmp_path: Path
) -> None:
    prefix, router = leased_router(provider, capture, fault_redis, tmp_path)
    assert router.guard is not None
    assert router.store_worker is not None
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")
    quiet_connections(router, "a")
    admin(fault_redis, "SET", legacy_epoch_keys(prefix)[0], "a-0.2-epoch")  # a 0.2 process starts on the prefix
    router.guard.epoch.checked_at -= EPOCH_CHECK_SECONDS
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")  # its check runs in the background
    router.store_worker.wait()
    answered = provider.request_count()
    for _ in range(2):  # every later call is refused, as an on-path check refused them before
        with pytest.raises(StoreLayoutError, match=r"0\.2's key layout"):
            router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")
    assert provider.request_count() == answered
    admin(fault_redis, "DEL", legacy_epoch_keys(prefix)[0])
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="a")
    router.shutdown()


def test_a_redis_restarted_empty_under_warn_logs_marks_the_span_and_goes_on(
    provider: ProviderDouble,
    capture: TelemetryCapture,
    fault_redis: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider.reset()
    budgets = policy(fault_redis.url, tmp_path, f"t{uuid.uuid4().hex[:10]}", on_store_lost="warn")
    router = make_router(provider, capture, budgets)
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="w")
    fault_redis.restart()
    with caplog.at_level(logging.WARNING, logger="costrouter"):
        response = router.route_completion("fast", MESSAGES, max_tokens=20, session_id="w")
    span = capture.call_spans()[-1]
    assert any(event.name == sc.EVENT_STORE_LOST for event in span.events)
    assert "lost its data" in caplog.text
    (point,) = capture.metric_points(sc.METRIC_STORE_LOST)
    assert point[0][sc.BUDGET_ON_STORE_LOST] == "warn"
    for budget in refs(router, "w"):  # counting goes on from the empty store
        assert spent_and_held(router, budget) == (priced(response), 0)
    router.shutdown()


def test_a_replay_past_the_call_records_life_still_charges_and_says_it_may_charge_twice(
    provider: ProviderDouble,
    capture: TelemetryCapture,
    fault_redis: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budgets = policy(fault_redis.url, tmp_path, prefix, settle_record_ttl_seconds=60)
    (budget, *_) = BudgetPolicy.model_validate(budgets).budgets_for(session_id="old")
    journal = SettleJournal(journal_dir_for(tmp_path, fault_redis.url, prefix))
    journal.append(replace(new_entry(budget, "old-call", 77, "settle"), at=time.time() - 3600))
    journal.close()  # as a process that died an hour ago would leave it

    with caplog.at_level(logging.WARNING, logger="costrouter"):
        router = make_router(provider, capture, budgets)
    assert "after the store forgot the call" in caplog.text
    assert spent_and_held(router, budget) == (77, 0)
    router.shutdown()


# ---- a dead process's journal with a hostile line ------------------------------------------------
def test_a_deeply_nested_journal_line_is_skipped_and_every_router_still_builds(
    provider: ProviderDouble,
    capture: TelemetryCapture,
    fault_redis: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budgets = policy(fault_redis.url, tmp_path, prefix)
    (budget, *_) = BudgetPolicy.model_validate(budgets).budgets_for(session_id="kept")
    directory = journal_dir_for(tmp_path, fault_redis.url, prefix)
    journal = SettleJournal(directory)
    journal.append(new_entry(budget, "kept-call", 55, "settle"))
    journal.close()  # a dead process's file, with its pending settle
    (dead,) = directory.glob("journal-*.jsonl")
    with dead.open("ab") as file:
        file.write(b"[" * 60_000 + b"\n")  # json.loads: RecursionError, which stopped every router build
        file.write(json.dumps({**new_entry(budget, "forged", 10**30, "settle").to_json()}).encode() + b"\n")

    with caplog.at_level(logging.ERROR, logger="costrouter"):
        router = make_router(provider, capture, budgets)
        second = make_router(provider, capture, budgets)
    assert spent_and_held(router, budget) == (55, 0)  # the good entry replayed, the forged amount not charged
    named = [r.getMessage() for r in caplog.records if str(dead) in r.getMessage()]
    assert any(f"line 2 of settle journal {dead}: nested deeper than 8 levels" in m for m in named)
    assert any(f"line 3 of settle journal {dead}: amount_units" in m for m in named)
    router.route_completion("fast", MESSAGES, max_tokens=20, session_id="after")
    router.shutdown()
    second.shutdown()


# ---- a journal written before the unit changed ---------------------------------------------------
# A line exactly as costrouter before the unit change (2a7423a: micro-dollars, no line version) wrote
# it: a settle of 428 micro-dollars into a $1 session budget.
OLD_UNIT_LINES = (
    b'{"kind":"pending","id":"bbfb2221d90044e8b674363ff52aa871","call_id":"call-1","state":"settle",'
    b'"amount_micros":428,"at":1796529075.9267697,"budget":{"name":"session-total","scope":"session",'
    b'"scope_id":"s-1","window":"total","limit_micros":1000000,"alert_at":[0.5],"on_exceeded":"reject",'
    b'"downgrade_to":null}}\n'
)


def test_a_journal_written_in_micro_dollars_replays_at_the_same_dollars_after_the_upgrade(
    provider: ProviderDouble,
    capture: TelemetryCapture,
    fault_redis: RedisServer,
    tmp_path: Path,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    budgets = policy(fault_redis.url, tmp_path, prefix)
    (budget,) = [b for b in BudgetPolicy.model_validate(budgets).budgets_for(session_id="s-1") if b.scope == "session"]
    directory = journal_dir_for(tmp_path, fault_redis.url, prefix)
    directory.mkdir(parents=True)
    (directory / "journal-999999-0123456789ab.jsonl").write_bytes(OLD_UNIT_LINES)  # a dead 0.2 process's file

    router = make_router(provider, capture, budgets)  # adopts the dead file and replays it before returning
    assert spent_and_held(router, budget) == (usd_to_units(0.000428), 0)  # 428,000 units: $0.000428
    assert journal_points(capture) == {"replayed": 1}
    router.shutdown()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("budgets", [1, 2])
def test_a_per_call_reserve_that_times_out_is_sent_again_and_held_once(
    fault_redis: RedisServer, mode: str, budgets: int
) -> None:
    """``lease.enabled: false``: a reserve whose reply is later than the default 1 s timeout is resent, not refused.

    ``CLIENT PAUSE WRITE`` holds every script past the timeout; the resend is answered when the
    pause ends, and a replay by call id (had the first one run) answers the first decision.
    """
    import asyncio  # noqa: PLC0415

    from tests.integration.budget_backends import ref  # noqa: PLC0415

    prefix = f"t{uuid.uuid4().hex[:10]}"
    refs = [ref(10_000, scope_id=f"s{index}", name=f"b{index}") for index in range(budgets)]
    config = StoreConfig(backend="redis", key_prefix=prefix, lease={"enabled": False}, journal_dir=None)
    store = RedisBudgetStore(config, url=fault_redis.url)
    try:
        store.status(refs[0])  # connected and warm: the pause below holds the reserve itself
        admin(fault_redis, "CLIENT", "PAUSE", 1800, "WRITE")
        if mode == "sync":
            outcomes = store.reserve_all(refs, "call-1", 4_000, [True] * budgets)
        else:

            async def reserve() -> list[Any]:
                try:
                    return await store.areserve_all(refs, "call-1", 4_000, [True] * budgets)
                finally:
                    await store.aclose()

            outcomes = asyncio.run(reserve())
        assert [outcome.granted for outcome in outcomes] == [True] * budgets
        assert [store.status(budget).held_units for budget in refs] == [4_000] * budgets  # held once
    finally:
        store.close()
