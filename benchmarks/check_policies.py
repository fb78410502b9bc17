"""Every budget policy the Redis and store benchmarks build validates against today's config.

    uv run --locked --group bench python benchmarks/check_policies.py

``.ci/run`` runs only ``run.py --quick``; the other benchmarks run by hand (every one with a budget policy is
listed here, inline policies included). When ``limit_usd``
became at most $9 M (nano-dollar counters), ``far_redis_bench.py`` and ``lease_throughput.py``
still asked for $1e9 and failed at their first call, and nothing saw it until someone measured.
This builds each policy as its benchmark does (a placeholder Redis URL and journal directory;
nothing connects) and validates it, so such a change fails CI instead.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # the package-style benchmarks and the script-style ones

import callgrind_store  # noqa: E402
import journal_bench  # noqa: E402
import renewal_bench  # noqa: E402

from benchmarks import calltypes_bench, far_redis_bench, lease_throughput, proxy_bench, variants  # noqa: E402
from costrouter.budget import BudgetPolicy  # noqa: E402

URL = "redis://127.0.0.1:1/0"

POLICIES: dict[str, Callable[[], dict[str, Any]]] = {
    "variants.budget_policy (memory)": lambda: variants.budget_policy("memory", None),
    "variants.budget_policy (redis)": lambda: variants.budget_policy("redis", URL),
    "lease_throughput (defaults)": lambda: lease_throughput._policy(URL, lease=True),
    "lease_throughput (per call)": lambda: lease_throughput._policy(URL, lease=False),
    "far_redis_bench": lambda: far_redis_bench._policy(URL, str(Path(tempfile.gettempdir()) / "journal")),
    "callgrind_store": lambda: {
        **callgrind_store.POLICY,
        "store": {**callgrind_store.POLICY["store"], "redis_url": URL},
    },
    "journal_bench": lambda: journal_bench.POLICY,
    "proxy_bench (burst)": lambda: proxy_bench._policy(URL, "bench", proxy_bench.CAP_USD),
    "proxy_bench (latency)": lambda: proxy_bench._policy(URL, "lat", proxy_bench.LATENCY_LIMIT_USD),
    "calltypes_bench": lambda: calltypes_bench.BUDGETS,
    "renewal_bench (memory)": lambda: renewal_bench.MEMORY_POLICY,
    "renewal_bench (redis)": lambda: renewal_bench.redis_policy(URL),
}


def main() -> int:
    """Validate each policy; print what failed and return 1, else 0."""
    failed = 0
    for name, build in POLICIES.items():
        try:
            BudgetPolicy.model_validate(build())
        except ValueError as exc:
            failed += 1
            print(f"{name}: its budget policy no longer validates:\n{exc}", file=sys.stderr)
    print(f"{len(POLICIES) - failed} of {len(POLICIES)} benchmark budget policies validate")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
