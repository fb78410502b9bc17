"""How long `costrouter validate` takes on a ring of N model groups, each falling back to the next.

    uv run --locked python -m benchmarks.validate_bench [--groups 10000]

Wall and CPU seconds (CPU time is what the work costs when other processes share the
machine), in one process after the imports (run with LITELLM_LOCAL_MODEL_COST_MAP=True):
reading and validating the YAML, the worst-case price of every group over its fallbacks
(what a router computes once), and the whole command as a user runs it. Before this change
the same ring did not finish within 120 s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from costrouter.cli import app
from costrouter.config import load_router_config
from costrouter.pricing import PriceBook
from costrouter.reachability import worst_case_prices


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


def main() -> None:
    """Run the benchmark and print one JSON line of seconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=10_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ring.yaml"
        write_ring(path, arguments.groups)
        runner = CliRunner()
        runner.invoke(app, ["validate", str(path)])  # warm LiteLLM's price map
        with timed() as loaded:
            config = load_router_config(path)
        book = PriceBook.from_config(config)
        with timed() as reachability:
            worst_case_prices(config.fallback_graph(), book, None)
        with timed() as command:
            result = runner.invoke(app, ["validate", str(path)])
        assert result.exit_code == 0, result.output
    figures = {
        "groups": arguments.groups,
        "load_and_validate": loaded,
        "reachability_once": reachability,
        "validate_command": command,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
