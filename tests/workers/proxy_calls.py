"""A worker process: N concurrent chat completions through a LiteLLM proxy on one session.

Usage: python -m tests.workers.proxy_calls PROXY_URL API_KEY SESSION CALLS MAX_TOKENS

The real ``openai`` client (async, no retries). Prints one JSON line: how many calls
completed, were refused with 429, failed otherwise (and the first errors), and how long
each call took to be answered, in milliseconds, by outcome.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import openai

MESSAGES = [{"role": "user", "content": "one call of a burst through the proxy, on one shared session"}]


async def main(url: str, api_key: str, session: str, calls: int, max_tokens: int) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=url, api_key=api_key, max_retries=0, timeout=120)
    waits: dict[str, list[float]] = {"completed": [], "rejected": [], "error": []}
    errors: list[str] = []

    async def one() -> None:
        started = time.perf_counter()
        try:
            await client.chat.completions.create(
                model="chat", messages=MESSAGES, max_tokens=max_tokens, extra_body={"litellm_session_id": session}
            )
            outcome = "completed"
        except openai.APIStatusError as exc:
            outcome = "rejected" if exc.status_code == 429 else "error"
            if outcome == "error" and len(errors) < 3:
                errors.append(f"{exc.status_code}: {exc.message}")
        except openai.APIError as exc:
            outcome = "error"
            if len(errors) < 3:
                errors.append(repr(exc))
        waits[outcome].append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one() for _ in range(calls)))
    await client.close()
    return {
        "completed": len(waits["completed"]),
        "rejected": len(waits["rejected"]),
        "errors": len(waits["error"]),
        "first_errors": errors,
        "wait_ms": waits,
    }


if __name__ == "__main__":
    proxy_url, key, session_id, count, tokens = sys.argv[1:6]
    print(json.dumps(asyncio.run(main(proxy_url, key, session_id, int(count), int(tokens)))))
