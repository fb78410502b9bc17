"""No overspend when the provider counts 1.5x tiktoken: 4 processes x 50 concurrent async calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from costrouter.budget import BudgetPolicy
from costrouter.budget.redis import RedisBudgetStore
from costrouter.money import usd_to_micros
from costrouter.testing import ProviderDouble, Reply

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
CALLS_PER_PROCESS = 50
LIMIT_USD = 0.03
REPEAT = 40  # about 240 tiktoken tokens of prompt: the prompt, not the answer, dominates the cost
MAX_TOKENS = 20


def test_a_provider_counting_more_than_tiktoken_cannot_push_a_session_over_its_limit(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    with ProviderDouble(prompt_token_factor=1.5) as provider:
        # Every answer uses its whole max_tokens, and a little latency keeps many holds alive at once.
        provider.set_default("fast-model", Reply(completion_tokens=MAX_TOKENS, delay=0.05))
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        arguments = [provider.base_url, redis_url, prefix, str(LIMIT_USD), str(CALLS_PER_PROCESS)]
        command = [sys.executable, "-m", "tests.workers.concurrent_calls", *arguments, str(REPEAT), str(MAX_TOKENS)]
        workers = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, cwd=ROOT)
            for _ in range(PROCESSES)
        ]
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=240)
            assert worker.returncode == 0, err.decode()[-3000:]
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        requests_seen = provider.request_count("fast-model")

    completed = sum(result["completed"] for result in results)
    rejected = sum(result["rejected"] for result in results)
    settled = [amount for result in results for amount in result["settled_micros"]]
    policy = BudgetPolicy.model_validate(
        {
            "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
            "budgets": [{"scope": "session", "limit_usd": LIMIT_USD, "window": "total"}],
        }
    )
    (budget,) = policy.budgets_for(session_id="shared-session")
    with RedisBudgetStore(policy.store) as store:
        status = store.status(budget)

    print(
        f"\n1.5x tokenizer: {PROCESSES * CALLS_PER_PROCESS} calls, {completed} completed, {rejected} rejected, "
        f"limit {usd_to_micros(LIMIT_USD)} micro-USD, spent {status.spent_micros} micro-USD"
    )
    assert completed + rejected == PROCESSES * CALLS_PER_PROCESS
    assert completed > 0
    assert rejected > 0  # the limit really did bite
    assert requests_seen == completed
    assert status.spent_micros == sum(settled)
    assert status.spent_micros <= usd_to_micros(LIMIT_USD)  # zero overspend
    assert status.held_micros == 0
