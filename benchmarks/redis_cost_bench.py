"""What budgets cost Redis: server time and commands per budgeted call, bytes per live session.

    uv run --locked python benchmarks/redis_cost_bench.py [--sessions N] [--calls-per-session K]
        [--callgrind] [--modes ARM ...] [--gap-seconds G]

Each call holds a session budget and a global budget (two budget instances). The same
sessions run per call (``RedisBudgetStore``: a reserve and a settle script per budget)
and with leases (``LeasedStore``: a message per budget instance when its lease is taken,
carried or given back; the run ends with every lease given back). Measured on a
throwaway ``redis-server`` on loopback from deltas of ``INFO commandstats`` (server
microseconds in ``EVALSHA``, round trips, and the ``redis.call`` commands the scripts
ran), the server's own CPU time (``INFO cpu``, main thread: what the server spent, network and
event loop included, and not inflated by time the machine gave other processes, as the wall
time ``commandstats`` counts is), and ``MEMORY USAGE`` summed over the run's keys (the sessions'
keys stay live: records of per-call settles for 24 h, lease tombstones, window hashes, the top
index). Also the client's wall time per call (reserve + settle of both budgets, sync).

``--gap-seconds G`` runs the sessions as chats: each turn every session calls once, and the next turn
comes ``G`` seconds later (the client µs column leaves the pauses out). The lease thread's
messages between turns (flushes, renewals, parks) are then part of each call's figures.

``--callgrind`` runs ``redis-server`` under ``valgrind --tool=callgrind`` and adds the server's
instructions per call (counters zeroed before a mode's calls, dumped after them), counted inside
``readQueryFromClient`` only (reading, parsing and running the commands and their scripts;
``serverCron`` and the event loop run by the clock, so they would grow with the machine's load):
repeatable where the µs columns move by tens of percent. Use a few hundred
sessions there (each call is ~50 times slower). Prints a table.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from costrouter.budget import store_from_config
from costrouter.budget.factory import leased_store_of, redis_store_of
from costrouter.budget.leases import LeasedStore
from costrouter.budget.store import BudgetStore
from costrouter.config.budget_ref import GLOBAL_SCOPE_ID, BudgetRef
from costrouter.config.budgets import LeaseSettings, StoreConfig
from costrouter.config.windows import parse_window
from costrouter.testing.redis_server import RedisServer, free_port

ESTIMATE = 400
ACTUAL = 250
SCRIPT_COMMANDS = ("evalsha", "eval")
ARMS = {
    "per-call-top": ("per call", True),
    "per-call": ("per call", False),
    "leases-top": ("leases", True),
    "defaults": ("defaults", False),
}
"""The arms (``--modes``): store mode and top index."""
MODES = tuple(ARMS)


def _budgets(session: str) -> list[BudgetRef]:
    total = parse_window("total")
    return [
        BudgetRef("per-session", "session", session, total, 10**9),
        BudgetRef("everyone", "global", GLOBAL_SCOPE_ID, total, 10**12),
    ]


class CallgrindRedis:
    """A throwaway ``redis-server`` under callgrind; :meth:`zero` and :meth:`dump` bracket a measurement."""

    def __init__(self) -> None:
        """Start it on a free loopback port (nothing persisted) and wait until it answers."""
        self.dir = tempfile.mkdtemp(prefix="costrouter-redis-cg-")
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={self.dir}/callgrind.out.%p"),
                # Only the handling of requests (read, parse, run the command and its scripts):
                # serverCron and the event loop grow with wall time, so with the machine's load.
                "--toggle-collect=readQueryFromClient",
                *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=1)
        deadline = time.monotonic() + 120  # valgrind starts slowly
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.2)
        client.close()

    def _control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.process.pid)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def zero(self) -> None:
        """Zero the instruction counters."""
        self._control("-z")

    def dump(self) -> int:
        """Instructions since :meth:`zero` (written to a dump file, then read back)."""
        before = set(glob.glob(f"{self.dir}/callgrind.out.*"))
        self._control("-d")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for path in set(glob.glob(f"{self.dir}/callgrind.out.*")) - before:
                with open(path, encoding="utf-8", errors="replace") as dump:
                    found = re.search(r"^(?:summary|totals): (\d+)", dump.read(), re.MULTILINE)
                if found:
                    os.remove(path)
                    return int(found.group(1))
            time.sleep(0.05)
        message = "callgrind wrote no dump within 60 s"
        raise RuntimeError(message)

    def stop(self) -> None:
        """Stop the server and valgrind."""
        self.process.terminate()
        self.process.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def _cpu_seconds(client: redis.Redis) -> float:
    """The server's main-thread CPU time (user + system), or the process's on older servers."""
    cpu: dict[str, Any] = client.info("cpu")
    if "used_cpu_user_main_thread" in cpu:
        return float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _stats(client: redis.Redis) -> dict[str, dict[str, float]]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): values for name, values in stats.items()}


def _memory(client: redis.Redis, prefix: str) -> int:
    """``MEMORY USAGE`` (every element counted) summed over the keys of one run."""
    total = 0
    for key in client.scan_iter(match="{" + prefix + ":*", count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
    return total


def _call(store: BudgetStore, budgets: list[BudgetRef], call_id: str) -> None:
    for budget in budgets:
        store.reserve(budget, call_id, ESTIMATE, enforce=True)
    for budget in budgets:
        store.settle(budget, call_id, ACTUAL)


def _run(store: BudgetStore, sessions: int, calls: int, finish: Callable[[], None], gap: float = 0.0) -> float:
    """Every session's calls; returns the seconds spent calling (pauses left out).

    ``gap`` 0: each session's calls back to back, session after session. Above 0, chats: each turn
    every session calls once, then the run pauses ``gap`` seconds (the next turn of each chat comes
    ``gap`` seconds after its last, and the background thread's clock-driven messages land in between).
    """
    elapsed = 0.0
    if gap <= 0:
        started = time.perf_counter()
        for s in range(sessions):
            budgets = _budgets(f"session-{s}")
            for c in range(calls):
                _call(store, budgets, f"{s}-{c}-{uuid.uuid4().hex[:6]}")
        elapsed = time.perf_counter() - started
    else:
        chats = [_budgets(f"session-{s}") for s in range(sessions)]
        for c in range(calls):
            started = time.perf_counter()
            for s, budgets in enumerate(chats):
                _call(store, budgets, f"{s}-{c}-{uuid.uuid4().hex[:6]}")
            elapsed += time.perf_counter() - started
            time.sleep(gap)
    finish()
    return elapsed


def measure(
    url: str,
    mode: str,
    sessions: int,
    calls: int,
    *,
    top_index: bool,
    callgrind: CallgrindRedis | None = None,
    gap: float = 0.0,
) -> dict[str, float]:
    """One mode's figures per call and per session (with ``callgrind``, the server's instructions too)."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    if mode == "defaults":  # no lease setting, no top_index: what users get (leases, index off)
        config = StoreConfig(backend="redis", key_prefix=prefix, journal_dir=None)
    else:
        lease = LeaseSettings(enabled=mode == "leases")
        config = StoreConfig(backend="redis", key_prefix=prefix, lease=lease, journal_dir=None, top_index=top_index)
    store = store_from_config(config, redis_url=url)
    inner = redis_store_of(store)
    assert inner is not None
    warm = _budgets("warm-up")[1]
    inner.status(warm)  # loads the scripts and opens the pool outside the measurement
    client = redis.Redis.from_url(url)
    client.execute_command("CONFIG", "RESETSTAT")
    finish = store.drain if isinstance(store, LeasedStore) else (lambda: None)
    cpu = _cpu_seconds(client)
    if callgrind is not None:
        callgrind.zero()
    elapsed = _run(store, sessions, calls, finish, gap)
    instructions = callgrind.dump() if callgrind is not None else 0
    cpu = _cpu_seconds(client) - cpu
    stats = _stats(client)  # before MEMORY USAGE and SCAN, which would count themselves
    memory = _memory(client, prefix)
    store.close()
    client.close()
    total_calls = sessions * calls
    # Standalone Redis: every command the store sends is a script; the rest ran inside them. A lease
    # holder sends its background messages in pipelines: a round trip each, whatever their scripts.
    scripts = sum(stats.get(name, {}).get("calls", 0) for name in SCRIPT_COMMANDS)
    leased = leased_store_of(store)
    round_trips = scripts if leased is None else leased.waits + leased.batches
    server_usec = sum(stats.get(name, {}).get("usec", 0) for name in SCRIPT_COMMANDS)
    inner_calls = sum(v.get("calls", 0) for k, v in stats.items() if k not in (*SCRIPT_COMMANDS, "config|resetstat"))
    return {
        "server_us_per_call": server_usec / total_calls,
        "server_cpu_us_per_call": cpu / total_calls * 1e6,
        "server_instructions_per_call": instructions / total_calls,
        "round_trips_per_call": round_trips / total_calls,
        "scripts_per_call": scripts / total_calls,
        "redis_calls_per_call": inner_calls / total_calls,
        "bytes_per_session": memory / sessions,
        "client_us_per_call": elapsed / total_calls * 1e6,
    }


def main() -> None:
    """Run both modes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--calls-per-session", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--callgrind", action="store_true", help="run redis-server under callgrind")
    parser.add_argument(
        "--gap-seconds",
        type=float,
        default=0.0,
        help="chats: every session calls once a turn, turns this many seconds apart (default 0: back to back)",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="the arms to run (default: all four)"
    )
    args = parser.parse_args()
    callgrind = CallgrindRedis() if args.callgrind else None
    server = RedisServer(callgrind.url if callgrind is not None else None)
    server.start()
    try:
        print(
            "| mode | calls/session | pause between calls | top index | server µs/call | server CPU µs/call "
            + ("| server instructions/call " if callgrind else "")
            + "| round trips/call | scripts/call | redis.calls/call | bytes/session | client µs/call |"
        )
        print("|---|---|---|---|---|---|" + ("---|" if callgrind else "") + "---|---|---|---|---|")
        arms = [ARMS[name] for name in args.modes]
        for calls in args.calls_per_session:
            for mode, top_index in arms:
                figures = measure(
                    server.url,
                    mode,
                    args.sessions,
                    calls,
                    top_index=top_index,
                    callgrind=callgrind,
                    gap=args.gap_seconds,
                )
                instructions = f"{figures['server_instructions_per_call'] / 1000:,.1f} k | " if callgrind else ""
                print(
                    f"| {mode} | {calls} | {args.gap_seconds:g} s | {'on' if top_index else 'off'} | "
                    f"{figures['server_us_per_call']:.1f} | {figures['server_cpu_us_per_call']:.1f} | "
                    f"{instructions}{figures['round_trips_per_call']:.2f} | {figures['scripts_per_call']:.2f} | "
                    f"{figures['redis_calls_per_call']:.1f} | {figures['bytes_per_session']:.0f} | "
                    f"{figures['client_us_per_call']:.0f} |"
                )
    finally:
        server.stop()
        if callgrind is not None:
            callgrind.stop()


if __name__ == "__main__":
    main()
