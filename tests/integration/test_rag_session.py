"""One session budget caps a whole retrieval pipeline: embeddings, then a streamed Responses answer."""

from __future__ import annotations

import pytest

from costrouter import BudgetExceededError
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import calltypes_router, session_budget

DOCUMENTS = ["word " * 50] * 3  # 150 tokens at 1 micro-dollar each


def _answer(router, session: str) -> None:  # type: ignore[no-untyped-def]
    for _event in router.route_response(
        "answer", input="what do the documents say", max_output_tokens=60, stream=True, session_id=session
    ):
        pass


def test_embeddings_spend_the_budget_a_later_answer_needs(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    provider.reset()
    provider.set_default("resp-model", Reply(completion_tokens=5))
    router = calltypes_router(provider.base_url, capture, session_budget(0.0005, {"backend": "memory"}))

    # Held: the answer about 394 micro-dollars (60 output tokens at 5), the embedding 398
    # (150 tokens x the unlearned ratio 2.0 x the safety factor 1.3); each fits in 500 alone.
    _answer(router, "fresh")
    router.route_embedding("embed", input=DOCUMENTS, session_id="rag")
    with pytest.raises(BudgetExceededError):
        _answer(router, "rag")  # 150 spent + 394 held > 500

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "rag")
    assert status.spent_units == 150_000  # 150 tokens x 1e-6 USD, in nano-dollars
    names = [span.name for span in capture.call_spans()]
    assert names == ["router.responses/answer", "router.embedding/embed", "router.responses/answer"]
    outcomes = [dict(span.attributes or {})[sc.BUDGET_OUTCOME] for span in capture.call_spans()]
    assert outcomes[-1] == "rejected"
    assert provider.request_count("resp-model") == 1
    router.shutdown()


async def test_one_session_budget_caps_embed_rerank_and_answer(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    """Embed, rerank, stream an answer; the second pass is refused at its rerank, before the provider."""
    provider.reset()
    provider.set_default("resp-model", Reply(completion_tokens=5))
    router = calltypes_router(provider.base_url, capture, session_budget(0.0035, {"backend": "memory"}))

    async def rag_pass() -> None:
        await router.aroute_embedding("embed", input=DOCUMENTS, session_id="rag")
        ranked = await router.aroute_rerank("rerank", query="what", documents=DOCUMENTS, top_n=2, session_id="rag")
        best = [DOCUMENTS[result["index"]] for result in ranked.results or []]
        stream = await router.aroute_response(
            "answer", input=" ".join(best), max_output_tokens=60, stream=True, session_id="rag"
        )
        async for _event in stream:
            pass

    await rag_pass()  # 150 + 2,000 + the answer's micro-dollars
    with pytest.raises(BudgetExceededError):
        await rag_pass()  # the embedding fits; the rerank's 2,000 held does not

    spans = capture.call_spans()
    assert [span.name.split("/")[0] for span in spans] == [
        "router.embedding",
        "router.rerank",
        "router.responses",
        "router.embedding",
        "router.rerank",
    ]
    assert all(dict(span.attributes or {})[sc.LLM_USAGE_COST_USD] > 0 for span in spans[:4])
    assert dict(spans[-1].attributes or {})[sc.BUDGET_OUTCOME] == "rejected"
    assert provider.request_count("rerank-model") == 1
    assert router.budgets is not None
    (status,) = router.budgets.status("session", "rag")
    costs = sum(usd_to_units(dict(span.attributes or {})[sc.LLM_USAGE_COST_USD]) for span in spans)
    assert status.spent_units == costs  # every settled step, to the unit
    assert status.spent_units <= usd_to_units(0.0035)
    router.shutdown()
