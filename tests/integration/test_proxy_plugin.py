"""costrouter's plugin in a real LiteLLM proxy process (no database), the provider double upstream.

The real ``openai`` client talks to the proxy; budgets live in the test Redis. Each test
checks the three books against each other: what the provider billed, what Redis counted,
and what the spans say.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from costrouter.budget import BudgetPolicy
from costrouter.budget.redis import RedisBudgetStore
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.otel.span_file import SpanRecord
from costrouter.testing import Fail, ProviderDouble, Reply
from costrouter.testing.redis_server import RedisServer
from tests.integration.proxy_server import MASTER_KEY, ProxyServer, proxy_config
from tests.workers.processes import run_each_worker

CHAT_IN, CHAT_OUT = 2e-6, 4e-6
FLAKY_IN, FLAKY_OUT = 1e-6, 2e-6
EMBED_IN = 1e-7
SESSION_LIMIT_USD = 0.001
MESSAGES = [{"role": "user", "content": "hello through the proxy"}]
_SPAN_WAIT_SECONDS = 60.0  # the exporter writes in batches; a safety net, not a measured time

GROUPS: dict[str, dict[str, Any]] = {
    "chat": {"model": "chat-model", "input": CHAT_IN, "output": CHAT_OUT, "id": "chat-primary"},
    "flaky": {"model": "flaky-model", "input": FLAKY_IN, "output": FLAKY_OUT, "id": "flaky-primary"},
    "embed": {"model": "embed-model", "input": EMBED_IN, "output": 0.0, "id": "embed-primary"},
    "cheap": {"model": "cheap-model", "input": FLAKY_IN, "output": FLAKY_OUT, "id": "cheap-primary"},
}
GROUPS["broken"] = {"model": "broken-model", "input": CHAT_IN, "output": CHAT_OUT, "id": "broken-primary"}
DOWNGRADE_TAG = "downgrade-me"


def _policy(
    redis_url: str, prefix: str, session_limit: float = SESSION_LIMIT_USD, *, leases: bool = False
) -> dict[str, Any]:
    # The per-call path unless asked (leases are the default): most of these tests read Redis right
    # after each request, where a lease carries its spend within flush_seconds.
    store = {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix}
    return {
        "store": store if leases else {**store, "lease": {"enabled": False}},
        "budgets": [
            {"name": "per-session", "scope": "session", "limit_usd": session_limit, "window": "total"},
            {
                "name": "tag-downgrade",
                "scope": "tag",
                "id": DOWNGRADE_TAG,
                "limit_usd": 0.0001,  # the chat call needs more, the cheap one less
                "window": "total",
                "on_exceeded": "downgrade",
                "downgrade_to": "cheap",
            },
        ],
    }


def _config(provider: ProviderDouble) -> dict[str, Any]:
    return proxy_config(
        provider.base_url, GROUPS, num_retries=1, retry_after=0, fallbacks=[{"flaky": ["chat"]}], allowed_fails=100
    )


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"p{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def proxy(provider: ProviderDouble, redis_server: RedisServer, prefix: str) -> Iterator[ProxyServer]:
    """One proxy for the module: the plugin, budgets in the test Redis, spans in a file."""
    redis_server.ensure_running()
    with ProxyServer(_config(provider), _policy(redis_server.url, prefix)) as server:
        yield server


def _client(proxy: ProxyServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)


def _spent_units(redis_url: str, prefix: str, session: str, limit: float = SESSION_LIMIT_USD) -> tuple[int, int]:
    """The session's (spent, held) units (nano-dollars) in Redis."""
    policy = BudgetPolicy.model_validate(_policy(redis_url, prefix, limit))
    (budget,) = policy.budgets_for(session_id=session)
    with RedisBudgetStore(policy.store) as store:
        status = store.status(budget)
    return status.spent_units, status.held_units


def _call_spans(proxy: ProxyServer, session: str, count: int) -> list[SpanRecord]:
    """The call spans of ``session``, once ``count`` of them reached the span file."""
    deadline = time.monotonic() + _SPAN_WAIT_SECONDS
    while True:
        spans = [
            span
            for span in proxy.spans()
            if not span["name"].startswith(sc.ATTEMPT_SPAN_NAME_PREFIX)
            and span["attributes"].get(sc.SESSION_ID) == session
        ]
        if len(spans) >= count or time.monotonic() > deadline:
            assert len(spans) == count, f"{len(spans)} call spans of {session}, expected {count}"
            return spans
        time.sleep(0.2)


def _billed_units(provider: ProviderDouble, model: str, since: int, price_in: float, price_out: float) -> int:
    """What the provider billed for ``model`` since its ``since``-th answer, in units (nano-dollars)."""
    answers = [answer for answer in provider.answers[since:] if answer.model == model]
    return sum(usd_to_units(a.prompt_tokens * price_in + a.completion_tokens * price_out) for a in answers)


def _span_units(spans: list[SpanRecord]) -> int:
    return sum(usd_to_units(float(span["attributes"][sc.LLM_USAGE_COST_USD])) for span in spans)


def test_a_sync_call_is_held_priced_and_traced_once(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("chat-model", Reply(completion_tokens=7))
    since = len(provider.answers)
    session = f"s-{uuid.uuid4().hex[:8]}"

    response = _client(proxy).chat.completions.create(
        model="chat",
        messages=MESSAGES,
        max_tokens=20,
        user="alice",
        extra_body={"litellm_session_id": session, "metadata": {"tags": ["search", "beta"]}},
    )

    assert response.usage is not None
    (span,) = _call_spans(proxy, session, 1)
    attributes = span["attributes"]
    assert span["name"] == "router.completion/chat"
    assert attributes[sc.USER_ID] == "alice"
    assert list(attributes[sc.ROUTER_TAGS]) == ["search", "beta"]
    assert attributes[sc.BUDGET_OUTCOME] == "allowed"
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "chat-primary"
    assert attributes[sc.ROUTER_ATTEMPTS] == 1
    assert attributes[sc.LLM_TOKEN_COUNT_PROMPT] == response.usage.prompt_tokens
    billed = _billed_units(provider, "chat-model", since, CHAT_IN, CHAT_OUT)
    assert billed > 0
    assert _span_units([span]) == billed
    assert _spent_units(redis_server.url, prefix, session) == (billed, 0)


def test_a_refusal_is_a_429_at_once_naming_the_budget(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("chat-model", Reply(completion_tokens=7))
    requests_before = provider.request_count("chat-model")
    session = f"s-{uuid.uuid4().hex[:8]}"

    with pytest.raises(openai.RateLimitError) as raised:
        # 1000 output tokens at $4/M can cost $0.004: more than the session's $0.001.
        _client(proxy).chat.completions.create(
            model="chat", messages=MESSAGES, max_tokens=1000, extra_body={"litellm_session_id": session}
        )

    assert raised.value.status_code == 429
    error = raised.value.response.json()["error"]
    assert error["type"] == "budget_exceeded"
    assert "per-session" in error["message"]
    details = error["provider_specific_fields"]["costrouter"]
    assert details["budget"] == "per-session"
    assert details["scope"] == "session"
    assert details["scope_id"] == session
    assert details["limit_usd"] == SESSION_LIMIT_USD
    assert details["window"] == "total"
    assert details["remaining_usd"] == SESSION_LIMIT_USD
    assert details["estimate_usd"] > SESSION_LIMIT_USD
    assert provider.request_count("chat-model") == requests_before  # never reached the provider
    (span,) = _call_spans(proxy, session, 1)
    assert span["attributes"][sc.BUDGET_OUTCOME] == "rejected"
    assert _spent_units(redis_server.url, prefix, session) == (0, 0)


def test_async_stream_settles_at_its_end(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("chat-model", Reply(completion_tokens=9))
    since = len(provider.answers)
    session = f"s-{uuid.uuid4().hex[:8]}"

    async def stream() -> str:
        client = openai.AsyncOpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
        chunks = await client.chat.completions.create(
            model="chat", messages=MESSAGES, max_tokens=20, stream=True, extra_body={"litellm_session_id": session}
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in chunks if chunk.choices])
        await client.close()
        return text

    assert asyncio.run(stream())
    (span,) = _call_spans(proxy, session, 1)
    assert span["attributes"][sc.ROUTER_STREAM] is True
    assert span["attributes"][sc.ROUTER_STREAM_OUTCOME] == "completed"
    billed = _billed_units(provider, "chat-model", since, CHAT_IN, CHAT_OUT)
    assert _span_units([span]) == billed
    assert _spent_units(redis_server.url, prefix, session) == (billed, 0)


def test_a_stream_cut_by_the_client_settles_what_was_delivered(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("chat-model", Reply(completion_tokens=200, chunk_delay=0.05))
    session = f"s-{uuid.uuid4().hex[:8]}"

    with _client(proxy).chat.completions.create(
        model="chat", messages=MESSAGES, max_tokens=200, stream=True, extra_body={"litellm_session_id": session}
    ) as stream:
        for index, _ in enumerate(stream):
            if index == 3:
                break

    (span,) = _call_spans(proxy, session, 1)
    attributes = span["attributes"]
    assert attributes[sc.ROUTER_STREAM_OUTCOME] == "closed_early"
    assert attributes[sc.ROUTER_USAGE_SOURCE] == "counted"
    assert 0 < int(attributes[sc.LLM_TOKEN_COUNT_COMPLETION]) < 200
    charged = _span_units([span])
    assert 0 < charged < usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))
    assert _spent_units(redis_server.url, prefix, session) == (charged, 0)


def test_a_retry_and_a_fallback_are_attempts_on_one_span(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("flaky-model", Fail(500))
    provider.set_default("chat-model", Reply(completion_tokens=5))
    since = len(provider.answers)
    session = f"s-{uuid.uuid4().hex[:8]}"

    _client(proxy).chat.completions.create(
        model="flaky", messages=MESSAGES, max_tokens=20, extra_body={"litellm_session_id": session}
    )

    (span,) = _call_spans(proxy, session, 1)
    attributes = span["attributes"]
    assert attributes[sc.ROUTER_GROUP] == "flaky"
    assert attributes[sc.ROUTER_SERVED_GROUP] == "chat"
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "chat-primary"
    assert attributes[sc.ROUTER_ATTEMPTS] == 3
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    attempts = [s for s in proxy.spans() if s["parent_span_id"] == span["span_id"]]
    kinds = [s["attributes"][sc.ATTEMPT_KIND] for s in sorted(attempts, key=lambda s: s["start_time_ns"])]
    assert kinds == ["first", "retry", "fallback"]
    billed = _billed_units(provider, "chat-model", since, CHAT_IN, CHAT_OUT)  # the serving deployment's price
    assert _span_units([span]) == billed
    assert _spent_units(redis_server.url, prefix, session) == (billed, 0)


def test_embeddings_and_responses_are_held_and_priced(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("chat-model", Reply(completion_tokens=6))
    session = f"s-{uuid.uuid4().hex[:8]}"
    client = _client(proxy)

    embedding = client.embeddings.create(
        model="embed", input=["one text", "two texts"], extra_body={"litellm_session_id": session}
    )
    response = client.responses.create(
        model="chat", input="hello", max_output_tokens=20, extra_body={"litellm_session_id": session}
    )

    assert embedding.usage.prompt_tokens > 0
    assert response.usage is not None
    spans = {span["name"]: span for span in _call_spans(proxy, session, 2)}
    assert set(spans) == {"router.embedding/embed", "router.responses/chat"}
    embed_cost = usd_to_units(embedding.usage.prompt_tokens * EMBED_IN)
    respond_cost = usd_to_units(response.usage.input_tokens * CHAT_IN + response.usage.output_tokens * CHAT_OUT)
    assert _span_units([spans["router.embedding/embed"]]) == embed_cost
    assert _span_units([spans["router.responses/chat"]]) == respond_cost
    assert _spent_units(redis_server.url, prefix, session) == (embed_cost + respond_cost, 0)


@pytest.mark.parametrize("store", ["defaults (leases)", "per call"])
def test_the_burst_on_two_proxies_never_passes_the_cap(
    provider: ProviderDouble, redis_server: RedisServer, store: str
) -> None:
    """4 client processes × 50 concurrent calls, one session, $0.002, billed at 1.5× tiktoken's count.

    Two proxy processes share the session's budget in one Redis (two client processes each). With
    the defaults each proxy leases the session's room; stopping them (SIGINT) carries the leased
    spend to Redis and gives the rest back, so Redis then equals the provider's bill.
    """
    redis_server.ensure_running()
    cap, prefix, session = 0.002, f"b{uuid.uuid4().hex[:10]}", "burst-session"
    provider.set_default("chat-model", Reply(completion_tokens=20, delay=1.5))
    provider.set_prompt_token_factor("chat-model", 1.5)
    since = len(provider.answers)
    policy = _policy(redis_server.url, prefix, cap, leases=store.startswith("defaults"))
    try:
        with ProxyServer(_config(provider), policy) as first, ProxyServer(_config(provider), policy) as second:
            urls = [first.url, first.url, second.url, second.url]
            results = run_each_worker(
                "tests.workers.proxy_calls", [[url, MASTER_KEY, session, "50", "20"] for url in urls]
            )
            completed = sum(result["completed"] for result in results)
            spans = _call_spans(first, session, sum(r["completed"] + r["rejected"] for r in results[:2]))
            spans += _call_spans(second, session, sum(r["completed"] + r["rejected"] for r in results[2:]))
    finally:
        provider.set_prompt_token_factor("chat-model", None)
    assert sum(result["errors"] for result in results) == 0, [r["first_errors"] for r in results]
    assert completed + sum(result["rejected"] for result in results) == 200
    assert completed > 0
    billed = _billed_units(provider, "chat-model", since, CHAT_IN, CHAT_OUT)
    assert billed <= usd_to_units(cap)  # the provider's bill stays under the cap
    assert _spent_units(redis_server.url, prefix, session, cap) == (billed, 0)  # Redis = provider
    allowed = [span for span in spans if span["attributes"][sc.BUDGET_OUTCOME] == "allowed"]
    assert len(allowed) == completed
    assert _span_units(allowed) == billed  # spans = provider


def test_a_bad_budget_file_stops_the_proxy_start_naming_it(provider: ProviderDouble) -> None:
    policy = {"budgets": [{"name": "per-session", "scope": "sessions", "limit_usd": 1, "window": "total"}]}

    with pytest.raises(RuntimeError, match=r"budgets\.yaml") as raised, ProxyServer(_config(provider), policy):
        pass

    assert "scope" in str(raised.value)


def test_a_stream_without_include_usage_reaches_the_client_as_asked(
    proxy: ProxyServer, provider: ProviderDouble
) -> None:
    """The plugin asks the provider for usage; the proxy strips it again for a client that did not ask."""
    provider.set_default("chat-model", Reply(completion_tokens=4))

    chunks = list(_client(proxy).chat.completions.create(model="chat", messages=MESSAGES, max_tokens=20, stream=True))

    assert all(chunk.usage is None for chunk in chunks)
    assert provider.requests[-1].body["stream_options"] == {"include_usage": True}


def test_a_downgrade_rewrites_the_model_the_proxy_routes(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("cheap-model", Reply(completion_tokens=3))
    cheap_before, chat_before = provider.request_count("cheap-model"), provider.request_count("chat-model")
    session = f"s-{uuid.uuid4().hex[:8]}"

    _client(proxy).chat.completions.create(
        model="chat",
        messages=MESSAGES,
        max_tokens=20,
        extra_body={"litellm_session_id": session, "metadata": {"tags": [DOWNGRADE_TAG]}},
    )

    assert provider.request_count("cheap-model") == cheap_before + 1
    assert provider.request_count("chat-model") == chat_before
    (span,) = _call_spans(proxy, session, 1)
    assert span["attributes"][sc.BUDGET_OUTCOME] == "downgraded"
    assert span["attributes"][sc.ROUTER_SERVED_GROUP] == "cheap"
    spent, held = _spent_units(redis_server.url, prefix, session)
    assert (spent, held) == (_span_units([span]), 0)


def test_a_failed_request_releases_its_hold(
    proxy: ProxyServer, provider: ProviderDouble, prefix: str, redis_server: RedisServer
) -> None:
    provider.set_default("broken-model", Fail(500))
    session = f"s-{uuid.uuid4().hex[:8]}"

    with pytest.raises(openai.InternalServerError):
        _client(proxy).chat.completions.create(
            model="broken", messages=MESSAGES, max_tokens=20, extra_body={"litellm_session_id": session}
        )

    (span,) = _call_spans(proxy, session, 1)
    assert span["status"]["code"] == "ERROR"
    assert span["attributes"][sc.ROUTER_ATTEMPTS] == 2  # the first and its retry
    assert _span_units([span]) == 0
    assert _spent_units(redis_server.url, prefix, session) == (0, 0)


def test_a_stopped_proxy_carries_its_leased_spend_and_gives_its_leases_back(
    provider: ProviderDouble, redis_server: RedisServer
) -> None:
    """With the defaults (leases), a session's room is leased by the proxy; SIGINT ends it at once.

    The lease would otherwise stay held in Redis until its TTL (30 s) and its last settles wait for
    the next flush: the plugin's exit hook carries the spend and gives the room back.
    """
    redis_server.ensure_running()
    prefix, session, limit = f"x{uuid.uuid4().hex[:10]}", f"s-{uuid.uuid4().hex[:8]}", 1.0
    provider.set_default("chat-model", Reply(completion_tokens=7))
    since = len(provider.answers)
    with ProxyServer(_config(provider), _policy(redis_server.url, prefix, limit, leases=True)) as server:
        for _ in range(3):
            _client(server).chat.completions.create(
                model="chat", messages=MESSAGES, max_tokens=20, extra_body={"litellm_session_id": session}
            )
        _, held = _spent_units(redis_server.url, prefix, session, limit)
        assert held > 0  # the proxy's lease on the session: its room beyond the calls it served
    billed = _billed_units(provider, "chat-model", since, CHAT_IN, CHAT_OUT)
    assert billed > 0
    assert _spent_units(redis_server.url, prefix, session, limit) == (billed, 0)
