"""A worker process whose settles the store refuses: it journals them, then dies by SIGKILL.

Usage: python -m tests.workers.journal_then_die REDIS_URL KEY_PREFIX JOURNAL_DIR

One routed call reserves, reaches its provider (a double in this process, slow on
purpose), and meanwhile the script forbids EVAL/EVALSHA to the default Redis user, so
the settle is refused and journaled. The worker prints the journal's pending count and
the call's priced cost as JSON, then kills itself without any shutdown.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import redis

from costrouter import CostRouter
from costrouter.money import usd_to_units
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from tests.routing import expected_cost, router_config

MESSAGES = [{"role": "user", "content": "a call whose settle outlives its process"}]
BLOCK_SCRIPTS = ("ACL", "SETUSER", "default", "-eval", "-evalsha", "-eval_ro", "-evalsha_ro")


def main(redis_url: str, prefix: str, journal_dir: str) -> None:
    capture = TelemetryCapture()
    policy = {
        "store": {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": prefix,
            "journal_dir": journal_dir,
            "lease": {"enabled": False},  # the per-call path: each refused settle is journaled by its call
        },
        "budgets": [{"scope": "session", "limit_usd": 1.0}, {"scope": "global", "limit_usd": 10.0}],
    }
    with ProviderDouble() as provider:
        provider.set_default("fast-model", Reply(completion_tokens=8, delay=0.5))
        router = CostRouter(router_config(provider.base_url), budgets=policy, tracer_provider=capture.tracer_provider)
        priced: list[int] = []

        def call() -> None:
            response = router.route_completion("fast", MESSAGES, max_tokens=20, session_id="dying")
            usage = response.usage
            priced.append(usd_to_units(expected_cost("fast-primary", usage.prompt_tokens, usage.completion_tokens)))

        thread = threading.Thread(target=call)
        thread.start()
        while provider.request_count() == 0:  # the holds are taken once the provider has the request
            time.sleep(0.01)
        with redis.Redis.from_url(redis_url) as admin:  # ACL stays allowed to the default user
            admin.execute_command(*BLOCK_SCRIPTS)
        thread.join()
        assert router.guard is not None
        count, micros = router.guard.pending()
        print(json.dumps({"priced": priced, "pending": count, "pending_units": micros}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(*sys.argv[1:4])
