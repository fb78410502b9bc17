"""One arm of the callgrind benchmark, run under ``valgrind --tool=callgrind --instr-atstart=no``.

Start-up, imports, the arm's set-up and a warm-up run uninstrumented. Then, for each
block: ``CALLGRIND_START_INSTRUMENTATION``, zero the counters, make ``--calls`` calls back
to back (asyncio, concurrency 1), let LiteLLM's logging tasks and threads finish, dump the
counters under the block's label, stop instrumenting. Blocks ``a`` and ``b`` are the
headline (identical, so their agreement is a repeatability check within the process);
block ``layers`` runs with :mod:`callgrind_layers` installed, for the per-layer costs.
Writes a JSON summary to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import callgrind_arms
import callgrind_layers
import cgmark_build
import redis
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
from litellm.litellm_core_utils.thread_pool_executor import executor
from redis.asyncio.connection import AbstractConnection

_SPINS = 10
SERVER_IGNORED = {"info", "config|resetstat", "ping", "client|setinfo", "hello", "select", "client|setname"}


def _redis_stats(url: str | None) -> dict[str, dict[str, int]]:
    if url is None:
        return {}
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {
        key.removeprefix("cmdstat_"): {"calls": int(value["calls"]), "usec": int(value["usec"])}
        for key, value in stats.items()
        if key.removeprefix("cmdstat_") not in SERVER_IGNORED
    }


def _stats_delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    delta = {}
    for command, now in after.items():
        then = before.get(command, {"calls": 0, "usec": 0})
        calls, usec = now["calls"] - then["calls"], now["usec"] - then["usec"]
        if calls:
            delta[command] = {"calls": calls, "usec": usec}
    return delta


def _busy() -> bool:
    queue = GLOBAL_LOGGING_WORKER._queue
    if (queue is not None and queue.qsize() > 0) or GLOBAL_LOGGING_WORKER._running_tasks:
        return True
    return bool(executor._pending_slots._value < executor._max_pending_tasks)


async def _settle() -> int:
    """Let LiteLLM's logging worker, its detached tasks and its thread pool finish.

    A fixed number of loop turns (the same instructions every time), then, only while
    something is still running, short sleeps; returns how many were needed.
    """
    for _ in range(_SPINS):
        await asyncio.sleep(0)
    waits = 0
    while _busy():
        waits += 1
        await asyncio.sleep(0.02)  # the loop waits in epoll: the thread pool's handlers take the GIL
    return waits


class _RoundTrips:
    """Counts the commands redis-py sends (a pipeline or a script is one send: one round trip)."""

    def __init__(self) -> None:
        self.sends = 0

    def install(self) -> None:
        original = AbstractConnection.send_packed_command
        counter = self

        async def send_packed_command(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter.sends += 1
            return await original(self, *args, **kwargs)

        AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]


async def _block(cgmark: Any, arm: callgrind_arms.Arm, label: str, first: int, calls: int, *, each: bool) -> int:
    """``calls`` calls after a zero; a dump after every call (``label.k``, with ``each``) or at the end.

    Returns how many extra waits :func:`_settle` needed.
    """
    waits = 0
    cgmark.start()
    cgmark.zero()
    for k, i in enumerate(range(first, first + calls)):
        await arm.acall(i)
        waits += await _settle()
        if each:
            cgmark.dump(f"{label}.{k}")
    if not each:
        cgmark.dump(label)
    cgmark.stop()
    return waits


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cgmark = cgmark_build.load()
    arm = callgrind_arms.build(args.arm, args.redis_url, args.lease)
    i = 0
    for i in range(args.warmup):
        await arm.acall(i)
    await _settle()
    # Objects from imports and set-up move to the permanent generation: a full collection
    # then walks only what the calls allocate, the same in every arm and every block.
    gc.collect()
    gc.freeze()
    i = args.warmup
    spans_before = arm.spans()
    blocks: dict[str, Any] = {}
    for label in ("a", "b"):
        before = _redis_stats(args.redis_url)
        waits = await _block(cgmark, arm, label, i, args.calls, each=True)
        blocks[label] = {
            "calls": args.calls,
            "settle_waits": waits,
            "redis": _stats_delta(before, _redis_stats(args.redis_url)),
        }
        i += args.calls
    spans = arm.spans() - spans_before
    round_trips = _RoundTrips()
    if arm.router is not None:
        callgrind_layers.install(cgmark, arm.router)
        if args.redis_url is not None:
            round_trips.install()
        await _block(cgmark, arm, "layers", i, args.layer_calls, each=False)
        blocks["layers"] = {"calls": args.layer_calls, "round_trips": round_trips.sends}
    arm.close()
    return {
        "arm": args.arm,
        "on_valgrind": bool(cgmark.on_valgrind()),
        "spans_per_call": spans / (2 * args.calls),
        "litellm_callbacks": callgrind_arms.callback_counts(),
        "blocks": blocks,
    }


def _measure(args: argparse.Namespace) -> None:
    result = asyncio.run(run(args))
    result["pid"] = os.getpid()
    args.out.write_text(json.dumps(result, indent=2))


def _fork_all(args: argparse.Namespace) -> None:
    """Fork one child per (run, arm) from this process, which has only imported.

    Valgrind follows a fork without an exec: each child is its own callgrind process
    (``%p`` in the output file name), and LiteLLM's import is paid once.
    """
    children = []
    for run, url in enumerate(args.redis_urls.split(",")):
        for arm in args.arms.split(","):
            out_dir = args.out / f"run{run}-{arm}"
            out_dir.mkdir(parents=True, exist_ok=True)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    arm_args = argparse.Namespace(**vars(args))
                    arm_args.arm, arm_args.out = arm, out_dir / "worker.json"
                    arm_args.redis_url = url if arm == "costrouter_redis" else None
                    _measure(arm_args)
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
    failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise SystemExit(f"{len(failed)} arm worker(s) failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arm", choices=callgrind_arms.ARM_NAMES)
    parser.add_argument("--arms", help="fork one child per arm and run (comma-separated)")
    parser.add_argument("--redis-urls", help="with --arms: one Redis URL per run (comma-separated)")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--layer-calls", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--redis-url")
    parser.add_argument(
        "--lease",
        type=int,
        default=0,
        help="Redis arm: the default store (leases), N calls a session (0: the per-call path)",
    )
    parser.add_argument("--out", required=True, type=Path, help="the JSON file (--arm) or the directory (--arms)")
    args = parser.parse_args()
    if args.arms:
        _fork_all(args)
    elif args.arm:
        _measure(args)
    else:
        parser.error("give --arm or --arms")


if __name__ == "__main__":
    main()
