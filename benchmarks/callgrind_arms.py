"""The arms of the callgrind benchmark, each built alone in a fresh process.

One arm per process, one ``litellm.Router`` per process: each extra Router adds LiteLLM
global callbacks (about 2 M instructions to every call of every Router), so arms built
side by side would not carry the same callbacks. Every arm sends the same request with
LiteLLM's ``mock_response`` (no HTTP) and exports to the same sink (an SDK
``TracerProvider`` with a ``BatchSpanProcessor`` in front of a counting exporter).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import variants
from openinference.instrumentation.litellm import LiteLLMInstrumentor
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from costrouter import CostRouter
from costrouter.config.groups import parse_router_config
from costrouter.config.settings import Settings
from costrouter.routing.building import build_litellm_router

ARMS: tuple[tuple[str, str], ...] = (
    ("bare", "bare `Router.acompletion`"),
    ("costrouter", "costrouter, tracing only"),
    ("costrouter_phoenix", "costrouter, tracing only, `COSTROUTER_BACKEND=phoenix`"),
    ("costrouter_datadog", "costrouter, tracing only, `COSTROUTER_BACKEND=datadog`"),
    ("costrouter_memory", "costrouter + memory budget"),
    ("costrouter_redis", "costrouter + Redis budget"),
    ("openinference", "Router + OpenInference"),
    ("litellm_otel", 'Router + LiteLLM "otel"'),
    ("openlit", "Router + OpenLIT"),
)
ARM_NAMES = tuple(name for name, _ in ARMS)
PRESET_ARMS = {"costrouter_phoenix": "phoenix", "costrouter_datadog": "datadog"}
"""Tracing-only arms with a backend preset: the span carries the conventions that backend reads."""
LABELS = dict(ARMS)
MOCK = {"mock_response": variants.MOCK_TEXT}


@dataclass
class Arm:
    """One arm in this process: ``acall(i)`` makes the i-th call."""

    name: str
    acall: Callable[[int], Awaitable[Any]]
    spans: Callable[[], int]
    router: Any = None
    """The CostRouter, for the arms that have one."""
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for closer in self.closers:
            closer()


def _bare_router() -> Any:
    return build_litellm_router(parse_router_config(variants.router_config("http://127.0.0.1:9/v1")))


def _litellm_arm(name: str, router: Any, spans: Callable[[], int]) -> Arm:
    async def acall(_: int) -> Any:
        return await router.acompletion(
            model=variants.GROUP, messages=variants.MESSAGES, max_tokens=variants.MAX_TOKENS, **MOCK
        )

    return Arm(name, acall, spans)


def build(name: str, redis_url: str | None, lease: int = 0) -> Arm:
    """Set up arm ``name`` in this (fresh) process."""
    provider, exporter = variants.sdk_tracer_provider()

    def spans() -> int:
        provider.force_flush()
        return exporter.spans

    if name == "bare":
        return _litellm_arm(name, _bare_router(), spans)
    if name == "openinference":
        router = _bare_router()
        LiteLLMInstrumentor().instrument(tracer_provider=provider)
        return _litellm_arm(name, router, spans)
    if name == "litellm_otel":
        trace.set_tracer_provider(provider)
        litellm.callbacks = ["otel"]
        return _litellm_arm(name, _bare_router(), spans)
    if name == "openlit":
        return _litellm_arm(name, _openlit_router(provider), spans)
    if name in ("costrouter", "costrouter_memory", "costrouter_redis", *PRESET_ARMS):
        return _costrouter_arm(name, redis_url, provider, spans, lease)
    raise ValueError(f"unknown arm {name!r}; known: {', '.join(ARM_NAMES)}")


OPENLIT_PRICES = {"chat": {variants.MODEL: {"promptPrice": 1e-3, "completionPrice": 2e-3}}}
"""OpenLIT's price table (USD per 1,000 tokens): the deployment's prices, so it prices the call as costrouter does.

Without ``pricing_json`` OpenLIT downloads its table from the network at ``init``; this
machine has none, and the call would be priced at $0 (its table has no ``bench-model``).
"""


def _openlit_router(provider: Any) -> Any:
    """OpenLIT 1.45 as documented (``openlit.init()``), on this process's providers: it reuses the SDK
    providers it finds, so spans reach the same sink, metrics an in-memory reader, events a
    provider with no processor (else it would print them)."""
    import openlit  # noqa: PLC0415 - in the bench-openlit group only (it pins OpenTelemetry to one release)

    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    _logs.set_logger_provider(LoggerProvider())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as table:
        json.dump(OPENLIT_PRICES, table)
    openlit.init(application_name="bench", pricing_json=table.name)
    return _bare_router()


def _costrouter_arm(name: str, redis_url: str | None, provider: Any, spans: Callable[[], int], lease: int) -> Arm:
    """``lease`` > 0: the Redis store as configured by default (per-process leases), ``lease`` calls a session.

    ``lease`` = 0: the per-call path (``store.lease.enabled: false``), one call a session.
    """
    budgets = None
    if name == "costrouter_memory":
        budgets = variants.budget_policy("memory", None)
    elif name == "costrouter_redis":
        if redis_url is None:
            raise ValueError("the costrouter_redis arm needs --redis-url")
        budgets = variants.budget_policy("redis", redis_url)
        if lease == 0:
            budgets["store"]["lease"] = {"enabled": False}
    calls_per_session = max(lease, 1)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    router = CostRouter(
        variants.router_config("http://127.0.0.1:9/v1"),
        budgets=budgets,
        tracer_provider=provider,
        meter_provider=meter_provider,
        settings=Settings(backend=PRESET_ARMS[name]) if name in PRESET_ARMS else None,  # type: ignore[arg-type]
    )

    async def acall(i: int) -> Any:
        return await router.aroute_completion(
            variants.GROUP,
            variants.MESSAGES,
            session_id=f"session-{(i // calls_per_session) % variants.SESSIONS}",
            max_tokens=variants.MAX_TOKENS,
            **MOCK,
        )

    return Arm(name, acall, spans, router, [router.shutdown, meter_provider.shutdown])


def callback_counts() -> dict[str, int]:
    """How many entries each of LiteLLM's callback lists holds (the JSON keeps them per arm)."""
    return {name: len(values) for name, values in variants._callback_lists().items()}
