"""No overspend under concurrency: 4 processes x 50 concurrent async calls on one session."""

from __future__ import annotations

from costrouter.testing import Reply
from tests.integration.shared_session import assert_books_balance, run_shared_session


def test_four_processes_of_fifty_concurrent_calls_never_overspend(redis_url: str) -> None:
    # A little latency keeps many holds alive at once, which is what makes overspend possible.
    run = run_shared_session(redis_url, limit_usd=0.003, reply=Reply(completion_tokens=10, delay=0.05))
    print("\n" + run.summary("concurrency"))
    assert_books_balance(run)
