"""What hold renewal adds to the budgeted path (issue 9, item 5). A benchmark, not a test.

Three figures per store (memory, and a throwaway loopback ``redis-server``):

* ``track+forget``: what a routed call pays on its own path (register its holds with the
  renewer after the reserve, drop them before the settle), per call;
* ``renew``: one renewal of one live hold (what the renewer thread spends per hold per pass);
* ``pass of N``: one renewer pass over N live holds (N = 256 concurrent calls), which
  runs every ``hold_ttl_seconds / 3`` (100 s by default) off the callers' path.

    uv run --locked python benchmarks/renewal_bench.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from costrouter.budget import BudgetPolicy, BudgetStore, MemoryBudgetStore, RedisBudgetStore
from costrouter.budget.renewal import HoldRenewer
from costrouter.testing.redis_server import RedisServer

LIVE = 256
REPEATS = 5
CALLS = 20_000
RENEWS = 2_000


def _per_op_us(run: Callable[[], None], n: int) -> float:
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(samples)


def measure(name: str, store: BudgetStore, policy: BudgetPolicy) -> None:
    refs = [policy.budgets_for(session_id=f"s{n}")[0] for n in range(LIVE)]
    for n, ref in enumerate(refs):
        store.reserve(ref, f"call-{n}", 100, enforce=True)
    renewer = HoldRenewer(store, policy.store.hold_ttl_seconds)

    def track_forget() -> None:
        for n in range(CALLS):
            renewer.track(f"x{n}", refs[n % LIVE : n % LIVE + 1])
            renewer.forget(f"x{n}")

    def renew() -> None:
        for n in range(RENEWS):
            store.renew(refs[n % LIVE], f"call-{n % LIVE}")

    track_us = _per_op_us(track_forget, CALLS)
    renew_us = _per_op_us(renew, RENEWS)
    for n, ref in enumerate(refs):
        renewer.track(f"call-{n}", [ref])
    pass_ms = _per_op_us(renewer.renew_all, 1) / 1000
    renewer.stop()
    print(f"| {name} | {track_us:.2f} µs | {renew_us:.1f} µs | {pass_ms:.1f} ms |")


MEMORY_POLICY: dict[str, Any] = {"budgets": [{"scope": "session", "limit_usd": 1000}]}


def redis_policy(redis_url: str) -> dict[str, Any]:
    """The Redis store's policy: one session budget under the bench's own key prefix."""
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": "renewbench"},
        "budgets": [{"scope": "session", "limit_usd": 1000}],
    }


def main() -> int:
    print("| store | track+forget per call | renew per hold | pass of 256 live holds |")
    print("|---|---|---|---|")
    memory_policy = BudgetPolicy.model_validate(MEMORY_POLICY)
    measure("memory", MemoryBudgetStore(memory_policy.store), memory_policy)
    with RedisServer() as server:
        policy = BudgetPolicy.model_validate(redis_policy(server.url))
        store = RedisBudgetStore(policy.store)
        measure("redis (loopback)", store, policy)
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
