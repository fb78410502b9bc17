"""Embeddings through the router: a span, the deployment's price, budgets held and settled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import litellm
import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import EMBED_PRICE, budgeted_router, call_attributes, open_router, sized_call_spans, store_config

CHUNKS = ["the lighthouse keeper logs the storm", "ships pass the headland at night"]
WORDS = sum(len(chunk.split()) for chunk in CHUNKS)  # the double bills one token a word


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


def test_an_embedding_is_a_span_with_its_usage_and_cost(router: CostRouter, capture: TelemetryCapture) -> None:
    response = router.route_embedding("embed", input=CHUNKS, session_id="s-embed")

    assert isinstance(response, litellm.EmbeddingResponse)
    assert len(response.data) == 2
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.embedding/embed"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == WORDS
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "embed-primary"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(WORDS * EMBED_PRICE)
    assert attributes[sc.SESSION_ID] == "s-embed"
    (point_attributes, _), *_ = [
        p for p in capture.metric_points(sc.METRIC_CALLS) if p[0].get(sc.GEN_AI_OPERATION_NAME) == "embeddings"
    ]
    assert point_attributes[sc.ROUTER_MODEL_GROUP] == "embed"


def test_an_embedding_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    """LiteLLM 1.106 embeds through the OpenAI SDK with its own retries (``max_retries or 2``).

    The 429 is retried inside the SDK, below LiteLLM's callbacks: one attempt, one charge.
    """
    provider.script("emb-model", Fail(429, retry_after=0.01), Reply())

    router.route_embedding("embed", input=CHUNKS)

    attributes = call_attributes(capture)
    assert [r.headers.get("x-stainless-retry-count") for r in provider.requests] == ["0", "1"]
    assert attributes[sc.ROUTER_ATTEMPTS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(WORDS * EMBED_PRICE)
    assert [answer.model for answer in provider.answers] == ["emb-model"]


def test_an_embedding_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("emb-model", Fail(500))

    router.route_embedding("embed", input=CHUNKS)

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "embed-backup"
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(WORDS * EMBED_PRICE / 2)
    assert provider.request_count("emb-model-backup") == 0
    assert provider.request_count("emb-backup-model") == 1


def test_a_budget_refuses_a_large_embedding_before_the_provider(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = budgeted_router(provider, capture, 0.0001, {"backend": "memory"})  # 100 micro-dollars
    chunks = ["word " * 50] * 10  # 500 tokens at 1 micro-dollar each

    with pytest.raises(BudgetExceededError):
        router.route_embedding("embed", input=chunks, session_id="s-big")

    assert provider.request_count() == 0
    assert call_attributes(capture)[sc.BUDGET_OUTCOME] == "rejected"
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_an_embedding_settles_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    store = store_config(backend, request)
    router = budgeted_router(provider, capture, 1.0, store)

    router.route_embedding("embed", input=CHUNKS, session_id="s-settle")

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-settle")
    assert status.spent_units == WORDS * 1_000  # 11 tokens x 1e-6 USD, in nano-dollars: hand-computed
    assert status.held_units == 0
    assert call_attributes(capture)[sc.BUDGET_SETTLED_USD] == pytest.approx(WORDS * 1e-6)
    router.shutdown()


async def test_concurrent_embeddings_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("emb-model", Reply(delay=0.05))
    sizes = range(1, 9)

    await asyncio.gather(
        *(router.aroute_embedding("embed", input=["w " * size], session_id=f"s{size}") for size in sizes)
    )

    for size, attributes in sized_call_spans(capture, len(sizes)):
        assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == size
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(size * EMBED_PRICE)


def test_an_embedding_on_a_responses_group_is_a_clear_error(router: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match=r"'answer' serves answer-primary \(responses\): not a embedding call"):
        router.route_embedding("answer", input=CHUNKS)

    assert provider.request_count() == 0


def test_a_chat_call_on_an_embedding_group_is_a_clear_error(router: CostRouter) -> None:
    with pytest.raises(ValueError, match="not a completion call"):
        router.route_completion("embed", [{"role": "user", "content": "hi"}])


def test_an_embedding_input_of_the_wrong_type_is_refused(router: CostRouter) -> None:
    with pytest.raises(TypeError, match="input must be a string or a list"):
        router.route_embedding("embed", input=42)
