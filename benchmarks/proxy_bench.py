"""The LiteLLM proxy alone against the proxy with costrouter's plugin (issue 26).

Three runs of each, a fresh proxy process each run, the provider double upstream
(answers in 1.5 s, bills 1.5x tiktoken's prompt tokens, $2/M in, $4/M out):

- the burst: 4 client processes x 50 concurrent calls on one session, a $0.002 cap (the proxy
  alone: a per-deployment ``max_budget``, the only cap it enforces without its database; with
  the plugin: a costrouter session budget in Redis). Completed calls, the provider's bill, the
  overspend, and how long refused requests waited for their answer;
- the floor: the same burst on the proxy with a callback that refuses every request at once
  (no Redis, no costrouter): how long the proxy itself, on this machine, takes to answer 200
  concurrent refusals; and, for the plugin, its own refusal step (the rejected spans' durations);
- refusals one at a time: after the burst, 20 sequential calls on the spent session, how long
  each refusal took (the proxy alone refuses only once its deployment budget is spent);
- latency: 200 sequential calls (the provider answering at once), the p50 of each and the
  plugin's added p50.

    LITELLM_LOCAL_MODEL_COST_MAP=True uv run python benchmarks/proxy_bench.py [--runs 3]

Needs ``.proxy-venv`` (see ``.ci/run``) and ``redis-server``. Writes
``benchmarks/results/proxy_bench.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import openai

from costrouter.money import UNITS_PER_USD, usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply
from costrouter.testing.redis_server import RedisServer
from tests.integration.proxy_server import MASTER_KEY, ProxyServer, proxy_config
from tests.workers.processes import run_each_worker

CAP_USD = 0.002
LATENCY_LIMIT_USD = 1000.0
PRICE_IN, PRICE_OUT = 2e-6, 4e-6
RESULTS = Path(__file__).parent / "results" / "proxy_bench.md"
REFUSE_ALL = """
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException


class RefuseAll(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        raise ProxyException("refused", "budget_exceeded", None, 429)


handler = RefuseAll()
"""
"""A proxy callback that refuses every request at once: the floor of a refusal inside the burst."""


def _policy(redis_url: str, prefix: str, limit_usd: float) -> dict[str, Any]:
    """The plugin's budget policy: one session budget of ``limit_usd`` on the bench's Redis."""
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
        "budgets": [{"name": "per-session", "scope": "session", "limit_usd": limit_usd, "window": "total"}],
    }


def _groups(plugin: bool) -> dict[str, Any]:
    params = {} if plugin else {"max_budget": CAP_USD, "budget_duration": "1d"}
    return {"chat": {"model": "chat-model", "input": PRICE_IN, "output": PRICE_OUT, "id": "chat-1", "params": params}}


def _billed(provider: ProviderDouble, since: int) -> float:
    answers = provider.answers[since:]
    return (
        sum(usd_to_units(a.prompt_tokens * PRICE_IN + a.completion_tokens * PRICE_OUT) for a in answers) / UNITS_PER_USD
    )


def burst(provider: ProviderDouble, redis_url: str, plugin: bool) -> dict[str, Any]:
    """One burst on a fresh proxy: completed, billed, refused waits."""
    provider.set_default("chat-model", Reply(completion_tokens=20, delay=1.5))
    provider.set_prompt_token_factor("chat-model", 1.5)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    policy = _policy(redis_url, prefix, CAP_USD)
    since = len(provider.answers)
    with ProxyServer(proxy_config(provider.base_url, _groups(plugin), plugin=plugin), policy if plugin else None) as px:
        results = run_each_worker("tests.workers.proxy_calls", [[px.url, MASTER_KEY, prefix, "50", "20"]] * 4)
        billed = _billed(provider, since)
        idle = _idle_refusals(px.url, prefix)
    provider.set_prompt_token_factor("chat-model", None)
    refused = [wait for result in results for wait in result["wait_ms"]["rejected"]]
    steps = [
        (span["end_time_ns"] - span["start_time_ns"]) / 1e6
        for span in px.spans()
        if span["attributes"].get(sc.BUDGET_OUTCOME) == "rejected"
    ]
    return {
        "refusal_step_p50_ms": statistics.median(steps) if steps else None,
        "completed": sum(result["completed"] for result in results),
        "refused": len(refused),
        "errors": sum(result["errors"] for result in results),
        "billed": billed,
        "idle_refused_p50_ms": statistics.median(idle) if idle else None,
        "refused_p50_ms": statistics.median(refused) if refused else None,
        "refused_max_ms": max(refused) if refused else None,
    }


def floor_burst(provider: ProviderDouble) -> dict[str, Any]:
    """The burst on a proxy whose only callback refuses every request at once: refused waits."""
    config = proxy_config(provider.base_url, _groups(True), plugin=False)
    config["litellm_settings"]["callbacks"] = ["refuse_all.handler"]
    px = ProxyServer(config, None)
    (px.dir / "refuse_all.py").write_text(REFUSE_ALL, encoding="utf-8")  # the proxy loads it from its config's folder
    with px:
        results = run_each_worker("tests.workers.proxy_calls", [[px.url, MASTER_KEY, "floor", "50", "20"]] * 4)
    refused = [wait for result in results for wait in result["wait_ms"]["rejected"]]
    return {"refused": len(refused), "p50": statistics.median(refused), "max": max(refused)}


def _idle_refusals(url: str, session: str, calls: int = 20) -> list[float]:
    """After the burst, on the spent session: how long each of ``calls`` sequential refusals took (ms)."""
    client = openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=120)
    waits = []
    for _ in range(calls):
        started = time.perf_counter()
        try:
            client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=20,
                extra_body={"litellm_session_id": session},
            )
        except openai.RateLimitError:
            waits.append((time.perf_counter() - started) * 1000)
    client.close()
    return waits


def latency(provider: ProviderDouble, redis_url: str, plugin: bool, calls: int = 200) -> float:
    """The p50 in ms of ``calls`` sequential chat completions through a fresh proxy."""
    provider.set_default("chat-model", Reply(completion_tokens=20))
    policy = _policy(redis_url, f"lat{uuid.uuid4().hex[:8]}", LATENCY_LIMIT_USD)
    config = proxy_config(provider.base_url, _groups(True), plugin=plugin)
    with ProxyServer(config, policy if plugin else None) as px:
        client = openai.OpenAI(base_url=px.url, api_key=MASTER_KEY, max_retries=0)
        body = {"litellm_session_id": "latency"}
        for _ in range(20):  # warm-up: first-request imports and connections
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], extra_body=body)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], extra_body=body)
            times.append((time.perf_counter() - started) * 1000)
        client.close()
    return statistics.median(times)


def _row(label: str, runs: list[dict[str, Any]]) -> str:
    completed = " / ".join(str(run["completed"]) for run in runs)
    billed = " / ".join(f"${run['billed']:.5f}" for run in runs)
    over = " / ".join(f"{(run['billed'] / CAP_USD - 1) * 100:+.0f} %" for run in runs)
    waits = " / ".join(
        "-" if run["refused_p50_ms"] is None else f"{run['refused_p50_ms']:.0f} ({run['refused_max_ms']:.0f})"
        for run in runs
    )
    idle = " / ".join(
        "-" if run["idle_refused_p50_ms"] is None else f"{run['idle_refused_p50_ms']:.1f}" for run in runs
    )
    errors = sum(run["errors"] for run in runs)
    return f"| {label} | {completed} | {billed} | {over} | {waits} | {idle} | {errors} |"


def main() -> None:
    """Run the comparison and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    redis = RedisServer()
    redis.start()
    try:
        with ProviderDouble() as provider:
            alone, plugin, floor, p50_alone, p50_plugin = [], [], [], [], []
            for _ in range(args.runs):  # interleaved, so a busy spell of the machine hits both
                alone.append(burst(provider, redis.url, plugin=False))
                plugin.append(burst(provider, redis.url, plugin=True))
                floor.append(floor_burst(provider))
                p50_alone.append(latency(provider, redis.url, plugin=False))
                p50_plugin.append(latency(provider, redis.url, plugin=True))
    finally:
        redis.stop()
    lines = [
        "# The LiteLLM proxy alone vs the proxy with costrouter's plugin",
        "",
        f"Burst: 4 processes x 50 concurrent calls, one session, ${CAP_USD} cap; {args.runs} runs each.",
        "",
        "| system | completed | provider billed | over the cap | refused in the burst: wait p50 (max), ms "
        "| refused after it, one at a time: p50, ms | errors |",
        "|---|---|---|---|---|---|---|",
        _row("LiteLLM proxy 1.106.12, per-deployment `max_budget`", alone),
        _row("LiteLLM proxy + costrouter plugin (Redis session budget)", plugin),
        "",
        "Inside the burst, where a refusal's wait goes, per run: the floor is the same burst on the proxy with a "
        "callback that refuses every request at once (no Redis, no costrouter); the plugin's step is its "
        "rejected spans' duration (the hold's Redis round trip, under the proxy's busy event loop).",
        "",
        "| refused in the burst, p50 (max), ms: the proxy refusing at once | the proxy + plugin "
        "| the plugin's own refusal step, p50 ms |",
        "|---|---|---|",
        *(
            f"| {f['p50']:.0f} ({f['max']:.0f}) | {p['refused_p50_ms']:.0f} ({p['refused_max_ms']:.0f}) "
            f"| {p['refusal_step_p50_ms']:.0f} |"
            for f, p in zip(floor, plugin, strict=True)
            if p["refused_p50_ms"] is not None and p["refusal_step_p50_ms"] is not None
        ),
        "",
        "Latency, 200 sequential calls (provider answers at once), p50 in ms per run:",
        "",
        "| proxy alone | proxy + plugin | added by the plugin |",
        "|---|---|---|",
        *(f"| {a:.2f} | {b:.2f} | {b - a:+.2f} |" for a, b in zip(p50_alone, p50_plugin, strict=True)),
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
