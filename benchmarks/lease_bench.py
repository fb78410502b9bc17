"""Leases under contention: 4 processes x 50 concurrent calls on one budget, at limits of 5 to 5,000 calls.

    uv run --locked python benchmarks/lease_bench.py [--limits 5 50 500 5000] [--processes 4]

Each task of each process calls until its first refusal (see
``tests/integration/lease_runs.py``). A refusal is *false* when the budget could still
have covered the call: counted at the end as ``min(refusals, unspent // estimate)``, since
after the last refusal no call runs. The sizing rule bounds it by
``(processes - 1) x lease.max_calls`` (the other processes' spare room). Prints a table:
overspend (must be 0), false refusals and their rate, lease messages per served call.
"""

from __future__ import annotations

import argparse

from costrouter.config.budgets import LeaseSettings
from costrouter.testing.redis_server import RedisServer
from tests.integration import lease_runs


def main() -> None:
    """Run every scope and limit; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, nargs="+", default=[5, 50, 500, 5000])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    lease = LeaseSettings(enabled=True)
    server = RedisServer()
    server.start()
    try:
        print(
            "| scope | limit (calls) | served | refused | overspend µ$ | unspent µ$ | false refusals (bound) "
            "| false-refusal rate | messages / served call |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for scope in ("session", "global"):
            for limit in args.limits:
                books = lease_runs.run(
                    server.url, scope, limit, processes=args.processes, tasks=args.tasks, lease=lease
                )
                print(
                    f"| {scope} | {limit} | {books.served} | {books.refused} | {max(0, books.spent - books.limit)} "
                    f"| {books.limit - books.spent} | {books.false_refusals} ({books.false_refusal_bound}) "
                    f"| {books.false_refusals / books.calls:.2%} | {books.messages / max(1, books.served):.3f} |"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
