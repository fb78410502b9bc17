"""The budget stores alone: reserve+settle throughput, and how a check scales with live sessions.

Session fill (Redis): one real session is created by the store itself (a reserve and a
settle), then its keys are copied server-side by a Lua loop with ``DUMP``/``RESTORE``
(same encodings, same TTLs) under new session ids, and each new id is added to the
largest-spender index with the template's score. So every filled session has exactly the
key layout the store writes, whatever that layout is, at a few microseconds a session.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import threading
import time
from typing import Any

import load
import redis
import variants

from costrouter.budget import BudgetPolicy, BudgetRef, BudgetStore, MemoryBudgetStore, RedisBudgetStore
from costrouter.budget.store import top_key
from costrouter.config.budget_ref import budget_key

AMOUNT = 250
SETTLED = 120
_FILL_BATCH = 20_000
_PLACEHOLDER = "@ID@"

# Copy a template session's keys to sessions first..last: ARGV = head, tail, first, last,
# top index key, top score, then (key suffix, pttl, DUMP payload) for each key.
FILL_LUA = """
local head, tail, first, last = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local top, score = ARGV[5], ARGV[6]
for i = first, last do
  local id = 'fill-' .. i
  local base = head .. id .. tail
  for j = 7, #ARGV, 3 do
    redis.call('RESTORE', base .. ARGV[j], ARGV[j + 1], ARGV[j + 2], 'REPLACE')
  end
  if top ~= '' then redis.call('ZADD', top, score, id) end
end
return last - first + 1
"""


def _policy(backend: str, redis_url: str | None) -> BudgetPolicy:
    return BudgetPolicy.model_validate(variants.budget_policy(backend, redis_url))


def _ref(policy: BudgetPolicy, session_id: str) -> BudgetRef:
    return policy.budgets_for(session_id=session_id)[0]


def _store(backend: str, redis_url: str | None) -> tuple[BudgetStore, BudgetPolicy]:
    policy = _policy(backend, redis_url)
    if backend == "redis":
        return RedisBudgetStore(policy.store, url=redis_url), policy
    return MemoryBudgetStore(policy.store), policy


def _sync_run(store: BudgetStore, refs: list[BudgetRef], clients: int, warmup_s: float, window_s: float) -> Any:
    ids = itertools.count()
    lock = threading.Lock()

    def pair(i: int) -> None:
        call_id = f"bench-{i}"
        ref = refs[i % len(refs)]
        store.reserve(ref, call_id, AMOUNT, enforce=True)
        store.settle(ref, call_id, SETTLED)

    def call(_: int) -> None:
        with lock:
            i = next(ids)
        pair(i)

    return load.run_threads(call, clients, warmup_s, window_s)


async def _async_run(store: BudgetStore, refs: list[BudgetRef], clients: int, warmup_s: float, window_s: float) -> Any:
    async def call(i: int) -> None:
        call_id = f"bench-a{i}"
        ref = refs[i % len(refs)]
        await store.areserve(ref, call_id, AMOUNT, enforce=True)
        await store.asettle(ref, call_id, SETTLED)

    return await load.run_async(call, clients, warmup_s, window_s, cooperative=True)


def throughput(redis_url: str, warmup_s: float, window_s: float) -> list[dict[str, Any]]:
    """reserve+settle pairs per second and latency per pair, per backend, API and number of clients."""
    rows = []
    for backend in ("memory", "redis"):
        store, policy = _store(backend, redis_url)
        refs = [_ref(policy, f"session-{n}") for n in range(variants.SESSIONS)]
        with asyncio.Runner() as runner:
            for api in ("sync", "async"):
                for clients in (1, 16):
                    if api == "sync":
                        measurement = _sync_run(store, refs, clients, warmup_s, window_s)
                    else:
                        measurement = runner.run(_async_run(store, refs, clients, warmup_s, window_s))
                    summary = load.summarize(measurement)
                    rows.append({"backend": backend, "api": api, "clients": clients, **summary})
            if isinstance(store, RedisBudgetStore):
                runner.run(store.aclose())
        store.close()
    return rows


# ---- sessions --------------------------------------------------------------------------------
def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _template(client: redis.Redis, store: RedisBudgetStore, policy: BudgetPolicy) -> list[str]:
    """Create one real session, return the fill script's arguments after first/last."""
    ref = _ref(policy, "fill-0")
    store.reserve(ref, "0" * 32, AMOUNT, enforce=True)
    store.settle(ref, "0" * 32, SETTLED)
    prefix = policy.store.key_prefix
    base = budget_key(prefix, ref)
    head, tail = budget_key(prefix, _ref(policy, _PLACEHOLDER)).split(_PLACEHOLDER)
    top = f"{top_key(prefix, ref)}:total" if policy.store.top_index else ""
    score = client.zscore(top, "fill-0") if top else None
    args = [head, tail, top, str(score or 0)]
    keys = sorted(k.decode() for k in client.scan_iter(match=f"{base}*"))
    if not keys:
        raise RuntimeError(f"the store wrote no key under {base}: the key layout changed?")
    for key in keys:
        ttl = max(0, int(client.pttl(key)))
        args += [key[len(base) :], str(ttl), client.dump(key)]  # type: ignore[list-item]
    return args


def _fill(client: redis.Redis, args: list[Any], first: int, last: int) -> None:
    fill = client.register_script(FILL_LUA)
    head, tail, top, score, *keys = args
    for start in range(first, last + 1, _FILL_BATCH):
        end = min(last, start + _FILL_BATCH - 1)
        fill(keys=[], args=[head, tail, start, end, top, score, *keys])


def _check_times(store: RedisBudgetStore, policy: BudgetPolicy, sessions: int, checks: int) -> dict[str, float]:
    rng = random.Random(6)
    reserve_us, pair_us = [], []
    for n in range(checks):
        ref = _ref(policy, f"fill-{rng.randrange(sessions)}")
        call_id = f"check-{sessions}-{n}"
        started = time.perf_counter_ns()
        store.reserve(ref, call_id, AMOUNT, enforce=True)
        reserved = time.perf_counter_ns()
        store.settle(ref, call_id, SETTLED)
        done = time.perf_counter_ns()
        reserve_us.append((reserved - started) / 1000)
        pair_us.append((done - started) / 1000)
    reserve_us.sort()
    pair_us.sort()
    return {
        "reserve_p50_us": load.percentile(reserve_us, 50),
        "reserve_p99_us": load.percentile(reserve_us, 99),
        "pair_p50_us": load.percentile(pair_us, 50),
        "pair_p99_us": load.percentile(pair_us, 99),
        "pair_mean_us": statistics.fmean(pair_us),
    }


def sessions(redis_url: str, counts: list[int], checks: int) -> list[dict[str, Any]]:
    """Time per check and Redis bytes per session with 1, …, max(counts) live sessions."""
    client = redis.Redis.from_url(redis_url)  # a server of its own: empty, so the first reading is the baseline
    policy = _policy("redis", redis_url)
    store = RedisBudgetStore(policy.store, url=redis_url)
    args = _template(client, store, policy)
    one = _used_memory(client)
    rows = []
    filled = 1
    for count in sorted(counts):
        started = time.perf_counter()
        if count > filled:
            _fill(client, args, filled, count - 1)
            filled = count
        fill_s = time.perf_counter() - started
        used = _used_memory(client)
        # With one session the difference also holds the loaded scripts: not a per-session figure.
        per_session = (used - one) / (count - 1) if count > 1 else None
        rows.append(
            {
                "sessions": count,
                "used_memory": used,
                "bytes_per_session": per_session,
                "fill_s": fill_s,
                "dbsize": client.dbsize(),
                **_check_times(store, policy, count, checks),
            }
        )
    store.close()
    client.close()
    return rows
