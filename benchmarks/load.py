"""Closed-loop load with a steady-state window.

``concurrency`` callers issue requests back to back. After a warm-up (a minimum time and
at least one completed call per caller) a window opens: throughput counts the calls that
end inside it, latencies are those of the calls that start inside it, and the process CPU
time spent inside it is divided by the calls completed (client CPU per call; the provider
double and Redis run in other processes). Then the callers stop and drain.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

_WARMUP_CAP_S = 60.0
_WINDOW_LATENCIES = 3.0
"""A window lasts at least this many recent median latencies (at most ``_WINDOW_CAP_S``): at
high concurrency the callers move in waves, and a window shorter than a wave may catch no
completion at all."""
_WINDOW_CAP_S = 10.0


def _window(calls: list[tuple[int, int]], window_s: float) -> float:
    recent = sorted(end - start for start, end in calls[len(calls) // 2 :])  # not the cold first calls
    if not recent:
        return window_s
    return max(window_s, min(_WINDOW_CAP_S, _WINDOW_LATENCIES * recent[len(recent) // 2] / 1e9))


@dataclass
class Measurement:
    """Every completed call as ``(start_ns, end_ns)``, and the window."""

    calls: list[tuple[int, int]] = field(default_factory=list)
    window_ns: tuple[int, int] = (0, 0)
    cpu_s: float = 0.0
    errors: int = 0
    first_error: str | None = None

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def summarize(measurement: Measurement) -> dict[str, Any]:
    """Latency percentiles (µs) of calls started in the window; throughput and CPU per call inside it."""
    start, end = measurement.window_ns
    window_s = (end - start) / 1e9
    latencies = sorted((e - s) / 1000 for s, e in measurement.calls if start <= s < end)
    completed = sum(1 for _, e in measurement.calls if start <= e < end)
    return {
        "window_s": window_s,
        "completed": completed,
        "sampled": len(latencies),
        "errors": measurement.errors,
        "first_error": measurement.first_error,
        "throughput": completed / window_s if window_s else 0.0,
        "cpu_us_per_call": measurement.cpu_s * 1e6 / completed if completed else float("nan"),
        "p50_us": percentile(latencies, 50),
        "p90_us": percentile(latencies, 90),
        "p99_us": percentile(latencies, 99),
        "mean_us": statistics.fmean(latencies) if latencies else float("nan"),
    }


async def run_async(
    call: Callable[[int], Awaitable[Any]],
    concurrency: int,
    warmup_s: float,
    window_s: float,
    *,
    cooperative: bool = False,
) -> Measurement:
    """``concurrency`` tasks on the running event loop.

    ``cooperative``: yield to the loop after each call, for calls that never suspend
    (the in-memory store's coroutines), else the window's timer would never run.
    """
    measurement = Measurement()
    counter = itertools.count()
    stop = asyncio.Event()
    warm = asyncio.Event()  # every caller has completed a call, on average
    calls = measurement.calls

    async def caller() -> None:
        while not stop.is_set():
            i = next(counter)
            started = time.perf_counter_ns()
            try:
                await call(i)
            except Exception as exc:  # counted; the run goes on
                measurement.failed(exc)
                continue
            calls.append((started, time.perf_counter_ns()))
            if len(calls) > concurrency:
                warm.set()
            if cooperative:
                await asyncio.sleep(0)

    tasks = [asyncio.create_task(caller()) for _ in range(concurrency)]
    await asyncio.sleep(warmup_s)
    with suppress(TimeoutError):
        await asyncio.wait_for(warm.wait(), _WARMUP_CAP_S)
    window_s = _window(list(calls), window_s)
    window_start, cpu_start = time.perf_counter_ns(), time.process_time()
    await asyncio.sleep(window_s)
    measurement.window_ns = (window_start, time.perf_counter_ns())
    measurement.cpu_s = time.process_time() - cpu_start
    stop.set()
    await asyncio.gather(*tasks)
    return measurement


def run_threads(call: Callable[[int], Any], concurrency: int, warmup_s: float, window_s: float) -> Measurement:
    """``concurrency`` threads (the sync path)."""
    measurement = Measurement()
    counter = itertools.count()
    stop = threading.Event()
    warm = threading.Event()
    lock = threading.Lock()
    calls = measurement.calls

    def caller() -> None:
        while not stop.is_set():
            with lock:
                i = next(counter)
            started = time.perf_counter_ns()
            try:
                call(i)
            except Exception as exc:  # counted; the run goes on
                with lock:
                    measurement.failed(exc)
                continue
            calls.append((started, time.perf_counter_ns()))
            if len(calls) > concurrency:
                warm.set()

    threads = [threading.Thread(target=caller, name=f"caller-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(warmup_s)
    warm.wait(_WARMUP_CAP_S)
    window_s = _window(list(calls), window_s)
    window_start, cpu_start = time.perf_counter_ns(), time.process_time()
    time.sleep(window_s)
    measurement.window_ns = (window_start, time.perf_counter_ns())
    measurement.cpu_s = time.process_time() - cpu_start
    stop.set()
    for thread in threads:
        thread.join()
    return measurement
