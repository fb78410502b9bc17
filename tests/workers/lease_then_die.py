"""A worker whose leased calls settled in memory only, then dies by SIGKILL.

Usage: python -m tests.workers.lease_then_die REDIS_URL KEY_PREFIX JOURNAL_DIR MODE

Three routed calls on one session with leases on (``flush_seconds`` far away, so no
message carries their spend). MODE ``unsent``: the worker dies with the spend only in
its journal. MODE ``carried``: a message carried the spend, but the process dies before
it marks the journal entries done (the journal is detached first). Prints the priced
costs and the journal's pending count as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from costrouter import CostRouter
from costrouter.budget.leases import LeasedStore
from costrouter.money import usd_to_units
from costrouter.testing import ProviderDouble, Reply
from tests.routing import expected_cost, router_config

MESSAGES = [{"role": "user", "content": "a leased call whose settle outlives its process"}]


def policy(redis_url: str, prefix: str, journal_dir: str) -> dict[str, object]:
    """Session and global budgets on Redis, with leases that no timer flushes during the run."""
    return {
        "store": {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": prefix,
            "journal_dir": journal_dir,
            "lease": {"enabled": True, "ttl_seconds": 3, "flush_seconds": 60, "idle_seconds": 3600},
        },
        "budgets": [{"scope": "session", "limit_usd": 1.0}, {"scope": "global", "limit_usd": 10.0}],
    }


def main(redis_url: str, prefix: str, journal_dir: str, mode: str) -> None:
    with ProviderDouble() as provider:
        provider.set_default("fast-model", Reply(completion_tokens=8))
        router = CostRouter(router_config(provider.base_url), budgets=policy(redis_url, prefix, journal_dir))
        priced: list[int] = []
        for _ in range(3):
            response = router.route_completion("fast", MESSAGES, max_tokens=20, session_id="dying")
            usage = response.usage
            priced.append(usd_to_units(expected_cost("fast-primary", usage.prompt_tokens, usage.completion_tokens)))
        store = router.store
        assert isinstance(store, LeasedStore)
        if mode == "carried":
            store.journal = None  # the message lands; the done marks never do
            store.drain()
        assert router.guard is not None
        count, micros = router.guard.pending()
        print(json.dumps({"priced": priced, "pending": count, "pending_units": micros}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(*sys.argv[1:5])
