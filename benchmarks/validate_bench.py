"""How long `costrouter validate` takes on a ring of N model groups, each falling back to the next.

    uv run --locked python -m benchmarks.validate_bench [--groups 10000] [--runs 5]

Wall and CPU seconds (CPU time is what the work costs when other processes share the
machine), in one process after the imports (run with LITELLM_LOCAL_MODEL_COST_MAP=True):
reading and validating the YAML, the worst-case price of every group over its fallbacks
(what a router computes once), and the whole command as a user runs it. Before this change
the same ring did not finish within 120 s. Each step runs ``--runs`` times (minimum and
median). Prints one JSON line; ``benchmarks/results/validate.json`` keeps the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from costrouter.cli.commands import app
from costrouter.config.groups import load_router_config
from costrouter.config.reachability import worst_case_prices
from costrouter.pricing.prices import PriceBook


def write_ring(path: Path, size: int) -> None:
    """A model-group file of ``size`` groups in one fallback ring."""
    lines = ["groups:"]
    for index in range(size):
        lines += [
            f"  g{index}:",
            "    deployments:",
            f"      - model: openai/m{index}",
            "        input_cost_per_token: 0.000001",
            "        output_cost_per_token: 0.000002",
            f"    fallbacks: [g{(index + 1) % size}]",
        ]
    path.write_text("\n".join(lines) + "\n")


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall and CPU seconds of the block, filled in when it ends."""
    figures: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield figures
    figures["wall_s"] = round(time.perf_counter() - wall, 3)
    figures["cpu_s"] = round(time.process_time() - cpu, 3)


def summarised(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Minimum and median wall and CPU seconds of several runs, and the runs."""
    walls = [run["wall_s"] for run in runs]
    cpus = [run["cpu_s"] for run in runs]
    return {
        "wall_s_min": min(walls),
        "wall_s_median": round(statistics.median(walls), 3),
        "cpu_s_min": min(cpus),
        "cpu_s_median": round(statistics.median(cpus), 3),
        "runs": runs,
    }


def main() -> None:
    """Run the benchmark, print one JSON line of seconds and keep it in ``results/validate.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    loaded, reachability, command = [], [], []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ring.yaml"
        write_ring(path, arguments.groups)
        runner = CliRunner()
        runner.invoke(app, ["validate", str(path)])  # warm LiteLLM's price map
        load_before = round(os.getloadavg()[0], 2)
        for _ in range(arguments.runs):
            with timed() as figures:
                config = load_router_config(path)
            loaded.append(figures)
            book = PriceBook.from_config(config)
            with timed() as figures:
                worst_case_prices(config.fallback_graph(), book, None)
            reachability.append(figures)
            with timed() as figures:
                result = runner.invoke(app, ["validate", str(path)])
            command.append(figures)
            assert result.exit_code == 0, result.output
    summary = {
        "groups": arguments.groups,
        "load_and_validate": summarised(loaded),
        "reachability_once": summarised(reachability),
        "validate_command": summarised(command),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary))
    Path(__file__).with_name("results").joinpath("validate.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
