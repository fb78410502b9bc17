"""The lease thread's look over its live leases: what one wake costs before any message goes.

    uv run --locked --group bench python benchmarks/lease_scan_bench.py [--leases 1000 5000] [--looks 30]

Two kinds of live lease, each measured at every size of ``--leases``, on a throwaway redis-server:

- *open*: session leases, one reserve and one settle each (settled spend waiting), with a
  ``flush_seconds`` and an ``idle_seconds`` long enough that none falls due;
- *parked*: user leases (one reserve and one settle each) left idle until the lease thread
  parked every one (``idle_seconds`` 0.2, ``park_seconds`` 3600): what a process that served
  many chats in the last ``park_seconds`` holds.

Then times ``LeasedStore.tend()`` (the background thread's whole wake: why each lease is due,
else when it will be, and the sleep that follows) ``--looks`` times on this thread. Prints the
median CPU time of a look (``time.thread_time``) and its share per lease. Wall-clock on a shared
machine: compare runs of one session, not across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from costrouter.budget import BudgetPolicy
from costrouter.budget.leases import LeasedStore
from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budgets import LeaseSettings, StoreConfig
from costrouter.testing.redis_server import RedisServer

_QUIET = LeaseSettings(enabled=True, flush_seconds=60, idle_seconds=3600, ttl_seconds=600)
_PARKING = LeaseSettings(enabled=True, flush_seconds=60, idle_seconds=0.2, park_seconds=3600, ttl_seconds=600)
_PARK_WAIT_SECONDS = 120


def look_seconds(url: str, leases: int, looks: int, *, parked: bool = False) -> list[float]:
    """CPU seconds of each of ``looks`` calls of ``tend()`` over ``leases`` live leases with nothing due."""
    kind = "parked" if parked else "open"
    config = StoreConfig(backend="redis", key_prefix=f"scan-{kind}-{leases}", lease=_PARKING if parked else _QUIET)
    store = LeasedStore(RedisBudgetStore(config, url=url))
    scope = "user" if parked else "session"
    policy = BudgetPolicy.model_validate({"budgets": [{"scope": scope, "limit_usd": 1.0}]})
    try:
        for index in range(leases):
            (budget,) = policy.budgets_for(session_id=f"s{index}", user_id=f"u{index}")
            store.reserve(budget, f"c{index}", 1_000, enforce=True)
            store.settle(budget, f"c{index}", 500)
        if parked:
            _wait_parked(store, leases)
        times = []
        for _ in range(looks):
            start = time.thread_time()
            sent, _ = store.tend()
            times.append(time.thread_time() - start)
            assert sent == 0, "a lease fell due: the look measured messages too"
        return times
    finally:
        store.drain()
        store.close()


def _wait_parked(store: LeasedStore, leases: int) -> None:
    """Let the lease thread park every lease (``tend()`` here too, so a slow thread does not hold the run up)."""
    deadline = time.monotonic() + _PARK_WAIT_SECONDS
    while sum(lease.parked for lease in list(store._leases.values())) < leases:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the leases were not all parked within {_PARK_WAIT_SECONDS} s")
        store.tend()
        time.sleep(0.05)


def main() -> None:
    """Measure each size; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--looks", type=int, default=30)
    args = parser.parse_args()
    print("| live leases | kind | CPU a look, median | per lease |")
    print("|---|---|---|---|")
    with RedisServer() as server:
        for leases in args.leases:
            for parked in (False, True):
                median = statistics.median(look_seconds(server.url, leases, args.looks, parked=parked))
                kind = "parked" if parked else "open"
                print(f"| {leases:,} | {kind} | {median * 1e3:.2f} ms | {median / leases * 1e6:.2f} µs |")


if __name__ == "__main__":
    main()
