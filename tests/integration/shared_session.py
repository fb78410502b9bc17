"""Four worker processes of 50 concurrent async calls on one session budget in one Redis.

The harness of the concurrency tests: it starts the workers (``tests.workers.concurrent_calls``)
against a provider double, then reads the books back from Redis, so each test states only
what it varies (the provider's token count, the prompt, the limit) and checks the same books.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from costrouter.budget import BudgetPolicy
from costrouter.budget.redis import RedisBudgetStore
from costrouter.budget.store import BudgetStatus
from costrouter.money import usd_to_units
from costrouter.testing import ProviderDouble, Reply
from tests.workers.processes import run_workers

PROCESSES = 4
CALLS_PER_PROCESS = 50


@dataclass(frozen=True)
class SharedSessionRun:
    """What the workers reported, what the provider saw, and the session's books in Redis."""

    limit_usd: float
    completed: int
    rejected: int
    settled_units: list[int]
    requests_seen: int
    status: BudgetStatus

    def summary(self, label: str) -> str:
        calls = PROCESSES * CALLS_PER_PROCESS
        return (
            f"{label}: {calls} calls, {self.completed} completed, {self.rejected} rejected, "
            f"limit {usd_to_units(self.limit_usd)} units, spent {self.status.spent_units} units"
        )


def run_shared_session(
    redis_url: str,
    *,
    limit_usd: float,
    reply: Reply,
    prompt_token_factor: float | None = None,
    repeat: int = 1,
    max_tokens: int = 20,
) -> SharedSessionRun:
    """Run the workers on ``shared-session`` (a fresh key prefix) and read the books back."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    with ProviderDouble(prompt_token_factor=prompt_token_factor) as provider:
        provider.set_default("fast-model", reply)
        arguments = [provider.base_url, redis_url, prefix, str(limit_usd), str(CALLS_PER_PROCESS)]
        results = run_workers("tests.workers.concurrent_calls", [*arguments, str(repeat), str(max_tokens)], PROCESSES)
        requests_seen = provider.request_count("fast-model")

    policy = BudgetPolicy.model_validate(
        {
            "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
            "budgets": [{"scope": "session", "limit_usd": limit_usd, "window": "total"}],
        }
    )
    (budget,) = policy.budgets_for(session_id="shared-session")
    with RedisBudgetStore(policy.store) as store:
        status = store.status(budget)
    return SharedSessionRun(
        limit_usd=limit_usd,
        completed=sum(result["completed"] for result in results),
        rejected=sum(result["rejected"] for result in results),
        settled_units=[amount for result in results for amount in result["settled_units"]],
        requests_seen=requests_seen,
        status=status,
    )


def assert_books_balance(run: SharedSessionRun) -> None:
    """Nothing lost, the limit bit, no refusal reached the provider, and no overspend."""
    assert run.completed + run.rejected == PROCESSES * CALLS_PER_PROCESS  # nothing lost
    assert run.completed > 0
    assert run.rejected > 0  # the limit really did bite
    assert run.requests_seen == run.completed  # every rejection happened before the provider
    assert len(run.settled_units) == run.completed
    assert run.status.spent_units == sum(run.settled_units)  # nothing counted twice, nothing missed
    assert run.status.spent_units <= usd_to_units(run.limit_usd)  # zero overspend
    assert run.status.held_units == 0
