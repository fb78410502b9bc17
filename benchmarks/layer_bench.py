"""costrouter's own cost per call, with LiteLLM's work taken out.

The CostRouter's LiteLLM Router is swapped for a stub that answers at once with a
response built by the real Router (``mock_response``), after invoking costrouter's
callback the way LiteLLM does before an attempt. What remains is costrouter: context,
span, estimate, budget reserve/settle, attributes, attempt span, metrics. These are
microseconds, measurable even on a busy machine, unlike a difference of two
multi-millisecond LiteLLM calls.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import load
import variants
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from costrouter import CostRouter
from costrouter.otel.attempts import AttemptTracker

LAYERS = (
    ("costrouter", None),
    ("costrouter_memory", "memory"),
    ("costrouter_redis", "redis"),
)


class StubRouter:
    """Stands in for ``litellm.Router``: fires the pre-call hook, returns a canned response."""

    def __init__(self, response: Any, tracker: AttemptTracker) -> None:
        self._response = response
        self._tracker = tracker

    def _pre_call(self, kwargs: dict[str, Any]) -> None:
        metadata = {**kwargs["metadata"], "model_group": variants.GROUP, "model_info": {"id": "bench-primary"}}
        self._tracker.log_pre_api_call(
            f"openai/{variants.MODEL}",
            kwargs["messages"],
            {"litellm_params": {"metadata": metadata}, "litellm_call_id": uuid.uuid4().hex},
        )

    def completion(self, **kwargs: Any) -> Any:
        self._pre_call(kwargs)
        return self._response

    async def acompletion(self, **kwargs: Any) -> Any:
        self._pre_call(kwargs)
        return self._response


def _router(backend: str | None, redis_url: str | None) -> CostRouter:
    provider, _ = variants.sdk_tracer_provider()
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    budgets = None if backend is None else variants.budget_policy(backend, redis_url)
    router = CostRouter(
        variants.router_config("http://127.0.0.1:9/v1"),
        budgets=budgets,
        tracer_provider=provider,
        meter_provider=meter_provider,
    )
    response = router.litellm_router.completion(
        model=variants.GROUP, messages=variants.MESSAGES, max_tokens=variants.MAX_TOKENS, mock_response="hi"
    )
    router.litellm_router = StubRouter(response, router._planner.tracker)  # the one seam we need
    return router


def _stats(latencies_ns: list[int]) -> dict[str, float]:
    values = sorted(ns / 1000 for ns in latencies_ns)
    return {
        "p50_us": load.percentile(values, 50),
        "p99_us": load.percentile(values, 99),
        "mean_us": statistics.fmean(values),
    }


async def _acalls(router: CostRouter, calls: int) -> list[int]:
    latencies = []
    for i in range(calls):
        started = time.perf_counter_ns()
        await router.aroute_completion(
            variants.GROUP,
            variants.MESSAGES,
            session_id=f"session-{i % variants.SESSIONS}",
            max_tokens=variants.MAX_TOKENS,
        )
        latencies.append(time.perf_counter_ns() - started)
    return latencies


def _calls(router: CostRouter, calls: int) -> list[int]:
    latencies = []
    for i in range(calls):
        started = time.perf_counter_ns()
        router.route_completion(
            variants.GROUP,
            variants.MESSAGES,
            session_id=f"session-{i % variants.SESSIONS}",
            max_tokens=variants.MAX_TOKENS,
        )
        latencies.append(time.perf_counter_ns() - started)
    return latencies


def measure(redis_url: str | None, calls: int, repetitions: int) -> list[dict[str, Any]]:
    """Per layer and mode: median over repetitions of p50/p99/mean µs per routed call (c=1)."""
    results = []
    for name, backend in LAYERS:
        router = _router(backend, redis_url)
        with asyncio.Runner() as runner:
            for mode in ("async", "sync"):
                runs = []
                for _ in range(repetitions):
                    latencies = runner.run(_acalls(router, calls)) if mode == "async" else _calls(router, calls)
                    runs.append(_stats(latencies[calls // 10 :]))  # the first tenth warms up
                results.append(
                    {
                        "variant": name,
                        "mode": mode,
                        "calls": calls,
                        "repetitions": repetitions,
                        **{key: statistics.median(run[key] for run in runs) for key in runs[0]},
                    }
                )
        router.shutdown()
    return results
