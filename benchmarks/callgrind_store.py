"""Client instructions of one Redis-budgeted call's store work (reserve + settle), by callgrind.

For comparing redis-py with and without ``hiredis`` (its C reply parser) without LiteLLM's
start-up: the worker imports only costrouter's budget store. Each call is ``areserve`` then
``asettle`` of one session budget (the policy of the benchmark's Redis arm), on a throwaway
``redis-server``; counters are dumped after every call, start-up and warm-up uninstrumented.

    uv run --group bench python benchmarks/callgrind_store.py
    uv run --with hiredis --group bench python benchmarks/callgrind_store.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import callgrind_parse
import cgmark_build
import redis

from costrouter.budget import BudgetPolicy, RedisBudgetStore
from costrouter.testing.redis_server import RedisServer

POLICY = {
    "store": {"backend": "redis", "key_prefix": "bench"},
    "budgets": [{"scope": "session", "limit_usd": 1_000_000, "window": "total", "on_exceeded": "reject"}],
}
AMOUNT = 100


async def _calls(store: RedisBudgetStore, policy: BudgetPolicy, first: int, count: int, cgmark: Any) -> None:
    for i in range(first, first + count):
        budget = policy.budgets_for(session_id=f"session-{i}")[0]
        call_id = uuid.uuid4().hex
        await store.areserve(budget, call_id, AMOUNT, enforce=True)
        await store.asettle(budget, call_id, AMOUNT)
        if cgmark is not None:
            cgmark.dump(f"call.{i - first}")


async def worker(url: str, calls: int, warmup: int) -> None:
    cgmark = cgmark_build.load()
    policy = BudgetPolicy.model_validate(POLICY)
    store = RedisBudgetStore(policy.store, url=url)
    await _calls(store, policy, 0, warmup, None)
    gc.collect()
    gc.freeze()
    cgmark.start()
    cgmark.zero()
    await _calls(store, policy, warmup, calls, cgmark)
    cgmark.stop()
    store.close()


def measure(calls: int, warmup: int) -> dict[str, Any]:
    with RedisServer() as server, tempfile.TemporaryDirectory() as work:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--dump-line=no",
            f"--callgrind-out-file={work}/callgrind.out.%p",
            sys.executable,
            __file__,
            "--worker",
            server.url,
            "--calls",
            str(calls),
            "--warmup",
            str(warmup),
        ]
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        totals = dict(callgrind_parse.label_and_total(path) for path in Path(work).glob("callgrind.out.*"))
    each = [totals[f"call.{k}"] for k in range(calls)]
    return {
        "hiredis": _version("hiredis"),
        "redis_py": _version("redis"),
        "parser": "hiredis" if redis.utils.HIREDIS_AVAILABLE else "python",
        "calls": calls,
        "per_call": statistics.fmean(each),
        "median": statistics.median(each),
        "min": min(each),
        "max": max(each),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", metavar="REDIS_URL")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.calls, args.warmup))
        return
    result = measure(args.calls, args.warmup)
    line = json.dumps(result)
    print(line)
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


if __name__ == "__main__":
    main()
