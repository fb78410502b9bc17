"""The I/O requests a routed call's flow yields, and the two drivers that run them.

A flow is a generator: it decides everything (estimate, which budgets, what to
record) and yields the few things that need I/O, a budget-store call or the
LiteLLM Router call. ``drive`` runs them synchronously, ``adrive`` with ``await``;
nothing else differs between the sync and async paths (as tenacity and httpx do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
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
    """Call the LiteLLM Router's ``completion`` (or ``acompletion``) with ``kwargs``."""

    kwargs: dict[str, Any]


@dataclass(frozen=True)
class SleepOp:
    """Wait ``seconds`` (``time.sleep`` or ``asyncio.sleep``), as between two tries of a settle."""

    seconds: float


Op = StoreOp | RouteOp | SleepOp
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


async def adrive(flow: Flow[T], execute: Callable[[Op], Awaitable[Any]]) -> T:
    """Run ``flow`` to its end, awaiting each op."""
    value: Any = None
    error: BaseException | None = None
    while True:
        finished, item = _advance(flow, value, error)
        if finished:
            return item  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = await execute(item)
        except BaseException as exc:  # handed back to the flow, which decides
            error = exc
