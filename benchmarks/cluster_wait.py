"""What `WAIT 1` after each settle costs on a Redis Cluster: settle latency with and without it.

Run: uv run --locked python -m benchmarks.cluster_wait [CALLS]
Starts its own throwaway cluster on loopback (3 masters, a replica each).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid

from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import StoreConfig
from costrouter.config.windows import parse_window
from costrouter.testing.redis_cluster import RedisClusterNodes


def settle_latencies(url: str, replicas: int, calls: int) -> list[float]:
    """Milliseconds of each of ``calls`` reserve+settle pairs' settle."""
    config = StoreConfig(
        backend="redis", cluster=True, key_prefix=f"b{uuid.uuid4().hex[:8]}", settle_wait_replicas=replicas
    )
    budget = BudgetRef("bench", "session", "s1", parse_window("total"), 10**12)
    out = []
    with RedisBudgetStore(config, url=url) as store:
        for index in range(calls):
            store.reserve(budget, f"c{index}", 10, enforce=True)
            start = time.perf_counter()
            store.settle(budget, f"c{index}", 7)
            out.append((time.perf_counter() - start) * 1000)
    return out


def main(calls: int) -> None:
    with RedisClusterNodes() as cluster:
        for replicas in (0, 1, 0, 1):
            latencies = sorted(settle_latencies(cluster.url, replicas, calls))
            p50 = statistics.median(latencies)
            p99 = latencies[int(0.99 * len(latencies))]
            print(f"settle_wait_replicas={replicas}: p50 {p50:.3f} ms, p99 {p99:.3f} ms over {calls} settles")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
