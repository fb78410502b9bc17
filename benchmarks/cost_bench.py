"""What the cost computation adds per call, beside the rest of costrouter's layer.

Times, in µs per call (median of repetitions of the median of a run): reading the usage block,
the cost function with its exact atto-dollar split, the span attributes it adds, LiteLLM's own
``generic_cost_per_token`` on the same usage and prices (for reference), and a whole routed call
through costrouter with LiteLLM's work taken out (``layer_bench``'s stub Router, memory budget).

    export LITELLM_LOCAL_MODEL_COST_MAP=True
    uv run --group bench python benchmarks/cost_bench.py [--calls 20000] [--repetitions 5]

Writes ``results/cost_bench.md``. Nothing in the test suite asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import layer_bench
from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token
from litellm.types.utils import Usage

from costrouter.budget import CostSettings
from costrouter.config import price_fields as pf
from costrouter.otel.cost_attributes import breakdown_attributes, settled_attributes
from costrouter.pricing.cost import TokenUsage, compute_cost, price_call, token_usage
from costrouter.pricing.prices import Price

RESULTS = Path(__file__).parent / "results" / "cost_bench.md"

PRICE = Price(
    3e-6,
    1.5e-5,
    None,
    "deployment",
    {
        pf.CACHE_READ: 3e-7,
        pf.CACHE_CREATION: 3.75e-6,
        "input_cost_per_token_above_200k_tokens": 6e-6,
        "output_cost_per_token_above_200k_tokens": 2.25e-5,
    },
)
RICH = Usage(
    prompt_tokens=10_000,
    completion_tokens=1_000,
    cache_creation_input_tokens=3_000,
    cache_read_input_tokens=5_000,
    completion_tokens_details={"reasoning_tokens": 800},
)
PLAIN = TokenUsage(10_000, 1_000)
SETTINGS = CostSettings()


def _per_call_us(work: Callable[[], Any], calls: int, repetitions: int) -> float:
    medians = []
    for _ in range(repetitions):
        samples = []
        for _ in range(calls):
            started = time.perf_counter_ns()
            work()
            samples.append(time.perf_counter_ns() - started)
        medians.append(statistics.median(samples[calls // 10 :]) / 1000)
    return statistics.median(medians)


def _full_pricing_step() -> None:
    breakdown, settled = price_call(PRICE, token_usage(RICH), None, None, SETTINGS)
    assert breakdown is not None
    breakdown_attributes(breakdown)
    settled_attributes(settled)


def _layer_call_us(calls: int, repetitions: int) -> float:
    router = layer_bench._router("memory", None)  # the stub Router: costrouter's own work only
    try:
        runs = [layer_bench._stats(layer_bench._calls(router, calls)[calls // 10 :]) for _ in range(repetitions)]
    finally:
        router.shutdown()
    return statistics.median(run["p50_us"] for run in runs)


def main() -> None:
    """Measure and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    calls, reps = args.calls, args.repetitions
    rich = token_usage(RICH)
    rows = [
        ("old pricing: prompt x input + completion x output (floats)", lambda: (10_000 * 3e-6, 1_000 * 1.5e-5)),
        ("read a LiteLLM Usage (token_usage)", lambda: token_usage(RICH)),
        ("compute_cost, plain usage (exact split)", lambda: compute_cost(PRICE, PLAIN)),
        ("compute_cost, cache write + read + reasoning", lambda: compute_cost(PRICE, rich)),
        ("the whole pricing step: usage, cost, settle, span attributes", _full_pricing_step),
        ("the estimate before the call (one deployment, one threshold)", lambda: PRICE.upper_bound_usd(10_000, 1_000)),
        (
            "reference: LiteLLM generic_cost_per_token, same usage and prices",
            lambda: generic_cost_per_token(
                model="bench",
                usage=RICH,
                custom_llm_provider="anthropic",
                model_info=dict(PRICE.rates),  # type: ignore[arg-type]
            ),
        ),
    ]
    measured = [(name, _per_call_us(work, calls, reps)) for name, work in rows]
    layer = _layer_call_us(max(calls // 10, 500), reps)
    lines = [
        "| step | µs per call (median) |",
        "|---|---:|",
        *(f"| {name} | {value:.2f} |" for name, value in measured),
        f"| a whole routed call through costrouter (stub Router, memory budget, sync) | {layer:.1f} |",
    ]
    table = "\n".join(lines)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(f"# What the cost computation adds per call\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
