"""A shut-down or dropped CostRouter leaves no hook of its LiteLLM Router in LiteLLM's process-wide lists.

Before, every router built in a process kept its LiteLLM Router's success hooks in LiteLLM's
lists for good, so each later call, through any router, ran every dead router's hooks: a test
module of 46 tests left 45 behind, each copying the model's price entry on every later call.
"""

from __future__ import annotations

import gc
from typing import Any

import litellm
from litellm import Router

from costrouter import CostRouter
from costrouter.testing import ProviderDouble, TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "hello"}]


def _hook_lists() -> dict[str, list[Any]]:
    return {
        "input_callback": litellm.input_callback,
        "success_callback": litellm.success_callback,
        "_async_success_callback": litellm._async_success_callback,
        "failure_callback": litellm.failure_callback,
        "_async_failure_callback": litellm._async_failure_callback,
        "callbacks": litellm.callbacks,
        "service_callback": litellm.service_callback,
    }


def _hooks_of(router: Router) -> dict[str, int]:
    """How many entries of each LiteLLM list are ``router``'s own (its bound methods or the Router itself)."""
    found = {}
    for name, hooks in _hook_lists().items():
        owned = sum(1 for hook in hooks if hook is router or getattr(hook, "__self__", None) is router)
        if owned:
            found[name] = owned
    return found


def _router(provider: ProviderDouble, capture: TelemetryCapture) -> CostRouter:
    return CostRouter(
        router_config(provider.base_url), tracer_provider=capture.tracer_provider, meter_provider=capture.meter_provider
    )


def test_shutdown_takes_the_litellm_routers_hooks_out(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    routed = _router(provider, capture)
    routed.route_completion("fast", MESSAGES, max_tokens=5)
    assert _hooks_of(routed.litellm_router), "the LiteLLM Router hooks itself in while it serves"

    routed.shutdown()

    assert _hooks_of(routed.litellm_router) == {}
    routed.shutdown()  # twice is harmless
    assert _hooks_of(routed.litellm_router) == {}


def test_a_router_dropped_without_shutdown_is_unhooked_when_collected(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    routed = _router(provider, capture)
    routed.route_completion("fast", MESSAGES, max_tokens=5)
    inner = routed.litellm_router
    assert _hooks_of(inner)

    del routed
    gc.collect()

    assert _hooks_of(inner) == {}


def test_routers_shut_down_before_leave_a_live_router_with_its_own_hooks_only(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    before = {name: len(hooks) for name, hooks in _hook_lists().items()}
    for _ in range(5):
        _router(provider, capture).shutdown()
    live = _router(provider, capture)
    try:
        own = _hooks_of(live.litellm_router)
        after = {name: len(hooks) for name, hooks in _hook_lists().items()}
        grown = {name: after[name] - before[name] for name in after if after[name] != before[name]}
        assert grown == own, "only the live router's hooks were added"

        calls_before = len(provider.requests)
        live.route_completion("fast", MESSAGES, max_tokens=5)
        assert len(provider.requests) == calls_before + 1
        assert _hooks_of(live.litellm_router) == own, "a call keeps the live router's hooks"
    finally:
        live.shutdown()
