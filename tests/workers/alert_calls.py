"""A worker process: concurrent routed calls of one session whose budget alerts go to a webhook.

Usage: python -m tests.workers.alert_calls BASE_URL REDIS_URL KEY_PREFIX HOOK_URL CALLS LEASES

LEASES is ``1`` for the default store (leases: alerts fire when a lease message carries the
spend, so the store is closed, which carries it all, before the alerts are flushed) or ``0``
for the per-call path (``lease.enabled: false``).

Builds a router with :func:`alert_policy` (a Redis store shared by every worker of a key
prefix), prints ``ready`` and waits for a line on stdin, so that the workers of a test start
their calls together; then makes ``CALLS`` concurrent calls, waits for its alerts to be
delivered, and prints one JSON line with its delivery counts.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

from costrouter import CostRouter
from costrouter.testing import TelemetryCapture
from tests.routing import router_config

MESSAGES = [{"role": "user", "content": "one call that spends a shared budget"}]
SESSION = "shared-session"
THRESHOLDS = (0.25, 0.5, 0.75, 1.0)
LIMIT_USD = 0.0003
"""About ten calls of the provider double's answer: the calls of two workers cross every threshold."""


def alert_policy(redis_url: str, prefix: str, hook_url: str, *, leases: bool = True) -> dict[str, Any]:
    """One session budget on Redis that alerts at each of :data:`THRESHOLDS` and lets calls go on."""
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix, "lease": {"enabled": leases}},
        "budgets": [
            {
                "name": "shared",
                "scope": "session",
                "limit_usd": LIMIT_USD,
                "on_exceeded": "warn",
                "alert_at": list(THRESHOLDS),
            }
        ],
        "alerts": {"sinks": [{"type": "webhook", "url": hook_url}], "backoff_seconds": 0.05},
    }


async def main(base_url: str, redis_url: str, prefix: str, hook_url: str, calls: int, leases: bool) -> dict[str, Any]:
    """Wait for the go line, make the calls, deliver the alerts; the delivery counts."""
    capture = TelemetryCapture()
    router = CostRouter(
        router_config(base_url),
        budgets=alert_policy(redis_url, prefix, hook_url, leases=leases),
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await asyncio.gather(
        *(router.aroute_completion("fast", MESSAGES, max_tokens=20, session_id=SESSION) for _ in range(calls))
    )
    if router.store is not None:
        await router.store.aclose()
    delivered = router.alerts.flush()
    stats = asdict(router.alerts.stats)
    router.shutdown()
    return {"flushed": delivered, **stats}


if __name__ == "__main__":
    base, url, key_prefix, hook, count, lease = sys.argv[1:7]
    print(json.dumps(asyncio.run(main(base, url, key_prefix, hook, int(count), lease == "1"))))
