"""Throughput with Redis budgets, per call and with the defaults (leases), against the bare Router in one process.

    uv run --locked python benchmarks/lease_throughput.py [--concurrency 64 256] [--seconds 3] [--pairs 3]
        [--calls-per-session 1]

The set-up of ``benchmarks/run.py`` (``variants.py``): the provider double in a process of
its own, a throwaway ``redis-server``, one priced deployment, calls cycling over 1,000
session ids (``--calls-per-session`` consecutive calls each; 1, the default, makes every call
a session's only call within a lease's life), each call holding a session budget and a global
budget. Each variant runs in a fresh process that alternates windows of the bare Router (the
very LiteLLM ``Router`` that ``CostRouter`` built, costrouter's callback switched off) and of
costrouter; the ratio is taken within each pair, and the median of the pairs is printed. Async,
closed loop.

``--gc-freeze``: after a warm-up window of each arm, ``gc.collect(); gc.freeze()`` in the worker, as a
server may do after start-up. LiteLLM keeps about 437,000 objects alive; each full collection walks
them (about 250 ms here), and a 4 s window holds two or three, so they decide much of a pair's ratio.
Frozen, full collections walk only what the calls made since.

Beside each ratio, the worker's CPU seconds per call (``time.process_time``: every thread of
the process) in the two arms, and their ratio. The worker is CPU-bound on this machine, so the
two ratios agree pair by pair: what costrouter costs in throughput is what it adds in CPU per
call, whichever thread spends it.
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
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from benchmarks.provider_process import ProviderProcess
from benchmarks.variants import GROUP, MAX_TOKENS, MESSAGES, SESSIONS, CallbackSwitch, _router_calls, router_config
from costrouter import CostRouter
from costrouter.otel.attempts import AttemptTracker
from costrouter.testing.redis_server import RedisServer


def _policy(redis_url: str, *, lease: bool) -> dict[str, Any]:
    store: dict[str, Any] = {"backend": "redis", "redis_url": redis_url, "key_prefix": "tp"}
    if not lease:  # leases are the default: only the per-call path needs saying
        store["lease"] = {"enabled": False}
    return {
        "store": store,
        "budgets": [
            {"scope": "session", "limit_usd": 1_000_000, "window": "total"},
            {"scope": "global", "limit_usd": 9_000_000, "window": "total"},
        ],
    }


async def _window(call: Callable[[int], Awaitable[Any]], concurrency: int, seconds: float) -> tuple[float, float]:
    """Calls per second of ``concurrency`` callers back to back, over ``seconds`` after a warm-up, and the
    process's CPU seconds per call (every thread: the loop, LiteLLM's, the lease thread)."""
    done = 0
    counting = False
    stop = False
    counter = 0

    async def caller() -> None:
        nonlocal done, counter
        while not stop:
            counter += 1
            await call(counter)
            if counting:
                done += 1

    tasks = [asyncio.create_task(caller()) for _ in range(concurrency)]
    await asyncio.sleep(min(1.0, seconds / 2))
    counting = True
    started = time.perf_counter()
    cpu_started = time.process_time()
    await asyncio.sleep(seconds)
    counting = False
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    stop = True
    await asyncio.gather(*tasks)
    return done / elapsed, cpu / max(done, 1)


async def _worker(
    base_url: str,
    redis_url: str,
    lease: bool,
    concurrency: list[int],
    seconds: float,
    pairs: int,
    per_session: int,
    *,
    gc_freeze: bool = False,
) -> dict[str, Any]:
    router = CostRouter(router_config(base_url), budgets=_policy(redis_url, lease=lease))
    switch = CallbackSwitch(lambda value: isinstance(value, AttemptTracker))
    acall_bare, _ = _router_calls(router.litellm_router)

    async def ours(i: int) -> Any:
        return await router.aroute_completion(
            GROUP, MESSAGES, session_id=f"session-{(i // per_session) % SESSIONS}", max_tokens=MAX_TOKENS
        )

    async def bare(i: int) -> Any:
        return await acall_bare(i, {})

    if gc_freeze:
        switch.off()
        await _window(bare, max(concurrency), 1.0)
        switch.on()
        await _window(ours, max(concurrency), 1.0)
        gc.collect()
        gc.freeze()
    results: dict[str, Any] = {}
    for c in concurrency:
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        cpu_us: dict[str, list[float]] = {"bare": [], "ours": []}
        for pair in range(pairs):
            order = ("bare", "ours") if pair % 2 == 0 else ("ours", "bare")
            rates: dict[str, float] = {}
            cpus: dict[str, float] = {}
            for which in order:
                if which == "bare":
                    switch.off()
                    rates[which], cpus[which] = await _window(bare, c, seconds)
                    switch.on()
                else:
                    rates[which], cpus[which] = await _window(ours, c, seconds)
                cpu_us[which].append(cpus[which] * 1e6)
            ratios.append(rates["ours"] / rates["bare"])
            cpu_ratios.append(cpus["bare"] / cpus["ours"])
        results[str(c)] = {
            "ratio": statistics.median(ratios),
            "ratios": ratios,
            "cpu_ratio": statistics.median(cpu_ratios),
            "cpu_us": {which: statistics.median(values) for which, values in cpu_us.items()},
        }
    router.shutdown()
    return results


def main() -> None:
    """Run both variants, each in a fresh process; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--calls-per-session", type=int, default=1)
    parser.add_argument("--gc-freeze", action="store_true", help="freeze the worker's objects after a warm-up")
    parser.add_argument("--worker", nargs=3, metavar=("BASE_URL", "REDIS_URL", "LEASE"))
    args = parser.parse_args()
    if args.worker:
        base_url, redis_url, lease = args.worker
        result = asyncio.run(
            _worker(
                base_url,
                redis_url,
                lease == "1",
                args.concurrency,
                args.seconds,
                args.pairs,
                args.calls_per_session,
                gc_freeze=args.gc_freeze,
            )
        )
        print(json.dumps(result))
        return
    server = RedisServer()
    server.start()
    try:
        with ProviderProcess() as provider:
            print(
                "| Redis budgets | concurrency | throughput / bare Router (median) | pairs "
                "| CPU per call, bare → costrouter (median) | bare's CPU per call / costrouter's (median) |"
            )
            print("|---|---|---|---|---|---|")
            for lease in ("0", "1"):
                command = [
                    sys.executable,
                    "-m",
                    "benchmarks.lease_throughput",
                    "--worker",
                    provider.base_url,
                    server.url,
                    lease,
                ]
                command += ["--seconds", str(args.seconds), "--pairs", str(args.pairs)]
                command += ["--gc-freeze"] if args.gc_freeze else []
                command += ["--calls-per-session", str(args.calls_per_session), "--concurrency"]
                command += [str(c) for c in args.concurrency]
                finished = subprocess.run(command, check=False, capture_output=True, text=True)
                if finished.returncode != 0:
                    message = f"the {lease=} worker exited with {finished.returncode}: {finished.stderr[-3000:]}"
                    raise RuntimeError(message)
                output = finished.stdout
                result = json.loads(output.strip().splitlines()[-1])
                for c, figures in result.items():
                    name = "defaults (leases)" if lease == "1" else "per call (`lease.enabled: false`)"
                    spread = ", ".join(f"{r:.3f}" for r in figures["ratios"])
                    cpu = figures["cpu_us"]
                    print(
                        f"| {name} | {c} | {figures['ratio']:.3f} | {spread} "
                        f"| {cpu['bare'] / 1000:.2f} → {cpu['ours'] / 1000:.2f} ms | {figures['cpu_ratio']:.3f} |"
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
