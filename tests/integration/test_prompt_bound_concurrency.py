"""No overspend when the provider counts 1.5x tiktoken: 4 processes x 50 concurrent async calls."""

from __future__ import annotations

from costrouter.testing import Reply
from tests.integration.shared_session import assert_books_balance, run_shared_session

REPEAT = 40  # about 240 tiktoken tokens of prompt: the prompt, not the answer, dominates the cost
MAX_TOKENS = 20


def test_a_provider_counting_more_than_tiktoken_cannot_push_a_session_over_its_limit(redis_url: str) -> None:
    # Every answer uses its whole max_tokens, and a little latency keeps many holds alive at once.
    run = run_shared_session(
        redis_url,
        limit_usd=0.03,
        reply=Reply(completion_tokens=MAX_TOKENS, delay=0.05),
        prompt_token_factor=1.5,
        repeat=REPEAT,
        max_tokens=MAX_TOKENS,
    )
    print("\n" + run.summary("1.5x tokenizer"))
    assert_books_balance(run)
