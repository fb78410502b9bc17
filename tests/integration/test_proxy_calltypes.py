"""Images, speech, rerank and Anthropic's ``/v1/messages`` through a real LiteLLM proxy with the plugin.

Each is held before the call, priced at the serving deployment's unit price, settled to the
micro-dollar in Redis and traced as one ``router.<operation>/{group}`` span, as the library
does for ``route_image``, ``route_speech``, ``route_rerank`` and ``route_messages``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from costrouter.budget import BudgetPolicy
from costrouter.budget.redis import RedisBudgetStore
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.otel.span_file import SpanRecord
from costrouter.testing import ProviderDouble, Reply
from costrouter.testing.redis_server import RedisServer
from tests.integration.proxy_server import MASTER_KEY, ProxyServer, proxy_config

IMAGE_PRICE = 0.04
TTS_PRICE = 15e-6
RERANK_PRICE = 0.002
CLAUDE_IN, CLAUDE_OUT = 3e-6, 15e-6
SESSION_LIMIT_USD = 1.0
TINY_TAG = "tiny"
_SPAN_WAIT_SECONDS = 60.0  # the exporter writes in batches; a safety net, not a measured time


def _groups(provider_url: str) -> dict[str, dict[str, Any]]:
    bare = provider_url.removesuffix("/v1")  # cohere/ and anthropic/ append their own /v1/...
    return {
        "images": {
            "model": "img-model",
            "input": 0.0,
            "output": 0.0,
            "id": "images-primary",
            "mode": "image_generation",
            "params": {"output_cost_per_image": IMAGE_PRICE},
        },
        "tts": {
            "model": "tts-model",
            "input": 0.0,
            "output": 0.0,
            "id": "tts-primary",
            "mode": "audio_speech",
            "params": {"input_cost_per_character": TTS_PRICE},
        },
        "rerank": {
            "model": "cohere/rerank-model",
            "input": 0.0,
            "output": 0.0,
            "id": "rerank-primary",
            "mode": "rerank",
            "params": {"input_cost_per_query": RERANK_PRICE, "api_base": bare},
        },
        "claude": {
            "model": "anthropic/claude-x",
            "input": CLAUDE_IN,
            "output": CLAUDE_OUT,
            "id": "claude-primary",
            "mode": "chat",
            "params": {"api_base": bare},
        },
    }


def _policy(redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "store": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
        "budgets": [
            {"name": "per-session", "scope": "session", "limit_usd": SESSION_LIMIT_USD, "window": "total"},
            {"name": "tiny-tag", "scope": "tag", "id": TINY_TAG, "limit_usd": 0.001, "window": "total"},
        ],
    }


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def proxy(provider: ProviderDouble, redis_server: RedisServer, prefix: str) -> Iterator[ProxyServer]:
    redis_server.ensure_running()
    config = proxy_config(provider.base_url, _groups(provider.base_url))
    with ProxyServer(config, _policy(redis_server.url, prefix)) as server:
        yield server


def _session() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


def _spent(redis_url: str, prefix: str, session: str) -> tuple[int, int]:
    """The session's spent and held, once the proxy's lease on it was closed.

    The store runs with the defaults (leases): a one-call session's lease is charged and given
    back by a background message, within the documented lag, after the response.
    """
    policy = BudgetPolicy.model_validate(_policy(redis_url, prefix))
    (budget,) = policy.budgets_for(session_id=session)
    deadline = time.monotonic() + _SPAN_WAIT_SECONDS
    with RedisBudgetStore(policy.store) as store:
        while True:
            status = store.status(budget)
            if status.held_units == 0 or time.monotonic() > deadline:
                return status.spent_units, status.held_units
            time.sleep(0.1)


def _span(proxy: ProxyServer, session: str) -> SpanRecord:
    """The one call span of ``session``, once the exporter wrote it."""
    deadline = time.monotonic() + _SPAN_WAIT_SECONDS
    while True:
        spans = [
            span
            for span in proxy.spans()
            if not span["name"].startswith(sc.ATTEMPT_SPAN_NAME_PREFIX)
            and span["attributes"].get(sc.SESSION_ID) == session
        ]
        if spans or time.monotonic() > deadline:
            assert len(spans) == 1, f"{len(spans)} call spans of {session}"
            return spans[0]
        time.sleep(0.2)


def _cost(span: SpanRecord) -> int:
    return usd_to_units(float(span["attributes"][sc.LLM_USAGE_COST_USD]))


def _client(proxy: ProxyServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)


def _post(proxy: ProxyServer, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    return httpx.post(f"{proxy.url}{path}", json=body, headers=headers, timeout=60)


def test_an_image_generation_is_held_priced_and_traced(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    session = _session()

    response = _client(proxy).images.generate(
        model="images", prompt="a lighthouse in a storm", n=2, extra_body={"litellm_session_id": session}
    )

    assert response.data is not None
    assert len(response.data) == 2
    span = _span(proxy, session)
    assert span["name"] == "router.image_generation/images"
    assert span["attributes"][sc.ROUTER_DEPLOYMENT_ID] == "images-primary"
    assert _cost(span) == usd_to_units(2 * IMAGE_PRICE)
    assert _spent(redis_server.url, prefix, session) == (usd_to_units(2 * IMAGE_PRICE), 0)


def test_speech_is_held_priced_and_traced(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    session, text = _session(), "Hello there, ships at the headland"

    audio = _client(proxy).audio.speech.create(
        model="tts", voice="alloy", input=text, extra_body={"litellm_session_id": session}
    )

    assert audio.content.startswith(b"ID3")
    span = _span(proxy, session)
    assert span["name"] == "router.speech/tts"
    assert span["attributes"][sc.ROUTER_USAGE_CHARACTERS] == len(text)
    assert _cost(span) == usd_to_units(len(text) * TTS_PRICE)
    assert _spent(redis_server.url, prefix, session) == (usd_to_units(len(text) * TTS_PRICE), 0)


def test_a_rerank_is_held_priced_and_traced(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    session = _session()
    documents = ["the lighthouse keeper logs the storm", "ships pass the headland at night", "gulls"]

    response = _post(
        proxy,
        "/v1/rerank",
        {
            "model": "rerank",
            "query": "which ship passed the headland",
            "documents": documents,
            "litellm_session_id": session,
        },
    )

    assert response.status_code == 200, response.text
    assert [result["index"] for result in response.json()["results"]] == [1, 0, 2]
    span = _span(proxy, session)
    assert span["name"] == "router.rerank/rerank"
    assert span["attributes"][sc.ROUTER_USAGE_SEARCH_UNITS] == 1
    assert _cost(span) == usd_to_units(RERANK_PRICE)
    assert _spent(redis_server.url, prefix, session) == (usd_to_units(RERANK_PRICE), 0)


def test_an_anthropic_message_is_held_priced_and_traced(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.script("claude-x", Reply(prompt_tokens=10, completion_tokens=6))
    session = _session()

    response = _post(
        proxy,
        "/v1/messages",
        {
            "model": "claude",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "summarise the storm log"}],
            "litellm_session_id": session,
        },
    )

    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message"
    span = _span(proxy, session)
    assert span["name"] == "router.messages/claude"
    assert span["attributes"][sc.GEN_AI_USAGE_INPUT_TOKENS] == 10
    assert span["attributes"][sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 6
    expected = usd_to_units(10 * CLAUDE_IN + 6 * CLAUDE_OUT)
    assert _cost(span) == expected
    assert _spent(redis_server.url, prefix, session) == (expected, 0)


def test_a_refused_image_is_a_429_before_the_provider(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    session = _session()
    requests_before = provider.request_count("img-model")

    with pytest.raises(openai.RateLimitError) as raised:
        _client(proxy).images.generate(
            model="images",
            prompt="a lighthouse",
            extra_body={"litellm_session_id": session, "metadata": {"tags": [TINY_TAG]}},
        )

    # The proxy's image route answers with its own error from the refusal's message and code
    # (the structured figures, ``provider_specific_fields``, stay on the chat-shaped routes).
    assert raised.value.status_code == 429
    error = raised.value.response.json()["error"]
    assert "budget 'tiny-tag'" in error["message"]
    assert "window total, remaining $0.001000" in error["message"]
    assert error["type"] == "budget_exceeded"
    assert provider.request_count("img-model") == requests_before
    assert _span(proxy, session)["attributes"][sc.BUDGET_OUTCOME] == "rejected"
    assert _spent(redis_server.url, prefix, session) == (0, 0)


def test_a_streamed_anthropic_message_settles_at_its_end(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.script("claude-x", Reply(prompt_tokens=12, completion_tokens=8))
    session = _session()
    body = {
        "model": "claude",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "summarise the storm log"}],
        "litellm_session_id": session,
    }

    with httpx.stream(
        "POST", f"{proxy.url}/v1/messages", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60
    ) as response:
        events = b"".join(response.iter_bytes())

    assert response.status_code == 200
    assert b"message_stop" in events
    span = _span(proxy, session)
    assert span["attributes"][sc.ROUTER_STREAM_OUTCOME] == "completed"
    expected = usd_to_units(12 * CLAUDE_IN + 8 * CLAUDE_OUT)
    assert _cost(span) == expected
    assert _spent(redis_server.url, prefix, session) == (expected, 0)
