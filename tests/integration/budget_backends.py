"""The budget store backends under test, with a way to move time on each.

The memory store gets a fake clock that tests move; Redis uses its own clock, so
"moving time" there means sleeping (only ever for a TTL of a second or so).
``redis-cluster`` is a real three-master cluster on loopback, started once per test
session (``tests/conftest.py``), with ``store.cluster: true``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from costrouter.budget.memory import MemoryBudgetStore
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.store import BudgetStore
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import StoreConfig
from costrouter.config.windows import parse_window

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis"),
    pytest.param("redis-cluster", id="redis-cluster"),
]
REDIS_KINDS = ("redis", "redis-cluster")


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    """Makes stores of one kind, each with a key prefix of its own, and closes them."""

    kind: str
    redis_url: str | None = None
    clock: FakeClock = field(default_factory=FakeClock)
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:12]}")
    stores: list[BudgetStore] = field(default_factory=list)

    def store(self, **config: Any) -> BudgetStore:
        if self.kind == "redis-cluster":
            config.setdefault("cluster", True)
        backend = "redis" if self.kind in REDIS_KINDS else "memory"
        settings = StoreConfig(backend=backend, key_prefix=self.prefix, **config)
        made: BudgetStore
        if self.kind in REDIS_KINDS:
            made = RedisBudgetStore(settings, url=self.redis_url)
        else:
            made = MemoryBudgetStore(settings, clock=self.clock)
        self.stores.append(made)
        return made

    def advance(self, seconds: float) -> None:
        if self.kind in REDIS_KINDS:
            time.sleep(seconds)
        else:
            self.clock.advance(seconds)

    def close(self) -> None:
        for made in self.stores:
            made.close()


def worker_context() -> multiprocessing.context.ForkServerContext:
    """A multiprocessing context whose workers start with costrouter already imported.

    Importing costrouter (and so LiteLLM) takes seconds; the fork server does it once.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def make_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The body of a ``backend`` fixture parametrized with :data:`BACKENDS`."""
    fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster_url"}.get(request.param)
    url = request.getfixturevalue(fixture) if fixture is not None else None
    backend = Backend(request.param, redis_url=url)
    try:
        yield backend
    finally:
        backend.close()


def ref(
    limit: int = 1000,
    *,
    scope_id: str = "s1",
    window: str = "total",
    alert_at: tuple[float, ...] = (),
    name: str = "session-total",
) -> BudgetRef:
    """A session budget instance of ``limit`` units."""
    return BudgetRef(
        name=name,
        scope="session",
        scope_id=scope_id,
        window=parse_window(window),
        limit_units=limit,
        alert_at=alert_at,
    )
