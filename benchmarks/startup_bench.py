"""Time to import costrouter and build a router, offline, each time in a fresh interpreter.

``python benchmarks/startup_bench.py`` (the probe) prints one JSON line; ``measure`` runs it.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Nothing listens here: building a router must not touch the network.
OFFLINE_BASE_URL = "http://127.0.0.1:9/v1"


def probe() -> dict[str, float]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    started = time.perf_counter()
    importlib.import_module("litellm")
    litellm_done = time.perf_counter()
    costrouter = importlib.import_module("costrouter")
    costrouter_done = time.perf_counter()
    sys.path.insert(0, str(HERE))
    variants = importlib.import_module("variants")

    config = variants.router_config(OFFLINE_BASE_URL)
    built = time.perf_counter()
    router = costrouter.CostRouter(config)
    tracing_done = time.perf_counter()
    budgeted = costrouter.CostRouter(config, budgets=variants.budget_policy("memory", None))
    budgets_done = time.perf_counter()
    router.shutdown()
    budgeted.shutdown()
    return {
        "import_litellm_s": litellm_done - started,
        "import_costrouter_rest_s": costrouter_done - litellm_done,
        "import_total_s": costrouter_done - started,
        "build_router_s": tracing_done - built,
        "build_router_with_budgets_s": budgets_done - tracing_done,
    }


def measure(repetitions: int) -> dict[str, Any]:
    runs = []
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for _ in range(repetitions):
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve())], capture_output=True, text=True, check=True, env=env
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "repetitions": repetitions,
        "runs": runs,
        "median": {key: statistics.median(run[key] for run in runs) for key in runs[0]},
    }


if __name__ == "__main__":
    print(json.dumps(probe()))
