"""A worker process: a burst of N concurrent async routed calls, with the default store settings.

Usage: python -m tests.workers.burst_calls BASE_URL REDIS_URL KEY_PREFIX CALLS [STORE_JSON]

Each call is charged to one of 16 sessions (shared by every worker of a key prefix), a
shared team and a global budget; the session limits refuse about a quarter of the calls.
Prints one JSON line: how many calls completed, were refused by a budget, or hit a budget
store error (and the first errors' text), and the settled micro-dollars of each
completed call as its span reports them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from costrouter import BudgetExceededError, BudgetStoreError, CostRouter
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "one call of a burst"}]
TEAM = "burst-team"
SESSIONS = 16
SESSION_LIMIT_USD = 0.0012
"""About 36 calls of the provider double's answer (32 micro-USD), of the 48 a session gets from 3 workers."""


def session_of(prefix: str, index: int) -> str:
    """The session id of call ``index`` of a burst."""
    return f"{prefix}-s{index % SESSIONS}"


def burst_policy(redis_url: str, prefix: str, store: dict[str, Any] | None = None) -> dict[str, Any]:
    """The policy of every burst worker: session, team and global budgets on Redis, default settings."""
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix, **(store or {})},
        "budgets": [
            {"scope": "session", "limit_usd": SESSION_LIMIT_USD, "window": "total"},
            {"scope": "team", "limit_usd": 100.0, "window": "total"},
            {"scope": "global", "limit_usd": 100.0, "window": "1d"},
        ],
    }


async def main(base_url: str, redis_url: str, prefix: str, calls: int, store: dict[str, Any]) -> dict[str, Any]:
    """Run the burst and summarise it."""
    capture = TelemetryCapture()
    policy = burst_policy(redis_url, prefix, store)
    router = CostRouter(router_config(base_url), budgets=policy, tracer_provider=capture.tracer_provider)
    errors: list[str] = []

    async def one(index: int) -> str:
        try:
            await router.aroute_completion(
                "fast", MESSAGES, max_tokens=20, session_id=session_of(prefix, index), team_id=TEAM
            )
        except BudgetExceededError:
            return "rejected"
        except BudgetStoreError as exc:
            errors.append(str(exc))
            return "store_error"
        return "completed"

    outcomes = await asyncio.gather(*(one(i) for i in range(calls)))
    settled = [
        usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
        for span in capture.call_spans()
        if span.attributes and span.attributes.get(sc.BUDGET_OUTCOME) == "allowed"
    ]
    store_events = sum(
        1 for span in capture.call_spans() for event in span.events if event.name == sc.EVENT_STORE_ERROR
    )
    if router.store is not None:
        await router.store.aclose()
    router.shutdown()
    return {
        "completed": outcomes.count("completed"),
        "rejected": outcomes.count("rejected"),
        "store_errors": outcomes.count("store_error"),
        "store_error_events": store_events,
        "first_errors": errors[:5],
        "settled_units": settled,
    }


if __name__ == "__main__":
    base, url, key_prefix, count = sys.argv[1:5]
    overrides = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    print(json.dumps(asyncio.run(main(base, url, key_prefix, int(count), overrides))))
