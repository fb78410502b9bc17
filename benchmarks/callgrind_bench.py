"""Instructions per call, counted by callgrind, for every arm in one run (issue 11).

Each arm runs alone in a fresh worker process under
``valgrind --tool=callgrind --instr-atstart=no`` (:mod:`callgrind_worker`): start-up,
imports, set-up and warm-up are not instrumented; client requests switch instrumentation
on around each block of calls and dump its counters. Instruction counts do not depend on
the machine's load, so two arms run side by side.

    uv run --group bench python benchmarks/callgrind_bench.py            # 2 runs, 40 calls a block
    uv run --group bench python benchmarks/callgrind_bench.py --runs 1 --calls 10 --out results/quick

Writes ``callgrind.json`` (raw) and ``callgrind.md`` (tables) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import callgrind_arms
import callgrind_layers
import callgrind_parse
import cgmark_build

from costrouter.testing.redis_server import RedisServer

HERE = Path(__file__).parent

LAYER_FUNCTION = "cgmark_layer_{}"
COSTROUTER_ARMS = ("costrouter", "costrouter_phoenix", "costrouter_datadog", "costrouter_memory", "costrouter_redis")


def _worker_command(arms: list[str], args: argparse.Namespace, work: Path, redis_urls: list[str]) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--dump-line=no",
        f"--callgrind-out-file={work / 'callgrind.out.%p'}",
        sys.executable,
        str(HERE / "callgrind_worker.py"),
        "--arms",
        ",".join(arms),
        "--redis-urls",
        ",".join(redis_urls),
        "--calls",
        str(args.calls),
        "--warmup",
        str(args.warmup),
        "--layer-calls",
        str(args.layer_calls),
        "--lease",
        str(args.lease),
        "--out",
        str(work),
    ]


def read_arm(out_dir: Path, work: Path) -> dict[str, Any]:
    """One arm's worker summary with its instruction counts, from its callgrind dumps."""
    worker = json.loads((out_dir / "worker.json").read_text())
    totals: dict[str, int] = {}
    layer_dump = None
    for path in sorted(work.glob(f"callgrind.out.{worker['pid']}.*")):
        label, total = callgrind_parse.label_and_total(path)
        totals[label] = total
        if label == "layers":
            layer_dump = callgrind_parse.parse(path)
    blocks = worker["blocks"]
    for label in ("a", "b"):
        calls = [totals[f"{label}.{k}"] for k in range(blocks[label]["calls"])]
        blocks[label]["per_call_each"] = calls
        blocks[label]["per_call"] = statistics.fmean(calls)
        blocks[label]["median"] = statistics.median(calls)
    if layer_dump is not None:
        layers = blocks["layers"]
        layers["per_call"] = layer_dump.total / layers["calls"]
        layers["layers_per_call"] = {
            name: layer_dump.inclusive(LAYER_FUNCTION.format(index)) / layers["calls"]
            for index, name, _ in callgrind_layers.LAYERS
        }
    worker["per_call"] = statistics.fmean(blocks[label]["per_call"] for label in ("a", "b"))
    worker["block_spread"] = abs(blocks["a"]["per_call"] - blocks["b"]["per_call"]) / worker["per_call"]
    return worker


def _redis_per_call(worker: dict[str, Any]) -> dict[str, float]:
    blocks = [worker["blocks"][label] for label in ("a", "b")]
    calls = sum(block["calls"] for block in blocks)
    commands = sum(stat["calls"] for block in blocks for stat in block["redis"].values())
    scripts = sum(
        stat["calls"]
        for block in blocks
        for command, stat in block["redis"].items()
        if command in ("eval", "evalsha", "fcall", "eval_ro", "evalsha_ro")
    )
    usec = sum(stat["usec"] for block in blocks for stat in block["redis"].values())
    layers = worker["blocks"]["layers"]
    return {
        "round_trips": layers["round_trips"] / layers["calls"],
        "scripts": scripts / calls,
        "commands": commands / calls,
        "server_us": usec / calls,
    }


def summarize(runs: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per arm: instructions per call in each run, mean, spread, added and ratio against bare.

    An arm missing from a later run (``--from-dir`` of a partial run) uses the runs it has.
    """
    arms: dict[str, Any] = {}
    for arm in runs[0]:
        present = [run for run in runs if arm in run]
        values = [run[arm]["per_call"] for run in present]
        mean = statistics.fmean(values)
        arms[arm] = {
            "label": callgrind_arms.LABELS[arm],
            "runs": len(values),
            "per_call_runs": values,
            "per_call": mean,
            "run_spread": (max(values) - min(values)) / mean,
            "block_spread": max(run[arm]["block_spread"] for run in present),
            "spans_per_call": present[0][arm]["spans_per_call"],
        }
    bare = arms["bare"]["per_call"]
    for arm, entry in arms.items():
        present = [run for run in runs if arm in run]
        entry["added"] = entry["per_call"] - bare
        entry["ratio"] = entry["per_call"] / bare
        entry["added_runs"] = [run[arm]["per_call"] - run["bare"]["per_call"] for run in present if "bare" in run]
        if arm in COSTROUTER_ARMS:
            layers = {
                name: statistics.fmean(run[arm]["blocks"]["layers"]["layers_per_call"][name] for run in present)
                for _, name, _ in callgrind_layers.LAYERS
            }
            top = sum(layers[name] for index, name, _ in callgrind_layers.LAYERS if index in callgrind_layers.TOP_LEVEL)
            layers["own"] = entry["added"] - top
            entry["layers"] = layers
        if arm == "costrouter_redis":
            per_run = [_redis_per_call(run[arm]) for run in present]
            entry["redis"] = {key: statistics.fmean(r[key] for r in per_run) for key in per_run[0]}
    return arms


def _m(value: float) -> str:
    return f"{value / 1e6:.2f} M"


def _k(value: float) -> str:
    return f"{value / 1e3:,.0f} k"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    """The tables of ``callgrind.md``."""
    lines = [
        f"Run of {meta['date']}: {meta['runs']} runs x {meta['calls']} calls a block (2 blocks a run), "
        f"warm-up {meta['warmup']}; valgrind {meta['valgrind']}, Python {meta['python']}, "
        f"litellm {meta['litellm']}, opentelemetry-sdk {meta['otel_sdk']}, redis-py {meta['redis_py']}"
        f"{', hiredis ' + meta['hiredis'] if meta['hiredis'] else ', no hiredis'}.",
        "",
        "| arm | instructions per call | added | ratio vs bare | spans/call | runs | spread between runs | "
        "spread between blocks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, entry in summary.items():
        added = "–" if arm == "bare" else f"{'+' if entry['added'] >= 0 else ''}{_m(entry['added'])}"
        ratio = "1" if arm == "bare" else f"{(entry['ratio'] - 1) * 100:+.2f} %"
        lines.append(
            f"| {entry['label']} | {_m(entry['per_call'])} | {added} | {ratio} | {entry['spans_per_call']:.1f} | "
            f"{entry['runs']} | "
            f"{entry['run_spread'] * 100:.2f} % | {entry['block_spread'] * 100:.2f} % |"
        )
    layered = [arm for arm in COSTROUTER_ARMS if arm in summary]
    if layered:
        lines += [
            "",
            "Where costrouter's added instructions go, per call (callgrind inclusive cost of each layer's "
            "trampoline; *own Python* is the added total minus the top-level layers):",
            "",
            "| layer | " + " | ".join(summary[arm]["label"] for arm in layered) + " |",
            "|---|" + "---|" * len(layered),
        ]
        rows = [(name, description) for _, name, description in callgrind_layers.LAYERS]
        rows.append(("own", "costrouter's own Python (flow, context, attributes' inputs, pricing, settle)"))
        for name, description in rows:
            cells = " | ".join(_k(summary[arm]["layers"][name]) for arm in layered)
            lines.append(f"| {description} | {cells} |")
    if "costrouter_redis" in summary:
        redis = summary["costrouter_redis"]["redis"]
        lines += [
            "",
            "Redis arm, per call: round trips (sends counted in redis-py), scripts and commands "
            "(`INFO commandstats` deltas; commands include those run inside scripts) and Redis server time:",
            "",
            "| round trips | EVALSHA/EVAL | commands | server µs |",
            "|---|---|---|---|",
            f"| {redis['round_trips']:.2f} | {redis['scripts']:.2f} | {redis['commands']:.2f} | "
            f"{redis['server_us']:.1f} |",
        ]
    return "\n".join(lines) + "\n"


def _valgrind_version() -> str:
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def _run_workers(arms: list[str], args: argparse.Namespace, work: Path) -> None:
    # One process under valgrind imports once and forks a child per (run, arm); each run
    # has its own Redis server. Counts do not depend on load, so all children run at once.
    servers = [RedisServer() for _ in range(args.runs)]
    try:
        for server in servers:
            server.start()
        command = _worker_command(arms, args, work, [server.url for server in servers])
        env = {**os.environ, "PYTHONHASHSEED": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"the callgrind workers failed ({result.returncode}):\n{result.stderr[-6000:]}")
    finally:
        for server in servers:
            server.stop()


def _read_runs(work: Path, arms: list[str]) -> list[dict[str, dict[str, Any]]]:
    runs = []
    for run in range(len(list(work.glob("run*-bare")))):
        found = {arm: work / f"run{run}-{arm}" for arm in arms if (work / f"run{run}-{arm}" / "worker.json").exists()}
        runs.append({arm: read_arm(out_dir, work) for arm, out_dir in found.items()})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default=",".join(callgrind_arms.ARM_NAMES))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--layer-calls", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="callgrind", help="file stem of the outputs")
    parser.add_argument(
        "--lease",
        type=int,
        default=0,
        help="the Redis arm with the default store (leases), N calls a session (0: the per-call path)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the callgrind.out files")
    parser.add_argument("--from-dir", type=Path, help="summarize the kept files of an earlier run instead of running")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("callgrind_bench needs valgrind (apt-get install valgrind)")
    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    if "bare" not in arms:
        arms.insert(0, "bare")
    cgmark_build.build()

    if args.from_dir is not None:
        work = args.from_dir
        started = time.monotonic()
        runs = _read_runs(work, arms)
    else:
        work = Path(tempfile.mkdtemp(prefix="costrouter-callgrind-"))
        started = time.monotonic()
        _run_workers(arms, args, work)
        runs = _read_runs(work, arms)
    summary = summarize(runs)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": args.runs,
        "calls": args.calls,
        "warmup": args.warmup,
        "lease_calls_per_session": args.lease,
        "valgrind": _valgrind_version(),
        "python": platform.python_version(),
        "litellm": _version("litellm"),
        "otel_sdk": _version("opentelemetry-sdk"),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
        "total_s": round(time.monotonic() - started),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2))
    table = markdown(summary, meta)
    (args.out / f"{args.name}.md").write_text(table)
    print(table)
    if args.keep or args.from_dir is not None:
        print(f"callgrind files kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
