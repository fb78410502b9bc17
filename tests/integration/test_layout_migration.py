"""Upgrading from 0.2: the real 0.2 code seeds a store, ``costrouter budget migrate`` carries it over.

The 0.2 process (commit 2a7423a, its own ``PYTHONPATH``, see ``legacy_process``) leaves live holds,
settled spend, a fired alert, a live lease, the top index and a learned token ratio in the
unversioned layout (micro-dollars). After the migration the current code's books match to the unit
(every amount times :data:`costrouter.budget.migrate.FACTOR`, whatever the unit is), late settles
of the 0.2 holds drop them and charge once, a retried 0.2 settle changes nothing, a second run
carries nothing twice, and both sides of a mixed fleet refuse instead of counting apart.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.budget import BudgetPolicy
from costrouter.budget.layout import MIGRATED, legacy_epoch_keys
from costrouter.budget.migrate import FACTOR, LegacyGroup, Migration
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.store import epoch_keys
from costrouter.cli import app
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import StoreConfig
from costrouter.errors import StoreLayoutError
from costrouter.testing import ProviderDouble
from tests.integration.legacy_process import legacy_tree, run_legacy
from tests.routing import router_config

POLICY: dict[str, Any] = {
    "budgets": [
        {"scope": "session", "limit_usd": 1.0, "window": "total", "alert_at": [0.5]},
        {"scope": "global", "limit_usd": 10.0, "window": "30d"},
    ]
}

# 0.2 (micro-dollars): in session s1 (and the global budget), call a stays held, b and c settle
# (c's charge crosses the 0.5 alert), d is released; session s2 takes a lease for one call.
SEED = """
import json, sys, uuid
import costrouter
from costrouter.budget import BudgetPolicy
from costrouter.budget.factory import store_from_config
from costrouter.budget.redis import RedisBudgetStore
from costrouter.pricing.ratio_rule import RatioRule

url, prefix, policy_json, cluster = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "cluster"
policy = BudgetPolicy.model_validate({**json.loads(policy_json), "store": {
    "backend": "redis", "redis_url": url, "key_prefix": prefix, "journal_dir": None, "cluster": cluster}})
store = RedisBudgetStore(policy.store)
epoch = store.epoch(uuid.uuid4().hex, None).epoch
budgets = policy.budgets_for(session_id="s1")
for call, amount in (("a", 200_000), ("b", 300_000), ("c", 400_000), ("d", 50_000)):
    for ref in budgets:
        assert store.reserve(ref, call, amount, enforce=True).granted
for ref in budgets:
    store.settle(ref, "b", 250_000)
    store.settle(ref, "c", 300_000)
    store.release(ref, "d")
store.observe_token_ratio("dep-1", 1.25, RatioRule())
leased_config = policy.store.model_copy(update={"lease": policy.store.lease.model_copy(update={"enabled": True})})
leased = store_from_config(leased_config)
(lease_budget,) = [r for r in policy.budgets_for(session_id="s2") if r.scope == "session"]
assert leased.reserve(lease_budget, "e", 70_000, enforce=True).granted
status = {f"{ref.name}/{ref.scope_id}": store.status(ref).__dict__
          for ref in [*budgets, lease_budget]}
print(json.dumps({"file": costrouter.__file__, "epoch": epoch, "status": status}))
"""

# 0.2 after the migration: its epoch check, then a routed call through its own router.
AFTER = """
import json, sys, uuid
import costrouter
from costrouter import CostRouter, BudgetStoreError
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget import BudgetPolicy
from tests.routing import router_config

url, prefix, policy_json, known, base_url = sys.argv[1:6]
store_config = {"backend": "redis", "redis_url": url, "key_prefix": prefix, "journal_dir": None}
policy = BudgetPolicy.model_validate({**json.loads(policy_json), "store": store_config})
state = RedisBudgetStore(policy.store).epoch(uuid.uuid4().hex, known)
router = CostRouter(router_config(base_url), budgets={**json.loads(policy_json), "store": store_config})
try:
    router.route_completion("fast", [{"role": "user", "content": "hi"}], max_tokens=5, session_id="s1")
    refused = ""
except BudgetStoreError as error:
    refused = f"{type(error.cause).__name__}: {error.cause}"
router.shutdown()
print(json.dumps({"file": costrouter.__file__, "lost": state.lost, "refused": refused}))
"""


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """costrouter 0.2's code, unpacked from this repository's history."""
    return legacy_tree(tmp_path_factory.mktemp("costrouter-0.2"))


@pytest.fixture
def prefix() -> str:
    return f"mig{uuid.uuid4().hex[:8]}"


@pytest.fixture
def policy(redis_url: str, prefix: str) -> BudgetPolicy:
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix, "journal_dir": None}
    return BudgetPolicy.model_validate({**POLICY, "store": store})


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as connection:
        yield connection


# A 0.2 call in flight during a migration settles afterwards: 0.2 finds no record, charges unheld.
LATE_SETTLE = """
import json, sys
from costrouter.budget import BudgetPolicy
from costrouter.budget.redis import RedisBudgetStore
url, prefix, policy_json = sys.argv[1:4]
policy = BudgetPolicy.model_validate({**json.loads(policy_json),
    "store": {"backend": "redis", "redis_url": url, "key_prefix": prefix, "journal_dir": None}})
(session,) = [r for r in policy.budgets_for(session_id="s1") if r.scope == "session"]
print(json.dumps(RedisBudgetStore(policy.store).settle(session, "a", 120_000).__dict__))
"""


def _seed(legacy: Path, redis_url: str, prefix: str, *, cluster: bool = False) -> dict[str, Any]:
    seeded = run_legacy(legacy, SEED, redis_url, prefix, json.dumps(POLICY), "cluster" if cluster else "standalone")
    assert seeded["file"].startswith(str(legacy))  # the 0.2 code ran, not this checkout's
    return dict(seeded)


def _books(store: RedisBudgetStore, policy: BudgetPolicy) -> dict[str, tuple[str, int, int, int, int]]:
    out = {}
    for ref in [*policy.budgets_for(session_id="s1"), _session(policy, "s2")]:
        s = store.status(ref)
        out[f"{ref.name}/{ref.scope_id}"] = (
            s.window_id,
            s.spent_units,
            s.held_units,
            s.active_holds,
            s.unheld_settles,
        )
    return out


def _session(policy: BudgetPolicy, session_id: str) -> BudgetRef:
    (ref,) = [r for r in policy.budgets_for(session_id=session_id) if r.scope == "session"]
    return ref


def _expected(seeded: dict[str, Any]) -> dict[str, tuple[str, int, int, int, int]]:
    return {
        key: (
            s["window_id"],
            s["spent_micros"] * FACTOR,
            s["held_micros"] * FACTOR,
            s["active_holds"],
            s["unheld_settles"],
        )
        for key, s in seeded["status"].items()
    }


@pytest.fixture(params=["standalone", "cluster"])
def target(request: pytest.FixtureRequest, prefix: str) -> Iterator[tuple[str, BudgetPolicy, Any]]:
    """A Redis (standalone, or a cluster: every master scanned), the policy on it, and a client."""
    cluster = request.param == "cluster"
    url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    store = {"backend": "redis", "redis_url": url, "key_prefix": prefix, "journal_dir": None, "cluster": cluster}
    policy = BudgetPolicy.model_validate({**POLICY, "store": store})
    connection: Any = (redis.cluster.RedisCluster if cluster else redis.Redis).from_url(url, decode_responses=True)
    try:
        yield request.param, policy, connection
    finally:
        connection.close()


def test_upgrade_from_02_keeps_the_books_to_the_unit(
    legacy: Path, prefix: str, target: tuple[str, BudgetPolicy, Any]
) -> None:
    kind, policy, client = target
    seeded = _seed(legacy, policy.store.redis_url, prefix, cluster=kind == "cluster")
    assert seeded["status"][f"{_session(policy, 's2').name}/s2"]["held_micros"] >= 70_000

    # Before the migration a router of this version refuses to start beside the 0.2 layout.
    with pytest.raises(StoreLayoutError, match=r"costrouter budget migrate") as refused:
        CostRouter(router_config("http://127.0.0.1:9"), budgets={**POLICY, "store": policy.store.model_dump()})
    assert legacy_epoch_keys(prefix)[0] in str(refused.value)

    # No 0.2 process runs now (the seed exited): nothing to wait for after the fence.
    summary = Migration(client, prefix, fence_wait=0).run()
    assert summary.problems == []
    assert summary.instances == 3
    assert summary.live_holds == 2  # call a, in the session and the global budget
    assert summary.epoch == seeded["epoch"]

    with RedisBudgetStore(policy.store) as store:
        assert _books(store, policy) == _expected(seeded)
        session = _session(policy, "s1")
        for ref in policy.budgets_for(session_id="s1"):
            status = store.status(ref)
            old = seeded["status"][f"{ref.name}/{ref.scope_id}"]
            assert status.remaining_units == old["remaining_micros"] * FACTOR
        # The new layout's epoch is 0.2's: a router whose journal directory remembers it sees no loss.
        assert store.epoch(uuid.uuid4().hex, seeded["epoch"]).lost is False

        # A late settle of 0.2's live hold finds its record: the hold goes, the charge lands once.
        late = store.settle(session, "a", 180_000 * FACTOR)
        assert (late.state, late.replayed, late.unheld) == ("settled", False, False)
        assert late.spent_units == (550_000 + 180_000) * FACTOR
        assert late.alerts == ()  # 0.2 fired the 0.5 alert already
        assert store.status(session).held_units == 0
        # A retried 0.2 settle is answered from its record: nothing more is charged.
        again = store.settle(session, "b", 250_000 * FACTOR)
        assert again.replayed
        assert store.status(session).spent_units == 730_000 * FACTOR
        assert store.top(session, 5) == [("s1", 730_000 * FACTOR)]
        assert store.token_ratios()["dep-1"].ratio == pytest.approx(1.25)

    # A second run finds nothing and changes nothing.
    second = Migration(client, prefix, fence_wait=0).run()
    assert (second.instances, second.applied, second.top_indexes, second.token_ratios) == (0, 0, 0, 0)
    assert str(client.get(legacy_epoch_keys(prefix)[0])).startswith(MIGRATED)


def test_a_02_process_refuses_after_the_migration(
    legacy: Path, redis_url: str, prefix: str, client: redis.Redis
) -> None:
    seeded = _seed(legacy, redis_url, prefix)
    Migration(client, prefix, fence_wait=0).run()
    with ProviderDouble() as provider:
        after = run_legacy(legacy, AFTER, redis_url, prefix, json.dumps(POLICY), seeded["epoch"], provider.base_url)
        assert provider.request_count() == 0
    assert after["file"].startswith(str(legacy))
    assert after["lost"] is True
    assert after["refused"].startswith("StoreLostError")
    # The refused call left no spend and no hold under 0.2's layout (at most its call records).
    left = Migration(client, prefix, fence_wait=0).dry_run()
    assert (left.spent_legacy, left.held_legacy, left.live_holds) == (0, 0, 0)

    # 0.2's accept-loss after the migration would let 0.2 count again: this version refuses then,
    # and a second run fences 0.2 again.
    accept = """
import json, sys
from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budgets import StoreConfig
store = RedisBudgetStore(StoreConfig(backend="redis", key_prefix=sys.argv[2]), url=sys.argv[1])
print(json.dumps(store.accept_epoch()))
"""
    assert str(run_legacy(legacy, accept, redis_url, prefix)).startswith(MIGRATED)
    config = StoreConfig(backend="redis", key_prefix=prefix, journal_dir=None)
    with RedisBudgetStore(config, url=redis_url) as store:
        with pytest.raises(StoreLayoutError, match="accept-loss` was run after the migration"):
            store.epoch(uuid.uuid4().hex, None)
        Migration(client, prefix, fence_wait=0).run()
        assert store.epoch(uuid.uuid4().hex, seeded["epoch"]).lost is False
    again = run_legacy(legacy, AFTER, redis_url, prefix, json.dumps(POLICY), seeded["epoch"], "http://127.0.0.1:9")
    assert again["lost"] is True


def test_a_run_stopped_after_applying_applies_nothing_twice(
    legacy: Path, redis_url: str, prefix: str, policy: BudgetPolicy, client: redis.Redis
) -> None:
    seeded = _seed(legacy, redis_url, prefix)

    class StoppedError(Exception):
        pass

    class StopsAfterApplying(Migration):
        def delete_staged(self, names: list[str]) -> None:
            raise StoppedError

    with pytest.raises(StoppedError):
        StopsAfterApplying(client, prefix, fence_wait=0).run()
    # The staged snapshot is still there, and so is the unfinished mark: routers still refuse.
    with RedisBudgetStore(policy.store) as store, pytest.raises(StoreLayoutError, match="did not finish"):
        store.epoch(uuid.uuid4().hex, None)
    resumed = Migration(client, prefix, fence_wait=0).run()
    assert resumed.resumed == 1
    assert resumed.already_applied == 1
    with RedisBudgetStore(policy.store) as store:
        assert _books(store, policy) == _expected(seeded)


def test_dry_run_writes_nothing_and_the_cli_migrates(
    legacy: Path, redis_url: str, prefix: str, policy: BudgetPolicy, client: redis.Redis, tmp_path: Path
) -> None:
    seeded = _seed(legacy, redis_url, prefix)
    before = sorted(client.scan_iter(match=f"*{prefix}*"))
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(yaml.safe_dump({**POLICY, "store": {"backend": "redis", "key_prefix": prefix}}))
    runner = CliRunner()
    dry = runner.invoke(app, ["budget", "migrate", "--budgets", str(budgets), "--redis", redis_url, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would carry over: 3 budget instances" in dry.output
    assert sorted(client.scan_iter(match=f"*{prefix}*")) == before
    done = runner.invoke(
        app, ["budget", "migrate", "--budgets", str(budgets), "--redis", redis_url, "--fence-wait", "0"]
    )
    assert done.exit_code == 0, done.output
    assert "carried over: 3 budget instances" in done.output
    with RedisBudgetStore(policy.store) as store:
        assert _books(store, policy) == _expected(seeded)
        assert store.epoch(uuid.uuid4().hex, None).epoch == seeded["epoch"]
    assert client.get(epoch_keys(prefix)[0]) == seeded["epoch"]


def test_a_02_process_that_writes_after_staging_is_carried_over_by_the_next_run(
    legacy: Path, redis_url: str, prefix: str, policy: BudgetPolicy, client: redis.Redis
) -> None:
    seeded = _seed(legacy, redis_url, prefix)
    Migration(client, prefix, fence_wait=0).run()
    # A 0.2 call in flight during the run settles afterwards: 0.2 finds no record, charges unheld.
    run_legacy(legacy, LATE_SETTLE, redis_url, prefix, json.dumps(POLICY))
    assert Migration(client, prefix, fence_wait=0).dry_run().instances == 1
    again = Migration(client, prefix, fence_wait=0).run()
    assert (again.instances, again.top_indexes, again.applied) == (1, 1, 2)
    with RedisBudgetStore(policy.store) as store:
        session = _session(policy, "s1")
        status = store.status(session)
        old = seeded["status"][f"{session.name}/s1"]
        assert status.spent_units == (old["spent_micros"] + 120_000) * FACTOR
        # 0.2 settled call a after the first run copied its hold: the copy is dropped, not charged again.
        assert (status.held_units, status.active_holds) == (0, 0)
        assert store.settle(session, "a", 120_000 * FACTOR).replayed


def test_a_02_write_between_two_passes_of_one_run_is_carried_over_by_that_run(
    legacy: Path, redis_url: str, prefix: str, policy: BudgetPolicy, client: redis.Redis
) -> None:
    seeded = _seed(legacy, redis_url, prefix)

    class WritesDuringTheRun(Migration):
        scans = 0

        def scan(self) -> dict[LegacyGroup, list[str]]:
            self.scans += 1
            if self.scans == 2:  # after the first pass carried everything
                run_legacy(legacy, LATE_SETTLE, redis_url, prefix, json.dumps(POLICY))
            return super().scan()

    summary = WritesDuringTheRun(client, prefix, fence_wait=0).run()
    assert summary.problems == []
    with RedisBudgetStore(policy.store) as store:
        status = store.status(_session(policy, "s1"))
        old = seeded["status"][f"{_session(policy, 's1').name}/s1"]
        assert status.spent_units == (old["spent_micros"] + 120_000) * FACTOR
        assert (status.held_units, status.active_holds) == (0, 0)
