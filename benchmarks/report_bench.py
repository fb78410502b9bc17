"""How fast `costrouter report` reads a large span file, and how much memory it holds.

    uv run --locked python -m benchmarks.report_bench [--spans 1000000] [--sessions 80000] [--runs 3]

Writes a span file of ``--spans`` lines like the ``file`` exporter's (each routed call one
call span and, on average, one attempt span; some retries and fallbacks), over
``--sessions`` sessions, 50 users, 4 groups and 3 tags, spread over 30 days. Then times the
report in a fresh process, as a user runs it (``--by group,session,tag,model``, csv to
/dev/null), and reads its peak resident memory. A run over the first tenth of the file shows
that memory does not grow with the number of spans; the whole file is read twice, by one
process (``--workers 1``) and by the default (one worker process per core). Each file is
reported ``--runs`` times (wall and CPU seconds: on a shared machine CPU time is what the
work costs; minimum and median). The child imports compiled bytecode, as an installed
package does: ``PYTHONDONTWRITEBYTECODE`` is dropped from its environment and one untimed
run on an empty file writes the caches first.
Prints one JSON line; ``benchmarks/results/report.json`` keeps the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GROUPS = ("fast", "capable", "local", "cheap")
TAGS = ("search", "chat", "batch")
T0 = 1_793_000_000 * 1_000_000_000


def _call(index: int, rng: random.Random, sessions: int) -> tuple[dict[str, Any], int]:
    group = GROUPS[index % len(GROUPS)]
    start = T0 + rng.randrange(30 * 86_400) * 1_000_000_000
    attributes: dict[str, Any] = {
        "router.model_group": group,
        "router.served_model_group": group,
        "router.deployment_id": f"{group}-primary",
        "session.id": f"sess-{rng.randrange(sessions):06d}",
        "user.id": f"user-{rng.randrange(50):02d}",
        "router.tags": [TAGS[index % 3]],
        "gen_ai.request.model": f"openai/{group}-model",
        "gen_ai.response.model": f"{group}-model-2026",
        "gen_ai.usage.input_tokens": rng.randrange(20, 2000),
        "gen_ai.usage.output_tokens": rng.randrange(10, 800),
        "llm.usage.cost_usd": rng.uniform(0, 0.01),
        "llm.latency_ms": rng.uniform(100, 3000),
        "llm.cost.total": 0.0,
        "llm.token_count.total": 0,
        "openinference.span.kind": "LLM",
        "budget.outcome": "allowed",
    }
    record = {
        "name": f"router.completion/{group}",
        "trace_id": f"{index:032x}",
        "span_id": f"{index:016x}",
        "parent_span_id": None,
        "kind": "CLIENT",
        "start_time_ns": start,
        "end_time_ns": start + 500_000_000,
        "status": {"code": "UNSET", "description": None},
        "attributes": attributes,
        "events": [],
        "resource": {"service.name": "bench"},
        "scope": "costrouter",
    }
    return record, start


def write_spans(path: Path, spans: int, sessions: int) -> None:
    """About half call spans, half attempt spans (written before their call, as the SDK does)."""
    rng = random.Random(1)
    written = index = 0
    with path.open("w") as handle:
        while written < spans:
            call, start = _call(index, rng, sessions)
            attempts = 1 if rng.random() < 0.9 else 2
            for attempt in range(min(attempts, spans - written - 1)):
                record = {
                    "name": f"router.attempt/{call['attributes']['router.deployment_id']}",
                    "trace_id": call["trace_id"],
                    "span_id": f"{index:012x}{attempt:04x}",
                    "parent_span_id": call["span_id"],
                    "kind": "CLIENT",
                    "start_time_ns": start,
                    "end_time_ns": start + 400_000_000,
                    "status": {"code": "UNSET", "description": None},
                    "attributes": {
                        "router.attempt.index": attempt,
                        "router.attempt.kind": "first" if attempt == 0 else "retry",
                        "router.attempt.outcome": "success" if attempt == attempts - 1 else "failure",
                        "router.model_group": call["attributes"]["router.model_group"],
                        "router.deployment_id": call["attributes"]["router.deployment_id"],
                    },
                    "events": [],
                    "resource": {"service.name": "bench"},
                    "scope": "costrouter",
                }
                handle.write(json.dumps(record) + "\n")
                written += 1
            handle.write(json.dumps(call) + "\n")
            written += 1
            index += 1


def _environment() -> dict[str, str]:
    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (KiB), read from /proc; 0 once it is gone."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError):
        return total
    return total + sum(_tree_rss_kib(int(child)) for child in children)


def timed_report(path: Path, workers: int | None = None) -> dict[str, float]:
    """Run the report in a child process; its wall and CPU seconds, and peak RSS (MiB).

    ``peak_rss_mib`` is the largest of any one process (the kernel's count); ``peak_tree_rss_mib``
    the largest sum over the report and its worker processes, sampled every 20 ms.
    """
    command = [
        sys.executable,
        "-m",
        "costrouter",
        "report",
        str(path),
        "--by",
        "group,session,tag,model",
        "-f",
        "csv",
        "-o",
        os.devnull,
        *([] if workers is None else ["--workers", str(workers)]),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=_environment())
    tree = 0
    while child.poll() is None:
        tree = max(tree, _tree_rss_kib(child.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
        "peak_tree_rss_mib": round(tree / 1024, 1),
    }


def summarised(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Minimum and median wall and CPU seconds of several runs, the largest peak RSS, and the runs."""
    walls = [run["wall_s"] for run in runs]
    cpus = [run["cpu_s"] for run in runs]
    return {
        "wall_s_min": min(walls),
        "wall_s_median": round(statistics.median(walls), 2),
        "cpu_s_min": min(cpus),
        "cpu_s_median": round(statistics.median(cpus), 2),
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
        "peak_tree_rss_mib": max(run["peak_tree_rss_mib"] for run in runs),
        "runs": runs,
    }


def main() -> None:
    """Write the file, time the report twice (a tenth, then all), print and keep the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=80_000)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        full = Path(directory) / "spans.jsonl"
        write_spans(full, arguments.spans, arguments.sessions)
        tenth = Path(directory) / "tenth.jsonl"
        with full.open() as source, tenth.open("w") as target:
            for number, line in enumerate(source):
                if number >= arguments.spans // 10:
                    break
                target.write(line)
        empty = Path(directory) / "empty.jsonl"
        empty.touch()
        timed_report(empty)  # writes the bytecode caches
        load_before = round(os.getloadavg()[0], 2)
        # RUSAGE_CHILDREN's peak RSS is a maximum over all children, so the smaller runs go first.
        small = summarised([timed_report(tenth) for _ in range(arguments.runs)])
        serial = summarised([timed_report(full, workers=1) for _ in range(arguments.runs)])
        large = summarised([timed_report(full) for _ in range(arguments.runs)])
        figures = {
            "spans": arguments.spans,
            "sessions": arguments.sessions,
            "file_mib": round(full.stat().st_size / 2**20, 1),
            "tenth_of_the_spans": small,
            "all_spans_one_process": serial,
            "all_spans": large,
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": round(os.getloadavg()[0], 2),
        }
    print(json.dumps(figures))
    Path(__file__).with_name("results").joinpath("report.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
