"""The machine, the versions, and the markdown tables of a run."""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis_process
import variants

START_MARKER = "<!-- results:start (written by benchmarks/run.py) -->"
END_MARKER = "<!-- results:end -->"


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def environment() -> dict[str, Any]:
    packages = [
        "litellm",
        "opentelemetry-api",
        "opentelemetry-sdk",
        "openinference-instrumentation-litellm",
        "redis",
        "costrouter-litellm",
    ]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(_memory_gib(), 1),
        "python": platform.python_version(),
        "versions": {name: version(name) for name in packages},
        "redis_server": redis_process.redis_version(),
        "load_average_start": os.getloadavg(),
    }


def _f(value: Any, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.{digits}f}"


def _signed(value: Any) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+,.0f}"


def _rows(rows: Sequence[dict[str, Any]], mode: str, transport: str) -> dict[str, dict[int, dict[str, Any]]]:
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        if row["mode"] == mode and row["transport"] == transport:
            table.setdefault(row["variant"], {})[row["concurrency"]] = row
    return table


def comparison_table(rows: Sequence[dict[str, Any]], mode: str, transport: str) -> str:
    table = _rows(rows, mode, transport)
    if not table:
        return ""
    levels = sorted({c for by_c in table.values() for c in by_c})
    head = (
        "| variant | spans/call | added p50 µs (c=1) | added p99 µs (c=1) | added client CPU µs/call (c=1) | "
        + " | ".join(f"throughput ÷ bare, c={c}" for c in levels)
        + " |"
    )
    lines = [head, "|" + "---|" * (5 + len(levels))]
    bare = {c: [] for c in levels}  # type: dict[int, list[dict[str, Any]]]
    for variant in variants.VARIANT_NAMES:
        by_c = table.get(variant)
        if not by_c:
            continue
        for c, row in by_c.items():
            bare[c].append(row)
        one = by_c.get(1, {})
        cells = [
            variants.LABELS[variant],
            _f(one.get("spans_per_call", next(iter(by_c.values()))["spans_per_call"]), 1),
            _signed(one.get("added_p50_us")),
            _signed(one.get("added_p99_us")),
            _signed(one.get("added_cpu_us_per_call")),
        ]
        for c in levels:
            row = by_c.get(c)
            cells.append(_f(row["throughput_ratio"], 3) if row else "–")
        lines.append("| " + " | ".join(cells) + " |")
    bare_cells = ["bare Router (absolute, median of the workers' own)", "0", "", "", ""]
    one_rows = bare.get(1) or []
    if one_rows:
        p50 = sorted(r["bare_p50_us"] for r in one_rows)[len(one_rows) // 2]
        p99 = sorted(r["bare_p99_us"] for r in one_rows)[len(one_rows) // 2]
        cpu = sorted(r["bare_cpu_us_per_call"] for r in one_rows)[len(one_rows) // 2]
        bare_cells[2:5] = [f"p50 {_f(p50)}", f"p99 {_f(p99)}", f"CPU {_f(cpu)}"]
    for c in levels:
        group = bare[c]
        bare_cells.append(f"{_f(sorted(r['bare_throughput'] for r in group)[len(group) // 2], 0)}/s" if group else "–")
    lines.append("| " + " | ".join(bare_cells) + " |")
    return "\n".join(lines)


def layer_table(layer_rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| layer | path | p50 µs | p99 µs | mean µs |", "|---|---|---|---|---|"]
    lines += [
        f"| {variants.LABELS[row['variant']]} | {row['mode']} | {_f(row['p50_us'])} | "
        f"{_f(row['p99_us'])} | {_f(row['mean_us'])} |"
        for row in layer_rows
    ]
    return "\n".join(lines)


def store_table(store_rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| store | API | clients | reserve+settle per s | p50 µs per pair | p99 µs per pair | client CPU µs per pair |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['backend']} | {row['api']} | {row['clients']} | {_f(row['throughput'])} | {_f(row['p50_us'])} | "
        f"{_f(row['p99_us'])} | {_f(row['cpu_us_per_call'])} |"
        for row in store_rows
    ]
    return "\n".join(lines)


def sessions_table(session_rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| live sessions | Redis used_memory | bytes per session | reserve p50 µs | reserve p99 µs | "
        "reserve+settle p50 µs | reserve+settle p99 µs | fill time s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['sessions']:,} | {row['used_memory'] / 1024 / 1024:,.1f} MiB | {_f(row['bytes_per_session'])} | "
        f"{_f(row['reserve_p50_us'])} | {_f(row['reserve_p99_us'])} | {_f(row['pair_p50_us'])} | "
        f"{_f(row['pair_p99_us'])} | {_f(row['fill_s'], 1)} |"
        for row in session_rows
    ]
    return "\n".join(lines)


def startup_table(startup: dict[str, Any]) -> str:
    median = startup["median"]
    runs = startup["runs"]
    names = {
        "import_litellm_s": "import litellm",
        "import_costrouter_rest_s": "import costrouter (after litellm)",
        "import_total_s": "import costrouter, total",
        "build_router_s": "CostRouter(config) (tracing)",
        "build_router_with_budgets_s": "CostRouter(config, budgets=memory policy)",
    }
    lines = [f"| step | median of {startup['repetitions']} (s) | min (s) | max (s) |", "|---|---|---|---|"]
    for key, label in names.items():
        values = [run[key] for run in runs]
        lines.append(f"| {label} | {median[key]:.3f} | {min(values):.3f} | {max(values):.3f} |")
    return "\n".join(lines)


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    versions = env["versions"]
    parts = [
        f"Run of {env['date']}{' (--quick)' if results['quick'] else ''}: {env['nproc']} CPUs ({env['cpu']}), "
        f"{env['memory_gib']} GiB; Python {env['python']}, litellm {versions['litellm']}, "
        f"opentelemetry-sdk {versions['opentelemetry-sdk']}, openinference-instrumentation-litellm "
        f"{versions['openinference-instrumentation-litellm']}, redis-py {versions['redis']}, "
        f"redis-server {env['redis_server']}. Load average at start {_load(env['load_average_start'])}, "
        f"at end {_load(results['load_average_end'])}; total {results['elapsed_s'] / 60:.1f} min.",
        "",
    ]
    titles = {
        ("async", "http"): "Async path (`acompletion` / `aroute_completion`), provider double over HTTP",
        ("sync", "http"): "Sync path (`completion` / `route_completion`), provider double over HTTP",
        ("async", "mock"): "Async path, LiteLLM `mock_response` (no HTTP)",
        ("sync", "mock"): "Sync path, LiteLLM `mock_response` (no HTTP)",
    }
    for (mode, transport), title in titles.items():
        table = comparison_table(results["matrix"], mode, transport)
        if table:
            parts += [f"#### {title}", "", table, ""]
    parts += ["#### costrouter's own layer per call (LiteLLM stubbed out, c=1)", "", layer_table(results["layer"]), ""]
    parts += ["#### Budget stores alone", "", store_table(results["stores"]), ""]
    parts += ["#### Budget check by number of live sessions (Redis)", "", sessions_table(results["sessions"]), ""]
    parts += ["#### Import and build (fresh interpreter, offline)", "", startup_table(results["startup"]), ""]
    return "\n".join(parts)


def update_readme(readme: Path, text: str) -> None:
    """Replace the README's results section (between the markers) with ``text``."""
    content = readme.read_text(encoding="utf-8")
    if START_MARKER not in content or END_MARKER not in content:
        return
    head, rest = content.split(START_MARKER, 1)
    _, tail = rest.split(END_MARKER, 1)
    readme.write_text(f"{head}{START_MARKER}\n{text}\n{END_MARKER}{tail}", encoding="utf-8")
