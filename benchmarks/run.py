"""What costrouter costs per call, side by side with the bare Router and its peers.

    uv run --group bench python benchmarks/run.py            # the full run (~15 min on 2 cores)
    uv run --group bench python benchmarks/run.py --quick    # a smoke run (about a minute)

Writes ``benchmarks/results/`` (``--quick``: ``benchmarks/results/quick/``): the raw
results as JSON, the tables as markdown, the plots as PNG; a full run also refreshes the
results section of ``benchmarks/README.md``. See the README for the method.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import layer_bench
import matrix
import plots
import report
import startup_bench
import store_bench
import variants
from children import run_in_child
from provider_process import ProviderProcess

from costrouter.testing import RedisServer

HERE = Path(__file__).resolve().parent

# Imported once by the forkserver; every worker is a fork of it with nothing configured.
PRELOAD = [
    "litellm",
    "litellm.integrations.opentelemetry",
    "openinference.instrumentation.litellm",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.metrics",
    "costrouter",
    "costrouter.testing",
    "redis",
]


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    cells: list[matrix.Cell]
    repetitions: int
    warmup_s: float
    window_s: float
    window_c1_s: float
    layer_calls: int
    layer_repetitions: int
    store_warmup_s: float
    store_window_s: float
    session_counts: list[int]
    session_checks: int
    startup_repetitions: int
    variant_names: list[str] = field(default_factory=lambda: list(variants.VARIANT_NAMES))

    def window(self, cell: matrix.Cell) -> float:
        return self.window_c1_s if cell.concurrency == 1 else self.window_s


def _cells(spec: list[tuple[str, str, list[int]]]) -> list[matrix.Cell]:
    return [matrix.Cell(mode, transport, c) for mode, transport, levels in spec for c in levels]


FULL = Plan(
    cells=_cells(
        [
            ("async", "http", [1, 16, 64, 256]),
            ("sync", "http", [1, 16]),
            ("async", "mock", [1]),
            ("sync", "mock", [1]),
        ]
    ),
    repetitions=3,
    warmup_s=0.3,
    window_s=1.0,
    window_c1_s=1.5,
    layer_calls=1000,
    layer_repetitions=3,
    store_warmup_s=0.3,
    store_window_s=1.0,
    session_counts=[1, 10_000, 1_000_000],
    session_checks=2000,
    startup_repetitions=3,
)

QUICK = Plan(
    cells=_cells([("async", "http", [1])]),
    repetitions=1,
    warmup_s=0.1,
    window_s=0.3,
    window_c1_s=0.3,
    layer_calls=200,
    layer_repetitions=1,
    store_warmup_s=0.1,
    store_window_s=0.3,
    session_counts=[1, 1_000, 10_000],
    session_checks=200,
    startup_repetitions=1,
)


def _log(message: str) -> None:
    print(message, flush=True)


def run(plan: Plan, quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"quick": quick, "environment": report.environment(), "plan": repr(plan)}
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    _log("import and build, in fresh interpreters …")
    results["startup"] = startup_bench.measure(plan.startup_repetitions)
    # Each phase gets a Redis of its own: emptying one under a live fleet is a store lost, which
    # costrouter rightly refuses (on_store_lost: fail_closed) until an operator accepts it.
    with ProviderProcess(context) as provider:
        with RedisServer() as redis_server:
            _log(f"provider double at {provider.base_url}, redis-server at {redis_server.url}")
            _log("variants against the bare Router …")
            with matrix.workers(context, plan.variant_names, provider.base_url, redis_server.url) as pool:
                records = matrix.run(pool, plan.cells, plan.repetitions, plan.warmup_s, plan.window, _log)
        results["matrix_raw"] = records
        results["matrix"] = matrix.aggregate(records)
        with RedisServer() as redis_server:
            _log("costrouter's own layer (stubbed Router) …")
            results["layer"] = run_in_child(
                context, layer_bench.measure, redis_server.url, plan.layer_calls, plan.layer_repetitions
            )
        with RedisServer() as redis_server:
            _log("budget stores alone …")
            results["stores"] = run_in_child(
                context, store_bench.throughput, redis_server.url, plan.store_warmup_s, plan.store_window_s
            )
        with RedisServer() as redis_server:
            _log(f"budget checks with {', '.join(f'{n:,}' for n in plan.session_counts)} live sessions …")
            results["sessions"] = run_in_child(
                context, store_bench.sessions, redis_server.url, plan.session_counts, plan.session_checks
            )
    results["load_average_end"] = os.getloadavg()
    results["elapsed_s"] = time.perf_counter() - started
    return results


def write(results: dict[str, Any], out: Path, readme: Path | None) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    text = report.markdown(results)
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    plots.latency(results["matrix"], out / "latency_by_concurrency.png")
    plots.throughput(results["matrix"], out / "throughput_by_concurrency.png")
    plots.overhead(results["layer"], results["matrix"], out / "overhead_c1.png")
    if readme is not None:
        report.update_readme(readme, text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute (small counts)")
    parser.add_argument("--out", type=Path, help="results directory (default benchmarks/results[/quick])")
    args = parser.parse_args()
    out = args.out or (HERE / "results" / "quick" if args.quick else HERE / "results")
    results = run(QUICK if args.quick else FULL, args.quick)
    text = write(results, out, None if args.quick else HERE / "README.md")
    _log("")
    _log(text)
    _log(f"results in {out} ({results['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
