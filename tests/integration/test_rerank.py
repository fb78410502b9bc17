"""Rerank through the router: a span, the price per search unit, budgets held and settled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import litellm
import pytest

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import (
    RERANK_PRICE,
    budgeted_router,
    call_attributes,
    open_router,
    sized_call_spans,
    store_config,
)

QUERY = "which ship passed the headland"
DOCUMENTS = ["the lighthouse keeper logs the storm", "ships pass the headland at night", "gulls"]


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


async def test_a_rerank_is_a_span_with_its_search_units_and_cost(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    response = await router.aroute_rerank("rerank", query=QUERY, documents=DOCUMENTS, session_id="s-rerank")

    assert isinstance(response, litellm.RerankResponse)
    assert [result["index"] for result in response.results or []] == [1, 0, 2]
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.rerank/rerank"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "rerank"
    assert attributes[sc.ROUTER_USAGE_SEARCH_UNITS] == 1
    assert attributes[sc.ROUTER_DEPLOYMENT_ID] == "rerank-primary"
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(RERANK_PRICE)
    assert attributes[f"{sc.ROUTER_COST_PREFIX}search_units"] == pytest.approx(RERANK_PRICE)
    assert attributes[sc.LLM_COST_PROMPT] + attributes[sc.LLM_COST_COMPLETION] == attributes[sc.LLM_COST_TOTAL]
    (attempt,) = capture.attempt_spans(span)
    assert attempt.attributes[sc.ATTEMPT_OUTCOME] == "success"  # type: ignore[index]
    assert provider.requests[0].body["documents"] == DOCUMENTS
    points = [p for p in capture.metric_points(sc.METRIC_CALLS) if p[0].get(sc.GEN_AI_OPERATION_NAME) == "rerank"]
    assert points
    assert points[0][0][sc.ROUTER_MODEL_GROUP] == "rerank"


async def test_a_rerank_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("rerank-model", Fail(429, retry_after=0.01), Reply())

    await router.aroute_rerank("rerank", query=QUERY, documents=DOCUMENTS)

    attributes = call_attributes(capture)
    assert provider.request_count("rerank-model") == 2
    assert attributes[sc.ROUTER_ATTEMPTS] == 2
    assert attributes[sc.ROUTER_RETRIES] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(RERANK_PRICE)


async def test_a_rerank_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("rerank-model", Fail(500))

    await router.aroute_rerank("rerank", query=QUERY, documents=DOCUMENTS)

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "rerank-backup"
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(RERANK_PRICE / 2)
    assert provider.request_count("rerank-backup-model") == 1


async def test_a_budget_refuses_a_rerank_before_the_provider(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = budgeted_router(provider, capture, RERANK_PRICE * 1.5, {"backend": "memory"})
    documents = [f"document {i}" for i in range(150)]  # two search units: 0.004 USD over a 0.003 budget

    with pytest.raises(BudgetExceededError):
        await router.aroute_rerank("rerank", query=QUERY, documents=documents, session_id="s-big")

    assert provider.request_count() == 0
    assert call_attributes(capture)[sc.BUDGET_OUTCOME] == "rejected"
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_rerank_settles_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    router = budgeted_router(provider, capture, 1.0, store_config(backend, request))
    documents = [f"document {i}" for i in range(150)]

    await router.aroute_rerank("rerank", query=QUERY, documents=documents, session_id="s-settle")

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-settle")
    assert status.spent_units == 4_000_000  # 2 search units (150 documents) x 0.002 USD in nano-dollars
    assert status.held_units == 0
    attributes = call_attributes(capture)
    assert attributes[sc.BUDGET_ESTIMATE_USD] == pytest.approx(0.004)
    assert attributes[sc.BUDGET_SETTLED_USD] == pytest.approx(0.004)
    router.shutdown()


async def test_concurrent_reranks_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("rerank-model", Reply(delay=0.05))
    sizes = range(1, 7)

    await asyncio.gather(
        *(
            router.aroute_rerank("rerank", query=QUERY, documents=["d"] * (100 * size), session_id=f"s{size}")
            for size in sizes
        )
    )

    for size, attributes in sized_call_spans(capture, len(sizes)):
        assert attributes[sc.ROUTER_USAGE_SEARCH_UNITS] == size
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(size * RERANK_PRICE)


async def test_a_rerank_on_an_embedding_group_is_a_clear_error(router: CostRouter, provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match=r"'embed' serves embed-primary \(embedding\): not a rerank call"):
        await router.aroute_rerank("embed", query=QUERY, documents=DOCUMENTS)

    with pytest.raises(ValueError, match="not a embedding call"):
        router.route_embedding("rerank", input=DOCUMENTS)
    assert provider.request_count() == 0


async def test_rerank_documents_of_the_wrong_type_are_refused(router: CostRouter) -> None:
    with pytest.raises(TypeError, match="documents must be a list"):
        await router.aroute_rerank("rerank", query=QUERY, documents="one document")
