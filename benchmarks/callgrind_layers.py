"""Route costrouter's layers through cgmark's named trampolines, for callgrind's inclusive costs.

Only the breakdown block of a worker installs these wrappers (they add a little Python of
their own, so the headline blocks run without them). A layer entered while another is
running is counted in the outer one, except token counting, which is nested on purpose
inside the estimate (its own row, not subtracted twice).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Generator
from typing import Any

from costrouter.budget.leases import LeasedStore
from costrouter.otel.attempts import AttemptTracker
from costrouter.otel.telemetry import Telemetry
from costrouter.routing.calls import CallPlanner
from costrouter.routing.operations import CHAT

LAYERS: tuple[tuple[int, str, str], ...] = (
    (0, "spans", "spans + attributes (start and end of the call span, attempt spans)"),
    (1, "metrics", "metric recording (duration, tokens, cost, calls, attempts, budget decisions)"),
    (2, "estimate", "estimate (reachable prices, prompt token bound, output cap)"),
    (3, "store", "budget store ops (client side, from the call's coroutine)"),
    (4, "tracker", "attempt tracking (costrouter's LiteLLM callback)"),
    (5, "tokens", "prompt token counting (inside the estimate)"),
    (6, "lease", "lease messages of the background thread (default store: tend, flush, give back)"),
    (7, "lease_redis", "redis-py sending those messages and reading their replies (inside the lease messages)"),
)
TOP_LEVEL = (0, 1, 2, 3, 4, 6)
"""Layers that never nest in one another; ``tokens`` is a part of ``estimate``, ``lease_redis`` of ``lease``."""
NESTED = (5, 7)

_threads = threading.local()


def _active() -> list[int]:
    """The layers running in this thread (the lease thread's run beside the call's)."""
    active: list[int] | None = getattr(_threads, "active", None)
    if active is None:
        active = _threads.active = []
    return active


def _through(cgmark: Any, index: int, fn: Callable[..., Any]) -> Callable[..., Any]:
    nested = index in NESTED

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        active = _active()
        if (active and not nested) or (nested and index in active) or (index == 7 and 6 not in active):
            return fn(*args, **kwargs)
        active.append(index)
        try:
            return cgmark.layer(index, functools.partial(fn, *args, **kwargs))
        finally:
            active.pop()

    return wrapper


class _Stepped:
    """Awaits a coroutine, each of its steps run through a layer trampoline."""

    def __init__(self, cgmark: Any, index: int, coroutine: Any) -> None:
        self._cgmark, self._index, self._coroutine = cgmark, index, coroutine

    def __await__(self) -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        while True:
            step = self._coroutine.send if error is None else self._coroutine.throw
            argument = value if error is None else error
            active = _active()
            active.append(self._index)
            try:
                yielded = self._cgmark.layer(self._index, step, argument)
            except StopIteration as done:
                return done.value
            finally:
                active.pop()
            try:
                value, error = (yield yielded), None
            except BaseException as exc:
                value, error = None, exc


def _through_async(cgmark: Any, index: int, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await _Stepped(cgmark, index, fn(*args, **kwargs))

    return wrapper


def install(cgmark: Any, router: Any) -> None:
    """Wrap the layers of ``router`` (a CostRouter) in this process."""
    for name in ("start_call_span", "end_call_span"):
        setattr(Telemetry, name, _through(cgmark, 0, getattr(Telemetry, name)))
    Telemetry.record_metrics = _through(cgmark, 1, Telemetry.record_metrics)  # type: ignore[method-assign]
    CallPlanner._record_budget_metric = _through(cgmark, 1, CallPlanner._record_budget_metric)  # type: ignore[method-assign]
    CallPlanner._estimate_units = _through(cgmark, 2, CallPlanner._estimate_units)  # type: ignore[method-assign]
    object.__setattr__(CHAT, "prompt_tokens", _through(cgmark, 5, CHAT.prompt_tokens))
    for name in ("log_pre_api_call", "log_failure_event"):
        setattr(AttemptTracker, name, _through(cgmark, 4, getattr(AttemptTracker, name)))
    store = router.store
    if isinstance(store, LeasedStore):
        for name in ("tend", "flush", "drain"):
            setattr(store, name, _through(cgmark, 6, getattr(store, name)))
        store.inner.run_script = _through(cgmark, 7, store.inner.run_script)  # type: ignore[method-assign]
        store.inner.run_script_batch = _through(cgmark, 7, store.inner.run_script_batch)  # type: ignore[method-assign]
    if store is not None:
        for name in dir(type(store)):
            method = getattr(store, name, None)
            if name.startswith("a") and inspect.iscoroutinefunction(method):
                setattr(store, name, _through_async(cgmark, 3, method))
