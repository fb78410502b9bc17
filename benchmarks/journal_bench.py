"""What the settle journal costs: on the happy path, per journaled settle, and per replayed one.

    uv run --locked python benchmarks/journal_bench.py [--iterations N]

* happy path: one settle through ``settle_flow`` on the memory store, with the store guard
  (retry loop, replay kick) and without it: the difference is what every call pays;
* journaled settle: ``SettleJournal.append`` (one JSON line, ``write`` + ``fsync``) on this
  machine's temporary directory: what a call pays once its store has failed every try;
* replay: entries replayed per second into a throwaway ``redis-server`` on loopback.

Prints one table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from costrouter.budget import BudgetPolicy, MemoryBudgetStore, RedisBudgetStore
from costrouter.budget.journal import SettleJournal, new_entry
from costrouter.budget.reserving import Reservation, settle_flow
from costrouter.budget.settling import Replayer, StoreGuard
from costrouter.ops import Op, StoreOp, drive
from costrouter.otel.telemetry import Telemetry
from costrouter.testing.redis_server import RedisServer

POLICY = {"budgets": [{"scope": "session", "limit_usd": 1_000_000.0}]}


def _happy_path(iterations: int, *, guarded: bool) -> float:
    policy = BudgetPolicy.model_validate(POLICY)
    store = MemoryBudgetStore(policy.store)
    guard = StoreGuard(policy, store, Telemetry()) if guarded else None
    (budget,) = policy.budgets_for(session_id="bench")

    def execute(op: Op) -> object:
        assert isinstance(op, StoreOp)
        return getattr(store, op.method)(*op.args, **op.kwargs)

    started = time.perf_counter()
    for index in range(iterations):
        call_id = f"c{index}"
        store.reserve(budget, call_id, 100, enforce=True)
        drive(settle_flow(Reservation(call_id, [budget], 100), 40, guard), execute)
    return (time.perf_counter() - started) / iterations * 1e6


def _appends(iterations: int) -> list[float]:
    policy = BudgetPolicy.model_validate(POLICY)
    (budget,) = policy.budgets_for(session_id="bench")
    timings = []
    with tempfile.TemporaryDirectory() as folder:
        journal = SettleJournal(Path(folder), max_entries=iterations + 1)
        for index in range(iterations):
            entry = new_entry(budget, f"c{index}", 40, "settle")
            started = time.perf_counter()
            journal.append(entry)
            timings.append((time.perf_counter() - started) * 1e6)
        journal.close()
    return timings


def _replay(entries: int) -> float:
    with RedisServer() as server, tempfile.TemporaryDirectory() as folder:
        policy = BudgetPolicy.model_validate(
            {**POLICY, "store": {"backend": "redis", "key_prefix": f"b{uuid.uuid4().hex[:8]}", "journal_dir": folder}}
        )
        store = RedisBudgetStore(policy.store, url=server.url)
        (budget,) = policy.budgets_for(session_id="bench")
        journal = SettleJournal(Path(folder), max_entries=entries + 1)
        for index in range(entries):
            journal.append(new_entry(budget, f"c{index}", 40, "settle"))
        guard = StoreGuard(policy, store, Telemetry(), journal)
        replayer = Replayer(store, journal, guard)
        started = time.perf_counter()
        replayed = replayer.replay_once()
        elapsed = time.perf_counter() - started
        journal.close()
        store.close()
    return replayed / elapsed


def main() -> None:
    """Run the three measures and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    iterations = parser.parse_args().iterations
    bare = min(_happy_path(iterations, guarded=False) for _ in range(3))
    guarded = min(_happy_path(iterations, guarded=True) for _ in range(3))
    appends = _appends(min(iterations, 2_000))
    quantiles = statistics.quantiles(appends, n=100)
    rate = _replay(min(iterations, 5_000))
    print("| measure | figure |")
    print("|---|---|")
    print(f"| settle on the memory store, no guard | {bare:.2f} µs |")
    print(f"| settle on the memory store, with the guard (happy path) | {guarded:.2f} µs (+{guarded - bare:.2f} µs) |")
    print(f"| journal append + fsync, median / p99 | {statistics.median(appends):.0f} / {quantiles[98]:.0f} µs |")
    print(f"| replay into loopback Redis | {rate:,.0f} settles/s |")


if __name__ == "__main__":
    main()
