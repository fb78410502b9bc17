"""The variants compared, each built in a fresh process by :func:`build`.

Each variant can be switched off in its own process, which leaves the bare
``litellm.Router`` (no callback, no instrumentor): the baseline is measured in the same
process, alternating with the variant, so a ratio never mixes two processes.

Every tracing variant exports to the same kind of sink: an SDK ``TracerProvider`` with a
``BatchSpanProcessor`` in front of :class:`CountingExporter`, which drops spans after
counting them. So the comparison is of the instrumentation, not of exporters.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.integrations.opentelemetry import OpenTelemetry
from openinference.instrumentation.litellm import LiteLLMInstrumentor
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from costrouter import CostRouter
from costrouter.config.groups import parse_router_config
from costrouter.otel.attempts import AttemptTracker
from costrouter.routing.building import build_litellm_router

GROUP = "bench"
MODEL = "bench-model"
MAX_TOKENS = 16
MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "Reply with a short greeting for the benchmark."}]
MOCK_TEXT = "Hello from the benchmark."
SESSIONS = 1000
"""Calls cycle over this many session ids, so budget variants touch many budget instances."""


@dataclass(frozen=True)
class Variant:
    """One column of the comparison."""

    name: str
    label: str
    description: str


VARIANTS: tuple[Variant, ...] = (
    Variant("litellm_otel", 'Router + "otel"', 'litellm.callbacks = ["otel"] on the SDK provider'),
    Variant("openinference", "Router + OpenInference", "LiteLLMInstrumentor().instrument(tracer_provider=...)"),
    Variant("costrouter", "costrouter (tracing)", "CostRouter, no budget policy"),
    Variant("costrouter_memory", "costrouter + memory budget", "one session budget, in-process store"),
    Variant("costrouter_redis", "costrouter + Redis budget", "one session budget, Redis store"),
)
VARIANT_NAMES = tuple(variant.name for variant in VARIANTS)
LABELS = {variant.name: variant.label for variant in VARIANTS}


class CountingExporter(SpanExporter):
    """Counts spans and drops them: the cheapest honest sink behind a BatchSpanProcessor."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def router_config(base_url: str) -> dict[str, Any]:
    """One group, one priced deployment on the provider double; no retries."""
    return {
        "router": {"num_retries": 0, "retry_after": 0},
        "groups": {
            GROUP: {
                "deployments": [
                    {
                        "id": "bench-primary",
                        "model": f"openai/{MODEL}",
                        "api_base": base_url,
                        "api_key": "bench-key",
                        "input_cost_per_token": 1e-6,
                        "output_cost_per_token": 2e-6,
                    }
                ]
            }
        },
    }


def budget_policy(backend: str, redis_url: str | None) -> dict[str, Any]:
    """One session budget (window ``total``) far above what the benchmark spends."""
    store: dict[str, Any] = {"backend": backend, "key_prefix": "bench"}
    if redis_url is not None:
        store["redis_url"] = redis_url
    return {
        "store": store,
        "budgets": [{"scope": "session", "limit_usd": 1_000_000, "window": "total", "on_exceeded": "reject"}],
    }


def sdk_tracer_provider() -> tuple[TracerProvider, CountingExporter]:
    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


# LiteLLM copies what ``litellm.callbacks`` names into these lists on a call's first use.
CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "service_callback",
    "_async_input_callback",
    "_async_success_callback",
    "_async_failure_callback",
)


def _callback_lists() -> dict[str, list[Any]]:
    return {name: getattr(litellm, name) for name in CALLBACK_LISTS if isinstance(getattr(litellm, name, None), list)}


class CallbackSwitch:
    """Turns a variant's LiteLLM callbacks off and on again, in place, in every list LiteLLM keeps.

    ``ours`` tells the variant's entries (the string it registered and the logger objects).
    """

    def __init__(self, ours: Callable[[Any], bool]) -> None:
        self._ours = ours
        self._on: dict[str, list[Any]] = {}

    def off(self) -> None:
        self._on = {name: list(values) for name, values in _callback_lists().items()}
        for values in _callback_lists().values():
            values[:] = [value for value in values if not self._ours(value)]

    def on(self) -> None:
        for name, values in _callback_lists().items():
            values[:] = self._on.get(name, values)


@dataclass
class Target:
    """A variant in this process: ``acall``/``call`` with it on; ``off()`` makes it the bare Router."""

    variant: str
    acall: Callable[[int, dict[str, Any]], Awaitable[Any]]
    call: Callable[[int, dict[str, Any]], Any]
    acall_bare: Callable[[int, dict[str, Any]], Awaitable[Any]]
    call_bare: Callable[[int, dict[str, Any]], Any]
    off: Callable[[], None]
    on: Callable[[], None]
    tracer_provider: TracerProvider
    exporter: CountingExporter
    closers: list[Callable[[], None]] = field(default_factory=list)
    enabled: bool = True

    def enable(self, enabled: bool) -> None:
        """Switch the variant on (``True``) or back to the bare Router (``False``)."""
        if enabled != self.enabled:
            (self.on if enabled else self.off)()
            self.enabled = enabled

    def spans_exported(self) -> int:
        self.tracer_provider.force_flush()
        return self.exporter.spans

    def close(self) -> None:
        for closer in self.closers:
            closer()
        self.tracer_provider.shutdown()


def _router_calls(
    router: Any,
) -> tuple[Callable[[int, dict[str, Any]], Awaitable[Any]], Callable[[int, dict[str, Any]], Any]]:
    async def acall(_: int, extra: dict[str, Any]) -> Any:
        return await router.acompletion(model=GROUP, messages=MESSAGES, max_tokens=MAX_TOKENS, **extra)

    def call(_: int, extra: dict[str, Any]) -> Any:
        return router.completion(model=GROUP, messages=MESSAGES, max_tokens=MAX_TOKENS, **extra)

    return acall, call


def _otel_target(base_url: str) -> Target:
    # LiteLLM's OpenTelemetry logger reuses the global SDK provider when one is set
    # (litellm/integrations/opentelemetry.py, _get_or_create_provider): same sink as the others.
    provider, exporter = sdk_tracer_provider()
    trace.set_tracer_provider(provider)
    litellm.callbacks = ["otel"]
    acall, call = _router_calls(build_litellm_router(parse_router_config(router_config(base_url))))
    switch = CallbackSwitch(lambda value: value == "otel" or isinstance(value, OpenTelemetry))
    return Target("litellm_otel", acall, call, acall, call, switch.off, switch.on, provider, exporter)


def _openinference_target(base_url: str) -> Target:
    provider, exporter = sdk_tracer_provider()
    instrumentor = LiteLLMInstrumentor()
    acall, call = _router_calls(build_litellm_router(parse_router_config(router_config(base_url))))

    def on() -> None:
        instrumentor.instrument(tracer_provider=provider)

    on()
    return Target("openinference", acall, call, acall, call, instrumentor.uninstrument, on, provider, exporter)


def _costrouter_target(variant: str, base_url: str, redis_url: str | None) -> Target:
    provider, exporter = sdk_tracer_provider()
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    budgets = None
    if variant == "costrouter_memory":
        budgets = budget_policy("memory", None)
    elif variant == "costrouter_redis":
        budgets = budget_policy("redis", redis_url)
    router = CostRouter(
        router_config(base_url), budgets=budgets, tracer_provider=provider, meter_provider=meter_provider
    )

    async def acall(i: int, extra: dict[str, Any]) -> Any:
        return await router.aroute_completion(
            GROUP, MESSAGES, session_id=f"session-{i % SESSIONS}", max_tokens=MAX_TOKENS, **extra
        )

    def call(i: int, extra: dict[str, Any]) -> Any:
        return router.route_completion(
            GROUP, MESSAGES, session_id=f"session-{i % SESSIONS}", max_tokens=MAX_TOKENS, **extra
        )

    # Off: the very Router that CostRouter built, without costrouter's LiteLLM callback.
    acall_bare, call_bare = _router_calls(router.litellm_router)
    switch = CallbackSwitch(lambda value: isinstance(value, AttemptTracker))
    target = Target(variant, acall, call, acall_bare, call_bare, switch.off, switch.on, provider, exporter)
    target.closers += [router.shutdown, meter_provider.shutdown]
    return target


def build(variant: str, base_url: str, redis_url: str | None) -> Target:
    """Set up ``variant`` (on) in this fresh process."""
    if variant == "litellm_otel":
        return _otel_target(base_url)
    if variant == "openinference":
        return _openinference_target(base_url)
    if variant in ("costrouter", "costrouter_memory", "costrouter_redis"):
        return _costrouter_target(variant, base_url, redis_url)
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANT_NAMES)}")


def request_extra(transport: str) -> dict[str, Any]:
    """Per-call keyword arguments of a transport: HTTP to the double, or LiteLLM's mock."""
    if transport == "mock":
        return {"mock_response": MOCK_TEXT}
    if transport == "http":
        return {}
    raise ValueError(f"unknown transport {transport!r}")
