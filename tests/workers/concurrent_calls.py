"""A worker process: N concurrent async routed calls on one session, results as JSON on stdout.

Usage: python -m tests.workers.concurrent_calls BASE_URL REDIS_URL KEY_PREFIX LIMIT_USD CALLS [REPEAT MAX_TOKENS]

REPEAT (default 1) repeats the prompt's text; MAX_TOKENS (default 20) caps each answer.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from costrouter import BudgetExceededError, CostRouter
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "one concurrent call of many"}]


async def main(
    base_url: str, redis_url: str, prefix: str, limit_usd: float, calls: int, repeat: int = 1, max_tokens: int = 20
) -> dict[str, Any]:
    messages = [{"role": "user", "content": " ".join([MESSAGES[0]["content"]] * repeat)}]
    capture = TelemetryCapture()
    policy = {
        # The store's defaults: a burst of 50 tasks per process on a busy machine must hold with them.
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
        "budgets": [{"scope": "session", "limit_usd": limit_usd, "window": "total"}],
    }
    router = CostRouter(router_config(base_url), budgets=policy, tracer_provider=capture.tracer_provider)

    async def one() -> str:
        try:
            await router.aroute_completion("fast", messages, max_tokens=max_tokens, session_id="shared-session")
        except BudgetExceededError:
            return "rejected"
        return "completed"

    outcomes = await asyncio.gather(*(one() for _ in range(calls)))
    settled = [
        usd_to_units(float(span.attributes[sc.BUDGET_SETTLED_USD]))  # type: ignore[arg-type,index]
        for span in capture.call_spans()
        if span.attributes and span.attributes.get(sc.BUDGET_OUTCOME) == "allowed"
    ]
    router.shutdown()
    return {
        "completed": outcomes.count("completed"),
        "rejected": outcomes.count("rejected"),
        "settled_units": settled,
    }


if __name__ == "__main__":
    base, redis_url, prefix, limit, count = sys.argv[1:6]
    extra = sys.argv[6:8]
    repeat = int(extra[0]) if extra else 1
    max_tokens = int(extra[1]) if len(extra) > 1 else 20
    print(json.dumps(asyncio.run(main(base, redis_url, prefix, float(limit), int(count), repeat, max_tokens))))
