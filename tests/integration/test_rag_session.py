"""One session budget caps a whole retrieval pipeline: embeddings, then a streamed Responses answer."""

from __future__ import annotations

import pytest

from costrouter import BudgetExceededError
from costrouter import semconv as sc
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
    assert status.spent_micros == 150
    names = [span.name for span in capture.call_spans()]
    assert names == ["router.responses/answer", "router.embedding/embed", "router.responses/answer"]
    outcomes = [dict(span.attributes or {})[sc.BUDGET_OUTCOME] for span in capture.call_spans()]
    assert outcomes[-1] == "rejected"
    assert provider.request_count("resp-model") == 1
    router.shutdown()
