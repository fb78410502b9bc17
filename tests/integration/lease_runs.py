"""Processes sharing one budget through leases: the run, its books and its false refusals.

Each worker process opens a :class:`LeasedStore` and runs ``tasks`` concurrent tasks;
each task makes calls (reserve the estimate, settle an actual cost at or below it)
until its first refusal. When every process is done and has given its lease back, the
books are read from Redis. Shared by ``test_budget_leases.py`` and
``benchmarks/lease_bench.py``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass

from costrouter.budget.leases import LeasedStore
from costrouter.budget.redis import RedisBudgetStore
from costrouter.config.budget_ref import GLOBAL_SCOPE_ID, BudgetRef
from costrouter.config.budgets import LeaseSettings, StoreConfig
from costrouter.config.windows import parse_window
from tests.integration.budget_backends import worker_context

ESTIMATE = 500
"""Every call's hold, in units."""


def budget(scope: str, limit_calls: int) -> BudgetRef:
    """A budget of ``limit_calls`` estimates, for one session or the global scope."""
    return BudgetRef(
        name=f"{scope}-leased",
        scope=scope,
        scope_id=GLOBAL_SCOPE_ID if scope == "global" else "shared-session",
        window=parse_window("total"),
        limit_units=limit_calls * ESTIMATE,
    )


def actual(call_id: str) -> int:
    """A deterministic actual cost between half the estimate and the estimate."""
    return random.Random(call_id).randint(ESTIMATE // 2, ESTIMATE)


@dataclass(frozen=True)
class WorkerBooks:
    """One process's view: what it was charged, how many calls were served and refused."""

    charged: int
    served: int
    refused: int
    messages: int


async def _worker(url: str, prefix: str, scope: str, limit_calls: int, tasks: int, lease: LeaseSettings) -> WorkerBooks:
    config = StoreConfig(backend="redis", key_prefix=prefix, lease=lease, journal_dir=None)
    ref = budget(scope, limit_calls)
    store = LeasedStore(RedisBudgetStore(config, url=url))
    charged, served, refused = 0, 0, 0
    cap = 2 * limit_calls + 10

    async def task(number: int) -> None:
        nonlocal charged, served, refused
        for index in range(cap):
            call_id = f"{uuid.uuid4().hex[:8]}-{number}-{index}"
            if not (await store.areserve(ref, call_id, ESTIMATE, enforce=True)).granted:
                refused += 1
                return
            await asyncio.sleep(0)
            cost = actual(call_id)
            await store.asettle(ref, call_id, cost)
            charged += cost
            served += 1

    try:
        await asyncio.gather(*(task(n) for n in range(tasks)))
    finally:
        await store.aclose()
    return WorkerBooks(charged, served, refused, store.messages)


def run_worker(arguments: tuple[str, str, str, int, int, LeaseSettings]) -> WorkerBooks | str:
    """One worker process's run; an error comes back as text."""
    try:
        return asyncio.run(_worker(*arguments))
    except Exception as exc:
        return repr(exc)


@dataclass(frozen=True)
class RunBooks:
    """The books of one run, read from Redis after every process gave its lease back."""

    scope: str
    limit_calls: int
    processes: int
    spent: int
    held: int
    charged: int
    served: int
    refused: int
    messages: int
    lease: LeaseSettings

    @property
    def limit(self) -> int:
        return self.limit_calls * ESTIMATE

    @property
    def false_refusals(self) -> int:
        """Refusals the budget could still have covered at the end (its unspent room, in estimates)."""
        return min(self.refused, (self.limit - self.spent) // ESTIMATE)

    @property
    def false_refusal_bound(self) -> int:
        """From the sizing rule: a refusal leaves less than one estimate plus the other leases' spare room."""
        return (self.processes - 1) * self.lease.max_calls

    @property
    def calls(self) -> int:
        return self.served + self.refused


def run(
    url: str, scope: str, limit_calls: int, *, processes: int = 4, tasks: int = 50, lease: LeaseSettings
) -> RunBooks:
    """``processes`` processes x ``tasks`` concurrent tasks on one budget; the books afterwards."""
    prefix = f"l{uuid.uuid4().hex[:10]}"
    with worker_context().Pool(processes) as pool:
        results = pool.map(run_worker, [(url, prefix, scope, limit_calls, tasks, lease)] * processes)
    errors = [result for result in results if isinstance(result, str)]
    if errors:
        raise RuntimeError(f"workers failed: {errors}")
    books = [result for result in results if not isinstance(result, str)]
    with RedisBudgetStore(StoreConfig(backend="redis", key_prefix=prefix), url=url) as store:
        status = store.status(budget(scope, limit_calls))
    return RunBooks(
        scope=scope,
        limit_calls=limit_calls,
        processes=processes,
        spent=status.spent_units,
        held=status.held_units,
        charged=sum(b.charged for b in books),
        served=sum(b.served for b in books),
        refused=sum(b.refused for b in books),
        messages=sum(b.messages for b in books),
        lease=lease,
    )
