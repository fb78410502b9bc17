"""A shut-down or dropped CostRouter leaves nothing of its LiteLLM Router in LiteLLM's process-wide hook lists.

Before, every router built in a process kept its LiteLLM Router's success hooks in LiteLLM's
lists for good (LiteLLM 1.106 puts bound methods of the Router there), so each later call, through
any router, ran every dead router's hooks: a test module of 46 tests left 45 behind, each copying
the model's price entry on every later call. costrouter now calls ``Router.retire()`` (LiteLLM
1.110) or ``Router.discard()`` (before) at shutdown, and when a dropped router is collected.
"""

from __future__ import annotations

import gc
from typing import Any

import litellm

from costrouter import CostRouter
from costrouter.otel.attempts import attempt_tracker
from costrouter.testing import ProviderDouble, TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "hello"}]
LISTS = (
    "input_callback",
    "success_callback",
    "_async_success_callback",
    "failure_callback",
    "_async_failure_callback",
    "callbacks",
    "service_callback",
)


def _snapshot() -> dict[str, list[Any]]:
    attempt_tracker()  # costrouter's own process-wide tracker, registered once: part of the baseline
    return {name: list(getattr(litellm, name)) for name in LISTS}


def _added_since(before: dict[str, list[Any]]) -> dict[str, int]:
    """How many entries of each LiteLLM list were not there in ``before``."""
    added = {}
    for name in LISTS:
        new = [hook for hook in getattr(litellm, name) if not any(hook is old for old in before[name])]
        if new:
            added[name] = len(new)
    return added


def _router(provider: ProviderDouble, capture: TelemetryCapture) -> CostRouter:
    return CostRouter(
        router_config(provider.base_url), tracer_provider=capture.tracer_provider, meter_provider=capture.meter_provider
    )


def test_shutdown_takes_the_litellm_routers_hooks_out(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    before = _snapshot()
    routed = _router(provider, capture)
    routed.route_completion("fast", MESSAGES, max_tokens=5)

    routed.shutdown()

    assert _added_since(before) == {}
    routed.shutdown()  # twice is harmless
    assert _added_since(before) == {}


def test_a_router_dropped_without_shutdown_is_unhooked_when_collected(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    before = _snapshot()
    routed = _router(provider, capture)
    routed.route_completion("fast", MESSAGES, max_tokens=5)

    del routed
    gc.collect()

    assert _added_since(before) == {}


def test_routers_shut_down_before_leave_a_live_router_serving_with_its_own_hooks_only(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    before = _snapshot()
    for _ in range(5):
        _router(provider, capture).shutdown()
    assert _added_since(before) == {}
    live = _router(provider, capture)
    try:
        own = _added_since(before)
        calls_before = len(provider.requests)
        live.route_completion("fast", MESSAGES, max_tokens=5)
        assert len(provider.requests) == calls_before + 1
        assert _added_since(before) == own, "a call keeps the live router's hooks, and only those"
    finally:
        live.shutdown()
    assert _added_since(before) == {}
