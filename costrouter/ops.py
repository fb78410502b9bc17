"""The I/O requests a routed call's flow yields, and the two drivers that run them.

A flow is a generator: it decides everything (estimate, which budgets, what to
record) and yields the few things that need I/O, a budget-store call or the
LiteLLM Router call. ``drive`` runs them synchronously, ``adrive`` with ``await``;
nothing else differs between the sync and async paths (as tenacity and httpx do).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class StoreOp:
    """Call ``store.<method>(*args, **kwargs)`` (or ``store.a<method>`` when async)."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteOp:
    """Call the LiteLLM Router's ``method`` (or ``a<method>`` when async) with ``kwargs``.

    ``through_loop``: the sync driver awaits ``a<method>`` on a loop thread instead.
    """

    kwargs: dict[str, Any]
    method: str = "completion"
    through_loop: bool = False


@dataclass(frozen=True)
class SleepOp:
    """Wait ``seconds`` (``time.sleep`` or ``asyncio.sleep``), as between two tries of a settle."""

    seconds: float


@dataclass(frozen=True)
class WaitOp:
    """Wait for ``future`` (set by another thread or task) and resume with its result.

    The future must be running (``set_running_or_notify_cancel``), so that a waiter that
    is cancelled cannot cancel it for the others. A wait past ``timeout`` raises
    ``TimeoutError`` into the flow: a sync waiter on an event loop's own thread would
    otherwise wait for a task of that loop for ever.
    """

    future: Future[Any]
    timeout: float


Op = StoreOp | RouteOp | SleepOp | WaitOp
Flow = Generator[Op, Any, T]


def _advance(flow: Flow[T], value: Any, error: BaseException | None) -> tuple[bool, Any]:
    """Resume ``flow`` with the last op's value or error: ``(finished, next op or result)``."""
    try:
        return False, (flow.send(value) if error is None else flow.throw(error))
    except StopIteration as done:
        return True, done.value


def drive(flow: Flow[T], execute: Callable[[Op], Any]) -> T:
    """Run ``flow`` to its end, executing each op synchronously."""
    value: Any = None
    error: BaseException | None = None
    while True:
        finished, item = _advance(flow, value, error)
        if finished:
            return item  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = execute(item)
        except BaseException as exc:  # handed back to the flow, which decides
            error = exc


async def through_cancellation(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even when the task is cancelled meanwhile.

    For the budget work that follows a cancellation (the settle must run, or the hold
    is lost): it runs in a shielded task, and further cancellations of the caller are
    absorbed until it is done. The caller re-raises the first cancellation itself.
    """
    task = asyncio.ensure_future(awaitable)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            if task.done():
                return task.result()


def wait(op: WaitOp) -> Any:
    """Execute a :class:`WaitOp` synchronously."""
    return op.future.result(op.timeout)


async def await_wait(op: WaitOp) -> Any:
    """Execute a :class:`WaitOp` in a task (the future may be set from any thread or loop)."""
    return await asyncio.wait_for(asyncio.wrap_future(op.future), op.timeout)


async def adrive(flow: Flow[T], execute: Callable[[Op], Awaitable[Any]]) -> T:
    """Run ``flow`` to its end, awaiting each op.

    Once an op was cancelled, the flow's remaining ops (its settle or release) run
    through :func:`through_cancellation`; the flow then re-raises the cancellation.
    """
    value: Any = None
    error: BaseException | None = None
    cancelled = False
    while True:
        finished, item = _advance(flow, value, error)
        if finished:
            return item  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = await (through_cancellation(execute(item)) if cancelled else execute(item))
        except BaseException as exc:  # handed back to the flow, which decides
            error = exc
            cancelled = cancelled or isinstance(exc, asyncio.CancelledError)
