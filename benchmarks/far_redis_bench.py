"""A budgeted call behind a far Redis (20 ms round trip), with the defaults, against an unbudgeted one.

    uv run --locked python -m benchmarks.far_redis_bench [--sessions 30] [--calls 6] [--delay-ms 10] [--gap-seconds 0]

The provider double in a process of its own, a throwaway ``redis-server``, and between
costrouter and Redis a loopback proxy that delays each direction by ``--delay-ms``
(``benchmarks/delay_proxy.py``). Two routers in one process on the same deployment: one
without budgets (tracing only), one with a session and a global Redis budget and **the
defaults** (no lease setting, no tuning). Sessions run one after the other, each of
``--calls`` calls, sequential (async, concurrency 1); each call of the budgeted router is
paired with a call of the unbudgeted one. One warm-up session first (it opens the global
budget's lease and the connection pool, once per process). ``--gap-seconds`` waits that long
before each pair after a session's first (a chat whose user reads and types between turns; the
results file keeps the default, back-to-back run only). Reports:

* the median added latency of a session's later calls, and of its first call; the later calls'
  90th percentile and how many added more than half a round trip (``--delay-ms``: a call that
  waited for Redis);
* the messages a call waited for (``LeasedStore.waits``), first calls and later calls;
* Redis server time per call (``INFO commandstats``: each script's run once, the commands it
  runs inside it, plus every command sent outside a script; background ones included, measured
  on the real server), the commands per call (every command, those inside scripts included);
* bytes per session (``MEMORY USAGE`` over the run's keys after every lease was given back).

Prints one JSON line and keeps it in ``benchmarks/results/far_redis_bench.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import redis

from benchmarks.delay_proxy import DelayProxy
from benchmarks.provider_process import ProviderProcess
from benchmarks.variants import GROUP, MAX_TOKENS, MESSAGES, router_config
from costrouter import CostRouter
from costrouter.budget.factory import leased_store_of
from costrouter.testing.redis_server import RedisServer

PREFIX = "far"
RESULTS = Path(__file__).parent / "results" / "far_redis_bench.json"


def _policy(redis_url: str, journal_dir: str) -> dict[str, Any]:
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": PREFIX, "journal_dir": journal_dir},
        "budgets": [
            {"scope": "session", "limit_usd": 1_000_000, "window": "total"},
            {"scope": "global", "limit_usd": 9_000_000, "window": "total"},
        ],
    }


async def _timed(router: CostRouter, session: str) -> float:
    started = time.perf_counter()
    await router.aroute_completion(GROUP, MESSAGES, session_id=session, max_tokens=MAX_TOKENS)
    return time.perf_counter() - started


IN_SCRIPTS = frozenset(
    [
        "del",
        "exists",
        "expire",
        "expireat",
        "get",
        "hdel",
        "hget",
        "hgetall",
        "hincrby",
        "hmget",
        "hset",
        "hsetnx",
        "pexpireat",
        "pexpiretime",
        "rename",
        "set",
        "time",
        "zincrby",
        "zrevrange",
    ]
)
"""The commands costrouter's scripts run: their time is inside the script's (``EVALSHA``), counted once."""


def _server_usec(client: redis.Redis) -> tuple[int, int]:
    """Server µs (each script's whole run once, plus the commands sent outside scripts) and commands (all)."""
    stats = {name.removeprefix("cmdstat_"): value for name, value in client.info("commandstats").items()}
    usec = sum(int(v["usec"]) for k, v in stats.items() if k not in IN_SCRIPTS and k not in ("config", "info"))
    calls = sum(int(v["calls"]) for k, v in stats.items() if k not in ("config", "info"))
    return usec, calls


def _p90(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(0.9 * len(values)))]


def _memory(client: redis.Redis) -> int:
    total = 0
    for key in client.scan_iter(match=f"*{PREFIX}:*", count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
    return total


async def _run(args: argparse.Namespace, base_url: str, far_url: str, direct: redis.Redis) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as journal_dir:
        plain = CostRouter(router_config(base_url))
        budgeted = CostRouter(router_config(base_url), budgets=_policy(far_url, journal_dir))
        store = leased_store_of(budgeted.store)
        assert store is not None, "the default Redis store is a lease holder"
        for call in range(args.calls):  # warm-up: connections, the global lease, LiteLLM's caches
            await _timed(plain, f"warm-{call}")
            await _timed(budgeted, "warm")
        await asyncio.sleep(2 * budgeted.policy.store.lease.flush_seconds + 0.2)  # type: ignore[union-attr]
        direct.execute_command("CONFIG", "RESETSTAT")
        messages, batches = store.messages, store.batches
        first: list[float] = []
        later: list[float] = []
        first_waits = later_waits = later_stalls = 0
        for index in range(args.sessions):
            session = f"s{index}"
            for call in range(args.calls):
                if call and args.gap_seconds:
                    await asyncio.sleep(args.gap_seconds)
                bare = await _timed(plain, f"p{index}-{call}")
                waits, stalled = store.waits, store.stalls
                ours = await _timed(budgeted, session)
                if call:
                    later_stalls += store.stalls - stalled
                (first if call == 0 else later).append(ours - bare)
                if call == 0:
                    first_waits += store.waits - waits
                else:
                    later_waits += store.waits - waits
        await asyncio.sleep(2 * budgeted.policy.store.lease.flush_seconds + 0.5)  # type: ignore[union-attr]
        sent = store.messages - messages
        pipelines = store.batches - batches
        usec, commands = _server_usec(direct)
        if args.verbose:
            for name, stat in direct.info("commandstats").items():
                print(name, stat["calls"], stat["usec"])
        budgeted.shutdown()
        plain.shutdown()
    calls = args.sessions * args.calls
    return {
        "delay_ms_each_way": args.delay_ms,
        "sessions": args.sessions,
        "calls_per_session": args.calls,
        "gap_seconds": args.gap_seconds,
        "added_ms_later_calls_p50": statistics.median(later) * 1000 if later else None,
        "added_ms_later_calls_p90": _p90(later) * 1000 if later else None,
        "later_calls_over_half_rtt": sum(added > args.delay_ms / 1000 for added in later),
        "later_calls": len(later),
        "added_ms_first_call_p50": statistics.median(first) * 1000,
        "waits_per_first_call": first_waits / args.sessions,
        "waits_per_later_call": later_waits / (calls - args.sessions) if later else None,
        "stalls_per_later_call": later_stalls / (calls - args.sessions) if later else None,
        "lease_messages_per_session": sent / args.sessions,
        "background_pipelines": pipelines,
        "redis_commands_per_call": commands / calls,
        "server_us_per_call": usec / calls,
        "bytes_per_session": _memory(direct) / (args.sessions + 1),
    }


def main() -> None:
    """Run once; print and keep the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--gap-seconds", type=float, default=0.0, help="wait between a session's calls")
    parser.add_argument("--verbose", action="store_true", help="print the server's command counts")
    args = parser.parse_args()
    server = RedisServer()
    server.start()
    direct = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        target = server.url.removeprefix("redis://").split("/", 1)[0]
        with ProviderProcess() as provider, DelayProxy(target, args.delay_ms) as proxy:
            result = asyncio.run(_run(args, provider.base_url, proxy.url, direct))
    finally:
        direct.close()
        server.stop()
    line = json.dumps(result)
    print(line)
    if not args.gap_seconds:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(line + "\n")


if __name__ == "__main__":
    main()
