"""The variant comparison: one worker process per variant, measurements interleaved.

Each worker measures its variant and the bare Router (the variant switched off) in the
same process, one window after the other, the order alternating. Each repetition walks
every cell (mode, transport, concurrency) and, inside a cell, every variant (in an order
rotated per repetition). Differences and ratios against the bare Router are taken within
one pair of windows; the median over repetitions is reported.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from multiprocessing.context import BaseContext
from typing import Any

import variants
import worker


@dataclass(frozen=True)
class Cell:
    """One measurement condition."""

    mode: str  # async | sync
    transport: str  # http | mock
    concurrency: int


class Worker:
    """A variant's process, answering measurement requests over a pipe."""

    def __init__(self, context: BaseContext, variant: str, base_url: str, redis_url: str | None) -> None:
        self.variant = variant
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=worker.serve, args=(child, variant, base_url, redis_url), name=f"bench-{variant}", daemon=True
        )
        self._process.start()
        child.close()
        ready = self._receive(120)
        if ready != "ready":
            raise RuntimeError(f"worker {variant} failed to start:\n{ready}")

    def _receive(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"worker {self.variant} did not answer within {timeout:.0f} s")
        return self._conn.recv()

    def measure(self, cell: Cell, warmup_s: float, window_s: float, bare_first: bool) -> dict[str, Any]:
        self._conn.send({**asdict(cell), "warmup_s": warmup_s, "window_s": window_s, "bare_first": bare_first})
        result = self._receive(300)
        if isinstance(result, dict) and "error" in result:
            raise RuntimeError(f"worker {self.variant} failed on {cell}:\n{result['error']}")
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        with suppress(OSError):
            self._conn.send(None)
        self._process.join(30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


@contextmanager
def workers(
    context: BaseContext, names: Sequence[str], base_url: str, redis_url: str | None
) -> Iterator[dict[str, Worker]]:
    with ExitStack() as stack:
        pool: dict[str, Worker] = {}
        for name in names:
            pool[name] = Worker(context, name, base_url, redis_url)
            stack.callback(pool[name].close)
        yield pool


def run(
    pool: dict[str, Worker],
    cells: Sequence[Cell],
    repetitions: int,
    warmup_s: float,
    window_s: Callable[[Cell], float],
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every (repetition, cell, variant) measurement pair, in the order taken."""
    names = list(pool)
    records = []
    for rep in range(repetitions):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for cell in cells:
            started = time.perf_counter()
            for index, name in enumerate(order):
                bare_first = (rep + index) % 2 == 0
                pair = pool[name].measure(cell, warmup_s, window_s(cell), bare_first)
                records.append({"repetition": rep, "variant": name, **asdict(cell), "bare_first": bare_first, **pair})
            progress(
                f"  rep {rep + 1}/{repetitions} {cell.mode:5} {cell.transport:4} c={cell.concurrency:<3} "
                f"({time.perf_counter() - started:.1f} s)"
            )
    return records


def _median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")


METRICS = ("p50_us", "p90_us", "p99_us", "mean_us", "throughput", "cpu_us_per_call")


def aggregate(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (variant, cell): medians over repetitions of the variant, of its bare twin, and of their deltas."""
    groups: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for record in records:
        key = (record["variant"], record["mode"], record["transport"], record["concurrency"])
        groups.setdefault(key, []).append(record)
    rows = []
    for (variant, mode, transport, concurrency), reps in groups.items():
        row: dict[str, Any] = {
            "variant": variant,
            "mode": mode,
            "transport": transport,
            "concurrency": concurrency,
            "repetitions": len(reps),
            "errors": sum(r["on"]["errors"] + r["bare"]["errors"] for r in reps),
            "spans_per_call": _median([r["on"]["spans_per_call"] for r in reps]),
            "bare_spans_per_call": max(r["bare"]["spans_per_call"] for r in reps),
        }
        for metric in METRICS:
            row[metric] = _median([r["on"][metric] for r in reps])
            row[f"bare_{metric}"] = _median([r["bare"][metric] for r in reps])
        for metric in ("p50_us", "p99_us", "cpu_us_per_call"):
            deltas = [r["on"][metric] - r["bare"][metric] for r in reps]
            row[f"added_{metric}"] = _median(deltas)
            row[f"added_{metric}_range"] = [min(deltas), max(deltas)]
        ratios = [r["on"]["throughput"] / r["bare"]["throughput"] for r in reps if r["bare"]["throughput"]]
        row["throughput_ratio"] = _median(ratios)
        row["throughput_ratio_range"] = [min(ratios), max(ratios)] if ratios else []
        rows.append(row)
    order = {name: index for index, name in enumerate(variants.VARIANT_NAMES)}
    rows.sort(key=lambda r: (r["mode"], r["transport"], r["concurrency"], order.get(r["variant"], 99)))
    return rows
