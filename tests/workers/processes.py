"""Start several worker processes of one module and read the JSON line each prints last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_workers(module: str, arguments: list[str], processes: int, *, timeout: float = 300.0) -> list[dict[str, Any]]:
    """Run ``python -m module *arguments`` in ``processes`` processes at once; their results, in order.

    A worker that fails fails the test with the tail of its stderr.
    """
    return run_each_worker(module, [arguments] * processes, timeout=timeout)


def run_each_worker(module: str, arguments: list[list[str]], *, timeout: float = 300.0) -> list[dict[str, Any]]:
    """Run one ``python -m module *args`` process per entry of ``arguments``, all at once; their results."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=ROOT,
        )
        for args in arguments
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err.decode()[-3000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results
