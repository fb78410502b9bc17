"""What budgets cost Redis: server time and commands per budgeted call, bytes per live session.

    uv run --locked python benchmarks/redis_cost_bench.py [--sessions N] [--calls-per-session K]

Each call holds a session budget and a global budget (two budget instances). The same
sessions run per call (``RedisBudgetStore``: a reserve and a settle script per budget)
and with leases (``LeasedStore``: a message per budget instance when its lease is taken,
carried or given back; the run ends with every lease given back). Measured on a
throwaway ``redis-server`` on loopback from deltas of ``INFO commandstats`` (server
microseconds in ``EVALSHA``, round trips, and the ``redis.call`` commands the scripts
ran), and ``MEMORY USAGE`` summed over the run's keys (the sessions' keys stay live: records
of per-call settles for 24 h, lease tombstones, window hashes, the top index). Also the
client's wall time per call (reserve + settle of both budgets, sync). Prints a table.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from costrouter.budget.leases import LeasedStore
from costrouter.budget.policy import LeaseSettings, StoreConfig
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.store import GLOBAL_SCOPE_ID, BudgetRef, BudgetStore
from costrouter.budget.windows import parse_window
from costrouter.testing.redis_server import RedisServer

ESTIMATE = 400
ACTUAL = 250
SCRIPT_COMMANDS = ("evalsha", "eval")


def _budgets(session: str) -> list[BudgetRef]:
    total = parse_window("total")
    return [
        BudgetRef("per-session", "session", session, total, 10**9),
        BudgetRef("everyone", "global", GLOBAL_SCOPE_ID, total, 10**12),
    ]


def _stats(client: redis.Redis) -> dict[str, dict[str, float]]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): values for name, values in stats.items()}


def _memory(client: redis.Redis, prefix: str) -> int:
    """``MEMORY USAGE`` (every element counted) summed over the keys of one run."""
    total = 0
    for key in client.scan_iter(match="{" + prefix + ":*", count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
    return total


def _run(store: BudgetStore, sessions: int, calls: int, finish: Callable[[], None]) -> float:
    started = time.perf_counter()
    for s in range(sessions):
        budgets = _budgets(f"session-{s}")
        for c in range(calls):
            call_id = f"{s}-{c}-{uuid.uuid4().hex[:6]}"
            for budget in budgets:
                store.reserve(budget, call_id, ESTIMATE, enforce=True)
            for budget in budgets:
                store.settle(budget, call_id, ACTUAL)
    elapsed = time.perf_counter() - started
    finish()
    return elapsed


def measure(url: str, mode: str, sessions: int, calls: int, *, top_index: bool) -> dict[str, float]:
    """One mode's figures per call and per session."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    lease = LeaseSettings(enabled=mode == "leases")
    config = StoreConfig(backend="redis", key_prefix=prefix, lease=lease, journal_dir=None, top_index=top_index)
    inner = RedisBudgetStore(config, url=url)
    store: BudgetStore = LeasedStore(inner) if mode == "leases" else inner
    warm = _budgets("warm-up")[1]
    inner.status(warm)  # loads the scripts and opens the pool outside the measurement
    client = redis.Redis.from_url(url)
    client.execute_command("CONFIG", "RESETSTAT")
    finish = store.drain if isinstance(store, LeasedStore) else (lambda: None)
    elapsed = _run(store, sessions, calls, finish)
    stats = _stats(client)  # before MEMORY USAGE and SCAN, which would count themselves
    memory = _memory(client, prefix)
    store.close()
    client.close()
    total_calls = sessions * calls
    # Standalone Redis: every command the store sends is a script; the rest ran inside them.
    round_trips = sum(stats.get(name, {}).get("calls", 0) for name in SCRIPT_COMMANDS)
    server_usec = sum(stats.get(name, {}).get("usec", 0) for name in SCRIPT_COMMANDS)
    inner_calls = sum(v.get("calls", 0) for k, v in stats.items() if k not in (*SCRIPT_COMMANDS, "config|resetstat"))
    return {
        "server_us_per_call": server_usec / total_calls,
        "round_trips_per_call": round_trips / total_calls,
        "redis_calls_per_call": inner_calls / total_calls,
        "bytes_per_session": memory / sessions,
        "client_us_per_call": elapsed / total_calls * 1e6,
    }


def main() -> None:
    """Run both modes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--calls-per-session", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    server = RedisServer()
    server.start()
    try:
        print(
            "| mode | calls/session | top index | server µs/call | round trips/call | redis.calls/call "
            "| bytes/session | client µs/call |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for calls in args.calls_per_session:
            for mode in ("per call", "leases"):
                for top_index in (True, False):
                    figures = measure(server.url, mode, args.sessions, calls, top_index=top_index)
                    print(
                        f"| {mode} | {calls} | {'on' if top_index else 'off'} | "
                        f"{figures['server_us_per_call']:.1f} | {figures['round_trips_per_call']:.2f} | "
                        f"{figures['redis_calls_per_call']:.1f} | {figures['bytes_per_session']:.0f} | "
                        f"{figures['client_us_per_call']:.0f} |"
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
