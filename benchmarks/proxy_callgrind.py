"""What a second, unused LiteLLM Router costs every call in the proxy's process (issue 26), by callgrind.

LiteLLM's Router adds its callbacks to LiteLLM's process-wide lists, so every call made in
the process runs the callbacks of every Router built there. The proxy plugin used to build a
whole ``CostRouter`` (with its own Router) beside the proxy's; it now builds a
:class:`~costrouter.routing.engine.CallEngine` (no Router). Three arms, one process each under
``valgrind --tool=callgrind --instr-atstart=no``, each with the proxy's Router (one
deployment, ``mock_response``: no network) and ``--calls`` back-to-back ``acompletion`` calls
on it after a warm-up:

- ``proxy``: the proxy's Router alone;
- ``engine``: plus what the plugin builds now (``CallEngine.from_files``);
- ``cost_router``: plus what it built before (``CostRouter.from_files``: a second Router).

    LITELLM_LOCAL_MODEL_COST_MAP=True uv run --group bench python benchmarks/proxy_callgrind.py [--calls 20]

Writes ``benchmarks/results/proxy_callgrind.md``. Instruction counts, not times.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["COSTROUTER_EXPORTER"] = "none"

import cgmark_build
import litellm
import yaml
from callgrind_parse import label_and_total
from callgrind_worker import _settle

from costrouter.routing.engine import CallEngine
from costrouter.routing.router import CostRouter

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "proxy_callgrind.md"
ARMS = ("proxy", "engine", "cost_router")
CONFIG = {
    "model_list": [
        {
            "model_name": "chat",
            "litellm_params": {
                "model": "openai/chat-model",
                "api_key": "sk-bench",
                "input_cost_per_token": 2e-6,
                "output_cost_per_token": 4e-6,
            },
        }
    ]
}
MESSAGES = [{"role": "user", "content": "one proxied call"}]


async def _arm(name: str, config_path: Path, calls: int, warmup: int) -> dict[str, Any]:
    cgmark = cgmark_build.load()
    proxy_router = litellm.Router(model_list=CONFIG["model_list"])  # the proxy's own
    extra: Any = None
    if name == "engine":
        extra = CallEngine.from_files(config_path)
    elif name == "cost_router":
        extra = CostRouter.from_files(config_path)
    for _ in range(warmup):
        await proxy_router.acompletion(model="chat", messages=MESSAGES, mock_response="hi")
        await _settle()
    gc.collect()
    routers = sum(1 for item in gc.get_objects() if isinstance(item, litellm.Router))
    gc.freeze()
    cgmark.start()
    cgmark.zero()
    for _ in range(calls):
        await proxy_router.acompletion(model="chat", messages=MESSAGES, mock_response="hi")
        await _settle()
    cgmark.dump(name)
    cgmark.stop()
    if extra is not None:
        extra.shutdown()
    return {"arm": name, "routers": routers, "calls": calls}


def _child(args: argparse.Namespace) -> None:
    result = asyncio.run(_arm(args.arm, args.config, args.calls, args.warmup))
    (args.out / f"{args.arm}.json").write_text(json.dumps(result), encoding="utf-8")


def main() -> None:
    """Run the three arms under callgrind and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--arm", choices=ARMS)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.arm is not None:
        _child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="costrouter-proxy-cg-"))
    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    rows = []
    for arm in ARMS:
        out_file = work / f"callgrind.{arm}.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--dump-line=no",
            f"--callgrind-out-file={out_file}",
            sys.executable,
            __file__,
            "--arm",
            arm,
            "--config",
            str(config_path),
            "--out",
            str(work),
            "--calls",
            str(args.calls),
            "--warmup",
            str(args.warmup),
        ]
        subprocess.run(command, check=True, capture_output=True)
        dumps = [label_and_total(path) for path in work.glob(f"callgrind.{arm}.out*")]
        total = sum(total for label, total in dumps if label == arm)
        info = json.loads((work / f"{arm}.json").read_text(encoding="utf-8"))
        rows.append((arm, info["routers"], total / args.calls))
    base = rows[0][2]
    lines = [
        "# A second LiteLLM Router in the proxy's process: instructions per call (callgrind)",
        "",
        f"{args.calls} `acompletion` calls on the proxy's Router (`mock_response`, no network) after "
        f"{args.warmup} warm-up calls; one process per arm. `benchmarks/proxy_callgrind.py`.",
        "",
        "| in the process besides the proxy's Router | LiteLLM Routers | instructions per call | vs the proxy alone |",
        "|---|---|---|---|",
        *(
            f"| {label} | {routers} | {per_call / 1e6:.2f} M | {(per_call - base) / 1e6:+.2f} M |"
            for label, routers, per_call in (
                ("nothing (the proxy alone)", rows[0][1], rows[0][2]),
                ("the plugin now: `CallEngine`", rows[1][1], rows[1][2]),
                ("the plugin before: `CostRouter` (its own Router)", rows[2][1], rows[2][2]),
            )
        ),
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
